"""device_add and device_del on the pc machine (QEMU 7.2 softmmu/qdev-monitor.c,
hw/core/qdev-properties*.c, hw/block, hw/scsi).

qmpd behaves as QEMU 7.2 started with ``-M pc -nodefaults`` as far as
devices go, whatever machine it was given: there is a PCI bus ``pci.0`` and
the IDE buses ``ide.0``/``ide.1`` (which do not take hotplugged devices).

device_add has no QAPI schema in QEMU ('gen': false).  Its arguments go
through QemuOpts first (every value becomes a string: numbers printed,
booleans ``on``/``off``, dicts and lists dropped), then qdev checks them in
the order of ``qdev_device_add_from_qdict``: driver, bus, hotplug, id, the
properties in the options dict's hash order, realize, plug.  PCI slots are
:mod:`.pci`'s, SCSI addresses :mod:`.scsi`'s.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from qmpd.engine.aio import MAIN
from qmpd.engine.devices.backends import (
    apply_perms,
    create_backend,
    node_writable,
    remove_backend,
    set_backend_context,
)
from qmpd.engine.devices.model import BlockBackend, Device, Machine
from qmpd.engine.devices.pci import assign_slot, parse_devfn
from qmpd.engine.devices.scsi import assign_address
from qmpd.engine.errors import BlockError
from qmpd.engine.node import id_wellformed
from qmpd.engine.transaction import Transaction
from qmpd.qobject import key_order

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph

# Device models and their aliases (qdev_alias_table for x86).
ALIASES = {"virtio-blk": "virtio-blk-pci", "virtio-scsi": "virtio-scsi-pci"}
# Known user-creatable device types with the bus they plug into.
BUS_TYPES = {"virtio-blk-pci": "PCI", "virtio-scsi-pci": "PCI", "scsi-hd": "SCSI",
             "ide-hd": "IDE", "ide-cd": "IDE",
             "virtio-blk-device": "virtio-bus", "virtio-scsi-device": "virtio-bus"}
MACHINE_BUSES = {"pci.0": "PCI", "ide.0": "IDE", "ide.1": "IDE"}

BOOL = "bool"
STR = "str"
ONOFFAUTO = "OnOffAuto"
ON_ERROR = "BlockdevOnError"
LINK = "link"
PCI_ADDR = "pci-devfn"
BLOCKSIZE = "blocksize"
# Integer property types: (QEMU's name in range errors, minimum, maximum).
INTS = {"int32": ("int32_t", -(1 << 31), (1 << 31) - 1), "uint8": ("uint8_t", 0, 255),
        "uint16": ("uint16_t", 0, 0xFFFF), "uint32": ("uint32_t", 0, 0xFFFFFFFF),
        "uint64": ("uint64_t", 0, (1 << 64) - 1)}
ENUMS = {ONOFFAUTO: ("on", "off", "auto"),
         ON_ERROR: ("report", "ignore", "enospc", "stop", "auto")}
# Properties qmpd knows per device type (the ones without effect are accepted
# so that common command lines work).
_COMMON_BLK = {"drive": STR, "share-rw": BOOL, "write-cache": ONOFFAUTO, "serial": STR,
               "logical_block_size": BLOCKSIZE, "physical_block_size": BLOCKSIZE,
               "min_io_size": "uint32", "opt_io_size": "uint32",
               "discard_granularity": "uint32", "bootindex": "int32",
               "rerror": ON_ERROR, "werror": ON_ERROR, "account-invalid": ONOFFAUTO,
               "account-failed": ONOFFAUTO}
_PCI = {"addr": PCI_ADDR, "multifunction": BOOL, "ioeventfd": BOOL, "vectors": "uint32"}
PROPS: dict[str, dict[str, str]] = {
    "virtio-blk-pci": {**_COMMON_BLK, **_PCI, "iothread": LINK, "num-queues": "uint16",
                       "queue-size": "uint16", "config-wce": BOOL, "seg-max-adjust": BOOL,
                       "discard": BOOL, "write-zeroes": BOOL, "cyls": "uint32",
                       "heads": "uint32", "secs": "uint32"},
    "virtio-scsi-pci": {**_PCI, "iothread": LINK, "num_queues": "uint32",
                        "virtqueue_size": "uint32", "max_sectors": "uint32",
                        "cmd_per_lun": "uint32", "seg_max_adjust": BOOL, "hotplug": BOOL,
                        "param_change": BOOL},
    "scsi-hd": {**_COMMON_BLK, "scsi-id": "uint32", "lun": "uint32", "channel": "uint32",
                "ver": STR, "vendor": STR, "product": STR, "device_id": STR, "wwn": "uint64",
                "removable": BOOL, "dpofua": BOOL, "rotation_rate": "uint16"},
}
MIN_BLOCK_SIZE = 512
MAX_BLOCK_SIZE = 2 * 1024 * 1024
_TRUE = ("on", "yes", "true", "y")
_FALSE = ("off", "no", "false", "n")


def _qemu_opts_value(v: Any) -> str | None:
    """qemu_opts_from_qdict_entry: the string QemuOpts keeps, or None (dropped)."""
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return v
    return None


def _strto_int(s: str, unsigned: bool) -> int | None:
    """qemu_strtoi64 / qemu_strtou64 with base 0 (a negative unsigned value wraps)."""
    t = s.lstrip()
    neg = t.startswith("-")
    if t[:1] in "+-":
        t = t[1:]
    try:
        if t[:2].lower() == "0x":
            v = int(t[2:], 16)
        elif len(t) > 1 and t[0] == "0":
            v = int(t[1:], 8)
        else:
            v = int(t, 10) if t.isdigit() else None  # type: ignore[assignment]
    except ValueError:
        return None
    if v is None:
        return None
    if neg:
        v = -v
        if unsigned:
            v &= (1 << 64) - 1
    return v


def _parse_int(name: str, kind: str, v: str) -> int:
    qname, lo, hi = INTS[kind]
    n = _strto_int(v, kind.startswith("u"))
    if n is None:
        raise BlockError.of("qdev.parameter-expects-integer", name=name,
                            visitor_type="uint64" if kind.startswith("u") else "int64")
    if not lo <= n <= hi:
        raise BlockError.of("qdev.parameter-expects", name=name, qname=qname)
    return n


_SIZE = re.compile(r"(\d+(?:\.\d*)?)([BKMGTPE]?)", re.IGNORECASE)
_SIZE_SHIFT = {"": 0, "B": 0, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60}


def _parse_size(name: str, v: str) -> int:
    """A size property's text (visit_type_size: qemu_strtosz, ``4k`` too)."""
    m = _SIZE.fullmatch(v)
    n = None
    if m is not None:
        value = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
        n = int(value * (1 << _SIZE_SHIFT[m.group(2).upper()]))
        if value != int(value) and not m.group(2):
            n = None    # a fraction needs a unit
    if n is None or n >= 1 << 64:
        raise BlockError.of("qdev.parameter-expects-size", name=name)
    return n


