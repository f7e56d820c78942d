"""Writes the block-job scenarios tests/data/recorded/scenarios/job-*.json.

One scenario per flow of issue 8 (stream of the whole chain, to base-node, to
bottom; intermediate and active commit; manual finalize/dismiss; pause/resume;
cancel at each stage; set-speed; reopen and blockdev-del at each stage; job
error texts).  Jobs run with ``speed: 65536`` so that QEMU's rate limiter stops
them after their first slice (8 s of sleep for a 512 KiB chunk): everything the
scenario asks in between sees a deterministic state.  ``block-job-set-speed 0``
then lets the job finish, and standalone ``wait_event`` steps wait for it.

    python3 tests/jobs/make_job_scenarios.py

writes them to tests/data/recorded/scenarios (job-error-* use blkdebug's
inject-error to make a job meet an I/O error).  Then record them against QEMU (tests/data/recorded/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

Json = Any
SPEED = 65536

Q = {"execute": "query-named-block-nodes", "arguments": {"flat": True}}
G = {"execute": "x-debug-query-block-graph"}
QBJ = {"execute": "query-block-jobs"}
QJ = {"execute": "query-jobs"}

SETUP = [
    "qemu-img create -q -f qcow2 $DIR/jbase.qcow2 4M",
    "qemu-io -c 'write -P 0x11 0 2M' $DIR/jbase.qcow2",
    "qemu-img create -q -f qcow2 -b $DIR/jbase.qcow2 -F qcow2 $DIR/jmid.qcow2",
    "qemu-io -c 'write -P 0x22 1M 1M' $DIR/jmid.qcow2",
    "qemu-img create -q -f qcow2 -b $DIR/jmid.qcow2 -F qcow2 $DIR/jtop.qcow2",
    "qemu-io -c 'write -P 0x33 3M 512k' $DIR/jtop.qcow2",
]


def ex(cmd: str, **args: Json) -> dict[str, Json]:
    d: dict[str, Json] = {"execute": cmd}
    if args:
        d["arguments"] = {k.replace("_", "-"): v for k, v in args.items()}
    return d


def add(name: str, image: str, backing: Json = "") -> dict[str, Json]:
    a: dict[str, Json] = {"driver": "qcow2", "node-name": name,
                          "file": {"driver": "file", "node-name": name + "-file",
                                   "filename": f"$DIR/{image}"}}
    if backing != "":
        a["backing"] = backing
    return {"execute": "blockdev-add", "arguments": a}


CHAIN = [add("base", "jbase.qcow2", None), add("mid", "jmid.qcow2", "base"),
         add("top", "jtop.qcow2", "mid")]


def reopen(name: str, image: str, backing: Json, **extra: Json) -> dict[str, Json]:
    opts: dict[str, Json] = {"driver": "qcow2", "node-name": name, "file": name + "-file",
                             "backing": backing}
    opts.update({k.replace("_", "-"): v for k, v in extra.items()})
    return {"execute": "blockdev-reopen", "arguments": {"options": [opts]}}


def dele(name: str) -> dict[str, Json]:
    return ex("blockdev-del", node_name=name)


def wait(job: str, status: str) -> dict[str, Json]:
    return {"wait_event": "JOB_STATUS_CHANGE", "data": {"id": job, "status": status}}


def read(node: str, pattern: str, off: str, length: str) -> dict[str, Json]:
    return {"hmp": f'qemu-io {node} "read -q -P {pattern} {off} {length}"'}


def reads(node: str) -> list[dict[str, Json]]:
    return [read(node, "0x11", "0", "1M"), read(node, "0x22", "1M", "1M"),
            read(node, "0", "2M", "1M"), read(node, "0x33", "3M", "512k"),
            read(node, "0", "3584k", "512k")]


# QEMU finishes the first chunk's I/O a little after the reply; by then the
# rate limiter holds the job for seconds.
SETTLE = {"sleep": 0.2}


def finish(job: str) -> list[dict[str, Json]]:
    return [ex("block-job-set-speed", device=job, speed=0), wait(job, "null")]


SCENARIOS: list[dict[str, Json]] = []


def scenario(name: str, description: str, steps: list[dict[str, Json]],
             setup: list[str] | None = None) -> None:
    SCENARIOS.append({"name": name, "description": description,
                      "source": "hand-written (tests/jobs/make_job_scenarios.py)",
                      "setup": setup if setup is not None else SETUP, "steps": steps})


scenario("job-stream-full", "block-stream of the whole chain into top, checks mid-job and after (§5.5, §7)", [
    *CHAIN,
    ex("block-stream", job_id="s0", device="top", speed=SPEED),
    SETTLE,
    QBJ, QJ, G, Q,
    reopen("top", "jtop.qcow2", None),
    reopen("mid", "jmid.qcow2", None),
    reopen("top", "jtop.qcow2", "mid", read_only=True),
    dele("top"), dele("mid"), dele("base"),
    ex("block-stream", job_id="s1", device="top", speed=SPEED),
    SETTLE,
    ex("block-commit", job_id="s1", device="top"),
    ex("block-job-set-speed", device="s0", speed=-1),
    ex("block-job-set-speed", device="s0", speed=SPEED * 2),
    QBJ,
    *finish("s0"),
    QBJ, QJ, G, Q,
    *reads("top"),
    dele("mid"), dele("base"), Q,
])

scenario("job-stream-base-node", "stream down to an auto-opened base-node; mid goes away afterwards (§7.5)", [
    ex("blockdev-add", driver="qcow2", node_name="top",
       file={"driver": "file", "filename": "$DIR/jtop.qcow2"}),
    ex("block-stream", job_id="s0", device="top", base_node="#X", speed=SPEED),
    SETTLE,
    ex("block-stream", job_id="s0", device="top", base_node="$NODE[qcow2:$DIR/jbase.qcow2]",
       speed=SPEED),
    SETTLE,
    QBJ, QJ, G, Q,
    {"execute": "blockdev-reopen", "arguments": {"options": [
        {"driver": "qcow2", "node-name": "top", "file": "$NODE[file:$DIR/jtop.qcow2]",
         "backing": None}]}},
    ex("block-job-pause", device="s0"), QBJ,
    ex("block-job-pause", device="s0"),
    ex("block-job-resume", device="s0"), QBJ,
    ex("block-job-resume", device="s0"),
    *finish("s0"),
    QBJ, G, Q,
    *reads("top"),
])

scenario("job-stream-bottom", "stream with bottom and a named filter; argument errors (§7.1-7.3)", [
    *CHAIN,
    ex("block-stream", job_id="s0", device="nosuch"),
    ex("block-stream", job_id="s0", device="top", base="x", base_node="base"),
    ex("block-stream", job_id="s0", device="top", base="x", bottom="mid"),
    ex("block-stream", job_id="s0", device="top", bottom="mid", base_node="base"),
    ex("block-stream", job_id="s0", device="top", base_node="nosuch"),
    ex("block-stream", job_id="s0", device="top", base_node="top-file"),
    ex("block-stream", job_id="s0", device="top", base_node="top"),
    ex("block-stream", job_id="s0", device="top", base="/nonexist"),
    ex("block-stream", job_id="s0", device="top", bottom="top-file"),
    ex("block-stream", job_id="s0", device="top", backing_file="x"),
    ex("block-stream", job_id="s0", device="top", bottom="mid", filter_node_name="mid"),
    ex("block-stream", job_id="s0", device="top", bottom="mid", filter_node_name="1bad"),
    ex("block-stream", device="top", bottom="mid"),
    ex("block-stream", job_id="1bad", device="top", bottom="mid"),
    ex("block-stream", job_id="s0", device="top", bottom="mid", speed=-1),
    Q,
    ex("block-stream", job_id="s0", device="top", bottom="mid", filter_node_name="cor",
       speed=SPEED),
    SETTLE,
    QBJ, G, Q,
    ex("block-stream", job_id="s1", device="top", bottom="mid"),
    ex("block-stream", job_id="s0", device="mid"),
    reopen("top", "jtop.qcow2", None),
    QBJ,
    ex("block-job-pause", device="s0"),
    reopen("mid", "jmid.qcow2", None),
    reopen("mid", "jmid.qcow2", "base"),
    dele("cor"),
    ex("block-job-resume", device="s0"),
    wait("s0", "null"),
    G, Q,
    *reads("top"),
])

scenario("job-commit-intermediate", "intermediate commit of mid into base; reopen/del during the job (§5.5)", [
    *CHAIN,
    ex("block-commit", job_id="c0", device="nosuch"),
    ex("block-commit", job_id="c0", device="mid"),
    ex("block-commit", job_id="c0", device="top", top="x", top_node="mid"),
    ex("block-commit", job_id="c0", device="top", base="x", base_node="base"),
    ex("block-commit", job_id="c0", device="top", top_node="nosuch"),
    ex("block-commit", job_id="c0", device="top", top="/nosuch"),
    ex("block-commit", job_id="c0", device="top", top_node="top-file"),
    ex("block-commit", job_id="c0", device="top", top_node="mid", base_node="mid"),
    ex("block-commit", job_id="c0", device="top", base="/nosuch"),
    ex("block-commit", job_id="c0", device="top", backing_file="x"),
    ex("block-commit", job_id="c0", device="top", top_node="mid", filter_node_name="mid"),
    ex("block-commit", job_id="c0", device="top", top_node="mid", filter_node_name="1bad"),
    ex("block-commit", device="top", top_node="mid"),
    ex("block-commit", job_id="c0", device="top", top_node="mid", speed=-1),
    Q,
    ex("block-commit", job_id="c0", device="top", top_node="mid", base_node="base", speed=SPEED),
    SETTLE,
    QBJ, QJ, G, Q,
    reopen("top", "jtop.qcow2", "mid"),
    reopen("top", "jtop.qcow2", None),
    reopen("top", "jtop.qcow2", "base"),
    reopen("mid", "jmid.qcow2", None),
    reopen("mid", "jmid.qcow2", "base"),
    reopen("base", "jbase.qcow2", None, read_only=True),
    dele("top"), dele("mid"), dele("base"),
    ex("block-commit", job_id="c1", device="top", top_node="mid"),
    ex("job-pause", id="c0"), QJ,
    ex("job-complete", id="c0"),
    ex("job-resume", id="c0"),
    ex("job-complete", id="c0"),
    ex("job-finalize", id="c0"),
    ex("job-dismiss", id="c0"),
    *finish("c0"),
    QBJ, G, Q,
    *reads("top"),
    read("base", "0x22", "1M", "1M"),
    dele("mid"), Q,
])

scenario("job-commit-active", "active commit of top into base: ready, complete (§7.4)", [
    *CHAIN,
    ex("block-commit", job_id="a0", device="top", base_node="base", backing_file="x"),
    ex("block-commit", job_id="a0", device="top", base_node="base", filter_node_name="cfilt"),
    {"wait_event": "BLOCK_JOB_READY", "data": {"device": "a0"}},
    QBJ, QJ, G, Q,
    reopen("top", "jtop.qcow2", None),
    dele("top"), dele("base"),
    ex("job-pause", id="a0"), QJ,
    ex("job-complete", id="a0"),
    QJ,
    ex("job-resume", id="a0"),
    wait("a0", "null"),
    QBJ, G, Q,
    *reads("base"),
    *reads("top"),
])

scenario("job-commit-active-cancel", "active commit cancelled at ready: without force it completes without pivot, job-cancel aborts", [
    *CHAIN,
    ex("block-commit", job_id="a0", device="top", base_node="base"),
    {"wait_event": "BLOCK_JOB_READY", "data": {"device": "a0"}},
    ex("block-job-cancel", device="a0"),
    wait("a0", "null"),
    QBJ, G, Q,
    ex("block-commit", job_id="a1", device="top", base_node="base"),
    {"wait_event": "BLOCK_JOB_READY", "data": {"device": "a1"}},
    ex("job-cancel", id="a1"),
    wait("a1", "null"),
    ex("block-commit", job_id="a2", device="top", base_node="base"),
    {"wait_event": "BLOCK_JOB_READY", "data": {"device": "a2"}},
    ex("block-job-cancel", device="a2", force=True),
    wait("a2", "null"),
    QBJ, G, Q,
    *reads("top"),
])

scenario("job-manual-finalize", "auto-finalize/auto-dismiss false: pending, finalize, concluded, dismiss (§7.4)", [
    *CHAIN,
    ex("block-stream", job_id="s0", device="top", speed=SPEED, auto_finalize=False,
       auto_dismiss=False),
    SETTLE,
    ex("job-pause", id="s0"),
    ex("job-pause", id="s0"),
    QBJ,
    ex("job-finalize", id="s0"),
    ex("job-dismiss", id="s0"),
    ex("job-resume", id="s0"),
    ex("job-resume", id="s0"),
    ex("block-job-complete", device="s0"),
    *[ex("block-job-set-speed", device="s0", speed=0)],
    {"wait_event": "BLOCK_JOB_PENDING", "data": {"id": "s0"}},
    QBJ, QJ, G,
    dele("top"), dele("mid"),
    reopen("top", "jtop.qcow2", None),
    ex("job-pause", id="s0"),
    ex("job-dismiss", id="s0"),
    ex("block-job-finalize", id="s0"),
    QBJ, QJ, G,
    ex("job-cancel", id="s0"),
    ex("job-finalize", id="s0"),
    ex("block-job-dismiss", id="s0"),
    QBJ, QJ,
    *reads("top"),
    ex("job-pause", id="nosuch"), ex("job-resume", id="nosuch"), ex("job-cancel", id="nosuch"),
    ex("job-complete", id="nosuch"), ex("job-finalize", id="nosuch"),
    ex("job-dismiss", id="nosuch"),
    ex("block-job-pause", device="nosuch"), ex("block-job-resume", device="nosuch"),
    ex("block-job-cancel", device="nosuch"), ex("block-job-complete", device="nosuch"),
    ex("block-job-set-speed", device="nosuch", speed=0),
    ex("block-job-finalize", id="nosuch"), ex("block-job-dismiss", id="nosuch"),
])

scenario("job-cancel", "cancel while running, paused and pending (§7.4)", [
    *CHAIN,
    ex("block-stream", job_id="s0", device="top", speed=SPEED),
    SETTLE,
    ex("job-cancel", id="s0"),
    wait("s0", "null"),
    QBJ, G,
    ex("block-commit", job_id="c0", device="top", top_node="mid", speed=SPEED),
    SETTLE,
    ex("block-job-pause", device="c0"),
    QBJ,
    ex("block-job-cancel", device="c0"),
    ex("job-cancel", id="c0"),
    wait("c0", "null"),
    QBJ, G,
    ex("block-stream", job_id="s1", device="top", speed=SPEED, auto_finalize=False),
    ex("block-job-set-speed", device="s1", speed=0),
    {"wait_event": "BLOCK_JOB_PENDING", "data": {"id": "s1"}},
    ex("job-cancel", id="s1"),
    wait("s1", "null"),
    QBJ, G, Q,
    *reads("top"),
])


scenario("job-commit-active-speed", "active commit with a speed limit: the first slice, then ready (§7.4)", [
    *CHAIN,
    ex("block-commit", job_id="a0", device="top", base_node="base", speed=SPEED),
    SETTLE,
    QBJ, QJ,
    ex("block-job-complete", device="a0"),
    ex("block-job-set-speed", device="a0", speed=SPEED * 16),
    SETTLE,
    QBJ,
    ex("block-job-set-speed", device="a0", speed=0),
    {"wait_event": "BLOCK_JOB_READY", "data": {"device": "a0"}},
    QBJ,
    ex("block-job-set-speed", device="a0", speed=SPEED),
    ex("block-job-complete", device="a0"),
    wait("a0", "null"),
    QBJ, G,
    *reads("base"),
])

scenario("job-quit", "quit while a job runs: QEMU cancels it on the way out", [
    *CHAIN,
    ex("block-stream", job_id="s0", device="top", speed=SPEED),
    SETTLE,
    QBJ,
    ex("quit"),
    {"sleep": 0.3},
])

scenario("job-header-after", "stream rewrites the image header's backing file: a later open sees it", [
    ex("blockdev-add", driver="qcow2", node_name="top",
       file={"driver": "file", "filename": "$DIR/jtop.qcow2"}),
    ex("block-stream", job_id="s0", device="top", base_node="$NODE[qcow2:$DIR/jbase.qcow2]",
       backing_file="jbase.qcow2"),
    wait("s0", "null"),
    Q,
    dele("top"),
    ex("blockdev-add", driver="qcow2", node_name="top2",
       file={"driver": "file", "filename": "$DIR/jtop.qcow2"}),
    Q, G,
    ex("blockdev-add", driver="qcow2", node_name="m",
       file={"driver": "file", "filename": "$DIR/jmid.qcow2"}),
    ex("block-commit", job_id="c0", device="top2", top_node="$NODE[qcow2:$DIR/jbase.qcow2]"),
    ex("block-stream", job_id="s1", device="top2"),
    wait("s1", "null"),
    dele("top2"),
    ex("blockdev-add", driver="qcow2", node_name="top3",
       file={"driver": "file", "filename": "$DIR/jtop.qcow2"}),
    Q,
    {"hmp": 'qemu-io top3 "read -q -P 0x22 1M 1M"'},
], setup=SETUP[:5])

SETUP2 = SETUP + [
    "qemu-img create -q -f qcow2 $DIR/kbase.qcow2 4M",
    "qemu-io -c 'write -P 0x44 0 1M' $DIR/kbase.qcow2",
    "qemu-img create -q -f qcow2 -b $DIR/kbase.qcow2 -F qcow2 $DIR/ktop.qcow2",
    "qemu-io -c 'write -P 0x55 2M 1M' $DIR/ktop.qcow2",
]

scenario("job-stream-mid", "stream into a middle node with a named filter: read-only and frozen links (§5.5)", [
    *CHAIN,
    ex("block-stream", job_id="s0", device="mid", filter_node_name="cor", speed=SPEED),
    SETTLE,
    QBJ, G, Q,
    ex("job-pause", id="s0"),
    reopen("mid", "jmid.qcow2", "base", read_only=True),
    reopen("mid", "jmid.qcow2", None),
    dele("mid"), dele("base"), dele("top"), dele("cor"),
    ex("block-job-complete", device="s0"),
    ex("block-job-set-speed", device="s0", speed=SPEED * 4),
    QBJ,
    reopen("top", "jtop.qcow2", None),
    G,
    ex("job-resume", id="s0"),
    *finish("s0"),
    G, Q,
    *reads("mid"),
    read("top", "0x33", "3M", "512k"),
    read("top", "0", "0", "1M"),
])

scenario("job-commit-ro-base", "commit on an auto-opened (read-only) chain with backing-file; base goes read-write during the job", [
    ex("blockdev-add", driver="qcow2", node_name="top",
       file={"driver": "file", "filename": "$DIR/jtop.qcow2"}),
    ex("block-commit", job_id="c0", device="top", top_node="$NODE[qcow2:$DIR/jmid.qcow2]",
       base_node="$NODE[qcow2:$DIR/jbase.qcow2]", speed=SPEED, backing_file="jbase.qcow2"),
    SETTLE,
    QBJ, G, Q,
    *finish("c0"),
    G, Q,
    *reads("top"),
])

scenario("job-two-chains", "two jobs on separate chains: drains touch only the job on the reopened chain", [
    *CHAIN,
    add("kbase", "kbase.qcow2", None), add("ktop", "ktop.qcow2", "kbase"),
    ex("block-stream", job_id="s0", device="top", speed=SPEED),
    SETTLE,
    ex("block-commit", job_id="a0", device="ktop", speed=SPEED),
    SETTLE,
    QBJ, QJ, G,
    reopen("kbase", "kbase.qcow2", None),
    SETTLE,
    QBJ,
    reopen("base", "jbase.qcow2", None),
    SETTLE,
    QBJ,
    ex("block-job-set-speed", device="a0", speed=0),
    ex("job-complete", id="a0"),
    wait("a0", "null"),
    *finish("s0"),
    QBJ, G, Q,
    *reads("top"),
    read("kbase", "0x44", "0", "1M"), read("kbase", "0x55", "2M", "1M"),
], setup=SETUP2)


def err_chain(rule: dict[str, Json]) -> list[dict[str, Json]]:
    return [add("base", "jbase.qcow2", None),
            {"execute": "blockdev-add", "arguments": {
                "driver": "qcow2", "node-name": "mid", "backing": "base",
                "file": {"driver": "blkdebug", "node-name": "mid-dbg", "inject-error": [rule],
                         "image": {"driver": "file", "node-name": "mid-file",
                                   "filename": "$DIR/jmid.qcow2"}}}},
            add("top", "jtop.qcow2", "mid")]


for policy in ("report", "ignore", "stop", "enospc", "auto"):
    once = policy == "stop"
    rule: dict[str, Json] = {"event": "read_aio", "errno": 5}
    if once:
        rule["once"] = True
    steps = [*err_chain(rule),
             ex("block-stream", job_id="s0", device="top", on_error=policy)]
    if policy == "stop":
        steps += [{"wait_event": "BLOCK_JOB_ERROR", "data": {"device": "s0"}},
                  QBJ, QJ,
                  ex("job-resume", id="s0")]
    steps += [wait("s0", "null"), QBJ, G, *reads("top")]
    scenario(f"job-error-{policy}", f"stream with an I/O error from blkdebug, on-error {policy}",
             steps)


DEFAULT_OUT = os.path.join(os.path.dirname(__file__), "..", "data", "recorded", "scenarios")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--outdir", default=DEFAULT_OUT)
    ap.add_argument("names", nargs="*")
    args = ap.parse_args(argv)
    for sc in SCENARIOS:
        if args.names and sc["name"] not in args.names:
            continue
        outdir = args.outdir
        with open(os.path.join(outdir, sc["name"] + ".json"), "w") as f:
            json.dump(sc, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
