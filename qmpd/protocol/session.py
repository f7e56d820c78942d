"""One QMP connection's protocol state, without I/O (QEMU 7.2 monitor/qmp.c).

A :class:`Session` turns received bytes into either ready reply bytes (parse
errors, malformed envelopes, commands refused in the current mode) or
:class:`Request` objects that the caller executes and answers with
:meth:`Session.reply` / :meth:`Session.error`.  It knows no command except
``qmp_capabilities``, whose negotiation state it owns; command lookup, the
OOB-support check and argument validation stay with the caller.

The checks follow qmp_dispatch() and qmp_dispatch_check_obj() in QEMU 7.2:
non-object input, then the envelope members in QDict hash order, then the
mode (capabilities negotiation vs command mode).  In negotiation mode the
only command table entry is ``qmp_capabilities``; every other name fails
lookup, which QEMU reports as ``Expecting capabilities negotiation with
'qmp_capabilities'``.

Pipelining: a ``qmp_capabilities`` Request made in negotiation mode decides
how every later message is treated, so input after it is held back until the
caller answers it with :meth:`Session.reply` or :meth:`Session.error`.  Call
``feed(b"")`` after that (while :attr:`Session.has_pending` is true) to get
the held-back messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qmpd.protocol.encode import Preencoded, PreencodedParts, encode_message
from qmpd.protocol.splitter import JSONStreamParser, ParsedValue, ParseError
from qmpd.qobject import key_order

__all__ = ["Request", "Session"]

_NEGOTIATION_NEEDED = "Expecting capabilities negotiation with 'qmp_capabilities'"
_ALREADY_NEGOTIATED = "Capabilities negotiation is already complete, command ignored"
# tuple of envelope keys (input order) -> the order QEMU checks them in
_envelope_orders: dict[tuple[str, ...], list[str]] = {}


@dataclass
class Request:
    """A well-formed command for the caller to execute.

    ``arguments`` is None when the message had no ``arguments`` member (QEMU
    treats that as ``{}``).  ``oob`` is true for ``exec-oob`` (only possible
    once OOB is enabled); the caller still checks the command allows OOB.
    """

    name: str
    arguments: dict | None
    id: Any
    has_id: bool
    oob: bool


def _error_bytes(cls: str, desc: str, id_: Any = None, has_id: bool = False) -> bytes:
    # qmp_error_response() inserts "error" ({class, desc}); qmp_dispatch()
    # then adds "id".
    msg: dict[str, Any] = {"error": {"class": cls, "desc": desc}}
    if has_id:
        msg["id"] = id_
    return encode_message(msg)


def _trivially_valid_caps_args(args: dict | None) -> bool:
    """Arguments qmp_capabilities' marshaller accepts without a word."""
    if args is None:
        return True
    if any(k != "enable" for k in args):
        return False
    enable = args.get("enable", [])
    return type(enable) is list and all(v == "oob" for v in enable)


