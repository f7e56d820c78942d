"""device_add, device_del, query-block and x-blockdev-set-iothread.

qmpd behaves as QEMU 7.2 started with ``-M pc -nodefaults`` as far as
devices go, whatever machine it was given: there is a PCI bus ``pci.0`` and
the IDE buses ``ide.0``/``ide.1`` (which do not take hotplugged devices).

device_add has no QAPI schema in QEMU ('gen': false).  Its arguments go
through QemuOpts first (every value becomes a string: numbers printed,
booleans ``on``/``off``, dicts and lists dropped), then qdev checks them in
the order of ``qdev_device_add_from_qdict``: driver, bus, hotplug, id, the
properties in the options dict's hash order, realize, plug.

device_del of a PCI device asks the guest (ACPI hotplug) and nothing happens
without one: QEMU 7.2 replies ``{}`` and sends no event.  A SCSI disk is
removed after the reply, then ``DEVICE_DELETED`` follows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qmpd.commands.errors import QMPError
from qmpd.commands.registry import command
from qmpd.engine import devices as dv
from qmpd.engine import queries
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import Transaction, id_wellformed
from qmpd.engine.node import Parent

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
# The pc machine's own PCI functions (devfn -> name): host bridge, PIIX3, IDE, PM.
PC_PCI = {0: "i440FX", 8: "PIIX3", 9: "piix3-ide", 11: "PIIX4_PM"}
MIN_BLOCK_SIZE = 512
MAX_BLOCK_SIZE = 2 * 1024 * 1024
SCSI_MAX_TARGET = 255        # virtio-scsi's SCSIBusInfo
SCSI_MAX_LUN = 16383
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
        raise QMPError(f"Parameter '{name}' expects integer")
    if not lo <= n <= hi:
        raise QMPError(f"Parameter '{name}' expects {qname}")
    return n


def _parse_devfn(dev: dv.Device, name: str, v: str) -> int:
    """set_pci_devfn: ``slot[.function]`` in hex."""
    slot_s, _, fn_s = v.partition(".")
    try:
        slot = int(slot_s, 16)
        fn = int(fn_s, 16) if fn_s else 0
    except ValueError:
        slot = fn = -1
    if not (0 <= slot <= 31 and 0 <= fn <= 7) or slot_s.startswith(("+", "-")):
        raise QMPError(f"Property '{dev.driver}.{name}' doesn't take value '{v}'")
    return slot << 3 | fn


def _parse_bool(name: str, v: str) -> bool:
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise QMPError(f"Parameter '{name}' expects 'on' or 'off'")


def _hash_order(keys: list[str]) -> list[str]:
    from qmpd.protocol.encode import key_order

    return list(key_order(keys))


def _defer(daemon: Any, fn: Callable[[], None]) -> None:
    """Run ``fn`` after the reply has gone out, as QEMU's deferred unplug."""
    try:
        import trio

        token = trio.lowlevel.current_trio_token()
    except (ImportError, RuntimeError):
        fn()
        return

    def run() -> None:
        try:
            fn()
        except Exception:   # pragma: no cover - never let a callback kill the loop
            import traceback

            traceback.print_exc()
    token.run_sync_soon(run)


