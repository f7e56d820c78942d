"""The ``commit_top`` filter (QEMU 7.2 block/commit.c bdrv_commit_top).

Only a commit job inserts it (never ``blockdev-add``): it passes reads to its
backing child, takes no permissions on it and keeps the length it was given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmpd.engine import perms
from qmpd.engine.drivers.base import Driver
from qmpd.engine.node import Edge, Node

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph


class CommitTopDriver(Driver):
    """block/commit.c bdrv_commit_top: passes reads to its backing child."""

    name = "commit_top"
    is_filter = True
    never_freeze = True
    reports_backing_file = False
    can_reopen = False

    def child_perm(self, node: Node, edge: Edge, perm: int,
                   shared: int) -> tuple[int, int]:
        return 0, perms.ALL

    def virtual_size(self, g: BlockGraph, node: Node) -> int:
        return node.total or 0

    def exact_filename(self, g: BlockGraph, node: Node, full_opts: dict,
                       generate_json: bool) -> str:
        b = node.backing
        return g.filename_info(b.child)[0] if b else ""
