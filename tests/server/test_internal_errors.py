"""An exception escaping a command handler becomes a GenericError reply on
that client's connection, which stays usable; the daemon keeps running.

Runs the server in-process (trio) so that a faulty handler can be injected.
"""

from __future__ import annotations

import trio
from server_testlib import read_line

from qmpd.server.app import Server
from qmpd.server.config import Endpoint, ServerConfig
from qmpd.server.listener import UnixListener


async def test_handler_crash_becomes_generic_error(short_tmp, capfd):
    path = f"{short_tmp}/crash.sock"
    server = Server(ServerConfig(endpoints=[Endpoint("unix", path)]))
    calls = []

    def faulty(name: str, arguments: dict | None, *, oob: bool = False,
               preencoded: bool = False, stepwise: bool = False) -> object:
        calls.append(name)
        if name == "boom":
            raise RuntimeError("kaput")
        return {}

    server._execute = faulty
    server._daemon = type("D", (), {"quit_requested": False})()
    listener = UnixListener(path, 0o600)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.main, [listener])
            stream = await trio.open_unix_socket(path)
            pending = bytearray()
            await read_line(stream, pending)  # greeting
            await stream.send_all(b'{"execute": "qmp_capabilities"}'
                                  b'{"execute": "boom", "id": 7}'
                                  b'{"execute": "query-name", "id": 8}')
            assert await read_line(stream, pending) == b'{"return": {}}\r\n'
            assert await read_line(stream, pending) == (
                b'{"id": 7, "error": {"class": "GenericError", "desc": '
                b'"qmpd internal error in \'boom\': RuntimeError: kaput"}}\r\n')
            assert await read_line(stream, pending) == b'{"return": {}, "id": 8}\r\n'
            server.request_shutdown()
    finally:
        listener.remove()
    assert calls == ["qmp_capabilities", "boom", "query-name"]
    assert "RuntimeError: kaput" in capfd.readouterr().err
