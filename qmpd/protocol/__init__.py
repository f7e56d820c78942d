"""The sans-I/O QMP protocol core: bytes in, replies and requests out.

* :mod:`qmpd.protocol.encode` – messages on the wire (:func:`encode_message`,
  :func:`encode_event`) in QEMU's exact JSON (:mod:`qmpd.qobject`: hash key
  order, escapes, ``%.17g``; :func:`dumps`).
* :mod:`qmpd.protocol.splitter` – QEMU's streaming JSON lexer/streamer/parser.
* :mod:`qmpd.protocol.session` – per-connection state: greeting, envelope
  checks, capabilities negotiation, reply framing.
"""

from qmpd.protocol.encode import dumps, encode_event, encode_message
from qmpd.protocol.session import Request, Session
from qmpd.protocol.splitter import JSONStreamParser, ParsedValue, ParseError

__all__ = ["dumps", "encode_event", "encode_message", "JSONStreamParser", "ParsedValue",
           "ParseError", "Request", "Session"]
