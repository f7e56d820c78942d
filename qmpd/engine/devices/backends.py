"""Device BlockBackends on the block graph (QEMU 7.2 hw/block/block.c
blkconf_apply_backend_options, block/block-backend.c).

A device's BlockBackend is attached to its node by a ``root`` edge, first
with no permissions (``set_drive_helper``), then with those the device takes
at realize; it moves the node along when the device changes AioContext, and
drops the node's reference on unplug.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmpd.engine import perms
from qmpd.engine.aio import MAIN, change_context
from qmpd.engine.devices.model import BlockBackend, Device
from qmpd.engine.node import Edge, Node
from qmpd.engine.transaction import Transaction

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph


def device_perms(read_only: bool, resizable: bool, share_rw: bool) -> tuple[int, int]:
    """blkconf_apply_backend_options."""
    perm = perms.CONSISTENT_READ
    if not read_only:
        perm |= perms.WRITE
    shared = perms.CONSISTENT_READ | perms.WRITE_UNCHANGED | perms.GRAPH_MOD
    if resizable:
        shared |= perms.RESIZE
    if share_rw:
        shared |= perms.WRITE
    return perm, shared


def backend_desc(dev: Device) -> str:
    """blk_root_get_parent_desc: the attached device's id or QOM path."""
    return f"block device '{dev.backend_owner_id()}'"


def create_backend(g: BlockGraph, dev: Device, node: Node, tx: Transaction,
                   iothread_aware: bool) -> BlockBackend:
    """set_drive_helper: a new BlockBackend (perm 0, shared all) on ``node``.

    Devices that know about iothreads create it in the node's context; the
    others in the main context, so the node has to move there.
    """
    blk = BlockBackend(dev, backend_desc(dev))
    # What a device's BlockBackend accounts failed and invalid requests in
    # (blkconf's account-* properties are "auto": the release's default).
    blk.stats.account_invalid = blk.stats.account_failed = g.profile.device_blk_accounting
    ctx = node.aio_context if iothread_aware else MAIN
    blk.aio_context = ctx
    if node.aio_context != ctx:
        # The new BB is not a parent yet; when the node cannot move, the BB
        # (unnamed) refuses to follow the node: the same text either way.
        change_context(g, node, ctx, tx)
    g.attach(blk, node, "root", 0, tx)
    g.backends.append(blk)
    tx.on_abort(lambda: g.backends.remove(blk))
    dev.backend = blk
    return blk


def apply_perms(g: BlockGraph, blk: BlockBackend, read_only: bool, resizable: bool,
                share_rw: bool, tx: Transaction) -> None:
    """blk_set_perm at realize."""
    e = blk.edge
    assert e is not None
    old = (e.perm, e.shared)
    e.perm, e.shared = device_perms(read_only, resizable, share_rw)
    tx.on_abort(lambda: _set(e, old))
    g.refresh_perms([e.child], tx)


def _set(e: Edge, v: tuple[int, int]) -> None:
    e.perm, e.shared = v


def set_backend_context(g: BlockGraph, blk: BlockBackend, ctx: str, tx: Transaction) -> None:
    """blk_set_aio_context: the device moves its own BlockBackend and node."""
    e = blk.edge
    if e is not None:
        change_context(g, e.child, ctx, tx, ignore=e)
    old = blk.aio_context
    blk.aio_context = ctx
    tx.on_abort(lambda: setattr(blk, "aio_context", old))


def remove_backend(g: BlockGraph, blk: BlockBackend, tx: Transaction) -> None:
    """blk_unref of a device's BlockBackend: detach, refresh the node's permissions."""
    e = blk.edge
    if blk in g.backends:
        g.backends.remove(blk)
        tx.on_abort(lambda: g.backends.append(blk))
    if e is not None:
        node = e.child
        g.detach(e, tx)
        if node.alive:
            g.unref(node, tx)
        if node.alive:
            g.refresh_perms([node], tx)


def node_writable(node: Node) -> bool:
    """blk_supports_write_perm."""
    return not node.read_only