@command("device_add")
def device_add(daemon: Any, args: dict) -> dict:
    g = daemon.graph
    m = dv.machine(g)
    # qemu_opts_create checks the id first; qdev_set_id finds duplicates.
    raw_id = args.get("id")
    dev_id = raw_id if isinstance(raw_id, str) else None
    if dev_id is not None:
        if not id_wellformed(dev_id):
            raise QMPError("Parameter 'id' expects an identifier")
        if m.by_id(dev_id) is not None:
            raise QMPError(f"Duplicate device ID '{dev_id}'")
    opts: dict[str, str] = {}
    for k, v in args.items():
        if k == "id":
            continue
        s = _qemu_opts_value(v)
        if s is not None:
            opts[k] = s
    driver = opts.get("driver")
    if driver is None:
        raise QMPError("Parameter 'driver' is missing")
    typename = ALIASES.get(driver, driver)
    if typename not in BUS_TYPES:
        raise QMPError(f"'{driver}' is not a valid device model name")
    bus_type = BUS_TYPES[typename]
    bus_path = opts.get("bus")
    controller: dv.Device | None = None
    bus_name: str
    if bus_path is not None:
        controller = m.scsi_bus(bus_path)
        found = "SCSI" if controller is not None else MACHINE_BUSES.get(bus_path)
        if found is None:
            raise QMPError(f"Bus '{bus_path}' not found")
        if found != bus_type:
            raise QMPError(f"Device '{typename}' can't go on {found} bus")
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
            raise QMPError(f"No '{bus_type}' bus found for device '{typename}'")
        bus_name = found_name
    if bus_type == "IDE":
        raise QMPError(f"Bus '{bus_name}' does not support hotplugging")
    # qdev_set_id: an anonymous device takes the next number even if it fails later.
    if dev_id is None:
        path = f"/machine/peripheral-anon/device[{m.anon_count}]"
        m.anon_count += 1
    else:
        path = f"/machine/peripheral/{dev_id}"
    dev = dv.Device(typename, dev_id, path, controller=controller)
    props = {k: v for k, v in opts.items() if k not in ("driver", "bus")}
    tx = Transaction()
    try:
        _realize(daemon, m, dev, props, tx)
    except BlockError as e:
        tx.abort()
        raise QMPError(e.desc, e.cls) from None
    except QMPError:
        tx.abort()
        raise
    tx.commit()
    m.devices.append(dev)
    if controller is not None:
        controller.children.append(dev)
    return {}


def _realize(daemon: Any, m: dv.Machine, dev: dv.Device, props: dict[str, str],
             tx: Transaction) -> None:
    g = daemon.graph
    known = PROPS.get(dev.driver, {})
    values: dict[str, Any] = {}
    iothread_aware = dev.driver in ("scsi-hd", "scsi-cd")
    for key in _hash_order(list(props)):
        kind = known.get(key)
        if kind is None:
            raise QMPError(f"Property '{dev.driver}.{key}' not found")
        v = props[key]
        if kind == BOOL:
            values[key] = _parse_bool(key, v)
        elif kind in ENUMS:
            if v not in ENUMS[kind]:
                raise QMPError(f"Parameter '{key}' does not accept value '{v}'")
            values[key] = v
        elif kind in INTS:
            values[key] = _parse_int(key, kind, v)
        elif kind == BLOCKSIZE:
            n = _parse_int(key, "uint64", v)
            # set_blocksize names the device by its id ("" without one).
            if not MIN_BLOCK_SIZE <= n <= MAX_BLOCK_SIZE:
                raise QMPError(f"Property {dev.id or ''}.{key} doesn't take value {n} "
                               f"(minimum: {MIN_BLOCK_SIZE}, maximum: {MAX_BLOCK_SIZE})")
            if n & (n - 1):
                raise QMPError(f"Property {dev.id or ''}.{key} doesn't take value '{n}', "
                               "it's not a power of 2")
            values[key] = n
        elif kind == PCI_ADDR:
            values[key] = _parse_devfn(dev, key, v)
        elif kind == LINK:
            if v in g.throttle_groups:
                raise QMPError(f"Invalid parameter type for '{key}', expected: iothread")
            if v not in g.iothreads:
                raise QMPError(f"Device '{v}' not found", "DeviceNotFound")
            values[key] = v
        elif key == "drive":
            if not v:
                continue
            node = g.nodes.get(v)
            if node is None:
                inner = "virtio-blk-device" if dev.driver == "virtio-blk-pci" else dev.driver
                raise QMPError(f"Property '{inner}.drive' can't find value '{v}'")
            dv.create_backend(g, dev, node, tx, iothread_aware)
        else:
            values[key] = v
    if dev.controller is None:
        _pci_slot(m, dev, values.get("addr"))
    else:
        _scsi_address(m, dev, values)
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
        raise QMPError("drive property not set")
    edge = blk.edge
    assert edge is not None
    read_only = not dv.node_writable(edge.child)
    share_rw = bool(values.get("share-rw", False))
    if dev.driver == "virtio-blk-pci":
        if values.get("num-queues") == 0:
            raise QMPError("num-queues property must be larger than 0")
        dv.apply_perms(g, blk, read_only, True, share_rw, tx)
        _blocksizes(values)
    else:
        _blocksizes(values)
        dv.apply_perms(g, blk, read_only, True, share_rw, tx)
    if values.get("write-cache") == "off":
        blk.write_cache = False
    if dev.controller is not None:
        # virtio_scsi_hotplug moves the disk into the controller's context:
        # its iothread, or the main context (virtio_scsi_dataplane_setup).
        dv.set_backend_context(g, blk, dev.controller.iothread or dv.MAIN, tx)


