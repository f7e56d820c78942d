"""Writes the ops-*.json scenarios (snapshots, transactions, dirty bitmaps, resize,
write threshold, exports) into tests/data/recorded/scenarios/.

Not a test: run it, then record the scenarios against QEMU 7.2 with
``tests/tools/record_corpus.py tests/data/recorded/scenarios/ops-*.json``.
Each scenario checks data with qemu-io through human-monitor-command.
"""

from __future__ import annotations

import json
import os
from typing import Any

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "data", "recorded", "scenarios")


def ex(cmd: str, **args: Any) -> dict:
    step: dict[str, Any] = {"execute": cmd}
    if args:
        step["arguments"] = args
    return step


def hmp(node: str, cmd: str) -> dict:
    return {"hmp": f'qemu-io {node} "{cmd}"'}


def qcow2(name: str, path: str, **extra: Any) -> dict:
    return ex("blockdev-add", driver="qcow2", **{"node-name": name},
              file={"driver": "file", "filename": path, "node-name": name + "-file"}, **extra)


QN = ex("query-named-block-nodes")
GRAPH = ex("x-debug-query-block-graph")


def snapshot() -> dict:
    steps = [
        qcow2("base", "$DIR/base.qcow2"),
        hmp("base", "write -P 0x11 0 64k"),
        ex("blockdev-add", driver="qcow2", **{"node-name": "ov"}, backing=None,
           file={"driver": "file", "filename": "$DIR/ov.qcow2"}),
        ex("blockdev-snapshot", node="nosuch", overlay="ov"),
        ex("blockdev-snapshot", node="base", overlay="nosuch"),
        ex("blockdev-snapshot", node="base", overlay="base"),
        qcow2("withb", "$DIR/withb.qcow2"),
        ex("blockdev-snapshot", node="base", overlay="withb"),
        ex("blockdev-add", driver="copy-on-read", **{"node-name": "cor"}, file="withb"),
        ex("blockdev-snapshot", node="base", overlay="cor"),
        ex("blockdev-add", driver="raw", **{"node-name": "rawov"},
           file={"driver": "file", "filename": "$DIR/raw.img", "node-name": "rawov-file"}),
        ex("blockdev-snapshot", node="base", overlay="rawov"),
        ex("blockdev-snapshot", node="base", overlay="rawov-file"),
        ex("blockdev-snapshot", node="base", overlay="ov"),
        QN, GRAPH,
        hmp("ov", "read -P 0x11 0 64k"),
        hmp("ov", "write -P 0x22 64k 64k"),
        hmp("base", "read -P 0 64k 64k"),
        hmp("ov", "read -P 0x22 64k 64k"),
        ex("blockdev-snapshot", node="base", overlay="ov"),
        ex("blockdev-del", **{"node-name": "base"}),
        ex("blockdev-del", **{"node-name": "ov"}),
        QN,
    ]
    return {"name": "ops-snapshot",
            "description": "blockdev-snapshot: errors, graph and data after the snapshot",
            "setup": ["qemu-img create -q -f qcow2 $DIR/base.qcow2 1M",
                      "qemu-img create -q -f qcow2 -F qcow2 -b $DIR/base.qcow2 $DIR/ov.qcow2",
                      "qemu-img create -q -f qcow2 $DIR/other.qcow2 1M",
                      "qemu-img create -q -f qcow2 -F qcow2 -b $DIR/other.qcow2 $DIR/withb.qcow2",
                      "qemu-img create -q -f raw $DIR/raw.img 1M"],
            "steps": steps}


def snapshot_misc() -> dict:
    steps = [
        ex("blockdev-add", driver="null-co", **{"node-name": "n0"}, size=1048576),
        ex("blockdev-add", driver="qcow2", **{"node-name": "ov"},
           file={"driver": "file", "filename": "$DIR/ov.qcow2"}),
        ex("blockdev-snapshot", node="n0", overlay="ov"),
        QN, GRAPH,
        ex("blockdev-add", driver="qcow2", **{"node-name": "ro"}, **{"read-only": True},
           file={"driver": "file", "filename": "$DIR/ro.qcow2", "node-name": "ro-file"}),
        ex("blockdev-add", driver="qcow2", **{"node-name": "ov2"},
           file={"driver": "file", "filename": "$DIR/ov2.qcow2"}),
        ex("blockdev-snapshot", node="ro", overlay="ov2"),
        QN,
        ex("blockdev-add", driver="qcow2", **{"node-name": "ov3"},
           file={"driver": "file", "filename": "$DIR/ov3.qcow2"}),
        ex("blockdev-snapshot", node="ro-file", overlay="ov3"),
        ex("blockdev-snapshot", node="ov", overlay="ov2"),
        ex("blockdev-add", driver="qcow2", **{"node-name": "ov4"},
           file={"driver": "file", "filename": "$DIR/ov4.qcow2"}),
        ex("blockdev-snapshot", node="ro", overlay="ov4"),
        ex("blockdev-snapshot", node="ov4", overlay="ro"),
        GRAPH,
    ]
    return {"name": "ops-snapshot-misc",
            "description": "blockdev-snapshot on null-co, read-only and protocol nodes",
            "setup": ["qemu-img create -q -f qcow2 $DIR/ov.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/ov2.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/ov3.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/ov4.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/ro.qcow2 1M"],
            "steps": steps}


