"""Zero and discard whole clusters in the L2 tables.

qcow2_subcluster_zeroize (zero flags, or zero bits of an extended L2 bitmap,
optionally freeing the clusters) and qcow2_cluster_discard (entries made
unallocated or zero, clusters freed).  Clusters whose refcount drops to zero
are discarded in the host file after the whole operation, when the discard
type passes through (:class:`~qmpd.qcow2.cache.HostDiscards`).
"""

from __future__ import annotations

from collections.abc import Iterator

from qmpd.qcow2.allocator import ClusterAllocator
from qmpd.qcow2.cache import HostDiscards
from qmpd.qcow2.entries import cluster_type, sub_alloc_range
from qmpd.qcow2.spec import (
    CLUSTER_COMPRESSED,
    CLUSTER_NORMAL,
    CLUSTER_ZERO_ALLOC,
    DISCARD_REQUEST,
    L2_BITMAP_ALL_ZEROES,
    QCOW_OFLAG_ZERO,
)
from qmpd.qcow2.tables import ClusterTables


class ClusterZeroing:
    """Cluster-granular zeroing and discarding of guest ranges."""

    def __init__(self, tables: ClusterTables, allocator: ClusterAllocator,
                 discards: HostDiscards) -> None:
        self.tables = tables
        self.allocator = allocator
        self.discards = discards
        self.geo = tables.geo

    def _slots(self, offset: int, nb_clusters: int) -> Iterator[tuple[bytearray, int, int, int, int]]:
        """The L2 slots of ``nb_clusters`` clusters from ``offset`` on, ready to
        change: (table, index, the table's host offset, entry, bitmap).  Each
        table is allocated or copied for writing as its first slot comes up
        (zero_in_l2_slice and discard_in_l2_slice walk them the same way)."""
        geo = self.geo
        tables = self.tables
        while nb_clusters > 0:
            table, idx, l2off = tables.table_for_write(offset)
            n = min(nb_clusters, geo.l2_size - idx)
            for i in range(idx, idx + n):
                yield table, i, l2off, tables.entry(table, i), tables.bitmap(table, i)
            nb_clusters -= n
            offset += n * geo.cluster_size

    def _zero_l2_subclusters(self, offset: int, nb_subclusters: int) -> bool:
        """Set zero bits for subclusters of one cluster; False for compressed ones."""
        tables = self.tables
        table, idx, l2off = tables.table_for_write(offset)
        entry = tables.entry(table, idx)
        if cluster_type(self.geo, entry) == CLUSTER_COMPRESSED:
            return False  # cannot partially zeroize compressed clusters
        sc = (offset % self.geo.cluster_size) // self.geo.subcluster_size
        old = tables.bitmap(table, idx)
        rng = sub_alloc_range(sc, sc + nb_subclusters)
        new = (old | (rng << 32)) & ~rng
        if new != old:
            tables.set(table, l2off, idx, entry, new)
        return True

    def zeroize(self, offset: int, nbytes: int, unmap: bool, *, virtual_size: int,
                has_backing: bool) -> bool:
        """qcow2_subcluster_zeroize; False means -ENOTSUP."""
        geo = self.geo
        tables = self.tables
        cs = geo.cluster_size
        if geo.version < 3:
            if not has_backing:
                self.discard(offset, nbytes, DISCARD_REQUEST, False, has_backing=False)
                return True
            return False
        end_offset = offset + nbytes
        head = min(end_offset, -(-offset // cs) * cs) - offset
        offset += head
        tail = 0 if end_offset >= virtual_size else (
            end_offset - max(offset, end_offset & ~(cs - 1)))
        end_offset -= tail
        scs = geo.subcluster_size
        with self.discards.batched():
            if head and not self._zero_l2_subclusters(offset - head, -(-head // scs)):
                return False
            nb = -(-(end_offset - offset) // cs) if end_offset > offset else 0
            for table, idx, l2off, old, old_bm in self._slots(offset, nb):
                ctype = cluster_type(geo, old)
                do_unmap = ctype == CLUSTER_COMPRESSED or (
                    unmap and ctype in (CLUSTER_NORMAL, CLUSTER_ZERO_ALLOC))
                new = 0 if do_unmap else old
                if geo.extended_l2:
                    new_bm = L2_BITMAP_ALL_ZEROES
                    if old == new and old_bm == new_bm:
                        continue
                    tables.set(table, l2off, idx, new, new_bm)
                else:
                    new |= QCOW_OFLAG_ZERO
                    if old == new:
                        continue
                    tables.set(table, l2off, idx, new)
                if do_unmap:
                    self.allocator.free_entry(old, DISCARD_REQUEST)
            if tail and not self._zero_l2_subclusters(end_offset, -(-tail // scs)):
                return False
        return True

    def discard(self, offset: int, nbytes: int, dtype: int, full_discard: bool, *,
                has_backing: bool) -> None:
        """qcow2_cluster_discard."""
        geo = self.geo
        tables = self.tables
        nb = -(-nbytes // geo.cluster_size)
        with self.discards.batched():
            for table, idx, l2off, old, old_bm in self._slots(offset, nb):
                ctype = cluster_type(geo, old)
                new, new_bm = old, old_bm
                if full_discard:
                    new = new_bm = 0
                elif has_backing or ctype in (
                        CLUSTER_NORMAL, CLUSTER_ZERO_ALLOC, CLUSTER_COMPRESSED):
                    if geo.extended_l2:
                        new, new_bm = 0, L2_BITMAP_ALL_ZEROES
                    else:
                        new = QCOW_OFLAG_ZERO if geo.version >= 3 else 0
                if old == new and old_bm == new_bm:
                    continue
                tables.set(table, l2off, idx, new, new_bm if geo.extended_l2 else None)
                self.allocator.free_entry(old, dtype)
