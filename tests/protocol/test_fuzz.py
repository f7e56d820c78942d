"""Property tests: arbitrary input never breaks the protocol core, replies are
always well-formed, and how the bytes are split or which internal fast path
runs never changes the result."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_helpers import QEMU_VERSION, execute

from qmpd.protocol import Request, Session
from qmpd.protocol.splitter import _NONCHAR, JSONStreamParser, ParsedValue, ParseError

PIECES = [b"{", b"}", b"[", b"]", b":", b",", b'"', b"'", b"\\", b"u", b"0", b"1", b"7", b"e",
          b"E", b"-", b"+", b".", b"a", b"true", b"null", b"false", b" ", b"\n", b"\t", b"\xff",
          b"\x00", b"\x01", b"\xc3", b"\xa9", b"\xc0\x80", b"\xf0\x9f\x98\x80", b"%",
          b'"execute"', b'"exec-oob"', b'"id"', b'"arguments"', b'"qmp_capabilities"',
          b'"enable"', b'"oob"', b'"x"', b"D800", b"DC00", b"FFFE", b"\\u", b"\\ud83d\\ude00",
          b'{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}',
          b'{"execute":"x","id":1}', b'{"exec-oob":"yank","id":2}']

qmpish = st.lists(st.sampled_from(PIECES), max_size=50).map(b"".join) | st.binary(max_size=80)


def run(chunks: list[bytes]) -> list[bytes]:
    s = Session(QEMU_VERSION)
    out: list[bytes] = []
    for c in chunks:
        items = s.feed(c)
        while True:
            for it in items:
                if isinstance(it, Request):
                    out.append(execute(s, it))
                else:
                    out.append(it)
            if not s.has_pending:
                break
            items = s.feed(b"")
    return out


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    parts, last = [], 0
    for p in points:
        parts.append(data[last:p])
        last = p
    parts.append(data[last:])
    return parts


def well_formed(reply: bytes) -> None:
    assert reply.endswith(b"\r\n") and b"\n" not in reply[:-2] and b"\r" not in reply[:-2]
    reply.decode("ascii")
    [item] = JSONStreamParser().feed(reply)
    assert isinstance(item, ParsedValue)
    msg = item.value
    assert isinstance(msg, dict)
    if "error" in msg:
        assert set(msg) <= {"id", "error"}
        assert set(msg["error"]) == {"class", "desc"}
        assert isinstance(msg["error"]["desc"], str) and msg["error"]["desc"]
    else:
        assert set(msg) <= {"id", "return"} and "return" in msg


@settings(max_examples=300)
@given(qmpish, st.lists(st.integers(0, 10000), max_size=6))
def test_random_input_gives_well_formed_replies_however_split(data, cuts):
    whole = run([data])
    for r in whole:
        well_formed(r)
    assert run(split(data, cuts)) == whole
    assert run([data[i:i + 1] for i in range(len(data))]) == whole


class _Exact(JSONStreamParser):
    """The parser with both fast paths off: pure json_lexer_feed_char()."""

    def _fast_message(self, data: bytes, text: str, i: int) -> int:
        return 0

    def _fast_token(self, data: bytes, i: int, c: int) -> int:
        return 0


# Text QEMU accepts in strings: no noncharacters (U+FDD0..U+FDEF, U+xFFFE/F),
# which it refuses ("... is not a valid Unicode character"; test_splitter).
def _text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(max_size=max_size).map(lambda s: _NONCHAR.sub("", s))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text(6),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_text(4), kids, max_size=4),
    max_leaves=20)


def _texts(v) -> bytes:
    return json.dumps(v, ensure_ascii=True).encode()


class _ScannerOnly(JSONStreamParser):
    """The parser without the orjson line path (stdlib scanner + exact)."""

    def _orjson_line(self, data: bytes, i: int) -> int:
        return 0


@settings(max_examples=300)
@given(st.lists(json_values.map(_texts) | qmpish, max_size=4),
       st.sampled_from([b" ", b"\n", b"\r\n", b""]))
def test_fast_paths_agree_with_the_exact_lexer(parts, sep):
    data = sep.join(parts) + b" "
    exact = _norm(_Exact().feed(data))
    assert _norm(JSONStreamParser().feed(data)) == exact
    assert _norm(_ScannerOnly().feed(data)) == exact


@settings(max_examples=300)
@given(st.lists(json_values.map(_texts), min_size=1, max_size=4))
def test_orjson_lines_agree_with_the_exact_lexer(parts):
    # one value per line is the case the orjson path takes; "0e5"-style
    # numbers, duplicate keys and big integers must not slip through
    data = b"\n".join(p.replace(b"1e", b"0e").replace(b'"b"', b'"a"') for p in parts) + b"\n"
    assert _norm(JSONStreamParser().feed(data)) == _norm(_Exact().feed(data))


def _norm(items: list[ParsedValue | ParseError]) -> str:
    # NaN-free, but -0.0 vs 0 and int vs float must be told apart
    return repr([(type(i).__name__, i.desc if isinstance(i, ParseError) else _typed(i.value))
                 for i in items])


def _typed(v):
    if isinstance(v, dict):
        return ("dict", [(k, _typed(x)) for k, x in v.items()])
    if isinstance(v, list):
        return ("list", [_typed(x) for x in v])
    return (type(v).__name__, repr(v))


@given(json_values)
def test_valid_json_parses_to_the_same_value(v):
    [item] = JSONStreamParser().feed(_texts(v) + b" ")
    assert isinstance(item, ParsedValue)
    assert _typed(item.value) == _typed(_qemu_numbers(v))


def _qemu_numbers(v):
    # QEMU keeps integers in int64/uint64 and makes others doubles
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int):
        return v if -(2**63) <= v < 2**64 else float(v)
    if isinstance(v, list):
        return [_qemu_numbers(x) for x in v]
    if isinstance(v, dict):
        return {k: _qemu_numbers(x) for k, x in v.items()}
    return v


numbers = st.from_regex(rb"-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,30})?([eE][-+]?[0-9]{1,3})?",
                        fullmatch=True)


@settings(max_examples=500)
@given(st.lists(numbers, min_size=1, max_size=5))
def test_number_conversion_is_the_same_on_every_path(nums):
    # orjson, the stdlib scanner and float()/int() must agree with strtod()
    data = b'{"id": [' + b", ".join(nums) + b"]}\n"
    exact = _norm(_Exact().feed(data))
    assert _norm(JSONStreamParser().feed(data)) == exact
    assert _norm(_ScannerOnly().feed(data)) == exact