def transaction() -> dict:
    snap = {"type": "blockdev-snapshot", "data": {"node": "base", "overlay": "ov"}}
    steps = [
        qcow2("base", "$DIR/base.qcow2"),
        ex("blockdev-add", driver="qcow2", **{"node-name": "ov"},
           file={"driver": "file", "filename": "$DIR/ov.qcow2"}),
        ex("transaction", actions=[]),
        ex("transaction", actions=[snap], properties={"completion-mode": "grouped"}),
        ex("transaction", actions=[{"type": "block-dirty-bitmap-add",
                                    "data": {"node": "base", "name": "b0"}}],
           properties={"completion-mode": "grouped"}),
        ex("transaction", actions=[{"type": "block-dirty-bitmap-add",
                                    "data": {"node": "base", "name": "b0"}}, snap,
                                   {"type": "block-dirty-bitmap-add",
                                    "data": {"node": "base", "name": "b0"}}]),
        QN,
        ex("transaction", actions=[{"type": "abort", "data": {}}]),
        ex("transaction", actions=[{"type": "block-dirty-bitmap-add",
                                    "data": {"node": "base", "name": "b1"}},
                                   {"type": "abort", "data": {}}]),
        ex("transaction", actions=[{"type": "block-dirty-bitmap-add",
                                    "data": {"node": "base", "name": "b1"}},
                                   {"type": "block-dirty-bitmap-clear",
                                    "data": {"node": "base", "name": "b1"}},
                                   {"type": "block-dirty-bitmap-enable",
                                    "data": {"node": "base", "name": "b1"}}]),
        ex("transaction", actions=[{"type": "block-dirty-bitmap-add",
                                    "data": {"node": "base", "name": "b2", "disabled": True}},
                                   {"type": "block-dirty-bitmap-enable",
                                    "data": {"node": "base", "name": "b2"}},
                                   {"type": "block-dirty-bitmap-remove",
                                    "data": {"node": "base", "name": "b2"}}]),
        ex("transaction", actions=[{"type": "block-dirty-bitmap-add",
                                    "data": {"node": "base", "name": "b2", "disabled": True}},
                                   {"type": "block-dirty-bitmap-enable",
                                    "data": {"node": "base", "name": "b2"}}]),
        hmp("base", "write 0 64k"),
        ex("transaction", actions=[{"type": "block-dirty-bitmap-add",
                                    "data": {"node": "base", "name": "b3"}},
                                   {"type": "block-dirty-bitmap-merge",
                                    "data": {"node": "base", "target": "b3",
                                             "bitmaps": ["b2"]}},
                                   {"type": "block-dirty-bitmap-disable",
                                    "data": {"node": "base", "name": "b1"}},
                                   {"type": "block-dirty-bitmap-clear",
                                    "data": {"node": "base", "name": "b2"}}]),
        QN,
        ex("transaction", actions=[{"type": "block-dirty-bitmap-clear",
                                    "data": {"node": "base", "name": "b3"}},
                                   {"type": "block-dirty-bitmap-clear",
                                    "data": {"node": "base", "name": "nosuch"}}]),
        ex("transaction", actions=[{"type": "block-dirty-bitmap-merge",
                                    "data": {"node": "base", "target": "b3",
                                             "bitmaps": ["nosuch"]}}]),
        QN,
        ex("transaction", actions=[{"type": "block-dirty-bitmap-clear",
                                    "data": {"node": "base", "name": "b3"}}, snap]),
        QN, GRAPH,
        ex("transaction", actions=[snap]),
        ex("transaction", actions=[{"type": "block-dirty-bitmap-add",
                                    "data": {"node": "ov", "name": "x"}}],
           properties={"completion-mode": "individual"}),
        ex("transaction", actions=[{"type": "blockdev-snapshot-sync",
                                    "data": {"node-name": "ov",
                                             "snapshot-file": "$DIR/s.qcow2"}}],
           properties={"completion-mode": "grouped"}),
        ex("transaction", actions=[{"type": "block-dirty-bitmap-remove",
                                    "data": {"node": "base", "name": "b1"}}],
           properties={"completion-mode": "grouped"}),
    ]
    return {"name": "ops-transaction",
            "description": "transaction: all or nothing, completion-mode, bitmap actions, snapshot",
            "setup": ["qemu-img create -q -f qcow2 $DIR/base.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/ov.qcow2 1M"],
            "steps": steps}



