"""Writes the query-blockstats and legacy NBD export scenarios
tests/data/recorded/scenarios/bs-*.json and nbd-*.json.

``query-blockstats`` (block/qapi.c) in the shapes a client meets: no
BlockBackend at all, ``query-nodes`` over qcow2 chains, filters, quorum and
null nodes (each node's ``wr_highest_offset`` after qemu-io writes, the file
nodes' discard counters), devices (``-M pc -S``: the guest never runs, so
only HMP ``qemu-io -d`` accounts on their BlockBackends: ``aio_read``,
``aio_write``, ``aio_flush``, ``-i`` invalid requests; plain ``read`` and
``write`` do not), a mirror's implicit filter skipped, the entries after
``device_del`` and ``blockdev-del``.
Asynchronous requests run with ``-q``: QEMU prints their results when they
complete, into whichever later step flushes its stdout, and a failed one
prints even with ``-q`` -- so failed requests are left to the unit tests.
Timing members vary from run to run: the scenarios mask them
(``mask_keys``); that they are there (``idle_time_ns`` only after an access)
is still compared.

``nbd-server-add`` / ``nbd-server-remove`` (blockdev-nbd.c): the export name
and id, read-only downgrade, bitmaps, the errors in QEMU's order.

Not a test: run it, then record on each release twice
(tests/tools/record_corpus.py; ``-M pc`` needs SeaBIOS on the firmware path:
a QMPREPLAY_QEMU wrapper adding ``-L`` to a seabios folder) and keep the
stable ones.

    python3 tests/tools/make_blockstats_scenarios.py [--outdir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_f21_scenarios import ex, wait_ev, write_all  # noqa: E402  (a sibling script)

Json = Any
OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "data", "recorded", "scenarios")
SOURCE = "hand-written (tests/tools/make_blockstats_scenarios.py)"
# Real time passes between a request and its completion, and since the last one.
TIME_KEYS = ["idle_time_ns", "rd_total_time_ns", "wr_total_time_ns", "flush_total_time_ns",
             "unmap_total_time_ns", "zone_append_total_time_ns"]
# A machine with buses for devices whose guest never runs (-S): nothing but
# the monitor touches the disks.
PC = ["-M", "pc", "-S", "-nodefaults", "-accel", "tcg"]

BS = ex("query-blockstats")
BSN = ex("query-blockstats", query_nodes=True)
BSF = ex("query-blockstats", query_nodes=False)

CHAIN_SETUP = [
    "qemu-img create -q -f qcow2 $DIR/base.qcow2 4M",
    "qemu-io -c 'write -P 0x11 0 1M' $DIR/base.qcow2",
    "qemu-img create -q -f qcow2 -b $DIR/base.qcow2 -F qcow2 $DIR/top.qcow2",
    "qemu-img create -q -f raw $DIR/disk.img 2M",
    "qemu-img create -q -f qcow2 $DIR/target.qcow2 4M",
]


def io(dev: str, cmd: str, qdev: bool = True) -> dict[str, Json]:
    return {"hmp": f'qemu-io {"-d " if qdev else ""}{dev} "{cmd}"'}


def add_chain(top: str = "top", base: str = "base") -> list[dict[str, Json]]:
    return [
        ex("blockdev-add", driver="qcow2", node_name=base,
           file={"driver": "file", "filename": "$DIR/base.qcow2", "node-name": base + "-file"}),
        ex("blockdev-add", driver="qcow2", node_name=top, backing=base,
           file={"driver": "file", "filename": "$DIR/top.qcow2", "node-name": top + "-file"}),
    ]


SCENARIOS: list[dict[str, Json]] = []


def scenario(name: str, description: str, setup: list[str], steps: list[dict[str, Json]],
             **extra: Json) -> None:
    SCENARIOS.append({"name": name, "description": description, "source": SOURCE,
                      "setup": setup, "steps": steps, "mask_keys": TIME_KEYS, **extra})


scenario("bs-nodes", "query-blockstats without BlockBackends, and query-nodes over a qcow2 "
         "chain, a raw node, filters, quorum, null: wr_highest_offset after writes (the "
         "qcow2 node's guest offsets, the file's host offsets), argument errors", CHAIN_SETUP, [
    BS, BSN, BSF,
    *add_chain(),
    BS, BSN,
    ex("blockdev-add", driver="raw", node_name="disk",
       file={"driver": "file", "filename": "$DIR/disk.img", "node-name": "disk-file"}),
    ex("blockdev-add", driver="null-co", node_name="null0", size=1048576),
    ex("blockdev-add", driver="throttle", node_name="thr", throttle_group="tg0", file="null0"),
    ex("object-add", qom_type="throttle-group", id="tg0"),
    ex("blockdev-add", driver="throttle", node_name="thr", throttle_group="tg0", file="null0"),
    ex("blockdev-add", driver="null-co", node_name="q0", size=1048576),
    ex("blockdev-add", driver="null-co", node_name="q1", size=1048576),
    ex("blockdev-add", driver="quorum", node_name="quorum", vote_threshold=1,
       children=["q0", "q1"]),
    ex("blockdev-add", driver="copy-on-read", node_name="cor", file="disk"),
    BSN,
    io("top", "write -P 0x22 512k 64k", qdev=False),
    io("disk", "write -P 0x33 1M 4k", qdev=False),
    io("disk", "write -z 1536k 512", qdev=False),
    io("thr", "write 0 8k", qdev=False),
    io("quorum", "write 64k 4k", qdev=False),
    io("top", "aio_write -P 0x44 0 4k", qdev=False),
    io("top", "aio_flush", qdev=False),
    BSN, BS,
    ex("blockdev-add", driver="raw", node_name="disk-unmap", discard="unmap",
       file={"driver": "file", "filename": "$DIR/disk.img", "node-name": "du-file",
             "discard": "unmap", "locking": "off"}),
    io("disk-unmap", "discard 0 64k", qdev=False),
    io("disk-unmap", "discard 1M 4k", qdev=False),
    BSN,
    ex("blockdev-del", node_name="cor"),
    ex("blockdev-del", node_name="thr"),
    ex("blockdev-del", node_name="top"),
    BSN, BS,
    ex("query-blockstats", query_nodes="yes"),
    ex("query-blockstats", query_nodes=None),
    ex("query-blockstats", nodes=True),
    {"raw": '{"execute": "query-blockstats", "arguments": []}'},
])

scenario("bs-devices", "query-blockstats of devices (-M pc, guest stopped): scsi-hd and "
         "virtio-blk-pci BlockBackends (device name empty, qdev id or QOM path), what qemu-io "
         "-d accounts (aio_read/aio_write/aio_flush, -i, read/write do not), a chain below "
         "the device, device_del", CHAIN_SETUP, [
    *add_chain(),
    ex("blockdev-add", driver="null-co", node_name="null0", size=1048576),
    ex("blockdev-add", driver="null-co", node_name="null1", size=2097152),
    ex("device_add", driver="virtio-scsi-pci", id="scsi0"),
    ex("device_add", driver="scsi-hd", drive="top", id="sd0"),
    ex("device_add", driver="scsi-hd", drive="null0"),
    ex("device_add", driver="virtio-blk-pci", drive="null1", id="vblk0"),
    BS, BSN,
    io("sd0", "aio_write -q -P 0x55 0 64k"),
    io("sd0", "aio_write -q -P 0x55 1M 4k 4k"),
    io("sd0", "aio_flush"),
    io("sd0", "aio_read -q -P 0x55 0 64k"),
    io("sd0", "aio_read -q 1M 8k"),
    io("sd0", "aio_flush"),
    io("sd0", "read 0 4k"),
    io("sd0", "write 0 4k"),
    io("sd0", "flush"),
    BS,
    io("sd0", "aio_read -i 0 4k"),
    io("sd0", "aio_write -i 0 4k"),
    io("sd0", "aio_write -q -z 0 4k"),
    io("sd0", "aio_read 0 -1"),
    io("sd0", "aio_read -q 0 1x"),
    io("sd0", "aio_write -q 2M 4k"),
    io("sd0", "aio_flush"),
    BS,
    io("sd0", "aio_flush"),
    io("sd0", "aio_flush"),
    io("null0", "aio_write -q 0 4k", qdev=False),
    io("vblk0", "aio_write -q 0 4k"),
    BS,
    ex("device_del", id="sd0"),
    wait_ev("DEVICE_DELETED", device="sd0"),
    BS, BSN,
    ex("blockdev-del", node_name="top"),
    BSN,
])

scenario("bs-mirror", "query-blockstats of a device while a mirror runs: the implicit "
         "mirror_top filter is skipped at the BlockBackend level, listed by query-nodes; the "
         "target's wr_highest_offset grows with the job (jobs do not account)", CHAIN_SETUP, [
    *add_chain(),
    ex("blockdev-add", driver="qcow2", node_name="target",
       file={"driver": "file", "filename": "$DIR/target.qcow2", "node-name": "target-file"}),
    ex("device_add", driver="virtio-scsi-pci", id="scsi0"),
    ex("device_add", driver="scsi-hd", drive="top", id="sd0"),
    ex("blockdev-mirror", job_id="m0", device="top", target="target", sync="full",
       speed=65536),
    # The target's wr_highest_offset depends on how far the job got: only
    # the device's own entry is asked while it runs.
    BS,
    ex("block-job-set-speed", device="m0", speed=0),
    wait_ev("BLOCK_JOB_READY", device="m0"),
    BS, BSN,
    ex("block-job-cancel", device="m0"),
    wait_ev("BLOCK_JOB_COMPLETED", device="m0"),
    BS, BSN,
], qemu_args=PC)

scenario("nbd-server-add", "nbd-server-add / nbd-server-remove (legacy NBD exports): the export "
         "name (default: the device) is the id, read-only nodes are exported read-only, bitmaps, "
         "errors in QEMU's order, BLOCK_EXPORT_DELETED", CHAIN_SETUP, [
    ex("nbd-server-add", device="base"),
    ex("nbd-server-remove", name="base"),
    *add_chain(),
    ex("blockdev-add", driver="null-co", node_name="null0", read_only=True),
    ex("nbd-server-add", device="top"),
    ex("nbd-server-start", addr={"type": "unix", "data": {"path": "$DIR/nbd.sock"}}),
    ex("nbd-server-add", device="nothere"),
    ex("nbd-server-add", device="top"),
    ex("query-block-exports"),
    ex("nbd-server-add", device="top"),
    ex("nbd-server-add", device="top", name="top2", writable=True, description="second"),
    ex("nbd-server-add", device="null0", writable=True),
    ex("nbd-server-add", device="base", name="1bad"),
    ex("nbd-server-add", device="base", name="x" * 4097),
    ex("nbd-server-add", device="base", name="b", description="d" * 4097),
    ex("nbd-server-add", device="base", name="bm", bitmap="nobitmap"),
    ex("block-dirty-bitmap-add", node="base", name="bm0", disabled=True),
    ex("nbd-server-add", device="base", name="bm", bitmap="bm0"),
    ex("block-dirty-bitmap-remove", node="base", name="bm0"),
    ex("query-block-exports"),
    ex("query-named-block-nodes", flat=True),
    ex("blockdev-del", node_name="top"),
    ex("nbd-server-add", device="top", extra=1),
    ex("nbd-server-add"),
    ex("nbd-server-remove", name="nothere"),
    ex("nbd-server-remove", name="top2", mode="hard"),
    ex("nbd-server-remove", name="top", mode="safe"),
    ex("nbd-server-remove", name="null0", mode="bogus"),
    ex("nbd-server-remove"),
    ex("query-block-exports"),
    ex("block-export-del", id="null0"),
    ex("nbd-server-add", device="base", name="again"),
    ex("nbd-server-stop"),
    ex("query-block-exports"),
    ex("nbd-server-remove", name="again"),
    ex("blockdev-del", node_name="top"),
])

scenario("nbd-server-add-dev", "nbd-server-add of a device's node and of a -M pc device's "
         "BlockBackend name (none: devices' BlockBackends are anonymous), query-blockstats "
         "beside exports (exports do not account)", CHAIN_SETUP, [
    *add_chain(),
    ex("device_add", driver="virtio-scsi-pci", id="scsi0"),
    ex("device_add", driver="scsi-hd", drive="top", id="sd0"),
    ex("nbd-server-start", addr={"type": "unix", "data": {"path": "$DIR/nbd.sock"}}),
    ex("nbd-server-add", device="sd0"),
    ex("nbd-server-add", device="top"),
    ex("nbd-server-add", device="base", name="b"),
    ex("query-block-exports"),
    BS,
    ex("device_del", id="sd0"),
    wait_ev("DEVICE_DELETED", device="sd0"),
    ex("query-block-exports"),
    ex("blockdev-del", node_name="top"),
    ex("nbd-server-remove", name="top"),
    ex("blockdev-del", node_name="top"),
    BSN,
], qemu_args=PC)

# bs-devices needs the machine's buses too.
SCENARIOS[1]["qemu_args"] = PC


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--outdir", default=OUT)
    args = ap.parse_args(argv)
    write_all(SCENARIOS, args.outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
