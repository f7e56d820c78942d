"""I/O accounting and query-blockstats (QEMU block/accounting.c, block/qapi.c
``bdrv_query_bds_stats`` / ``bdrv_query_blk_stats`` / ``qmp_query_blockstats``).

Two kinds of figures, as in QEMU:

* a BlockBackend's :class:`BlockAcctStats`: requests its user accounted
  (``block_acct_start`` / ``done`` / ``failed`` / ``invalid``).  Only the
  BlockBackend's user accounts -- in qmpd, HMP ``qemu-io`` on a ``-drive``
  or a device (``aio_read``, ``aio_write``, ``aio_flush`` and their ``-i``):
  block jobs, exports and qemu-io's plain ``read``/``write`` do not count;
* each node's own ``wr_highest_offset`` (every write that reaches the node,
  jobs' too: ``Node.wr_highest_offset``, kept by the graph's write path) and
  the file driver's discard counters (``driver-specific``).

The accounting itself is :mod:`qmpd.engine.blockacct`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qmpd.engine import perms
from qmpd.engine.blockacct import FLUSH, READ, UNMAP, WRITE, ZONE_APPEND, BlockAcctStats
from qmpd.engine.devices.model import BlockBackend

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph
    from qmpd.engine.node import Node


def device_stats(stats: BlockAcctStats | None, wr_highest_offset: int, now: int,
                 zone_append: bool) -> dict[str, Any]:
    """BlockDeviceStats: ``stats`` None for a node-level entry (all zero)."""
    s = stats if stats is not None else BlockAcctStats()
    out: dict[str, Any] = {}
    # Members in QAPI order (the writer orders keys as QEMU's QDict anyway).
    for key, table in (("bytes", s.nr_bytes), ("operations", s.nr_ops)):
        for kind in (READ, WRITE, ZONE_APPEND, FLUSH, UNMAP):
            if kind == FLUSH and key == "bytes":
                continue
            out[f"{kind}_{key}"] = table[kind]
    for kind in (READ, WRITE, ZONE_APPEND, FLUSH, UNMAP):
        out[f"{kind}_total_time_ns"] = s.total_time_ns[kind]
    out["wr_highest_offset"] = wr_highest_offset
    for kind in (READ, WRITE, ZONE_APPEND, UNMAP):
        out[f"{kind}_merged"] = s.merged[kind]
    if stats is not None and s.last_access_ns > 0:
        out["idle_time_ns"] = max(now - s.last_access_ns, 0)
    for key, table in (("failed", s.failed_ops), ("invalid", s.invalid_ops)):
        for kind in (READ, WRITE, ZONE_APPEND, FLUSH, UNMAP):
            out[f"{key}_{kind}_operations"] = table[kind]
    out["account_invalid"] = s.account_invalid if stats is not None else False
    out["account_failed"] = s.account_failed if stats is not None else False
    # No stats-intervals and no latency histograms are ever set up.
    out["timed_stats"] = []
    if not zone_append:
        for k in [k for k in out if "zone_append" in k]:
            del out[k]
    return out


def _data_child(g: BlockGraph, node: Node) -> Node | None:
    """The ``parent`` member: the primary child if it holds data or is
    filtered, else the only child holding data (none if several do)."""
    prim = next((e for e in node.children if e.role & perms.ROLE_PRIMARY), None)
    if prim is not None and prim.role & (perms.ROLE_DATA | perms.ROLE_FILTERED):
        return prim.child
    found = None
    for e in node.children:
        if e.role & perms.ROLE_DATA:
            if found is not None:
                return None
            found = e.child
    return found


def _driver_specific(node: Node) -> dict[str, Any] | None:
    """bdrv_get_specific_stats: file-posix's discard counters."""
    if node.driver.name not in ("file", "host_device"):
        return None
    st = node.state
    return {"driver": node.driver.name,
            "discard-nb-ok": getattr(st, "discard_nb_ok", 0),
            "discard-nb-failed": getattr(st, "discard_nb_failed", 0),
            "discard-bytes-ok": getattr(st, "discard_bytes_ok", 0)}


def skip_implicit_filters(g: BlockGraph, node: Node) -> Node:
    """bdrv_skip_implicit_filters: past the filters jobs inserted unnamed."""
    while node.implicit and node.driver.is_filter:
        below = node.driver.filtered(node)
        if below is None:
            break
        node = below
    return node


def _bds_stats(g: BlockGraph, node: Node, blk_level: bool, now: int,
               zone_append: bool) -> dict[str, Any]:
    """bdrv_query_bds_stats."""
    if blk_level:
        node = skip_implicit_filters(g, node)
    s: dict[str, Any] = {}
    if node.name:
        s["node-name"] = node.name
    s["stats"] = device_stats(None, node.wr_highest_offset, now, zone_append)
    spec = _driver_specific(node)
    if spec is not None:
        s["driver-specific"] = spec
    child = _data_child(g, node)
    if child is not None:
        s["parent"] = _bds_stats(g, child, blk_level, now, zone_append)
    below = g.filter_or_cow(node)
    if blk_level and below is not None:
        s["backing"] = _bds_stats(g, below, blk_level, now, zone_append)
    return s


def query_blockstats(g: BlockGraph, query_nodes: bool, now: int,
                     zone_append: bool) -> list[dict[str, Any]]:
    """query-blockstats: every node in naming order (``query-nodes``), else
    every BlockBackend that has a name or a device, with its accounting."""
    if query_nodes:
        return [_bds_stats(g, n, False, now, zone_append) for n in list(g.nodes.values())]
    out = []
    for b in g.backends:
        if not isinstance(b, BlockBackend) or not (b.name or b.device is not None):
            continue
        e = b.edge
        if e is not None:
            s = _bds_stats(g, e.child, True, now, zone_append)
        else:
            s = {"stats": {}}
        s["device"] = b.name
        if b.qdev_path:
            s["qdev"] = b.qdev_path
        s["stats"] = device_stats(b.stats, s["stats"].get("wr_highest_offset", 0), now,
                                  zone_append)
        out.append(s)
    return out
