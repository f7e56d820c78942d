"""Block jobs without a server: the verbs in every state a user can reach,
the rate limiter, and what stream and commit do to the graph and the data,
driven by a virtual clock.

Expected values come from the QEMU 7.2 recordings in tests/data/recorded/qemu/job-*.json
and the reference (sections 5.5 and 7).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qmpd.engine.jobs.ratelimit import RateLimit
from tests.conformance import qmpreplay
from tests.jobs.jobtools import Harness, MiB, img, make_chain

SECOND = 1_000_000_000
# 524288 / 6553 slices of 100 ms: the wait after the first 512 KiB chunk at 64 KiB/s.
FIRST = int(524288 / 6553 * 1e8)


@pytest.fixture
def h(tmp_path) -> Harness:
    harness = Harness()
    harness.chain(make_chain(str(tmp_path)))
    return harness


# -- the verbs in each state ------------------------------------------------------
# How a user gets job "j" into each state QEMU lets a job rest in.
def _running(h: Harness) -> None:
    h.ok("block-stream", job_id="j", device="top", speed=65536)


def _paused(h: Harness) -> None:
    _running(h)
    h.ok("job-pause", id="j")


def _ready(h: Harness) -> None:
    h.ok("block-commit", job_id="j", device="top", base_node="base")
    # Ready after the command's reply: its dirty scan waits on I/O first.
    h.step(0)


def _standby(h: Harness) -> None:
    _ready(h)
    h.ok("job-pause", id="j")


def _pending(h: Harness) -> None:
    h.ok("block-stream", job_id="j", device="top", auto_finalize=False)


def _concluded(h: Harness) -> None:
    h.ok("block-stream", job_id="j", device="top", auto_finalize=False, auto_dismiss=False)
    h.ok("job-finalize", id="j")


REACH = {"running": _running, "paused": _paused, "ready": _ready, "standby": _standby,
         "pending": _pending, "concluded": _concluded}
# Each verb as a user sends it.
SEND = {"pause": ("job-pause", {"id": "j"}), "resume": ("job-resume", {"id": "j"}),
        "cancel": ("job-cancel", {"id": "j"}), "complete": ("job-complete", {"id": "j"}),
        "finalize": ("job-finalize", {"id": "j"}), "dismiss": ("job-dismiss", {"id": "j"}),
        "set-speed": ("block-job-set-speed", {"device": "j", "speed": 1 << 30})}
GONE = "gone"
# What the user sees afterwards: the job's status in query-jobs (GONE: no
# longer listed), or the error of a verb the job does not take (QEMU 7.2's
# texts, as in the recordings job-manual-finalize, job-stream-mid,
# job-commit-active-speed and ops-mirror).
AFTER: dict[tuple[str, str], str] = {
    ("running", "pause"): "paused",
    ("running", "resume"): "Can't resume a job that was not paused",
    ("running", "cancel"): GONE,
    ("running", "set-speed"): GONE,       # unthrottled, it finishes at once
    ("paused", "pause"): "Job is already paused",
    ("paused", "resume"): "running",
    ("paused", "cancel"): GONE,
    ("paused", "set-speed"): "paused",
    ("ready", "pause"): "standby",
    ("ready", "resume"): "Can't resume a job that was not paused",
    ("ready", "cancel"): GONE,
    ("ready", "complete"): GONE,
    ("ready", "set-speed"): "ready",
    ("standby", "pause"): "Job is already paused",
    ("standby", "resume"): "ready",
    ("standby", "cancel"): GONE,
    ("standby", "complete"): "standby",   # taken now, acted on after resume
    ("standby", "set-speed"): "standby",
    ("pending", "cancel"): GONE,
    ("pending", "finalize"): GONE,
    # job_user_resume asks "paused by the user?" before the verb table
    # (f21b-commit-filter-reopen: a concluded job answers so on QEMU 7.2)
    ("pending", "resume"): "Can't resume a job that was not paused",
    ("concluded", "resume"): "Can't resume a job that was not paused",
    ("concluded", "dismiss"): GONE,
}


def _status(h: Harness) -> str:
    jobs = h.ok("query-jobs")
    return jobs[0]["status"] if jobs else GONE


@pytest.mark.parametrize("state", list(REACH))
@pytest.mark.parametrize("verb", list(SEND))
def test_verb_in_state(h: Harness, state: str, verb: str) -> None:
    REACH[state](h)
    assert _status(h) == state
    name, args = SEND[verb]
    r = h.run(name, **{k.replace("-", "_"): v for k, v in args.items()})
    expected = AFTER.get((state, verb),
                         f"Job 'j' in state '{state}' cannot accept command verb '{verb}'")
    if expected == GONE or expected in REACH:
        assert r == {"return": {}}
        assert _status(h) == expected
    else:
        assert r == {"error": {"class": "GenericError", "desc": expected}}
        assert _status(h) == state      # a refused verb changes nothing


def test_block_job_verbs_match_their_job_twins(h: Harness) -> None:
    # block-job-* find the job by "device" and say DeviceNotActive when it
    # is missing; job-* say "Job not found".
    assert h.run("job-pause", id="nope")["error"] == {"class": "GenericError",
                                                       "desc": "Job not found"}
    assert h.run("block-job-pause", device="nope")["error"] == {
        "class": "DeviceNotActive", "desc": "Block job 'nope' not found"}
    _running(h)
    h.ok("block-job-pause", device="j")
    assert h.job("j")["status"] == "paused"
    # A job the user paused is cancelled only with force.
    assert h.run("block-job-cancel", device="j")["error"]["desc"] == \
        "The block job for device 'j' is currently paused"
    h.ok("block-job-resume", device="j")
    assert h.statuses("j") == ["created", "running", "paused", "running"]
    h.ok("block-job-cancel", device="j")
    assert h.statuses("j")[-4:] == ["aborting", "BLOCK_JOB_CANCELLED", "concluded", "null"]
    _concluded(h)
    h.ok("block-job-dismiss", id="j")
    assert h.ok("query-jobs") == []


def test_quit_cancels_every_job_and_reset_forgets_them(h: Harness) -> None:
    _running(h)
    h.daemon.jobs.cancel_all()
    assert h.statuses("j")[-4:] == ["aborting", "BLOCK_JOB_CANCELLED", "concluded", "null"]
    _pending(h)
    h.take_events()
    h.ok("x-qmpd-reset")
    # The jobs went without a word; the same manager serves the new graph.
    assert h.events == [] and h.ok("query-jobs") == []
    assert h.daemon.jobs.g is h.daemon.graph


def test_rate_limit_first_slice() -> None:
    # 65536 B/s: a 512 KiB chunk is 80 slices of 100 ms, so the job sleeps 8 s.
    rl = RateLimit()
    rl.set_speed(65536)
    assert rl.slice_quota == 6553
    assert rl.delay(512 * 1024, 1000) == FIRST
    # Another chunk in the same (extended) slice doubles the wait from the slice start.
    assert rl.delay(512 * 1024, 2000) == int(2 * 524288 / 6553 * 1e8) - 1000
    rl.set_speed(0)
    assert rl.delay(512 * 1024, 3000) == 0


def test_stream_stops_after_first_slice_then_completes(h: Harness) -> None:
    h.ok("block-stream", job_id="s0", device="top", speed=65536)
    assert h.statuses("s0") == ["created", "running"]
    j = h.job("s0")
    assert (j["len"], j["offset"], j["status"], j["busy"]) == (4 * MiB, 512 * 1024,
                                                               "running", False)
    h.step(FIRST - 1)
    assert h.job("s0")["offset"] == 512 * 1024
    h.step(1)
    assert h.job("s0")["offset"] == MiB
    # Unlimited speed wakes the sleeping job: it finishes without more time passing.
    h.ok("block-job-set-speed", device="s0", speed=0)
    assert h.ok("query-block-jobs") == []
    assert h.statuses("s0")[-5:] == ["waiting", "pending", "BLOCK_JOB_COMPLETED", "concluded",
                                     "null"]
    completed = [d for n, d in h.events if n == "BLOCK_JOB_COMPLETED"][0]
    assert completed == {"device": "s0", "len": 4 * MiB, "offset": 4 * MiB, "speed": 0,
                         "type": "stream"}
    # The data of the whole chain is in top now, and top has no backing file.
    assert h.read("top", 0x11, 0, MiB) and h.read("top", 0x22, MiB, MiB)
    assert h.read("top", 0x33, 3 * MiB, 512 * 1024)
    assert ("top", "backing", "mid") not in h.graph_edges()


def test_stream_graph_frozen_links_and_busy_nodes(h: Harness) -> None:
    h.ok("block-stream", job_id="s0", device="top", speed=65536)
    edges = h.graph_edges()
    cor = [c for p, n, c in edges if p == "s0" and n == "main node"][0]
    assert cor.startswith("#block")
    assert {("s0", "active node", "top"), ("s0", "intermediate node", "mid"),
            ("s0", "intermediate node", "base"), ("block-backend", "root", cor),
            (cor, "file", "top")} <= edges
    r = h.run("blockdev-reopen", options=[{"driver": "qcow2", "node-name": "top",
                                          "file": "top-file", "backing": None}])
    assert r["error"]["desc"] == "Cannot change frozen 'backing' link from 'top' to 'mid'"
    for node in ("top", "mid", "base"):
        assert h.run("blockdev-del", node_name=node)["error"]["desc"] == \
            f"Node '{node}' is busy: block device is in use by block job: stream"
    assert h.run("block-commit", job_id="c", device="top")["error"]["desc"] == \
        "Need a root block node"


def test_reopen_drains_the_job_and_advances_it(h: Harness) -> None:
    h.ok("block-stream", job_id="s0", device="top", speed=65536)
    h.take_events()
    h.run("blockdev-reopen", options=[{"driver": "qcow2", "node-name": "mid",
                                      "file": "mid-file", "backing": None}])
    assert h.statuses("s0") == ["paused", "running"]
    # Woken by the end of the drain, the job copied its next chunk (as QEMU).
    assert h.job("s0")["offset"] == MiB


def test_negative_speed_creates_and_drops_the_job(h: Harness) -> None:
    r = h.run("block-stream", job_id="s0", device="top", speed=-1)
    assert r["error"]["desc"] == "Parameter 'speed' expects a non-negative value"
    assert h.statuses("s0") == ["created", "null"]
    assert not [n for n in h.daemon.graph.nodes if n.startswith("#")]


def test_job_id_rules(h: Harness) -> None:
    assert h.run("block-stream", device="top")["error"]["desc"] == "Invalid job ID ''"
    h.ok("block-stream", job_id="s0", device="top", speed=65536)
    assert h.run("block-commit", job_id="s0", device="mid")["error"]["desc"] == \
        "Need a root block node"


def test_pause_resume_cancel_paused(h: Harness) -> None:
    h.ok("block-commit", job_id="c0", device="top", top_node="mid", speed=65536)
    h.ok("job-pause", id="c0")
    assert h.run("job-pause", id="c0")["error"]["desc"] == "Job is already paused"
    j = h.job("c0")
    assert (j["status"], j["paused"], j["offset"]) == ("paused", True, 1536 * 1024)
    assert h.run("block-job-cancel", device="c0")["error"]["desc"] == \
        "The block job for device 'c0' is currently paused"
    assert h.run("job-complete", id="c0")["error"]["desc"] == \
        "Job 'c0' in state 'paused' cannot accept command verb 'complete'"
    h.ok("job-cancel", id="c0")
    assert h.statuses("c0") == ["created", "running", "paused", "running", "aborting",
                                "BLOCK_JOB_CANCELLED", "concluded", "null"]
    # The commit filter is gone and the chain is whole again.
    assert ("top", "backing", "mid") in h.graph_edges()
    assert not [n for n in h.daemon.graph.nodes if n.startswith("#")]


def test_intermediate_commit_data_and_chain(h: Harness) -> None:
    h.ok("block-commit", job_id="c0", device="top", top_node="mid", base_node="base")
    assert h.statuses("c0")[-3:] == ["BLOCK_JOB_COMPLETED", "concluded", "null"]
    assert h.read("base", 0x22, MiB, MiB) and h.read("base", 0x11, 0, MiB)
    edges = h.graph_edges()
    assert ("top", "backing", "base") in edges and ("top", "backing", "mid") not in edges
    assert h.read("top", 0x33, 3 * MiB, 512 * 1024)


def test_manual_finalize_and_dismiss(h: Harness) -> None:
    h.ok("block-stream", job_id="s0", device="top", auto_finalize=False, auto_dismiss=False)
    assert h.statuses("s0")[-3:] == ["waiting", "pending", "BLOCK_JOB_PENDING"]
    assert h.ok("query-jobs")[0]["status"] == "pending"
    # Pending: the job still holds its nodes.
    assert "busy" in h.run("blockdev-del", node_name="top")["error"]["desc"]
    h.ok("job-finalize", id="s0")
    assert h.statuses("s0")[-2:] == ["BLOCK_JOB_COMPLETED", "concluded"]
    assert h.ok("query-jobs")[0]["status"] == "concluded"
    h.ok("job-dismiss", id="s0")
    assert h.statuses("s0")[-1] == "null" and h.ok("query-jobs") == []


def test_cancel_pending_aborts(h: Harness) -> None:
    h.ok("block-stream", job_id="s0", device="top", auto_finalize=False)
    h.ok("job-cancel", id="s0")
    assert h.statuses("s0")[-4:] == ["aborting", "BLOCK_JOB_CANCELLED", "concluded", "null"]
    # Nothing was changed in the chain.
    assert ("top", "backing", "mid") in h.graph_edges()


def test_active_commit_ready_complete(h: Harness) -> None:
    h.ok("block-commit", job_id="a0", device="top", base_node="base", filter_node_name="cf")
    assert not [d for n, d in h.events if n == "BLOCK_JOB_READY"]   # not before the reply
    h.step(0)
    ready = [d for n, d in h.events if n == "BLOCK_JOB_READY"]
    assert ready == [{"device": "a0", "len": 1536 * 1024, "offset": 1536 * 1024, "speed": 0,
                      "type": "commit"}]
    assert {("cf", "backing", "top"), ("a0", "source", "top"), ("a0", "target", "base"),
            ("a0", "intermediate node", "mid")} <= h.graph_edges()
    h.ok("job-pause", id="a0")
    h.ok("job-complete", id="a0")       # accepted in standby, acts after resume
    assert h.job("a0")["status"] == "standby"
    h.ok("job-resume", id="a0")
    assert h.statuses("a0")[-6:] == ["ready", "waiting", "pending", "BLOCK_JOB_COMPLETED",
                                     "concluded", "null"]
    assert h.read("base", 0x22, MiB, MiB) and h.read("base", 0x33, 3 * MiB, 512 * 1024)
    assert "cf" not in h.daemon.graph.nodes


@pytest.mark.parametrize("discard,ready_after", [("unmap", 2), ("ignore", 34)])
def test_mirror_zero_runs_cost_the_rate_limit_nothing_where_the_target_unmaps(
        tmp_path: Path, discard: str, ready_after: int) -> None:
    """mirror_iteration copies a data run and writes a zero run as zeroes;
    the rate limit counts the zero write only where the target cannot write
    zeroes by unmapping (bdrv_can_write_zeroes_with_unmap): 64 KiB of data
    and 2 MiB of zero clusters at 64 KiB/s are ready after the second the
    data took (the delay is asked for the last request), or after 33."""
    src, tgt = str(tmp_path / "src.qcow2"), str(tmp_path / "tgt.qcow2")
    img("create", "-q", "-f", "qcow2", src, "4M")
    img("io", "-c", "write -P 0x55 0 64k", "-c", "write -z 64k 2M", src)
    img("create", "-q", "-f", "qcow2", tgt, "4M")
    h = Harness()
    h.ok("blockdev-add", driver="qcow2", node_name="src",
         file={"driver": "file", "filename": src})
    h.ok("blockdev-add", driver="qcow2", node_name="tgt", discard=discard,
         file={"driver": "file", "filename": tgt})
    # sync=top without a backing file: everything allocated, and no zeroing
    # of the target first (blockdev-mirror's zero_target is for sync=full)
    h.ok("blockdev-mirror", job_id="j", device="src", target="tgt", sync="top", speed=65536)
    h.step(0)
    h.step((ready_after - 1) * SECOND)
    assert "BLOCK_JOB_READY" not in h.statuses("j")
    h.step(SECOND)
    assert "BLOCK_JOB_READY" in h.statuses("j")
    assert h.read("tgt", 0x55, 0, 65536) and h.read("tgt", 0, 65536, 2 * MiB)


@pytest.mark.parametrize("verb,force,final", [
    ("block-job-cancel", False, "BLOCK_JOB_COMPLETED"),
    ("block-job-cancel", True, "BLOCK_JOB_CANCELLED"),
    ("job-cancel", None, "BLOCK_JOB_CANCELLED"),
])
def test_active_commit_cancel_at_ready(h: Harness, verb: str, force: bool | None,
                                       final: str) -> None:
    h.ok("block-commit", job_id="a0", device="top", base_node="base")
    h.step(0)
    if verb == "job-cancel":
        h.ok(verb, id="a0")
    else:
        h.ok(verb, device="a0", force=force)
    assert final in h.statuses("a0")
    assert h.statuses("a0")[-2:] == ["concluded", "null"]
    # No pivot either way: top stays on top of its chain.
    assert ("top", "backing", "mid") in h.graph_edges()


def fail_reads(h: Harness, node: str, start: int, end: int) -> list[bool]:
    """Make reads that reach ``node`` in [start, end) fail with EIO, as a
    blkdebug inject-error rule does; returns a switch (set [0] False to heal)."""
    g = h.daemon.graph
    real = g.read
    on = [True]

    def read(n, offset, length):  # type: ignore[no-untyped-def]
        if on[0] and n.name == node and offset < end and offset + length > start:
            raise OSError(5, "Input/output error")
        return real(n, offset, length)
    g.read = read  # type: ignore[method-assign]
    return on


RECORDED = Path(__file__).parent.parent / "data" / "recorded" / "qemu"


def recorded_job_events(name: str) -> list[tuple[str, dict]]:
    """The job events of a QEMU recording, drain pairs aside, timestamps dropped."""
    tr = json.loads((RECORDED / f"{name}.json").read_text())
    return [(e["event"], e.get("data", {})) for e in qmpreplay.job_event_streams(tr)["\"s0\""]]


def normalized(events: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """Our events under the same normalization (paused/running pairs dropped)."""
    tr = {"steps": [{"index": 0, "events": [{"event": n, "data": d} for n, d in events]}]}
    return [(e["event"], e["data"]) for e in qmpreplay.job_event_streams(tr)["\"s0\""]]


@pytest.mark.parametrize("policy", ["report", "ignore", "enospc", "auto"])
def test_stream_io_error_policies(h: Harness, policy: str) -> None:
    # As in the job-error-* QEMU recordings: mid's data (1M-2M) cannot be read
    # (there through blkdebug's inject-error).
    fail_reads(h, "mid", MiB, 2 * MiB)
    h.ok("block-stream", job_id="s0", device="top", on_error=policy)
    assert normalized(h.events) == recorded_job_events(f"job-error-{policy}")
    # The stream failed: top keeps its backing file.
    assert ("top", "backing", "mid") in h.graph_edges()


def test_stream_io_error_stop_pauses_until_resumed(h: Harness) -> None:
    switch = fail_reads(h, "mid", MiB, 2 * MiB)
    h.ok("block-stream", job_id="s0", device="top", on_error="stop")
    assert [d["action"] for n, d in h.events if n == "BLOCK_JOB_ERROR"] == ["stop"]
    j = h.job("s0")
    assert (j["status"], j["paused"], j["io-status"], j["offset"]) == ("paused", True,
                                                                      "failed", MiB)
    switch[0] = False   # blkdebug's rule was "once": the retry succeeds
    h.ok("job-resume", id="s0")
    assert h.statuses("s0")[2:5] == ["BLOCK_JOB_ERROR", "paused", "running"]
    assert normalized(h.events) == recorded_job_events("job-error-stop")
    assert h.read("top", 0x22, MiB, MiB)
