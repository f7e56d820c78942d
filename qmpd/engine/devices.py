"""Guest devices as users of the block graph, and AioContexts.

qmpd models as much of a ``-M pc -nodefaults`` machine as block devices need
(QEMU 7.2 hw/core/qdev*.c, softmmu/qdev-monitor.c, hw/block, hw/scsi):

* :class:`Device`: a ``virtio-blk-pci``, ``virtio-scsi-pci`` or ``scsi-hd``
  with its QOM path, its bus and, for disks, its :class:`BlockBackend`;
* :class:`BlockBackend`: the device's BlockBackend, a non-node parent of kind
  ``device-backend`` attached to its node by a ``root`` edge with the
  permissions ``blkconf_apply_backend_options`` takes;
* :class:`Machine`: the devices, the anonymous-device counter and the SCSI
  buses, stored on the :class:`BlockGraph` so that a graph reset drops it;
* AioContext moves (``bdrv_try_change_aio_context``): a node's whole connected
  component moves at once, and a device's BlockBackend refuses to be moved by
  anyone but its device (``Cannot change iothread of active block backend``).

A context is ``"main"`` or the id of an iothread object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qmpd.engine import perms
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph, Transaction
from qmpd.engine.node import Edge, Node, Parent

MAIN = "main"
ACTIVE_BB = "Cannot change iothread of active block backend"


class BlockBackend(Parent):
    """The BlockBackend of a device: unnamed, so it never clashes with node names."""

    def __init__(self, device: Device, desc: str) -> None:
        super().__init__("device-backend", "", desc)
        self.device = device
        self.aio_context = MAIN
        self.write_cache = True

    @property
    def qdev_path(self) -> str:
        """The device the BlockBackend is attached to: its id, else its QOM path."""
        return self.device.backend_owner_id()

    def graph_name(self) -> str:
        """x-debug-query-block-graph: the BB name, else the attached device's id or path."""
        return self.name or self.qdev_path

    @property
    def edge(self) -> Edge | None:
        return self.children[0] if self.children else None


@dataclass
class Device:
    """One user-created device (``/machine/peripheral[-anon]/...``)."""

    driver: str
    id: str | None
    path: str                                  # QOM path of the device itself
    iothread: str | None = None                # virtio-scsi-pci / virtio-blk-pci
    bus_name: str | None = None                # the SCSI bus a controller provides
    controller: Device | None = None           # scsi-hd: its virtio-scsi-pci
    backend: BlockBackend | None = None
    children: list[Device] = field(default_factory=list)
    unplug_requested: bool = False
    devfn: int | None = None                   # PCI slot << 3 | function on pci.0
    scsi_addr: tuple[int, int] | None = None   # (target, lun) on its SCSI bus

    def backend_owner_path(self) -> str:
        # virtio-blk-pci's BlockBackend belongs to its inner virtio-blk-device,
        # which has no id: QEMU shows that device's QOM path.
        if self.driver == "virtio-blk-pci":
            return self.path + "/virtio-backend"
        return self.path

    def backend_owner_id(self) -> str:
        if self.driver == "virtio-blk-pci":
            return self.backend_owner_path()
        return self.id if self.id is not None else self.path


class Machine:
    """The pc machine's user-created devices."""

    def __init__(self) -> None:
        self.devices: list[Device] = []        # creation order
        self.anon_count = 0                    # /machine/peripheral-anon/device[N]
        self.scsi_auto_ids = 0                 # automatic SCSI bus names scsi.N

    def by_id(self, did: str) -> Device | None:
        for d in self.devices:
            if d.id == did:
                return d
        return None

    def resolve(self, path: str) -> Device | None:
        """object_resolve_path_at(/machine/peripheral, path)."""
        if path.startswith("/"):
            for d in self.devices:
                if d.path == path:
                    return d
            return None
        return self.by_id(path)

    def scsi_bus(self, name: str) -> Device | None:
        for d in self.devices:
            if d.bus_name == name:
                return d
        return None

    def first_scsi_bus(self) -> Device | None:
        # qbus_find_recursive walks a bus's children newest first.
        for d in reversed(self.devices):
            if d.bus_name is not None:
                return d
        return None


def machine(g: BlockGraph) -> Machine:
    m = getattr(g, "_machine", None)
    if m is None:
        m = Machine()
        g._machine = m  # type: ignore[attr-defined]
    return m


# ----------------------------------------------------------------------
# AioContexts
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


# ----------------------------------------------------------------------
# BlockBackends of devices
def device_perms(read_only: bool, resizable: bool, share_rw: bool) -> tuple[int, int]:
    """blkconf_apply_backend_options."""
    perm = perms.CONSISTENT_READ
    if not read_only:
        perm |= perms.WRITE
    shared = perms.CONSISTENT_READ | perms.WRITE_UNCHANGED
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


__all__ = ["BlockBackend", "Device", "Machine", "machine", "change_context", "attach_context",
           "create_backend", "apply_perms", "set_backend_context", "remove_backend",
           "device_perms", "ACTIVE_BB", "MAIN"]