def bitmaps() -> dict:
    def add(name: str, node: str = "d0", **kw: Any) -> dict:
        return ex("block-dirty-bitmap-add", node=node, name=name, **kw)
    steps = [
        qcow2("d0", "$DIR/d0.qcow2"),
        ex("blockdev-add", driver="null-co", **{"node-name": "n0"}, size=4194304),
        add("b0"),
        add("b0"),
        add(""),
        add("x" * 1023),
        add("y" * 1024),
        add("g1", granularity=512),
        add("g2", granularity=256),
        add("g3", granularity=3000),
        add("g4", granularity=2147483648),
        add("g5", granularity=4294967296),
        add("g6", granularity=0),
        add("g7", granularity=1048576),
        add("p0", persistent=True),
        add("p1", node="n0", persistent=True),
        add("p2", node="d0-file", persistent=True),
        add("dis", disabled=True),
        add("b", node="nosuch"),
        add("nb", node="n0"),
        QN,
        hmp("d0", "write 0 1"),
        hmp("d0", "write 100k 200k"),
        hmp("d0", "write -z 1M 64k"),
        hmp("d0", "discard 2M 4k"),
        hmp("n0", "write 3M 1k"),
        QN,
        ex("block-dirty-bitmap-clear", node="d0", name="b0"),
        ex("block-dirty-bitmap-clear", node="d0", name="nosuch"),
        ex("block-dirty-bitmap-clear", node="nosuch", name="b0"),
        ex("block-dirty-bitmap-disable", node="d0", name="b0"),
        ex("block-dirty-bitmap-disable", node="d0", name="b0"),
        ex("block-dirty-bitmap-enable", node="d0", name="dis"),
        ex("block-dirty-bitmap-enable", node="d0", name="dis"),
        hmp("d0", "write 512k 4k"),
        QN,
        ex("block-dirty-bitmap-merge", node="d0", target="b0", bitmaps=["g1", "dis"]),
        ex("block-dirty-bitmap-merge", node="d0", target="b0",
           bitmaps=[{"node": "n0", "name": "nb"}]),
        ex("block-dirty-bitmap-merge", node="d0", target="b0",
           bitmaps=[{"node": "nosuch", "name": "nb"}]),
        ex("block-dirty-bitmap-merge", node="d0", target="b0",
           bitmaps=[{"node": "n0", "name": "nosuch"}]),
        ex("block-dirty-bitmap-merge", node="d0", target="nosuch", bitmaps=["g1"]),
        ex("block-dirty-bitmap-merge", node="nosuch", target="b0", bitmaps=["g1"]),
        ex("block-dirty-bitmap-merge", node="d0", target="b0", bitmaps=["b0"]),
        QN,
        ex("block-dirty-bitmap-remove", node="d0", name="p0"),
        ex("block-dirty-bitmap-remove", node="d0", name="p0"),
        ex("block-dirty-bitmap-remove", node="nosuch", name="p0"),
        ex("block-dirty-bitmap-remove", node="d0", name="g1"),
        QN,
        hmp("d0", "read 0 1"),
        ex("blockdev-del", **{"node-name": "n0"}),
        ex("query-named-block-nodes", flat=True),
        ex("query-block"),
    ]
    return {"name": "ops-bitmaps",
            "description": "dirty bitmaps: argument rules, texts, counts after qemu-io writes",
            "setup": ["qemu-img create -q -f qcow2 $DIR/d0.qcow2 4M"],
            "steps": steps}


def bitmaps_ro() -> dict:
    steps = [
        ex("blockdev-add", driver="qcow2", **{"node-name": "r0", "read-only": True},
           file={"driver": "file", "filename": "$DIR/r0.qcow2"}),
        ex("block-dirty-bitmap-add", node="r0", name="a"),
        ex("block-dirty-bitmap-add", node="r0", name="d", disabled=True, granularity=131072),
        ex("block-dirty-bitmap-clear", node="r0", name="a"),
        ex("block-dirty-bitmap-merge", node="r0", target="a", bitmaps=["d"]),
        QN,
        ex("blockdev-add", driver="qcow2", **{"node-name": "v2"},
           file={"driver": "file", "filename": "$DIR/v2.qcow2"}),
        ex("block-dirty-bitmap-add", node="v2", name="p", persistent=True),
        ex("blockdev-add", driver="raw", **{"node-name": "raw0"},
           file={"driver": "file", "filename": "$DIR/raw.img"}),
        ex("block-dirty-bitmap-add", node="raw0", name="p", persistent=True),
        ex("block-dirty-bitmap-add", node="raw0", name="p", persistent=False),
        hmp("raw0", "write 0 1"),
        hmp("raw0", "write 70k 1"),
        ex("query-named-block-nodes", flat=True),
    ]
    return {"name": "ops-bitmaps-ro",
            "description": "dirty bitmaps on read-only, qcow2 v2 and raw nodes",
            "setup": ["qemu-img create -q -f qcow2 $DIR/r0.qcow2 1M",
                      "qemu-img create -q -f qcow2 -o compat=0.10 $DIR/v2.qcow2 1M",
                      "qemu-img create -q -f raw $DIR/raw.img 1M"],
            "steps": steps}


