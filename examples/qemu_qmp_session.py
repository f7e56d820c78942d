"""A session with qemu.qmp's asyncio ``QMPClient``, the library QEMU's own
Python tooling uses.  It negotiates OOB itself because qmpd offers it.

    .venv/bin/python examples/qemu_qmp_session.py
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time

from qemu.qmp import EventListener, QMPClient


async def session(sock: str) -> None:
    qmp = QMPClient("example")
    await qmp.connect(sock)
    print("version:", await qmp.execute("query-version"))
    await qmp.execute("blockdev-add", {"driver": "null-co", "node-name": "disk0",
                                       "size": 1 << 20})
    nodes = await qmp.execute("query-named-block-nodes", {"flat": True})
    print("nodes:", [(n["node-name"], n["drv"], n["image"]["virtual-size"]) for n in nodes])
    listener = EventListener()
    with qmp.listen(listener):
        await qmp.execute("stop")
        print("event:", (await listener.get())["event"])
    await qmp.execute("quit")
    try:
        await qmp.disconnect()
    except EOFError:
        pass  # qmpd closed the connection after quit, as QEMU does


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="qmpd-") as tmp:
        sock = os.path.join(tmp, "qmp.sock")
        server = subprocess.Popen([sys.executable, "-m", "qmpd", "--socket", sock])
        while not os.path.exists(sock):
            if server.poll() is not None:
                return 1
            time.sleep(0.02)
        asyncio.run(session(sock))
        return server.wait()


if __name__ == "__main__":
    sys.exit(main())
