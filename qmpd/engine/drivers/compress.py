"""The ``compress`` filter (QEMU 7.2 block/filter-compress.c).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from qmpd.engine.bitmaps import note_write
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

    def write(self, g: BlockGraph, node: Node, offset: int, data: bytes) -> None:
        # compress_co_pwritev_part: every write goes down as a compressed write
        # (BDRV_REQ_WRITE_COMPRESSED), through filters to the qcow2 node.
        n = self.primary(node)
        while n is not None and n.driver.name != "qcow2" and n.driver.is_filter:
            n = n.driver.filtered(n)
        if n is None or not hasattr(n.driver, "write_compressed"):
            raise OSError(errno.ENOTSUP, "Operation not supported")
        if node.dirty_bitmaps or node.write_threshold:
            note_write(g, node, offset, len(data))
        n.driver.write_compressed(g, n, offset, data)
