"""What devices show and the requests that name them: query-block, the
BlockBackend of a qdev id (HMP ``qemu-io -d``) and x-blockdev-set-iothread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qmpd.engine import queries
from qmpd.engine.aio import MAIN, change_context
from qmpd.engine.devices.model import BlockBackend
from qmpd.engine.errors import BlockError
from qmpd.engine.node import Parent
from qmpd.engine.transaction import Transaction

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph


def query_block(g: BlockGraph) -> list[dict[str, Any]]:
    """query-block: the BlockBackends of devices (BlockInfo, QAPI member order)."""
    out = []
    with g.querying():
        for b in g.backends:
            if not isinstance(b, BlockBackend):
                continue
            info: dict[str, Any] = {"device": b.name}
            if b.device is not None:
                info["qdev"] = b.qdev_path
            # blk_dev_has_removable_media: true without a device (a -drive).
            info.update({"type": "unknown", "removable": b.device is None, "locked": False})
            e = b.edge
            if e is not None:
                # bdrv_query_info: automatically inserted nodes (a job's
                # filter the user did not name) are skipped
                top = e.child
                while top.implicit and top.driver.is_filter:
                    below = top.driver.filtered(top)
                    if below is None:
                        break
                    top = below
                ins = queries.block_device_info(g, top, False, skip_implicit=True)
                ins["cache"] = {**ins["cache"], "writeback": b.write_cache}
                info["inserted"] = ins
            if b.device is None:
                info["tray_open"] = False
            else:
                info["io-status"] = "ok"
            out.append(info)
    return out


def set_iothread(g: BlockGraph, args: dict) -> None:
    """x-blockdev-set-iothread: move a node (and its component) to a context."""
    name = args["node-name"]
    node = g.nodes.get(name)
    if node is None:
        raise BlockError.of("node.failed-find-node-node-name", name=name)
    # bdrv_has_blk: only a BlockBackend parent counts, not parent nodes.
    if not args.get("force", False) and any(isinstance(e.parent, Parent)
                                            for e in node.parents):
        raise BlockError.of("device.node-associated-blockbackend-could-use", name=name)
    it = args["iothread"]
    if isinstance(it, str):
        if it not in g.iothreads:
            raise BlockError.of("device.cannot-find-iothread", it=it)
        ctx = it
    else:
        ctx = MAIN
    tx = Transaction()
    try:
        change_context(g, node, ctx, tx)
    except BlockError:
        tx.abort()
        raise
    tx.commit()


def qdev_backend(g: BlockGraph, did: str) -> tuple[BlockBackend | None, str]:
    """blk_by_qdev_id for HMP ``qemu-io -d``: the BlockBackend or QEMU's error."""
    m = g.machine
    dev = m.by_id(did)
    if dev is None:
        return None, f"Device '{did}' not found"
    if dev.backend is None or dev.driver == "virtio-blk-pci":
        # virtio-blk-pci's BlockBackend belongs to its inner virtio-blk-device.
        return None, "Device does not have a block device backend"
    return dev.backend, ""
