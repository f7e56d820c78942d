"""drive-mirror and drive-backup: the forms of blockdev-mirror/-backup that
make their target from a filename (QEMU 7.2 blockdev.c qmp_drive_mirror,
drive_backup_prepare).

Each creates the target image unless ``mode`` is ``existing`` (with the
source's format, or ``format``; with a backing file where the sync mode
leaves data in the source's backing chain), opens it as an unnamed node
(``node-name`` names it) and hands it to the blockdev job, which keeps the
only reference.  A mirror then fixes the target's backing chain when it
ends: it takes the source's backing node (``absolute-paths``) or opens the
backing file its image names (``existing``).
"""

from __future__ import annotations

from typing import Any

from qmpd.engine import perms
from qmpd.engine.drivers.registry import get_driver
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph
from qmpd.engine.jobs.mirror import start_mirror
from qmpd.engine.node import Node, Parent
from qmpd.engine.surgery import lookup_bs
from qmpd.engine.transaction import Transaction
from qmpd.qcow2 import Qcow2FormatError, create_qcow2

# The formats of qmpd's drivers that have image creation (create_opts in QEMU).
CREATABLE = ("qcow2", "raw", "file")


def root_bs(g: BlockGraph, name: str) -> Node:
    """qmp_get_root_bs: a BlockBackend name or the node name of a root node."""
    bs = lookup_bs(g, name, name)
    if not all(isinstance(e.parent, Parent) for e in bs.parents):
        raise BlockError("Need a root block node")
    return bs


def skip_filters(g: BlockGraph, n: Node | None) -> Node | None:
    while n is not None and n.driver.is_filter:
        n = n.driver.filtered(n)
    return n


def skip_implicit_filters(g: BlockGraph, n: Node | None) -> Node | None:
    while n is not None and n.driver.is_filter and getattr(n, "implicit", False):
        n = n.driver.filtered(n)
    return n


def cow_bs(n: Node | None) -> Node | None:
    if n is None or n.driver.is_filter:
        return None
    b = n.backing
    return b.child if b else None


def _fresh_open_count(n: Node) -> int:
    """How many nodes opening ``n``'s image afresh makes (its subtree)."""
    seen: set[int] = set()
    todo = [n]
    while todo:
        cur = todo.pop()
        if id(cur) not in seen:
            seen.add(id(cur))
            todo.extend(e.child for e in cur.children)
    return len(seen)


def create_image(g: BlockGraph, path: str, fmt: str, size: int,
                 backing: Node | None, open_backing: bool = False) -> None:
    """bdrv_img_create(path, fmt, backing's filename and format, size).

    ``open_backing``: the flags do not forbid it (no BDRV_O_NO_BACKING), so
    bdrv_img_create opens the backing chain to check it, which uses up the
    automatic names of the nodes it opens."""
    drv = get_driver(fmt)
    if drv is None:
        raise BlockError.of("drive.unknown-file-format", fmt=fmt)
    if fmt not in CREATABLE:
        raise BlockError.of("drive.format-cannot-create", fmt=fmt)
    if fmt == "qcow2":
        try:
            if backing is not None:
                data = create_qcow2(size, backing_file=g.filename_info(backing)[0],
                                    backing_format=backing.driver.name)
            else:
                data = create_qcow2(size)
        except Qcow2FormatError as e:
            raise BlockError(getattr(e, "desc", None) or str(e)) from None
    elif fmt in ("raw", "file"):
        if backing is not None:
            raise BlockError.of("drive.backing-not-supported", fmt=fmt)
        data = b""
    g.hostfiles.announce(path, fmt, size, None if backing is None else
                         (g.filename_info(backing)[0], backing.driver.name))
    layer = g.hostfiles.open_or_create(path)
    if layer is None:
        raise BlockError(f"Could not create '{path}': No such file or directory")
    layer.truncate(0)
    if data:
        layer.write(0, data)
    if fmt in ("raw", "file"):
        layer.truncate(size)
    # Formatting a qcow2 image opens its file and format nodes (qcow2_co_create):
    # their automatic names are used up.  raw and file images are made
    # without opening a node (raw_co_create on the path).
    if backing is not None and open_backing:
        g.name_counter += _fresh_open_count(backing)
    g.name_counter += 3 if fmt == "qcow2" else 0
    for n in layer.nodes:
        n.total = None