def _blocksizes(values: dict[str, Any]) -> None:
    """blkconf_blocksizes: the backends qmpd has probe as 512-byte sectors."""
    log = values.get("logical_block_size") or 512
    phys = values.get("physical_block_size") or 512
    if log > phys:
        raise QMPError("logical_block_size > physical_block_size not supported")
    if values.get("min_io_size", 0) % log:
        raise QMPError("min_io_size must be a multiple of logical_block_size")
    if values.get("opt_io_size", 0) % log:
        raise QMPError("opt_io_size must be a multiple of logical_block_size")


def _pci_slot(m: dv.Machine, dev: dv.Device, devfn: int | None) -> None:
    """do_pci_register_device on pci.0: the requested slot, or the first free one."""
    used = {d.devfn: d for d in m.devices if d.devfn is not None}
    if devfn is None:
        for cand in range(0, 256, 8):
            if cand not in PC_PCI and cand not in used:
                devfn = cand
                break
        else:
            raise QMPError(f"PCI: no slot/function available for {dev.driver}, "
                           "all in use or reserved")
    elif devfn in PC_PCI or devfn in used:
        other = used.get(devfn)
        name = PC_PCI.get(devfn) or (other.driver if other else "")
        oid = other.id if other is not None and other.id is not None else "(null)"
        raise QMPError(f"PCI: slot {devfn >> 3} function {devfn & 7} not available for "
                       f"{dev.driver}, in use by {name},id={oid}")
    dev.devfn = devfn


def _signed32(v: int) -> int:
    return v - (1 << 32) if v >= 1 << 31 else v


def _scsi_address(m: dv.Machine, dev: dv.Device, values: dict[str, Any]) -> None:
    """scsi_qdev_realize: channel, target and LUN on the controller's bus."""
    ctrl = dev.controller
    assert ctrl is not None
    channel = values.get("channel", 0)
    # uint32 properties where 0xFFFFFFFF (-1) means "pick one"; the errors
    # print them as signed ints.
    sid = _signed32(values.get("scsi-id", 0xFFFFFFFF))
    lun = _signed32(values.get("lun", 0xFFFFFFFF))
    if channel > 0:
        raise QMPError(f"bad scsi channel id: {_signed32(channel)}")
    if sid != -1 and not 0 <= sid <= SCSI_MAX_TARGET:
        raise QMPError(f"bad scsi device id: {sid}")
    if lun != -1 and not 0 <= lun <= SCSI_MAX_LUN:
        raise QMPError(f"bad scsi device lun: {lun}")
    taken = {d.scsi_addr: d for d in ctrl.children if d.scsi_addr is not None}
    if sid == -1:
        lun = 0 if lun == -1 else lun
        for cand in range(SCSI_MAX_TARGET + 1):
            if (cand, lun) not in taken:
                sid = cand
                break
        else:
            raise QMPError("no free target")
    elif lun == -1:
        for cand in range(SCSI_MAX_LUN + 1):
            if (sid, cand) not in taken:
                lun = cand
                break
        else:
            raise QMPError("no free lun")
    elif (sid, lun) in taken:
        other = taken[(sid, lun)]
        raise QMPError(f"lun already used by '{other.id if other.id is not None else '(null)'}'")
    dev.scsi_addr = (sid, lun)


