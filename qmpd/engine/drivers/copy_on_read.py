"""The ``copy-on-read`` filter (QEMU 7.2 block/copy-on-read.c).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmpd.engine import perms
from qmpd.engine.drivers.base import FilterDriver
from qmpd.engine.errors import BlockError
from qmpd.engine.node import Edge, Node

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph, Transaction


class CopyOnReadDriver(FilterDriver):
    name = "copy-on-read"
    variable_length = True
    can_reopen = False

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        super().open(g, node, opts, tx)
        bottom = opts.get("bottom")
        if bottom is not None:
            b = g.nodes.get(bottom)
            if b is None:
                raise BlockError.of("copy-on-read.bottom-node-not-found", bottom=bottom)
            if not g.chain_contains(node, b):
                raise BlockError.of("copy-on-read.bottom-node-not-backing-chain", bottom=bottom,
                                    node=node.name)

    def child_perm(self, node: Node, edge: Edge, perm: int, shared: int) -> tuple[int, int]:
        passthrough = perms.CONSISTENT_READ | perms.WRITE | perms.RESIZE
        p = perm & passthrough
        s = (shared & passthrough) | (perms.ALL & ~passthrough)
        return p | perms.WRITE_UNCHANGED, s
