"""Writes the issue-21 scenarios tests/data/recorded/scenarios/f21-*.json.

Families of inputs the corpus had not covered (issue 21): block jobs over
chains that are reopened while the job runs (iotest 245's shapes), reopen
with nested ``backing`` dicts, ``blockdev-del`` of a node with several
parents, ``device_add`` with an empty ``iothread`` link, dirty bitmaps
(``x-debug-block-dirty-bitmap-sha256``, persistent bitmaps in qcow2 images,
bitmaps busy in a backup job, merges of different sizes, counts after
backup), ``blockdev-mirror``'s checks and ``replaces``, ``actual-size``
after active commit, and the event streams of jobs (pause, cancel,
dismiss, drains around graph changes, ``blockdev-create``).

Jobs that must be seen mid-way run with ``speed`` so that QEMU's rate
limiter holds them after their first slice; ``block-job-set-speed 0``
lets them finish.  Not a test: run it, then record the scenarios on
QEMU 7.2 twice (tests/tools/record_corpus.py) and on the other releases.

    python3 tests/tools/make_f21_scenarios.py [--outdir DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
from typing import Any

Json = Any
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "data", "recorded", "scenarios")
SPEED = 65536
SETTLE = {"sleep": 0.2}

QN = {"execute": "query-named-block-nodes"}
QNF = {"execute": "query-named-block-nodes", "arguments": {"flat": True}}
G = {"execute": "x-debug-query-block-graph"}
QB = {"execute": "query-block"}
QBJ = {"execute": "query-block-jobs"}
QJ = {"execute": "query-jobs"}

SCENARIOS: list[dict[str, Json]] = []


def ex(cmd: str, **args: Json) -> dict[str, Json]:
    d: dict[str, Json] = {"execute": cmd}
    if args:
        d["arguments"] = {k.replace("_", "-"): v for k, v in args.items()}
    return d


def hmp(node: str, cmd: str) -> dict[str, Json]:
    return {"hmp": f'qemu-io {node} "{cmd}"'}


def wait(job: str, status: str) -> dict[str, Json]:
    return {"wait_event": "JOB_STATUS_CHANGE", "data": {"id": job, "status": status}}


def wait_ev(name: str, **data: Json) -> dict[str, Json]:
    return {"wait_event": name, "data": data}


def scenario(name: str, description: str, setup: list[str], steps: list[dict[str, Json]],
             **extra: Json) -> None:
    SCENARIOS.append({"name": name, "description": description,
                      "source": "hand-written (tests/tools/make_f21_scenarios.py)",
                      "setup": setup, "steps": steps, **extra})


# --------------------------------------------------------------------------
# iotest 245's chain: hd0 (3M, 0xa0 at 0) <- hd1 (0xa1 at 1M); hd2 (0xa2 at 2M)

HD_SETUP = [
    "qemu-img create -q -f qcow2 $DIR/hd0.qcow2 3M",
    "qemu-img create -q -f qcow2 -b $DIR/hd0.qcow2 -F qcow2 $DIR/hd1.qcow2",
    "qemu-img create -q -f qcow2 $DIR/hd2.qcow2 3M",
    "qemu-io -f qcow2 -c 'write -P 0xa0 0 1M' $DIR/hd0.qcow2",
    "qemu-io -f qcow2 -c 'write -P 0xa1 1M 1M' $DIR/hd1.qcow2",
    "qemu-io -f qcow2 -c 'write -P 0xa2 2M 1M' $DIR/hd2.qcow2",
]


def hd(i: int) -> dict[str, Json]:
    return {"driver": "qcow2", "node-name": f"hd{i}",
            "file": {"driver": "file", "node-name": f"hd{i}-file",
                     "filename": f"$DIR/hd{i}.qcow2"}}


def chain3() -> dict[str, Json]:
    """hd2 <- hd1 <- hd0 as one nested blockdev-add (245's hd_opts)."""
    o = hd(0)
    o["backing"] = hd(1)
    o["backing"]["backing"] = hd(2)
    return o


def add(opts: dict[str, Json]) -> dict[str, Json]:
    return {"execute": "blockdev-add", "arguments": copy.deepcopy(opts)}


def reopen(*opts: dict[str, Json]) -> dict[str, Json]:
    return {"execute": "blockdev-reopen", "arguments": {"options": [copy.deepcopy(o) for o in opts]}}


def with_(opts: dict[str, Json], **changes: Json) -> dict[str, Json]:
    o = copy.deepcopy(opts)
    for k, v in changes.items():
        k = k.replace("_", "-")
        if v is DROP:
            o.pop(k, None)
        else:
            o[k] = v
    return o


DROP = object()


def reads_hd(node: str) -> list[dict[str, Json]]:
    return [hmp(node, "read -q -P 0xa0 0 1M"), hmp(node, "read -q -P 0xa1 1M 1M"),
            hmp(node, "read -q -P 0xa2 2M 1M")]


def stream_reopen() -> None:
    c = chain3()
    # 245 test_block_stream_4 with a held job: the filter goes above hd1,
    # which is read-only as a backing node.
    scenario("f21-stream-filter-ro-backing",
             "block-stream with filter-node-name into a read-only backing node, reopens while it runs",
             HD_SETUP, [
                 add(c), QNF,
                 ex("block-stream", job_id="stream0", device="hd1", filter_node_name="cor",
                    auto_finalize=False, speed=SPEED),
                 SETTLE, QBJ, QJ, G, QN,
                 reopen(c),
                 reopen(with_(c["backing"], read_only=True)),
                 reopen(with_(c["backing"], read_only=False, backing=None)),
                 reopen(with_(c["backing"], backing="hd2")),
                 reopen(with_(c, backing=None)),
                 QNF,
                 ex("blockdev-del", node_name="cor"),
                 ex("blockdev-del", node_name="hd1"),
                 ex("block-job-set-speed", device="stream0", speed=0),
                 wait("stream0", "pending"),
                 QJ, G,
                 ex("job-finalize", id="stream0"),
                 wait("stream0", "null"),
                 QNF, G,
                 *reads_hd("hd1"),
                 reopen(with_(c["backing"], backing=None)),
                 reopen(with_(c["backing"], read_only=True, backing=None)),
                 QNF,
             ])
    scenario("f21-stream-filter-ro-explicit",
             "block-stream with a filter into a node the user opened read-only",
             HD_SETUP, [
                 add(with_(hd(2), read_only=True)),
                 add(with_(hd(1), backing="hd2", read_only=True)),
                 ex("block-stream", job_id="s0", device="hd1", filter_node_name="f0", speed=SPEED),
                 ex("block-stream", job_id="s0", device="hd1", speed=SPEED),
                 QJ, QNF,
                 add(with_(hd(0), backing="hd1")),
                 ex("block-stream", job_id="s1", device="hd1", filter_node_name="f1", speed=SPEED),
                 ex("block-stream", job_id="s1", device="hd0", base_node="hd2",
                    filter_node_name="f1", speed=SPEED),
                 SETTLE, QBJ, G, QNF,
                 reopen(with_(hd(0), backing=None)),
                 reopen(with_(hd(1), backing="hd2", read_only=True)),
                 reopen(with_(hd(2), read_only=False)),
                 QNF,
                 ex("block-job-set-speed", device="s0", speed=0),
                 wait("s0", "null"),
                 reopen(with_(hd(1), backing=None, read_only=True)),
                 QNF, G, *reads_hd("hd0"),
             ])
    scenario("f21-stream-245-chain",
             "245's block_stream_1..3 shapes: stream then reopen with stale nested backing options",
             HD_SETUP, [
                 add(with_(c, backing=with_(c["backing"], backing=None))),
                 ex("block-stream", job_id="stream0", device="hd0"),
                 wait("stream0", "null"),
                 QNF,
                 reopen(with_(c, backing=with_(c["backing"], backing=None))),
                 reopen(with_(c, backing=DROP)),
                 reopen(with_(c, backing=None)),
                 ex("blockdev-del", node_name="hd0"),
                 add(c),
                 ex("block-stream", job_id="stream0", device="hd0", base_node="hd2"),
                 wait("stream0", "null"),
                 reopen(c),
                 reopen(with_(c, backing=c["backing"]["backing"])),
                 reopen(with_(c, backing="hd2")),
                 reopen(with_(c, backing=DROP)),
                 ex("blockdev-del", node_name="hd0"),
                 QNF,
                 add(c),
                 ex("block-stream", job_id="stream0", device="hd0", base_node="hd2",
                    auto_finalize=False, speed=SPEED),
                 SETTLE,
                 reopen(with_(c, backing=with_(c["backing"], backing=None))),
                 reopen(with_(c, backing=None)),
                 QNF, G,
                 ex("block-job-set-speed", device="stream0", speed=0),
                 wait("stream0", "pending"),
                 ex("job-finalize", id="stream0"),
                 wait("stream0", "null"),
                 QNF, *reads_hd("hd0"),
             ])
    scenario("f21-commit-reopen",
             "245's block_commit shapes: frozen links during commit, then READY and complete",
             HD_SETUP, [
                 add(c),
                 ex("block-commit", job_id="commit0", device="hd0", speed=SPEED),
                 SETTLE,
                 reopen(with_(c, backing=with_(c["backing"], backing=None))),
                 reopen(with_(c, backing=None)),
                 reopen(with_(c["backing"], read_only=False)),
                 reopen(with_(c["backing"]["backing"], read_only=True)),
                 QBJ, G,
                 ex("block-job-set-speed", device="commit0", speed=0),
                 wait_ev("BLOCK_JOB_READY", device="commit0"),
                 reopen(with_(c, backing=None)),
                 ex("block-job-complete", device="commit0"),
                 wait("commit0", "null"),
                 QNF, G, *reads_hd("hd2"),
                 ex("blockdev-del", node_name="hd0"),
                 add(c),
                 ex("block-commit", job_id="commit1", device="hd0", top_node="hd1",
                    base_node="hd2", auto_finalize=False, speed=SPEED),
                 SETTLE,
                 reopen(with_(c, backing=with_(c["backing"], backing=None))),
                 reopen(with_(c, backing=None)),
                 reopen(with_(c["backing"], backing="hd2", read_only=True)),
                 QJ,
                 ex("block-job-set-speed", device="commit1", speed=0),
                 wait("commit1", "pending"),
                 ex("job-finalize", id="commit1"),
                 wait("commit1", "null"),
                 QNF, G, *reads_hd("hd0"),
             ])
    scenario("f21-stream-reopen-rw",
             "stream into a read-only chain member with and without filter; reopen of its parent and of base",
             HD_SETUP, [
                 add(c),
                 reopen(with_(c, read_only=True)),
                 ex("block-stream", job_id="s0", device="hd0", speed=SPEED),
                 ex("block-stream", job_id="s0", device="hd0", filter_node_name="fx", speed=SPEED),
                 reopen(with_(c, read_only=False)),
                 ex("block-stream", job_id="s0", device="hd1", speed=SPEED),
                 SETTLE, QNF,
                 # (a read-only reopen of hd1 here is accepted by QEMU 7.2 and
                 # the job then ends at a moment that varies from run to run)
                 reopen(with_(c, backing="hd2")),
                 ex("block-job-pause", device="s0"),
                 wait("s0", "paused"),
                 QBJ,
                 ex("block-job-resume", device="s0"),
                 ex("block-job-set-speed", device="s0", speed=0),
                 wait("s0", "null"),
                 QNF, G,
             ])


# --------------------------------------------------------------------------
# reopen with nested backing dicts: which differing option is named

def reopen_nested() -> None:
    c = chain3()
    ro = with_(c, backing=with_(c["backing"], backing=with_(hd(2), read_only=True)))
    steps: list[dict[str, Json]] = [add(c)]
    variants = [
        # one or several differing options at several depths
        with_(c, backing=with_(c["backing"], driver="raw")),
        with_(c, backing=with_(c["backing"], backing=with_(hd(2), node_name="zz"))),
        with_(c, backing=with_(c["backing"], driver="raw",
                               backing=with_(hd(2), file=with_(hd(2)["file"], node_name="q")))),
        with_(c, backing=with_(c["backing"], node_name="x1",
                               backing=with_(hd(2), driver="raw"))),
        with_(c, backing=with_(c["backing"], file=with_(c["backing"]["file"], filename="$DIR/hd0.qcow2"),
                               backing=with_(hd(2), driver="raw"))),
        with_(c, backing=with_(c["backing"], backing=DROP)),
        with_(c, backing=with_(c["backing"], cache={"direct": True})),
        with_(c, backing=with_(c["backing"], discard="unmap", backing=with_(hd(2), driver="raw"))),
        with_(c, backing=with_(c["backing"], backing=with_(hd(2), read_only=True,
                                                           file=with_(hd(2)["file"], node_name="q")))),
        with_(c, backing=with_(c["backing"], backing=with_(hd(2), file="hd0-file"))),
        with_(c, backing=with_(c["backing"], file=with_(c["backing"]["file"], driver="null-co"))),
        with_(c, backing=with_(c["backing"], file=with_(c["backing"]["file"], locking="off"),
                               backing=None)),
        ro,
        with_(c, backing={"driver": "qcow2", "node-name": "hd1", "file": "hd1-file",
                          "backing": {"driver": "raw", "node-name": "hd2", "file": "hd2-file"}}),
        with_(c, backing={"node-name": "hd1", "driver": "qcow2", "file": "hd1-file",
                          "backing": "hd2", "lazy-refcounts": True}),
        with_(c, backing={"driver": "qcow2", "node-name": "hd1", "file": "hd2-file",
                          "backing": "hd0"}),
        # these succeed: hd2 goes
        with_(c, backing=with_(c["backing"], auto_read_only=True, backing=None)),
        with_(c, backing=with_(c["backing"], file="hd2-file", backing=None)),
    ]
    for v in variants:
        steps.append(reopen(v))
    steps += [QNF,
              # the same against a chain that a stream shortened
              ex("block-stream", job_id="s0", device="hd0", base_node="hd2"),
              wait("s0", "null")]
    steps += [ex("blockdev-del", node_name="hd0"), add(c),
              ex("block-stream", job_id="s0", device="hd0", base_node="hd2"),
              wait("s0", "null")]
    for v in variants[:6]:
        steps.append(reopen(v))
    steps += [reopen(with_(c, backing={"driver": "qcow2", "node-name": "hd2", "file": "hd2-file",
                                       "backing": {"driver": "qcow2", "node-name": "nn",
                                                   "file": "hd0-file"}})),
              reopen(with_(c, backing=c["backing"]["backing"])), QNF]
    scenario("f21-reopen-nested", "reopen with nested backing dicts that differ in several options",
             HD_SETUP, steps)


# --------------------------------------------------------------------------
# blockdev-del of a node with several parents

def del_parents() -> None:
    setup = ["qemu-img create -q -f qcow2 $DIR/b.qcow2 1M",
             "qemu-img create -q -f qcow2 $DIR/o1.qcow2 1M",
             "qemu-img create -q -f qcow2 $DIR/o2.qcow2 1M",
             "qemu-img create -q -f qcow2 $DIR/o3.qcow2 1M",
             "qemu-img create -q -f raw $DIR/r.img 1M"]

    def q(name: str, image: str, **extra: Json) -> dict[str, Json]:
        return ex("blockdev-add", driver="qcow2", node_name=name,
                  file={"driver": "file", "filename": f"$DIR/{image}", "node-name": name + "-file"},
                  **extra)

    scenario("f21-del-parents", "blockdev-del of nodes with several parents of several roles",
             setup, [
                 q("b", "b.qcow2", read_only=True),
                 q("o1", "o1.qcow2", backing="b"),
                 q("o2", "o2.qcow2", backing="b"),
                 ex("blockdev-del", node_name="b"),
                 q("o3", "o3.qcow2", backing="b"),
                 ex("blockdev-del", node_name="b"),
                 ex("blockdev-del", node_name="o2"),
                 ex("blockdev-del", node_name="b"),
                 ex("blockdev-add", driver="raw", node_name="rw", file="b", read_only=True),
                 ex("blockdev-del", node_name="b"),
                 ex("blockdev-add", driver="copy-on-read", node_name="cor", file="o1"),
                 ex("blockdev-add", driver="raw", node_name="r2", file="o1"),
                 ex("blockdev-del", node_name="o1"),
                 ex("blockdev-del", node_name="r2"),
                 ex("blockdev-del", node_name="o1"),
                 ex("blockdev-add", driver="quorum", node_name="qu", children=["o3", "rw"],
                    vote_threshold=1, read_only=True),
                 ex("blockdev-del", node_name="o3"),
                 ex("blockdev-del", node_name="rw"),
                 ex("blockdev-del", node_name="b"),
                 ex("blockdev-add", driver="blkverify", node_name="bv", test="o3-file",
                    raw={"driver": "raw", "node-name": "rr", "file": "b-file"}, read_only=True),
                 ex("blockdev-del", node_name="b-file"),
                 ex("blockdev-del", node_name="o3-file"),
                 ex("blockdev-del", node_name="qu"),
                 ex("blockdev-del", node_name="o3"),
                 ex("blockdev-del", node_name="b"),
                 ex("blockdev-del", node_name="b-file"),
                 QNF, G,
                 ex("blockdev-del", node_name="bv"),
                 ex("blockdev-del", node_name="b"),
                 ex("blockdev-del", node_name="b-file"),
                 ex("blockdev-del", node_name="o3-file"),
                 ex("blockdev-del", node_name="rw"),
                 ex("blockdev-del", node_name="b"),
                 QNF,
             ])


# --------------------------------------------------------------------------
# devices: an empty iothread link

def devices() -> None:
    scenario("f21-dev-iothread-empty", "device_add with iothread \"\" (an empty link is no iothread)",
             ["qemu-img create -q -f qcow2 $DIR/d.qcow2 1M"], [
                 {"sleep": 1.5},
                 ex("blockdev-add", driver="qcow2", node_name="d0",
                    file={"driver": "file", "filename": "$DIR/d.qcow2"}),
                 ex("blockdev-add", driver="null-co", node_name="n1"),
                 ex("blockdev-add", driver="null-co", node_name="n2"),
                 ex("object-add", qom_type="iothread", id="io0"),
                 ex("device_add", driver="virtio-blk-pci", id="v0", drive="d0", iothread=""),
                 QB,
                 ex("device_add", driver="virtio-blk-pci", id="v1", drive="n1", iothread="nosuch"),
                 ex("device_add", driver="virtio-blk-pci", id="v1", drive="n1", iothread="io0"),
                 ex("device_add", driver="virtio-scsi-pci", id="s0", iothread=""),
                 ex("device_add", driver="scsi-hd", id="sd0", drive="n2", bus="s0.0"),
                 ex("device_add", driver="virtio-scsi-pci", id="s1", iothread="d0"),
                 ex("device_add", driver="virtio-blk-pci", id="v2", drive="n2", iothread=""),
                 ex("device_add", driver="virtio-blk-pci", id="v3", iothread=""),
                 ex("device_add", driver="ide-hd", id="i0", drive="n2", iothread=""),
                 QB, QNF,
                 ex("x-blockdev-set-iothread", node_name="d0", iothread="io0"),
                 ex("x-blockdev-set-iothread", node_name="n2", iothread="io0"),
                 ex("x-blockdev-set-iothread", node_name="n2", iothread=None),
                 ex("device_del", id="v0"),
                 ex("device_del", id="v1"),
                 {"sleep": 0.3},
                 QB,
             ], qemu_args=["-M", "pc", "-nodefaults", "-accel", "tcg"])


# --------------------------------------------------------------------------
# dirty bitmaps

def bitmaps() -> None:
    def q(name: str, image: str, **extra: Json) -> dict[str, Json]:
        return ex("blockdev-add", driver="qcow2", node_name=name,
                  file={"driver": "file", "filename": f"$DIR/{image}", "node-name": name + "-file"},
                  **extra)

    def sha(node: str, name: str) -> dict[str, Json]:
        return ex("x-debug-block-dirty-bitmap-sha256", node=node, name=name)

    scenario("f21-bitmap-sha256", "x-debug-block-dirty-bitmap-sha256 over granularities, sizes and writes",
             ["qemu-img create -q -f qcow2 $DIR/d.qcow2 4M",
              "qemu-img create -q -f qcow2 $DIR/odd.qcow2 1000448"], [
                 q("d", "d.qcow2"),
                 ex("blockdev-add", driver="null-co", node_name="n0", size=12345678),
                 q("odd", "odd.qcow2"),
                 ex("block-dirty-bitmap-add", node="d", name="b0"),
                 ex("block-dirty-bitmap-add", node="d", name="b512", granularity=512),
                 ex("block-dirty-bitmap-add", node="d", name="b1m", granularity=1048576),
                 ex("block-dirty-bitmap-add", node="n0", name="nb", granularity=4096),
                 ex("block-dirty-bitmap-add", node="odd", name="ob", granularity=65536),
                 sha("d", "b0"), sha("d", "b512"), sha("d", "b1m"), sha("n0", "nb"), sha("odd", "ob"),
                 sha("d", "nosuch"), sha("nosuch", "b0"), sha("d-file", "b0"),
                 hmp("d", "write 0 1"), hmp("d", "write 3M 70k"), hmp("d", "write 4095k 1k"),
                 hmp("odd", "write 960k 40k"),
                 hmp("n0", "write 12345000 678"),
                 sha("d", "b0"), sha("d", "b512"), sha("d", "b1m"), sha("n0", "nb"), sha("odd", "ob"),
                 ex("block-dirty-bitmap-disable", node="d", name="b512"),
                 hmp("d", "write 1M 1"),
                 sha("d", "b512"), sha("d", "b0"),
                 ex("block-dirty-bitmap-clear", node="d", name="b0"),
                 sha("d", "b0"),
                 ex("block-dirty-bitmap-merge", node="d", target="b0", bitmaps=["b1m", "b512"]),
                 sha("d", "b0"),
                 ex("query-block"),
                 QNF,
             ])
    # persistent bitmaps made by qemu-img bitmap
    pers_setup = [
        "qemu-img create -q -f qcow2 $DIR/p.qcow2 4M",
        "qemu-io -f qcow2 -c 'write -P 1 0 64k' $DIR/p.qcow2",
        "qemu-img bitmap --add $DIR/p.qcow2 b0",
        "qemu-img bitmap --add -g 512k $DIR/p.qcow2 big",
        "qemu-img bitmap --add --disable $DIR/p.qcow2 off",
        "qemu-io -f qcow2 -c 'write -P 2 1M 64k' $DIR/p.qcow2",
        "qemu-img bitmap --add $DIR/p.qcow2 m",
        "qemu-img bitmap --merge off $DIR/p.qcow2 m",
        "qemu-img bitmap --add $DIR/p.qcow2 tmp",
        "qemu-img bitmap --remove $DIR/p.qcow2 tmp",
        "qemu-img bitmap --add $DIR/p.qcow2 c",
        "qemu-img bitmap --clear $DIR/p.qcow2 c",
        "qemu-img bitmap --disable $DIR/p.qcow2 c",
        "qemu-img bitmap --enable $DIR/p.qcow2 c",
        "qemu-img create -q -f qcow2 $DIR/plain.qcow2 4M",
        "qemu-img create -q -f raw $DIR/r.img 4M",
    ]
    scenario("f21-bitmap-persistent", "persistent bitmaps made by qemu-img bitmap: loaded, listed, read-only",
             pers_setup, [
                 q("p", "p.qcow2"),
                 QN, QB,
                 sha("p", "b0"), sha("p", "big"), sha("p", "off"), sha("p", "m"), sha("p", "c"),
                 hmp("p", "write 2M 4k"),
                 sha("p", "b0"), sha("p", "off"),
                 ex("block-dirty-bitmap-add", node="p", name="b0"),
                 ex("block-dirty-bitmap-add", node="p", name="new", persistent=True),
                 ex("block-dirty-bitmap-add", node="p", name="tr"),
                 ex("block-dirty-bitmap-add", node="p", name="dis", persistent=True, disabled=True,
                    granularity=131072),
                 QN,
                 ex("block-dirty-bitmap-remove", node="p", name="c"),
                 ex("blockdev-del", node_name="p"),
                 q("p", "p.qcow2", read_only=True),
                 QN,
                 ex("block-dirty-bitmap-clear", node="p", name="b0"),
                 ex("block-dirty-bitmap-enable", node="p", name="off"),
                 ex("block-dirty-bitmap-disable", node="p", name="b0"),
                 ex("block-dirty-bitmap-remove", node="p", name="b0"),
                 ex("block-dirty-bitmap-merge", node="p", target="b0", bitmaps=["m"]),
                 ex("block-dirty-bitmap-add", node="p", name="x", persistent=True),
                 ex("block-dirty-bitmap-add", node="p", name="y"),
                 ex("block-dirty-bitmap-merge", node="p", target="y", bitmaps=["b0", "new"]),
                 sha("p", "y"), sha("p", "new"), sha("p", "dis"),
                 ex("blockdev-del", node_name="p"),
                 q("p", "p.qcow2"),
                 ex("block-dirty-bitmap-add", node="p", name="y", persistent=True,
                    granularity=4096),
                 hmp("p", "write 3M 8k"),
                 QN,
                 ex("blockdev-reopen", options=[{"driver": "qcow2", "node-name": "p",
                                                 "file": "p-file", "read-only": True}]),
                 QN,
                 ex("block-dirty-bitmap-clear", node="p", name="y"),
                 ex("blockdev-reopen", options=[{"driver": "qcow2", "node-name": "p",
                                                 "file": "p-file", "read-only": False}]),
                 QN,
                 ex("block-dirty-bitmap-clear", node="p", name="y"),
                 ex("blockdev-add", driver="raw", node_name="r",
                    file={"driver": "file", "filename": "$DIR/r.img"}),
                 ex("block-dirty-bitmap-add", node="r", name="x", persistent=True),
                 ex("block-dirty-bitmap-add", node="p-file", name="x", persistent=True),
                 q("pl", "plain.qcow2"),
                 ex("block-dirty-bitmap-add", node="pl", name="x", persistent=True, granularity=256),
                 ex("block-dirty-bitmap-add", node="pl", name="x", persistent=True,
                    granularity=2147483648),
                 ex("block-dirty-bitmap-add", node="pl", name="x", persistent=True,
                    granularity=1073741824),
                 ex("block-dirty-bitmap-add", node="pl", name="b" * 1024, persistent=True),
                 ex("block-dirty-bitmap-add", node="pl", name="b" * 1023, persistent=True),
                 QN,
                 ex("blockdev-del", node_name="pl"),
                 q("pl", "plain.qcow2"),
                 QN,
             ])
    scenario("f21-bitmap-persistent-store",
             "persistent bitmaps written when the node closes and loaded again; actual-size",
             ["qemu-img create -q -f qcow2 $DIR/s.qcow2 8M"], [
                 q("s", "s.qcow2"),
                 ex("block-dirty-bitmap-add", node="s", name="a", persistent=True),
                 ex("block-dirty-bitmap-add", node="s", name="b", persistent=True, disabled=True),
                 ex("block-dirty-bitmap-add", node="s", name="t"),
                 hmp("s", "write 0 64k"), hmp("s", "write 5M 1M"),
                 QN,
                 ex("blockdev-del", node_name="s"),
                 q("s", "s.qcow2"),
                 QN,
                 ex("x-debug-block-dirty-bitmap-sha256", node="s", name="a"),
                 ex("block-dirty-bitmap-enable", node="s", name="b"),
                 hmp("s", "write 7M 4k"),
                 ex("block-dirty-bitmap-remove", node="s", name="a"),
                 ex("blockdev-del", node_name="s"),
                 q("s", "s.qcow2", read_only=True),
                 QN,
                 ex("blockdev-del", node_name="s"),
                 q("s", "s.qcow2"),
                 ex("block-dirty-bitmap-add", node="s", name="c", persistent=True, granularity=4096),
                 hmp("s", "write 0 8M"),
                 ex("blockdev-del", node_name="s"),
                 q("s", "s.qcow2"),
                 QN,
             ])
    busy_setup = ["qemu-img create -q -f qcow2 $DIR/d.qcow2 4M",
                  "qemu-io -f qcow2 -c 'write -P 1 0 4M' $DIR/d.qcow2",
                  "qemu-img create -q -f qcow2 $DIR/t.qcow2 4M",
                  "qemu-img create -q -f qcow2 $DIR/t2.qcow2 4M",
                  "qemu-img create -q -f qcow2 $DIR/small.qcow2 2M"]
    base = [q("d", "d.qcow2"), q("t", "t.qcow2"), q("t2", "t2.qcow2"),
            ex("block-dirty-bitmap-add", node="d", name="b0"),
            ex("block-dirty-bitmap-add", node="d", name="b1"),
            hmp("d", "write -P 2 0 1M"), hmp("d", "write -P 3 2M 64k")]
    busy_ops = [
        ex("block-dirty-bitmap-clear", node="d", name="b0"),
        ex("block-dirty-bitmap-remove", node="d", name="b0"),
        ex("block-dirty-bitmap-enable", node="d", name="b0"),
        ex("block-dirty-bitmap-disable", node="d", name="b0"),
        ex("block-dirty-bitmap-merge", node="d", target="b0", bitmaps=["b1"]),
        ex("block-dirty-bitmap-merge", node="d", target="b1", bitmaps=["b0"]),
        ex("block-dirty-bitmap-add", node="d", name="b0"),
        ex("x-debug-block-dirty-bitmap-sha256", node="d", name="b0"),
        ex("transaction", actions=[{"type": "block-dirty-bitmap-clear",
                                    "data": {"node": "d", "name": "b0"}}]),
        ex("transaction", actions=[{"type": "block-dirty-bitmap-add",
                                    "data": {"node": "d", "name": "b2"}},
                                   {"type": "block-dirty-bitmap-remove",
                                    "data": {"node": "d", "name": "b0"}}]),
        ex("blockdev-backup", job_id="k2", device="d", target="t2", sync="bitmap", bitmap="b0"),
        QN,
    ]
    for mode, finish in (("on-success", "complete"), ("always", "cancel"), ("never", "complete"),
                         ("on-success", "cancel"), ("always", "complete")):
        steps = [*base,
                 ex("blockdev-backup", job_id="k", device="d", target="t", sync="bitmap",
                    bitmap="b0", bitmap_mode=mode, speed=SPEED),
                 SETTLE, QBJ, *busy_ops]
        if finish == "complete":
            steps += [ex("block-job-set-speed", device="k", speed=0), wait("k", "null")]
        else:
            steps += [ex("block-job-cancel", device="k"), wait("k", "null")]
        steps += [QN,
                  ex("x-debug-block-dirty-bitmap-sha256", node="d", name="b0"),
                  ex("block-dirty-bitmap-clear", node="d", name="b0"),
                  hmp("t", "read -q -P 2 0 64k"), QN]
        scenario(f"f21-bitmap-busy-{mode}-{finish}",
                 f"bitmap in use by backup sync=bitmap mode {mode}: refusals, then {finish}",
                 busy_setup, steps)
    scenario("f21-bitmap-backup-counts",
             "bitmap counts after backup jobs: incremental, full with bitmap, transaction with add",
             busy_setup, [
                 *base,
                 ex("blockdev-backup", job_id="k0", device="d", target="t", sync="incremental",
                    bitmap="b0"),
                 wait("k0", "null"), QN,
                 hmp("d", "write -P 4 3M 128k"),
                 ex("blockdev-backup", job_id="k1", device="d", target="t2", sync="full",
                    bitmap="b1", bitmap_mode="on-success"),
                 wait("k1", "null"), QN,
                 hmp("d", "write -P 5 1M 4k"),
                 ex("transaction", actions=[
                     {"type": "block-dirty-bitmap-add", "data": {"node": "d", "name": "b3"}},
                     {"type": "blockdev-backup", "data": {"job-id": "k2", "device": "d",
                                                          "target": "t", "sync": "full",
                                                          "speed": SPEED}}]),
                 SETTLE,
                 hmp("d", "write -P 6 0 4k"),
                 ex("block-job-cancel", device="k2"), wait("k2", "null"), QN,
                 ex("blockdev-backup", job_id="k3", device="d", target="t", sync="top",
                    bitmap="b1", bitmap_mode="always", speed=SPEED),
                 SETTLE,
                 ex("block-job-cancel", device="k3"), wait("k3", "null"), QN,
                 ex("blockdev-backup", job_id="k4", device="d", target="t", sync="bitmap",
                    bitmap="b0", bitmap_mode="never", speed=SPEED),
                 SETTLE, ex("block-job-cancel", device="k4"), wait("k4", "null"),
                 ex("blockdev-backup", job_id="k5", device="d", target="t", sync="full",
                    bitmap="b3", bitmap_mode="on-success", speed=SPEED),
                 SETTLE, ex("block-job-cancel", device="k5"), wait("k5", "null"), QN,
             ])
    scenario("f21-bitmap-merge-sizes", "merging bitmaps of different sizes, granularities and nodes",
             ["qemu-img create -q -f qcow2 $DIR/a.qcow2 4M",
              "qemu-img create -q -f qcow2 $DIR/b.qcow2 2M",
              "qemu-img create -q -f qcow2 $DIR/c.qcow2 6M"], [
                 q("a", "a.qcow2"), q("b", "b.qcow2"), q("c", "c.qcow2"),
                 ex("block-dirty-bitmap-add", node="a", name="a0"),
                 ex("block-dirty-bitmap-add", node="a", name="a1", granularity=4096),
                 ex("block-dirty-bitmap-add", node="b", name="b0"),
                 ex("block-dirty-bitmap-add", node="c", name="c0", granularity=1048576),
                 hmp("a", "write 0 8k"), hmp("a", "write 3M 1M"),
                 hmp("b", "write 1M 1M"), hmp("c", "write 5M 64k"),
                 ex("block-dirty-bitmap-merge", node="a", target="a0",
                    bitmaps=[{"node": "b", "name": "b0"}]),
                 ex("block-dirty-bitmap-merge", node="a", target="a1",
                    bitmaps=[{"node": "c", "name": "c0"}]),
                 ex("block-dirty-bitmap-merge", node="b", target="b0",
                    bitmaps=[{"node": "a", "name": "a0"}]),
                 ex("block-dirty-bitmap-merge", node="c", target="c0",
                    bitmaps=["c0", {"node": "a", "name": "a1"}]),
                 ex("block-dirty-bitmap-merge", node="a", target="a1", bitmaps=["a0"]),
                 ex("block-dirty-bitmap-merge", node="a", target="a0",
                    bitmaps=["a1", {"node": "b", "name": "nosuch"}]),
                 ex("block-dirty-bitmap-merge", node="a", target="a0",
                    bitmaps=[{"node": "nosuch", "name": "b0"}]),
                 # bitmaps=[] crashes QEMU 7.2 (segfault in qmp_block_dirty_bitmap_merge)
                 ex("block-dirty-bitmap-merge", node="a", target="nosuch", bitmaps=["a1"]),
                 QN,
                 ex("x-debug-block-dirty-bitmap-sha256", node="a", name="a0"),
                 ex("x-debug-block-dirty-bitmap-sha256", node="a", name="a1"),
                 ex("block_resize", node_name="b", size=4194304),
                 ex("block-dirty-bitmap-merge", node="a", target="a0",
                    bitmaps=[{"node": "b", "name": "b0"}]),
                 QN,
                 ex("transaction", actions=[
                     {"type": "block-dirty-bitmap-merge",
                      "data": {"node": "a", "target": "a0", "bitmaps": [{"node": "c", "name": "c0"}]}},
                     {"type": "block-dirty-bitmap-merge",
                      "data": {"node": "a", "target": "a1", "bitmaps": ["a0"]}}]),
                 QN,
             ])


# --------------------------------------------------------------------------
# blockdev-mirror: check order, replaces

def mirror() -> None:
    setup = ["qemu-img create -q -f qcow2 $DIR/src.qcow2 1M",
             "qemu-io -f qcow2 -c 'write -P 7 0 256k' $DIR/src.qcow2",
             "qemu-img create -q -f qcow2 $DIR/t1.qcow2 1M",
             "qemu-img create -q -f qcow2 $DIR/t2.qcow2 1M",
             "qemu-img create -q -f qcow2 $DIR/t3.qcow2 1M",
             "qemu-img create -q -f qcow2 $DIR/small.qcow2 512k"]

    def q(name: str, image: str, **extra: Json) -> dict[str, Json]:
        return ex("blockdev-add", driver="qcow2", node_name=name,
                  file={"driver": "file", "filename": f"$DIR/{image}", "node-name": name + "-file"},
                  **extra)

    m = {"job_id": "m", "device": "src", "target": "t1", "sync": "full"}

    def mir(**kw: Json) -> dict[str, Json]:
        a = dict(m)
        a.update(kw)
        return ex("blockdev-mirror", **{k: v for k, v in a.items() if v is not DROP})

    scenario("f21-mirror-checks", "blockdev-mirror argument checks: each against the others",
             setup, [
                 q("src", "src.qcow2"), q("t1", "t1.qcow2"), q("t2", "t2.qcow2"),
                 q("small", "small.qcow2"),
                 ex("blockdev-add", driver="null-co", node_name="nul"),
                 mir(buf_size=100, speed=-1, replaces="nosuch", target="nosuch"),
                 mir(buf_size=-1, speed=-1),
                 mir(buf_size=0, speed=-1, replaces="nosuch", target="nosuch"),
                 mir(speed=-1, replaces="nosuch", target="nosuch"),
                 mir(speed=-1, device="nosuch"),
                 mir(replaces="nosuch", target="nosuch"),
                 mir(replaces="nosuch"),
                 mir(replaces="t2", target="nosuch"),
                 mir(target="nosuch", device="src-file"),
                 mir(device="src-file"),
                 mir(device="src-file", target="nosuch"),
                 mir(granularity=100, buf_size=-5),
                 mir(granularity=100, speed=-1),
                 mir(granularity=1 << 27),
                 mir(granularity=256),
                 mir(sync="top", replaces="src", target="src"),
                 mir(target="src"),
                 mir(target="src-file"),
                 mir(target="small"),
                 mir(replaces="t2"),
                 mir(replaces="src-file"),
                 mir(replaces="t1"),
                 mir(sync="none", replaces="nul"),
                 mir(job_id=DROP, device="nosuch"),
                 mir(job_id="1x"),
                 mir(on_source_error="enospc"),
                 mir(on_target_error="enospc", on_source_error="stop", speed=SPEED),
                 SETTLE, QBJ,
                 mir(job_id="m2", target="t2"),
                 mir(job_id="m", target="t2"),
                 ex("block-job-cancel", device="m", force=True),
                 wait("m", "null"),
                 mir(sync="incremental", bitmap="nosuch"),
                 mir(sync="full", bitmap="nosuch"),
                 mir(sync="full", bitmap_mode="always"),
                 mir(copy_mode="write-blocking", speed=SPEED),
                 SETTLE, QBJ,
                 ex("block-job-cancel", device="m", force=True), wait("m", "null"),
                 QNF,
             ])
    scenario("f21-mirror-replaces-filter",
             "mirror with replaces of a node under a filter, through READY and completion",
             setup, [
                 q("src", "src.qcow2"), q("t1", "t1.qcow2"), q("t2", "t2.qcow2"), q("t3", "t3.qcow2"),
                 ex("object-add", qom_type="throttle-group", id="tg", limits={}),
                 ex("blockdev-add", driver="throttle", node_name="thr", throttle_group="tg",
                    file="src"),
                 ex("blockdev-add", driver="copy-on-read", node_name="cor", file="thr"),
                 ex("blockdev-mirror", job_id="m", device="cor", target="t1", sync="full",
                    replaces="src"),
                 ex("blockdev-mirror", job_id="m", device="thr", target="t1", sync="full",
                    replaces="src"),
                 ex("blockdev-mirror", job_id="m", device="src", target="t1", sync="full",
                    replaces="thr"),
                 ex("blockdev-mirror", job_id="m", device="cor", target="t1", sync="full",
                    replaces="cor"),
                 ex("blockdev-mirror", job_id="m", device="cor", target="t1", sync="full",
                    replaces="thr"),
                 wait_ev("BLOCK_JOB_READY", device="m"),
                 QBJ, G,
                 hmp("cor", "write -P 9 0 4k"),
                 ex("block-job-complete", device="m"),
                 wait("m", "null"),
                 G, QNF,
                 hmp("cor", "read -q -P 9 0 4k"), hmp("t1", "read -q -P 7 4k 252k"),
                 ex("blockdev-mirror", job_id="m2", device="cor", target="t2", sync="full",
                    replaces="t1", filter_node_name="mf"),
                 wait_ev("BLOCK_JOB_READY", device="m2"),
                 G,
                 ex("block-job-cancel", device="m2"),
                 wait("m2", "null"),
                 G,
                 ex("blockdev-mirror", job_id="m3", device="cor", target="t2", sync="top",
                    replaces="t1", speed=SPEED),
                 SETTLE,
                 ex("blockdev-del", node_name="t1"),
                 ex("blockdev-del", node_name="thr"),
                 ex("block-job-set-speed", device="m3", speed=0),
                 wait_ev("BLOCK_JOB_READY", device="m3"),
                 ex("job-complete", id="m3"),
                 wait("m3", "null"),
                 G, QNF,
                 ex("blockdev-del", node_name="t1"),
                 ex("blockdev-add", driver="raw", node_name="rw", file="t3"),
                 ex("blockdev-mirror", job_id="m4", device="cor", target="rw", sync="full",
                    replaces="t2"),
                 ex("blockdev-mirror", job_id="m4", device="cor", target="t3", sync="full",
                    replaces="t2"),
                 wait_ev("BLOCK_JOB_READY", device="m4"),
                 QBJ,
                 ex("blockdev-del", node_name="t2"),
                 ex("job-complete", id="m4"),
                 wait("m4", "null"),
                 G, QNF,
             ])
    scenario("f21-mirror-replaces-rules", "replaces rules: abrupt change of visible data, quorum children",
             setup + ["qemu-img create -q -f qcow2 $DIR/q1.qcow2 1M",
                      "qemu-img create -q -f qcow2 $DIR/q2.qcow2 1M"], [
                 q("src", "src.qcow2"), q("t1", "t1.qcow2"), q("t2", "t2.qcow2"),
                 q("q1", "q1.qcow2"), q("q2", "q2.qcow2"),
                 ex("blockdev-add", driver="quorum", node_name="qu", children=["q1", "q2"],
                    vote_threshold=1),
                 ex("blockdev-add", driver="raw", node_name="r", file="src"),
                 ex("blockdev-mirror", job_id="m", device="r", target="t1", sync="full",
                    replaces="src"),
                 ex("blockdev-mirror", job_id="m", device="src", target="t1", sync="full",
                    replaces="r"),
                 ex("blockdev-mirror", job_id="m", device="qu", target="t1", sync="full",
                    replaces="q1"),
                 ex("blockdev-mirror", job_id="m", device="q1", target="t1", sync="full",
                    replaces="qu"),
                 ex("blockdev-mirror", job_id="m", device="q1", target="t1", sync="full",
                    replaces="q1"),
                 ex("blockdev-mirror", job_id="m", device="q1", target="t1", sync="full",
                    replaces="q1-file"),
                 ex("blockdev-mirror", job_id="m", device="src-file", target="t1-file",
                    sync="full", replaces="src-file"),
                 ex("blockdev-mirror", job_id="m", device="t2", target="t1", sync="full",
                    replaces="q2"),
                 wait_ev("BLOCK_JOB_READY", device="m"),
                 ex("block-job-complete", device="m"),
                 wait("m", "null"),
                 G, QNF,
             ])


# --------------------------------------------------------------------------
# actual-size after active commit, and commit's image contents

def commit_sizes() -> None:
    setup = ["qemu-img create -q -f qcow2 $DIR/base.qcow2 4M",
             "qemu-io -f qcow2 -c 'write -P 1 0 1M' $DIR/base.qcow2",
             "qemu-img create -q -f qcow2 -b $DIR/base.qcow2 -F qcow2 $DIR/mid.qcow2",
             "qemu-io -f qcow2 -c 'write -P 2 1M 1M' $DIR/mid.qcow2",
             "qemu-img create -q -f qcow2 -b $DIR/mid.qcow2 -F qcow2 $DIR/top.qcow2",
             "qemu-io -f qcow2 -c 'write -P 3 2M 512k' $DIR/top.qcow2",
             "qemu-io -f qcow2 -c 'write -z 3M 64k' $DIR/top.qcow2"]
    chain = {"driver": "qcow2", "node-name": "top",
             "file": {"driver": "file", "filename": "$DIR/top.qcow2", "node-name": "top-file"},
             "backing": {"driver": "qcow2", "node-name": "mid",
                         "file": {"driver": "file", "filename": "$DIR/mid.qcow2",
                                  "node-name": "mid-file"},
                         "backing": {"driver": "qcow2", "node-name": "base",
                                     "file": {"driver": "file", "filename": "$DIR/base.qcow2",
                                              "node-name": "base-file"}}}}
    scenario("f21-commit-actual-size", "actual-size of the images after active and intermediate commits",
             setup, [
                 add(chain), QN,
                 ex("block-commit", job_id="c", device="top"),
                 wait_ev("BLOCK_JOB_READY", device="c"),
                 QN,
                 hmp("top", "write -P 4 3M 4k"),
                 ex("block-job-complete", device="c"),
                 wait("c", "null"),
                 QN, QB, G,
                 hmp("base", "read -q -P 2 1M 1M"), hmp("base", "read -q -P 3 2M 512k"),
                 hmp("base", "read -q -P 4 3M 4k"),
                 ex("blockdev-del", node_name="base"),
                 add(chain),
                 ex("block-commit", job_id="c2", device="top", top_node="mid"),
                 wait("c2", "null"),
                 QN,
                 ex("block-commit", job_id="c3", device="top", filter_node_name="cf"),
                 wait_ev("BLOCK_JOB_READY", device="c3"),
                 QN,
                 ex("block-job-cancel", device="c3"),
                 wait("c3", "null"),
                 QN,
             ])


# --------------------------------------------------------------------------
# job events

def job_events() -> None:
    setup = ["qemu-img create -q -f qcow2 $DIR/d.qcow2 2M",
             "qemu-io -f qcow2 -c 'write -P 1 0 2M' $DIR/d.qcow2",
             "qemu-img create -q -f qcow2 $DIR/t.qcow2 2M",
             "qemu-img create -q -f qcow2 $DIR/t2.qcow2 2M",
             "qemu-img create -q -f qcow2 -b $DIR/d.qcow2 -F qcow2 $DIR/ov.qcow2",
             "touch $DIR/new.img"]

    def q(name: str, image: str, **extra: Json) -> dict[str, Json]:
        return ex("blockdev-add", driver="qcow2", node_name=name,
                  file={"driver": "file", "filename": f"$DIR/{image}", "node-name": name + "-file"},
                  **extra)

    base = [q("d", "d.qcow2"), q("t", "t.qcow2"), q("t2", "t2.qcow2")]
    scenario("f21-events-backup", "backup events: pause, resume, set-speed, cancel, dismiss, drains",
             setup, [
                 *base,
                 ex("blockdev-backup", job_id="b", device="d", target="t", sync="full", speed=SPEED,
                    auto_dismiss=False),
                 SETTLE,
                 ex("block-job-pause", device="b"),
                 {"sleep": 0.3}, QJ,
                 ex("block-job-resume", device="b"),
                 SETTLE,
                 ex("job-pause", id="b"), ex("job-resume", id="b"),
                 ex("blockdev-add", driver="null-co", node_name="n0"),
                 ex("blockdev-del", node_name="n0"),
                 ex("blockdev-reopen", options=[{"driver": "qcow2", "node-name": "t2",
                                                 "file": "t2-file", "read-only": True}]),
                 ex("block-dirty-bitmap-add", node="d", name="bm"),
                 ex("transaction", actions=[{"type": "block-dirty-bitmap-clear",
                                             "data": {"node": "d", "name": "bm"}}]),
                 QJ,
                 ex("block-job-cancel", device="b"),
                 wait("b", "concluded"),
                 QJ,
                 ex("job-dismiss", id="b"),
                 QJ,
                 ex("blockdev-backup", job_id="b2", device="d", target="t", sync="full"),
                 wait("b2", "null"),
                 ex("blockdev-backup", job_id="b3", device="d", target="t", sync="full",
                    auto_finalize=False),
                 wait("b3", "pending"),
                 ex("job-finalize", id="b3"),
                 wait("b3", "null"),
             ])
    scenario("f21-events-mirror", "mirror events: ready, pause at ready (standby), cancel, complete",
             setup, [
                 *base,
                 ex("blockdev-mirror", job_id="m", device="d", target="t", sync="full"),
                 wait_ev("BLOCK_JOB_READY", device="m"),
                 ex("block-job-pause", device="m"),
                 {"sleep": 0.3}, QJ, QBJ,
                 ex("block-job-resume", device="m"),
                 {"sleep": 0.3}, QJ,
                 ex("blockdev-add", driver="null-co", node_name="n0"),
                 ex("blockdev-del", node_name="n0"),
                 ex("block-job-cancel", device="m"),
                 wait("m", "null"),
                 ex("blockdev-mirror", job_id="m2", device="d", target="t2", sync="full",
                    auto_finalize=False, auto_dismiss=False),
                 wait_ev("BLOCK_JOB_READY", device="m2"),
                 ex("job-complete", id="m2"),
                 wait("m2", "pending"),
                 ex("job-finalize", id="m2"),
                 wait("m2", "concluded"),
                 ex("job-dismiss", id="m2"),
                 QJ,
                 ex("blockdev-mirror", job_id="m3", device="d", target="t2", sync="full",
                    speed=SPEED),
                 SETTLE,
                 ex("block-job-cancel", device="m3"),
                 wait("m3", "null"),
             ])
    scenario("f21-events-create", "blockdev-create: job events around the reply, errors, dismiss",
             setup, [
                 ex("blockdev-add", driver="file", node_name="nf", filename="$DIR/new.img"),
                 ex("blockdev-create", job_id="c0",
                    options={"driver": "qcow2", "file": "nf", "size": 1048576}),
                 wait("c0", "concluded"),
                 QJ,
                 ex("job-dismiss", id="c0"),
                 ex("blockdev-create", job_id="c1",
                    options={"driver": "qcow2", "file": "nf", "size": 1000}),
                 wait("c1", "concluded"),
                 QJ,
                 ex("job-dismiss", id="c1"),
                 ex("blockdev-create", job_id="c2",
                    options={"driver": "file", "filename": "$DIR/f2.img", "size": 65536}),
                 wait("c2", "concluded"),
                 ex("blockdev-create", job_id="c2",
                    options={"driver": "file", "filename": "$DIR/f3.img", "size": 65536}),
                 ex("job-dismiss", id="c2"),
                 ex("blockdev-create", job_id="c3",
                    options={"driver": "raw", "file": "nf", "size": 1048576}),
                 ex("blockdev-create", job_id="c3",
                    options={"driver": "qcow2", "file": "nosuch", "size": 1048576}),
                 ex("blockdev-create", job_id="c3",
                    options={"driver": "qcow2", "file": "nf", "size": 1048576,
                             "cluster-size": 1000}),
                 wait("c3", "concluded"),
                 QJ,
                 ex("job-dismiss", id="c3"),
                 ex("blockdev-create", job_id="c4", options={"driver": "qcow2", "file": "nf",
                                                              "size": 2097152, "version": "v2"}),
                 wait("c4", "concluded"),
                 ex("job-cancel", id="c4"),
                 ex("block-job-dismiss", id="c4"),
                 ex("job-dismiss", id="c4"),
                 QJ,
                 ex("blockdev-add", driver="qcow2", node_name="q",
                    file="nf"),
                 QNF,
             ])
    scenario("f21-events-stream-commit", "stream and commit events: pause, drains, cancel, dismiss",
             setup, [
                 ex("blockdev-add", driver="qcow2", node_name="ov",
                    file={"driver": "file", "filename": "$DIR/ov.qcow2", "node-name": "ov-file"}),
                 ex("block-stream", job_id="s", device="ov", speed=SPEED, auto_dismiss=False),
                 SETTLE,
                 ex("job-pause", id="s"),
                 {"sleep": 0.3},
                 ex("blockdev-add", driver="null-co", node_name="n0"),
                 ex("blockdev-del", node_name="n0"),
                 ex("job-resume", id="s"),
                 SETTLE,
                 ex("job-cancel", id="s"),
                 wait("s", "concluded"),
                 ex("job-dismiss", id="s"),
                 ex("block-commit", job_id="c", device="ov", speed=SPEED),
                 SETTLE,
                 ex("block-job-pause", device="c"),
                 {"sleep": 0.3},
                 ex("block-job-cancel", device="c"),
                 {"sleep": 0.3}, QJ,
                 # the speed first: BLOCK_JOB_READY reports the speed at that moment
                 ex("block-job-set-speed", device="c", speed=0),
                 ex("block-job-resume", device="c"),
                 wait_ev("BLOCK_JOB_READY", device="c"),
                 ex("block-job-cancel", device="c"),
                 wait("c", "null"),
                 ex("block-commit", job_id="c2", device="ov", speed=SPEED),
                 SETTLE,
                 ex("block-job-set-speed", device="c2", speed=0),
                 wait_ev("BLOCK_JOB_READY", device="c2"),
                 ex("job-cancel", id="c2"),
                 wait("c2", "null"),
                 ex("block-commit", job_id="c3", device="ov", auto_dismiss=False),
                 wait_ev("BLOCK_JOB_READY", device="c3"),
                 ex("job-complete", id="c3"),
                 wait("c3", "concluded"),
                 ex("job-dismiss", id="c3"),
                 QNF,
             ])


def write_all(scenarios: list[dict[str, Json]], outdir: str) -> None:
    """Write each scenario to ``outdir/<name>.json`` (the corpus' format)."""
    os.makedirs(outdir, exist_ok=True)
    for sc in scenarios:
        with open(os.path.join(outdir, sc["name"] + ".json"), "w") as f:
            json.dump(sc, f, indent=1)
            f.write("\n")
    print(f"wrote {len(scenarios)} scenarios to {outdir}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outdir", default=OUT)
    args = ap.parse_args(argv)
    for family in (stream_reopen, reopen_nested, del_parents, devices, bitmaps, mirror,
                   commit_sizes, job_events):
        family()
    write_all(SCENARIOS, args.outdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
