"""A mirror whose ``replaces`` node gained another user while it ran (041
TestRepairQuorum): the job fails and QEMU's error_report line names why, on
the daemon's stderr (the reply went out long before)."""

from __future__ import annotations

from typing import Any

from qmpd.commands.dispatch import Daemon, Dispatcher
from qmpd.jobs.clock import VirtualClock
from qmpd.profiles import select


def test_replacing_a_quorum_child_exported_meanwhile_fails_with_a_report(capsys) -> None:
    clock = VirtualClock()
    daemon = Daemon(select("7.2.22"), job_time=clock, extensions=True)
    events: list[tuple[str, Any]] = []
    daemon.event_sink = lambda name, data, ts: events.append((name, data))
    d = Dispatcher(daemon)

    def qmp(cmd: str, **args: Any) -> Any:
        return d.execute(cmd, {k.replace("_", "-"): v for k, v in args.items()})

    for name in ("img0", "img1", "repair0"):
        qmp("blockdev-add", driver="null-co", node_name=name, size=1 << 20, read_zeroes=True)
    qmp("blockdev-add", driver="quorum", node_name="quorum0", vote_threshold=1,
        children=["img0", "img1"])
    qmp("blockdev-mirror", job_id="mirror", device="quorum0", target="repair0", sync="full",
        replaces="img1")
    qmp("nbd-server-start", addr={"type": "unix", "data": {"path": "/nonexistent/nbd.sock"}})
    qmp("nbd-server-add", device="img1")
    qmp("x-qmpd-clock-step", ns=10**9)
    assert ("BLOCK_JOB_READY", {"device": "mirror", "len": 1 << 20, "offset": 1 << 20,
                                "speed": 0, "type": "mirror"}) in events
    qmp("block-job-complete", device="mirror")
    qmp("x-qmpd-clock-step", ns=10**9)
    done = [data for name, data in events if name == "BLOCK_JOB_COMPLETED"]
    assert done and done[0]["error"] == "Operation not permitted"
    assert capsys.readouterr().err == (
        "qemu-system-x86_64: Can no longer replace 'img1' by 'repair0', because it can no "
        "longer be guaranteed that doing so would not lead to an abrupt change of visible "
        "data\n")
    # Not replaced: the quorum still reads from img1.
    graph = qmp("x-debug-query-block-graph")
    names = {n["id"]: n["name"] for n in graph["nodes"]}
    quorum_children = {names[e["child"]] for e in graph["edges"]
                       if names[e["parent"]] == "quorum0"}
    assert quorum_children == {"img0", "img1"}
