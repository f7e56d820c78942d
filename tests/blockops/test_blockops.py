"""Block operations through the command layer, without QEMU: snapshots,
transactions, dirty bitmaps, resize, write thresholds, exports, backup,
mirror and blockdev-create.  The byte-exact comparison with QEMU 7.2 is the
conformance test (the ops-* recordings); these tests pin down what a user of
qmpd notices on top of it: all-or-nothing transactions, bitmap counts after
writes, qmpd's answer where QEMU 7.2 crashes, and in-memory created images."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from qmpd.commands.dispatch import Daemon, Dispatcher
from qmpd.commands.errors import QMPError
from qmpd.jobs.clock import VirtualClock
from qmpd.profiles import select

# What these tests expect is QEMU 7.2's (their cases were recorded on it).
QEMU_7_2 = select("7.2.22")


def qmpd_img(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "qmpd.img.cli", *args], check=True,
                   stdout=subprocess.DEVNULL)


class Session:
    """A dispatcher plus the events it sent."""

    def __init__(self) -> None:
        self.disp = Dispatcher(Daemon(QEMU_7_2, job_time=VirtualClock()))
        self.events: list[tuple[str, Any]] = []
        self.disp.daemon.event_sink = lambda name, data, ts: self.events.append((name, data))

    def __call__(self, cmd: str, **args: Any) -> Any:
        return self.disp.execute(cmd, args)

    def error(self, cmd: str, **args: Any) -> str:
        with pytest.raises(QMPError) as exc:
            self.disp.execute(cmd, args)
        return str(exc.value.desc)

    def settle(self) -> None:
        """The main loop between two commands: jobs finish the I/O they wait on."""
        self.disp.daemon.jobs.run_due()

    def io(self, node: str, line: str) -> str:
        return self("human-monitor-command", **{"command-line": f'qemu-io {node} "{line}"'})

    def nodes(self) -> dict[str, dict]:
        return {n["node-name"]: n for n in self("query-named-block-nodes", flat=True)}

    def graph_edges(self) -> list[tuple[str, str, str]]:
        g = self("x-debug-query-block-graph")
        names = {n["id"]: n["name"] for n in g["nodes"]}
        return sorted((names[e["parent"]], e["name"], names[e["child"]]) for e in g["edges"])


@pytest.fixture
def d() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="qmpd-ops-") as tmp:
        for name in ("base", "ov", "t1"):
            qmpd_img("create", "-q", "-f", "qcow2", f"{tmp}/{name}.qcow2", "1M")
        yield tmp


@pytest.fixture
def s() -> Session:
    return Session()


def add_qcow2(s: Session, name: str, path: str) -> None:
    s("blockdev-add", driver="qcow2", **{"node-name": name},
      file={"driver": "file", "filename": path, "node-name": name + "-file"})


def test_snapshot_moves_users_and_makes_the_old_top_read_only(s: Session, d: str) -> None:
    add_qcow2(s, "base", f"{d}/base.qcow2")
    add_qcow2(s, "ov", f"{d}/ov.qcow2")
    s.io("base", "write -P 0x11 0 64k")
    s("blockdev-snapshot", node="base", overlay="ov")
    assert ("ov", "backing", "base") in s.graph_edges()
    assert s.nodes()["base"]["ro"] is True
    assert "Pattern verification failed" not in s.io("ov", "read -P 0x11 0 64k")
    assert s.error("blockdev-del", **{"node-name": "base"}) == \
        "Node 'base' is busy: node is used as backing hd of 'ov'"


def test_failed_transaction_changes_nothing(s: Session, d: str) -> None:
    add_qcow2(s, "base", f"{d}/base.qcow2")
    add_qcow2(s, "ov", f"{d}/ov.qcow2")
    before = (s.graph_edges(), s.nodes())
    err = s.error("transaction", actions=[
        {"type": "block-dirty-bitmap-add", "data": {"node": "base", "name": "b0"}},
        {"type": "blockdev-snapshot", "data": {"node": "base", "overlay": "ov"}},
        {"type": "abort", "data": {}}])
    assert err == "Transaction aborted using Abort action"
    assert (s.graph_edges(), s.nodes()) == before


def test_grouped_completion_mode_is_refused_by_bitmap_actions(s: Session, d: str) -> None:
    add_qcow2(s, "base", f"{d}/base.qcow2")
    err = s.error("transaction", actions=[
        {"type": "block-dirty-bitmap-add", "data": {"node": "base", "name": "b0"}}],
        properties={"completion-mode": "grouped"})
    assert err == ("Action 'block-dirty-bitmap-add' does not support Transaction property "
                   "completion-mode = grouped")


def test_bitmap_counts_follow_writes_at_their_granularity(s: Session, d: str) -> None:
    add_qcow2(s, "base", f"{d}/base.qcow2")
    s("block-dirty-bitmap-add", node="base", name="fine", granularity=512)
    s("block-dirty-bitmap-add", node="base", name="coarse")
    s.io("base", "write 100k 200k")
    s.io("base", "write 0 1")
    info = {b["name"]: b for b in s.nodes()["base"]["dirty-bitmaps"]}
    assert info["fine"]["count"] == 204800 + 512
    # 64 KiB chunks 0..4 (0, and 100k..300k touches chunks 1 to 4)
    assert info["coarse"]["count"] == 5 * 65536
    assert [b["name"] for b in s.nodes()["base"]["dirty-bitmaps"]] == ["coarse", "fine"]


def test_merge_with_an_empty_list_is_a_no_op(s: Session, d: str) -> None:
    # QEMU 7.2 dies with SIGSEGV here (recorded while writing these tests).
    add_qcow2(s, "base", f"{d}/base.qcow2")
    s("block-dirty-bitmap-add", node="base", name="b0")
    s.io("base", "write 0 4k")
    assert s("block-dirty-bitmap-merge", node="base", target="b0", bitmaps=[]) == {}
    assert s("transaction", actions=[{"type": "block-dirty-bitmap-merge", "data": {
        "node": "base", "target": "b0", "bitmaps": []}}]) == {}
    assert s.nodes()["base"]["dirty-bitmaps"][0]["count"] == 65536


def test_write_threshold_fires_once(s: Session, d: str) -> None:
    add_qcow2(s, "base", f"{d}/base.qcow2")
    s("block-set-write-threshold", **{"node-name": "base", "write-threshold": 65536})
    s.io("base", "write 60k 8k")
    s.io("base", "write 128k 8k")
    fired = [e for e in s.events if e[0] == "BLOCK_WRITE_THRESHOLD"]
    assert fired == [("BLOCK_WRITE_THRESHOLD", {"node-name": "base", "write-threshold": 65536,
                                                "amount-exceeded": 4096})]
    assert s.nodes()["base"]["write_threshold"] == 0


def test_resize_grows_the_guest_view(s: Session, d: str) -> None:
    add_qcow2(s, "base", f"{d}/base.qcow2")
    s("block_resize", **{"node-name": "base"}, size=2097152)
    assert s.io("base", "length") == "2 MiB\n"
    assert "wrote" in s.io("base", "write -P 3 1536k 4k")
    assert s.error("block_resize", **{"node-name": "base"}, size=2097153) == \
        "The new size must be a multiple of 512"


def test_resize_beyond_what_qcow2_or_the_block_layer_holds(s: Session, d: str) -> None:
    # QEMU 7.2's answers (measured): the block layer's limit comes before
    # qcow2's own checks, and an L1 table that cannot grow is an error, not
    # a crash; the image stays as it was.
    add_qcow2(s, "base", f"{d}/base.qcow2")
    assert s.error("block_resize", **{"node-name": "base"}, size=2**63 - 1) == \
        "offset(9223372036854775807) exceeds maximum(9223372035781033984)"
    for size in (2**62, 9223372035781033984):
        assert s.error("block_resize", **{"node-name": "base"}, size=size) == \
            "Failed to grow the L1 table: File too large"
    assert s.io("base", "length") == "1 MiB\n"


def test_an_export_holds_its_node(s: Session, d: str) -> None:
    add_qcow2(s, "base", f"{d}/base.qcow2")
    s("nbd-server-start", addr={"type": "unix", "data": {"path": f"{d}/nbd.sock"}})
    s("block-export-add", type="nbd", id="e0", **{"node-name": "base"})
    assert s.error("blockdev-del", **{"node-name": "base"}) == "Node base is in use"
    assert s("query-block-exports") == [{"id": "e0", "type": "nbd", "node-name": "base",
                                         "shutting-down": False}]
    s("nbd-server-stop")
    assert ("BLOCK_EXPORT_DELETED", {"id": "e0"}) in s.events
    s("blockdev-del", **{"node-name": "base"})


def test_incremental_backup_copies_only_dirty_clusters(s: Session, d: str) -> None:
    qmpd_img("create", "-q", "-f", "qcow2", f"{d}/inc.qcow2", "1M")
    add_qcow2(s, "disk", f"{d}/base.qcow2")
    add_qcow2(s, "full", f"{d}/t1.qcow2")
    add_qcow2(s, "inc", f"{d}/inc.qcow2")
    s.io("disk", "write -P 1 0 128k")
    s("transaction", actions=[
        {"type": "block-dirty-bitmap-add", "data": {"node": "disk", "name": "b0"}},
        {"type": "blockdev-backup", "data": {"device": "disk", "target": "full",
                                             "sync": "full", "job-id": "bk0"}}])
    s.settle()
    s.io("disk", "write -P 2 512k 4k")
    s("blockdev-backup", device="disk", target="inc", sync="incremental", bitmap="b0",
      **{"job-id": "bk1"})
    s.settle()
    done = [e[1] for e in s.events if e[0] == "BLOCK_JOB_COMPLETED"]
    assert [(e["device"], e["len"]) for e in done] == [("bk0", 1048576), ("bk1", 65536)]
    assert "Pattern verification failed" not in s.io("full", "read -P 1 0 128k")
    assert "Pattern verification failed" not in s.io("inc", "read -P 2 512k 4k")
    assert s.io("inc", "map").startswith("512 KiB (0x80000) bytes not allocated")
    assert s.nodes()["disk"]["dirty-bitmaps"][0]["count"] == 0
    assert ("disk", "file", "disk-file") in s.graph_edges()
    assert not any(name.startswith("#") for name in s.nodes())


def test_blockdev_create_makes_an_in_memory_image(s: Session, d: str) -> None:
    path = f"{d}/new.qcow2"
    s("blockdev-create", **{"job-id": "c1"},
      options={"driver": "file", "filename": path, "size": 0})
    # As in QEMU, the reply comes while the job still runs (it waits for its
    # I/O); the main loop (here: run_due) takes it to its end.
    assert s("query-jobs")[0]["status"] == "running"
    s.disp.daemon.jobs.run_due()
    s("job-dismiss", id="c1")
    s("blockdev-add", driver="file", **{"node-name": "f"}, filename=path)
    s("blockdev-create", **{"job-id": "c2"},
      options={"driver": "qcow2", "file": "f", "size": 1048576})
    s.disp.daemon.jobs.run_due()
    assert s("query-jobs") == [{"id": "c2", "type": "create", "status": "concluded",
                                "current-progress": 1, "total-progress": 1}]
    s("job-dismiss", id="c2")
    s("blockdev-add", driver="qcow2", **{"node-name": "q"}, file="f")
    assert s.nodes()["q"]["image"]["virtual-size"] == 1048576
    assert not os.path.exists(path)     # qmpd never creates host files
    assert not any(e[0].startswith("BLOCK_JOB") for e in s.events)


def test_mirror_pivots_on_complete(s: Session, d: str) -> None:
    add_qcow2(s, "disk", f"{d}/base.qcow2")
    add_qcow2(s, "tgt", f"{d}/t1.qcow2")
    s.io("disk", "write -P 7 0 64k")
    s("blockdev-mirror", device="disk", target="tgt", sync="full", **{"job-id": "m0"})
    # The copy's I/O completes after the command's reply.
    assert not any(e[0] == "BLOCK_JOB_READY" for e in s.events)
    s.settle()
    assert any(e[0] == "BLOCK_JOB_READY" for e in s.events)
    s("job-complete", id="m0")
    assert any(e[0] == "BLOCK_JOB_COMPLETED" for e in s.events)
    assert "Pattern verification failed" not in s.io("tgt", "read -P 7 0 64k")
    assert s("query-jobs") == []


def _random_op(r: Any, step: int) -> tuple[str, dict]:
    names = ["a", "b", "c", "nosuch"]

    def n() -> str:
        return r.choice(names)

    def b() -> str:
        return r.choice(["b0", "b1"])
    ops: list[tuple[str, dict]] = [
        ("blockdev-snapshot", {"node": n(), "overlay": n()}),
        ("block-dirty-bitmap-add", {"node": n(), "name": b(), "disabled": r.random() < .3}),
        ("block-dirty-bitmap-remove", {"node": n(), "name": b()}),
        ("block-dirty-bitmap-clear", {"node": n(), "name": b()}),
        ("block-dirty-bitmap-merge", {"node": n(), "target": b(), "bitmaps": [
            r.choice([b(), {"node": n(), "name": b()}]) for _ in range(r.randint(0, 2))]}),
        ("block_resize", {"node-name": n(), "size": r.choice([524288, 1048576, 2097152])}),
        ("block-set-write-threshold", {"node-name": n(), "write-threshold": 4096}),
        ("human-monitor-command",
         {"command-line": f'qemu-io {n()} "write {r.randint(0, 15) * 65536} 4096"'}),
        ("blockdev-backup", {"device": n(), "target": n(), "job-id": f"j{step}",
                             "sync": r.choice(["full", "top", "none", "incremental"]),
                             **({"bitmap": b()} if r.random() < .4 else {})}),
        ("blockdev-mirror", {"device": n(), "target": n(), "job-id": f"m{step}",
                             "sync": r.choice(["full", "top", "none"])}),
        ("block-job-cancel", {"device": f"j{r.randint(0, step)}", "force": True}),
        ("job-complete", {"id": f"m{r.randint(0, step)}"}),
        ("blockdev-del", {"node-name": n()}),
        ("transaction", {"actions": [r.choice([
            {"type": "blockdev-snapshot", "data": {"node": n(), "overlay": n()}},
            {"type": "block-dirty-bitmap-add", "data": {"node": n(), "name": b()}},
            {"type": "blockdev-backup", "data": {"device": n(), "target": n(),
                                                 "sync": "full", "job-id": f"t{step}"}},
            {"type": "abort", "data": {}}]) for _ in range(r.randint(1, 3))]}),
    ]
    return r.choice(ops)


# QEMU's QapiErrorClass values: what a client may switch on.
QAPI_ERROR_CLASSES = {"GenericError", "CommandNotFound", "DeviceNotActive", "DeviceNotFound",
                      "KVMMissingCap"}


def _visible_state(s: Session) -> tuple[Any, ...]:
    """What a client can see of the block layer: nodes (with bitmaps and
    thresholds), links, jobs."""
    return (s("query-named-block-nodes"), s("x-debug-query-block-graph"),
            s("query-block-jobs"), s("query-jobs"))


@pytest.mark.parametrize("seed", range(30))
def test_random_block_ops_never_break_the_daemon(seed: int, d: str) -> None:
    """Any sequence of these commands answers with QEMU-style errors only; a
    command that fails leaves nothing a client can see changed (no
    half-changed graph), and every link stays known to both of its ends."""
    import random

    r = random.Random(seed)
    qmpd_img("create", "-q", "-f", "qcow2", f"{d}/c.qcow2", "1M")
    s = Session()
    for name, path in (("a", "base"), ("b", "ov"), ("c", "c")):
        s("blockdev-add", driver="qcow2", **{"node-name": name},
          file={"driver": "file", "filename": f"{d}/{path}.qcow2"})
    for step in range(20):
        cmd, args = _random_op(r, step)
        before = _visible_state(s)
        try:
            s.disp.execute(cmd, args)
        except QMPError as e:
            assert e.desc and e.cls in QAPI_ERROR_CLASSES, (cmd, args, e.cls, e.desc)
            assert _visible_state(s) == before, (cmd, args, e.desc)
        g = s.disp.daemon.graph
        for node in g.nodes.values():
            for e in node.children:
                assert e in e.child.parents
            for e in node.parents:
                assert e.child is node


def test_backup_paused_before_its_last_request_completes_stays_paused(s: Session, d: str) -> None:
    # The pause reaches the backup while its last request is in flight: QEMU's
    # backup_loop stops at job_yield's pause point with everything copied, and
    # goes on to complete only when resumed.
    qmpd_img("create", "-q", "-f", "qcow2", f"{d}/t1.qcow2", "1M")
    add_qcow2(s, "disk", f"{d}/base.qcow2")
    add_qcow2(s, "tgt", f"{d}/t1.qcow2")
    s.io("disk", "write -P 1 0 128k")
    s("blockdev-backup", device="disk", target="tgt", sync="full", **{"job-id": "bk"})
    s("job-pause", id="bk")
    s.settle()
    [job] = s("query-block-jobs")
    assert (job["status"], job["paused"], job["offset"], job["len"]) == \
        ("paused", True, 1048576, 1048576)
    assert not [e for e in s.events if e[0] == "BLOCK_JOB_COMPLETED"]
    s("job-resume", id="bk")
    s.settle()
    assert [e[1]["device"] for e in s.events if e[0] == "BLOCK_JOB_COMPLETED"] == ["bk"]
    assert s("query-block-jobs") == []
