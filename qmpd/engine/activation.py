"""Node activation: ``blockdev-set-active`` (QEMU 10.0 block.c bdrv_activate,
bdrv_inactivate, bdrv_inactivate_all; blockdev.c qmp_blockdev_set_active).

An inactive node has handed its image to another process (the end of a
migration, or a storage daemon taking over): it keeps no write permission and
its users may take none.  Inactivation goes from the top down -- a node whose
node parents are still active is left to the recursion from its last active
parent -- and activation from the bottom up.  Releases without node
activation (``Profile.node_activation`` false) never call this module.
"""

from __future__ import annotations

from qmpd.engine import perms
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph, Transaction
from qmpd.engine.node import Node, Parent

EPERM_TEXT = "Operation not permitted"


def _has_node_parent(node: Node, only_active: bool) -> bool:
    """bdrv_has_bds_parent."""
    return any(isinstance(e.parent, Node) and (not only_active or e.parent.active)
               for e in node.parents)


class _Refused(Exception):
    """bdrv_inactivate_recurse's -EPERM: some user still needs to write."""


def _inactivate_recurse(g: BlockGraph, node: Node, top: bool, tx: Transaction) -> None:
    if _has_node_parent(node, True):
        return      # covered by the recursion from its still active parent
    if not node.active:
        return      # harmless on user request
    for e in node.parents:
        # blk_root_inactivate: a BlockBackend that writes cannot let go.
        if isinstance(e.parent, Parent) and e.perm & (perms.WRITE | perms.WRITE_UNCHANGED):
            raise _Refused
    cp, _ = g.cumulative(node)
    if cp & (perms.WRITE | perms.WRITE_UNCHANGED):
        raise _Refused      # inactive parents still need write access
    node.active = False

    def undo(n: Node = node) -> None:
        n.active = True
    tx.on_abort(undo)
    # Permissions may be looser now (an inactive node writes nothing below
    # it); QEMU ignores a failure to loosen them.
    sub = Transaction()
    try:
        g.refresh_perms([node], sub)
    except BlockError:
        sub.abort()
    else:
        sub.commit()
    for e in list(node.children):
        _inactivate_recurse(g, e.child, False, tx)


def inactivate(g: BlockGraph, node: Node) -> None:
    """bdrv_inactivate."""
    if _has_node_parent(node, True):
        raise BlockError("Node has active parent node")
    _run(g, [node], "Failed to inactivate node")


def inactivate_all(g: BlockGraph) -> None:
    """bdrv_inactivate_all: every node without node parents, and what is below."""
    roots = [n for n in g.nodes.values() if not _has_node_parent(n, False)]
    _run(g, roots, "Failed to inactivate all nodes")


def _run(g: BlockGraph, roots: list[Node], what: str) -> None:
    # QEMU leaves what it inactivated before the failure inactive; so do we
    # (the transaction only keeps the bookkeeping in one place).
    tx = Transaction()
    try:
        for r in roots:
            _inactivate_recurse(g, r, True, tx)
    except _Refused:
        tx.commit()
        raise BlockError(f"{what}: {EPERM_TEXT}") from None
    tx.commit()


def activate(g: BlockGraph, node: Node) -> None:
    """bdrv_activate: the children first, then the node itself."""
    for e in list(node.children):
        activate(g, e.child)
    if node.active:
        return
    node.active = True
    # The users' write permissions come back; if they cannot, the node stays inactive.
    tx = Transaction()
    try:
        g.refresh_perms([node], tx)
    except BlockError:
        tx.abort()
        node.active = False
        raise
    tx.commit()


def activate_all(g: BlockGraph) -> None:
    for n in list(g.nodes.values()):
        activate(g, n)


def set_active(g: BlockGraph, node_name: str | None, active: bool) -> None:
    """qmp_blockdev_set_active."""
    if node_name is None:
        (activate_all if active else inactivate_all)(g)
        return
    node = g.nodes.get(node_name)
    if node is None:
        raise BlockError(f"Failed to find node with node-name='{node_name}'")
    if active:
        activate(g, node)
    else:
        inactivate(g, node)
