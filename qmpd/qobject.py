"""QEMU's QObject conventions: QDict iteration order and the JSON writer
(qobject/qdict.c + qobject/json-writer.c of QEMU 7.2), byte for byte.

A neutral module every layer may use: the protocol layer encodes every message
with :func:`dumps`, and the engine needs the same two things for what QEMU
shows of a node (``json:`` filenames are QDicts written as JSON, and option
checks walk a QDict in its hash order, :func:`key_order`).  What makes
:func:`dumps` differ from ``json.dumps``:

* object keys come out in QDict hash-table order: bucket ``tdb_hash(key) % 512``
  ascending, and inside one bucket the most recently inserted key first.  The
  Python dict's insertion order stands for QEMU's insertion order, so callers
  build dicts in QAPI schema member order;
* pure ASCII output, ``\\uXXXX`` escapes with UPPERCASE hex, DEL escaped, code
  points above U+FFFF as surrogate pairs, ``/`` not escaped;
* doubles printed with C ``%.17g`` (``inf`` and ``-inf`` included, which is not
  JSON but is what QEMU sends).

Speed matters (every reply and event is encoded here), so the key order is
computed once per tuple of keys and cached together with the ready-quoted
``"key": `` prefixes, and strings go through the C ASCII escaper of the stdlib
``json`` module when its output is identical.
"""

from __future__ import annotations

import math
import re
from json.encoder import encode_basestring_ascii as _c_quote_ascii
from typing import Any

__all__ = ["Preencoded", "dumps", "key_order", "quote", "tdb_hash"]

QDICT_BUCKET_MAX = 512

# Caches are bounded: keys of echoed "id" objects come from clients, and an
# unbounded cache would let a client grow the daemon's memory at will.
_CACHE_MAX = 8192


def tdb_hash(key: str) -> int:
    """QEMU's ``tdb_hash()`` (qobject/qdict.c) of ``key``.

    QEMU hashes the C string, i.e. the modified UTF-8 bytes: U+0000 is stored
    as ``\\xC0\\x80`` (the parser produces it that way), so no key is cut short.
    """
    b = key.encode("utf-8", "surrogatepass").replace(b"\x00", b"\xc0\x80")
    v = (0x238F13AF * len(b)) & 0xFFFFFFFF
    for i, c in enumerate(b):
        v = (v + (c << (i * 5 % 24))) & 0xFFFFFFFF
    return (1103515243 * v + 12345) & 0xFFFFFFFF


_bucket_cache: dict[str, int] = {}


def _bucket(key: str) -> int:
    b = _bucket_cache.get(key)
    if b is None:
        if len(_bucket_cache) >= _CACHE_MAX:
            _bucket_cache.clear()
        b = _bucket_cache[key] = tdb_hash(key) % QDICT_BUCKET_MAX
    return b


def key_order(keys: tuple[str, ...] | list[str]) -> list[str]:
    """The order in which QEMU iterates a QDict whose keys were inserted in
    the order given (qdict_first/qdict_next)."""
    idx = {k: i for i, k in enumerate(keys)}
    return sorted(keys, key=lambda k: (_bucket(k), -idx[k]))


# ---------------------------------------------------------------------------
# strings

# Everything json-writer.c's quoted_str() does not copy through verbatim.
_NEEDS_ESCAPE = re.compile('[\x00-\x1f"\\\\\x7f-\U0010ffff]')
_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
          "\r": "\\r", "\t": "\\t"}


def _escape_char(m: re.Match[str]) -> str:
    ch = m.group()
    s = _SHORT.get(ch)
    if s is not None:
        return s
    cp = ord(ch)
    if cp > 0xFFFF:
        cp -= 0x10000
        return f"\\u{0xD800 + (cp >> 10):04X}\\u{0xDC00 + (cp & 0x3FF):04X}"
    return f"\\u{cp:04X}"


def _quote_slow(s: str) -> str:
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, s) + '"'


def quote(s: str) -> str:
    """``s`` as a QEMU JSON string literal (json-writer.c quoted_str())."""
    # The stdlib's C escaper differs from QEMU only in writing \u escapes in
    # lowercase (it escapes DEL, uses the short forms and surrogate pairs
    # like QEMU), so its output is taken whenever it contains no \u.
    r = _c_quote_ascii(s)
    if "\\u" in r:
        return _quote_slow(s)
    return r


