"""The ``throttle`` filter (QEMU 7.2 block/throttle.c): a member of a
throttle group object, counted in the group's users.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmpd.engine.drivers.base import Commit, FilterDriver
from qmpd.engine.errors import BlockError
from qmpd.engine.node import Node

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph, Transaction


class ThrottleDriver(FilterDriver):
    name = "throttle"
    flushes_whole = True
    strong = ("throttle-group",)

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        super().open(g, node, opts, tx)
        group = opts["throttle-group"]
        if group not in g.throttle_groups:
            raise BlockError.of("throttle.throttle-group-does-not-exist", group=group)
        node.state = group
        g.throttle_groups[group].users += 1
        tx.on_abort(lambda: g.throttle_group_unref(group))

    def reopen_prepare(self, g: BlockGraph, node: Node, opts: dict, queue: dict) -> Commit | None:
        group = opts.pop("throttle-group", None)
        if group is None:
            raise BlockError.of("throttle.please-specify-throttle-group")
        if group not in g.throttle_groups:
            raise BlockError.of("throttle.throttle-group-does-not-exist", group=group)

        def commit() -> None:
            old = node.state
            node.state = group
            g.throttle_groups[group].users += 1
            g.throttle_group_unref(old)
        return commit
