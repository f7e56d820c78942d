"""Allocation status down a backing chain (QEMU 7.2 block/io.c
bdrv_is_allocated, bdrv_is_allocated_above): what the block jobs and the
copy-on-read filter ask before they copy.  Below the drivers and the jobs,
so that both can use it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph
    from qmpd.engine.node import Node


def is_allocated(g: BlockGraph, n: Node, offset: int, length: int) -> tuple[bool, int]:
    """bdrv_is_allocated: whether ``n`` itself has the data at ``offset``, and
    for how many bytes that answer holds."""
    for off, ln, alloc, _zero in g.block_status(n, offset, length):
        if off <= offset < off + ln:
            return alloc, min(off + ln - offset, length)
    return False, length


def allocated_above(g: BlockGraph, top: Node | None, bottom: Node | None, offset: int,
                    length: int) -> tuple[bool, int]:
    """bdrv_is_allocated_above(top, bottom, include_base=True): filters are
    passed through; a layer below the top that ends before ``offset`` holds
    the zeroes read there (QEMU 6.0+), or answers nothing (before; the
    release's ``Profile.short_layer_allocated``)."""
    n = length
    node = top
    short_allocated = g.profile.short_layer_allocated
    first = True
    while node is not None:
        if node.driver.is_filter:
            node = node.driver.filtered(node)
            continue
        if offset < g.virtual_size(node):
            alloc, pn = is_allocated(g, node, offset, n)
            if alloc:
                return True, pn
            n = min(n, pn)
        elif short_allocated and not first:
            return True, n
        first = False
        if node is bottom:
            break
        # bdrv_cow_bs: the format node's backing node
        node = node.backing.child if node.backing is not None else None
    return False, n


def status_above(g: BlockGraph, top: Node | None, offset: int,
                 length: int) -> tuple[int, bool, bool]:
    """bdrv_block_status_above(top, NULL): the first run at ``offset`` that one
    layer of the chain answers for, as (bytes, data, zero): data where a
    layer has it (even if it is zeroes), zero where the first layer that has
    the range has a zero cluster or a hole, or where no layer has it."""
    node = top
    n = length
    while node is not None:
        if node.driver.is_filter:
            node = node.driver.filtered(node)
            continue
        o, m, alloc, zero = g.block_status(node, offset, n)[0]
        n = max(min(o + m, offset + n) - offset, 1)
        if alloc:
            return n, not zero, zero
        node = node.backing.child if node.backing is not None else None
        if node is not None and offset >= g.virtual_size(node):
            break
    return n, False, True
