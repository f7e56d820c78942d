"""Writes the drive-job scenarios tests/data/recorded/scenarios/dj-*.json.

``drive-mirror`` and ``drive-backup`` make their target image from a file
name (blockdev.c ``qmp_drive_mirror``, ``drive_backup_prepare``); every
release qmpd answers as still has them (5.2 and 7.2; 10.0 dropped
drive-backup's deprecation but kept both).  These scenarios cover what a
client of them sees: the target image created with or without a backing
file (``sync`` full/top/none, ``mode`` absolute-paths/existing, ``format``,
``node-name``), the data mirrored or backed up (qemu-io reads of the new
node), the backing chain the mirror gives the target when it completes,
drive-backup as a transaction action, and the argument checks in the
order QEMU makes them (device lookup, root node, ``replaces`` without
``node-name``, a target in a missing folder, an unknown format, a
granularity or buffer size out of range, a running job on the device).

Jobs run without a speed limit on 1-3 MiB images; the steps wait for the
job's events, so the recordings do not depend on timing.  Not a test: run
it, then record the scenarios on each release twice
(tests/tools/record_corpus.py) and keep the stable ones.

    python3 tests/tools/make_drive_job_scenarios.py [--outdir DIR]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_f21_scenarios import ex, hmp, wait_ev, write_all  # noqa: E402  (a sibling script)

Json = Any
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "data", "recorded", "scenarios")

QN = {"execute": "query-named-block-nodes"}
QNF = {"execute": "query-named-block-nodes", "arguments": {"flat": True}}
G = {"execute": "x-debug-query-block-graph"}
QB = {"execute": "query-block"}
QBJ = {"execute": "query-block-jobs"}
QJ = {"execute": "query-jobs"}
SETTLE = {"sleep": 0.2}

SCENARIOS: list[dict[str, Json]] = []



def scenario(name: str, description: str, setup: list[str],
             steps: list[dict[str, Json]]) -> None:
    SCENARIOS.append({"name": name, "description": description,
                      "source": "hand-written (tests/tools/make_drive_job_scenarios.py)",
                      "setup": setup, "steps": steps})


# base (2M: 0xb0 at 0) <- top (0xb1 at 1M), and a spare image for mode=existing
CHAIN_SETUP = [
    "qemu-img create -q -f qcow2 $DIR/base.qcow2 2M",
    "qemu-img create -q -f qcow2 -b $DIR/base.qcow2 -F qcow2 $DIR/top.qcow2",
    "qemu-io -f qcow2 -c 'write -P 0xb0 0 1M' $DIR/base.qcow2",
    "qemu-io -f qcow2 -c 'write -P 0xb1 1M 512k' $DIR/top.qcow2",
    "qemu-img create -q -f qcow2 $DIR/spare.qcow2 2M",
    "qemu-img create -q -f raw $DIR/spare.raw 2M",
]


def qcow2(name: str, fname: str, **extra: Json) -> dict[str, Json]:
    return {"driver": "qcow2", "node-name": name,
            "file": {"driver": "file", "node-name": f"{name}-file",
                     "filename": f"$DIR/{fname}"}, **extra}


def add(opts: dict[str, Json]) -> dict[str, Json]:
    return {"execute": "blockdev-add", "arguments": copy.deepcopy(opts)}


TOP = qcow2("top", "top.qcow2")   # opens base from its header
READS = ["read -q -P 0xb0 0 1M", "read -q -P 0xb1 1M 512k", "read -q -P 0 1536k 512k"]


def reads(node: str) -> list[dict[str, Json]]:
    return [hmp(node, r) for r in READS]


def mirror_to_ready(job: str, **args: Json) -> list[dict[str, Json]]:
    return [ex("drive-mirror", job_id=job, **args),
            wait_ev("BLOCK_JOB_READY", device=job), QBJ, QJ]


def complete(job: str) -> list[dict[str, Json]]:
    return [ex("block-job-complete", device=job),
            wait_ev("JOB_STATUS_CHANGE", id=job, status="null"), QBJ]


def mirror_full() -> None:
    scenario("dj-mirror-full", "drive-mirror sync=full into a new image, completed and pivoted",
             CHAIN_SETUP, [
                 add(TOP), QNF,
                 *mirror_to_ready("m0", device="top", target="$DIR/new.qcow2", sync="full",
                                  node_name="new"),
                 QN, G, *complete("m0"),
                 QNF, QB, G, *reads("new"),
                 ex("blockdev-del", node_name="new"),
                 ex("blockdev-del", node_name="top"),
                 # the new image has no backing file: opening it alone reads all data
                 add(qcow2("again", "new.qcow2")), QNF, *reads("again"),
             ])


def mirror_top() -> None:
    scenario("dj-mirror-top", "drive-mirror sync=top: the new image's backing file is the "
             "source's backing image; at completion the target takes the source's backing node",
             CHAIN_SETUP, [
                 add(TOP),
                 *mirror_to_ready("m1", device="top", target="$DIR/new.qcow2", sync="top"),
                 QN, *complete("m1"),
                 QNF, G, QB,
                 ex("blockdev-del", node_name="top"),
                 QNF,
             ])


def mirror_none_and_cancel() -> None:
    scenario("dj-mirror-none-cancel", "drive-mirror sync=none (backing file is the source), "
             "cancelled when ready; mode=existing onto raw and qcow2 images",
             CHAIN_SETUP, [
                 add(TOP),
                 *mirror_to_ready("m2", device="top", target="$DIR/none.qcow2", sync="none",
                                  node_name="none"),
                 QN,
                 ex("block-job-cancel", device="m2"),
                 wait_ev("JOB_STATUS_CHANGE", id="m2", status="null"),
                 QNF, G,
                 *mirror_to_ready("m3", device="top", target="$DIR/spare.raw", sync="full",
                                  mode="existing", format="raw", node_name="sraw"),
                 QN, *complete("m3"), QNF, *reads("sraw"),
                 *mirror_to_ready("m4", device="top", target="$DIR/spare.qcow2", sync="full",
                                  mode="existing", node_name="sq"),
                 ex("block-job-cancel", device="m4", force=True),
                 wait_ev("JOB_STATUS_CHANGE", id="m4", status="null"),
                 QNF, G,
             ])


def mirror_errors() -> None:
    scenario("dj-mirror-errors", "drive-mirror's argument checks, each in QEMU's order",
             CHAIN_SETUP, [
                 add(TOP),
                 add({"driver": "raw", "node-name": "rawtop",
                      "file": {"driver": "file", "filename": "$DIR/spare.raw"}}),
                 ex("drive-mirror", device="nosuch", target="$DIR/x.qcow2", sync="full"),
                 ex("drive-mirror", device="top-file", target="$DIR/x.qcow2", sync="full"),
                 ex("drive-mirror", device="base", target="$DIR/x.qcow2", sync="full"),
                 ex("drive-mirror", device="top", target="$DIR/x.qcow2", sync="full",
                    replaces="top"),
                 ex("drive-mirror", device="top", target="$DIR/nodir/x.qcow2", sync="full"),
                 ex("drive-mirror", device="top", target="$DIR/x.img", sync="full",
                    format="nosuchfmt"),
                 ex("drive-mirror", device="top", target="$DIR/x.qcow2", sync="full",
                    granularity=1000),
                 ex("drive-mirror", device="top", target="$DIR/x2.qcow2", sync="full",
                    buf_size=-1),
                 ex("drive-mirror", device="top", target="$DIR/x3.qcow2", sync="full",
                    node_name="top"),
                 ex("drive-mirror", device="top", target="$DIR/x4.qcow2", sync="incremental"),
                 ex("drive-mirror", device="top", target="$DIR/missing.qcow2", sync="full",
                    mode="existing"),
                 ex("drive-mirror", device="top", target="$DIR/x5.qcow2", sync="full",
                    replaces="nosuch", node_name="x5"),
                 ex("drive-mirror", job_id="top-file", device="top", target="$DIR/x6.qcow2",
                    sync="full", speed=-5),
                 ex("drive-mirror", job_id="m", device="top", target="$DIR/x7.qcow2",
                    sync="full", speed=65536),
                 SETTLE,
                 ex("drive-mirror", job_id="m", device="rawtop", target="$DIR/x8.qcow2",
                    sync="full"),
                 ex("drive-mirror", job_id="m9", device="top", target="$DIR/x9.qcow2",
                    sync="full"),
                 QBJ, QNF,
                 ex("block-job-cancel", device="m", force=True),
                 wait_ev("JOB_STATUS_CHANGE", id="m", status="null"),
                 QNF,
             ])


def backup_modes() -> None:
    scenario("dj-backup-modes", "drive-backup sync=full/top/none into new images and "
             "mode=existing; the targets read back",
             CHAIN_SETUP, [
                 add(TOP),
                 ex("drive-backup", job_id="b0", device="top", target="$DIR/full.qcow2",
                    sync="full"),
                 wait_ev("JOB_STATUS_CHANGE", id="b0", status="null"),
                 QNF,
                 add(qcow2("full", "full.qcow2")), *reads("full"),
                 ex("drive-backup", job_id="b1", device="top", target="$DIR/t.qcow2",
                    sync="top"),
                 wait_ev("JOB_STATUS_CHANGE", id="b1", status="null"),
                 add(qcow2("t", "t.qcow2")), QNF, *reads("t"),
                 ex("drive-backup", job_id="b2", device="top", target="$DIR/spare.raw",
                    sync="full", mode="existing", format="raw"),
                 wait_ev("JOB_STATUS_CHANGE", id="b2", status="null"),
                 add({"driver": "raw", "node-name": "sr",
                      "file": {"driver": "file", "filename": "$DIR/spare.raw"}}),
                 *reads("sr"),
                 ex("drive-backup", job_id="b3", device="top", target="$DIR/n.qcow2",
                    sync="none", auto_finalize=False, auto_dismiss=False),
                 wait_ev("JOB_STATUS_CHANGE", id="b3", status="running"),
                 QN, G, QBJ, QJ,
                 ex("block-job-cancel", device="b3"),
                 wait_ev("JOB_STATUS_CHANGE", id="b3", status="concluded"),
                 QJ,
                 ex("job-dismiss", id="b3"),
                 QNF, G,
             ])


def backup_errors_and_tx() -> None:
    # QEMU 5.2's drive_backup_prepare drains the device before its checks and
    # ends the drain only once the job exists: every refusal after the device
    # lookup leaves the node drained, and the next write to it hangs.  So the
    # refusals go to a node ("err") that nothing writes to afterwards.
    scenario("dj-backup-errors", "drive-backup's checks, with bitmaps, and as a transaction "
             "action (with a failing sibling); a backup of a non-root node",
             CHAIN_SETUP, [
                 add(TOP), add(qcow2("err", "spare.qcow2")),
                 ex("drive-backup", device="nosuch", target="$DIR/x.qcow2", sync="full"),
                 ex("drive-backup", job_id="bb", device="base", target="$DIR/b.qcow2",
                    sync="full"),
                 ex("block-dirty-bitmap-add", node="err", name="be"),
                 ex("drive-backup", device="err", target="$DIR/nodir/x.qcow2", sync="full"),
                 ex("drive-backup", device="err", target="$DIR/x.img", sync="full",
                    format="nosuchfmt"),
                 ex("drive-backup", device="err", target="$DIR/x.qcow2", sync="bitmap"),
                 ex("drive-backup", device="err", target="$DIR/x.qcow2", sync="incremental",
                    bitmap="nosuch"),
                 ex("drive-backup", device="err", target="$DIR/x.qcow2", sync="full",
                    bitmap="be", bitmap_mode="never"),
                 ex("drive-backup", device="err", target="$DIR/missing.qcow2", sync="full",
                    mode="existing"),
                 ex("drive-backup", job_id="bs", device="err", target="$DIR/s.qcow2",
                    sync="full", speed=-1),
                 ex("drive-backup", job_id="bb", device="err", target="$DIR/s.qcow2",
                    sync="full", granularity=4096),
                 ex("block-dirty-bitmap-add", node="top", name="bm0"),
                 hmp("top", "write -P 0xc0 0 64k"),
                 ex("drive-backup", job_id="bi", device="top", target="$DIR/inc.qcow2",
                    sync="incremental", bitmap="bm0"),
                 wait_ev("JOB_STATUS_CHANGE", id="bi", status="null"),
                 QN,
                 ex("transaction", actions=[
                     {"type": "drive-backup",
                      "data": {"job-id": "t1", "device": "top", "target": "$DIR/t1.qcow2",
                               "sync": "full"}},
                     {"type": "drive-backup",
                      "data": {"job-id": "t2", "device": "nosuch", "target": "$DIR/t2.qcow2",
                               "sync": "full"}}]),
                 QBJ,
                 ex("transaction", actions=[
                     {"type": "block-dirty-bitmap-add",
                      "data": {"node": "top", "name": "bm1"}},
                     {"type": "drive-backup",
                      "data": {"job-id": "t3", "device": "top", "target": "$DIR/t3.qcow2",
                               "sync": "full"}}]),
                 wait_ev("JOB_STATUS_CHANGE", id="t3", status="null"),
                 QN,
                 hmp("top", "write -P 0xc1 64k 64k"),
                 # drive-backup finds any node, a root or not (bdrv_lookup_bs)
                 ex("drive-backup", job_id="bf", device="top-file", target="$DIR/f.raw",
                    sync="full", format="raw"),
                 wait_ev("JOB_STATUS_CHANGE", id="bf", status="null"),
                 QNF,
             ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outdir", default=OUT)
    args = ap.parse_args()
    for make in (mirror_full, mirror_top, mirror_none_and_cancel, mirror_errors,
                 backup_modes, backup_errors_and_tx):
        make()
    write_all(SCENARIOS, args.outdir)


if __name__ == "__main__":
    main()
