"""qcow2_make_empty: an image's own layer emptied (after a commit into its
backing file), as QEMU 7.2's block/qcow2.c does it.

A v3 image without snapshots, bitmaps or encryption whose L1 table and three
more clusters fit in one refcount block is rebuilt from scratch
(make_completely_empty): the header stays in cluster 0, the refcount table
goes to cluster 1, its one refcount block to cluster 2, an empty L1 table of
the same size from cluster 3 on, and the file ends right after it.  Any other
image has every cluster discarded instead (QCOW2_DISCARD_SNAPSHOT, full
discard).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from qmpd.qcow2.spec import DISCARD_SNAPSHOT

if TYPE_CHECKING:
    from qmpd.qcow2.image import Qcow2Image

# QCowHeader: l1_table_offset, refcount_table_offset, refcount_table_clusters.
_L1_OFFSET_FIELD = 40


def make_empty(im: Qcow2Image) -> bool:
    """Empty ``im``'s layer; True when the file was rebuilt (``im``'s cached
    tables are then stale: the caller opens the image again)."""
    geo = im.geo
    cs = geo.cluster_size
    l1_size = im.tables.l1_size
    l1_clusters = -(-l1_size * 8 // cs)
    if (geo.version < 3 or im.header.nb_snapshots or im.nb_bitmaps
            or 3 + l1_clusters > geo.refcount_block_size or geo.refcount_order < 3):
        # (Refcounts narrower than a byte are left to the general path.)
        im.cluster_discard(0, im.virtual_size, DISCARD_SNAPSHOT, True)
        im.flush()
        return False
    im.flush()
    store = im.store
    # The old L1 table, then the clusters the new structures take, zeroed.
    store.write(im.tables.l1_offset, bytes(l1_clusters * cs))
    store.write(cs, bytes((2 + l1_clusters) * cs))
    store.write(_L1_OFFSET_FIELD, struct.pack(">QQI", 3 * cs, cs, 1))
    store.write(cs, struct.pack(">Q", 2 * cs))
    # qcow2_alloc_clusters(3 clusters + the L1 table) from cluster 0: each
    # used cluster's refcount is 1, in the image's refcount width.
    width = (1 << geo.refcount_order) // 8
    used = 3 + l1_clusters
    store.write(2 * cs, (1).to_bytes(width, "big") * used)
    store.truncate((3 + l1_clusters) * cs)
    return True
