"""The ``preallocate`` filter (QEMU 7.2 block/preallocate.c): its options
are checked; no preallocation is modelled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmpd.engine import perms
from qmpd.engine.drivers.base import Commit, FilterDriver, g_writable, size_opt
from qmpd.engine.errors import BlockError
from qmpd.engine.node import Edge, Node

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph, Transaction


class PreallocateDriver(FilterDriver):
    """The preallocate filter: options checked, no preallocation modelled."""

    name = "preallocate"
    flushes_whole = True
    variable_length = True

    @staticmethod
    def _absorb(opts: dict) -> None:
        align = size_opt("prealloc-align", opts.pop("prealloc-align", 1 << 20))
        size_opt("prealloc-size", opts.pop("prealloc-size", 128 << 20))
        if align % 512:
            raise BlockError.of("preallocate.prealloc-align-parameter-preallocate-filter")

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        super().open(g, node, opts, tx)
        self._absorb(dict(opts))

    def reopen_prepare(self, g: BlockGraph, node: Node, opts: dict, queue: dict) -> Commit | None:
        self._absorb(opts)
        return lambda: None

    def child_perm(self, node: Node, edge: Edge, perm: int, shared: int) -> tuple[int, int]:
        p, s = perms.default(edge.role, g_writable(node), perm, shared)
        if perm & perms.WRITE and perm & perms.RESIZE:
            p |= perms.WRITE | perms.RESIZE
            s &= ~(perms.WRITE | perms.RESIZE)
        return p, s
