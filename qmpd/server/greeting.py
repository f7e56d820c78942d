"""The first line a connecting client is sent: the greeting, or the refusal.

Both start-up (which greets clients before trio is loaded) and the trio
server send them, so they live here, below both: plain bytes from the
configuration, with no import heavier than the config.
"""

from __future__ import annotations

from qmpd import __version__
from qmpd.server.config import ServerConfig


def greeting_bytes(config: ServerConfig) -> bytes:
    """The greeting as :meth:`qmpd.protocol.session.Session.greeting` encodes
    it for this version (QEMU's key order; a test checks they are equal)."""
    major, minor, micro = config.qemu_version
    return (b'{"QMP": {"version": {"qemu": {"micro": %d, "minor": %d, "major": %d}, '
            b'"package": "qmpd %s"}, "capabilities": ["oob"]}}\r\n'
            % (micro, minor, major, __version__.encode("ascii")))


def refusal_bytes(config: ServerConfig) -> bytes:
    """What a connection beyond --max-clients gets before it is closed."""
    return (b'{"error": {"class": "GenericError", "desc": "qmpd: too many clients '
            b'(%d connected; see --max-clients)"}}\r\n' % config.max_clients)