def resize() -> dict:
    def rs(size: Any, **kw: Any) -> dict:
        return ex("block_resize", size=size, **kw)
    steps = [
        qcow2("q0", "$DIR/q0.qcow2"),
        ex("blockdev-add", driver="raw", **{"node-name": "r0"},
           file={"driver": "file", "filename": "$DIR/r0.img", "node-name": "r0-file"}),
        ex("blockdev-add", driver="null-co", **{"node-name": "n0"}, size=1048576),
        ex("blockdev-add", driver="qcow2", **{"node-name": "ro", "read-only": True},
           file={"driver": "file", "filename": "$DIR/ro.qcow2"}),
        rs(2097152),
        rs(2097152, device="q0"),
        rs(2097152, **{"node-name": "nosuch"}),
        rs(2097152, device="", **{"node-name": "q0"}),
        rs(2097152, device="q0", **{"node-name": "q0"}),
        rs(-1, **{"node-name": "q0"}),
        rs(2097152, **{"node-name": "q0"}),
        hmp("q0", "length"),
        hmp("q0", "write -P 7 1536k 64k"),
        rs(1048576, **{"node-name": "q0"}),
        rs(2097153, **{"node-name": "q0"}),
        rs(2097152, **{"node-name": "r0"}),
        rs(1000, **{"node-name": "r0"}),
        hmp("r0", "length"),
        rs(3000000, **{"node-name": "r0-file"}),
        hmp("r0", "length"),
        rs(4194304, **{"node-name": "n0"}),
        rs(4194304, **{"node-name": "ro"}),
        rs(0, **{"node-name": "r0"}),
        QN,
        hmp("q0", "read -P 7 1536k 64k"),
        ex("block-set-write-threshold", **{"node-name": "nosuch"}, **{"write-threshold": 1}),
        qcow2("t0", "$DIR/t0.qcow2"),
        ex("blockdev-add", driver="raw", **{"node-name": "t1"},
           file={"driver": "file", "filename": "$DIR/t1.img", "node-name": "t1-file"}),
        ex("block-set-write-threshold", **{"node-name": "t0"}, **{"write-threshold": 524288}),
        ex("query-named-block-nodes", flat=True),
        hmp("t0", "write 0 4k"),
        hmp("t0", "write 520k 8k"),
        hmp("t0", "write 600k 8k"),
        ex("query-named-block-nodes", flat=True),
        ex("block-set-write-threshold", **{"node-name": "t1"}, **{"write-threshold": 100}),
        ex("block-set-write-threshold", **{"node-name": "t1"}, **{"write-threshold": 0}),
        hmp("t1", "write 0 4k"),
        ex("block-set-write-threshold", **{"node-name": "t1"}, **{"write-threshold": 4096}),
        hmp("t1", "write 0 4k"),
        hmp("t1", "write -z 4k 4k"),
        ex("block-set-write-threshold", **{"node-name": "t1-file"}, **{"write-threshold": 8192}),
        hmp("t1", "write -z 4k 8k"),
        ex("block-set-write-threshold", **{"node-name": "t1"}, **{"write-threshold": 200}),
        hmp("t1", "discard 0 4k"),
        ex("query-named-block-nodes", flat=True),
        ex("block_resize", size=65536, **{"node-name": "t1"}),
        hmp("t1", "write 60k 8k"),
        ex("block_resize", size=131072, **{"node-name": "t1-file"}),
        hmp("t1", "write 60k 8k"),
        hmp("t1", "length"),
        ex("block-dirty-bitmap-add", node="t1", name="bm", granularity=4096),
        ex("block_resize", size=139264, **{"node-name": "t1"}),
        hmp("t1", "write 132k 4k"),
        ex("query-named-block-nodes", flat=True),
    ]
    return {"name": "ops-resize",
            "description": "block_resize and block-set-write-threshold with its event",
            "setup": ["qemu-img create -q -f qcow2 $DIR/q0.qcow2 1M",
                      "qemu-img create -q -f raw $DIR/r0.img 1M",
                      "qemu-img create -q -f qcow2 $DIR/ro.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/t0.qcow2 1M",
                      "qemu-img create -q -f raw $DIR/t1.img 1M"],
            "steps": steps}


def exports() -> dict:
    nbd = {"type": "nbd", "id": "e0", "node-name": "d0"}
    steps = [
        qcow2("d0", "$DIR/d0.qcow2"),
        ex("query-block-exports"),
        ex("block-export-add", **nbd),
        ex("nbd-server-stop"),
        ex("nbd-server-start", addr={"type": "unix", "data": {"path": "$DIR/nbd.sock"}}),
        ex("nbd-server-start", addr={"type": "unix", "data": {"path": "$DIR/nbd2.sock"}}),
        ex("block-export-add", type="nbd", id="e0", **{"node-name": "nosuch"}),
        ex("block-export-add", **nbd),
        ex("block-export-add", **nbd),
        ex("block-export-add", type="nbd", id="e1", **{"node-name": "d0"}, writable=True,
           name="other"),
        ex("block-export-add", type="nbd", id="e2", **{"node-name": "d0"}, name="d0"),
        ex("block-export-add", type="nbd", id="e3", **{"node-name": "d0"}, name="x" * 4097),
        ex("block-export-add", type="nbd", id="#e4", **{"node-name": "d0"}),
        ex("block-export-add", type="nbd", id="e5", **{"node-name": "d0"}, bitmaps=["nosuch"]),
        ex("query-block-exports"),
        GRAPH,
        ex("blockdev-del", **{"node-name": "d0"}),
        ex("block-export-del", id="nosuch"),
        ex("block-export-del", id="e0"),
        ex("block-export-del", id="e0"),
        ex("query-block-exports"),
        ex("nbd-server-stop"),
        ex("query-block-exports"),
        GRAPH,
        ex("nbd-server-stop"),
        ex("blockdev-del", **{"node-name": "d0"}),
    ]
    return {"name": "ops-exports",
            "description": "nbd-server-start/stop, block-export-add/del, query-block-exports",
            "setup": ["qemu-img create -q -f qcow2 $DIR/d0.qcow2 1M"],
            "steps": steps}


