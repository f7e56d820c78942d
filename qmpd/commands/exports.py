"""nbd-server-start/stop, block-export-add/del and query-block-exports
(QEMU 7.2 blockdev-nbd.c, block/export/export.c, nbd/server.c).

qmpd tracks the server and its exports but serves no NBD traffic: the server
"listens" without opening a socket.  An export holds its node through an
unnamed BlockBackend (a ``Parent`` on ``graph.backends`` with the permissions
QEMU's export takes), so the node cannot be deleted while exported and the
graph queries show the export's BlockBackend like QEMU's.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from qmpd.commands.registry import command
from qmpd.engine import bitmaps as bm
from qmpd.engine import perms
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph, Transaction, id_wellformed
from qmpd.engine.node import Edge, Node, Parent

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


_STATES: weakref.WeakKeyDictionary[BlockGraph, ExportState] = weakref.WeakKeyDictionary()


def state(g: BlockGraph) -> ExportState:
    st = _STATES.get(g)
    if st is None:
        st = _STATES[g] = ExportState()
    return st


@command("nbd-server-start")
def nbd_server_start(daemon: Any, args: dict) -> dict:
    st = state(daemon.graph)
    if st.nbd_running:
        raise BlockError("NBD server already running")
    st.nbd_running = True
    return {}


@command("nbd-server-stop")
def nbd_server_stop(daemon: Any, args: dict) -> dict:
    g = daemon.graph
    st = state(g)
    if not st.nbd_running:
        raise BlockError("NBD server not running")
    # blk_exp_close_all_type(BLOCK_EXPORT_TYPE_NBD): oldest first? QEMU walks
    # its export list (newest first) and each removal sends the event.
    for exp in list(st.exports):
        if exp.type == "nbd":
            _delete(daemon, exp)
    st.nbd_running = False
    return {}


def _delete(daemon: Any, exp: Export) -> None:
    g = daemon.graph
    st = state(g)
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
    daemon.emit("BLOCK_EXPORT_DELETED", {"id": exp.id})


@command("block-export-add")
def block_export_add(daemon: Any, args: dict) -> dict:
    g: BlockGraph = daemon.graph
    st = state(g)
    eid = args["id"]
    if not id_wellformed(eid):
        raise BlockError("Invalid block export id")
    if any(e.id == eid for e in st.exports):
        raise BlockError(f"Block export id '{eid}' is already in use")
    etype = args["type"]
    if etype != "nbd":
        raise BlockError(f"qmpd does not support '{etype}' exports")
    name = args["node-name"]
    node = g.nodes.get(name)
    if node is None:
        raise BlockError(f"Cannot find device='' nor node-name='{name}'")
    writable = args.get("writable", False)
    if node.read_only and writable:
        raise BlockError("Cannot export read-only node as writable")
    if "iothread" in args and args["iothread"] not in g.iothreads:
        raise BlockError(f"iothread \"{args['iothread']}\" not found")
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
    return {}


def _nbd_create(g: BlockGraph, st: ExportState, args: dict, node: Node, blk: ExportBackend,
                edge: Edge, tx: Transaction) -> Export:
    """nbd_export_create."""
    if not st.nbd_running:
        raise BlockError("NBD server not running")
    name = args.get("name", args["node-name"])
    if len(name.encode()) > NBD_MAX_STRING_SIZE:
        raise BlockError(f"export name '{name}' too long")
    desc = args.get("description")
    if desc is not None and len(desc.encode()) > NBD_MAX_STRING_SIZE:
        raise BlockError(f"description '{desc}' too long")
    if any(e.name == name for e in st.exports if e.type == "nbd"):
        raise BlockError(f"NBD server already has export named '{name}'")
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
                raise BlockError(f"Bitmap '{item}' is not found")
            if readonly and not n.read_only and b.recording:
                raise BlockError(f"Enabled bitmap '{item}' incompatible with readonly export")
        else:
            _, b = bm.lookup(g, item["node"], item["name"])
        bm.check(b, bm.ALLOW_RO)
        found.append(b)
    for b in found:
        b.busy = True
    return Export(args["id"], "nbd", node, name, blk, edge, found)


@command("block-export-del")
def block_export_del(daemon: Any, args: dict) -> dict:
    st = state(daemon.graph)
    eid = args["id"]
    exp = next((e for e in st.exports if e.id == eid), None)
    if exp is None:
        raise BlockError(f"Export '{eid}' is not found")
    _delete(daemon, exp)
    return {}


@command("query-block-exports")
def query_block_exports(daemon: Any, args: dict) -> list:
    # The export's BlockBackend may have moved (blockdev-snapshot, mirror pivot).
    return [{"id": e.id, "type": e.type, "node-name": e.edge.child.name, "shutting-down": False}
            for e in state(daemon.graph).exports]
