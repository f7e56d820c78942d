"""Several stream and commit jobs on one backing chain, as QEMU's iotest 030
(TestParallelOps) runs them: which ones may run side by side, which are
refused and how the refusal names the node, and what a stream whose new
backing link is refused at its end leaves behind.

Expected texts are QEMU 7.2's, as recorded in
tests/data/recorded/qemu/f22s-*.json.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from qmpd.commands.drive import drive_new
from tests.jobs.jobtools import Harness, MiB, img

NUM = 6
SLOW = 1024


def make_long_chain(d: str) -> list[str]:
    """img-0 (raw, 0x01) <- img-1 .. img-5 (qcow2); img-1 has 0xff at 3M-4M,
    img-2 at 2M-3M, img-3 at 1M-2M, img-5 at 0-512k."""
    paths = [os.path.join(d, f"img-{i}.img") for i in range(NUM)]
    img("create", "-q", "-f", "raw", paths[0], "4M")
    img("io", "-f", "raw", "-c", "write -P 0x01 0 4M", paths[0])
    for i in range(1, NUM):
        img("create", "-q", "-f", "qcow2", "-b", paths[i - 1], "-F",
            "raw" if i == 1 else "qcow2", paths[i])
    for i, at in ((1, "3M 1M"), (2, "2M 1M"), (3, "1M 1M"), (5, "0 512k")):
        img("io", "-c", f"write -P 0xff {at}", paths[i])
    return paths


def add_chain(h: Harness, paths: list[str], read_only_below: bool = False) -> None:
    h.ok("blockdev-add", driver="raw", node_name="node0", read_only=read_only_below,
         file={"driver": "file", "filename": paths[0]})
    for i in range(1, NUM):
        ro: dict[str, Any] = {"read_only": True} if read_only_below and i < NUM - 1 else {}
        h.ok("blockdev-add", driver="qcow2", node_name=f"node{i}", backing=f"node{i - 1}",
             file={"driver": "file", "filename": paths[i]}, **ro)


@pytest.fixture
def paths(tmp_path) -> list[str]:
    return make_long_chain(str(tmp_path))


@pytest.fixture
def h(paths) -> Harness:
    harness = Harness()
    add_chain(harness, paths)
    return harness


def busy(node: str, job: str) -> str:
    return f"Node '{node}' is busy: block device is in use by block job: {job}"


def backing_of(h: Harness, node: str) -> str | None:
    for n in h.ok("query-named-block-nodes", flat=True):
        if n["node-name"] == node:
            return n.get("backing_file")
    raise KeyError(node)


def finish(h: Harness, job: str) -> None:
    """Unthrottled, the job runs to its end (it may have ended already)."""
    if any(j["device"] == job for j in h.ok("query-block-jobs")):
        h.ok("block-job-set-speed", device=job, speed=0)
    for _ in range(1000):
        if not any(j["device"] == job for j in h.ok("query-block-jobs")):
            return
        h.step(10**9)
    raise AssertionError(f"{job} never ended")


def test_streams_with_bottoms_run_side_by_side(h: Harness, paths: list[str]) -> None:
    # bottom bounds the op-blocker check: node4's stream does not reach the
    # copy-on-read filter node2's stream put above node2.
    # paused at once: another job's drains would let a throttled one copy on
    h.ok("block-stream", device="node2", job_id="s2", bottom="node1", speed=SLOW)
    h.ok("job-pause", id="s2")
    h.ok("block-stream", device="node4", job_id="s4", bottom="node3", speed=SLOW,
         filter_node_name="f4")
    h.ok("job-pause", id="s4")
    # overlapping ones are refused at the first node another job holds
    assert h.run("block-stream", device="node3", job_id="x", base_node="node1")[
        "error"]["desc"] == busy("node3", "stream")
    assert h.run("block-stream", device="node5", job_id="x", bottom="node4")[
        "error"]["desc"] == busy("f4", "stream")
    for job in ("s4", "s2"):
        h.ok("job-resume", id=job)
        finish(h, job)
    assert backing_of(h, "node4") == paths[2]
    assert backing_of(h, "node2") == paths[0]
    assert h.read("node4", 0xff, 1 * MiB, MiB)     # node3's data copied up
    assert h.read("node2", 0xff, 3 * MiB, MiB)     # node1's data copied up


def test_commit_checks_its_base_and_the_node_above_top(h: Harness) -> None:
    h.ok("block-stream", device="node3", job_id="s3", base_node="node1", speed=SLOW,
         filter_node_name="f3")
    h.ok("job-pause", id="s3")
    # the stream's filter as the commit's base: the check includes the base
    assert h.run("block-commit", device="node5", job_id="c", base_node="f3")[
        "error"]["desc"] == busy("f3", "stream")
    # committing node1 into node0 rewrites node2's backing link, which the stream holds
    assert h.run("block-commit", device="node5", job_id="c", top_node="node1",
                 base_node="node0")["error"]["desc"] == busy("node2", "stream")
    # above the stream's filter: runs beside it
    h.ok("block-commit", device="node5", job_id="c", top_node="node5", base_node="node4")


def test_busy_names_the_drive(paths: list[str]) -> None:
    h = Harness()
    drive_new(h.daemon, {"id": "drive0", "if": "none", "file": paths[-1], "format": "qcow2",
                         "node-name": "top"})
    h.ok("block-commit", device="drive0", job_id="c", top=paths[3], base=paths[1],
         speed=SLOW)
    # the active layer is held by the commit and is named by its drive
    assert h.run("block-stream", device="top", job_id="s", base=paths[3])[
        "error"]["desc"] == busy("drive0", "commit")


def test_read_only_stream_cannot_freeze_a_link_to_a_commit_filter(paths: list[str]) -> None:
    h = Harness()
    add_chain(h, paths, read_only_below=True)
    h.ok("block-commit", device="node5", job_id="c", top_node="node2", base_node="node0",
         filter_node_name="commit-filter", speed=SLOW)
    r = h.run("block-stream", device="node4", job_id="s", base_node="node2")
    assert r["error"]["desc"] == "Cannot freeze 'backing' link to 'commit-filter'"
    assert h.ok("query-named-block-nodes", flat=True)  # still answering
    assert [n["ro"] for n in h.ok("query-named-block-nodes", flat=True)
            if n["node-name"] == "node4"] == [True]    # the reopen was not done


def test_stream_whose_new_link_is_refused_fails_with_eperm(h: Harness) -> None:
    # node4's stream will link node4 to node2, which the commit reads
    # exclusively (no consistent read shared on its intermediate node).
    h.ok("block-commit", device="node5", job_id="c", top_node="node2", base_node="node0",
         filter_node_name="commit-filter", speed=SLOW)
    h.ok("job-pause", id="c")      # the stream's drains would let it copy on
    h.ok("block-stream", device="node4", job_id="s", base_node="node2", speed=SLOW)
    h.take_events()
    finish(h, "s")
    done = [d for n, d in h.take_events() if n == "BLOCK_JOB_COMPLETED"]
    assert done == [{"type": "stream", "device": "s", "len": 4 * MiB, "offset": 4 * MiB,
                     "speed": 0, "error": "Operation not permitted"}]
    # the filter is gone, the link is not changed, the commit goes on
    assert h.job("c")["status"] == "paused"
    edges = h.graph_edges()
    assert ("node4", "backing", "node3") in edges
    h.ok("job-resume", id="c")
    finish(h, "c")


def test_blkdebug_breakpoint_suspends_one_request(tmp_path) -> None:
    base = os.path.join(str(tmp_path), "b.qcow2")
    top = os.path.join(str(tmp_path), "t.qcow2")
    img("create", "-q", "-f", "qcow2", base, "4M")
    img("io", "-c", "write -P 0x22 0 4M", base)
    img("create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
    h = Harness()
    h.ok("blockdev-add", driver="qcow2", node_name="base",
         file={"driver": "blkdebug", "node-name": "dbg",
               "image": {"driver": "file", "filename": base}})
    h.ok("blockdev-add", driver="qcow2", node_name="top", backing="base",
         file={"driver": "file", "filename": top})

    def hmp(cmd: str) -> str:
        return h.ok("human-monitor-command", command_line=f'qemu-io base "{cmd}"')

    assert hmp("break no_such_event bp") == \
        "Could not set breakpoint: No such file or directory\n"
    assert hmp("break read_aio bp") == ""
    assert hmp("resume bp") == "Could not resume request: No such file or directory\n"
    h.ok("block-stream", device="top", job_id="s")
    hmp("wait_break bp")
    h.step(10**9)
    assert h.job("s")["offset"] == 0            # held at its first read
    assert hmp("resume bp") == "blkdebug: Resuming request 'bp'\n"
    # the breakpoint was used up: the stream runs to its end
    for _ in range(100):
        if not h.ok("query-block-jobs"):
            break
        h.step(10**9)
    assert h.ok("query-block-jobs") == []
    assert hmp("remove_break bp") == \
        "Could not remove breakpoint bp: No such file or directory\n"
