"""Guest writes to host clusters: find or allocate them, with their COW areas.

A port of QEMU 7.2's qcow2-cluster.c write path: qcow2_alloc_host_offset
(handle_copied, then handle_alloc), calculate_l2_meta (which parts of the
first and last cluster must be copied from the old data) and
qcow2_alloc_cluster_link_l2 (point the L2 entries at the new clusters and free
what they replace).  An allocation in flight is a :class:`HostAllocation`.
"""

from __future__ import annotations

from dataclasses import dataclass

from qmpd.qcow2.allocator import ClusterAllocator
from qmpd.qcow2.entries import needs_new_alloc, sub_alloc_range, subcluster_type
from qmpd.qcow2.spec import (
    DISCARD_NEVER,
    L2_BITMAP_ALL_ALLOC,
    L2E_OFFSET_MASK,
    QCOW_OFLAG_COPIED,
    REQUEST_MAX_BYTES,
    SC_COMPRESSED,
    SC_NORMAL,
    SC_UNALLOC_ALLOC,
    SC_ZERO_ALLOC,
)
from qmpd.qcow2.tables import ClusterTables


@dataclass
class HostAllocation:
    """An allocation in flight (QCowL2Meta); COW bounds are relative to ``offset``."""

    offset: int  # guest offset of the first cluster
    alloc_offset: int
    nb_clusters: int
    cow_start_from: int
    cow_start_to: int
    cow_end_from: int
    cow_end_to: int
    keep_old: bool = False

    @property
    def data_start(self) -> int:
        return self.offset + self.cow_start_to

    @property
    def data_end(self) -> int:
        return self.offset + self.cow_end_from


