"""SCSI addresses on a virtio-scsi bus (QEMU 7.2 hw/scsi/scsi-bus.c
scsi_qdev_realize): channel, target and LUN, picked or checked.
"""

from __future__ import annotations

from typing import Any

from qmpd.engine.devices.model import Device, Machine
from qmpd.engine.errors import BlockError

SCSI_MAX_TARGET = 255        # virtio-scsi's SCSIBusInfo
SCSI_MAX_LUN = 16383


def _signed32(v: int) -> int:
    return v - (1 << 32) if v >= 1 << 31 else v


def assign_address(m: Machine, dev: Device, values: dict[str, Any]) -> None:
    """scsi_qdev_realize: channel, target and LUN on the controller's bus."""
    ctrl = dev.controller
    assert ctrl is not None
    channel = values.get("channel", 0)
    # uint32 properties where 0xFFFFFFFF (-1) means "pick one"; the errors
    # print them as signed ints.
    sid = _signed32(values.get("scsi-id", 0xFFFFFFFF))
    lun = _signed32(values.get("lun", 0xFFFFFFFF))
    if channel > 0:
        raise BlockError.of("scsi.bad-scsi-channel-id", channel=_signed32(channel))
    if sid != -1 and not 0 <= sid <= SCSI_MAX_TARGET:
        raise BlockError.of("scsi.bad-scsi-device-id", sid=sid)
    if lun != -1 and not 0 <= lun <= SCSI_MAX_LUN:
        raise BlockError.of("scsi.bad-scsi-device-lun", lun=lun)
    taken = {d.scsi_addr: d for d in ctrl.children if d.scsi_addr is not None}
    if sid == -1:
        lun = 0 if lun == -1 else lun
        for cand in range(SCSI_MAX_TARGET + 1):
            if (cand, lun) not in taken:
                sid = cand
                break
        else:
            raise BlockError.of("scsi.no-free-target")
    elif lun == -1:
        for cand in range(SCSI_MAX_LUN + 1):
            if (sid, cand) not in taken:
                lun = cand
                break
        else:
            raise BlockError.of("scsi.no-free-lun")
    elif (sid, lun) in taken:
        other = taken[(sid, lun)]
        raise BlockError.of("scsi.lun-already-used",
                            other=other.id if other.id is not None else '(null)')
    dev.scsi_addr = (sid, lun)