def _parse_bool(name: str, v: str) -> bool:
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise BlockError.of("qdev.parameter-expects-off", name=name)


def _typed_value(key: str, kind: str | None, v: Any) -> str:
    """A JSON property value through the QObject input visitor (releases whose
    profile has ``device_props_typed``: qdev_device_add_from_qdict with
    from_json), as the text the property parsers below take.  The JSON type
    must be the property's own: "on" is no boolean and "4096" no integer."""
    def wrong(expected: str) -> BlockError:
        return BlockError(f"Invalid parameter type for '{key}', expected: {expected}")

    if kind == BOOL:
        if not isinstance(v, bool):
            raise wrong("boolean")
        return "on" if v else "off"
    if kind in INTS or kind == BLOCKSIZE:
        if isinstance(v, bool) or not isinstance(v, int):
            if kind in INTS and not kind.startswith("u"):
                raise wrong("integer")
            # qobject_input_type_uint64: not a number it can take
            raise BlockError.of("qdev.parameter-expects", name=key, qname="uint64")
        if kind in INTS and kind.startswith("u") and v < 0:
            v &= (1 << 64) - 1      # negative int64 accepted "for backward compatibility"
        return str(v)
    if kind == PCI_ADDR and isinstance(v, int) and not isinstance(v, bool):
        # set_pci_devfn takes an int32 devfn as well as "slot.fn"
        return f"{v >> 3:x}.{v & 7:x}" if 0 <= v < 256 else "-1"
    if not isinstance(v, str):
        raise wrong("string")
    return v


def _hash_order(keys: list[str]) -> list[str]:
    return list(key_order(keys))


