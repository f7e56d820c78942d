"""Output encoding (reference §0): what QEMU's JSON writer puts on the wire."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qmpd.protocol.encode import dumps, encode_event, encode_message, key_order, tdb_hash


def reference_dumps(o):
    """The re-implementation printed in reference §0.2, kept verbatim-in-spirit
    as an independent oracle for the optimized encoder."""
    if o is None:
        return "null"
    if o is True:
        return "true"
    if o is False:
        return "false"
    if isinstance(o, int):
        return str(o)
    if isinstance(o, float):
        return ("inf" if o > 0 else "-inf") if math.isinf(o) else "%.17g" % o  # noqa: UP031
    if isinstance(o, str):
        out = ['"']
        for ch in o:
            cp = ord(ch)
            if ch in '"\\':
                out.append("\\" + ch)
            elif ch in "\b\f\n\r\t":
                out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
            elif cp > 0xFFFF:
                cp -= 0x10000
                out.append("\\u%04X\\u%04X" % (0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF)))  # noqa: UP031
            elif cp < 0x20 or cp >= 0x7F:
                out.append("\\u%04X" % cp)  # noqa: UP031
            else:
                out.append(ch)
        return "".join(out) + '"'
    if isinstance(o, list):
        return "[" + ", ".join(map(reference_dumps, o)) + "]"
    pos = {k: i for i, k in enumerate(o)}
    keys = sorted(o, key=lambda k: (tdb_hash(k) % 512, -pos[k]))
    return "{" + ", ".join(reference_dumps(k) + ": " + reference_dumps(o[k]) for k in keys) + "}"


def test_framing_is_one_line_with_crlf():
    assert encode_message({"return": {}}) == b'{"return": {}}\r\n'
    assert encode_message({"return": []}) == b'{"return": []}\r\n'


@pytest.mark.parametrize("value, wire", [
    ("é", '"\\u00E9"'),
    ("\x7f", '"\\u007F"'),
    ("\U0001F600", '"\\uD83D\\uDE00"'),
    ("a/b", '"a/b"'),
    ('q"b\\', '"q\\"b\\\\"'),
    ("\b\f\n\r\t", '"\\b\\f\\n\\r\\t"'),
    ("\x00\x01\x1f", '"\\u0000\\u0001\\u001F"'),
    ("\\u00e9", '"\\\\u00e9"'),
    ("\ufffd\uffff", '"\\uFFFD\\uFFFF"'),
])
def test_string_escapes(value, wire):
    assert dumps(value) == wire


@pytest.mark.parametrize("value, wire", [
    (0.1, "0.10000000000000001"),
    (1.0, "1"),
    (1e5, "100000"),
    (1e17, "1e+17"),
    (-1.5e-7, "-1.4999999999999999e-07"),
    (float("inf"), "inf"),
    (float("-inf"), "-inf"),
    (-0.0, "-0"),
    (18446744073709551615, "18446744073709551615"),
    (-9223372036854775808, "-9223372036854775808"),
    (True, "true"),
    (False, "false"),
    (None, "null"),
])
def test_scalars(value, wire):
    assert dumps(value) == wire


def test_reference_key_orders():
    # §0.2 examples, dicts built in QAPI schema order
    assert dumps({"qemu": {"major": 7, "minor": 2, "micro": 22}, "package": "p"}) == \
        '{"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "p"}'
    assert dumps({"return": {}, "id": 1}) == '{"return": {}, "id": 1}'
    assert dumps({"error": {"class": "GenericError", "desc": "d"}, "id": 1}) == \
        '{"id": 1, "error": {"class": "GenericError", "desc": "d"}}'
    assert dumps({"running": True, "singlestep": False, "status": "running"}) == \
        '{"status": "running", "singlestep": false, "running": true}'
    assert dumps({"b": 1, "a": [1, 2]}) == '{"a": [1, 2], "b": 1}'
    # envelope buckets quoted in §1.4
    assert [tdb_hash(k) % 512 for k in ("exec-oob", "execute", "arguments", "id", "foo")] == \
        [162, 299, 447, 486, 490]


def test_same_bucket_most_recent_first():
    # micro and minor share a bucket: the later insertion comes first
    assert key_order(["minor", "micro"]) == ["micro", "minor"]
    assert key_order(["micro", "minor"]) == ["minor", "micro"]


def test_events():
    assert encode_event("STOP", None, (1795594047, 659099)) == \
        b'{"timestamp": {"seconds": 1795594047, "microseconds": 659099}, "event": "STOP"}\r\n'
    assert encode_event("SHUTDOWN", {"guest": False, "reason": "host-qmp-quit"}, (1, 2)) == (
        b'{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", '
        b'"data": {"guest": false, "reason": "host-qmp-quit"}}\r\n')
    assert encode_event("X", {}, (-1, -1)) == \
        b'{"timestamp": {"seconds": -1, "microseconds": -1}, "event": "X", "data": {}}\r\n'


def test_deep_nesting_beyond_python_recursion():
    v: list = []
    for _ in range(5000):
        v = [v]
    assert dumps(v) == "[" * 5001 + "]" * 5001
    d: dict = {}
    for _ in range(3000):
        d = {"b": 1, "a": d}
    s = dumps(d)
    assert s.startswith('{"a": {"a": ') and s.endswith("}, \"b\": 1}")


def test_tuples_and_subclasses_encode_like_their_base():
    import enum

    class Color(enum.StrEnum):
        RED = "red"

    assert dumps((1, "a")) == '[1, "a"]'
    assert dumps(Color.RED) == '"red"'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False) | st.text(),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(st.text(max_size=8), kids, max_size=5),
    max_leaves=30)


@given(json_values)
def test_matches_reference_implementation(v):
    assert dumps(v) == reference_dumps(v)


@given(json_values)
def test_output_is_ascii_and_roundtrips(v):
    s = dumps(v)
    s.encode("ascii")
    if "inf" not in s:  # QEMU prints inf, which is not JSON
        assert json.loads(s) == v
