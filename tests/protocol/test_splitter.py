"""The streaming JSON parser (QEMU 7.2 json-lexer.c / json-streamer.c / json-parser.c)."""

from __future__ import annotations

import pytest

from qmpd.protocol import splitter
from qmpd.protocol.splitter import JSONStreamParser, ParsedValue, ParseError, c_string_to_str


def parse(*chunks: bytes) -> list:
    p = JSONStreamParser()
    out = []
    for c in chunks:
        out.extend(p.feed(c))
    return out


def bytewise(data: bytes) -> list:
    p = JSONStreamParser()
    out = []
    for i in range(len(data)):
        out.extend(p.feed(data[i:i + 1]))
    return out


def E(text: str) -> ParseError:
    return ParseError("JSON parse error, " + text)


def V(value) -> ParsedValue:
    return ParsedValue(value)


CASES = [
    # (input, expected items)
    (b'{"execute":"query-version","id":1}{"execute":"query-status","id":"two"}\n',
     [V({"execute": "query-version", "id": 1}), V({"execute": "query-status", "id": "two"})]),
    (b'{"execute":\n"query-version",\n"id":3.5}', [V({"execute": "query-version", "id": 3.5})]),
    (b"[1,2]", [V([1, 2])]),
    (b'"hello"', [V("hello")]),
    (b"{}", [V({})]),
    (b'{"execute": query-version}', [E("stray '-v'"), E("expecting value")]),
    (b"garbage ", [E("invalid keyword 'garbage'")]),
    (b'{"execute":"query-version",}', [E("expecting value")]),
    (b'{"id": tru}', [E("invalid keyword 'tru'")]),
    (b'{"id": [1,]}', [E("expecting value")]),
    (b'{"execute":"q", "id" 1}', [E("missing : in object pair")]),
    (b'{"execute":"q", 1: 1}', [E("key is not a string in object")]),
    (b'{"id": "\\x"}', [E("invalid escape sequence in string")]),
    (b'{"id": "\\ud800"}', [E("\\ud800 is not a valid Unicode character")]),
    (b'{"id": "\xc3"}', [E("invalid UTF-8 sequence in string")]),
    (b'{"id": "\x01"}', [E("stray '\"\x01'"), E("expecting value")]),
    (b'{"id": 07}', [E("stray '07'"), E("expecting value")]),
    (b'{"id": %d}', [E("stray '%'"), E("expecting value")]),
    (b'{"id":17}}', [V({"id": 17}), E("expecting value")]),
    (b"{'execute': 'query-version'}", [V({"execute": "query-version"})]),
    (b"'sq\"x' ", [V('sq"x')]),
    (b"'it\\'s'", [V("it's")]),
    (b'{"a":1,"a":2}', [E("duplicate key")]),
    (b'\xff{"a":1}', [ParseError("JSON parse error, stray '\ufffd'"), V({"a": 1})]),
    (b'"\xc0\x80"', [V("\x00")]),
    (b'"\\/"', [V("/")]),
    (b'[1e400, -0, -0.0, 18446744073709551615, 18446744073709551616, -9223372036854775809]',
     [V([float("inf"), 0, -0.0, 18446744073709551615, 1.8446744073709552e19,
         -9.223372036854775808e18])]),
]


@pytest.mark.parametrize("data, expected", CASES, ids=[repr(c[0][:40]) for c in CASES])
def test_reference_rows(data, expected):
    assert parse(data) == expected
    # a partial feed never changes the result
    assert bytewise(data) == expected


def test_scalar_waits_for_terminator():
    p = JSONStreamParser()
    assert p.feed(b"42") == []
    assert p.feed(b"{") == [V(42)]
    assert p.feed(b"}") == [V({})]


def test_string_completes_at_closing_quote():
    assert parse(b'"x"') == [V("x")]


def test_split_command_completes_once():
    p = JSONStreamParser()
    assert p.feed(b'{"execute":') == []
    assert p.feed(b'"x"') == []
    assert p.feed(b"}") == [V({"execute": "x"})]


