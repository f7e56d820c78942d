"""How much a client's input and output may hold at once: the limits the
server's reader and writer keep to, and the helpers that apply them."""

from __future__ import annotations

# A client's own commands are paused while more than this many bytes of its
# output are unsent (TCP-like backpressure for clients that pipeline faster
# than they read).
HIGH_WATER = 1024 * 1024
READ_SIZE = 65536
# With other clients connected, input is parsed in slices of at most this
# many bytes, the others served in between (see Client._reader).
FEED_SLICE = 8192
# A reply in pieces up to this size is joined and sent as any other.
SMALL_REPLY = 65536


def slices(data: bytes) -> list[bytes]:
    """``data`` in pieces of at most FEED_SLICE bytes, cut after a newline
    where there is one (a message per line keeps the parser's fast path).

    >>> [len(p) for p in slices(b"x" * 10000 + b"\\n" + b"y" * 20000)]
    [8192, 1809, 8192, 8192, 3616]
    """
    out = []
    start, n = 0, len(data)
    while n - start > FEED_SLICE:
        cut = data.rfind(b"\n", start, start + FEED_SLICE) + 1
        if cut <= start:
            cut = start + FEED_SLICE
        out.append(data[start:cut])
        start = cut
    out.append(data[start:])
    return out


def reply_too_large(size: int, limit: int) -> str:
    """The error text of a reply refused by ``--max-output``."""
    return (f"Reply too large: {size} bytes, more than qmpd's --max-output limit "
            f"of {limit} bytes")
