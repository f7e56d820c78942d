"""block-dirty-bitmap-add/remove/clear/enable/disable/merge and
x-debug-block-dirty-bitmap-sha256 (QEMU 7.2
block/monitor/bitmap-qmp-cmds.c); the engine is :mod:`qmpd.engine.bitmaps`."""

from __future__ import annotations

from typing import Any

from qmpd.commands.registry import command
from qmpd.engine import bitmaps as bm


@command("block-dirty-bitmap-add")
def bitmap_add(daemon: Any, args: dict) -> dict:
    bm.add(daemon.graph, args["node"], args["name"], args.get("granularity"),
           args.get("persistent", False), args.get("disabled", False))
    return {}


@command("block-dirty-bitmap-remove")
def bitmap_remove(daemon: Any, args: dict) -> dict:
    bm.remove(daemon.graph, args["node"], args["name"])
    return {}


@command("block-dirty-bitmap-clear")
def bitmap_clear(daemon: Any, args: dict) -> dict:
    bm.clear(daemon.graph, args["node"], args["name"])
    return {}


@command("block-dirty-bitmap-enable")
def bitmap_enable(daemon: Any, args: dict) -> dict:
    bm.set_enabled(daemon.graph, args["node"], args["name"], True)
    return {}


@command("block-dirty-bitmap-disable")
def bitmap_disable(daemon: Any, args: dict) -> dict:
    bm.set_enabled(daemon.graph, args["node"], args["name"], False)
    return {}


@command("block-dirty-bitmap-merge")
def bitmap_merge(daemon: Any, args: dict) -> dict:
    bm.merge(daemon.graph, args["node"], args["target"], args["bitmaps"])
    return {}


@command("x-debug-block-dirty-bitmap-sha256", features=("unstable",))
def bitmap_sha256(daemon: Any, args: dict) -> dict:
    _, bitmap = bm.lookup(daemon.graph, args["node"], args["name"])
    return {"sha256": bitmap.sha256()}
