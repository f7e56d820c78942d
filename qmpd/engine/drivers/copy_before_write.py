"""The ``copy-before-write`` filter (QEMU 7.2 block/copy-before-write.c),
as a backup job inserts it (not available to ``blockdev-add``).

The source is its ``file`` child, the target its ``target`` child; before a
guest write reaches the source, the job that owns the filter (its
``node.state``, a :class:`BeforeWriteHook`) copies the old data out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

from qmpd.engine import perms
from qmpd.engine.drivers.base import Driver
from qmpd.engine.node import Edge, Node

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph


@runtime_checkable
class BeforeWriteHook(Protocol):
    """What the filter asks of the job that inserted it."""

    def copy_before_write(self, g: BlockGraph, offset: int, length: int) -> None:
        """cbw_do_copy_before_write: copy what the write will overwrite."""


class CopyBeforeWriteDriver(Driver):
    """block/copy-before-write.c (only as a backup job's filter)."""

    name = "copy-before-write"
    flushes_whole = True
    is_filter = True
    can_reopen = False

    # The source's link: "file" (copy-before-write); 5.2's backup-top had
    # the source as its backing child.
    source_child = "file"

    def __init__(self, always_reads_source: bool = False) -> None:
        # The release's cbw_child_perm (Profile.cbw_always_reads_source).
        self.always_reads_source = always_reads_source

    def child_perm(self, node: Node, edge: Edge, perm: int, shared: int) -> tuple[int, int]:
        if not edge.role & perms.ROLE_FILTERED:
            # The target: written, others may write (the guest's chain), no resize.
            return perms.WRITE, perms.ALL & ~perms.RESIZE
        p, s = perms.default(edge.role, not node.read_only, perm, shared)
        if node.parents:
            # 7.2 reads the source for copy-before-write when its users write;
            # 10.0's cbw_child_perm always takes consistent-read there.
            if perm & perms.WRITE or self.always_reads_source:
                p |= perms.CONSISTENT_READ
            s &= ~(perms.WRITE | perms.RESIZE)
        return p, s

    def virtual_size(self, g: BlockGraph, node: Node) -> int:
        f = node.child(self.source_child)
        return g.virtual_size(f.child) if f else 0

    def read(self, g: BlockGraph, node: Node, offset: int, length: int) -> bytes:
        f = node.child(self.source_child)
        return g.read(f.child, offset, length) if f else bytes(length)

    def _before_write(self, g: BlockGraph, node: Node, offset: int, length: int) -> None:
        # The backup job sets itself as the filter's state while it runs.
        st = node.state
        if isinstance(st, BeforeWriteHook):
            st.copy_before_write(g, offset, length)

    def write(self, g: BlockGraph, node: Node, offset: int, data: bytes) -> None:
        self._before_write(g, node, offset, len(data))
        f = node.child(self.source_child)
        if f is not None:
            g.write(f.child, offset, data)

    def write_zeroes(self, g: BlockGraph, node: Node, offset: int, length: int,
                     unmap: bool) -> None:
        self._before_write(g, node, offset, length)
        f = node.child(self.source_child)
        if f is not None:
            g.write_zeroes(f.child, offset, length, unmap)

    def discard(self, g: BlockGraph, node: Node, offset: int, length: int) -> None:
        self._before_write(g, node, offset, length)
        f = node.child(self.source_child)
        if f is not None:
            g.discard(f.child, offset, length)

    def exact_filename(self, g: BlockGraph, node: Node, full_opts: dict,
                       generate_json: bool) -> str:
        # cbw_refresh_filename: the source's filename, json: or not (10.0
        # recorded it so for a source with a json: name; 7.2 has the same code).
        f = node.child(self.source_child)
        if f is None:
            return ""
        return g.filename_info(f.child)[0]

    def gather_children(self, g: BlockGraph, node: Node, opts: dict,
                        backing_overridden: bool) -> None:
        f = node.child(self.source_child)
        if f is not None:
            opts[self.source_child] = g.filename_info(f.child)[2]


class BackupTopDriver(CopyBeforeWriteDriver):
    """block/backup-top.c (before 6.0, Profile.backup_filter_is_backup_top):
    the same filter, named ``backup-top``, with the source as its ``backing``
    child (bdrv_append); it has no bitmaps of its own."""

    name = "backup-top"
    source_child = "backing"
    reports_backing_file = False