def libvirt_snapshot() -> dict:
    """What libvirt does for an external snapshot and a later active commit."""
    def fileadd(name: str, path: str) -> dict:
        return ex("blockdev-add", driver="file", **{"node-name": name}, filename=path)
    steps = [
        fileadd("base-file", "$DIR/base.qcow2"),
        ex("blockdev-add", driver="qcow2", **{"node-name": "base"}, file="base-file"),
        hmp("base", "write -P 1 0 128k"),
        fileadd("ov-file", "$DIR/ov.qcow2"),
        ex("blockdev-add", driver="qcow2", **{"node-name": "ov"}, file="ov-file", backing=None),
        ex("transaction", actions=[{"type": "blockdev-snapshot",
                                    "data": {"node": "base", "overlay": "ov"}}]),
        hmp("ov", "write -P 2 64k 64k"),
        QN, GRAPH,
        ex("block-commit", **{"job-id": "c0"}, device="ov", **{"top-node": "ov"},
           **{"base-node": "base"}),
        {"wait_event": "BLOCK_JOB_READY", "data": {"device": "c0"}},
        ex("query-block-jobs"),
        GRAPH,
        ex("job-complete", id="c0"),
        {"wait_event": "BLOCK_JOB_COMPLETED", "data": {"device": "c0"}},
        ex("query-jobs"),
        QN, GRAPH,
        hmp("base", "read -P 1 0 64k"),
        hmp("base", "read -P 2 64k 64k"),
        ex("blockdev-del", **{"node-name": "ov"}),
        ex("blockdev-del", **{"node-name": "ov-file"}),
        QN,
    ]
    return {"name": "ops-libvirt-snapshot",
            "description": "libvirt-style external snapshot, then active block-commit back",
            "setup": ["qemu-img create -q -f qcow2 $DIR/base.qcow2 1M",
                      "qemu-img create -q -f qcow2 -F qcow2 -b $DIR/base.qcow2 $DIR/ov.qcow2"],
            "steps": steps}


def backup_cycle() -> dict:
    """An incremental backup cycle as a backup tool runs it."""
    def target(name: str) -> dict:
        return qcow2(name, f"$DIR/{name}.qcow2")
    steps = [
        qcow2("disk", "$DIR/disk.qcow2"),
        hmp("disk", "write -P 1 0 128k"),
        hmp("disk", "write -P 5 768k 64k"),
        target("full"),
        ex("transaction", actions=[
            {"type": "block-dirty-bitmap-add", "data": {"node": "disk", "name": "b0"}},
            {"type": "blockdev-backup", "data": {"device": "disk", "target": "full",
                                                 "sync": "full", "job-id": "bk0"}}]),
        {"wait_event": "BLOCK_JOB_COMPLETED", "data": {"device": "bk0"}},
        ex("query-jobs"),
        hmp("full", "read -P 1 0 128k"),
        hmp("full", "read -P 5 768k 64k"),
        hmp("full", "read -P 0 128k 640k"),
        hmp("disk", "write -P 2 64k 64k"),
        hmp("disk", "write -P 3 512k 4k"),
        QN,
        target("inc"),
        ex("transaction", actions=[
            {"type": "block-dirty-bitmap-add",
             "data": {"node": "disk", "name": "tmp", "disabled": True}},
            {"type": "block-dirty-bitmap-merge",
             "data": {"node": "disk", "target": "tmp", "bitmaps": ["b0"]}},
            {"type": "block-dirty-bitmap-add", "data": {"node": "disk", "name": "b1"}},
            {"type": "block-dirty-bitmap-disable", "data": {"node": "disk", "name": "b0"}},
            {"type": "blockdev-backup", "data": {"device": "disk", "target": "inc",
                                                 "sync": "incremental", "bitmap": "tmp",
                                                 "job-id": "bk1"}}]),
        {"wait_event": "BLOCK_JOB_COMPLETED", "data": {"device": "bk1"}},
        hmp("inc", "read -P 2 64k 64k"),
        hmp("inc", "read -P 3 512k 4k"),
        hmp("inc", "read -P 0 0 64k"),
        QN, GRAPH,
        ex("block-dirty-bitmap-merge", node="disk", target="b1", bitmaps=["b0"]),
        ex("block-dirty-bitmap-remove", node="disk", name="b0"),
        ex("block-dirty-bitmap-remove", node="disk", name="tmp"),
        ex("query-named-block-nodes", flat=True),
        ex("blockdev-del", **{"node-name": "inc"}),
        ex("blockdev-del", **{"node-name": "full"}),
        GRAPH,
    ]
    return {"name": "ops-backup-cycle",
            "description": "full backup with a bitmap in a transaction, writes, incremental "
                           "backup, bitmap merge",
            "setup": ["qemu-img create -q -f qcow2 $DIR/disk.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/full.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/inc.qcow2 1M"],
            "steps": steps}


