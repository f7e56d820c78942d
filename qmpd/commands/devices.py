"""device_add, device_del, query-block and x-blockdev-set-iothread.

The qdev, PCI and SCSI rules live in :mod:`qmpd.engine.devices`; these
handlers hand the arguments on, and run a SCSI disk's unplug after the reply
has gone out (then ``DEVICE_DELETED`` follows), as QEMU's deferred unplug.
"""

from __future__ import annotations

from typing import Any

from qmpd.commands.errors import from_block_error
from qmpd.commands.registry import command
from qmpd.engine.devices import qdev, query
from qmpd.engine.devices.model import BlockBackend
from qmpd.engine.errors import BlockError


@command("device_add")
def device_add(daemon: Any, args: dict) -> dict:
    qdev.device_add(daemon.graph, args)
    return {}


def device_option(daemon: Any, args: dict, typed: bool) -> dict:
    """A device from the command line: a JSON ``-device`` (``typed``: JSON
    values, checked as JSON), or QemuOpts strings (``-device
    driver,key=value``, a ``-drive if=virtio``), parsed as text in every
    release whatever its QMP device_add does."""
    try:
        qdev.device_add(daemon.graph, args, typed=typed)
    except BlockError as e:
        raise from_block_error(e, daemon.profile) from None
    return {}


@command("device_del")
def device_del(daemon: Any, args: dict) -> dict:
    g = daemon.graph
    dev = qdev.request_unplug(g, args["id"])
    if dev is None:
        return {}

    def unplug() -> None:
        if g is not daemon.graph:
            return
        blk = dev.backend
        if blk is not None and blk.name and blk.edge is not None:
            # blockdev_auto_del: a -drive goes with its device, and the block
            # jobs on its node are cancelled first.
            mgr = daemon.jobs
            node = blk.edge.child
            for job in list(g.jobs):
                if node in getattr(job, "nodes", ()):
                    mgr.cancel(job, False)
        data = qdev.unplug(g, dev)
        if data is not None:
            daemon.emit("DEVICE_DELETED", data)
    # After the reply has gone out, as QEMU's deferred unplug.
    daemon.after_reply(unplug)
    return {}


@command("query-block")
def query_block(daemon: Any, args: dict) -> list:
    return query.query_block(daemon.graph)


@command("x-blockdev-set-iothread", features=("unstable",))
def x_blockdev_set_iothread(daemon: Any, args: dict) -> dict:
    query.set_iothread(daemon.graph, args)
    return {}


def qdev_backend(daemon: Any, did: str) -> tuple[BlockBackend | None, str]:
    """blk_by_qdev_id for HMP ``qemu-io -d``: the BlockBackend or QEMU's error."""
    return query.qdev_backend(daemon.graph, did)


def hmp_info_block(daemon: Any) -> str:
    """HMP ``info block`` (print_block_info for every BlockBackend), ``\\n`` line ends."""
    parts = []
    for info in query_block(daemon, {}):
        ins = info.get("inserted")
        lines = []
        # print_block_info: a -drive by its name (and node), else the node or device.
        if info["device"]:
            head = info["device"] + (f" ({ins['node-name']})" if ins is not None else "")
        else:
            head = ins["node-name"] if ins is not None else info.get("qdev", "<anonymous>")
        if ins is not None:
            flags = (", read-only" if ins["ro"] else "") + (", encrypted" if ins["encrypted"] else "")
            lines.append(f"{head}: {ins['file']} ({ins['drv']}{flags})")
        else:
            lines.append(f"{head}: [not inserted]")
        if "qdev" in info:
            lines.append(f"    Attached to:      {info['qdev']}")
        if info["removable"]:
            lines.append("    Removable device: " + ("" if info["locked"] else "not ")
                         + "locked, tray " + ("open" if info.get("tray_open") else "closed"))
        if ins is not None:
            c = ins["cache"]
            lines.append("    Cache mode:       " + ("writeback" if c["writeback"] else "writethrough")
                         + (", direct" if c["direct"] else "")
                         + (", ignore flushes" if c["no-flush"] else ""))
            if "backing_file" in ins:
                lines.append(f"    Backing file:     {ins['backing_file']} "
                             f"(chain depth: {ins['backing_file_depth']})")
            if ins["detect_zeroes"] != "off":
                lines.append(f"    Detect zeroes:    {ins['detect_zeroes']}")
        parts.append("".join(line + "\n" for line in lines))
    return "\n".join(parts)
