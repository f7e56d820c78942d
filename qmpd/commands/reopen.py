"""blockdev-reopen (6.1+) and x-blockdev-reopen (4.0-6.0 shape): one engine
transaction for both; see :mod:`qmpd.engine.reopen`."""

from __future__ import annotations

from typing import Any

from qmpd.commands.registry import command
from qmpd.engine.reopen import reopen


@command("blockdev-reopen")
def blockdev_reopen(daemon: Any, args: dict) -> dict:
    reopen(daemon.graph, args["options"])
    return {}


@command("x-blockdev-reopen")
def x_blockdev_reopen(daemon: Any, args: dict) -> dict:
    reopen(daemon.graph, [args])
    return {}