def backup_misc() -> dict:
    """blockdev-backup errors, sync none (fleecing) and top, bitmap modes."""
    def bk(**kw: Any) -> dict:
        return ex("blockdev-backup", **kw)
    steps = [
        qcow2("disk", "$DIR/disk.qcow2"),
        hmp("disk", "write -P 1 0 64k"),
        qcow2("t1", "$DIR/t1.qcow2"),
        qcow2("small", "$DIR/small.qcow2"),
        ex("block-dirty-bitmap-add", node="disk", name="b0"),
        bk(device="nosuch", target="t1", sync="full"),
        bk(device="disk", target="nosuch", sync="full"),
        bk(device="disk", target="t1", sync="incremental"),
        bk(device="disk", target="t1", sync="bitmap"),
        bk(device="disk", target="t1", sync="incremental", bitmap="b0", **{"bitmap-mode": "always"}),
        bk(device="disk", target="t1", sync="full", bitmap="nosuch"),
        bk(device="disk", target="t1", sync="full", bitmap="b0"),
        bk(device="disk", target="t1", sync="none", bitmap="b0", **{"bitmap-mode": "always"}),
        bk(device="disk", target="t1", sync="full", bitmap="b0", **{"bitmap-mode": "never"}),
        bk(device="disk", target="t1", sync="full", **{"bitmap-mode": "never"}),
        bk(device="disk", target="disk", sync="full"),
        bk(device="disk", target="small", sync="full"),
        bk(device="disk", target="t1", sync="full", **{"job-id": "#x"}),
        ex("transaction", actions=[
            {"type": "blockdev-backup", "data": {"device": "disk", "target": "t1",
                                                 "sync": "full", "job-id": "j0"}},
            {"type": "abort", "data": {}}]),
        ex("query-jobs"),
        GRAPH,
        bk(device="disk", target="t1", sync="none", **{"job-id": "f0"}),
        ex("query-block-jobs"),
        QN, GRAPH,
        bk(device="disk", target="t1", sync="full", **{"job-id": "f0"}),
        ex("blockdev-del", **{"node-name": "t1"}),
        hmp("disk", "write -P 2 0 4k"),
        ex("block-job-cancel", device="f0"),
        {"wait_event": "BLOCK_JOB_CANCELLED", "data": {"device": "f0"}},
        ex("query-jobs"),
        GRAPH,
        hmp("t1", "read -P 0 0 64k"),
        bk(device="disk", target="t1", sync="bitmap", bitmap="b0",
           **{"bitmap-mode": "never", "job-id": "n0"}),
        {"wait_event": "BLOCK_JOB_COMPLETED", "data": {"device": "n0"}},
        ex("query-named-block-nodes", flat=True),
        bk(device="disk", target="t1", sync="bitmap", bitmap="b0",
           **{"bitmap-mode": "always", "job-id": "a0", "filter-node-name": "cbw0"}),
        {"wait_event": "BLOCK_JOB_COMPLETED", "data": {"device": "a0"}},
        ex("query-named-block-nodes", flat=True),
        hmp("t1", "read -P 2 0 4k"),
        qcow2("top", "$DIR/top.qcow2"),
        hmp("top", "write -P 9 128k 64k"),
        qcow2("t2", "$DIR/t2.qcow2"),
        bk(device="top", target="t2", sync="top", **{"job-id": "tp"}),
        {"wait_event": "BLOCK_JOB_COMPLETED", "data": {"device": "tp"}},
        hmp("t2", "read -P 9 128k 64k"),
        hmp("t2", "map"),
        ex("query-named-block-nodes", flat=True),
    ]
    return {"name": "ops-backup-misc",
            "description": "blockdev-backup errors, sync none/top, bitmap modes, abort",
            "setup": ["qemu-img create -q -f qcow2 $DIR/disk.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/t1.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/t2.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/small.qcow2 512k",
                      "qemu-img create -q -f qcow2 $DIR/base.qcow2 1M",
                      "qemu-io -c 'write -P 8 0 256k' $DIR/base.qcow2",
                      "qemu-img create -q -f qcow2 -F qcow2 -b $DIR/base.qcow2 $DIR/top.qcow2"],
            "steps": steps}


