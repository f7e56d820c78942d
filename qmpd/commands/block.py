"""blockdev-add and blockdev-del: QMP arguments to graph operations.

The arguments arrive validated against ``schema/`` (BlockdevOptions); the
engine does the rest and raises :class:`BlockError` with QEMU's text.
"""

from __future__ import annotations

from typing import Any

from qmpd.commands.registry import command
from qmpd.engine.activation import set_active


@command("blockdev-add")
def blockdev_add(daemon: Any, args: dict) -> dict:
    daemon.graph.add(args)
    return {}


@command("blockdev-del")
def blockdev_del(daemon: Any, args: dict) -> dict:
    daemon.graph.delete(args["node-name"])
    return {}


@command("blockdev-set-active")
def blockdev_set_active(daemon: Any, args: dict) -> dict:
    # Offered only by releases whose schema has it (10.0+): see qmpd.engine.activation.
    set_active(daemon.graph, args.get("node-name"), args["active"])
    return {}
