"""The ``blkverify`` driver (QEMU 7.2 block/blkverify.c): reads from
``test``, writes to both ``raw`` and ``test``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmpd.engine import perms
from qmpd.engine.drivers.base import Driver
from qmpd.engine.node import Node

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph, Transaction


class BlkverifyDriver(Driver):
    name = "blkverify"
    protocol = True
    is_filter = True
    can_reopen = False

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        g.open_and_attach(node, opts, "raw", perms.ROLE_FILTERED | perms.ROLE_PRIMARY, tx)
        g.open_and_attach(node, opts, "test", perms.ROLE_DATA, tx)

    def _test(self, node: Node) -> Node | None:
        e = node.child("test")
        return e.child if e else None

    def virtual_size(self, g: BlockGraph, node: Node) -> int:
        t = self._test(node)
        return g.virtual_size(t) if t else 0

    def actual_size(self, g: BlockGraph, node: Node) -> int | None:
        return None

    def read(self, g: BlockGraph, node: Node, offset: int, length: int) -> bytes:
        t = self._test(node)
        return g.read(t, offset, length) if t else bytes(length)

    def write(self, g: BlockGraph, node: Node, offset: int, data: bytes) -> None:
        for e in node.children:
            g.write(e.child, offset, data)

    def exact_filename(self, g: BlockGraph, node: Node, full_opts: dict,
                       generate_json: bool) -> str:
        r = self.primary(node)
        t = self._test(node)
        re_ = g.filename_info(r)[1] if r else ""
        te = g.filename_info(t)[1] if t else ""
        if re_ and te:
            return f"blkverify:{re_}:{te}"
        return ""
