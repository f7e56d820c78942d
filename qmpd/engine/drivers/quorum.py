"""The ``quorum`` driver (QEMU 7.2 block/quorum.c): options, children and
permissions; reads come from the first child, writes go to all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmpd.engine import perms
from qmpd.engine.drivers.base import Driver
from qmpd.engine.errors import BlockError
from qmpd.engine.node import Edge, Node

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph, Transaction


class QuorumDriver(Driver):
    name = "quorum"
    can_reopen = False
    strong = ("vote-threshold", "blkverify", "rewrite-corrupted", "read-pattern")

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        idx: set[int] = set()
        for k in opts:
            if k.startswith("children."):
                head = k[len("children."):].split(".", 1)[0]
                if head.isdigit():
                    idx.add(int(head))
        n = 0
        while n in idx:
            n += 1
        if n != len(idx):
            raise BlockError.of("quorum.option-children-not-valid-array")
        if n < 1:
            raise BlockError.of("quorum.number-provided-children-must-1")
        threshold = opts.get("vote-threshold", 0)
        threshold = ((threshold & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000
        if threshold < 1:
            raise BlockError.of("quorum.parameter-vote-threshold-expects-value")
        if threshold > n:
            raise BlockError.of("quorum.threshold-may-not-exceed-children")
        pattern = opts.get("read-pattern", "quorum")
        rewrite = False
        if pattern == "quorum":
            blkverify = bool(opts.get("blkverify", False))
            if blkverify and (n != 2 or threshold != 2):
                raise BlockError.of("quorum.blkverify-set-if-exactly-two")
            rewrite = bool(opts.get("rewrite-corrupted", False))
            if rewrite and blkverify:
                raise BlockError.of("quorum.rewrite-corrupted-cannot-used-blkverify")
        node.state = {"n": n, "threshold": threshold, "rewrite": rewrite}
        for i in range(n):
            g.open_and_attach(node, opts, f"children.{i}", perms.ROLE_DATA, tx)
        sizes = {g.virtual_size(e.child) for e in node.children}
        if len(sizes) > 1:
            raise BlockError.of("quorum.could-not-refresh-total-sector")

    def child_perm(self, node: Node, edge: Edge, perm: int, shared: int) -> tuple[int, int]:
        p = perm & perms.PASSTHROUGH
        if node.state and node.state.get("rewrite"):
            p |= perms.WRITE
        # Never resize or write: the children would differ from each other
        # (graph-mod, DEFAULT_PERM_UNCHANGED, always shared).
        s = (shared & (perms.CONSISTENT_READ | perms.WRITE_UNCHANGED)) | perms.GRAPH_MOD
        return p, s

    def _children(self, node: Node) -> list[Node]:
        return [e.child for e in node.children if e.name.startswith("children.")]

    def virtual_size(self, g: BlockGraph, node: Node) -> int:
        ch = self._children(node)
        return g.virtual_size(ch[0]) if ch else 0

    def actual_size(self, g: BlockGraph, node: Node) -> int | None:
        total = 0
        for c in self._children(node):
            s = g.actual_size(c)
            if s is None:
                return None
            total += s
        return total

    def read(self, g: BlockGraph, node: Node, offset: int, length: int) -> bytes:
        ch = self._children(node)
        return g.read(ch[0], offset, length) if ch else bytes(length)

    def write(self, g: BlockGraph, node: Node, offset: int, data: bytes) -> None:
        for c in self._children(node):
            g.write(c, offset, data)

    def block_status(self, g: BlockGraph, node: Node, offset: int,
                     length: int) -> list[tuple[int, int, bool, bool]]:
        """quorum_co_block_status: data where any child has data (as far as the
        longest such run), zero only where every child reads zero (as far as
        the shortest zero run)."""
        out: list[tuple[int, int, bool, bool]] = []
        pos, end = offset, offset + length
        while pos < end:
            runs = [_status_above(g, c, pos, end - pos) for c in self._children(node)]
            data = [n for n, zero in runs if not zero]
            n = max(data) if data else min(n for n, _ in runs)
            out.append((pos, n, True, not data))
            pos += n
        return out

    def gather_children(self, g: BlockGraph, node: Node, opts: dict,
                        backing_overridden: bool) -> None:
        opts["children"] = [g.filename_info(c)[2] for c in self._children(node)]

    def exact_filename(self, g: BlockGraph, node: Node, full_opts: dict,
                       generate_json: bool) -> str:
        return ""


def _status_above(g: BlockGraph, node: Node, offset: int, length: int) -> tuple[int, bool]:
    """bdrv_co_common_block_status_above(child, NULL): the first run at
    ``offset`` through the child's backing chain: (length, reads as zero)."""
    o, n, alloc, zero = g.block_status(node, offset, length)[0]
    n = min(o + n, offset + length) - offset
    if alloc:
        return n, zero
    below = g.filter_or_cow(node)
    if below is None or offset >= g.virtual_size(below):
        return n, True
    m, zero = _status_above(g, below, offset, n)
    return m, zero