def test_unbalanced_open_swallows_later_lines():
    p = JSONStreamParser()
    # "bad" and "json" are keywords: the parser only runs once braces balance
    assert p.feed(b'{bad json\n{"execute":"x"}\n') == []
    assert p.feed(b"}") == [E("invalid keyword 'bad'")]


def test_nesting_limit_and_following_strays():
    ok = b"[" * 1024 + b"]" * 1024
    [item] = parse(ok)
    assert isinstance(item, ParsedValue)
    bad = parse(b"[" * 1025 + b"]" * 1025)
    assert bad[0] == ParseError("JSON nesting depth limit exceeded")
    assert bad[1:] == [E("expecting value")] * 1025


def test_stray_close_ends_the_message_at_once():
    # recorded from QEMU 7.2 (case bracket-brace-typo): "[}" fails right away
    p = JSONStreamParser()
    assert p.feed(b"[}") == [E("expecting value")]
    assert p.feed(b'{"a":1}') == [V({"a": 1})]
    assert p.feed(b"]") == [E("expecting value")]
    assert parse(b"{]") == [E("expecting value")]


def test_token_limits_small(monkeypatch):
    monkeypatch.setattr(splitter, "MAX_TOKEN_COUNT", 10)
    assert parse(b"[1,2,3,4]") == [V([1, 2, 3, 4])]  # 9 tokens
    # the 11th token is refused; the streamer starts afresh after it
    assert parse(b"[1,2,3,4,5]") == [ParseError("JSON token count limit exceeded")]
    # here the 11th token is the "," after 5; then 6 stands alone
    assert parse(b"[1,2,3,4,5,6]{}") == [ParseError("JSON token count limit exceeded"),
                                         V(6), E("expecting value"), V({})]


def test_token_size_limit_small(monkeypatch):
    monkeypatch.setattr(splitter, "MAX_TOKEN_SIZE", 16)
    # a token longer than the limit is cut by the lexer, then refused
    got = parse(b'"' + b"a" * 20 + b' {"a":1}')
    assert got == [ParseError("JSON token size limit exceeded"), E("invalid keyword 'aaaa'"),
                   V({"a": 1})]
    # the streamer also limits the sum of a message's tokens
    got = parse(b'["aaaaaa","bbbbbb"] {}')
    assert got == [ParseError("JSON token size limit exceeded"), E("expecting value"), V({})]


def test_long_error_message_is_cut_like_vsnprintf():
    [err] = parse(b"a" * 2000 + b" ")
    assert err == E("invalid keyword '" + "a" * (1023 - len("invalid keyword '")))


@pytest.mark.parametrize("data, desc", [
    (b'"\\u12"', "\\u12\" is not a valid Unicode character"),
    (b'"\\uD83D\\u0041"', "\\uD83D is not a valid Unicode character"),
    (b'"\\uDBFF\\uDFFF"', "\\uDBFF\\uDFFF is not a valid Unicode character"),
    (b'"\\uFFFE"', "\\uFFFE is not a valid Unicode character"),
    (b'"\\uFDD0"', "\\uFDD0 is not a valid Unicode character"),
    (b'"\xef\xbf\xbe"', "invalid UTF-8 sequence in string"),
    (b'"\xe0\x80\xaf"', "invalid UTF-8 sequence in string"),
    (b'"\xed\xa0\x80"', "invalid UTF-8 sequence in string"),
    (b'"\xc3\\q"', "invalid UTF-8 sequence in string"),
    (b'"\\\xc3\xa9"', "invalid escape sequence in string"),
])
def test_string_errors(data, desc):
    assert parse(data) == [E(desc)]
    assert bytewise(data) == [E(desc)]


def test_valid_unicode():
    assert parse(b'"\\uD83D\\uDE00\xc3\xa9\\u0000"') == [V("\U0001F600é\x00")]


def test_c_string_to_str():
    assert c_string_to_str(b"ab\x00cd") == "ab"
    assert c_string_to_str(b"\xff") == "\ufffd"
    assert c_string_to_str(b"\xc3 x") == "\ufffd x"
    assert c_string_to_str(b"\xc0\x80\xc3\xa9") == "\x00é"