class HostMapper:
    """Maps guest write ranges to host clusters, allocating where needed."""

    def __init__(self, tables: ClusterTables, allocator: ClusterAllocator) -> None:
        self.tables = tables
        self.allocator = allocator
        self.geo = tables.geo

    def _count_single_write_clusters(self, nb: int, table: bytearray, idx: int,
                                     new_alloc: bool) -> int:
        """How many clusters from ``idx`` on one host write can cover."""
        geo = self.geo
        entry_of = self.tables.entry
        expected = entry_of(table, idx) & L2E_OFFSET_MASK
        i = 0
        while i < nb:
            entry = entry_of(table, idx + i)
            if needs_new_alloc(geo, entry) != new_alloc:
                break
            if not new_alloc:
                if expected != entry & L2E_OFFSET_MASK:
                    break
                expected += geo.cluster_size
            i += 1
        return i

    def _calculate_l2_meta(self, host_cluster: int, guest_offset: int, nbytes: int,
                           table: bytearray, keep_old: bool) -> HostAllocation | None:
        """calculate_l2_meta: the COW areas of a write, or None when there are none."""
        geo = self.geo
        tables = self.tables
        cs = geo.cluster_size
        scs = geo.subcluster_size
        spc = geo.subclusters_per_cluster
        l2_index = (guest_offset >> geo.cluster_bits) & (geo.l2_size - 1)
        cow_start_to = guest_offset & (cs - 1)
        cow_end_from = cow_start_to + nbytes
        nb_clusters = -(-cow_end_from // cs)
        skip_cow = keep_old
        for i in range(nb_clusters):
            entry = tables.entry(table, l2_index + i)
            bitmap = tables.bitmap(table, l2_index + i)
            if skip_cow:
                write_from = max(cow_start_to, i * cs)
                write_to = min(cow_end_from, (i + 1) * cs)
                first_sc = (write_from % cs) // scs
                last_sc = ((write_to - 1) % cs) // scs
                for sc in range(first_sc, last_sc + 1):
                    if subcluster_type(geo, entry, bitmap, sc) != SC_NORMAL:
                        skip_cow = False
                        break
        if skip_cow:
            return None
        entry = tables.entry(table, l2_index)
        bitmap = tables.bitmap(table, l2_index)
        sc_index = (guest_offset & (cs - 1)) // scs
        sctype = subcluster_type(geo, entry, bitmap, sc_index)
        alloc_bits = bitmap & L2_BITMAP_ALL_ALLOC
        if not keep_old:
            if sctype == SC_COMPRESSED:
                cow_start_from = 0
            elif sctype in (SC_NORMAL, SC_ZERO_ALLOC, SC_UNALLOC_ALLOC):
                if geo.extended_l2:
                    ctz = (alloc_bits & -alloc_bits).bit_length() - 1 if alloc_bits else 32
                    cow_start_from = min(sc_index, ctz) * scs
                else:
                    cow_start_from = 0
            else:
                cow_start_from = sc_index * scs
        elif sctype == SC_NORMAL:
            cow_start_from = cow_start_to
        else:
            cow_start_from = sc_index * scs
        l2_last = l2_index + nb_clusters - 1
        entry = tables.entry(table, l2_last)
        bitmap = tables.bitmap(table, l2_last)
        sc_index = ((guest_offset + nbytes - 1) & (cs - 1)) // scs
        sctype = subcluster_type(geo, entry, bitmap, sc_index)
        alloc_bits = bitmap & L2_BITMAP_ALL_ALLOC
        if not keep_old:
            if sctype == SC_COMPRESSED:
                cow_end_to = -(-cow_end_from // cs) * cs
            elif sctype in (SC_NORMAL, SC_ZERO_ALLOC, SC_UNALLOC_ALLOC):
                cow_end_to = -(-cow_end_from // cs) * cs
                if geo.extended_l2:
                    clz = 32 - alloc_bits.bit_length()
                    cow_end_to -= min(spc - sc_index - 1, clz) * scs
            else:
                cow_end_to = -(-cow_end_from // scs) * scs
        elif sctype == SC_NORMAL:
            cow_end_to = cow_end_from
        else:
            cow_end_to = -(-cow_end_from // scs) * scs
        return HostAllocation(guest_offset & ~(cs - 1), host_cluster, nb_clusters,
                              cow_start_from, cow_start_to, cow_end_from, cow_end_to, keep_old)

    def alloc_host_offset(self, offset: int,
                          nbytes: int) -> tuple[int, int, list[HostAllocation]]:
        """qcow2_alloc_host_offset: (host offset, bytes covered, new allocations)."""
        geo = self.geo
        tables = self.tables
        cs = geo.cluster_size
        start = offset
        remaining = nbytes
        cluster_offset: int | None = None
        host_offset: int | None = None
        cur = 0
        metas: list[HostAllocation] = []
        while True:
            if host_offset is None and cluster_offset is not None:
                host_offset = cluster_offset
            start += cur
            remaining -= cur
            if cluster_offset is not None:
                cluster_offset += cur
            if remaining == 0:
                break
            cur = remaining
            # handle_copied
            l2_index = (start >> geo.cluster_bits) & (geo.l2_size - 1)
            nb = min(-(-((start & (cs - 1)) + cur) // cs), geo.l2_size - l2_index)
            nb = min(nb, REQUEST_MAX_BYTES >> geo.cluster_bits)
            table, l2_index, _l2off = tables.table_for_write(start)
            entry = tables.entry(table, l2_index)
            if not needs_new_alloc(geo, entry):
                coff = entry & L2E_OFFSET_MASK
                if cluster_offset is not None and coff != cluster_offset:
                    cur = 0
                    break
                keep = self._count_single_write_clusters(nb, table, l2_index, False)
                cur = min(cur, keep * cs - (start & (cs - 1)))
                meta = self._calculate_l2_meta(coff, start, cur, table, True)
                if meta is not None:
                    metas.append(meta)
                if cluster_offset is None:
                    cluster_offset = coff + (start & (cs - 1))
                continue
            # handle_alloc
            nb = self._count_single_write_clusters(nb, table, l2_index, True)
            if cluster_offset is None:
                alloc = self.allocator.alloc(nb * cs)
            else:
                alloc = cluster_offset & ~(cs - 1)
                nb = self.allocator.alloc_at(alloc, nb)
                if nb == 0:
                    cur = 0
                    break
            requested = cur + (start & (cs - 1))
            nb_bytes = min(requested, nb * cs)
            if cluster_offset is None:
                cluster_offset = alloc + (start & (cs - 1))
            cur = min(cur, nb_bytes - (start & (cs - 1)))
            meta = self._calculate_l2_meta(alloc, start, cur, table, False)
            assert meta is not None
            metas.append(meta)
        assert host_offset is not None
        return host_offset, nbytes - remaining, metas

    def abort(self, m: HostAllocation) -> None:
        """qcow2_alloc_cluster_abort: a data write failed, its new clusters go."""
        if not m.keep_old:
            self.allocator.free(m.alloc_offset, m.nb_clusters * self.geo.cluster_size,
                                DISCARD_NEVER)

    def link(self, m: HostAllocation, prealloc: bool = False) -> None:
        """qcow2_alloc_cluster_link_l2, then free the clusters it replaced."""
        geo = self.geo
        tables = self.tables
        cs = geo.cluster_size
        old: list[int] = []
        table, idx, l2off = tables.table_for_write(m.offset)
        for i in range(m.nb_clusters):
            entry = tables.entry(table, idx + i)
            if entry != 0:
                old.append(entry)
            bitmap = None
            if geo.extended_l2 and not prealloc:
                bitmap = tables.bitmap(table, idx + i)
                written_from = max(m.cow_start_from, i * cs)
                written_to = min(m.cow_end_to, (i + 1) * cs)
                first_sc = (written_from - i * cs) // geo.subcluster_size
                last_sc = (written_to - 1 - i * cs) // geo.subcluster_size
                rng = sub_alloc_range(first_sc, last_sc + 1)
                bitmap = (bitmap | rng) & ~(rng << 32)
            tables.set(table, l2off, idx + i, (m.alloc_offset + i * cs) | QCOW_OFLAG_COPIED,
                       bitmap)
        if not m.keep_old:
            for entry in old:
                self.allocator.free_entry(entry, DISCARD_NEVER)
