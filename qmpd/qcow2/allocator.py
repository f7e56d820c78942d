"""Host cluster allocation: taking references on free clusters and dropping them.

qcow2_alloc_clusters, qcow2_alloc_clusters_at, qcow2_alloc_bytes (the
sub-cluster allocation compressed data uses) and qcow2_free_any_cluster, over
the refcounts of :class:`~qmpd.qcow2.refcount.RefcountTable`.  An
:class:`~qmpd.qcow2.refcount.Again` from the refcount code means a refcount
block was just allocated: the search starts over, as in QEMU.
"""

from __future__ import annotations

from qmpd.qcow2.entries import cluster_type, compressed_location
from qmpd.qcow2.refcount import Again, RefcountTable
from qmpd.qcow2.spec import (
    CLUSTER_COMPRESSED,
    CLUSTER_NORMAL,
    CLUSTER_ZERO_ALLOC,
    DISCARD_NEVER,
    L2E_OFFSET_MASK,
)


class ClusterAllocator:
    """Allocates host clusters (and compressed bytes) by their refcounts."""

    def __init__(self, refcounts: RefcountTable) -> None:
        self.refcounts = refcounts
        self.geo = refcounts.geo
        # Where the next compressed cluster's bytes may go (0: start a new cluster).
        self.free_byte_offset = 0

    def alloc(self, size: int) -> int:
        """qcow2_alloc_clusters: find free clusters and take a reference."""
        while True:
            offset = self.refcounts.find_free(size)
            try:
                self.refcounts.update(offset, size, 1, False, DISCARD_NEVER)
            except Again:
                continue
            return offset

    def alloc_at(self, offset: int, nb_clusters: int) -> int:
        """qcow2_alloc_clusters_at: take as many free clusters at offset as possible."""
        if nb_clusters == 0:
            return 0
        cluster_bits = self.geo.cluster_bits
        while True:
            idx = offset >> cluster_bits
            i = 0
            while i < nb_clusters and self.refcounts.get(idx + i) == 0:
                i += 1
            try:
                self.refcounts.update(offset, i << cluster_bits, 1, False, DISCARD_NEVER)
            except Again:
                continue
            return i

    def alloc_bytes(self, size: int) -> int:
        """qcow2_alloc_bytes: sub-cluster allocation for compressed data."""
        cs = self.geo.cluster_size
        refcounts = self.refcounts
        offset = self.free_byte_offset
        if offset and refcounts.get(offset >> self.geo.cluster_bits) == self.geo.refcount_max:
            offset = 0
        free_in_cluster = cs - (offset & (cs - 1))
        while True:
            if not offset or free_in_cluster < size:
                new_cluster = refcounts.find_free(cs)
                if not offset or ((offset + cs - 1) & ~(cs - 1)) != new_cluster:
                    offset = new_cluster
                    free_in_cluster = cs
                else:
                    free_in_cluster += cs
            try:
                refcounts.update(offset, size, 1, False, DISCARD_NEVER)
            except Again:
                offset = 0
                continue
            break
        self.free_byte_offset = offset + size
        if not self.free_byte_offset & (cs - 1):
            self.free_byte_offset = 0
        return offset

    def free(self, offset: int, size: int, dtype: int) -> None:
        self.refcounts.free(offset, size, dtype)

    def free_entry(self, l2_entry: int, dtype: int) -> None:
        """qcow2_free_any_cluster: free what an L2 entry points to."""
        ctype = cluster_type(self.geo, l2_entry)
        if ctype == CLUSTER_COMPRESSED:
            coffset, csize = compressed_location(self.geo, l2_entry)
            self.refcounts.free(coffset, csize, dtype)
        elif ctype in (CLUSTER_NORMAL, CLUSTER_ZERO_ALLOC):
            self.refcounts.free(l2_entry & L2E_OFFSET_MASK, self.geo.cluster_size, dtype)
