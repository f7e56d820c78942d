"""The guest devices of qmpd's machine, as data (QEMU 7.2 hw/core/qdev*.c).

* :class:`Device`: a ``virtio-blk-pci``, ``virtio-scsi-pci`` or ``scsi-hd``
  with its QOM path, its bus and, for disks, its :class:`BlockBackend`;
* :class:`BlockBackend`: the device's BlockBackend, a non-node parent of kind
  ``device-backend`` attached to its node by a ``root`` edge;
* :class:`Machine`: the devices, the anonymous-device counter and the SCSI
  buses; the :class:`~qmpd.engine.graph.BlockGraph` owns one
  (``graph.machine``), so that a new graph starts with an empty machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from qmpd.engine.aio import MAIN
from qmpd.engine.blockacct import BlockAcctStats
from qmpd.engine.node import Edge, Parent


class BlockBackend(Parent):
    """The BlockBackend of a device, or of a ``-drive`` (named by its id, with
    or without a device attached)."""

    def __init__(self, device: Device | None, desc: str, name: str = "") -> None:
        super().__init__("device-backend", name, desc)
        self.device = device
        self.aio_context = MAIN
        self.write_cache = True
        # What its user accounted (query-blockstats).
        self.stats = BlockAcctStats()
        # A -drive's interface and unit (DriveInfo's type and unit), else None.
        self.drive_slot: tuple[str, int] | None = None

    @property
    def qdev_path(self) -> str:
        """The device the BlockBackend is attached to: its id, else its QOM path."""
        return self.device.backend_owner_id() if self.device is not None else ""

    def graph_name(self) -> str:
        """x-debug-query-block-graph: the BB name, else the attached device's id or path."""
        return self.name or self.qdev_path

    def user_name(self) -> str:
        # blk_root_get_parent_desc: the BB name, else blk_get_attached_dev_id
        return self.name or self.qdev_path or "a block device"

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