class Session:
    """The protocol half of one QMP client connection."""

    def __init__(self, version: dict, capabilities: tuple[str, ...] | list[str] = ("oob",)) -> None:
        self._version = version
        self._capabilities = tuple(capabilities)
        self._parser = JSONStreamParser()
        self._negotiated = False
        self._oob_enabled = False
        # a negotiation-mode qmp_capabilities Request not answered yet
        self._pending_caps: Request | None = None
        self._held: list[ParsedValue | ParseError] = []

    # -- state -----------------------------------------------------------------

    @property
    def negotiated(self) -> bool:
        """True once qmp_capabilities succeeded (command mode)."""
        return self._negotiated

    @property
    def oob_enabled(self) -> bool:
        """True when the client enabled the ``oob`` capability."""
        return self._oob_enabled

    @property
    def has_pending(self) -> bool:
        """Parsed input is held back behind an unanswered negotiation request;
        ``feed(b"")`` returns it once that request is answered."""
        return bool(self._held) and self._pending_caps is None

    # -- output ----------------------------------------------------------------

    def greeting(self) -> bytes:
        """The greeting QEMU sends as soon as a client connects (qmp_greeting())."""
        return encode_message({"QMP": {"version": self._version,
                                       "capabilities": list(self._capabilities)}})

    def reply(self, req: Request, result: Any) -> bytes:
        """The success reply to ``req``: ``{"return": result, "id": ...}``.

        A successful negotiation-mode ``qmp_capabilities`` switches the
        session to command mode (OOB on iff ``enable`` contains "oob").
        """
        if req.name == "qmp_capabilities" and not req.oob:
            if self._pending_caps is req:
                self._pending_caps = None
            if self._negotiated:
                # qmp_qmp_capabilities() in command mode
                return _error_bytes("CommandNotFound", _ALREADY_NEGOTIATED, req.id, req.has_id)
            enable = (req.arguments or {}).get("enable") or []
            missing = [c for c in enable if c not in self._capabilities]
            if missing:
                # qmp_caps_accept()
                return _error_bytes("GenericError",
                                    f"Capability {', '.join(missing)} not available",
                                    req.id, req.has_id)
            self._negotiated = True
            self._oob_enabled = "oob" in enable
        msg: dict[str, Any] = {"return": result}
        if req.has_id:
            msg["id"] = req.id
        return encode_message(msg)

    def reply_parts(self, req: Request, result: PreencodedParts) -> list[bytes]:
        """The success reply to ``req`` whose ``return`` value is ``result``,
        as pieces to send in order: the value's own pieces are not copied."""
        whole = self.reply(req, Preencoded(""))
        # "return" comes first in QEMU's key order of a reply; the id (if
        # any) and the line end follow the value.
        cut = len(b'{"return": ')
        return [whole[:cut], *result.parts, whole[cut:]]

    def error(self, req: Request, cls: str, desc: str) -> bytes:
        """The error reply to ``req``: ``{"id": ..., "error": {class, desc}}``."""
        if self._pending_caps is req:
            self._pending_caps = None
        if not self._negotiated and cls == "CommandNotFound":
            # monitor_qmp_dispatch() rewrites every CommandNotFound in
            # negotiation mode.
            desc = _NEGOTIATION_NEEDED
        return _error_bytes(cls, desc, req.id, req.has_id)

    # -- input -----------------------------------------------------------------

    def feed(self, data: bytes) -> list[bytes | Request]:
        """Parse ``data``; return reply bytes and Requests in input order."""
        items = self._held
        self._held = []
        if data:
            items.extend(self._parser.feed(data))
        out: list[bytes | Request] = []
        for k, item in enumerate(items):
            if self._pending_caps is not None:
                self._held = items[k:]
                break
            r = self._handle(item)
            out.append(r)
            if type(r) is Request and r.name == "qmp_capabilities" and not self._negotiated:
                self._pending_caps = r
        return out

    def _handle(self, item: ParsedValue | ParseError) -> bytes | Request:
        if type(item) is ParseError:
            return _error_bytes("GenericError", item.desc)
        msg = item.value
        if type(msg) is not dict:
            return _error_bytes("GenericError", "QMP input must be a JSON object")
        has_id = "id" in msg
        id_ = msg.get("id")
        allow_oob = self._oob_enabled

        # qmp_dispatch_check_obj(): members in QDict iteration order
        exec_key = None
        keys = tuple(msg)
        order = _envelope_orders.get(keys)
        if order is None:
            if len(_envelope_orders) > 1024:  # keys come from clients: stay bounded
                _envelope_orders.clear()
            order = _envelope_orders[keys] = key_order(keys)
        for key in order:
            if key == "execute" or (key == "exec-oob" and allow_oob):
                if type(msg[key]) is not str:
                    return _error_bytes("GenericError",
                                        f"QMP input member '{key}' must be a string",
                                        id_, has_id)
                if exec_key is not None:
                    return _error_bytes("GenericError",
                                        f"QMP input member '{key}' clashes with '{exec_key}'",
                                        id_, has_id)
                exec_key = key
            elif key == "arguments":
                if type(msg[key]) is not dict:
                    return _error_bytes("GenericError",
                                        "QMP input member 'arguments' must be an object",
                                        id_, has_id)
            elif key != "id":
                return _error_bytes("GenericError", f"QMP input member '{key}' is unexpected",
                                    id_, has_id)
        if exec_key is None:
            return _error_bytes("GenericError", "QMP input lacks member 'execute'", id_, has_id)

        name = msg[exec_key]
        oob = exec_key == "exec-oob"
        args = msg.get("arguments")
        if not self._negotiated:
            # the negotiation-mode command table holds qmp_capabilities only
            if name != "qmp_capabilities":
                return _error_bytes("CommandNotFound", _NEGOTIATION_NEEDED, id_, has_id)
        elif name == "qmp_capabilities" and not oob and _trivially_valid_caps_args(args):
            # Arguments that need checking go to the caller, whose validation
            # errors come first in QEMU; reply() then gives this same error.
            return _error_bytes("CommandNotFound", _ALREADY_NEGOTIATED, id_, has_id)
        return Request(name, args, id_, has_id, oob)
