"""block_resize (QEMU 7.2 qmp_block_resize -> bdrv_co_truncate per driver).

The resize runs through a temporary BlockBackend that takes the ``resize``
permission, so a parent that does not share it (a qcow2 node over its file)
makes the command fail with QEMU's permission-conflict text.  Sizes change in
the in-memory host-file layer; host files are never touched.
"""

from __future__ import annotations

from qmpd.engine import bitmaps, perms
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph, Transaction
from qmpd.engine.hostfiles import check_preallocation_room
from qmpd.engine.node import Node, Parent
from qmpd.qcow2 import Qcow2FormatError, preallocate_metadata, preallocate_space
from qmpd.qcow2.spec import BDRV_MAX_LENGTH


def block_resize(g: BlockGraph, node: Node, size: int) -> None:
    tx = Transaction()
    blk = Parent("resize")
    try:
        edge = g.attach(blk, node, "root", 0, tx)
        edge.perm = perms.RESIZE
        edge.shared = perms.ALL
        g.refresh_perms([node], tx)
        truncate(g, node, size)
    finally:
        # The temporary BlockBackend goes away whatever happened.
        tx.abort()


def truncate(g: BlockGraph, node: Node, size: int, prealloc: str = "off") -> None:
    """bdrv_co_truncate(node, size, exact=false, prealloc).

    ``prealloc`` other than "off" (qemu-io's ``truncate -m``): the file
    driver allocates the new range (falloc, full) or refuses (metadata); qcow2
    allocates the new clusters as its image creation does.
    """
    if size < 0:
        raise BlockError.of("resize.image-size-cannot-negative")
    if size > BDRV_MAX_LENGTH:
        raise BlockError.of("resize.offset-exceeds-maximum", size=size, max=BDRV_MAX_LENGTH)
    if node.read_only:
        raise BlockError.of("resize.image-read-only")
    drv = node.driver.name
    if drv == "file":
        layer = node.state.layer
        old = layer.size
        if prealloc != "off":
            if old > size:
                raise BlockError.of("resize.cannot-use-preallocation-shrinking-files")
            if prealloc == "metadata":
                raise BlockError.of("resize.unsupported-preallocation-mode-metadata")
        if prealloc != "off" and size > old:
            check_preallocation_room(layer.path, size - old, prealloc)
        layer.truncate(size)
        if prealloc != "off" and size > old:
            layer.write_zeroes(old, size - old)    # fallocate / zeroes written
    elif drv == "raw":
        st = node.state
        if st.has_size:
            raise BlockError.of("resize.cannot-resize-fixed-size-raw")
        f = node.driver.primary(node)
        if f is None:
            raise BlockError.of("resize.image-format-driver-does-not")
        truncate(g, f, size + st.offset, prealloc)
    elif drv == "qcow2":
        # bdrv_co_truncate: when a backing file longer than the image would
        # show through the new area, the area is zeroed (BDRV_REQ_ZERO_WRITE).
        backing = node.backing
        zero_new = backing is not None and \
            g.virtual_size(backing.child) > node.state.header.virtual_size
        _qcow2_truncate(g, node, size, prealloc, zero_new)
    elif drv in ("blkdebug",):
        f = node.file
        assert f is not None
        truncate(g, f.child, size, prealloc)
    elif node.driver.is_filter:
        f2 = node.driver.filtered(node)
        if f2 is None:
            raise BlockError.of("resize.image-format-driver-does-not")
        truncate(g, f2, size, prealloc)
    else:
        raise BlockError.of("resize.image-format-driver-does-not")
    node.total = None
    g.virtual_size(node)
    # bdrv_co_write_req_finish for BDRV_TRACKED_TRUNCATE
    bitmaps.truncate(node, g.virtual_size(node))


def _qcow2_truncate(g: BlockGraph, node: Node, size: int, prealloc: str = "off",
                    zero_new: bool = False) -> None:
    st = node.state
    h = st.header
    if size % 512:
        raise BlockError.of("resize.new-size-must-multiple-512")
    # Snapshot sizes are only stored reliably from v3 on (qcow2_co_truncate).
    if h.nb_snapshots and h.version < 3:
        raise BlockError.of("resize.resize-v2-image-snapshots")
    old = h.virtual_size
    if size < old and prealloc != "off":
        raise BlockError.of("resize.preallocation-used-shrinking-image")
    im = node.driver._image(g, node)  # type: ignore[attr-defined]
    if size > old:
        try:
            im.truncate_grow(size)
        except Qcow2FormatError as e:
            raise BlockError(e.desc) from None
        if prealloc == "metadata":
            preallocate_metadata(im, size, old)
        elif prealloc in ("falloc", "full"):
            preallocate_space(im, size, old)
        if zero_new:
            # qcow2_co_truncate with BDRV_REQ_ZERO_WRITE: zero clusters from
            # the first whole subcluster, explicit zeroes before it.
            im.write_zeroes(old, size - old)
    elif size < old:
        # Shrinking: QEMU discards the clusters past the end and cuts the
        # file after its last used cluster; qmpd keeps the table sizes.
        if im.truncate_shrink(size):
            f = node.file
            if f is not None:
                # bdrv_co_truncate(bs->file) refreshes the file's cached length.
                f.child.total = None
                g.virtual_size(f.child)
    h.virtual_size = size


def set_write_threshold(g: BlockGraph, node_name: str, threshold: int) -> None:
    """qmp_block_set_write_threshold (a node name only; QEMU says 'Device')."""
    node = g.nodes.get(node_name)
    if node is None:
        raise BlockError.of("device.not-found", id=node_name)
    node.write_threshold = threshold