def create() -> dict:
    """blockdev-create jobs for file and qcow2, and their errors."""
    def cr(jid: str, **opts: Any) -> dict:
        return ex("blockdev-create", **{"job-id": jid}, options=opts)

    def done(jid: str) -> dict:
        return {"wait_event": "JOB_STATUS_CHANGE", "data": {"id": jid, "status": "concluded"}}
    steps = [
        cr("c1", driver="file", filename="$DIR/new.img", size=0),
        done("c1"),
        ex("query-jobs"),
        cr("c1", driver="file", filename="$DIR/other.img", size=0),
        ex("job-dismiss", id="c1"),
        ex("query-jobs"),
        ex("blockdev-add", driver="file", **{"node-name": "nf"}, filename="$DIR/new.img"),
        cr("c2", driver="qcow2", file="nf", size=1048576),
        done("c2"),
        ex("job-dismiss", id="c2"),
        qcow2("nq", "$DIR/new.img"),
        ex("blockdev-add", driver="qcow2", **{"node-name": "nq2"}, file="nf"),
        QN,
        hmp("nq2", "write -P 4 0 64k"),
        hmp("nq2", "read -P 4 0 64k"),
        cr("c3", driver="qcow2", file="nf", size=1048576),
        done("c3"),
        ex("query-jobs"),
        ex("job-dismiss", id="c3"),
        cr("c4", driver="qcow2", file="nosuch", size=1048576),
        done("c4"),
        ex("query-jobs"),
        ex("job-dismiss", id="c4"),
        cr("c5", driver="file", filename="$DIR/nodir/x.img", size=0),
        done("c5"),
        ex("query-jobs"),
        ex("job-dismiss", id="c5"),
        cr("#c6", driver="file", filename="$DIR/x.img", size=0),
        cr("c7", driver="raw", filename="$DIR/x.img", size=0),
        cr("c8", driver="file", filename="$DIR/pre.img", size=65536, preallocation="full"),
        done("c8"),
        ex("job-dismiss", id="c8"),
        ex("blockdev-add", driver="file", **{"node-name": "pf"}, filename="$DIR/pre.img"),
        cr("c9", driver="qcow2", file="pf", size=1000),
        done("c9"),
        ex("query-jobs"),
        ex("job-dismiss", id="c9"),
        cr("c10", driver="qcow2", file="pf", size=2097152, version="v2",
           **{"lazy-refcounts": True}),
        done("c10"),
        ex("query-jobs"),
        ex("job-dismiss", id="c10"),
        cr("c11", driver="qcow2", file="pf", size=2097152, **{"cluster-size": 4096},
           **{"backing-file": "$DIR/new.img", "backing-fmt": "qcow2"}),
        done("c11"),
        ex("job-dismiss", id="c11"),
        ex("blockdev-add", driver="qcow2", **{"node-name": "pq"}, file="pf"),
        ex("query-named-block-nodes", flat=True),
        hmp("pq", "read -P 4 0 64k"),
        cr("c12", driver="qcow2", file={"driver": "file", "filename": "$DIR/pre.img"},
           size=1048576),
        done("c12"),
        ex("query-jobs"),
        ex("job-dismiss", id="c12"),
        cr("c13", driver="file", filename="$DIR/new.img", size=0),
        done("c13"),
        ex("query-jobs"),
        ex("job-dismiss", id="c13"),
        ex("blockdev-add", driver="qcow2", **{"node-name": "last"},
           file={"driver": "file", "filename": "$DIR/pre.img"}, **{"read-only": True},
           backing=None),
        ex("query-named-block-nodes", flat=True),
    ]
    return {"name": "ops-create",
            "description": "blockdev-create: file and qcow2 jobs, errors, later blockdev-add",
            "setup": [],
            "steps": steps}


def mirror() -> dict:
    """blockdev-mirror: errors, ready, complete (pivot), cancel at ready, force cancel."""
    def mi(**kw: Any) -> dict:
        return ex("blockdev-mirror", **kw)

    def wait(ev: str, jid: str) -> dict:
        return {"wait_event": ev, "data": {"device": jid}}
    steps = [
        qcow2("disk", "$DIR/disk.qcow2"),
        hmp("disk", "write -P 1 0 128k"),
        qcow2("tgt", "$DIR/tgt.qcow2"),
        qcow2("tgt2", "$DIR/tgt2.qcow2"),
        qcow2("tgt3", "$DIR/tgt3.qcow2"),
        qcow2("small", "$DIR/small.qcow2"),
        mi(device="nosuch", target="tgt", sync="full"),
        mi(device="disk", target="nosuch", sync="full"),
        mi(device="disk-file", target="tgt", sync="full"),
        mi(device="disk", target="disk", sync="full"),
        mi(device="disk", target="tgt", sync="full", granularity=100),
        mi(device="disk", target="tgt", sync="full", granularity=3072),
        mi(device="disk", target="tgt", sync="incremental"),
        mi(device="disk", target="tgt", sync="full", **{"job-id": "#m"}),
        mi(device="disk", target="tgt", sync="full", **{"job-id": "m0"}),
        wait("BLOCK_JOB_READY", "m0"),
        ex("query-block-jobs"),
        QN, GRAPH,
        mi(device="disk", target="tgt2", sync="full", **{"job-id": "m0"}),
        ex("blockdev-del", **{"node-name": "tgt"}),
        hmp("disk", "write -P 2 0 4k"),
        ex("job-complete", id="m0"),
        wait("BLOCK_JOB_COMPLETED", "m0"),
        ex("query-jobs"),
        GRAPH,
        hmp("tgt", "read -P 2 0 4k"),
        hmp("tgt", "read -P 1 4k 124k"),
        hmp("tgt", "read -P 0 128k 128k"),
        mi(device="disk", target="tgt2", sync="none", **{"job-id": "m1"}),
        wait("BLOCK_JOB_READY", "m1"),
        ex("block-job-complete", device="nosuch"),
        ex("block-job-cancel", device="m1"),
        wait("BLOCK_JOB_COMPLETED", "m1"),
        hmp("tgt2", "read -P 0 0 4k"),
        mi(device="disk", target="tgt3", sync="full", **{"job-id": "m2"},
           **{"filter-node-name": "mt"}, speed=1024),
        GRAPH,
        ex("block-job-complete", device="m2"),
        ex("block-job-cancel", device="m2", force=True),
        wait("BLOCK_JOB_CANCELLED", "m2"),
        ex("query-jobs"),
        GRAPH,
        mi(device="disk", target="small", sync="full", **{"job-id": "m3"}),
        ex("query-jobs"),
    ]
    return {"name": "ops-mirror",
            "description": "blockdev-mirror: errors, ready, complete, cancel at ready, force cancel",
            "setup": ["qemu-img create -q -f qcow2 $DIR/disk.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/tgt.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/tgt2.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/tgt3.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/small.qcow2 512k"],
            "steps": steps}


