"""What one L2 entry (and, with extended L2, its subcluster bitmap) says.

Pure functions of the image's :class:`~qmpd.qcow2.spec.Geometry`:
qcow2_get_cluster_type, qcow2_get_subcluster_type, where a compressed cluster
lies, and whether a write to the cluster needs a new allocation.
"""

from __future__ import annotations

from qmpd.qcow2.spec import (
    CLUSTER_COMPRESSED,
    CLUSTER_NORMAL,
    CLUSTER_UNALLOCATED,
    CLUSTER_ZERO_ALLOC,
    CLUSTER_ZERO_PLAIN,
    COMPRESSED_SECTOR_SIZE,
    L2_BITMAP_ALL_ALLOC,
    L2E_OFFSET_MASK,
    QCOW_OFLAG_COMPRESSED,
    QCOW_OFLAG_COPIED,
    QCOW_OFLAG_ZERO,
    SC_COMPRESSED,
    SC_INVALID,
    SC_NORMAL,
    SC_UNALLOC_ALLOC,
    SC_UNALLOC_PLAIN,
    SC_ZERO_ALLOC,
    SC_ZERO_PLAIN,
    Geometry,
)

# Without extended L2 a cluster is one subcluster of the same kind.
_PLAIN_SUBCLUSTER = {
    CLUSTER_ZERO_PLAIN: SC_ZERO_PLAIN,
    CLUSTER_ZERO_ALLOC: SC_ZERO_ALLOC,
    CLUSTER_NORMAL: SC_NORMAL,
    CLUSTER_UNALLOCATED: SC_UNALLOC_PLAIN,
}


# What block status reports for each subcluster type (map and read).
BLOCK_STATUS_KIND = {
    SC_NORMAL: CLUSTER_NORMAL,
    SC_ZERO_PLAIN: CLUSTER_ZERO_PLAIN,
    SC_ZERO_ALLOC: CLUSTER_ZERO_ALLOC,
    SC_UNALLOC_PLAIN: CLUSTER_UNALLOCATED,
    SC_UNALLOC_ALLOC: CLUSTER_UNALLOCATED,
    SC_COMPRESSED: CLUSTER_COMPRESSED,
}

# Subclusters that read as zeros or from the backing file, with no data of
# their own: a partial write-zeroes may turn them into zero subclusters.
DATALESS_SUBCLUSTERS = frozenset({SC_UNALLOC_PLAIN, SC_UNALLOC_ALLOC, SC_ZERO_PLAIN,
                                  SC_ZERO_ALLOC})


def sub_alloc_range(a: int, b: int) -> int:
    """QCOW_OFLAG_SUB_ALLOC_RANGE: the bitmap bits of subclusters ``a`` to ``b - 1``."""
    return ((1 << b) - 1) & ~((1 << a) - 1)


def cluster_type(geo: Geometry, entry: int) -> str:
    if entry & QCOW_OFLAG_COMPRESSED:
        return CLUSTER_COMPRESSED
    if (entry & QCOW_OFLAG_ZERO) and not geo.extended_l2:
        return CLUSTER_ZERO_ALLOC if entry & L2E_OFFSET_MASK else CLUSTER_ZERO_PLAIN
    if not entry & L2E_OFFSET_MASK:
        return CLUSTER_UNALLOCATED
    return CLUSTER_NORMAL


def subcluster_type(geo: Geometry, entry: int, bitmap: int, sc: int) -> str:
    ctype = cluster_type(geo, entry)
    if ctype == CLUSTER_COMPRESSED:
        return SC_COMPRESSED
    if not geo.extended_l2:
        return _PLAIN_SUBCLUSTER[ctype]
    if ctype == CLUSTER_NORMAL:
        if (bitmap >> 32) & bitmap & 0xFFFFFFFF:
            return SC_INVALID
        if bitmap & (1 << (sc + 32)):
            return SC_ZERO_ALLOC
        if bitmap & (1 << sc):
            return SC_NORMAL
        return SC_UNALLOC_ALLOC
    if bitmap & L2_BITMAP_ALL_ALLOC:
        return SC_INVALID
    if bitmap & (1 << (sc + 32)):
        return SC_ZERO_PLAIN
    return SC_UNALLOC_PLAIN


def compressed_location(geo: Geometry, entry: int) -> tuple[int, int]:
    """(host offset, byte length) of a compressed cluster's data."""
    coffset = entry & geo.cluster_offset_mask
    nb_csectors = ((entry >> geo.csize_shift) & geo.csize_mask) + 1
    csize = nb_csectors * COMPRESSED_SECTOR_SIZE - (coffset & (COMPRESSED_SECTOR_SIZE - 1))
    return coffset, csize


def compressed_entry(geo: Geometry, host_offset: int, length: int) -> int:
    """The L2 entry of a compressed cluster whose ``length`` bytes of data
    start at ``host_offset`` (the inverse of :func:`compressed_location`)."""
    nb_csectors = ((host_offset + length - 1) // COMPRESSED_SECTOR_SIZE
                   - host_offset // COMPRESSED_SECTOR_SIZE)
    return host_offset | QCOW_OFLAG_COMPRESSED | (nb_csectors << geo.csize_shift)


def needs_new_alloc(geo: Geometry, entry: int) -> bool:
    """A write here needs new clusters (the cluster is not ours alone)."""
    ctype = cluster_type(geo, entry)
    if ctype in (CLUSTER_NORMAL, CLUSTER_ZERO_ALLOC):
        return not entry & QCOW_OFLAG_COPIED
    return True