def device_add(g: BlockGraph, args: dict, typed: bool | None = None) -> Device:
    """device_add: the new device, realized and plugged, or BlockError.

    ``typed``: the properties are JSON values for the QObject input visitor
    (a JSON ``-device``), or False: QemuOpts strings, parsed as text (a
    ``-device driver,key=value``).  None: as the release's QMP device_add
    takes them (the profile's ``device_props_typed``)."""
    m = g.machine
    # QemuOpts (7.2's device_add) or the QObject visitor (typed, ids taken as they are).
    if typed is None:
        typed = g.profile.device_props_typed
    raw_id = args.get("id")
    dev_id = raw_id if isinstance(raw_id, str) else None
    if dev_id is not None and not typed:
        # qemu_opts_create checks the id first; qdev_set_id finds duplicates.
        if not id_wellformed(dev_id):
            err = BlockError.of("object.parameter-id-expects-identifier")
            # what the command line prints under it (QMP drops hints)
            err.hint = "Identifiers consist of letters, digits, '-', '.', '_', starting with a letter."
            raise err
        if m.by_id(dev_id) is not None:
            raise BlockError.of("qdev.duplicate-device-id", dev_id=dev_id)
    opts: dict[str, Any] = {}
    for k, v in args.items():
        if k == "id":
            continue
        if typed:
            # qdict_get_try_str for driver and bus; properties keep their JSON value
            if k not in ("driver", "bus") or isinstance(v, str):
                opts[k] = v
            continue
        s = _qemu_opts_value(v)
        if s is not None:
            opts[k] = s
    driver = opts.get("driver")
    if driver is None:
        raise BlockError.of("qdev.parameter-driver-missing")
    typename = ALIASES.get(driver, driver)
    if typename not in BUS_TYPES:
        raise BlockError.of("qdev.not-valid-device-model-name", driver=driver)
    bus_type = BUS_TYPES[typename]
    bus_path = opts.get("bus")
    controller: Device | None = None
    bus_name: str
    if bus_path is not None:
        controller = m.scsi_bus(bus_path)
        found = "SCSI" if controller is not None else MACHINE_BUSES.get(bus_path)
        if found is None:
            raise BlockError.of("qdev.bus-not-found", bus_path=bus_path)
        if found != bus_type:
            raise BlockError.of("qdev.device-go-bus", typename=typename, found=found)
        bus_name = bus_path
    else:
        if bus_type == "SCSI":
            controller = m.first_scsi_bus()
            found_name = controller.bus_name if controller is not None else None
        elif bus_type == "IDE":
            found_name = "ide.1"    # qbus_find_recursive meets ide.1 first
        elif bus_type == "PCI":
            found_name = "pci.0"
        else:
            found_name = None
        if found_name is None:
            raise BlockError.of("qdev.no-bus-found-device", bus_type=bus_type, typename=typename)
        bus_name = found_name
    if bus_type == "IDE":
        raise BlockError.of("qdev.bus-does-not-support-hotplugging", bus_name=bus_name)
    if typed and dev_id is not None and m.by_id(dev_id) is not None:
        raise BlockError.of("qdev.duplicate-device-id", dev_id=dev_id)     # qdev_set_id
    # qdev_set_id: an anonymous device takes the next number even if it fails later.
    if dev_id is None:
        path = f"/machine/peripheral-anon/device[{m.anon_count}]"
        m.anon_count += 1
    else:
        path = f"/machine/peripheral/{dev_id}"
    dev = Device(typename, dev_id, path, controller=controller)
    props = {k: v for k, v in opts.items() if k not in ("driver", "bus")}
    tx = Transaction()
    try:
        _realize(g, m, dev, props, tx, typed)
    except BlockError:
        tx.abort()
        raise
    tx.commit()
    m.devices.append(dev)
    if controller is not None:
        controller.children.append(dev)
    return dev


