"""PCI addresses on the pc machine's ``pci.0`` (QEMU 7.2 hw/pci/pci.c
do_pci_register_device, set_pci_devfn).

The machine's own functions (host bridge, PIIX3, its IDE and PM functions)
are taken; a device gets the slot it asks for or the first free one.
"""

from __future__ import annotations

from qmpd.engine.devices.model import Device, Machine
from qmpd.engine.errors import BlockError

# The pc machine's own PCI functions (devfn -> name): host bridge, PIIX3, IDE, PM.
PC_PCI = {0: "i440FX", 8: "PIIX3", 9: "piix3-ide", 11: "PIIX4_PM"}


def parse_devfn(dev: Device, name: str, v: str) -> int:
    """set_pci_devfn: ``slot[.function]`` in hex."""
    slot_s, _, fn_s = v.partition(".")
    try:
        slot = int(slot_s, 16)
        fn = int(fn_s, 16) if fn_s else 0
    except ValueError:
        slot = fn = -1
    if not (0 <= slot <= 31 and 0 <= fn <= 7) or slot_s.startswith(("+", "-")):
        raise BlockError.of("pci.addr-invalid", driver=dev.driver, name=name, v=v)
    return slot << 3 | fn


def assign_slot(m: Machine, dev: Device, devfn: int | None) -> None:
    """do_pci_register_device on pci.0: the requested slot, or the first free one."""
    used = {d.devfn: d for d in m.devices if d.devfn is not None}
    if devfn is None:
        for cand in range(0, 256, 8):
            if cand not in PC_PCI and cand not in used:
                devfn = cand
                break
        else:
            raise BlockError.of("pci.pci-no-slot-function-available", driver=dev.driver)
    elif devfn in PC_PCI or devfn in used:
        other = used.get(devfn)
        name = PC_PCI.get(devfn) or (other.driver if other else "")
        oid = other.id if other is not None and other.id is not None else "(null)"
        raise BlockError.of("pci.pci-slot-function-not-available", slot=devfn >> 3,
                            function=devfn & 7, driver=dev.driver, name=name, oid=oid)
    dev.devfn = devfn
