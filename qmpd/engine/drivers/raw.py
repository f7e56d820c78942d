"""The ``raw`` format driver (QEMU 7.2 block/raw-format.c): a window
(``offset``, ``size``) on its ``file`` child, or a plain filter without one.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qmpd.engine import perms
from qmpd.engine.drivers.base import Commit, Driver, g_writable, size_opt
from qmpd.engine.errors import BlockError
from qmpd.engine.node import Edge, Node

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph, Transaction


@dataclass(slots=True, eq=False)
class RawState:
    """The window on the child: ``size`` follows the child unless given."""

    offset: int
    has_size: bool
    size: int
    # The release's rule for the child's permissions (Profile.raw_trims_child_perms).
    trims_child_perms: bool = True


class RawDriver(Driver):
    name = "raw"
    variable_length = True
    mutable = ("offset", "size")
    strong = ("offset", "size")

    @staticmethod
    def _read_options(opts: dict) -> tuple[int, bool, int]:
        offset = size_opt("offset", opts.get("offset", 0))
        has_size = "size" in opts
        size = size_opt("size", opts["size"]) if has_size else 0
        return offset, has_size, size

    @staticmethod
    def _apply(g: BlockGraph, child: Node, offset: int, has_size: bool, size: int) -> RawState:
        real = g.virtual_size(child)
        if offset > real:
            raise BlockError.of("raw.offset-cannot-greater-size-containing", offset=offset,
                                real=real)
        if has_size and real - offset < size:
            raise BlockError.of("raw.sum-offset-size-smaller-equal", offset=offset, size=size,
                                real=real)
        if has_size and size % 512:
            raise BlockError.of("raw.specified-size-not-multiple-512")
        return RawState(offset, has_size, size if has_size else real - offset,
                        g.profile.raw_trims_child_perms)

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        offset, has_size, size = self._read_options(opts)
        role = (perms.ROLE_DATA | perms.ROLE_PRIMARY) if (has_size or offset) \
            else (perms.ROLE_FILTERED | perms.ROLE_PRIMARY)
        child = g.attach_file_child(node, role, tx)
        node.state = self._apply(g, child, offset, has_size, size)

    def child_perm(self, node: Node, edge: Edge, perm: int, shared: int) -> tuple[int, int]:
        p, s = perms.default(edge.role, g_writable(node), perm, shared)
        # While the child is attached at open there is no state yet, but no
        # parent either: both rules give the same permissions then.
        st = node.state
        if not isinstance(st, RawState) or st.trims_child_perms:
            # Storage defaults add WRITE and RESIZE; keep them only when a
            # parent asks (QEMU 6.0's raw_child_perm, against conflicts).
            p &= ~(perms.WRITE | perms.RESIZE)
            p |= perm & (perms.WRITE | perms.RESIZE)
        return p, s

    def reopen_prepare(self, g: BlockGraph, node: Node, opts: dict, queue: dict) -> Commit | None:
        offset, has_size, size = self._read_options(opts)
        opts.pop("offset", None)
        opts.pop("size", None)
        child = self.primary(node)
        assert child is not None
        st = self._apply(g, child, offset, has_size, size)

        def commit() -> None:
            node.state = st
        return commit

    def virtual_size(self, g: BlockGraph, node: Node) -> int:
        # raw_getlength: the size follows the (possibly replaced) child.
        st = node.state
        f = self.primary(node)
        length = g.virtual_size(f) if f else 0
        if length < st.offset:
            st.size = 0
        elif st.has_size:
            st.size = min(st.size, length - st.offset)
        else:
            st.size = length - st.offset
        return st.size

    def get_info(self, g: BlockGraph, node: Node) -> tuple[int, bool] | None:
        f = self.primary(node)
        return g.get_info(f) if f else None

    def zeroes_may_unmap(self, g: BlockGraph, node: Node) -> bool:
        # raw_open: the file's flags pass through
        f = self.primary(node)
        return f is not None and f.driver.zeroes_may_unmap(g, f)

    def read(self, g: BlockGraph, node: Node, offset: int, length: int) -> bytes:
        f = self.primary(node)
        if f is None:
            return bytes(length)
        f.driver.debug_event(f, "read_aio")     # raw_co_preadv's BLKDBG_EVENT
        return g.read(f, node.state.offset + offset, length)

    def write(self, g: BlockGraph, node: Node, offset: int, data: bytes) -> None:
        _check_room(node, offset, len(data))
        f = self.primary(node)
        if f is not None:
            f.driver.debug_event(f, "write_aio")    # raw_co_pwritev's BLKDBG_EVENT
            g.write(f, node.state.offset + offset, data)

    def write_zeroes(self, g: BlockGraph, node: Node, offset: int, length: int,
                     unmap: bool) -> None:
        _check_room(node, offset, length)
        f = self.primary(node)
        if f is not None:
            g.write_zeroes(f, node.state.offset + offset, length, unmap)

    def discard(self, g: BlockGraph, node: Node, offset: int, length: int) -> None:
        _check_room(node, offset, length)
        f = self.primary(node)
        if f is not None:
            g.discard(f, node.state.offset + offset, length)

    def block_status(self, g: BlockGraph, node: Node, offset: int,
                     length: int) -> list[tuple[int, int, bool, bool]]:
        f = self.primary(node)
        if f is None:
            return [(offset, length, True, False)]
        base = node.state.offset
        return [(o - base, n, a, z) for o, n, a, z in g.block_status(f, base + offset, length)]


def _check_room(node: Node, offset: int, length: int) -> None:
    """raw_adjust_offset for writes: nothing reaches the file past the
    ``size`` option's end (ENOSPC: 248 runs a mirror into such a target)."""
    st = node.state
    if st.has_size and (offset > st.size or length > st.size - offset):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
