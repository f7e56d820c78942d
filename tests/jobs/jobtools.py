"""Helpers for the job tests: the 7.5 image chain made with qmpd-img, and a
Dispatcher with a virtual clock and an event log (no trio, no socket)."""

from __future__ import annotations

import contextlib
import io
import os
from typing import Any

from qmpd.commands.dispatch import Daemon, Dispatcher
from qmpd.commands.errors import QMPError
from qmpd.img.cli import main as img_main
from qmpd.jobs.clock import VirtualClock
from qmpd.profiles import select

# What these tests expect is QEMU 7.2's (their cases were recorded on it).
QEMU_7_2 = select("7.2.22")

MiB = 1024 * 1024


def img(*args: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        assert img_main(list(args)) == 0, args


def make_chain(d: str) -> dict[str, str]:
    """jbase (0x11 at 0-2M) <- jmid (0x22 at 1M-2M) <- jtop (0x33 at 3M-3.5M), 4 MiB."""
    p = {n: os.path.join(d, f"j{n}.qcow2") for n in ("base", "mid", "top")}
    img("create", "-q", "-f", "qcow2", p["base"], "4M")
    img("io", "-c", "write -P 0x11 0 2M", p["base"])
    img("create", "-q", "-f", "qcow2", "-b", p["base"], "-F", "qcow2", p["mid"])
    img("io", "-c", "write -P 0x22 1M 1M", p["mid"])
    img("create", "-q", "-f", "qcow2", "-b", p["mid"], "-F", "qcow2", p["top"])
    img("io", "-c", "write -P 0x33 3M 512k", p["top"])
    return p


class Harness:
    """A daemon with a virtual job clock; ``run`` returns a reply or an error dict."""

    def __init__(self) -> None:
        self.daemon = Daemon(QEMU_7_2, job_time=VirtualClock(), extensions=True)
        self.events: list[tuple[str, dict]] = []
        self.daemon.event_sink = lambda name, data, ts: self.events.append((name, data or {}))
        self.disp = Dispatcher(self.daemon)

    def run(self, name: str, **args: Any) -> Any:
        try:
            return {"return": self.disp.execute(name, {k.replace("_", "-"): v
                                                      for k, v in args.items()})}
        except QMPError as e:
            return {"error": {"class": e.cls, "desc": e.desc}}

    def ok(self, name: str, **args: Any) -> Any:
        r = self.run(name, **args)
        assert "return" in r, r
        return r["return"]

    def chain(self, p: dict[str, str]) -> None:
        for n, b in (("base", None), ("mid", "base"), ("top", "mid")):
            a: dict[str, Any] = {"driver": "qcow2", "node_name": n,
                                 "file": {"driver": "file", "node-name": n + "-file",
                                          "filename": p[n]}}
            if b:
                a["backing"] = b
            self.ok("blockdev-add", **a)

    def statuses(self, job: str) -> list[str]:
        out = []
        for name, data in self.events:
            if name == "JOB_STATUS_CHANGE" and data["id"] == job:
                out.append(data["status"])
            elif name.startswith("BLOCK_JOB_") and job in (data.get("device"), data.get("id")):
                out.append(name)
        return out

    def take_events(self) -> list[tuple[str, dict]]:
        ev, self.events = self.events, []
        return ev

    def job(self, jid: str) -> dict:
        for j in self.ok("query-block-jobs"):
            if j["device"] == jid:
                return j
        raise KeyError(jid)

    def step(self, ns: int) -> None:
        self.ok("x-qmpd-clock-step", ns=ns)

    def read(self, node: str, pattern: int, off: int, length: int) -> bool:
        g = self.daemon.graph
        return g.read(g.nodes[node], off, length) == bytes([pattern]) * length

    def graph_edges(self) -> set[tuple[str, str, str]]:
        g = self.ok("x-debug-query-block-graph")
        names = {n["id"]: n["name"] or n["type"] for n in g["nodes"]}
        return {(names[e["parent"]], e["name"], names[e["child"]]) for e in g["edges"]}
