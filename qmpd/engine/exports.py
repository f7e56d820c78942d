"""NBD server and block exports (QEMU 7.2 blockdev-nbd.c, block/export/export.c,
nbd/server.c).

qmpd tracks the server and its exports but serves no NBD traffic: the server
"listens" without opening a socket.  An export holds its node through an
unnamed BlockBackend (a ``Parent`` on ``graph.backends`` with the permissions
QEMU's export takes), so the node cannot be deleted while exported and the
graph queries show the export's BlockBackend like QEMU's.  The state is the
graph's (``graph.exports``, an :class:`ExportState`).

The functions that remove exports return their ids: the caller sends
``BLOCK_EXPORT_DELETED`` for each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qmpd.cstrings import cstring
from qmpd.engine import bitmaps as bm
from qmpd.engine import perms
from qmpd.engine.errors import BlockError
from qmpd.engine.node import Edge, Node, Parent, id_wellformed
from qmpd.engine.transaction import Transaction

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph

NBD_MAX_STRING_SIZE = 4096


class ExportBackend(Parent):
    """The BlockBackend of an export: ``blockdev-del`` of its node says "in use"."""

    def __init__(self) -> None:
        # The "device-backend" kind is what makes blockdev-del refuse the node.
        super().__init__("device-backend", "", "an unnamed block device")


@dataclass
class Export:
    id: str
    type: str
    node: Node
    name: str
    blk: ExportBackend
    edge: Edge
    bitmaps: list[bm.DirtyBitmap] = field(default_factory=list)


@dataclass
class ExportState:
    nbd_running: bool = False
    exports: list[Export] = field(default_factory=list)   # newest first


def nbd_server_start(g: BlockGraph) -> None:
    st = g.exports
    if st.nbd_running:
        raise BlockError.of("export.nbd-server-already-running")
    st.nbd_running = True


def nbd_server_stop(g: BlockGraph) -> list[str]:
    """nbd-server-stop: the ids of the NBD exports it removed, in removal order."""
    st = g.exports
    if not st.nbd_running:
        raise BlockError.of("export.nbd-server-not-running")
    # blk_exp_close_all_type(BLOCK_EXPORT_TYPE_NBD): QEMU walks its export
    # list (newest first) requesting each shutdown; in 7.2 each deletion is
    # then a bottom half, and the main loop runs the newest scheduled first:
    # the exports go (and their events come) oldest first.  10.0 deletes
    # them in the list's order.
    order = st.exports if g.profile.nbd_stop_newest_first else reversed(st.exports)
    gone = [_delete(g, exp) for exp in list(order) if exp.type == "nbd"]
    st.nbd_running = False
    return gone


def _delete(g: BlockGraph, exp: Export) -> str:
    """blk_exp_delete: drop the export and its hold on the node; its id."""
    st = g.exports
    st.exports.remove(exp)
    for b in exp.bitmaps:
        b.busy = False
    tx = Transaction()
    node = exp.edge.child
    g.detach(exp.edge, tx)
    if exp.blk in g.backends:
        g.backends.remove(exp.blk)
    # blk_unref: a node only the export held (an overlay it was moved to) goes.
    g.unref(node, tx)
    if node.alive:
        g.refresh_perms([node], tx)
    tx.commit()
    return exp.id


def export_add(g: BlockGraph, args: dict) -> Export:
    """block-export-add (only NBD exports)."""
    st = g.exports
    eid = args["id"]
    if not id_wellformed(eid):
        raise BlockError.of("export.invalid-block-export-id")
    if any(e.id == eid for e in st.exports):
        raise BlockError.of("export.block-export-id-already-use", eid=eid)
    etype = args["type"]
    if etype != "nbd":
        raise BlockError.of("export.qmpd-does-not-support-exports", etype=etype)
    name = args["node-name"]
    node = g.nodes.get(name)
    if node is None:
        raise BlockError.of("reopen.cannot-find-device-nor-node", value=name)
    writable = args.get("writable", False)
    if node.read_only and writable:
        raise BlockError.of("export.cannot-export-read-node-writable")
    if "iothread" in args and args["iothread"] not in g.iothreads:
        raise BlockError.of("export.iothread-not-found", iothread=args['iothread'])
    tx = Transaction()
    blk = ExportBackend()
    try:
        edge = g.attach(blk, node, "root", 0, tx)
        edge.perm = perms.CONSISTENT_READ | (perms.WRITE if writable else 0)
        edge.shared = perms.ALL
        g.refresh_perms([node], tx)
        exp = _nbd_create(g, st, args, node, blk, edge, tx)
    except BlockError:
        tx.abort()
        raise
    tx.commit()
    g.backends.append(blk)
    st.exports.insert(0, exp)
    return exp


def _nbd_create(g: BlockGraph, st: ExportState, args: dict, node: Node, blk: ExportBackend,
                edge: Edge, tx: Transaction) -> Export:
    """nbd_export_create."""
    if not st.nbd_running:
        raise BlockError.of("export.nbd-server-not-running")
    name = args.get("name", args["node-name"])
    if len(cstring(name)) > NBD_MAX_STRING_SIZE:
        raise BlockError.of("export.export-name-too-long", name=name)
    desc = args.get("description")
    if desc is not None and len(cstring(desc)) > NBD_MAX_STRING_SIZE:
        raise BlockError.of("export.description-too-long", desc=desc)
    if any(e.name == name for e in st.exports if e.type == "nbd"):
        raise BlockError.of("export.nbd-server-already-export-named", name=name)
    # Resizing is not allowed while the NBD server exports the node.
    edge.shared = perms.ALL & ~perms.RESIZE
    g.refresh_perms([node], tx)
    readonly = not args.get("writable", False)
    found: list[bm.DirtyBitmap] = []
    for item in args.get("bitmaps", []):
        if isinstance(item, str):
            b = None
            n: Node | None = node
            while n is not None:
                b = bm.find(n, item)
                if b is not None:
                    break
                n = g.filter_or_cow(n)
            if b is None or n is None:
                raise BlockError.of("export.bitmap-not-found", item=item)
            if readonly and not n.read_only and b.recording:
                raise BlockError.of("export.enabled-bitmap-incompatible-readonly-export", item=item)
        else:
            _, b = bm.lookup(g, item["node"], item["name"])
        bm.check(b, bm.ALLOW_RO)
        found.append(b)
    for b in found:
        b.busy = True
    return Export(args["id"], "nbd", node, name, blk, edge, found)


def nbd_server_add(g: BlockGraph, args: dict, node: Node) -> Export:
    """nbd-server-add (blockdev-nbd.c qmp_nbd_server_add): block-export-add
    of an NBD export whose id is its export name; ``node`` is what
    ``device`` names (bdrv_lookup_bs, as a device or a node name)."""
    device = args["device"]
    # The export name defaults to the device name (block-export-add's would
    # be the node name), and is the export's id.
    name = args.get("name", device)
    opts: dict[str, Any] = {"type": "nbd", "id": name, "node-name": node.name, "name": name}
    if "description" in args:
        opts["description"] = args["description"]
    if "writable" in args:
        opts["writable"] = args["writable"]
    if "bitmap" in args:
        opts["bitmaps"] = [args["bitmap"]]
    # A read-only node is exported read-only, where block-export-add refuses.
    if node.read_only:
        opts["writable"] = False
    return export_add(g, opts)


def nbd_server_remove(g: BlockGraph, name: str) -> str:
    """nbd-server-remove: block-export-del of the export ``name`` (an NBD
    one: qmpd has no other kind).  No client is ever connected, so ``safe``
    and ``hard`` both remove it at once."""
    return export_del(g, name)


def export_del(g: BlockGraph, eid: str) -> str:
    """block-export-del: the id of the export removed."""
    exp = next((e for e in g.exports.exports if e.id == eid), None)
    if exp is None:
        raise BlockError.of("export.export-not-found", eid=eid)
    return _delete(g, exp)


def query_block_exports(g: BlockGraph) -> list[dict[str, Any]]:
    # The export's BlockBackend may have moved (blockdev-snapshot, mirror pivot).
    return [{"id": e.id, "type": e.type, "node-name": e.edge.child.name, "shutting-down": False}
            for e in g.exports.exports]
