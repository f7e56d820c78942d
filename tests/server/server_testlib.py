"""Helpers shared by the server tests that talk to an in-process server
over a trio socket (imported as ``server_testlib``, like ``schema_testlib``)."""

from __future__ import annotations

import trio


async def read_line(stream: trio.SocketStream, pending: bytearray) -> bytes:
    """The next newline-terminated line from ``stream`` (``pending`` keeps
    what was read beyond it)."""
    while b"\n" not in pending:
        data = await stream.receive_some(65536)
        assert data, "connection closed"
        pending += data
    i = pending.index(b"\n") + 1
    line = bytes(pending[:i])
    del pending[:i]
    return line
