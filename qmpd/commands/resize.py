"""block_resize and block-set-write-threshold (QEMU 7.2 blockdev.c,
block/write-threshold.c); the engine is :mod:`qmpd.engine.resize`."""

from __future__ import annotations

from typing import Any

from qmpd.commands.registry import command
from qmpd.engine.errors import BlockError
from qmpd.engine.node import Node
from qmpd.engine.resize import block_resize, set_write_threshold
from qmpd.engine.surgery import lookup_bs


@command("block_resize")
def cmd_block_resize(daemon: Any, args: dict) -> dict:
    g = daemon.graph
    node = lookup_bs(g, args.get("device"), args.get("node-name"))
    size = args["size"]
    if size < 0:
        raise BlockError.of("resize.size-not-positive")
    for e in node.parents:
        # bdrv_op_is_blocked(RESIZE): a backing child is blocked; QEMU prints
        # the device name, which is NULL when only a node-name was given.
        if e.name == "backing" and isinstance(e.parent, Node):
            raise BlockError.of("resize.device-in-use", device=args.get("device", "(null)"),
                                node=node.name, parent=e.parent.name)
    block_resize(g, node, size)
    return {}


@command("block-set-write-threshold")
def cmd_write_threshold(daemon: Any, args: dict) -> dict:
    g = daemon.graph
    # The event goes out through the daemon (the graph may have been replaced
    # by x-qmpd-reset since the last call).
    g.emit_event = daemon.emit
    set_write_threshold(g, args["node-name"], args["write-threshold"])
    return {}