# ---------------------------------------------------------------------------
# values


class Preencoded:
    """A value already written as QEMU JSON text: the encoder copies ``text``.

    For large results that are encoded once and sent many times (the block
    queries' cache in :mod:`qmpd.commands.dispatch`).

    >>> dumps({"return": Preencoded('[{"a": 1}]'), "id": 7})
    '{"return": [{"a": 1}], "id": 7}'
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


# tuple(dict keys) -> [(key, '"key": '), ...] in QDict iteration order
_order_cache: dict[tuple[str, ...], list[tuple[str, str]]] = {}


def _dict_order(keys: tuple[str, ...]) -> list[tuple[str, str]]:
    order = _order_cache.get(keys)
    if order is None:
        if len(_order_cache) >= _CACHE_MAX:
            _order_cache.clear()
        order = _order_cache[keys] = [(k, quote(k) + ": ") for k in key_order(keys)]
    return order


def _float(o: float) -> str:
    if math.isinf(o):
        return "inf" if o > 0 else "-inf"
    if math.isnan(o):
        # glibc prints the sign of a NaN; QEMU never produces one from input.
        return "-nan" if math.copysign(1.0, o) < 0 else "nan"
    return f"{o:.17g}"  # C printf("%.17g")


def _enc(o: Any) -> str:
    t = type(o)
    if t is dict:
        keys = tuple(o)
        order = _order_cache.get(keys)
        if order is None:
            order = _dict_order(keys)
        parts = []
        append = parts.append
        # Leaves are encoded inline: a function call per value is the
        # largest cost of this encoder.
        for k, p in order:
            v = o[k]
            vt = type(v)
            if vt is str:
                r = _c_quote_ascii(v)
                append(p + (_quote_slow(v) if "\\u" in r else r))
            elif vt is int:
                append(p + int.__repr__(v))
            elif vt is bool:
                append(p + ("true" if v else "false"))
            else:
                append(p + _enc(v))
        return "{" + ", ".join(parts) + "}"
    if t is str:
        r = _c_quote_ascii(o)
        return _quote_slow(o) if "\\u" in r else r
    if t is int:
        return int.__repr__(o)
    if t is list or t is tuple:
        return "[" + ", ".join([_enc(v) for v in o]) + "]"
    if o is None:
        return "null"
    if o is True:
        return "true"
    if o is False:
        return "false"
    if t is float:
        return _float(o)
    return _enc_other(o)


def _enc_other(o: Any) -> str:
    if type(o) is Preencoded:
        return o.text
    # Subclasses (str/int enums, OrderedDict, ...) take the slow way.
    if isinstance(o, bool):
        return "true" if o else "false"
    if isinstance(o, str):
        return quote(str.__str__(o))
    if isinstance(o, int):
        return int.__repr__(o)
    if isinstance(o, float):
        return _float(float(o))
    if isinstance(o, dict):
        return _enc(dict(o))
    if isinstance(o, (list, tuple)):
        return _enc(list(o))
    raise TypeError(f"cannot encode {type(o).__name__} as QMP JSON")


def _enc_iterative(obj: Any) -> str:
    """Same output as _enc without recursion, for nesting deeper than the
    Python stack allows (QEMU accepts 1024 levels and echoes them in ids)."""
    out: list[str] = []
    # stack of iterators yielding the next piece of work
    stack: list[Any] = [iter([(None, obj)])]
    closers: list[str] = [""]
    first: list[bool] = [True]
    while stack:
        try:
            prefix, v = next(stack[-1])
        except StopIteration:
            stack.pop()
            out.append(closers.pop())
            first.pop()
            continue
        if not first[-1]:
            out.append(", ")
        first[-1] = False
        if prefix:
            out.append(prefix)
        if isinstance(v, dict) and not isinstance(v, bool):
            order = _dict_order(tuple(v))
            out.append("{")
            stack.append(iter([(p, v[k]) for k, p in order]))
            closers.append("}")
            first.append(True)
        elif isinstance(v, (list, tuple)):
            out.append("[")
            stack.append(iter([(None, x) for x in v]))
            closers.append("]")
            first.append(True)
        else:
            out.append(_enc(v))
    return "".join(out)


def dumps(obj: Any) -> str:
    """Serialize ``obj`` exactly like QEMU 7.2's QObject JSON writer."""
    try:
        return _enc(obj)
    except RecursionError:
        return _enc_iterative(obj)
