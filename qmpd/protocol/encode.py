"""QMP messages on the wire: QEMU 7.2's framing of replies and events.

The JSON text itself is QEMU's QObject writer, :mod:`qmpd.qobject` (QDict key
order, escapes, ``%.17g`` doubles), which the engine uses too; this module
adds what only the wire has: the CRLF after each message and the event
envelope.  The writer's names are re-exported for the protocol's users.
"""

from __future__ import annotations

from typing import Any

import orjson

from qmpd.qobject import Preencoded, dumps, key_order, quote, tdb_hash

__all__ = ["Preencoded", "PreencodedParts", "dumps", "encode_message", "encode_event",
           "key_order", "quote", "tdb_hash"]


class PreencodedParts:
    """A large value already written as QEMU JSON text, in ASCII pieces that
    are sent one after the other and never joined (joining tens of
    megabytes stalls the event loop, and doubles the memory for a moment).

    Only a reply's whole ``return`` value can be one: see
    :meth:`qmpd.protocol.session.Session.reply_parts`.
    """

    __slots__ = ("parts", "size")

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.size = sum(len(p) for p in parts)

    def value(self) -> Any:
        """The value itself (for in-process callers)."""
        return orjson.loads(b"".join(self.parts))


def encode_message(obj: Any) -> bytes:
    """One QMP message on the wire: the JSON text followed by CRLF."""
    return (dumps(obj) + "\r\n").encode("ascii")


def encode_event(name: str, data: dict | None, timestamp: tuple[int, int]) -> bytes:
    """An event message as monitor_qapi_event_emit() sends it.

    QEMU inserts ``event``, then ``timestamp`` ({seconds, microseconds}),
    then ``data`` (left out when the event has none).
    """
    msg: dict[str, Any] = {
        "event": name,
        "timestamp": {"seconds": timestamp[0], "microseconds": timestamp[1]},
    }
    if data is not None:
        msg["data"] = data
    return encode_message(msg)
