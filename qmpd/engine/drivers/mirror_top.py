"""The ``mirror_top`` filter (QEMU 7.2 block/mirror.c bdrv_mirror_top).

Only jobs insert it (never ``blockdev-add``), in two flavours, as QEMU's
``MirrorBDSOpaque.is_commit`` decides: :class:`MirrorTopDriver` for an active
commit (it needs no consistent read and lets others write), and
:class:`PlainMirrorTopDriver` for ``blockdev-mirror`` (the default filter
permissions).  Once the job stops (``node.state == "stop"``) either takes
nothing and shares everything.  Releases before 6.0 had one flavour for both
(:class:`ForwardWritesMirrorTopDriver`, Profile.mirror_top_forwards_writes_only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from qmpd.engine import perms
from qmpd.engine.drivers.commit_top import CommitTopDriver
from qmpd.engine.node import Edge, Node

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph


class MirrorTopDriver(CommitTopDriver):
    """bdrv_mirror_top for an active commit (``is_commit``)."""

    name = "mirror_top"
    flushes_whole = True

    def child_perm(self, node: Node, edge: Edge, perm: int,
                   shared: int) -> tuple[int, int]:
        if node.state == "stop":
            return 0, perms.ALL
        p, s = perms.default(edge.role, not node.read_only, perm, shared)
        return p & ~perms.CONSISTENT_READ, s | perms.WRITE


class PlainMirrorTopDriver(MirrorTopDriver):
    """bdrv_mirror_top for a plain mirror (``is_commit`` false): default filter perms.

    Writes through it are handed to the job (``node.filter_job``) once done,
    which notes them where its bitmap sits on the filter (QEMU 10.0's
    bdrv_mirror_top_do_write; 7.2's bitmap on the source notes every write).
    """

    def child_perm(self, node: Node, edge: Edge, perm: int,
                   shared: int) -> tuple[int, int]:
        if node.state == "stop":
            return 0, perms.ALL
        return perms.default(edge.role, not node.read_only, perm, shared)

    def write(self, g: BlockGraph, node: Node, offset: int, data: bytes) -> None:
        super().write(g, node, offset, data)
        _passed(node, offset, len(data), lambda t: g.write(t, offset, data))

    def write_zeroes(self, g: BlockGraph, node: Node, offset: int, length: int,
                     unmap: bool) -> None:
        super().write_zeroes(g, node, offset, length, unmap)
        _passed(node, offset, length, lambda t: g.write_zeroes(t, offset, length, unmap))

    def discard(self, g: BlockGraph, node: Node, offset: int, length: int) -> None:
        super().discard(g, node, offset, length)
        _passed(node, offset, length, lambda t: g.discard(t, offset, length))


class ForwardWritesMirrorTopDriver(PlainMirrorTopDriver):
    """bdrv_mirror_top before 6.0 (mirror and active commit alike): it takes
    only the write its users need, to forward guest writes, and shares
    everything; the consistent read its users get is the job's own."""

    def child_perm(self, node: Node, edge: Edge, perm: int,
                   shared: int) -> tuple[int, int]:
        if node.state == "stop":
            return 0, perms.ALL
        return perm & perms.WRITE, perms.ALL


def _passed(node: Node, offset: int, length: int, copy: Callable[[Node], None]) -> None:
    job = node.filter_job
    hook = getattr(getattr(job, "driver", None), "write_passed", None)
    if hook is not None:
        hook(job, offset, length, copy)
