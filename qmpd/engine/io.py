"""Guest I/O on a node, as one BlockBackend sees it.

:class:`NodeIO` gives the qemu-io interpreter (:mod:`qmpd.img.qemu_io`) the
same interface as an image opened by ``qmpd-img io``: length, read, write,
write-zeroes, compressed writes, discard, truncate and the allocation map, all through
the node's driver stack and the in-memory host-file layers.
"""

from __future__ import annotations

import errno

from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph
from qmpd.engine.node import Edge, Node
from qmpd.engine.reopen import reopen_keep_old
from qmpd.engine.resize import truncate

# qemu-io fills its buffers with this byte before a read (qemu_io_alloc), so
# drivers that leave the buffer alone (null-co without read-zeroes) show it.
QEMU_IO_FILL = 0xAB


class NodeIO:
    read_only = False

    def __init__(self, g: BlockGraph, node: Node, edge: Edge | None = None) -> None:
        self.g = g
        self._node = node
        # The BlockBackend's edge, when there is one: a long request follows
        # it if a job replaces the node between two of its chunks.
        self._edge = edge

    @property
    def node(self) -> Node:
        return self._edge.child if self._edge is not None else self._node

    def length(self) -> int:
        return self.g.virtual_size(self.node)

    def read(self, offset: int, length: int) -> bytes:
        old = self.g.read_fill
        self.g.read_fill = QEMU_IO_FILL
        try:
            return self.g.read(self.node, offset, length)
        finally:
            self.g.read_fill = old

    def is_zero(self, offset: int, length: int) -> bool:
        return all(z for _, _, _, z in self.g.block_status(self.node, offset, length))

    def write(self, offset: int, data: bytes) -> None:
        self.g.write(self.node, offset, data)

    def write_zeroes(self, offset: int, length: int, *, unmap: bool = False) -> None:
        self.g.write_zeroes(self.node, offset, length, unmap)

    def discard(self, offset: int, length: int) -> None:
        if self.node.discard == "unmap":
            self.g.discard(self.node, offset, length)

    def flush(self) -> None:
        """blk_flush."""
        self.g.flush(self.node)

    def write_compressed(self, offset: int, data: bytes) -> None:
        n = self.node
        while n.driver.name != "qcow2":
            nxt = n.driver.filtered(n) if n.driver.is_filter else None
            if nxt is None:
                raise OSError(errno.ENOTSUP, "Operation not supported")
            n = nxt
        n.driver.write_compressed(self.g, n, offset, data)  # type: ignore[attr-defined]

    def info(self) -> tuple[str, str | None, int | None, int, dict | None]:
        """qemu-io ``info``: format, protocol, cluster size, vm state offset,
        format-specific data."""
        n = self.node
        drv = n.driver
        proto = drv.name if drv.protocol and drv.name in ("file", "null-co", "null-aio") else None
        gi = self.g.get_info(n)
        fs = self.g.format_specific(n)
        vm_state = 0
        h = getattr(n.state, "header", None)
        if drv.name == "qcow2" and h is not None:
            l2_entries = h.cluster_size // (16 if h.extended_l2 else 8)
            per_l1 = h.cluster_size * l2_entries
            vm_state = -(-h.virtual_size // per_l1) * per_l1
        return drv.name, proto, (gi[0] if gi else None), vm_state, (fs or {}).get("data")

    def open_flags(self) -> tuple[bool, bool, bool]:
        """The node's read-only, cache.direct and cache.no-flush (what
        qemu-io's ``reopen`` keeps unless told otherwise)."""
        n = self.node
        return n.read_only, n.cache_direct, n.cache_no_flush

    def drain(self) -> None:
        """bdrv_drain of the node: jobs there pause and resume."""
        hook = self.g.drain_hook
        if hook is not None:
            hook([self.node], True)
            hook([self.node], False)

    def reopen(self, options: dict) -> None:
        """bdrv_reopen of the node with ``options`` (flat keys), the others
        kept; BlockError if refused."""
        reopen_keep_old(self.g, self.node, options)

    def truncate(self, size: int, prealloc: str) -> None:
        try:
            truncate(self.g, self.node, size, prealloc)
        except BlockError as e:
            raise OSError(errno.ENOTSUP, e.desc) from None

    def allocation(self) -> list[tuple[int, int, bool]]:
        size = self.length()
        out: list[tuple[int, int, bool]] = []
        for off, n, alloc, _ in self.g.block_status(self.node, 0, size):
            if out and out[-1][2] == alloc:
                o, m, a = out[-1]
                out[-1] = (o, m + n, a)
            else:
                out.append((off, n, alloc))
        return out