def open_target(g: BlockGraph, path: str, opts: dict, tx: Transaction) -> Node:
    """bdrv_open(target, NULL, options, flags): an unnamed node over the file."""
    full = {"read-only": False, "cache.direct": False, "cache.no-flush": False, **opts}
    return g.open(tx, full, filename=path)


def start_drive_mirror(mgr: Any, args: dict) -> Any:
    """qmp_drive_mirror."""
    g: BlockGraph = mgr.g
    bs = root_bs(g, args["device"])
    mode = args.get("mode", "absolute-paths")
    fmt = args.get("format") or (None if mode == "existing" else bs.driver.name)
    sync = args["sync"]
    target_backing = cow_bs(skip_filters(g, bs))
    if target_backing is None and sync == "top":
        sync = "full"
    if sync == "none":
        target_backing = bs
    if "replaces" in args and "node-name" not in args:
        raise BlockError.of("drive.replaces-needs-node-name")
    size = g.virtual_size(bs)
    backing_mode = "source" if mode == "absolute-paths" else "open"
    if (sync == "full" or target_backing is None) and mode != "existing":
        assert fmt is not None
        create_image(g, args["target"], fmt, size, None)
    elif mode == "absolute-paths":
        assert fmt is not None
        create_image(g, args["target"], fmt, size,
                     skip_implicit_filters(g, target_backing))
    opts: dict[str, Any] = {"backing": None}
    if "node-name" in args:
        opts["node-name"] = args["node-name"]
    if fmt:
        opts["driver"] = fmt
    tx = Transaction()
    try:
        target = open_target(g, args["target"], opts, tx)
    except BlockError:
        tx.abort()
        raise
    tx.commit()
    margs = {k: v for k, v in args.items()
             if k not in ("format", "node-name", "mode", "unmap", "target")}
    margs["sync"] = sync
    margs["target"] = target.name
    # A new image reads as zeroes already (bdrv_has_zero_init of a fresh
    # qcow2/raw file): only an existing one is zeroed outside the source's
    # allocated areas.
    zero_target = sync == "full" and mode == "existing"
    try:
        job = start_mirror(mgr, margs, zero_target=zero_target, backing_mode=backing_mode)
    except BlockError:
        _drop(g, target)
        raise
    job.driver.backing_mode = backing_mode
    job.driver.unmap = args.get("unmap", True)
    job.driver.backing_base = (bs if sync == "none" else
                               target_backing if sync == "top" else None)
    return job


def _drop(g: BlockGraph, node: Node) -> None:
    """bdrv_unref of the command's own reference to a node nobody took."""
    if node.alive and not node.parents:
        tx = Transaction()
        g.unref(node, tx)
        for e in list(node.children):
            g.detach(e, tx)
        tx.commit()


def drive_backup_target(g: BlockGraph, args: dict, tx: Transaction) -> tuple[dict, Node]:
    """drive_backup_prepare up to do_backup_common: the image and its node.

    Returns the blockdev-backup arguments (``target`` is the new node) and
    the node, which the caller releases once the job holds it.  Unlike
    drive-mirror, any node is a source (bdrv_lookup_bs, not a root)."""
    bs = lookup_bs(g, args["device"], args["device"])
    mode = args.get("mode", "absolute-paths")
    fmt = args.get("format") or (None if mode == "existing" else bs.driver.name)
    sync = args["sync"]
    source: Node | None = None
    no_backing = False
    if sync == "top":
        source = cow_bs(skip_filters(g, bs))
        if source is None:
            sync = "full"
    set_backing = False
    if sync == "none":
        source = bs
        no_backing = True
        set_backing = True
    size = g.virtual_size(bs)
    if mode != "existing":
        assert fmt is not None
        # sync=none adds BDRV_O_NO_BACKING to the flags; sync=top does not.
        create_image(g, args["target"], fmt, size,
                     skip_implicit_filters(g, source) if source is not None else None,
                     open_backing=not no_backing)
    opts: dict[str, Any] = {"discard": "unmap", "detect-zeroes": "unmap"}
    if fmt:
        opts["driver"] = fmt
    if no_backing:
        opts["backing"] = None
    target = open_target(g, args["target"], opts, tx)
    if set_backing and source is not None:
        g.attach(target, source, "backing", perms.ROLE_COW, tx)
        target.no_backing = False
    bargs = {k: v for k, v in args.items() if k not in ("format", "mode", "target")}
    bargs["sync"] = sync
    bargs["target"] = target.name
    return bargs, target


__all__ = ["start_drive_mirror", "drive_backup_target",
           "create_image", "root_bs"]
