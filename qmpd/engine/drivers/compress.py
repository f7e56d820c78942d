"""The ``compress`` filter (QEMU 7.2 block/filter-compress.c).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmpd.engine.drivers.base import FilterDriver
from qmpd.engine.errors import BlockError
from qmpd.engine.node import Node

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph, Transaction


class CompressDriver(FilterDriver):
    """The compress filter: needs a child that can write compressed clusters."""

    name = "compress"
    variable_length = True
    can_reopen = False
    COMPRESSING = ("qcow2", "copy-on-read", "throttle")

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        super().open(g, node, opts, tx)
        child = self.primary(node)
        assert child is not None
        if child.driver.name not in self.COMPRESSING:
            raise BlockError.of("compress.compression-not-supported-underlying-format",
                                driver=child.driver.name)
