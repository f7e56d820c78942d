"""Writes the second set of issue-21 scenarios, tests/data/recorded/scenarios/f21b-*.json.

The same families as make_f21_scenarios.py, in shapes the first set did not
have: two jobs at once, reopen while a job is paused, error paths and the
state after them, nested ``backing`` dicts that differ in several options at
several depths (and in another key order), ``blockdev-del`` of nodes whose
parents are of different kinds (filters, formats, quorum, jobs), empty
``iothread`` links on other devices, bitmaps of several granularities across
backup / cancel / merge, mirror with ``replaces`` under filters and its
argument checks, ``actual-size`` after commits of other cluster sizes, and
the event streams of these.  Not a test: run it, then record the scenarios on
QEMU 7.2 twice (tests/tools/record_corpus.py) and on the other releases.

    python3 tests/tools/make_f21b_scenarios.py [--outdir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_f21_scenarios import (  # noqa: E402  (a sibling script, not a package)
    DROP,
    HD_SETUP,
    OUT,
    QB,
    QBJ,
    QJ,
    QN,
    QNF,
    SETTLE,
    SPEED,
    G,
    add,
    chain3,
    ex,
    hd,
    hmp,
    reads_hd,
    reopen,
    wait,
    wait_ev,
    with_,
    write_all,
)

Json = Any
SCENARIOS: list[dict[str, Json]] = []


def scenario(name: str, description: str, setup: list[str], steps: list[dict[str, Json]],
             **extra: Json) -> None:
    SCENARIOS.append({"name": name, "description": description,
                      "source": "hand-written (tests/tools/make_f21b_scenarios.py)",
                      "setup": setup, "steps": steps, **extra})


def q(name: str, image: str, **extra: Json) -> dict[str, Json]:
    return ex("blockdev-add", driver="qcow2", node_name=name,
              file={"driver": "file", "filename": f"$DIR/{image}", "node-name": name + "-file"},
              **extra)


def sha(node: str, name: str) -> dict[str, Json]:
    return ex("x-debug-block-dirty-bitmap-sha256", node=node, name=name)


# --------------------------------------------------------------------------
# jobs over reopened chains: two jobs at once, reopen while paused

def jobs_two() -> None:
    c = chain3()
    setup = HD_SETUP + ["qemu-img create -q -f qcow2 $DIR/t.qcow2 3M",
                        "qemu-img create -q -f qcow2 $DIR/u.qcow2 3M"]
    scenario("f21b-jobs-two-at-once",
             "a stream and a backup on one chain at once; conflicting jobs; reopen while paused",
             setup, [
                 add(c), q("t", "t.qcow2"), q("u", "u.qcow2"),
                 ex("block-stream", job_id="s", device="hd1", speed=SPEED),
                 ex("blockdev-backup", job_id="b", device="hd0", target="t", sync="full",
                    speed=SPEED),
                 SETTLE, QBJ, QJ,
                 ex("block-stream", job_id="s2", device="hd0"),
                 ex("block-commit", job_id="c", device="hd0"),
                 ex("block-commit", job_id="c", device="hd0", top_node="hd1"),
                 # (a backup of hd2 here aborts QEMU 7.2: bdrv_do_drained_end's
                 # quiesce_counter assertion, in both runs; left out)
                 ex("blockdev-mirror", job_id="m", device="hd0", target="u", sync="full"),
                 ex("blockdev-backup", job_id="s", device="hd0", target="u", sync="full"),
                 ex("job-pause", id="s"),
                 wait("s", "paused"),
                 reopen(with_(c["backing"], backing=None)),
                 reopen(with_(c["backing"], read_only=True)),
                 reopen(with_(c, backing=None)),
                 reopen(with_(c, detect_zeroes="on")),
                 QNF,
                 ex("block-job-pause", device="b"),
                 wait("b", "paused"),
                 QBJ,
                 ex("block-job-cancel", device="b"),
                 ex("job-resume", id="b"),
                 ex("block-job-cancel", device="b"),
                 wait("b", "null"),
                 ex("job-resume", id="s"),
                 ex("block-job-set-speed", device="s", speed=0),
                 wait("s", "null"),
                 QNF, G, *reads_hd("hd1"),
                 reopen(with_(c["backing"], backing=None)),
                 QNF,
             ])
    scenario("f21b-commit-filter-reopen",
             "intermediate commit with a filter node; reopens of base/top during the job; errors",
             HD_SETUP, [
                 add(c),
                 ex("block-commit", job_id="c", device="hd0", top_node="hd1", base_node="hd2",
                    filter_node_name="cf", speed=SPEED, auto_dismiss=False),
                 SETTLE, QBJ, G,
                 reopen(with_(c["backing"]["backing"], read_only=True)),
                 reopen(with_(c["backing"], backing="hd2")),
                 reopen(with_(c, backing="hd2")),
                 reopen(with_(c, read_only=True)),
                 ex("blockdev-del", node_name="cf"),
                 ex("blockdev-del", node_name="hd2"),
                 ex("block-job-pause", device="c"),
                 wait("c", "paused"),
                 reopen(with_(c, cache={"no-flush": True})),
                 QNF,
                 ex("block-job-resume", device="c"),
                 ex("block-job-set-speed", device="c", speed=0),
                 wait("c", "concluded"),
                 QJ,
                 ex("job-dismiss", id="c"),
                 QNF, G, *reads_hd("hd0"),
                 reopen(with_(c, backing="hd2", cache={"no-flush": True})),
                 reopen(with_(c, backing=None, cache={"no-flush": True})),
                 QNF,
             ])


# --------------------------------------------------------------------------
# reopen with nested backing dicts (other combinations, other key orders)

def reopen_nested() -> None:
    c = chain3()
    b = c["backing"]
    bb = b["backing"]
    variants = [
        # key order in the request differs from the stored one
        with_(c, backing={"backing": with_(bb, driver="raw"), "file": b["file"], "node-name": "hd1",
                          "driver": "qcow2", "read-only": True}),
        with_(c, backing={"backing": bb, "file": with_(b["file"], filename="$DIR/hd2.qcow2"),
                          "driver": "raw", "node-name": "hd1"}),
        with_(c, backing=with_(b, detect_zeroes="on", backing=with_(bb, driver="raw"))),
        with_(c, backing=with_(b, cache={"direct": True, "no-flush": True},
                               backing=with_(bb, node_name="other"))),
        with_(c, backing=with_(b, file=with_(b["file"], node_name="f9"),
                               backing=with_(bb, node_name="other"))),
        with_(c, backing=with_(b, file=with_(b["file"], aio="native"))),
        with_(c, backing=with_(b, file=with_(b["file"], filename="$DIR/hd0.qcow2",
                                                 node_name="f9"))),
        with_(c, backing=with_(b, backing=with_(bb, file=with_(bb["file"], driver="null-co"),
                                                    read_only=False))),
        with_(c, backing=with_(b, backing=with_(bb, backing=hd(0)))),
        with_(c, backing=with_(b, backing=with_(bb, backing="hd0"))),
        with_(c, backing=with_(b, backing=with_(bb, backing=None), auto_read_only=False)),
        with_(c, backing=with_(b, lazy_refcounts=True, backing=with_(bb, driver="raw"))),
        with_(c, backing=with_(b, file="nosuch")),
        with_(c, backing=with_(b, backing="nosuch")),
        with_(c, backing={"driver": "qcow2"}),
        with_(c, backing={"node-name": "hd1"}),
        with_(c, backing=with_(b, node_name=DROP)),
        with_(c, backing=with_(b, driver=DROP)),
        with_(c, backing=with_(b, file=with_(b["file"], node_name=DROP))),
        with_(c, file=with_(c["file"], filename="$DIR/hd1.qcow2"),
              backing=with_(b, driver="raw")),
        with_(c, read_only=True, backing=with_(b, read_only=False)),
        # succeed
        with_(c, backing=with_(b, read_only=True, backing=with_(bb, read_only=True))),
        with_(c, backing=with_(b, backing=with_(bb, detect_zeroes="on"))),
        with_(c, backing=with_(b, backing=with_(bb, backing=None))),
        with_(c, backing=with_(b, file="hd2-file")),
    ]
    steps: list[dict[str, Json]] = [add(c)]
    steps += [reopen(v) for v in variants]
    steps += [QNF,
              # several entries, the nested one second
              reopen(with_(hd(2), read_only=True), with_(c, backing=with_(b, driver="raw"))),
              reopen(with_(c, backing=with_(b, backing="hd2")), with_(b, backing=None)),
              reopen(with_(b, backing=None), with_(c, backing=with_(b, backing=None, discard="unmap"))),
              QNF]
    scenario("f21b-reopen-nested-orders",
             "reopen with nested backing dicts: several differing options, other key orders, lists",
             HD_SETUP, steps)


def reopen_file_swap_failed() -> None:
    """A file swap that a later check of the same node refuses: QEMU's qcow2
    keeps its data child pointing at the swapped-in child the abort dropped
    (qcow2_reopen_abort runs before the transaction restores bs->file), and
    lists "data-file-raw" from then on (and crashes when it closes the node); a swap refused by another node of the
    queue, or one that succeeds, leaves no trace."""
    c = chain3()
    b = c["backing"]
    spare = [f"qemu-img create -q -f qcow2 $DIR/spare{i}.qcow2 3M" for i in range(3)]
    files = [ex("blockdev-add", driver="file", node_name=f"spare{i}",
                filename=f"$DIR/spare{i}.qcow2") for i in range(3)]
    steps: list[dict[str, Json]] = [add(c), *files, QNF,
        # the same node refuses after its file was swapped
        reopen(with_(c, file="spare0", **{"data-file": "spare1"})),
        QNF,
        # the driver's own prepare refuses (before the swap)
        reopen(with_(b, file="spare1", **{"cache-size": 65536, "l2-cache-size": 131072})),
        reopen(with_(b, file="spare1", **{"data-file": "spare2"})),
        QNF,
        # another node of the queue refuses
        reopen(with_(hd(2), file="spare2"), with_(c, **{"data-file": "spare1"})),
        QNF,
        # the node reopened again as it is, then a successful swap elsewhere
        reopen(c),
        reopen(with_(hd(2), file="spare2")),
        QNF,
        # (x-debug-query-block-graph or closing hd0 now crashes QEMU: its
        # data child is freed)
        QB]
    scenario("f21b-reopen-file-swap-refused",
             "blockdev-reopen: a file child swap refused by a later check of the same node, "
             "by another node of the queue, and one that succeeds; what queries show after",
             HD_SETUP + spare, steps)


def stream_drains() -> None:
    """A throttled backup of the top while a stream of the same chain starts
    and completes: the stream's graph changes drain the top, and the backup
    pauses and resumes for each (the filter's insertion; at completion the
    filter dropped, the backing link changed, the job's BlockBackend gone...)."""
    setup = HD_SETUP + ["qemu-img create -q -f qcow2 $DIR/t.qcow2 3M"]
    head = [add(chain3()),
            ex("blockdev-add", driver="qcow2", node_name="t",
               file={"driver": "file", "filename": "$DIR/t.qcow2"}),
            ex("blockdev-backup", job_id="b", device="hd0", target="t", sync="full", speed=65536),
            {"sleep": 0.2}]
    tail = [{"sleep": 0.3}, QBJ, ex("block-job-cancel", device="b", force=True), wait("b", "null")]
    for name, extra in (("all", {}), ("base", {"base-node": "hd2"}),
                        ("filter", {"filter-node-name": "cor"})):
        scenario(f"f21b-stream-drains-{name}",
                 "block-stream of the top while a throttled backup of it runs: the backup's "
                 "pauses around the stream's graph changes",
                 setup, head + [ex("block-stream", job_id="s", device="hd0", **extra),
                                wait("s", "null")] + tail)


# --------------------------------------------------------------------------
# blockdev-del of nodes with parents of different kinds

def del_parents() -> None:
    setup = ["qemu-img create -q -f qcow2 $DIR/b.qcow2 1M",
             "qemu-img create -q -f qcow2 $DIR/o1.qcow2 1M",
             "qemu-io -f qcow2 -c 'write -P 1 0 1M' $DIR/o1.qcow2",
             "qemu-img create -q -f qcow2 $DIR/o2.qcow2 1M",
             "qemu-img create -q -f qcow2 $DIR/t.qcow2 1M"]
    scenario("f21b-del-parent-kinds",
             "blockdev-del of nodes whose parents are filters, formats, quorum, blkdebug and jobs",
             setup, [
                 q("b", "b.qcow2", read_only=True),
                 ex("object-add", qom_type="throttle-group", id="tg", limits={"iops-total": 1000}),
                 ex("blockdev-add", driver="throttle", node_name="thr", file="b",
                    throttle_group="tg", read_only=True),
                 q("o1", "o1.qcow2", backing="b"),
                 ex("blockdev-del", node_name="b"),
                 ex("blockdev-add", driver="blkdebug", node_name="dbg", image="b", read_only=True),
                 ex("blockdev-del", node_name="b"),
                 ex("blockdev-del", node_name="thr"),
                 ex("blockdev-del", node_name="b"),
                 ex("blockdev-del", node_name="o1"),
                 ex("blockdev-del", node_name="b"),
                 ex("blockdev-add", driver="quorum", node_name="qu", children=["dbg", "b-file"],
                    vote_threshold=2, read_only=True),
                 ex("blockdev-del", node_name="b-file"),
                 ex("blockdev-del", node_name="dbg"),
                 ex("blockdev-del", node_name="qu"),
                 ex("blockdev-del", node_name="dbg"),
                 ex("blockdev-del", node_name="b"),
                 QNF,
                 q("o1", "o1.qcow2"), q("t", "t.qcow2"),
                 ex("blockdev-add", driver="copy-on-read", node_name="cor", file="o1"),
                 ex("blockdev-backup", job_id="j", device="cor", target="t", sync="full",
                    speed=SPEED),
                 SETTLE,
                 ex("blockdev-del", node_name="t"),
                 ex("blockdev-del", node_name="o1"),
                 ex("blockdev-del", node_name="cor"),
                 ex("blockdev-del", node_name="o1-file"),
                 ex("block-job-cancel", device="j"),
                 wait("j", "null"),
                 ex("blockdev-del", node_name="o1"),
                 ex("blockdev-del", node_name="cor"),
                 ex("blockdev-del", node_name="o1"),
                 ex("blockdev-del", node_name="t"),
                 q("o2", "o2.qcow2"),
                 ex("blockdev-add", driver="raw", node_name="r1", file="o2"),
                 ex("blockdev-add", driver="raw", node_name="r2", file="o2", offset=65536),
                 ex("blockdev-add", driver="blkverify", node_name="bv", test="r1", raw="r2"),
                 ex("blockdev-del", node_name="r2"),
                 ex("blockdev-del", node_name="o2"),
                 ex("blockdev-del", node_name="bv"),
                 ex("blockdev-del", node_name="o2"),
                 ex("blockdev-del", node_name="r1"),
                 ex("blockdev-del", node_name="o2"),
                 ex("blockdev-del", node_name="r2"),
                 ex("blockdev-del", node_name="o2"),
                 QNF,
             ])


# --------------------------------------------------------------------------
# devices: empty iothread links elsewhere

def devices() -> None:
    scenario("f21b-dev-iothread-empty-more",
             "empty iothread links on virtio-scsi and virtio-blk, with and without drives, unplug",
             ["qemu-img create -q -f qcow2 $DIR/d.qcow2 1M"], [
                 {"sleep": 1.5},
                 ex("object-add", qom_type="iothread", id="io0"),
                 ex("blockdev-add", driver="null-co", node_name="n1"),
                 ex("blockdev-add", driver="null-co", node_name="n2"),
                 q("d0", "d.qcow2"),
                 ex("device_add", driver="virtio-scsi-pci", id="s0", iothread="io0"),
                 ex("device_add", driver="scsi-hd", id="sd0", drive="n1", bus="s0.0"),
                 QB,
                 ex("device_add", driver="virtio-scsi-pci", id="s1", iothread=""),
                 ex("device_add", driver="scsi-hd", id="sd1", drive="n1", bus="s1.0"),
                 ex("device_add", driver="scsi-hd", id="sd1", drive="n2", bus="s1.0"),
                 ex("device_add", driver="virtio-blk-pci", id="v0", drive="d0", iothread="",
                    num_queues=2),
                 ex("device_add", driver="virtio-blk-pci", id="v0", drive="d0", iothread=" "),
                 ex("device_add", driver="virtio-blk-pci", id="v1", drive="d0", iothread="io0"),
                 QB, QNF,
                 ex("x-blockdev-set-iothread", node_name="n2", iothread="io0"),
                 ex("x-blockdev-set-iothread", node_name="n1", iothread=None),
                 ex("x-blockdev-set-iothread", node_name="d0", iothread=None),
                 ex("device_del", id="v0"),
                 {"sleep": 0.3},
                 ex("x-blockdev-set-iothread", node_name="d0", iothread="io0"),
                 ex("x-blockdev-set-iothread", node_name="d0", iothread=None),
                 ex("object-del", id="io0"),
                 QB,
             ], qemu_args=["-M", "pc", "-nodefaults", "-accel", "tcg"])


# --------------------------------------------------------------------------
# dirty bitmaps across backup / cancel / merge with several granularities

def bitmaps() -> None:
    setup = ["qemu-img create -q -f qcow2 $DIR/d.qcow2 4M",
             "qemu-io -f qcow2 -c 'write -P 1 0 4M' $DIR/d.qcow2",
             "qemu-img create -q -f qcow2 $DIR/t.qcow2 4M",
             "qemu-img create -q -f qcow2 $DIR/t2.qcow2 4M",
             "qemu-img create -q -f qcow2 -o cluster_size=4096 $DIR/p.qcow2 4M",
             "qemu-img bitmap --add -g 128k $DIR/p.qcow2 pb",
             "qemu-img bitmap --add --disable -g 4k $DIR/p.qcow2 pd"]
    base = [q("d", "d.qcow2"), q("t", "t.qcow2"), q("t2", "t2.qcow2"),
            ex("block-dirty-bitmap-add", node="d", name="g4k", granularity=4096),
            ex("block-dirty-bitmap-add", node="d", name="g1m", granularity=1048576),
            ex("block-dirty-bitmap-add", node="d", name="g64k", disabled=True)]
    scenario("f21b-bitmap-gran-backup",
             "bitmaps of several granularities across incremental backups, cancel and merges",
             setup, [
                 *base,
                 hmp("d", "write -P 2 8k 4k"), hmp("d", "write -P 3 3M 100k"),
                 QN, sha("d", "g4k"), sha("d", "g1m"),
                 ex("blockdev-backup", job_id="k", device="d", target="t", sync="incremental",
                    bitmap="g4k", speed=SPEED),
                 SETTLE,
                 ex("block-dirty-bitmap-merge", node="d", target="g64k", bitmaps=["g4k"]),
                 ex("block-dirty-bitmap-merge", node="d", target="g64k", bitmaps=["g1m"]),
                 ex("block-dirty-bitmap-enable", node="d", name="g64k"),
                 hmp("d", "write -P 4 2M 4k"),
                 QN,
                 ex("blockdev-backup", job_id="k2", device="d", target="t2", sync="incremental",
                    bitmap="g4k"),
                 ex("blockdev-backup", job_id="k2", device="d", target="t2", sync="bitmap",
                    bitmap="nosuch", bitmap_mode="always", speed=SPEED),
                 ex("blockdev-backup", job_id="k2", device="d", target="t2", sync="full",
                    bitmap="g64k"),
                 ex("blockdev-backup", job_id="k2", device="d", target="t2", sync="full",
                    bitmap="g64k", bitmap_mode="bogus"),
                 ex("blockdev-backup", job_id="k2", device="d", target="t2", sync="none",
                    bitmap="g64k", bitmap_mode="never"),
                 ex("block-job-cancel", device="k"),
                 wait("k", "null"),
                 QN, sha("d", "g4k"),
                 ex("blockdev-backup", job_id="k3", device="d", target="t2", sync="bitmap",
                    bitmap="g1m", bitmap_mode="never"),
                 wait("k3", "null"),
                 ex("blockdev-backup", job_id="k4", device="d", target="t", sync="incremental",
                    bitmap="g4k", auto_finalize=False),
                 wait("k4", "pending"),
                 QN,
                 ex("job-cancel", id="k4"),
                 wait("k4", "null"),
                 QN,
                 ex("blockdev-backup", job_id="k5", device="d", target="t", sync="bitmap",
                    bitmap="g64k", bitmap_mode="always"),
                 wait("k5", "null"),
                 QN, sha("d", "g64k"), sha("d", "g4k"),
                 ex("block-dirty-bitmap-merge", node="d", target="g4k", bitmaps=["g1m", "g64k"]),
                 sha("d", "g4k"),
                 QN,
             ])
    scenario("f21b-bitmap-persistent-jobs",
             "persistent bitmaps of a 4k-cluster image in backups and transactions; busy, disabled",
             setup, [
                 q("p", "p.qcow2"), q("t", "t.qcow2"),
                 QN,
                 hmp("p", "write -P 5 0 300k"),
                 ex("transaction", actions=[
                     {"type": "block-dirty-bitmap-add",
                      "data": {"node": "p", "name": "n", "persistent": True, "granularity": 8192}},
                     {"type": "block-dirty-bitmap-disable", "data": {"node": "p", "name": "pb"}},
                     {"type": "blockdev-backup",
                      "data": {"job-id": "k", "device": "p", "target": "t", "sync": "bitmap",
                               "bitmap": "pb", "bitmap-mode": "on-success",
                               "speed": SPEED}}]),
                 SETTLE, QN,
                 ex("transaction", actions=[
                     {"type": "block-dirty-bitmap-enable", "data": {"node": "p", "name": "pd"}},
                     {"type": "block-dirty-bitmap-clear", "data": {"node": "p", "name": "pb"}}]),
                 QN,
                 ex("block-dirty-bitmap-merge", node="p", target="pd", bitmaps=["pb"]),
                 ex("block-dirty-bitmap-merge", node="p", target="n", bitmaps=["pb", "pd"]),
                 ex("block-dirty-bitmap-remove", node="p", name="pb"),
                 ex("block-job-set-speed", device="k", speed=0),
                 wait("k", "null"),
                 QN, sha("p", "pb"), sha("p", "n"),
                 ex("block-dirty-bitmap-remove", node="p", name="pd"),
                 ex("blockdev-del", node_name="p"),
                 q("p", "p.qcow2"),
                 QN,
             ])


# --------------------------------------------------------------------------
# blockdev-mirror: argument checks and replaces under filters

def mirror() -> None:
    setup = ["qemu-img create -q -f qcow2 $DIR/src.qcow2 1M",
             "qemu-io -f qcow2 -c 'write -P 7 0 256k' $DIR/src.qcow2",
             "qemu-img create -q -f qcow2 $DIR/t1.qcow2 1M",
             "qemu-img create -q -f qcow2 $DIR/t2.qcow2 1M",
             "qemu-img create -q -f qcow2 $DIR/small.qcow2 512k"]
    m = {"job_id": "m", "device": "src", "target": "t1", "sync": "full"}
    scenario("f21b-mirror-arg-checks", "blockdev-mirror argument checks in combination",
             setup, [
                 q("src", "src.qcow2"), q("t1", "t1.qcow2"), q("t2", "t2.qcow2"),
                 q("small", "small.qcow2"),
                 ex("blockdev-mirror", **m, granularity=1000),
                 ex("blockdev-mirror", **m, granularity=256),
                 ex("blockdev-mirror", **m, granularity=128 * 1048576),
                 ex("blockdev-mirror", **m, buf_size=0, granularity=1000),
                 ex("blockdev-mirror", **m, buf_size=-1, speed=-1),
                 ex("blockdev-mirror", **m, speed=-5, replaces="nosuch"),
                 ex("blockdev-mirror", **m, replaces="nosuch", granularity=1000),
                 ex("blockdev-mirror", **{**m, "target": "nosuch"}, replaces="nosuch"),
                 ex("blockdev-mirror", **{**m, "device": "nosuch"}, granularity=1000),
                 ex("blockdev-mirror", **{**m, "device": "src-file"}),
                 ex("blockdev-mirror", **{**m, "target": "small"}),
                 ex("blockdev-mirror", **{**m, "target": "src"}),
                 ex("blockdev-mirror", **{**m, "sync": "incremental"}),
                 ex("blockdev-mirror", **m, copy_mode="write-blocking", filter_node_name="src"),
                 ex("blockdev-mirror", **m, filter_node_name="#bad"),
                 ex("blockdev-mirror", **m, filter_node_name="mf", granularity=65536,
                    buf_size=65536, speed=SPEED, auto_dismiss=False),
                 SETTLE, QBJ,
                 ex("blockdev-mirror", **{**m, "job_id": "m2", "target": "t2"}),
                 ex("blockdev-mirror", **{**m, "job_id": "m2", "device": "t2", "target": "t1"}),
                 ex("blockdev-mirror", **{**m, "job_id": "m2", "device": "t2", "target": "small"}),
                 ex("block-job-set-speed", device="m", speed=-1),
                 ex("block-job-set-speed", device="m", speed=0),
                 wait_ev("BLOCK_JOB_READY", device="m"),
                 QBJ,
                 ex("block-job-cancel", device="m", force=True),
                 wait("m", "concluded"),
                 QJ,
                 ex("job-dismiss", id="m"),
                 G, QNF,
             ])
    scenario("f21b-mirror-replaces-stack",
             "mirror replacing nodes below a throttle and a copy-on-read filter; refusals; state after",
             setup + ["qemu-io -f qcow2 -c 'write -P 8 512k 64k' $DIR/t1.qcow2"], [
                 q("src", "src.qcow2"), q("t1", "t1.qcow2"), q("t2", "t2.qcow2"),
                 ex("object-add", qom_type="throttle-group", id="tg", limits={}),
                 ex("blockdev-add", driver="raw", node_name="fmt", file="src"),
                 ex("blockdev-add", driver="throttle", node_name="thr", file="fmt",
                    throttle_group="tg"),
                 ex("blockdev-add", driver="copy-on-read", node_name="cor", file="thr"),
                 ex("blockdev-mirror", job_id="m", device="cor", target="t1", sync="full",
                    replaces="src"),
                 ex("blockdev-mirror", job_id="m", device="thr", target="t1", sync="full",
                    replaces="cor"),
                 ex("blockdev-mirror", job_id="m", device="cor", target="t1", sync="full",
                    replaces="t1"),
                 ex("blockdev-mirror", job_id="m", device="cor", target="t1", sync="none",
                    replaces="fmt"),
                 wait_ev("BLOCK_JOB_READY", device="m"),
                 G,
                 ex("job-complete", id="m"),
                 wait("m", "null"),
                 G, QNF,
                 hmp("cor", "read -q -P 0 0 64k"), hmp("cor", "read -q -P 8 512k 64k"),
                 ex("blockdev-del", node_name="fmt"),
                 ex("blockdev-mirror", job_id="m2", device="thr", target="t2", sync="full",
                    replaces="t1"),
                 ex("blockdev-mirror", job_id="m2", device="cor", target="t2", sync="full",
                    replaces="t1"),
                 wait_ev("BLOCK_JOB_READY", device="m2"),
                 ex("blockdev-del", node_name="t1"),
                 ex("block-job-complete", device="m2"),
                 wait("m2", "null"),
                 G, QNF,
                 hmp("cor", "read -q -P 8 512k 64k"),
             ])


# --------------------------------------------------------------------------
# actual-size after commits of images with other cluster sizes

def commit_sizes() -> None:
    setup = ["qemu-img create -q -f qcow2 -o cluster_size=4096 $DIR/base.qcow2 2M",
             "qemu-io -f qcow2 -c 'write -P 1 0 100k' $DIR/base.qcow2",
             "qemu-img create -q -f qcow2 -o cluster_size=2M -b $DIR/base.qcow2 -F qcow2 $DIR/mid.qcow2",
             "qemu-io -f qcow2 -c 'write -P 2 1M 4k' $DIR/mid.qcow2",
             "qemu-img create -q -f qcow2 -o cluster_size=16384 -b $DIR/mid.qcow2 -F qcow2 "
             "$DIR/top.qcow2",
             "qemu-io -f qcow2 -c 'write -P 3 512k 40k' -c 'write -z 1536k 16k' $DIR/top.qcow2"]
    chain = {"driver": "qcow2", "node-name": "top",
             "file": {"driver": "file", "filename": "$DIR/top.qcow2", "node-name": "top-file"},
             "backing": {"driver": "qcow2", "node-name": "mid",
                         "file": {"driver": "file", "filename": "$DIR/mid.qcow2",
                                  "node-name": "mid-file"},
                         "backing": {"driver": "qcow2", "node-name": "base",
                                     "file": {"driver": "file", "filename": "$DIR/base.qcow2",
                                              "node-name": "base-file"}}}}
    scenario("f21b-commit-actual-size-clusters",
             "actual-size after active and intermediate commits of images with other cluster sizes",
             setup, [
                 add(chain), QN,
                 ex("block-commit", job_id="c", device="top", base_node="mid"),
                 wait_ev("BLOCK_JOB_READY", device="c"),
                 hmp("top", "write -P 4 0 12k"),
                 ex("block-job-complete", device="c"),
                 wait("c", "null"),
                 QN,
                 hmp("mid", "read -q -P 3 512k 40k"), hmp("mid", "read -q -P 4 0 12k"),
                 ex("block-commit", job_id="c2", device="mid"),
                 ex("block-commit", job_id="c2", device="top"),
                 wait_ev("BLOCK_JOB_READY", device="c2"),
                 ex("block-job-complete", device="c2"),
                 wait("c2", "null"),
                 QN, QB,
                 hmp("base", "read -q -P 2 1M 4k"), hmp("base", "read -q -P 4 0 12k"),
                 hmp("base", "read -q -P 1 12k 88k"),
             ])


# --------------------------------------------------------------------------
# job events: nested pauses, cancel of a paused job, finalize errors, two jobs

def job_events() -> None:
    setup = ["qemu-img create -q -f qcow2 $DIR/d.qcow2 2M",
             "qemu-io -f qcow2 -c 'write -P 1 0 2M' $DIR/d.qcow2",
             "qemu-img create -q -f qcow2 $DIR/t.qcow2 2M",
             "qemu-img create -q -f qcow2 $DIR/t2.qcow2 2M"]
    base = [q("d", "d.qcow2"), q("t", "t.qcow2"), q("t2", "t2.qcow2")]
    scenario("f21b-events-pause-nesting",
             "backup paused twice and resumed once, cancelled while paused, finalize/dismiss errors",
             setup, [
                 *base,
                 ex("blockdev-backup", job_id="b", device="d", target="t", sync="full", speed=SPEED,
                    auto_finalize=False, auto_dismiss=False),
                 SETTLE,
                 ex("job-pause", id="b"),
                 ex("job-pause", id="b"),
                 wait("b", "paused"),
                 ex("job-resume", id="b"),
                 {"sleep": 0.3}, QJ,
                 ex("job-resume", id="b"),
                 ex("job-resume", id="b"),
                 ex("job-finalize", id="b"),
                 ex("job-dismiss", id="b"),
                 ex("job-complete", id="b"),
                 ex("block-job-pause", device="b"),
                 wait("b", "paused"),
                 ex("block-job-cancel", device="b"),
                 ex("block-job-resume", device="b"),
                 ex("block-job-cancel", device="b"),
                 wait("b", "concluded"),
                 QJ,
                 ex("job-finalize", id="b"),
                 ex("job-dismiss", id="b"),
                 ex("blockdev-backup", job_id="b1", device="d", target="t", sync="full",
                    auto_finalize=False, auto_dismiss=False),
                 wait("b1", "pending"),
                 ex("job-pause", id="b1"),
                 ex("job-cancel", id="b1"),
                 wait("b1", "concluded"),
                 QJ,
                 ex("job-dismiss", id="b1"),
                 ex("blockdev-mirror", job_id="m", device="d", target="t2", sync="full",
                    auto_finalize=False),
                 wait_ev("BLOCK_JOB_READY", device="m"),
                 ex("job-finalize", id="m"),
                 ex("block-job-pause", device="m"),
                 wait("m", "standby"),
                 ex("block-job-complete", device="m"),
                 ex("block-job-resume", device="m"),
                 wait("m", "ready"),
                 ex("block-job-complete", device="m"),
                 wait("m", "pending"),
                 ex("job-finalize", id="m"),
                 wait("m", "null"),
                 QJ,
             ])
    scenario("f21b-events-two-jobs",
             "two backups to two targets, one cancelled and one completed, then a transaction of two",
             setup, [
                 *base,
                 ex("blockdev-backup", job_id="a", device="d", target="t", sync="full", speed=SPEED),
                 SETTLE,
                 ex("blockdev-backup", job_id="b", device="d", target="t2", sync="full",
                    speed=SPEED),
                 SETTLE, QBJ,
                 ex("block-job-cancel", device="a"),
                 wait("a", "null"),
                 ex("block-job-set-speed", device="b", speed=0),
                 wait("b", "null"),
                 ex("transaction", actions=[
                     {"type": "blockdev-backup",
                      "data": {"job-id": "x", "device": "d", "target": "t", "sync": "full",
                               "speed": SPEED}},
                     {"type": "blockdev-backup",
                      "data": {"job-id": "x", "device": "d", "target": "t2", "sync": "full"}}]),
                 QJ,
                 ex("transaction", actions=[
                     {"type": "blockdev-backup",
                      "data": {"job-id": "x", "device": "d", "target": "t", "sync": "full",
                               "speed": SPEED}},
                     {"type": "blockdev-backup",
                      "data": {"job-id": "y", "device": "d", "target": "t2", "sync": "full",
                               "speed": SPEED}}],
                    properties={"completion-mode": "grouped"}),
                 SETTLE, QBJ,
                 ex("block-job-cancel", device="x"),
                 wait("y", "null"),
                 QJ,
             ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outdir", default=OUT)
    args = ap.parse_args(argv)
    for family in (jobs_two, reopen_nested, reopen_file_swap_failed, stream_drains, del_parents, devices, bitmaps, mirror,
                   commit_sizes, job_events):
        family()
    write_all(SCENARIOS, args.outdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
