"""QEMU 7.2's streaming JSON input: lexer, streamer and parser, without I/O.

QMP input is not line based.  QEMU feeds every received byte to a lexer
(qobject/json-lexer.c) whose tokens go to a "streamer" (json-streamer.c) that
counts braces and brackets and hands the collected tokens to the parser
(json-parser.c) as soon as they balance.  Each parsed value or error becomes
one reply.  :class:`JSONStreamParser` reproduces all three exactly, including
the QEMU extensions (single-quoted strings, ``\\'``), modified UTF-8
(``\\xC0\\x80`` is U+0000), the error recovery after a lexical error, the
limits (64 MiB tokens, 2M tokens, nesting 1024) and every error text.

Two accelerations sit in front of the byte-exact machinery, and only take
inputs on which they provably agree with it:

* when nothing is pending and the chunk is pure ASCII without ``\\u``
  escapes, a whole ``{...}``/``[...]`` message is parsed by orjson (when it
  fills the rest of its line) or else by the stdlib's C JSON scanner
  (``scan_once``), with checks that reject what QEMU treats differently
  (duplicate keys, ``NaN``, ``0e5``) and integers mapped the way QEMU does.
  Anything they refuse goes the exact way;
* the exact lexer takes complete, unambiguous tokens with one regex match and
  runs of string/whitespace bytes in one step, instead of byte by byte.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["JSONStreamParser", "ParsedValue", "ParseError", "c_string_to_str",
           "MAX_TOKEN_SIZE", "MAX_TOKEN_COUNT", "MAX_NESTING"]

# json-lexer.c / json-streamer.c limits.  Module globals so tests can shrink them.
MAX_TOKEN_SIZE = 64 << 20
MAX_TOKEN_COUNT = 2 << 20
MAX_NESTING = 1 << 10


@dataclass(slots=True)
class ParsedValue:
    """A complete JSON value (any type; the session checks it is an object)."""

    value: Any


@dataclass(slots=True)
class ParseError:
    """A parse error; ``desc`` is the exact text QEMU reports, as a decoded string."""

    desc: str


# ---------------------------------------------------------------------------
# Lexer table: a transcription of json_lexer[][] in QEMU 7.2 json-lexer.c.

JSON_ERROR = 0
IN_RECOVERY = 1
IN_DQ_STRING_ESCAPE = 2
IN_DQ_STRING = 3
IN_SQ_STRING_ESCAPE = 4
IN_SQ_STRING = 5
IN_ZERO = 6
IN_EXP_DIGITS = 7
IN_EXP_SIGN = 8
IN_EXP_E = 9
IN_MANTISSA = 10
IN_MANTISSA_DIGITS = 11
IN_DIGITS = 12
IN_SIGN = 13
IN_KEYWORD = 14
IN_INTERP = 15
IN_START = 16

JSON_LCURLY = 100
JSON_RCURLY = 101
JSON_LSQUARE = 102
JSON_RSQUARE = 103
JSON_COLON = 104
JSON_COMMA = 105
JSON_INTEGER = 106
JSON_FLOAT = 107
JSON_KEYWORD = 108
JSON_STRING = 109

_TOKEN_TYPES = frozenset(range(JSON_LCURLY, JSON_STRING + 1))
# Lexer states that end with something for the parser: a token or an error.
_EMITTING = _TOKEN_TYPES | {JSON_ERROR}
LOOKAHEAD = 0x80


def _build_table() -> list[list[int]]:
    t = [[JSON_ERROR] * 256 for _ in range(IN_START + 1)]

    def setr(state: int, lo: int, hi: int, val: int) -> None:
        for c in range(lo, hi + 1):
            t[state][c] = val

    def terminal(state: int, tok: int) -> None:
        setr(state, 0, 0xFF, tok | LOOKAHEAD)

    digits = (ord("0"), ord("9"))

    # error recovery: skip to a structural character, a control character
    # other than TAB, or an impossible UTF-8 byte
    setr(IN_RECOVERY, 0, 0x1F, IN_START | LOOKAHEAD)
    setr(IN_RECOVERY, 0x20, 0xFD, IN_RECOVERY)
    setr(IN_RECOVERY, 0xFE, 0xFF, IN_START | LOOKAHEAD)
    t[IN_RECOVERY][ord("\t")] = IN_RECOVERY
    for ch in "[]{}:,":
        t[IN_RECOVERY][ord(ch)] = IN_START | LOOKAHEAD

    for esc, string, quote in ((IN_DQ_STRING_ESCAPE, IN_DQ_STRING, '"'),
                               (IN_SQ_STRING_ESCAPE, IN_SQ_STRING, "'")):
        setr(esc, 0x20, 0xFD, string)
        setr(string, 0x20, 0xFD, string)
        t[string][ord("\\")] = esc
        t[string][ord(quote)] = JSON_STRING

    terminal(IN_ZERO, JSON_INTEGER)
    setr(IN_ZERO, *digits, JSON_ERROR)
    t[IN_ZERO][ord(".")] = IN_MANTISSA

    terminal(IN_EXP_DIGITS, JSON_FLOAT)
    setr(IN_EXP_DIGITS, *digits, IN_EXP_DIGITS)

    setr(IN_EXP_SIGN, *digits, IN_EXP_DIGITS)

    t[IN_EXP_E][ord("-")] = IN_EXP_SIGN
    t[IN_EXP_E][ord("+")] = IN_EXP_SIGN
    setr(IN_EXP_E, *digits, IN_EXP_DIGITS)

    terminal(IN_MANTISSA_DIGITS, JSON_FLOAT)
    setr(IN_MANTISSA_DIGITS, *digits, IN_MANTISSA_DIGITS)
    t[IN_MANTISSA_DIGITS][ord("e")] = IN_EXP_E
    t[IN_MANTISSA_DIGITS][ord("E")] = IN_EXP_E

    setr(IN_MANTISSA, *digits, IN_MANTISSA_DIGITS)

    terminal(IN_DIGITS, JSON_INTEGER)
    setr(IN_DIGITS, *digits, IN_DIGITS)
    t[IN_DIGITS][ord("e")] = IN_EXP_E
    t[IN_DIGITS][ord("E")] = IN_EXP_E
    t[IN_DIGITS][ord(".")] = IN_MANTISSA

    t[IN_SIGN][ord("0")] = IN_ZERO
    setr(IN_SIGN, ord("1"), ord("9"), IN_DIGITS)

    terminal(IN_KEYWORD, JSON_KEYWORD)
    setr(IN_KEYWORD, ord("a"), ord("z"), IN_KEYWORD)

    # IN_INTERP is unreachable: QMP never enables interpolation.
    s = t[IN_START]
    s[ord('"')] = IN_DQ_STRING
    s[ord("'")] = IN_SQ_STRING
    s[ord("0")] = IN_ZERO
    setr(IN_START, ord("1"), ord("9"), IN_DIGITS)
    s[ord("-")] = IN_SIGN
    s[ord("{")] = JSON_LCURLY
    s[ord("}")] = JSON_RCURLY
    s[ord("[")] = JSON_LSQUARE
    s[ord("]")] = JSON_RSQUARE
    s[ord(",")] = JSON_COMMA
    s[ord(":")] = JSON_COLON
    setr(IN_START, ord("a"), ord("z"), IN_KEYWORD)
    for ch in " \t\r\n":
        s[ord(ch)] = IN_START
    return t


_TABLE = _build_table()

# Runs of bytes that leave a state unchanged (consumed, no token emitted).
_RUNS: dict[int, re.Pattern[bytes]] = {
    IN_DQ_STRING: re.compile(rb'[\x20\x21\x23-\x5b\x5d-\xfd]+'),
    IN_SQ_STRING: re.compile(rb"[\x20-\x26\x28-\x5b\x5d-\xfd]+"),
    IN_RECOVERY: re.compile(rb"[\t\x20-\x2b\x2d-\x39\x3b-\x5a\x5c\x5e-\x7a\x7c\x7e-\xfd]+"),
    IN_KEYWORD: re.compile(rb"[a-z]+"),
    IN_DIGITS: re.compile(rb"[0-9]+"),
    IN_MANTISSA_DIGITS: re.compile(rb"[0-9]+"),
    IN_EXP_DIGITS: re.compile(rb"[0-9]+"),
}
# Runs whose bytes are not kept in the token.
_SKIP_RUN_STATES = frozenset((IN_RECOVERY,))

_PUNCT = {ord("{"): (JSON_LCURLY, b"{"), ord("}"): (JSON_RCURLY, b"}"),
          ord("["): (JSON_LSQUARE, b"["), ord("]"): (JSON_RSQUARE, b"]"),
          ord(":"): (JSON_COLON, b":"), ord(","): (JSON_COMMA, b",")}
_WS = re.compile(rb"[ \t\r\n]+")
# Complete string tokens as json-lexer.c sees them (escapes checked later).
# (Unrolled "run (escape run)*" form: a plain character class loop is much
# faster in the re engine than an alternation per byte.)
_DQ_TOKEN = re.compile(rb'"[\x20\x21\x23-\x5b\x5d-\xfd]*'
                       rb'(?:\\[\x20-\xfd][\x20\x21\x23-\x5b\x5d-\xfd]*)*"')
_SQ_TOKEN = re.compile(rb"'[\x20-\x26\x28-\x5b\x5d-\xfd]*"
                       rb"(?:\\[\x20-\xfd][\x20-\x26\x28-\x5b\x5d-\xfd]*)*'")
# A number token; the zero branch takes no exponent, like IN_ZERO.
_NUMBER = re.compile(rb"-?(?:0(?:\.[0-9]+(?:[eE][-+]?[0-9]+)?)?"
                     rb"|[1-9][0-9]*(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)")
_KEYWORD = re.compile(rb"[a-z]+")
# Bytes after a number match that could still continue it (or turn it into an
# error): such matches are left to the byte-exact lexer.
_NUMBER_CONT = frozenset(b"0123456789.eE")
_DIGIT_START = frozenset(b"-0123456789")
_KEYWORD_START = frozenset(b"abcdefghijklmnopqrstuvwxyz")
_WS_BYTES = frozenset(b" \t\r\n")


# ---------------------------------------------------------------------------
# Modified UTF-8 (util/unicode.c)

_MIN_CP = (0x80, 0x800, 0x10000, 0x200000, 0x4000000)


def _valid_codepoint(cp: int) -> bool:
    if cp > 0x10FFFF:
        return False
    if 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE:
        return False  # noncharacter (and -1)
    if 0xD800 <= cp <= 0xDFFF:
        return False  # surrogate
    return True


def _mod_utf8_codepoint(s: bytes, i: int) -> tuple[int, int]:
    """mod_utf8_codepoint(s + i, 6, &end) on a NUL-terminated ``s``:
    (code point or -1, end index)."""
    n = len(s)
    byte = s[i] if i < n else 0
    if byte == 0:
        return -1, i
    p = i + 1
    if byte < 0x80:
        return byte, p
    if byte >= 0xFE or not byte & 0x40:
        return -1, p
    length = 0
    mask = 0x80
    while byte & mask:
        length += 1
        mask >>= 1
    cp = byte & (mask - 1)
    for _ in range(1, length):
        b = s[p] if p < n else 0
        if b & 0xC0 != 0x80:
            return -1, p
        p += 1
        cp = (cp << 6) | (b & 0x3F)
    if not _valid_codepoint(cp):
        return -1, p
    if cp < _MIN_CP[length - 2] and not (cp == 0 and length == 2):
        return -1, p  # overlong, except \xC0\x80
    return cp, p


def c_string_to_str(b: bytes) -> str:
    """How QEMU's JSON writer renders the C string ``b``: it stops at the
    first NUL and turns each invalid modified UTF-8 sequence into U+FFFD."""
    nul = b.find(b"\0")
    if nul >= 0:
        b = b[:nul]
    if b.isascii():
        return b.decode("ascii")
    out = []
    i = 0
    n = len(b)
    while i < n:
        cp, i = _mod_utf8_codepoint(b, i)
        out.append(chr(0xFFFD if cp < 0 else cp))
    return "".join(out)


_NONCHAR = re.compile("[\ufdd0-\ufdef\ufffe\uffff\U0001fffe\U0001ffff\U0002fffe\U0002ffff"
                      "\U0003fffe\U0003ffff\U0004fffe\U0004ffff\U0005fffe\U0005ffff"
                      "\U0006fffe\U0006ffff\U0007fffe\U0007ffff\U0008fffe\U0008ffff"
                      "\U0009fffe\U0009ffff\U000afffe\U000affff\U000bfffe\U000bffff"
                      "\U000cfffe\U000cffff\U000dfffe\U000dffff\U000efffe\U000effff"
                      "\U000ffffe\U000fffff\U0010fffe\U0010ffff]")


def _decode_segment(seg: bytes) -> str | None:
    """Decode a run of string bytes without backslashes the way
    parse_string() does (mod_utf8_codepoint per character); None if any
    sequence is invalid."""
    if seg.isascii():
        return seg.decode("ascii")
    # Python's strict UTF-8 rejects exactly what mod_utf8_codepoint rejects
    # (overlong, surrogates, beyond U+10FFFF, 5/6-byte forms) except that it
    # refuses \xC0\x80 and accepts noncharacters.  Any error gives the same
    # message, so only "is there one" matters.
    try:
        s = seg.replace(b"\xc0\x80", b"\x00").decode("utf-8")
    except UnicodeDecodeError:
        return None
    if _NONCHAR.search(s):
        return None
    return s


class _ParseFailure(Exception):
    def __init__(self, msg: bytes) -> None:
        super().__init__(msg)
        self.msg = msg


def _perror(msg: bytes) -> _ParseFailure:
    # parse_error() formats into a 1024-byte buffer: long texts are cut.
    return _ParseFailure(msg[:1023])


_HEX = frozenset(b"0123456789abcdefABCDEF")


def _cvt4hex(s: bytes, i: int) -> int:
    cp = 0
    for k in range(4):
        c = s[i + k]
        if c not in _HEX:
            return -1
        cp = (cp << 4) | int(chr(c), 16)
    return cp


_SIMPLE_ESC = {ord('"'): '"', ord("'"): "'", ord("\\"): "\\", ord("/"): "/",
               ord("b"): "\b", ord("f"): "\f", ord("n"): "\n", ord("r"): "\r",
               ord("t"): "\t"}


def _parse_string(tok: bytes) -> str:
    """parse_string() of json-parser.c on a complete string token."""
    quote = tok[0]
    body = tok[1:-1]
    if 0x5C not in body:  # no backslash
        s = _decode_segment(body)
        if s is None:
            raise _perror(b"invalid UTF-8 sequence in string")
        return s
    # NUL-terminated, padded: cvt4hex() may look past the closing quote.
    buf = tok + b"\0" * 12
    out: list[str] = []
    ptr = 1
    while buf[ptr] != quote:
        bs = buf.find(b"\\", ptr, len(tok) - 1)
        end = len(tok) - 1 if bs < 0 else bs
        if end > ptr:
            s = _decode_segment(buf[ptr:end])
            if s is None:
                raise _perror(b"invalid UTF-8 sequence in string")
            out.append(s)
            ptr = end
            continue
        # escape sequence at ptr
        beg = ptr
        ptr += 1
        c = buf[ptr]
        ptr += 1
        simple = _SIMPLE_ESC.get(c)
        if simple is not None:
            out.append(simple)
            continue
        if c != ord("u"):
            raise _perror(b"invalid escape sequence in string")
        cp = _cvt4hex(buf, ptr)
        ptr += 4
        if 0xD800 <= cp <= 0xDBFF and buf[ptr] == 0x5C and buf[ptr + 1] == ord("u"):
            cp = 0x10000 + ((cp & 0x3FF) << 10)
            trailing = _cvt4hex(buf, ptr + 2)
            if 0xDC00 <= trailing <= 0xDFFF:
                cp |= trailing & 0x3FF
                ptr += 6
            else:
                cp = -1
        if not _valid_codepoint(cp):
            text = buf[beg:ptr].split(b"\0", 1)[0]  # %.*s stops at NUL
            raise _perror(text + b" is not a valid Unicode character")
        out.append(chr(cp))
    return "".join(out)


_INT64_MIN = -(1 << 63)
_UINT64_MAX = (1 << 64) - 1


def _parse_integer(tok: bytes | str) -> int | float:
    """JSON_INTEGER as QEMU stores it: int64, else uint64, else double."""
    if len(tok) <= 18:
        return int(tok)
    if len(tok) <= 21:
        v = int(tok)
        if _INT64_MIN <= v <= _UINT64_MAX:
            return v
    return float(tok)


def _parse_tokens(tokens: list[tuple[int, bytes]]) -> Any:
    """json_parser_parse(): recursive descent over one message's tokens,
    written with an explicit stack (QEMU allows 1024 levels).  The first error
    wins and aborts, exactly as parse_error() keeps only the first one."""
    n = len(tokens)
    pos = 0
    # frames: [container, kind, pending key]; kind 0 = dict awaiting key,
    # 1 = dict awaiting value, 2 = list
    stack: list[list[Any]] = []
    eoi = b"premature EOI"
    while True:
        # parse_value()
        if pos >= n:
            raise _perror(eoi)
        typ, tok = tokens[pos]
        if typ == JSON_LCURLY or typ == JSON_LSQUARE:
            # parse_object() / parse_array(): empty, or a frame to fill.
            is_dict = typ == JSON_LCURLY
            pos += 1
            if pos >= n:
                raise _perror(eoi)
            value: Any = {} if is_dict else []
            if tokens[pos][0] == (JSON_RCURLY if is_dict else JSON_RSQUARE):
                pos += 1
            else:
                stack.append([value, 0 if is_dict else 2, None])
                continue
        elif typ == JSON_STRING:
            pos += 1
            value = _parse_string(tok)
        elif typ == JSON_INTEGER:
            pos += 1
            value = _parse_integer(tok)
        elif typ == JSON_FLOAT:
            pos += 1
            value = float(tok)
        elif typ == JSON_KEYWORD:
            pos += 1
            if tok == b"true":
                value = True
            elif tok == b"false":
                value = False
            elif tok == b"null":
                value = None
            else:
                raise _perror(b"invalid keyword '" + tok + b"'")
        else:
            raise _perror(b"expecting value")

        # hand the value to the enclosing container(s)
        while True:
            if not stack:
                return value
            frame = stack[-1]
            kind = frame[1]
            if kind == 0:  # parse_pair(), after the key
                if type(value) is not str:
                    raise _perror(b"key is not a string in object")
                if pos >= n:
                    raise _perror(eoi)
                typ = tokens[pos][0]
                pos += 1
                if typ != JSON_COLON:
                    raise _perror(b"missing : in object pair")
                frame[1] = 1
                frame[2] = value
                break  # parse the member value
            container = frame[0]
            if kind == 1:  # parse_pair(), after the value
                key = frame[2]
                if key in container:
                    raise _perror(b"duplicate key")
                container[key] = value
                close, separator_error = JSON_RCURLY, b"expected separator in dict"
            else:  # parse_array()
                container.append(value)
                close, separator_error = JSON_RSQUARE, b"expected separator in list"
            # Then a comma, or the end of the container.
            if pos >= n:
                raise _perror(eoi)
            typ = tokens[pos][0]
            pos += 1
            if typ == close:
                stack.pop()
                value = container
                continue
            if typ != JSON_COMMA:
                raise _perror(separator_error)
            if kind == 1:
                if pos >= n:  # parse_pair()'s peek
                    raise _perror(eoi)
                frame[1] = 0
            break


# ---------------------------------------------------------------------------
# Fast path: the stdlib C scanner on plain messages.

class _Reject(Exception):
    pass


def _fast_pairs(pairs: list[tuple[str, Any]]) -> dict:
    d = dict(pairs)
    if len(d) != len(pairs):
        raise _Reject("duplicate key")
    return d


def _fast_float(s: str) -> float:
    # Python takes "0e5" as one number; QEMU's lexer ends the number at "0".
    body = s[1:] if s[0] == "-" else s
    if body[0] == "0" and len(body) > 1 and body[1] in "eE":
        raise _Reject(s)
    return float(s)


def _fast_constant(s: str) -> Any:
    raise _Reject(s)  # NaN, Infinity: not JSON to QEMU


_DECODER = json.JSONDecoder(object_pairs_hook=_fast_pairs, parse_float=_fast_float,
                            parse_int=_parse_integer, parse_constant=_fast_constant)
_scan_once = _DECODER.scan_once  # (text, index) -> (value, end); StopIteration if none
_orjson_loads = orjson.loads
# "0" followed by an exponent: one number to orjson, two tokens to QEMU.
_ZERO_EXP = re.compile(rb"(?<![0-9.])0[eE]")


def _count_members(value: Any) -> int:
    """Total number of object members in ``value`` (no recursion: 1024 levels)."""
    n = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is dict:
            n += len(v)
            v = v.values()
        for x in v:
            t = type(x)
            if t is dict or t is list:
                stack.append(x)
    return n


# Longer messages take the exact path (they might reach the limits).
_FAST_MAX = 1 << 20


class JSONStreamParser:
    """Bytes in, parsed values and parse errors out, in input order."""

    def __init__(self) -> None:
        # lexer
        self._state = IN_START
        self._token = bytearray()
        # streamer
        self._tokens: list[tuple[int, bytes]] = []
        self._brace = 0
        self._bracket = 0
        self._token_size = 0
        self._out: list[ParsedValue | ParseError] = []

    @property
    def idle(self) -> bool:
        """True when no partial message or token is pending."""
        return self._state == IN_START and not self._tokens and not self._token

    def feed(self, data: bytes) -> list[ParsedValue | ParseError]:
        """Consume ``data``; return every value or error it completes."""
        out = self._out = []
        n = len(data)
        i = 0
        fast_ok = n > 0 and data.isascii() and b"\\u" not in data
        text = data.decode("ascii") if fast_ok else ""
        while i < n:
            if self._state == IN_START:
                c = data[i]
                if c in _WS_BYTES:
                    m = _WS.match(data, i)
                    assert m is not None
                    i = m.end()
                    continue
                if fast_ok and (c == 0x7B or c == 0x5B) and not self._tokens:
                    j = self._fast_message(data, text, i)
                    if j:
                        i = j
                        continue
                j = self._fast_token(data, i, c)
                if j:
                    i = j
                    continue
            i = self._slow(data, i)
        return out

    # -- message fast path ---------------------------------------------------

    def _fast_message(self, data: bytes, text: str, i: int) -> int:
        j = self._orjson_line(data, i)
        if j:
            return j
        try:
            value, end = _scan_once(text, i)
        except (StopIteration, ValueError, _Reject, RecursionError):
            return 0
        # Shorter than the limits, a message cannot have too many tokens or
        # bytes of tokens (every token is at least one byte).
        if end - i >= min(_FAST_MAX, MAX_TOKEN_COUNT, MAX_TOKEN_SIZE):
            return 0
        # Depth bound without walking the value: every level opens with a
        # bracket or brace somewhere in the text (strings may add more).
        if text.count("{", i, end) + text.count("[", i, end) > MAX_NESTING:
            return 0
        self._out.append(ParsedValue(value))
        return end

    def _orjson_line(self, data: bytes, i: int) -> int:
        """The common case, one message per line, parsed by orjson.

        If orjson accepts the rest of the line as one JSON value, QEMU's
        streamer would have ended the message exactly there too.  orjson maps
        integers like QEMU (int64/uint64, else double) but accepts "0e5" and
        keeps the last of duplicate keys: such texts are left to the others.
        """
        nl = data.find(b"\n", i)
        j = len(data) if nl < 0 else nl
        while j > i and data[j - 1] in _WS_BYTES:
            j -= 1
        if j - i >= min(_FAST_MAX, MAX_TOKEN_COUNT, MAX_TOKEN_SIZE):
            return 0
        cand = data[i:j]
        if (cand[-1] != (0x7D if cand[0] == 0x7B else 0x5D)
                or cand.count(b"{") + cand.count(b"[") > MAX_NESTING
                or ((b"0e" in cand or b"0E" in cand) and _ZERO_EXP.search(cand))):
            return 0
        try:
            value = _orjson_loads(cand)
        except (ValueError, RecursionError):
            return 0
        # Every member has a colon; colons inside strings only make this
        # check fail safe.
        if _count_members(value) != cand.count(b":"):
            return 0
        self._out.append(ParsedValue(value))
        return j

    # -- token fast path -----------------------------------------------------

    def _fast_token(self, data: bytes, i: int, c: int) -> int:
        """Lex one complete token at ``i`` (lexer in IN_START) when it is
        unambiguous; return the index after it, or 0 for the exact lexer."""
        p = _PUNCT.get(c)
        if p is not None:
            self._process(p[0], p[1])
            return i + 1
        if c == 0x22:
            m = _DQ_TOKEN.match(data, i)
        elif c == 0x27:
            m = _SQ_TOKEN.match(data, i)
        elif c in _DIGIT_START:
            m = _NUMBER.match(data, i)
            if m is None:
                return 0
            j = m.end()
            if j >= len(data) or data[j] in _NUMBER_CONT:
                return 0
            tok = m.group()
            typ = JSON_FLOAT if (b"." in tok or b"e" in tok or b"E" in tok) else JSON_INTEGER
            self._process(typ, tok)
            return j
        elif c in _KEYWORD_START:
            m = _KEYWORD.match(data, i)
            assert m is not None
            j = m.end()
            if j >= len(data) or j - i > MAX_TOKEN_SIZE:
                return 0
            self._process(JSON_KEYWORD, m.group())
            return j
        else:
            return 0
        if m is None or m.end() - i > MAX_TOKEN_SIZE:
            return 0
        self._process(JSON_STRING, m.group())
        return m.end()

    # -- exact lexer (json_lexer_feed_char) ----------------------------------

    def _slow(self, data: bytes, i: int) -> int:
        """Feed bytes from ``i`` one at a time (runs of bytes that keep the
        state in one step) until the lexer is back in IN_START or the data
        ends.  Returns the next index."""
        n = len(data)
        table = _TABLE
        token = self._token
        while i < n:
            state = self._state
            run = _RUNS.get(state)
            if run is not None:
                m = run.match(data, i)
                if m is not None:
                    j = m.end()
                    if state in _SKIP_RUN_STATES:
                        i = j
                        continue
                    room = MAX_TOKEN_SIZE + 1 - len(token)
                    if j - i >= room:
                        token += data[i:i + room]
                        i += room
                        self._overflow()
                        return i
                    token += data[i:j]
                    i = j
                    continue
            ch = data[i]
            i += 1
            consumed = False
            while not consumed:
                nxt = table[state][ch]
                consumed = not nxt & LOOKAHEAD
                new = nxt & ~LOOKAHEAD
                if consumed:
                    token.append(ch)
                if new in _EMITTING:
                    # A token (or an error) ends: hand it on, then start over,
                    # or recover after an error (json_lexer_feed_char).
                    tok = bytes(token)
                    token.clear()
                    self._process(new, tok)
                    new = IN_RECOVERY if new == JSON_ERROR else IN_START
                elif new == IN_START or new == IN_RECOVERY:
                    token.clear()
                state = new
            self._state = state
            if len(token) > MAX_TOKEN_SIZE:
                self._overflow()
                return i
            if state == IN_START:
                return i
        return i

    def _overflow(self) -> None:
        # The lexer hands the oversized partial token on with its *state* as
        # the type; the streamer then fails its size check.
        tok = bytes(self._token)
        self._token.clear()
        state = self._state
        self._state = IN_START
        self._process(state, tok)

    # -- streamer (json_message_process_token) -------------------------------

    def _process(self, typ: int, tok: bytes) -> None:
        if typ == JSON_LCURLY:
            self._brace += 1
        elif typ == JSON_RCURLY:
            self._brace -= 1
        elif typ == JSON_LSQUARE:
            self._bracket += 1
        elif typ == JSON_RSQUARE:
            self._bracket -= 1
        elif typ == JSON_ERROR:
            self._emit_error(b"JSON parse error, stray '" + tok.split(b"\0", 1)[0] + b"'")
            return
        if self._token_size + len(tok) + 1 > MAX_TOKEN_SIZE:
            self._emit_error(b"JSON token size limit exceeded")
            return
        if len(self._tokens) + 1 > MAX_TOKEN_COUNT:
            self._emit_error(b"JSON token count limit exceeded")
            return
        if self._bracket + self._brace > MAX_NESTING:
            self._emit_error(b"JSON nesting depth limit exceeded")
            return
        self._tokens.append((typ, tok))
        self._token_size += len(tok)
        # Wait while something is open and nothing was closed too often; a
        # stray close ends the message at once (and fails to parse).
        if (self._brace > 0 or self._bracket > 0) and self._brace >= 0 and self._bracket >= 0:
            return
        tokens = self._tokens
        self._reset()
        try:
            value = _parse_tokens(tokens)
        except _ParseFailure as e:
            self._out.append(ParseError(c_string_to_str(b"JSON parse error, " + e.msg)))
            return
        self._out.append(ParsedValue(value))

    def _emit_error(self, msg: bytes) -> None:
        self._reset()
        self._out.append(ParseError(c_string_to_str(msg)))

    def _reset(self) -> None:
        self._brace = 0
        self._bracket = 0
        self._tokens = []
        self._token_size = 0
