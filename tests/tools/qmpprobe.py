"""Minimal blocking QMP client used by the corpus generators to probe real QEMU 7.2.

The generators in this directory build scenarios step by step and ask a live QEMU
what each step did, so that later steps can refer to nodes that really exist.  This
module only starts QEMU in a scratch directory, runs scenario setup lines, sends
commands and resolves "$NODE[drv:file]" placeholders with the same rule as
/work/shared/oracle/qmpreplay.py (implicit nodes first, lowest #block counter).
It is a development tool: CI never runs it (CI has no QEMU).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any

AUTO_NODE_NAME = re.compile(r"#block(\d+)(\d\d)(?!\d)")
NODE_PLACEHOLDER = re.compile(r"\$NODE\[([^:\]]+):([^\]]+)\]")


def _node_rank(name: str) -> tuple[int, int, str]:
    m = AUTO_NODE_NAME.fullmatch(name)
    if m:
        return (0, int(m.group(1)), name)
    return (1, 0, name)


def subst(obj: Any, old: str, new: str) -> Any:
    """Replace `old` by `new` in every string (keys included) of a JSON value."""
    if isinstance(obj, str):
        return obj.replace(old, new)
    if isinstance(obj, list):
        return [subst(x, old, new) for x in obj]
    if isinstance(obj, dict):
        return {subst(k, old, new): subst(v, old, new) for k, v in obj.items()}
    return obj


class Qemu:
    """One QEMU process with a QMP socket, living in its own temp dir."""

    def __init__(self, setup: list[str], qemu: str = "qemu-system-x86_64") -> None:
        self.dir = tempfile.mkdtemp(prefix="qmpgen-")
        env = dict(os.environ, DIR=self.dir)
        for cmd in setup:
            subprocess.run(cmd, shell=True, env=env, cwd=self.dir, check=True,
                           stdin=subprocess.DEVNULL, capture_output=True)
        self.sock_path = os.path.join(self.dir, "qmp.sock")
        self.proc = subprocess.Popen(
            [qemu, "-machine", "none", "-nodefaults", "-display", "none",
             "-qmp", f"unix:{self.sock_path},server=on,wait=off"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(self.sock_path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("QEMU did not start") from None
                time.sleep(0.01)
        self.buf = b""
        self.n = 0
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self, timeout: float = 10.0) -> dict[str, Any] | None:
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise EOFError("QEMU closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send_obj(self, msg: dict[str, Any]) -> dict[str, Any]:
        """Send one command (placeholders and $DIR already resolved); return its reply."""
        self.n += 1
        msg = dict(msg, id=f"g{self.n}")
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            m = self._read()
            if m is None:
                raise TimeoutError("no reply")
            if "event" in m:
                continue
            if m.get("id") == msg["id"]:
                return m

    def cmd(self, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        msg: dict[str, Any] = {"execute": name}
        if args is not None:
            msg["arguments"] = args
        return self.send_obj(msg)

    def send_raw(self, text: str, quiet: float = 0.15) -> list[dict[str, Any]]:
        self.sock.sendall(text.encode() + b"\n")
        out = []
        while True:
            m = self._read(quiet)
            if m is None:
                return out
            if "event" not in m:
                out.append(m)

    def resolve(self, obj: Any) -> Any:
        """$DIR and $NODE[drv:file] substitution, as qmpreplay does it."""
        obj = subst(subst(obj, "${DIR}", self.dir), "$DIR", self.dir)
        text = json.dumps(obj)
        if "$NODE[" not in text:
            return obj
        nodes = self.cmd("query-named-block-nodes").get("return", [])

        def pick(m: re.Match[str]) -> str:
            drv, fname = m.group(1), m.group(2)
            cands = [n["node-name"] for n in nodes if n.get("drv") == drv and n.get("file") == fname]
            return min(cands, key=_node_rank) if cands else m.group(0)

        def walk(o: Any) -> Any:
            if isinstance(o, str):
                return NODE_PLACEHOLDER.sub(pick, o)
            if isinstance(o, list):
                return [walk(x) for x in o]
            if isinstance(o, dict):
                return {walk(k): walk(v) for k, v in o.items()}
            return o
        return walk(obj)

    def placeholder_for(self, name: str) -> str | None:
        """A "$NODE[drv:$DIR/..]" string that qmpreplay would resolve to node `name`."""
        nodes = self.cmd("query-named-block-nodes").get("return", [])
        me = [n for n in nodes if n["node-name"] == name]
        if not me:
            return None
        drv, fname = me[0]["drv"], me[0]["file"]
        if not fname.startswith(self.dir + "/") or "]" in fname:
            return None
        cands = [n["node-name"] for n in nodes if n.get("drv") == drv and n.get("file") == fname]
        if min(cands, key=_node_rank) != name:
            return None
        return f"$NODE[{drv}:$DIR{fname[len(self.dir):]}]"

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            shutil.rmtree(self.dir, ignore_errors=True)
