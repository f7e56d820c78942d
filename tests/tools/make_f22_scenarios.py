"""Writes the issue-22 scenarios tests/data/recorded/scenarios/f22-*.json.

Behaviour QEMU's iotests rely on (124, 056, 041) that the corpus had not
covered: the ``on-source-error`` / ``on-target-error`` policies of backup
and mirror jobs and an active commit's ``on-error`` (stop, ignore, report)
with the BLOCK_JOB_ERROR events and the pause they cause; transactions with ``completion-mode: grouped`` (the jobs wait for
each other, one failing or cancelled cancels the others, manual finalize
of the group); and blkdebug's ``flush_to_disk`` event, fired by a flush
only after new writes.

Not a test: run it, then record the scenarios on QEMU 7.2 twice
(tests/tools/record_corpus.py).

    python3 tests/tools/make_f22_scenarios.py [--outdir DIR]
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
    wait_ev,
    write_all,
)

Json = Any
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "data", "recorded", "scenarios")
SPEED = 65536
QJ = {"execute": "query-jobs"}
QBJ = {"execute": "query-block-jobs"}
QNF = {"execute": "query-named-block-nodes", "arguments": {"flat": True}}

SCENARIOS: list[dict[str, Json]] = []



def scenario(name: str, description: str, setup: list[str], steps: list[dict[str, Json]]) -> None:
    SCENARIOS.append({"name": name, "description": description,
                      "source": "hand-written (tests/tools/make_f22_scenarios.py)",
                      "setup": setup, "steps": steps})


# Sources of 1 MiB, all data (one block-copy task of up to 1 MiB), targets empty.
SETUP = [
    "qemu-img create -q -f qcow2 $DIR/a.qcow2 1M",
    "qemu-io -f qcow2 -c 'write -P 0x11 0 1M' $DIR/a.qcow2",
    "qemu-img create -q -f qcow2 $DIR/b.qcow2 1M",
    "qemu-io -f qcow2 -c 'write -P 0x22 0 1M' $DIR/b.qcow2",
    "qemu-img create -q -f qcow2 $DIR/big.qcow2 4M",
    "qemu-io -f qcow2 -c 'write -P 0x33 0 4M' $DIR/big.qcow2",
    "qemu-img create -q -f qcow2 $DIR/ta.qcow2 1M",
    "qemu-img create -q -f qcow2 $DIR/tb.qcow2 1M",
    "qemu-img create -q -f qcow2 $DIR/tbig.qcow2 4M",
]


def plain(name: str, image: str) -> dict[str, Json]:
    return ex("blockdev-add", driver="qcow2", node_name=name,
              file={"driver": "file", "filename": f"$DIR/{image}", "node-name": name + "-file"})


def debug(name: str, image: str, *rules: dict[str, Json],
          states: list[dict[str, Json]] | None = None) -> dict[str, Json]:
    dbg: dict[str, Json] = {"driver": "blkdebug", "node-name": name + "-dbg",
                            "inject-error": list(rules),
                            "image": {"driver": "file", "filename": f"$DIR/{image}",
                                      "node-name": name + "-file"}}
    if states:
        dbg["set-state"] = states
    return ex("blockdev-add", driver="qcow2", node_name=name, file=dbg)


READ_ONCE = {"event": "read_aio", "errno": 5, "once": True}
WRITE_ONCE = {"event": "write_aio", "errno": 5, "once": True}


def backup_errors() -> None:
    for policy in ("stop", "ignore", "report", "enospc"):
        steps = [debug("a", "a.qcow2", READ_ONCE), plain("ta", "ta.qcow2"),
                 ex("blockdev-backup", job_id="j", device="a", target="ta", sync="full",
                    on_source_error=policy, auto_dismiss=False),
                 wait_ev("BLOCK_JOB_ERROR", device="j")]
        if policy == "stop":
            steps += [wait("j", "paused"), QJ, QBJ,
                      ex("block-job-resume", device="j")]
        steps += [wait("j", "concluded"), QJ, ex("job-dismiss", id="j"),
                  hmp("ta", "read -q -P 0x11 0 1M"), QNF]
        scenario(f"f22-backup-source-error-{policy}",
                 f"backup with on-source-error={policy}: a read error from blkdebug once",
                 SETUP, steps)
    for policy in ("stop", "ignore", "report"):
        steps = [plain("a", "a.qcow2"), debug("ta", "ta.qcow2", WRITE_ONCE),
                 ex("blockdev-backup", job_id="j", device="a", target="ta", sync="full",
                    on_target_error=policy, on_source_error="stop", auto_dismiss=False),
                 wait_ev("BLOCK_JOB_ERROR", device="j")]
        if policy == "stop":
            steps += [wait("j", "paused"), QBJ,
                      ex("job-resume", id="j")]
        steps += [wait("j", "concluded"), QJ, ex("job-dismiss", id="j"), QNF]
        scenario(f"f22-backup-target-error-{policy}",
                 f"backup with on-target-error={policy}: a write error from blkdebug once",
                 SETUP, steps)


def mirror_errors() -> None:
    for policy in ("stop", "ignore", "report"):
        steps = [debug("a", "a.qcow2", READ_ONCE), plain("ta", "ta.qcow2"),
                 ex("blockdev-mirror", job_id="m", device="a", target="ta", sync="full",
                    on_source_error=policy),
                 wait_ev("BLOCK_JOB_ERROR", device="m")]
        if policy == "stop":
            steps += [wait("m", "paused"), QBJ, ex("block-job-resume", device="m")]
        if policy != "report":
            steps += [wait_ev("BLOCK_JOB_READY", device="m"), QBJ,
                      ex("block-job-complete", device="m")]
        steps += [wait("m", "null"), QJ, QNF]
        scenario(f"f22-mirror-source-error-{policy}",
                 f"mirror with on-source-error={policy}: a read error from blkdebug once",
                 SETUP, steps)
    for policy in ("stop", "ignore"):
        steps = [plain("a", "a.qcow2"), debug("ta", "ta.qcow2", WRITE_ONCE),
                 ex("blockdev-mirror", job_id="m", device="a", target="ta", sync="full",
                    on_target_error=policy),
                 wait_ev("BLOCK_JOB_ERROR", device="m")]
        if policy == "stop":
            steps += [wait("m", "paused"), QBJ, ex("job-resume", id="m")]
        steps += [wait_ev("BLOCK_JOB_READY", device="m"), ex("job-cancel", id="m"),
                  wait("m", "null"), QJ]
        scenario(f"f22-mirror-target-error-{policy}",
                 f"mirror with on-target-error={policy}: a write error from blkdebug once",
                 SETUP, steps)
    # active commit: on-error is the policy of both sides
    commit_setup = SETUP + ["qemu-img create -q -f qcow2 -b $DIR/a.qcow2 -F qcow2 $DIR/ov.qcow2",
                            "qemu-io -f qcow2 -c 'write -P 0x55 0 512k' $DIR/ov.qcow2"]
    for policy in ("stop", "ignore", "report"):
        steps = [plain("a", "a.qcow2"),
                 ex("blockdev-add", driver="qcow2", node_name="ov", backing="a",
                    file={"driver": "blkdebug", "node-name": "ov-dbg",
                          "inject-error": [READ_ONCE],
                          "image": {"driver": "file", "filename": "$DIR/ov.qcow2"}}),
                 ex("block-commit", job_id="c", device="ov", on_error=policy),
                 wait_ev("BLOCK_JOB_ERROR", device="c")]
        if policy == "stop":
            steps += [wait("c", "paused"), QBJ, ex("block-job-resume", device="c")]
        if policy != "report":
            steps += [wait_ev("BLOCK_JOB_READY", device="c"),
                      ex("block-job-complete", device="c")]
        steps += [wait("c", "null"), QJ]
        scenario(f"f22-commit-active-error-{policy}",
                 f"active commit with on-error={policy}: a read error from blkdebug once",
                 commit_setup, steps)


def backup_action(job: str, device: str, target: str, **extra: Json) -> dict[str, Json]:
    data = {"job-id": job, "device": device, "target": target, "sync": "full"}
    data.update({k.replace("_", "-"): v for k, v in extra.items()})
    return {"type": "blockdev-backup", "data": data}


GROUPED = {"completion-mode": "grouped"}


def grouped() -> None:
    scenario("f22-txn-grouped-ok", "two backups in a grouped transaction, both succeed", SETUP, [
        plain("a", "a.qcow2"), plain("b", "b.qcow2"), plain("ta", "ta.qcow2"),
        plain("tb", "tb.qcow2"),
        ex("transaction", actions=[backup_action("ja", "a", "ta"), backup_action("jb", "b", "tb")],
           properties=GROUPED),
        wait("ja", "null"), QJ,
    ])
    scenario("f22-txn-grouped-fail", "grouped backups: the second fails, the first is cancelled",
             SETUP, [
                 plain("a", "a.qcow2"), debug("b", "b.qcow2", READ_ONCE), plain("ta", "ta.qcow2"),
                 plain("tb", "tb.qcow2"),
                 ex("transaction", actions=[backup_action("ja", "a", "ta"),
                                            backup_action("jb", "b", "tb")],
                    properties=GROUPED),
                 wait("ja", "null"), QJ,
                 # the same again, now that the error was injected once
                 ex("transaction", actions=[backup_action("ja", "a", "ta"),
                                            backup_action("jb", "b", "tb")],
                    properties=GROUPED),
                 wait("ja", "null"), QJ,
             ])
    scenario("f22-txn-grouped-fail-first", "grouped backups: the first fails, the second is cancelled",
             SETUP, [
                 debug("a", "a.qcow2", READ_ONCE), plain("b", "b.qcow2"), plain("ta", "ta.qcow2"),
                 plain("tb", "tb.qcow2"),
                 ex("transaction", actions=[backup_action("ja", "a", "ta", auto_dismiss=False),
                                            backup_action("jb", "b", "tb", auto_dismiss=False)],
                    properties=GROUPED),
                 wait("ja", "concluded"), QJ,
                 ex("job-dismiss", id="ja"), ex("job-dismiss", id="jb"), QJ,
             ])
    scenario("f22-txn-grouped-fail-running",
             "grouped backups: one fails while the other is held by its speed, which is cancelled",
             SETUP, [
                 plain("big", "big.qcow2"), debug("b", "b.qcow2", READ_ONCE),
                 plain("tbig", "tbig.qcow2"), plain("tb", "tb.qcow2"),
                 ex("transaction", actions=[backup_action("jbig", "big", "tbig", speed=SPEED),
                                            backup_action("jb", "b", "tb")],
                    properties=GROUPED),
                 wait("jbig", "null"), QJ, QNF,
             ])
    scenario("f22-txn-grouped-cancel", "grouped backups: cancelling one cancels the other",
             SETUP, [
                 plain("big", "big.qcow2"), plain("a", "a.qcow2"),
                 plain("tbig", "tbig.qcow2"), plain("ta", "ta.qcow2"),
                 ex("transaction", actions=[backup_action("jbig", "big", "tbig", speed=SPEED),
                                            backup_action("ja", "a", "ta")],
                    properties=GROUPED),
                 wait("ja", "waiting"),
                 ex("block-job-cancel", device="jbig"),
                 wait("jbig", "null"), QJ,
             ])
    scenario("f22-txn-grouped-cancel-waiting",
             "grouped backups: force-cancelling the one that waits cancels the running one",
             SETUP, [
                 plain("big", "big.qcow2"), plain("a", "a.qcow2"),
                 plain("tbig", "tbig.qcow2"), plain("ta", "ta.qcow2"),
                 ex("transaction", actions=[backup_action("jbig", "big", "tbig", speed=SPEED),
                                            backup_action("ja", "a", "ta")],
                    properties=GROUPED),
                 wait("ja", "waiting"),
                 ex("job-cancel", id="ja"),
                 wait("jbig", "null"), QJ,
             ])
    scenario("f22-txn-grouped-finalize",
             "grouped backups without auto-finalize: pending together, one job-finalize ends both",
             SETUP, [
                 plain("a", "a.qcow2"), plain("b", "b.qcow2"), plain("ta", "ta.qcow2"),
                 plain("tb", "tb.qcow2"),
                 ex("transaction", actions=[backup_action("ja", "a", "ta", auto_finalize=False),
                                            backup_action("jb", "b", "tb", auto_finalize=False)],
                    properties=GROUPED),
                 wait("ja", "pending"), QJ,
                 ex("job-finalize", id="jb"),
                 wait("ja", "null"), QJ,
             ])
    scenario("f22-txn-grouped-finalize-mixed",
             "grouped backups, only one without auto-finalize: both wait for job-finalize",
             SETUP, [
                 plain("a", "a.qcow2"), plain("b", "b.qcow2"), plain("ta", "ta.qcow2"),
                 plain("tb", "tb.qcow2"),
                 ex("transaction", actions=[backup_action("ja", "a", "ta"),
                                            backup_action("jb", "b", "tb", auto_finalize=False)],
                    properties=GROUPED),
                 wait("jb", "pending"), QJ,
                 ex("job-finalize", id="ja"),
                 wait("ja", "null"), QJ,
             ])
    scenario("f22-txn-individual-fail",
             "backups in an individual transaction: one failing leaves the other alone",
             SETUP, [
                 plain("a", "a.qcow2"), debug("b", "b.qcow2", READ_ONCE), plain("ta", "ta.qcow2"),
                 plain("tb", "tb.qcow2"),
                 ex("transaction", actions=[backup_action("ja", "a", "ta"),
                                            backup_action("jb", "b", "tb")],
                    properties={"completion-mode": "individual"}),
                 {"sleep": 0.5}, QJ,
             ])


def flushes() -> None:
    # blkdebug's state moves on flush_to_disk, which a flush fires only
    # after writes (bdrv_co_flush's write_gen); reads fail in state 2.
    dbg = debug("a", "a.qcow2", {"event": "read_aio", "errno": 5, "state": 2},
                states=[{"event": "flush_to_disk", "state": 1, "new_state": 2}])
    scenario("f22-blkdebug-flush", "blkdebug flush_to_disk: only a flush after a write", SETUP, [
        dbg,
        hmp("a", "read -q -P 0x11 0 64k"),
        hmp("a", "flush"),
        hmp("a", "read -q -P 0x11 0 64k"),
        hmp("a", "write -q -P 0x44 0 64k"),
        hmp("a", "read -q -P 0x44 0 64k"),
        hmp("a", "flush"),
        hmp("a", "read -q -P 0x44 0 64k"),
        hmp("a", "flush"),
        hmp("a", "read -q 64k 64k"),
    ])
    flush_err = debug("a", "a.qcow2", {"event": "flush_to_disk", "errno": 5, "iotype": "flush"})
    scenario("f22-blkdebug-flush-error", "blkdebug: a flush that fails, then one after a write",
             SETUP, [
                 flush_err,
                 hmp("a", "flush"),
                 hmp("a", "write -q -P 0x44 0 64k"),
                 hmp("a", "flush"),
                 hmp("a", "flush"),
                 hmp("a", "read -q -P 0x44 0 64k"),
             ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outdir", default=OUT)
    args = ap.parse_args(argv)
    for family in (backup_errors, mirror_errors, grouped, flushes):
        family()
    write_all(SCENARIOS, args.outdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
