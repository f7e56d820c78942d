"""The ``mirror_top`` filter (QEMU 7.2 block/mirror.c bdrv_mirror_top).

Only jobs insert it (never ``blockdev-add``), in two flavours, as QEMU's
``MirrorBDSOpaque.is_commit`` decides: :class:`MirrorTopDriver` for an active
commit (it needs no consistent read and lets others write), and
:class:`PlainMirrorTopDriver` for ``blockdev-mirror`` (the default filter
permissions).  Once the job stops (``node.state == "stop"``) either takes
nothing and shares everything.
"""

from __future__ import annotations

from qmpd.engine import perms
from qmpd.engine.drivers.commit_top import CommitTopDriver
from qmpd.engine.node import Edge, Node


class MirrorTopDriver(CommitTopDriver):
    """bdrv_mirror_top for an active commit (``is_commit``)."""

    name = "mirror_top"

    def child_perm(self, node: Node, edge: Edge, perm: int,
                   shared: int) -> tuple[int, int]:
        if node.state == "stop":
            return 0, perms.ALL
        p, s = perms.default(edge.role, not node.read_only, perm, shared)
        return p & ~perms.CONSISTENT_READ, s | perms.WRITE


class PlainMirrorTopDriver(MirrorTopDriver):
    """bdrv_mirror_top for a plain mirror (``is_commit`` false): default filter perms."""

    def child_perm(self, node: Node, edge: Edge, perm: int,
                   shared: int) -> tuple[int, int]:
        if node.state == "stop":
            return 0, perms.ALL
        return perms.default(edge.role, not node.read_only, perm, shared)
