"""The ``copy-on-read`` filter (QEMU 7.2 block/copy-on-read.c): a read
through it copies what the node below does not have itself from its backing
chain into it (down to ``bottom`` when given, the whole chain otherwise), a
cluster at a time, zeroes written as zeroes (block/io.c
bdrv_co_do_copy_on_readv).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmpd.engine import perms
from qmpd.engine.allocation import allocated_above, is_allocated
from qmpd.engine.drivers.base import FilterDriver
from qmpd.engine.errors import BlockError
from qmpd.engine.node import Edge, Node

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph, Transaction


# block/io.c MAX_BOUNCE_BUFFER: the most bdrv_co_do_copy_on_readv copies at once.
MAX_BOUNCE_BUFFER = 32768 * 512


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
            node.state = {"bottom": b}

    def read(self, g: BlockGraph, node: Node, offset: int, length: int) -> bytes:
        f = self.primary(node)
        if f is None:
            return bytes(length)
        # cor_co_preadv_part: without a bottom every read copies on read;
        # with one, only what lies in the chain down to the bottom.
        bottom = node.state.get("bottom") if isinstance(node.state, dict) else None
        if bottom is not None and not bottom.alive:
            bottom = None
        pos, end = offset, offset + length
        while pos < end:
            if bottom is None:
                _copy_on_read(g, f, pos, end - pos)
                break
            alloc, n = is_allocated(g, f, pos, end - pos)
            if not alloc:
                below = g.filter_or_cow(f) if not f.driver.is_filter else None
                above, n = allocated_above(g, below, bottom, pos, n)
                if n == 0:
                    break
                if above:
                    _copy_on_read(g, f, pos, n)
            pos += n
        return g.read(f, offset, length)

    def child_perm(self, node: Node, edge: Edge, perm: int, shared: int) -> tuple[int, int]:
        passthrough = perms.CONSISTENT_READ | perms.WRITE | perms.RESIZE
        p = perm & passthrough
        s = (shared & passthrough) | (perms.ALL & ~passthrough)
        return p | perms.WRITE_UNCHANGED, s


def _copy_on_read(g: BlockGraph, bs: Node, offset: int, length: int) -> None:
    """bdrv_co_do_copy_on_readv: the clusters around the range that ``bs``
    does not have itself are read through it and written into it."""
    info = g.get_info(bs)
    cluster = info[0] if info and info[0] > 0 else 512
    start = offset - offset % cluster
    end = min(-(-(offset + length) // cluster) * cluster, g.virtual_size(bs))
    pos = start
    while pos < end:
        alloc, n = is_allocated(g, bs, pos, end - pos)
        n = max(n, 1)
        if not alloc:
            # the whole unallocated run at once (up to the bounce buffer's
            # size): written as zeroes only if all of it reads as zeroes
            while pos + n < end and n < MAX_BOUNCE_BUFFER:
                more, m = is_allocated(g, bs, pos + n, end - pos - n)
                if more:
                    break
                n += max(m, 1)
            n = min(n, MAX_BOUNCE_BUFFER)
            write_copied(g, bs, pos, g.read(bs, pos, n))
        pos += n


def write_copied(g: BlockGraph, bs: Node, offset: int, data: bytes) -> None:
    """bdrv_co_do_copy_on_readv's write of what it read into ``bs``: zeroes
    as zeroes.  It goes straight to the driver (bdrv_driver_pwritev,
    bdrv_co_do_pwrite_zeroes), not through bdrv_co_pwritev: the data does not
    change, so ``bs``'s own dirty bitmaps, write threshold, write generation
    and highest offset never see it (its children's, written through, do)."""
    n = len(data)
    if data.count(0) == n:
        bs.driver.write_zeroes(g, bs, offset, n, False)
    else:
        bs.driver.write(g, bs, offset, data)
