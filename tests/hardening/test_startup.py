"""Start-up: the greeting sent before trio is loaded is the protocol core's
greeting byte for byte, and a client greeted that early is served as any
other (negotiation, commands, events)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from conftest import REPO, Conn

from qmpd import __version__
from qmpd.protocol.session import Session
from qmpd.server.config import ServerConfig
from qmpd.server.greeting import greeting_bytes


@pytest.mark.parametrize("version", [(7, 2, 22), (7, 2, 0), (7, 2, 11)])
def test_early_greeting_is_the_sessions(version: tuple[int, int, int]) -> None:
    session = Session({"qemu": dict(zip(("major", "minor", "micro"), version)),
                       "package": f"qmpd {__version__}"})
    assert greeting_bytes(ServerConfig(qemu_version=version)) == session.greeting()


def test_client_connected_while_loading_is_served(short_tmp: str) -> None:
    sock = f"{short_tmp}/e.sock"
    proc = subprocess.Popen([sys.executable, "-m", "qmpd", "--socket", sock], cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        # Connect the moment the file appears: that is before trio is loaded.
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = Conn(sock)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.001)
        assert "QMP" in conn.read()
        # Two commands already written before the server can run them.
        conn.send('{"execute": "qmp_capabilities"}{"execute": "stop", "id": 1}')
        assert conn.reply() == {"return": {}}
        assert conn.reply() == {"return": {}, "id": 1}
        assert [e["event"] for e in conn.events] == ["STOP"]
        conn.close()
        late = socket.socket(socket.AF_UNIX)
        late.connect(sock)
        assert late.recv(4096).startswith(b'{"QMP"')
        late.close()
    finally:
        proc.terminate()
        assert proc.wait(20) == 0
