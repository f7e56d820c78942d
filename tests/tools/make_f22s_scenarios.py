"""Writes the issue-22 stream scenarios tests/data/recorded/scenarios/f22s-*.json.

What QEMU's iotest 030 (block-stream) relies on that the corpus had not
covered: several stream and commit jobs at once on one nine-node chain
(``TestParallelOps``) with the op blockers that make the overlapping ones
fail (``Node 'X' is busy: block device is in use by block job: stream``),
the ``bottom`` of a stream bounding that check, and the order in which the
jobs finish; and blkdebug breakpoints (qemu-io ``break``, ``resume``,
``remove_break``, ``wait_break``): one-shot rules that suspend the one
request that hits them until it is resumed.

Not a test: run it, then record the scenarios on QEMU 7.2 twice
(tests/tools/record_corpus.py), and on 10.0 and 5.2 where they run.

    python3 tests/tools/make_f22s_scenarios.py [--outdir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_f21_scenarios import (  # noqa: E402  (a sibling script, not a package)
    ex,
    hmp,
    wait,
    write_all,
)

Json = Any
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "data", "recorded", "scenarios")
QJ = {"execute": "query-jobs"}
QBJ = {"execute": "query-block-jobs"}
QNF = {"execute": "query-named-block-nodes", "arguments": {"flat": True}}
MIB = 1024 * 1024
# A throttled job copies one chunk, then waits for minutes; paused at once it
# holds its nodes whatever the machine's speed (a drain would let a throttled
# job copy one chunk more).
SLOW = 1024
GRAPH = {"execute": "x-debug-query-block-graph"}


def held(job: str) -> list[dict[str, Json]]:
    """The job (just started with speed SLOW) paused until let go."""
    return [ex("block-job-pause", device=job), wait(job, "paused")]


def let_go(job: str) -> list[dict[str, Json]]:
    return [ex("block-job-set-speed", device=job, speed=0), ex("block-job-resume", device=job)]

SCENARIOS: list[dict[str, Json]] = []


def scenario(name: str, description: str, setup: list[str], steps: list[dict[str, Json]],
             **extra: Json) -> None:
    SCENARIOS.append({"name": name, "description": description,
                      "source": "hand-written (tests/tools/make_f22s_scenarios.py)",
                      "setup": setup, "steps": steps, **extra})


# iotest 030's TestParallelOps chain: img-0 raw, img-1..img-8 qcow2, each on
# the one below; the odd images hold data (2 MiB and 4 MiB in turn) so that
# the streams of the even ones take different times.
NUM = 9
LEN = 16 * MIB


def chain_setup() -> list[str]:
    setup = [f"qemu-img create -q -f raw $DIR/img-0.img {LEN}",
             "qemu-io -f raw -c 'write -P 0x01 0 16M' $DIR/img-0.img"]
    for i in range(1, NUM):
        fmt = "raw" if i == 1 else "qcow2"
        setup.append(f"qemu-img create -q -f qcow2 -o backing_file=$DIR/img-{i - 1}.img "
                     f"-F {fmt} $DIR/img-{i}.img {LEN}")
    odd = [x for x in reversed(range(NUM)) if x % 2 == 1]
    for i, img in enumerate(odd):
        mb = 2 + 2 * (i % 2)
        setup.append(f"qemu-io -f qcow2 -c 'write -P 0xff {i * 4}M {mb}M' $DIR/img-{img}.img")
    return setup


def chain_adds() -> list[dict[str, Json]]:
    """node0 (raw) to node8, each named, each on the one below."""
    steps = [ex("blockdev-add", driver="raw", node_name="node0",
                file={"driver": "file", "filename": "$DIR/img-0.img"})]
    for i in range(1, NUM):
        steps.append(ex("blockdev-add", driver="qcow2", node_name=f"node{i}",
                        file={"driver": "file", "filename": f"$DIR/img-{i}.img"},
                        backing=f"node{i - 1}"))
    return steps


def backing_of(node: str) -> dict[str, Json]:
    return {"hmp": f'qemu-io {node} "map"'}


def parallel_ops() -> None:
    setup = chain_setup()
    img = [f"$DIR/img-{i}.img" for i in range(NUM)]
    # test_stream_parallel: four throttled streams (bottom = the one below),
    # unthrottled from the top down, completing in turn.
    steps = chain_adds()
    for i in range(2, NUM, 2):
        steps.append(ex("block-stream", device=f"node{i}", job_id=f"stream-node{i}",
                        bottom=f"node{i - 1}", speed=SLOW))
        steps += held(f"stream-node{i}")
    steps += [GRAPH]
    # overlapping ones are refused where another stream's nodes are
    steps += [ex("block-stream", device="node3", job_id="s3", base_node="node1"),
              ex("block-stream", device="node4", job_id="s4", bottom="node3"),
              ex("block-stream", device="node5", job_id="s5", bottom="node4"),
              ex("block-stream", device="node8", job_id="s8", bottom="node7"),
              ex("block-commit", device="node8", top_node="node3", base_node="node1")]
    # let go from the top down, one at a time (which of two unthrottled
    # streams ends first is QEMU's I/O timing)
    for i in reversed(range(2, NUM, 2)):
        steps += let_go(f"stream-node{i}") + [wait(f"stream-node{i}", "null"), GRAPH]
    steps += [QBJ, ex("query-named-block-nodes", flat=True)]
    steps += [backing_of(f"node{i}") for i in range(1, NUM)]
    scenario("f22s-stream-parallel", "iotest 030 test_stream_parallel: four streams on one "
             "chain, each with a bottom, throttled and then let go from the top down; the "
             "overlapping streams and commits refused meanwhile", setup, steps)

    # test_overlapping_1: a stream with a filter blocks its chain
    steps = chain_adds() + [
        ex("block-stream", device="node4", job_id="stream-node4", base=img[1],
           filter_node_name="stream-filter", speed=SLOW),
        *held("stream-node4"),
        ex("block-stream", device="node5", job_id="stream-node5", base=img[2]),
        ex("block-stream", device="node3", job_id="stream-node3", base=img[2]),
        ex("block-stream", device="node4", job_id="stream-node4-v2"),
        ex("block-commit", device="node8", base=img[4], job_id="commit-node4"),
        ex("block-commit", device="node8", base=img[1], top=img[3], job_id="commit-node1"),
        ex("block-commit", device="node8", base=img[0], top=img[1], job_id="commit-node0"),
        ex("block-stream", device="stream-filter", job_id="s-f"),
        ex("block-commit", device="node8", base_node="stream-filter", job_id="c-f"),
        ex("block-commit", device="node8", top_node="node6", base_node="node5", job_id="c65"),
        wait("c65", "null"),
        ex("block-stream", device="node6", base_node="node5", job_id="s65"),
        wait("s65", "null"),
        *let_go("stream-node4"),
        wait("stream-node4", "null"),
        QBJ, QNF,
    ]
    scenario("f22s-overlap-stream", "iotest 030 test_overlapping_1: streams and commits "
             "that touch a running stream's nodes (its filter, its intermediate nodes, the "
             "node whose backing link it will change) are refused, by node, as QEMU checks "
             "them", setup, steps)

    # test_overlapping_2 / 3: a commit blocks its chain (and the active layer)
    steps = chain_adds() + [
        ex("block-commit", device="node8", top=img[5], base=img[3], job_id="commit-node3",
           speed=SLOW),
        *held("commit-node3"),
        ex("block-stream", device="node3", job_id="stream-node3"),
        ex("block-stream", device="node6", base=img[2], job_id="stream-node6"),
        ex("block-stream", device="node4", base=img[2], job_id="stream-node4"),
        ex("block-stream", device="node6", base=img[4], job_id="stream-node6-v2"),
        ex("block-stream", device="node8", base=img[5], job_id="stream-drive0"),
        ex("block-stream", device="node7", base=img[6], job_id="stream-node7"),
        wait("stream-node7", "null"),
        ex("block-stream", device="node2", base=img[0], job_id="stream-node2", speed=SLOW),
        *held("stream-node2"),
        ex("block-commit", device="node8", top=img[2], base=img[1], job_id="commit-node1"),
        ex("block-commit", device="node8", job_id="commit-active"),
        *let_go("stream-node2"),
        wait("stream-node2", "null"),
        *let_go("commit-node3"),
        wait("commit-node3", "null"),
        ex("block-commit", device="node8", base=img[3], job_id="commit-drive0", speed=SLOW),
        *held("commit-drive0"),
        ex("block-stream", device="node5", base=img[3], job_id="stream-node6"),
        ex("block-stream", device="node3", base=img[1], job_id="stream-node3"),
        *let_go("commit-drive0"),
        {"wait_event": "BLOCK_JOB_READY", "data": {"device": "commit-drive0"}},
        ex("block-job-complete", device="commit-drive0"),
        wait("commit-drive0", "null"),
        QBJ, QNF,
    ]
    scenario("f22s-overlap-commit", "iotest 030 test_overlapping_2 and 3: an intermediate "
             "commit blocks its nodes and the active layer, an active commit its whole "
             "chain; streams and commits elsewhere on the chain still run", setup, steps)

    # test_overlapping_4 / 5: stream's base against commit's filter
    steps = chain_adds() + [
        ex("block-commit", device="node8", top=img[2], base=img[0], job_id="drive0",
           filter_node_name="commit-filter", speed=SLOW),
        *held("drive0"),
        # bottom node3: the link to the commit filter is not frozen; the new
        # backing link to node2 is refused when the stream ends (the commit
        # shares no consistent read on node2) and the stream fails
        ex("block-stream", device="node4", base_node="node2", job_id="node4", speed=SLOW),
        *held("node4"),
        ex("block-stream", device="node4", base_node="commit-filter", job_id="node4b"),
        ex("block-stream", device="node4", base_node="node0", job_id="node4b"),
        ex("block-stream", device="node2", job_id="node2"),
        *let_go("node4"),
        wait("node4", "null"),
        GRAPH,
        # with the commit filter as base the stream runs beside the commit
        ex("block-stream", device="node4", base_node="commit-filter", job_id="node4",
           speed=SLOW),
        wait("node4", "null"),
        *let_go("drive0"),
        wait("drive0", "null"),
        QBJ, QNF,
    ]
    scenario("f22s-overlap-filter-base", "iotest 030 test_overlapping_4 and 5: a stream whose "
             "base is a committed node must freeze the link to the commit filter and is "
             "refused; with the commit filter itself as base it runs beside the commit",
             setup, steps)

    # test_stream_commit_1 / 2: a stream and an active commit at once
    steps = chain_adds() + [
        ex("block-stream", device="node4", base_node="node0", job_id="node4", speed=SLOW),
        *held("node4"),
        ex("block-commit", device="node8", base=img[5], speed=SLOW, job_id="drive0"),
        *held("drive0"),
        GRAPH,
        *let_go("drive0"),
        {"wait_event": "BLOCK_JOB_READY", "data": {"device": "drive0"}},
        ex("block-job-complete", device="drive0"),
        wait("drive0", "null"),
        *let_go("node4"),
        wait("node4", "null"),
        QBJ, QNF,
    ]
    scenario("f22s-stream-commit", "iotest 030 test_stream_commit_2: a stream into node4 and "
             "an active commit into node5, both throttled, then let go", setup, steps)


def frozen_links() -> None:
    setup = chain_setup()
    img = [f"$DIR/img-{i}.img" for i in range(NUM)]
    # As with -drive: the backing nodes are read-only, so a stream must first
    # make its top writable, holding the chain down to the base frozen.
    steps = [ex("blockdev-add", driver="raw", node_name="node0", read_only=True,
                file={"driver": "file", "filename": "$DIR/img-0.img"})]
    for i in range(1, NUM):
        ro = {"read_only": True} if i < NUM - 1 else {}
        steps.append(ex("blockdev-add", driver="qcow2", node_name=f"node{i}",
                        file={"driver": "file", "filename": f"$DIR/img-{i}.img"},
                        backing=f"node{i - 1}", **ro))
    steps += [
        ex("block-commit", device="node8", top=img[2], base=img[0], job_id="drive0",
           filter_node_name="commit-filter", speed=SLOW),
        *held("drive0"),
        # the link from node3 to the commit filter may not be frozen
        ex("block-stream", device="node4", base_node="node2", job_id="node4"),
        ex("block-stream", device="node4", base_node="node1", job_id="node4"),
        ex("block-stream", device="node4", base_node="commit-filter", job_id="node4",
           speed=SLOW),
        *held("node4"),
        QBJ,
        ex("query-named-block-nodes", flat=True),
        *let_go("node4"),
        wait("node4", "null"),
        *let_go("drive0"),
        wait("drive0", "null"),
        QBJ, QNF,
    ]
    scenario("f22s-freeze-commit-filter", "iotest 030 test_overlapping_4 with -drive's "
             "read-only backing nodes: a stream of a read-only node freezes its chain down "
             "to the base while it reopens the node, which a commit filter in the way "
             "refuses", setup, steps)


def breakpoints() -> None:
    setup = ["qemu-img create -q -f qcow2 $DIR/a.qcow2 1M"]
    steps = [
        ex("blockdev-add", driver="qcow2", node_name="top",
           file={"driver": "blkdebug", "node-name": "dbg",
                 "image": {"driver": "file", "filename": "$DIR/a.qcow2"}}),
        ex("blockdev-add", driver="null-co", node_name="plain"),
        hmp("top", "break no_such_event bp"),
        hmp("top", "break read_aio"),
        hmp("top", "break read_aio bp"),
        hmp("top", "break write_aio bp"),
        hmp("dbg", "break flush_to_disk other"),
        hmp("top", "resume bp"),
        hmp("top", "remove_break bp"),
        hmp("top", "remove_break bp"),
        hmp("top", "remove_break other"),
        hmp("top", "resume nothing"),
        hmp("plain", "break read_aio bp"),
        hmp("plain", "remove_break bp"),
        hmp("plain", "resume bp"),
        hmp("top", "wait_break x y"),
        hmp("top", "read 0 4k"),
    ]
    scenario("f22s-blkdebug-breakpoints", "qemu-io's blkdebug breakpoint commands without a "
             "request to suspend: unknown events, one tag on several rules, remove_break and "
             "resume of tags with nothing set or suspended, a node without blkdebug below",
             setup, steps)


def copy_on_read() -> None:
    # iotests 216 and 310: reads through a copy-on-read filter copy the
    # backing chain's data (down to bottom) into the node below the filter
    setup = ["qemu-img create -q -f qcow2 $DIR/base.img 64M",
             "qemu-io -f qcow2 -c 'write -P 1 0M 1M' -c 'write -P 1 3M 1M' $DIR/base.img",
             "qemu-img create -q -f qcow2 -b $DIR/base.img -F qcow2 $DIR/mid.img",
             "qemu-io -f qcow2 -c 'write -P 3 2M 1M' -c 'write -P 3 4M 1M' $DIR/mid.img",
             "qemu-img create -q -f qcow2 -b $DIR/mid.img -F qcow2 $DIR/top.img",
             "qemu-io -f qcow2 -c 'write -P 2 1M 1M' $DIR/top.img",
             "qemu-img create -q -f qcow2 -b $DIR/mid.img -F qcow2 $DIR/top2.img",
             "qemu-io -f qcow2 -c 'write -P 2 1M 1M' $DIR/top2.img"]

    def chain(top: str, pre: str) -> dict[str, Json]:
        return {"driver": "qcow2", "node-name": pre + "top",
                "file": {"driver": "file", "filename": f"$DIR/{top}"},
                "backing": {"node-name": pre + "mid", "driver": "qcow2",
                            "file": {"driver": "file", "filename": "$DIR/mid.img"},
                            "backing": {"node-name": pre + "base", "driver": "qcow2",
                                        "file": {"driver": "file",
                                                 "filename": "$DIR/base.img"}}}}
    steps = [
        ex("blockdev-add", node_name="cor", driver="copy-on-read", bottom="mid",
           file=chain("top.img", "")),
        hmp("top", "map"),
        hmp("cor", "read -P 3 2M 1M"),
        hmp("top", "map"),
        hmp("cor", "read 0 5M"),
        hmp("top", "map"),
        hmp("top", "read -P 0 0 1M"),
        hmp("top", "read -P 3 4M 1M"),
        ex("blockdev-add", node_name="cor2", driver="copy-on-read",
           file=chain("top2.img", "b-")),
        hmp("cor2", "read 512 1k"),
        hmp("b-top", "map"),
        hmp("cor2", "read 8M 64k"),
        hmp("b-top", "map"),
        hmp("cor2", "read 0 6M"),
        hmp("b-top", "map"),
        ex("blockdev-add", node_name="cor3", driver="copy-on-read", bottom="b-top",
           file="b-top"),
        ex("blockdev-del", node_name="cor"),
        ex("blockdev-del", node_name="cor2"),
        QNF,
    ]
    scenario("f22s-copy-on-read", "iotests 216 and 310: qemu-io reads through copy-on-read "
             "filters with and without bottom copy the chain's clusters into the node "
             "below (maps before and after)", setup, steps)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outdir", default=OUT)
    args = ap.parse_args(argv)
    for family in (parallel_ops, frozen_links, breakpoints, copy_on_read):
        family()
    write_all(SCENARIOS, args.outdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
