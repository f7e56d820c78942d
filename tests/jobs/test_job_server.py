"""Block jobs through a real ``qmpd --socket``: event order on the wire, the
virtual clock extension, jobs outliving their client, and quit with a job
running; and the job runner that the server starts before its daemon."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from qmpd.commands.dispatch import Daemon, Dispatcher
from qmpd.jobs.clock import RealClock
from qmpd.jobs.runner import JobRunner
from tests.jobs.jobtools import MiB, make_chain

VIRTUAL = ("--clock", "virtual", "--extensions")
FIRST = int(524288 / 6553 * 1e8)   # the first slice's wait at 64 KiB/s (see the engine tests)


def add_chain(conn: Any, d: str) -> None:
    p = make_chain(d)
    for n, b in (("base", None), ("mid", "base"), ("top", "mid")):
        a: dict[str, Any] = {"driver": "qcow2", "node-name": n,
                             "file": {"driver": "file", "node-name": n + "-file",
                                      "filename": p[n]}}
        if b:
            a["backing"] = b
        assert conn.cmd("blockdev-add", a) == {"return": {}}


def next_messages(conn: Any) -> list[dict]:
    """Messages up to and including the next reply."""
    out = []
    while True:
        m = conn.read()
        out.append(m)
        if "event" not in m:
            return out


def job_events(msgs: list[dict]) -> list[str]:
    return [m["data"]["status"] if m["event"] == "JOB_STATUS_CHANGE" else m["event"]
            for m in msgs if "event" in m and m["event"] != "SHUTDOWN"]


def test_events_come_before_the_reply_in_qemus_order(start_qmpd, short_tmp) -> None:
    q = start_qmpd(*VIRTUAL)
    conn = q.connect(negotiate=True)
    add_chain(conn, short_tmp)
    conn.send('{"execute": "block-stream", "arguments": {"job-id": "s0", "device": "top", '
              '"speed": 65536}, "id": 1}\n')
    msgs = next_messages(conn)
    assert job_events(msgs) == ["created", "running"]
    assert msgs[-1] == {"return": {}, "id": 1}
    # Time stands still: the job stays after its first 512 KiB chunk.
    jobs = conn.cmd("query-block-jobs")["return"]
    assert (jobs[0]["offset"], jobs[0]["busy"], jobs[0]["status"]) == (512 * 1024, False,
                                                                       "running")
    conn.send(json.dumps({"execute": "x-qmpd-clock-step", "arguments": {"ns": FIRST}}) + "\n")
    next_messages(conn)
    assert conn.cmd("query-block-jobs")["return"][0]["offset"] == MiB
    conn.send('{"execute": "block-job-set-speed", "arguments": {"device": "s0", "speed": 0}}\n')
    msgs = next_messages(conn)
    # The job finishes within the command (it was woken), so its events precede the reply.
    assert job_events(msgs) == ["waiting", "pending", "BLOCK_JOB_COMPLETED", "concluded",
                                "null"]
    done = [m for m in msgs if m.get("event") == "BLOCK_JOB_COMPLETED"][0]
    assert done["data"] == {"device": "s0", "len": 4 * MiB, "offset": 4 * MiB, "speed": 0,
                            "type": "stream"}
    assert conn.cmd("query-jobs") == {"return": []}


def test_real_clock_job_finishes_on_its_own(start_qmpd, short_tmp) -> None:
    q = start_qmpd()
    conn = q.connect(negotiate=True)
    add_chain(conn, short_tmp)
    # 8 MiB/s: the second 512 KiB chunk waits 125 ms, so the runner task (not
    # the command) finishes the job.
    assert conn.cmd("block-stream", {"job-id": "s0", "device": "top",
                                     "speed": 8 * MiB}) == {"return": {}}
    seen: list[str] = job_events(conn.events)
    assert "null" not in seen
    while "null" not in seen:
        m = conn.read()
        seen += job_events([m])
    assert seen[-5:] == ["waiting", "pending", "BLOCK_JOB_COMPLETED", "concluded", "null"]


def test_clock_step_is_an_extension(start_qmpd) -> None:
    q = start_qmpd("--clock", "virtual")
    conn = q.connect(negotiate=True)
    assert conn.cmd("x-qmpd-clock-step", {"ns": 1})["error"]["class"] == "CommandNotFound"
    names = {c["name"] for c in conn.cmd("query-commands")["return"]}
    assert "x-qmpd-clock-step" not in names and "block-stream" in names


def test_job_survives_its_clients_disconnect(start_qmpd, short_tmp) -> None:
    q = start_qmpd(*VIRTUAL)
    a = q.connect(negotiate=True)
    add_chain(a, short_tmp)
    assert a.cmd("block-commit", {"job-id": "c0", "device": "top", "top-node": "mid",
                                  "speed": 65536}) == {"return": {}}
    a.close()
    b = q.connect(negotiate=True)
    assert b.cmd("query-jobs")["return"][0]["status"] == "running"
    b.send('{"execute": "block-job-set-speed", "arguments": {"device": "c0", "speed": 0}}\n')
    assert job_events(next_messages(b))[-1] == "null"
    # The commit went through: mid is out of top's chain.
    graph = b.cmd("x-debug-query-block-graph")["return"]
    names = {n["id"]: n["name"] for n in graph["nodes"]}
    edges = {(names[e["parent"]], e["name"], names[e["child"]]) for e in graph["edges"]}
    assert ("top", "backing", "base") in edges


def test_quit_with_a_running_job_ends_cleanly(start_qmpd, short_tmp) -> None:
    q = start_qmpd()
    conn = q.connect(negotiate=True)
    add_chain(conn, short_tmp)
    assert conn.cmd("block-stream", {"job-id": "s0", "device": "top",
                                     "speed": 65536}) == {"return": {}}
    assert conn.cmd("quit") == {"return": {}}
    # As QEMU's cleanup (job-quit's recording): the block layer is drained, so
    # the job pauses, then cancelled, it leaves its pause point and aborts;
    # its events come before the reply.
    assert job_events(conn.events)[-8:] == ["created", "running", "paused", "running",
                                            "aborting", "BLOCK_JOB_CANCELLED", "concluded",
                                            "null"]
    assert conn.events[2]["event"] == "SHUTDOWN"
    assert q.wait() == 0
    assert "Traceback" not in q.stderr()


def test_a_runner_that_is_not_running_serves_no_daemon() -> None:
    # Jobs that nothing would ever wake are refused up front.
    with pytest.raises(RuntimeError, match="job runner is not running"):
        Daemon(job_time=JobRunner(RealClock()))


async def test_started_runner_runs_jobs_before_and_after_a_reset(short_tmp) -> None:
    runner = JobRunner(RealClock())
    events: list[tuple[str, dict]] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(runner.run)
        daemon = Daemon(job_time=runner, extensions=True)
        daemon.event_sink = lambda name, data, ts: events.append((name, data or {}))
        dispatcher = Dispatcher(daemon)

        def run(name: str, args: dict | None = None) -> Any:
            return dispatcher.execute(name, args)

        async def stream_to_the_end(job: str) -> None:
            paths = make_chain(short_tmp)
            for n, b in (("base", None), ("mid", "base"), ("top", "mid")):
                a: dict[str, Any] = {"driver": "qcow2", "node-name": n,
                                     "file": {"driver": "file", "node-name": n + "-file",
                                              "filename": paths[n]}}
                if b:
                    a["backing"] = b
                run("blockdev-add", a)
            # 8 MiB/s: the second chunk waits for its timer, which only the
            # runner's task can see expire.
            run("block-stream", {"job-id": job, "device": "top", "speed": 8 * MiB})
            assert run("query-jobs")[0]["status"] == "running"
            with trio.fail_after(20):      # a hang guard, not a measurement
                while run("query-jobs"):
                    await trio.sleep(0.01)
            assert (("JOB_STATUS_CHANGE", {"status": "null", "id": job}) in events)

        await stream_to_the_end("s0")
        # The same manager and runner serve the new graph after a reset.
        run("x-qmpd-reset")
        await stream_to_the_end("s1")
        nursery.cancel_scope.cancel()
