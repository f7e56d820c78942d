"""What the query commands report, as plain Python values.

Dicts are built in QAPI schema member order (BlockDeviceInfo, ImageInfo,
XDbgBlockGraph): the wire encoder turns that order into QEMU's hash order,
so the insertion order here is what makes the bytes right.
"""

from __future__ import annotations

from typing import Any

from qmpd.engine import perms
from qmpd.engine.graph import BlockGraph
from qmpd.engine.node import Node, Parent


def image_info(g: BlockGraph, node: Node) -> dict[str, Any]:
    filename = g.filename_info(node)[0]
    info: dict[str, Any] = {"filename": filename, "format": node.driver.name}
    gi = g.get_info(node)
    if gi is not None:
        info["dirty-flag"] = gi[1]
    actual = g.actual_size(node)
    if actual is not None:
        info["actual-size"] = actual
    info["virtual-size"] = g.virtual_size(node)
    if gi is not None and gi[0]:
        info["cluster-size"] = gi[0]
    backing_name, backing_fmt = g.header_backing(node)
    if backing_name:
        info["backing-filename"] = backing_name
        try:
            full = g.full_backing_filename(node)
        except Exception:
            full = None
        if full:
            info["full-backing-filename"] = full
        if backing_fmt:
            info["backing-filename-format"] = backing_fmt
    fs = g.format_specific(node)
    if fs is not None:
        info["format-specific"] = fs
    return info


def block_device_info(g: BlockGraph, node: Node, flat: bool,
                      skip_implicit: bool = False) -> dict[str, Any]:
    """BlockDeviceInfo of ``node``; call it inside ``g.querying()``, which
    works each node's file name out only once.  ``skip_implicit`` (query-block)
    passes over the jobs' implicit filters below the top node, as QEMU does
    for a BlockBackend's chain."""
    info: dict[str, Any] = {}
    info["file"] = g.filename_info(node)[0]
    info["node-name"] = node.name
    info["ro"] = node.read_only
    info["drv"] = node.driver.name
    b = node.backing
    # QEMU prints bs->backing_file, which the jobs' filters never set.
    if b is not None and node.driver.reports_backing_file:
        info["backing_file"] = g.filename_info(b.child)[0]
    info["backing_file_depth"] = 0
    if g.profile.node_activation:
        info["active"] = node.active
    info["encrypted"] = False
    info.update(g.profile.block_device_info_extras)
    info["detect_zeroes"] = node.detect_zeroes
    for k in ("bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr"):
        info[k] = 0
    top = image_info(g, node)
    info["image"] = top
    if not flat:
        cur = node
        img = top
        while True:
            nxt = g.filter_or_cow(cur)
            if nxt is None:
                break
            info["backing_file_depth"] += 1
            while skip_implicit and nxt.driver.is_filter and getattr(nxt, "implicit", False):
                below = nxt.driver.filtered(nxt)
                if below is None:
                    break
                nxt = below
            sub = image_info(g, nxt)
            # backing-image sits before format-specific in ImageInfo's order.
            fs = img.pop("format-specific", None)
            img["backing-image"] = sub
            if fs is not None:
                img["format-specific"] = fs
            img = sub
            cur = nxt
    info["cache"] = {"writeback": True, "direct": node.cache_direct,
                     "no-flush": node.cache_no_flush}
    info["write_threshold"] = node.write_threshold
    if node.dirty_bitmaps:
        info["dirty-bitmaps"] = [b.info(g.profile.bitmap_status_member)
                                 for b in node.dirty_bitmaps]
    return info


def named_block_nodes(g: BlockGraph, flat: bool) -> list[dict[str, Any]]:
    with g.querying():
        out = [block_device_info(g, n, flat) for n in g.nodes.values()]
    out.reverse()
    return out


def block_graph(g: BlockGraph) -> dict[str, Any]:
    ids: dict[int, int] = {}
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []

    def num(obj: object) -> int:
        k = id(obj)
        if k not in ids:
            ids[k] = len(ids) + 1
        return ids[k]

    def add_node(obj: object, kind: str, name: str) -> None:
        nodes.append({"id": num(obj), "type": kind, "name": name})

    def add_edge(parent: object, e: Any) -> None:
        edges.append({"parent": num(parent), "child": num(e.child), "name": e.name,
                      "perm": perms.names_reversed(e.perm, mask),
                      "shared-perm": perms.names_reversed(e.shared, mask)})

    # graph-mod only where the release has it.
    mask = perms.ALL if g.profile.graph_mod_perm else perms.PASSTHROUGH

    for b in g.backends:
        # A device's BlockBackend has no name: it shows the device id or QOM path.
        gname = getattr(b, "graph_name", None)
        add_node(b, "block-backend", gname() if gname is not None else b.name)
        for e in b.children:
            add_edge(b, e)
    for j in reversed(g.jobs):   # block_job_next: newest first
        if not getattr(j, "block_job", True):
            continue    # only block jobs are graph parents
        add_node(j, "block-job", j.id)
        for e in j.edges:
            add_edge(j, e)
    for n in g.nodes.values():
        add_node(n, "block-driver", n.name)
        for e in reversed(n.children):
            add_edge(n, e)
    nodes.reverse()
    edges.reverse()
    return {"nodes": nodes, "edges": edges}


__all__ = ["named_block_nodes", "block_graph", "block_device_info", "Parent"]