def _realize(g: BlockGraph, m: Machine, dev: Device, props: dict[str, Any],
             tx: Transaction, typed: bool = False) -> None:
    known = PROPS.get(dev.driver, {})
    values: dict[str, Any] = {}
    iothread_aware = dev.driver in ("scsi-hd", "scsi-cd")
    for key in _hash_order(list(props)):
        kind = known.get(key)
        if kind is None:
            raise BlockError.of("qdev.property-not-found", driver=dev.driver, key=key)
        v = _typed_value(key, kind, props[key]) if typed else props[key]
        if kind == BOOL:
            values[key] = _parse_bool(key, v)
        elif kind in ENUMS:
            if v not in ENUMS[kind]:
                raise BlockError.of("qdev.parameter-does-not-accept-value", key=key, v=v)
            values[key] = v
        elif kind in INTS:
            values[key] = _parse_int(key, kind, v)
        elif kind == BLOCKSIZE:
            n = _parse_size(key, v)
            # set_blocksize names the device by its id ("" without one).
            if not MIN_BLOCK_SIZE <= n <= MAX_BLOCK_SIZE:
                raise BlockError.of("qdev.blocksize-out-of-range", device=dev.id or '',
                                    key=key, n=n, min=MIN_BLOCK_SIZE,
                                    max=MAX_BLOCK_SIZE)
            if n & (n - 1):
                raise BlockError.of("qdev.blocksize-not-power-of-2", device=dev.id or '',
                                    key=key, n=n)
            values[key] = n
        elif kind == PCI_ADDR:
            values[key] = parse_devfn(dev, key, v)
        elif kind == LINK:
            if v == "":
                continue    # object_set_link_property: an empty path sets no link
            if v in g.throttle_groups:
                raise BlockError.of("qdev.invalid-parameter-type-expected-iothread", key=key)
            if v not in g.iothreads:
                raise BlockError.of("device.not-found", "DeviceNotFound", id=v)
            values[key] = v
        elif key == "drive":
            if not v:
                continue
            legacy = g.named_backend(v)
            if isinstance(legacy, BlockBackend) and legacy.device is None \
                    and legacy.edge is not None:
                # A -drive if=none: the device takes that BlockBackend.
                legacy.device = dev
                dev.backend = legacy
                tx.on_abort(lambda b=legacy: setattr(b, "device", None))
                continue
            node = g.nodes.get(v)
            if node is None:
                inner = "virtio-blk-device" if dev.driver == "virtio-blk-pci" else dev.driver
                raise BlockError.of("qdev.property-drive-find-value", inner=inner, v=v)
            create_backend(g, dev, node, tx, iothread_aware)
        else:
            values[key] = v
    if dev.controller is None:
        assign_slot(m, dev, values.get("addr"))
    else:
        assign_address(m, dev, values)
    if dev.driver == "virtio-scsi-pci":
        dev.iothread = values.get("iothread")
        if dev.id is not None:
            dev.bus_name = f"{dev.id}.0"
        else:
            dev.bus_name = f"scsi.{m.scsi_auto_ids}"
            m.scsi_auto_ids += 1
        return
    if dev.driver == "virtio-blk-pci":
        dev.iothread = values.get("iothread")
    blk = dev.backend
    if blk is None:
        raise BlockError.of("qdev.drive-property-not-set")
    edge = blk.edge
    assert edge is not None
    read_only = not node_writable(edge.child)
    share_rw = bool(values.get("share-rw", False))
    if dev.driver == "virtio-blk-pci":
        if values.get("num-queues") == 0:
            raise BlockError.of("qdev.num-queues-property-must-larger")
        apply_perms(g, blk, read_only, True, share_rw, tx)
        _blocksizes(values)
    else:
        _blocksizes(values)
        apply_perms(g, blk, read_only, True, share_rw, tx)
    if values.get("write-cache") == "off":
        blk.write_cache = False
    if dev.controller is not None:
        if not g.profile.scsi_hotplug_context_best_effort:
            # virtio_scsi_hotplug moves the disk into the controller's context:
            # its iothread, or the main context (virtio_scsi_dataplane_setup).
            set_backend_context(g, blk, dev.controller.iothread or MAIN, tx)
        elif dev.controller.iothread is not None:
            # It tries to, for an iothread controller only, and lets a
            # failure pass: the disk works from its own context.
            attempt = Transaction()
            try:
                set_backend_context(g, blk, dev.controller.iothread, attempt)
            except BlockError:
                attempt.abort()
            else:
                tx.absorb(attempt)


def _blocksizes(values: dict[str, Any]) -> None:
    """blkconf_blocksizes: the backends qmpd has probe as 512-byte sectors."""
    log = values.get("logical_block_size") or 512
    phys = values.get("physical_block_size") or 512
    if log > phys:
        raise BlockError.of("qdev.logical-block-size-physical-block")
    if values.get("min_io_size", 0) % log:
        raise BlockError.of("qdev.min-io-size-must-multiple")
    if values.get("opt_io_size", 0) % log:
        raise BlockError.of("qdev.opt-io-size-must-multiple")


def request_unplug(g: BlockGraph, did: str) -> Device | None:
    """device_del: the device to unplug once the reply is out, or None.

    A PCI device's unplug is a request to the guest (ACPI hotplug), which
    never answers: nothing more happens.  A SCSI disk is unplugged after the
    reply (:func:`unplug`); asking again while that is pending does nothing.
    """
    dev = g.machine.resolve(did)
    if dev is None:
        raise BlockError.of("device.not-found", "DeviceNotFound", id=did)
    if dev.controller is None:
        dev.unplug_requested = True
        return None
    if dev.unplug_requested:
        return None
    dev.unplug_requested = True
    return dev


def unplug(g: BlockGraph, dev: Device) -> dict[str, Any] | None:
    """The deferred unplug of ``dev``: the DEVICE_DELETED data, or None when the
    device is gone already."""
    m = g.machine
    if dev not in m.devices:
        return None
    tx = Transaction()
    if dev.backend is not None:
        remove_backend(g, dev.backend, tx)
    tx.commit()
    m.devices.remove(dev)
    if dev.controller is not None and dev in dev.controller.children:
        dev.controller.children.remove(dev)
    data: dict[str, Any] = {}
    if dev.id is not None:
        data["device"] = dev.id
    data["path"] = dev.path
    return data
