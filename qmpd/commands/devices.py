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
INT = "int"
ONOFFAUTO = "OnOffAuto"
LINK = "link"
# Properties qmpd knows per device type (the ones without effect are accepted
# so that common command lines work).
_COMMON_BLK = {"drive": STR, "share-rw": BOOL, "write-cache": ONOFFAUTO, "serial": STR,
               "logical_block_size": INT, "physical_block_size": INT, "min_io_size": INT,
               "opt_io_size": INT, "discard_granularity": INT, "bootindex": INT,
               "rerror": STR, "werror": STR, "account-invalid": ONOFFAUTO,
               "account-failed": ONOFFAUTO}
PROPS: dict[str, dict[str, str]] = {
    "virtio-blk-pci": {**_COMMON_BLK, "iothread": LINK, "num-queues": INT, "queue-size": INT,
                       "config-wce": BOOL, "addr": STR, "multifunction": BOOL,
                       "seg-max-adjust": BOOL, "discard": BOOL, "write-zeroes": BOOL,
                       "ioeventfd": BOOL, "vectors": INT, "cyls": INT, "heads": INT,
                       "secs": INT},
    "virtio-scsi-pci": {"iothread": LINK, "num_queues": INT, "virtqueue_size": INT,
                        "max_sectors": INT, "cmd_per_lun": INT, "seg_max_adjust": BOOL,
                        "hotplug": BOOL, "param_change": BOOL, "addr": STR,
                        "multifunction": BOOL, "ioeventfd": BOOL, "vectors": INT},
    "scsi-hd": {**_COMMON_BLK, "scsi-id": INT, "lun": INT, "channel": INT, "ver": STR,
                "vendor": STR, "product": STR, "device_id": STR, "wwn": INT,
                "removable": BOOL, "dpofua": BOOL, "rotation_rate": INT},
}
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
        elif kind == ONOFFAUTO:
            if v not in ("on", "off", "auto"):
                raise QMPError(f"Parameter '{key}' does not accept value '{v}'")
            values[key] = v
        elif kind == INT:
            try:
                values[key] = int(v, 0)
            except ValueError:
                raise QMPError(f"Parameter '{key}' expects int64") from None
        elif kind == LINK:
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
    read_only = not dv.node_writable(edge.child) or dev.driver == "scsi-cd"
    dv.apply_perms(g, blk, read_only, dev.driver != "scsi-cd",
                   bool(values.get("share-rw", False)), tx)
    if values.get("write-cache") == "off":
        blk.write_cache = False
    if dev.controller is not None:
        # virtio_scsi_hotplug moves the disk into the controller's context:
        # its iothread, or the main context (virtio_scsi_dataplane_setup).
        dv.set_backend_context(g, blk, dev.controller.iothread or dv.MAIN, tx)


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
    cache: dict = {}
    for b in g.backends:
        if not isinstance(b, dv.BlockBackend):
            continue
        info: dict[str, Any] = {"device": "", "qdev": b.qdev_path, "type": "unknown",
                                "removable": False, "locked": False}
        e = b.edge
        if e is not None:
            ins = queries.block_device_info(g, e.child, False, cache)
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
