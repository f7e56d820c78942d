"""``-drive``: QEMU's legacy drive option, for command lines that use it.

Not a QMP command (QEMU 7.2 has no ``drive_add`` in QMP): the server runs
:func:`drive_new` for each ``-drive`` at start-up.  As QEMU's drive_new and
blockdev_init (blockdev.c), a drive is a BlockBackend named by its ``id``
over an image opened from a filename (``file=``, with ``format=`` the
driver and every other dotted option handed to the nodes, such as
``node-name`` or ``backing.node-name``).  ``if=none`` leaves the BlockBackend
for a later ``-device drive=ID``; ``if=virtio`` creates a virtio-blk-pci on
it.  ``cache=`` sets the nodes' cache options and the BlockBackend's write
cache as QEMU's cache modes do.
"""

from __future__ import annotations

import re
from typing import Any

from qmpd.commands.devices import device_option
from qmpd.commands.errors import QMPError, from_block_error
from qmpd.engine import perms
from qmpd.engine.devices.backends import remove_backend
from qmpd.engine.devices.model import BlockBackend
from qmpd.engine.errors import BlockError
from qmpd.engine.node import id_wellformed
from qmpd.engine.reopen import RUNTIME_BOOLS, parse_bool
from qmpd.engine.transaction import Transaction

# cache= mode -> (cache.direct, cache.no-flush, BlockBackend write cache)
CACHE_MODES = {"writeback": (False, False, True), "none": (True, False, True),
               "writethrough": (False, False, False), "directsync": (True, False, False),
               "unsafe": (False, True, True)}
# Options drive_new handles itself rather than passing them to the nodes.
_DRIVE_ONLY = ("if", "id", "file", "format", "cache", "media", "index", "bus", "unit",
               "werror", "rerror", "serial", "snapshot", "readonly", "copy-on-read",
               "addr", "boot", "trans", "cyls", "heads", "secs", "stats-account-invalid",
               "stats-account-failed")


def _bool(key: str, value: str) -> bool:
    try:
        return parse_bool(key, value)
    except BlockError as e:
        raise QMPError(e.desc) from None


def drive_new(daemon: Any, opts: dict[str, str]) -> None:
    """Create the drive ``opts`` (QemuOpts strings) describes, or QMPError."""
    g = daemon.graph
    iface = opts.get("if", "ide")
    drive_id = opts.get("id")
    # drive_new: the first unit no drive of this interface has yet (with or
    # without an id), unless unit= names one; it numbers the automatic id.
    taken = {b.drive_slot[1] for b in g.backends
             if isinstance(b, BlockBackend) and b.drive_slot and b.drive_slot[0] == iface}
    unit = int(opts["unit"]) if opts.get("unit", "").isdigit() else 0
    if "unit" not in opts:
        while unit in taken:
            unit += 1
    if drive_id is None:
        drive_id = {"virtio": "virtio", "none": "none"}.get(iface, iface) + str(unit)
    if not id_wellformed(drive_id):
        raise QMPError(f"Invalid ID '{drive_id}'")   # not reached for QEMU's own ids
    if g.named_backend(drive_id) is not None:
        raise QMPError(f"Duplicate ID '{drive_id}' for drive")
    if iface not in ("none", "virtio", "ide"):
        raise QMPError(f"qmpd: if={iface} is not emulated (use if=none with -device, "
                       "or if=virtio)")
    # if=ide: the drive (a BlockBackend, empty for a CD-ROM without file=) is
    # made, but qmpd has no IDE controller model: no ide-hd/ide-cd device
    # is attached to it.
    if "snapshot" in opts and _bool("snapshot", opts["snapshot"]):
        raise QMPError("qmpd: snapshot=on is not supported")
    media = opts.get("media", "disk")
    if media not in ("disk", "cdrom"):
        raise QMPError(f"'{media}' invalid media")

    node_opts: dict[str, Any] = {k: v for k, v in opts.items() if k not in _DRIVE_ONLY}
    # blockdev_init: without a file, only driver-specific options open a node.
    has_node_options = "driver" in node_opts or "format" in opts or any(
        "." in k and not k.startswith("cache.") for k in node_opts)
    for key in list(node_opts):
        if key in RUNTIME_BOOLS:
            node_opts[key] = _bool(key, node_opts[key])
        elif re.fullmatch(r"[0-9]+", node_opts[key]) and not key.endswith(
                ("node-name", "filename", "file", "backing", "config")):
            # QemuOpts numbers (align=65536, vote-threshold=2): the engine's
            # drivers take them typed, as from blockdev-add.
            node_opts[key] = int(node_opts[key])
    if "readonly" in opts:
        node_opts["read-only"] = _bool("readonly", opts["readonly"])
    if media == "cdrom":
        node_opts.setdefault("read-only", True)
    write_cache = True
    cache = opts.get("cache")
    if cache is not None:
        mode = CACHE_MODES.get(cache)
        if mode is None:
            raise QMPError("invalid cache option")
        direct, no_flush, write_cache = mode
        node_opts.setdefault("cache.direct", direct)
        node_opts.setdefault("cache.no-flush", no_flush)
    node_opts.setdefault("cache.direct", False)
    node_opts.setdefault("cache.no-flush", False)
    node_opts.setdefault("read-only", False)
    if "format" in opts:
        if "driver" in node_opts:
            raise QMPError("Cannot specify both 'driver' and 'format'")
        node_opts["driver"] = opts["format"]
    aio = node_opts.pop("aio", None)

    # Protocol prefixes (blkdebug::IMG, null-co://) and json: filenames are
    # the engine's to read, as bdrv_open's.
    filename: str | None = opts.get("file") or None
    if aio is not None and filename is not None:
        node_opts.setdefault("file.aio", aio)

    blk = BlockBackend(None, f"block device '{drive_id}'", drive_id)
    blk.write_cache = write_cache
    blk.drive_slot = (iface, unit)
    # blockdev_init: block_acct_setup with stats-account-* (default on).
    blk.stats.account_invalid = _bool("stats-account-invalid",
                                      opts.get("stats-account-invalid", "on"))
    blk.stats.account_failed = _bool("stats-account-failed",
                                     opts.get("stats-account-failed", "on"))
    tx = Transaction()
    try:
        # blockdev_init: no file and no driver options is an empty drive.
        if filename is not None or has_node_options:
            node = g.open(tx, node_opts, filename=filename)
            node.monitor_owned = False
            edge = g.attach(blk, node, "root", 0, tx)
            # blk_new_open: read, and write unless read-only; others may do anything
            # until a device sets its own permissions.
            edge.perm = perms.CONSISTENT_READ | (0 if node.read_only else perms.WRITE)
            edge.shared = perms.ALL
            g.refresh_perms([node], tx)
        g.backends.append(blk)
        tx.on_abort(lambda: g.backends.remove(blk))
    except BlockError as e:
        tx.abort()
        raise from_block_error(e, daemon.profile) from None
    tx.commit()
    if iface == "virtio":
        try:
            device_option(daemon, {"driver": "virtio-blk-pci", "drive": drive_id}, typed=False)
        except QMPError:
            tx2 = Transaction()
            remove_backend(g, blk, tx2)
            tx2.commit()
            raise


__all__ = ["drive_new", "CACHE_MODES"]
