"""AioContexts of nodes (QEMU 7.2 ``bdrv_try_change_aio_context``).

A context is ``"main"`` or the id of an iothread object.  A node's whole
connected component moves at once, and a device's BlockBackend refuses to be
moved by anyone but its device (``Cannot change iothread of active block
backend``).  A new child follows its parent's context, or else the parent
follows the child's (:func:`attach_context`, which the graph calls on attach).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qmpd.engine.errors import BlockError
from qmpd.engine.node import Edge, Node, Parent
from qmpd.engine.transaction import Transaction

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph

MAIN = "main"
ACTIVE_BB = "Cannot change iothread of active block backend"


def _component(g: BlockGraph, start: Node, ignore: set[int]) -> tuple[list[Node], list[Parent]]:
    """Nodes and non-node parents reachable from ``start`` through any edge."""
    nodes: list[Node] = []
    parents: list[Parent] = []
    seen: set[int] = set()
    stack: list[Any] = [start]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, Node):
            nodes.append(obj)
            for e in obj.parents:
                if id(e) not in ignore:
                    stack.append(e.parent)
            for e in obj.children:
                if id(e) not in ignore:
                    stack.append(e.child)
        elif isinstance(obj, Parent):
            parents.append(obj)
        else:
            # A block job: it moves its other nodes along (child_job_change_aio_ctx).
            for e in getattr(obj, "edges", ()):
                stack.append(e.child)
    return nodes, parents


def change_context(g: BlockGraph, node: Node, ctx: str, tx: Transaction,
                   ignore: Edge | None = None) -> None:
    """bdrv_try_change_aio_context(node, ctx, ignore_child)."""
    if node.aio_context == ctx:
        return
    nodes, parents = _component(g, node, {id(ignore)} if ignore is not None else set())
    for p in parents:
        if p.kind == "device-backend":
            raise BlockError(ACTIVE_BB)
    for n in nodes:
        if n.aio_context != ctx:
            old = n.aio_context
            n.aio_context = ctx
            tx.on_abort(lambda n=n, old=old: setattr(n, "aio_context", old))


def attach_context(g: BlockGraph, parent: Node, child: Node, tx: Transaction) -> None:
    """bdrv_attach_child_common: a new child follows its parent's context, or
    else the parent follows the child's; the child's error is reported."""
    if parent.aio_context == child.aio_context:
        return
    try:
        change_context(g, child, parent.aio_context, tx)
    except BlockError as first:
        try:
            change_context(g, parent, child.aio_context, tx)
        except BlockError:
            raise first from None