@command("device_del")
def device_del(daemon: Any, args: dict) -> dict:
    did = args["id"]
    g = daemon.graph
    m = dv.machine(g)
    dev = m.resolve(did)
    if dev is None:
        raise QMPError(f"Device '{did}' not found", "DeviceNotFound")
    if dev.controller is None:
        # ACPI PCI hotplug: the request goes to the guest, which never answers.
        dev.unplug_requested = True
        return {}
    if dev.unplug_requested:
        return {}
    dev.unplug_requested = True

    def unplug() -> None:
        if dev not in m.devices or g is not daemon.graph:
            return
        tx = Transaction()
        if dev.backend is not None:
            dv.remove_backend(g, dev.backend, tx)
        tx.commit()
        m.devices.remove(dev)
        if dev.controller is not None and dev in dev.controller.children:
            dev.controller.children.remove(dev)
        data: dict[str, Any] = {}
        if dev.id is not None:
            data["device"] = dev.id
        data["path"] = dev.path
        daemon.emit("DEVICE_DELETED", data)
    _defer(daemon, unplug)
    return {}


@command("query-block")
def query_block(daemon: Any, args: dict) -> list:
    g = daemon.graph
    out = []
    with g.querying():
        for b in g.backends:
            if not isinstance(b, dv.BlockBackend):
                continue
            info: dict[str, Any] = {"device": "", "qdev": b.qdev_path, "type": "unknown",
                                    "removable": False, "locked": False}
            e = b.edge
            if e is not None:
                ins = queries.block_device_info(g, e.child, False)
                ins["cache"] = {**ins["cache"], "writeback": b.write_cache}
                info["inserted"] = ins
            info["io-status"] = "ok"
            out.append(info)
    return out


@command("x-blockdev-set-iothread", features=("unstable",))
def x_blockdev_set_iothread(daemon: Any, args: dict) -> dict:
    g = daemon.graph
    name = args["node-name"]
    node = g.nodes.get(name)
    if node is None:
        raise QMPError(f"Failed to find node with node-name='{name}'")
    # bdrv_has_blk: only a BlockBackend parent counts, not parent nodes.
    if not args.get("force", False) and any(isinstance(e.parent, Parent)
                                            for e in node.parents):
        raise QMPError(f"Node {name} is associated with a BlockBackend and could be in use "
                       "(use force=true to override this check)")
    it = args["iothread"]
    if isinstance(it, str):
        if it not in g.iothreads:
            raise QMPError(f"Cannot find iothread {it}")
        ctx = it
    else:
        ctx = dv.MAIN
    tx = Transaction()
    try:
        dv.change_context(g, node, ctx, tx)
    except BlockError as e:
        tx.abort()
        raise QMPError(e.desc, e.cls) from None
    tx.commit()
    return {}


def qdev_backend(daemon: Any, did: str) -> tuple[dv.BlockBackend | None, str]:
    """blk_by_qdev_id for HMP ``qemu-io -d``: the BlockBackend or QEMU's error."""
    m = dv.machine(daemon.graph)
    dev = m.by_id(did)
    if dev is None:
        return None, f"Device '{did}' not found"
    if dev.backend is None or dev.driver == "virtio-blk-pci":
        # virtio-blk-pci's BlockBackend belongs to its inner virtio-blk-device.
        return None, "Device does not have a block device backend"
    return dev.backend, ""


def hmp_info_block(daemon: Any) -> str:
    """HMP ``info block`` (print_block_info for every BlockBackend), ``\\n`` line ends."""
    parts = []
    for info in query_block(daemon, {}):
        ins = info.get("inserted")
        lines = []
        if ins is not None:
            flags = (", read-only" if ins["ro"] else "") + (", encrypted" if ins["encrypted"] else "")
            lines.append(f"{ins['node-name']}: {ins['file']} ({ins['drv']}{flags})")
        else:
            lines.append(f"{info['qdev']}: [not inserted]")
        lines.append(f"    Attached to:      {info['qdev']}")
        if ins is not None:
            c = ins["cache"]
            lines.append("    Cache mode:       " + ("writeback" if c["writeback"] else "writethrough")
                         + (", direct" if c["direct"] else "")
                         + (", ignore flushes" if c["no-flush"] else ""))
            if "backing_file" in ins:
                lines.append(f"    Backing file:     {ins['backing_file']} "
                             f"(chain depth: {ins['backing_file_depth']})")
            if ins["detect_zeroes"] != "off":
                lines.append(f"    Detect zeroes:    {ins['detect_zeroes']}")
        parts.append("".join(line + "\n" for line in lines))
    return "\n".join(parts)
