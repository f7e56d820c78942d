"""Helpers for the protocol tests: a stand-in for the command layer.

The session leaves command lookup, the OOB check and argument validation to
its caller.  :func:`execute` plays that caller for the few commands the
recorded QEMU cases use, with QEMU 7.2's texts, so whole conversations can be
replayed through :class:`qmpd.protocol.Session` without the real dispatcher.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from qmpd.protocol import Request, Session

DATA = Path(__file__).resolve().parent.parent / "data" / "protocol"
QEMU_VERSION: dict[str, Any] = {"qemu": {"major": 7, "minor": 2, "micro": 22},
                                "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}
OOB_COMMANDS = {"migrate-recover", "migrate-pause", "yank", "query-yank"}
KNOWN = {"qmp_capabilities", "query-version"} | OOB_COMMANDS


def execute(session: Session, req: Request) -> bytes:
    """Run ``req`` the way QEMU's dispatcher would, for a tiny command set."""
    if req.name not in KNOWN:
        return session.error(req, "CommandNotFound", f"The command {req.name} has not been found")
    if req.oob and req.name not in OOB_COMMANDS:
        return session.error(req, "GenericError", f"The command {req.name} does not support OOB")
    args = req.arguments or {}
    if req.name == "qmp_capabilities":
        for k in args:
            if k != "enable":
                return session.error(req, "GenericError", f"Parameter '{k}' is unexpected")
        enable = args.get("enable", [])
        if type(enable) is not list:
            return session.error(req, "GenericError",
                                 "Invalid parameter type for 'enable', expected: array")
        for v in enable:
            if v != "oob":
                return session.error(req, "GenericError",
                                     f"Parameter 'null' does not accept value '{v}'")
        return session.reply(req, {})
    if req.name == "query-version":
        if args:
            return session.error(req, "GenericError", f"Parameter '{next(iter(args))}' is unexpected")
        return session.reply(req, QEMU_VERSION)
    return session.reply(req, {})


def drive(session: Session, chunks: list[bytes]) -> list[bytes]:
    """Feed ``chunks`` one by one like a server would; return the reply lines."""
    out: list[bytes] = []
    for chunk in chunks:
        items = session.feed(chunk)
        while True:
            for item in items:
                out.append(item if isinstance(item, bytes) else execute(session, item))
            if not session.has_pending:
                break
            items = session.feed(b"")
    return out


def negotiated_session(oob: bool = False) -> Session:
    s = Session(QEMU_VERSION)
    caps = (b'{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}' if oob
            else b'{"execute": "qmp_capabilities"}')
    assert drive(s, [caps]) == [b'{"return": {}}\r\n']
    return s


def load_json(name: str) -> Any:
    with open(DATA / name) as f:
        return json.load(f)