def resize_backing() -> dict:
    """block_resize of a node that became a backing node; bitmaps on it."""
    steps = [
        qcow2("d", "$DIR/d.qcow2"),
        ex("blockdev-add", driver="qcow2", **{"node-name": "o"},
           file={"driver": "file", "filename": "$DIR/o.qcow2"}),
        ex("blockdev-snapshot", node="d", overlay="o"),
        ex("block_resize", size=2097152, **{"node-name": "d"}),
        ex("block_resize", size=2097152, device="d", **{"node-name": "d"}),
        ex("block_resize", size=2097152, **{"node-name": "o"}),
        ex("block-dirty-bitmap-add", node="d", name="x"),
        ex("block-dirty-bitmap-clear", node="d", name="x"),
        hmp("o", "write 1536k 4k"),
        hmp("o", "read 1M 4k"),
        ex("query-named-block-nodes", flat=True),
        ex("query-named-block-nodes"),
    ]
    return {"name": "ops-resize-backing",
            "description": "block_resize of a backing node (blocked), of its overlay; bitmaps",
            "setup": ["qemu-img create -q -f qcow2 $DIR/d.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/o.qcow2 1M"],
            "steps": steps}


def snapshot_sync() -> dict:
    """blockdev-snapshot-sync as a transaction action (the image is created)."""
    def sync(**data: Any) -> dict:
        return ex("transaction", actions=[{"type": "blockdev-snapshot-sync", "data": data}])
    steps = [
        qcow2("d", "$DIR/d.qcow2"),
        hmp("d", "write -P 3 0 64k"),
        qcow2("x", "$DIR/x.qcow2"),
        sync(**{"node-name": "d"}, **{"snapshot-file": "$DIR/s0.qcow2"}),
        sync(device="nosuch", **{"snapshot-file": "$DIR/s0.qcow2"}),
        sync(**{"node-name": "d", "snapshot-file": "$DIR/s0.qcow2", "snapshot-node-name": "x"}),
        sync(**{"node-name": "d", "snapshot-file": "$DIR/s0.qcow2", "snapshot-node-name": "s0",
                "format": "raw"}),
        ex("nbd-server-start", addr={"type": "unix", "data": {"path": "$DIR/nbd.sock"}}),
        ex("block-export-add", type="nbd", id="e0", **{"node-name": "d"}, writable=True),
        sync(**{"node-name": "d", "snapshot-file": "$DIR/s1.qcow2", "snapshot-node-name": "s1"}),
        QN, GRAPH,
        ex("query-block-exports"),
        hmp("s1", "read -P 3 0 64k"),
        hmp("s1", "write -P 4 64k 64k"),
        hmp("d", "read -P 0 64k 64k"),
        sync(**{"node-name": "x", "snapshot-file": "$DIR/s2.qcow2", "snapshot-node-name": "s2"}),
        ex("query-named-block-nodes", flat=True),
        sync(**{"node-name": "s1", "snapshot-file": "$DIR/pre.qcow2",
                "snapshot-node-name": "s3", "mode": "existing"}),
        GRAPH,
        ex("block-export-del", id="e0"),
        ex("nbd-server-stop"),
        GRAPH,
    ]
    return {"name": "ops-snapshot-sync",
            "description": "blockdev-snapshot-sync in a transaction: errors, users move, "
                           "an unused node's overlay goes again",
            "setup": ["qemu-img create -q -f qcow2 $DIR/d.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/x.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/pre.qcow2 1M"],
            "steps": steps}


def snapshot_iothread() -> dict:
    """blockdev-snapshot across AioContexts (iothreads)."""
    steps = [
        ex("object-add", **{"qom-type": "iothread", "id": "io0"}),
        qcow2("base", "$DIR/base.qcow2"),
        qcow2("ov", "$DIR/ov.qcow2"),
        qcow2("ov2", "$DIR/ov2.qcow2"),
        ex("x-blockdev-set-iothread", **{"node-name": "ov", "iothread": "io0"}),
        ex("blockdev-snapshot", node="base", overlay="ov"),
        ex("query-named-block-nodes", flat=True),
        ex("x-blockdev-set-iothread", **{"node-name": "ov2", "iothread": "io0"}),
        ex("x-blockdev-set-iothread", **{"node-name": "ov", "iothread": None}),
        GRAPH,
    ]
    return {"name": "ops-snapshot-iothread",
            "description": "blockdev-snapshot with the overlay in an iothread",
            "setup": ["qemu-img create -q -f qcow2 $DIR/base.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/ov.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/ov2.qcow2 1M"],
            "steps": steps}


def main() -> None:
    for sc in (snapshot(), snapshot_misc(), transaction(), bitmaps(), bitmaps_ro(), resize(),
               exports(), libvirt_snapshot(), backup_cycle(),
               backup_misc(), create(), mirror(),
               resize_backing(), snapshot_sync(), snapshot_iothread()):
        sc.setdefault("source", "tests/blockops/make_scenarios.py")
        with open(os.path.join(OUT, sc["name"] + ".json"), "w") as fh:
            json.dump(sc, fh, indent=1)
            fh.write("\n")


if __name__ == "__main__":
    main()
