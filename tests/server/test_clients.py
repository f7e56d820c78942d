"""Real client tools against qmpd: qemu.qmp's asyncio ``QMPClient`` (which
enables OOB when the greeting offers it) and ``socat`` (raw bytes)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest
from qemu.qmp import EventListener, QMPClient


def test_qemu_qmp_client_session(qmpd):
    async def session() -> tuple[dict, dict, list[str], dict]:
        client = QMPClient("test")
        await client.connect(qmpd.sock)
        version = await client.execute("query-version")
        listener = EventListener()
        with client.listen(listener):
            await client.execute("stop")
            event = await asyncio.wait_for(listener.get(), 20)
        status = await client.execute("query-status")
        commands = [c["name"] for c in await client.execute("query-commands")]
        await client.execute("quit")
        try:
            await client.disconnect()
        except EOFError:
            # qmpd closed the connection after quit, as QEMU does; qemu.qmp
            # reports that here when it saw the EOF first (its own machine.py
            # handles quit the same way).
            pass
        return version, status, [event["event"]] + commands, client.greeting._raw

    version, status, names, greeting = asyncio.run(session())
    assert greeting["QMP"]["capabilities"] == ["oob"]
    assert version == {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "qmpd 0.1.0"}
    assert status == {"status": "paused", "singlestep": False, "running": False}
    assert names[0] == "STOP" and "query-status" in names
    assert qmpd.wait() == 0


@pytest.mark.skipif(shutil.which("socat") is None,
                    reason="socat is not installed (.ci/run installs it with apt-get)")
def test_socat_session_bytes(qmpd):
    script = (b'{"execute": "qmp_capabilities"}\n'
              b"{'execute': 'query-status', 'id': 'sq'}\n"
              b'{"execute": "query-name", "id": 2}{"execute": "quit"}\n')
    out = subprocess.run(["socat", "-t", "5", "-", f"UNIX-CONNECT:{qmpd.sock}"],
                         input=script, capture_output=True, timeout=30).stdout
    lines = out.split(b"\r\n")
    assert lines[0].startswith(b'{"QMP": {"version": {"qemu": {"micro": 22')
    assert lines[1:4] == [
        b'{"return": {}}',
        b'{"return": {"status": "running", "singlestep": false, "running": true}, "id": "sq"}',
        b'{"return": {}, "id": 2}',
    ]
    assert lines[4].endswith(b'"event": "SHUTDOWN", "data": {"guest": false, '
                             b'"reason": "host-qmp-quit"}}')
    assert lines[5:] == [b'{"return": {}}', b""]
    assert qmpd.wait() == 0
