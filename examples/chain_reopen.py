"""Build a three-image qcow2 chain, swap its backing file with blockdev-reopen,
and read the data through it, with qemu.qmp's asyncio ``QMPClient``.

    .venv/bin/python examples/chain_reopen.py            # starts its own qmpd
    .venv/bin/python examples/chain_reopen.py --socket /tmp/qmp.sock   # a running server

The chain is base.qcow2 <- mid.qcow2 <- top.qcow2 (files made with
``qmpd-img``): base holds 0xaa at 0, mid holds 0xbb at 64k, top is empty.
Reading 64k through ``top`` finds mid's 0xbb; after ``blockdev-reopen``
gives ``top`` the backing ``base`` instead of ``mid``, the same read finds
zeros (base has nothing there), and 0 still reads base's 0xaa.  qemu-io runs
through ``human-monitor-command``: qmpd returns its output in the reply,
QEMU prints it on its own stdout and returns "" (so against a real QEMU the
reads print nothing here).  The image files are never modified: qmpd keeps
every write in memory, and blockdev-reopen does not rewrite the backing file
name in top.qcow2's header (QEMU does not either).

With ``--graph FILE.svg`` (or .dot/.png) it also draws the chain before and
after the swap (FILE-before.svg, FILE-after.svg) with qmpd-graph's
``to_dot``, over its own connection: a separate ``qmpd-graph SOCKET`` would
do against qmpd, which serves many clients, but QEMU serves one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time

from qemu.qmp import QMPClient

IMG = [sys.executable, "-m", "qmpd.img.cli"]   # the qmpd-img command


def make_images(d: str) -> dict[str, str]:
    paths = {name: os.path.join(d, f"{name}.qcow2") for name in ("base", "mid", "top")}

    def img(*args: str) -> None:
        subprocess.run(IMG + list(args), check=True, stdout=subprocess.DEVNULL)

    img("create", "-q", "-f", "qcow2", paths["base"], "1M")
    img("io", "-f", "qcow2", paths["base"], "-c", "write -P 0xaa 0 64k")
    img("create", "-q", "-f", "qcow2", "-b", paths["base"], "-F", "qcow2", paths["mid"])
    img("io", "-f", "qcow2", paths["mid"], "-c", "write -P 0xbb 64k 64k")
    img("create", "-q", "-f", "qcow2", "-b", paths["mid"], "-F", "qcow2", paths["top"])
    return paths


def qcow2(name: str, path: str, backing: str | None, read_only: bool = False) -> dict:
    """blockdev-add options: a qcow2 node over a named file node.

    Backing images are opened read-only, as libvirt does; the file node
    inherits read-only from its qcow2 parent."""
    return {"driver": "qcow2", "node-name": name, "backing": backing, "read-only": read_only,
            "file": {"driver": "file", "node-name": f"{name}-file", "filename": path}}


async def qemu_io(qmp: QMPClient, node: str, cmd: str) -> str:
    out = await qmp.execute("human-monitor-command",
                            {"command-line": f'qemu-io {node} "{cmd}"'})
    return str(out)


async def draw(qmp: QMPClient, graph: str | None, tag: str) -> None:
    """qmpd-graph's drawing over this connection (QEMU serves one client at a time)."""
    if not graph:
        return
    from qmpd.graphviz import render, to_dot

    data = {"graph": await qmp.execute("x-debug-query-block-graph"),
            "nodes": await qmp.execute("query-named-block-nodes", {"flat": True}),
            "jobs": await qmp.execute("query-block-jobs")}
    stem, ext = os.path.splitext(graph)
    out = f"{stem}-{tag}{ext or '.dot'}"
    text = to_dot(data, f"chain {tag} blockdev-reopen")
    fmt = (ext or ".dot")[1:]
    with open(out, "wb") as f:
        f.write(text.encode() if fmt == "dot" else render(text, fmt))
    print(f"graph: {out}")


async def session(sock: str, paths: dict[str, str], graph: str | None) -> None:
    qmp = QMPClient("chain-reopen")
    await qmp.connect(sock)
    # Bottom up, so that each backing node exists when its overlay is added.
    await qmp.execute("blockdev-add", qcow2("base", paths["base"], None, read_only=True))
    await qmp.execute("blockdev-add", qcow2("mid", paths["mid"], "base", read_only=True))
    await qmp.execute("blockdev-add", qcow2("top", paths["top"], "mid"))
    print("before: read 64k through top")
    print(await qemu_io(qmp, "top", "read -v 64k 16"), end="")
    await draw(qmp, graph, "before")

    # blockdev-reopen takes the node's complete options: what is left out
    # returns to its default, so file and the new backing are both given.
    await qmp.execute("blockdev-reopen", {"options": [
        {"driver": "qcow2", "node-name": "top", "file": "top-file", "backing": "base"}]})
    nodes = await qmp.execute("query-named-block-nodes", {"flat": True})
    top = next(n for n in nodes if n["node-name"] == "top")
    print("after reopen: top's backing file is", top.get("backing_file"))
    print("after: read 64k through top")
    print(await qemu_io(qmp, "top", "read -v 64k 16"), end="")
    print("after: read 0 through top")
    print(await qemu_io(qmp, "top", "read -P 0xaa 0 64k"), end="")
    await draw(qmp, graph, "after")

    # mid is still there (it was added by the monitor); it can go now.
    await qmp.execute("blockdev-del", {"node-name": "mid"})
    await qmp.disconnect()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--socket", help="use a running QMP server instead of starting qmpd")
    p.add_argument("--graph", help="draw the chain to FILE-before/after (.dot, .svg or .png)")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="qmpd-chain-", dir="/tmp") as d:
        paths = make_images(d)
        if a.socket:
            asyncio.run(session(a.socket, paths, a.graph))
            return 0
        sock = os.path.join(d, "qmp.sock")
        server = subprocess.Popen([sys.executable, "-m", "qmpd", "--socket", sock])
        try:
            while not os.path.exists(sock):   # appears once qmpd accepts
                if server.poll() is not None:
                    return 1
                time.sleep(0.02)
            asyncio.run(session(sock, paths, a.graph))
        finally:
            server.terminate()
            server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
