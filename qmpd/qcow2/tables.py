"""The L1 table and the L2 tables it points to: lookup, entries, growth and COW.

An L2 table is read through the :class:`~qmpd.qcow2.cache.MetadataCache` and
changed in place there; a table another L1 entry (a snapshot) may share is
copied before a write (``table_for_write``: QEMU's get_cluster_table with
l2_allocate).  The L1 table is kept whole in memory and written entry by
entry, as QEMU does.
"""

from __future__ import annotations

import struct

from qmpd.qcow2.allocator import ClusterAllocator
from qmpd.qcow2.cache import L2_TABLE, MetadataCache
from qmpd.qcow2.spec import (
    DISCARD_OTHER,
    HEADER_L1_OFFSET,
    L1E_OFFSET_MASK,
    QCOW_MAX_L1_SIZE,
    QCOW_OFLAG_COPIED,
    Geometry,
    Qcow2FormatError,
)
from qmpd.qcow2.store import read_table


class ClusterTables:
    """Guest offset to L2 entry: the active L1 table and cached L2 tables."""

    def __init__(self, geo: Geometry, cache: MetadataCache, allocator: ClusterAllocator,
                 l1_offset: int, l1_size: int) -> None:
        if l1_size > QCOW_MAX_L1_SIZE // 8:
            raise Qcow2FormatError("Active L1 table too large")
        self.geo, self.cache, self.allocator = geo, cache, allocator
        self.l1_offset, self.l1_size = l1_offset, l1_size
        self.l1 = read_table(cache.store, l1_offset, l1_size)

    # ------------------------------------------------------------ L1

    def _write_l1_entry(self, index: int) -> None:
        self.cache.store.write(self.l1_offset + 8 * index, struct.pack(">Q", self.l1[index]))

    def grow_l1(self, min_size: int, exact_size: bool) -> None:
        """qcow2_grow_l1_table."""
        if min_size <= self.l1_size:
            return
        if exact_size:
            new_size = min_size
        else:
            new_size = max(self.l1_size, 1)
            while min_size > new_size:
                new_size = (new_size * 3 + 1) // 2
        if new_size > QCOW_MAX_L1_SIZE // 8:
            raise Qcow2FormatError("File too large")  # -EFBIG
        new_table = self.l1 + [0] * (new_size - self.l1_size)
        new_offset = self.allocator.alloc(new_size * 8)
        self.cache.flush()
        store = self.cache.store
        store.write(new_offset, struct.pack(f">{new_size}Q", *new_table))
        store.write(HEADER_L1_OFFSET, struct.pack(">IQ", new_size, new_offset))
        old_offset, old_size = self.l1_offset, self.l1_size
        self.l1 = new_table
        self.l1_offset = new_offset
        self.l1_size = new_size
        if old_size:
            self.allocator.free(old_offset, old_size * 8, DISCARD_OTHER)

    # ------------------------------------------------------------ L2

    def _allocate_l2(self, l1_index: int) -> None:
        """l2_allocate: a new L2 table for an L1 entry (a copy of the old one, if any)."""
        old = self.l1[l1_index]
        l2_offset = self.allocator.alloc(self.geo.l2_size * self.geo.l2_entry_size)
        if old & L1E_OFFSET_MASK:
            table = bytearray(self.cache.load_l2(old & L1E_OFFSET_MASK))
        else:
            table = bytearray(self.geo.cluster_size)
        self.cache.put_l2(l2_offset, table)
        self.cache.flush()
        self.l1[l1_index] = l2_offset | QCOW_OFLAG_COPIED
        self._write_l1_entry(l1_index)

    def table_for_write(self, offset: int) -> tuple[bytearray, int, int]:
        """get_cluster_table: (L2 table, index in it, its host offset) for a write.

        The L1 table grows and the L2 table is allocated or copied as needed.
        """
        geo = self.geo
        l1_index = offset >> (geo.l2_bits + geo.cluster_bits)
        if l1_index >= self.l1_size:
            self.grow_l1(l1_index + 1, False)
        l2_offset = self.l1[l1_index] & L1E_OFFSET_MASK
        if not self.l1[l1_index] & QCOW_OFLAG_COPIED:
            self._allocate_l2(l1_index)
            if l2_offset:
                self.allocator.free(l2_offset, geo.cluster_size, DISCARD_OTHER)
            l2_offset = self.l1[l1_index] & L1E_OFFSET_MASK
        l2_index = (offset >> geo.cluster_bits) & (geo.l2_size - 1)
        return self.cache.load_l2(l2_offset), l2_index, l2_offset

    def lookup(self, offset: int) -> tuple[int, int]:
        """(L2 entry, bitmap) for a guest offset without allocating anything."""
        geo = self.geo
        l1_index = offset >> (geo.l2_bits + geo.cluster_bits)
        if l1_index >= self.l1_size:
            return 0, 0
        l2_offset = self.l1[l1_index] & L1E_OFFSET_MASK
        if not l2_offset:
            return 0, 0
        table = self.cache.load_l2(l2_offset)
        idx = (offset >> geo.cluster_bits) & (geo.l2_size - 1)
        return self.entry(table, idx), self.bitmap(table, idx)

    def unmapped_end(self, offset: int) -> int | None:
        """Where the guest range around ``offset`` that has no L2 table ends
        (all of it unallocated), or None when ``offset`` has one."""
        shift = self.geo.l2_bits + self.geo.cluster_bits
        l1_index = offset >> shift
        if l1_index >= self.l1_size:
            return 1 << 63
        if self.l1[l1_index] & L1E_OFFSET_MASK:
            return None
        return (l1_index + 1) << shift

    def entry(self, table: bytearray, index: int) -> int:
        pos = index * self.geo.l2_entry_size
        return int.from_bytes(table[pos : pos + 8], "big")

    def bitmap(self, table: bytearray, index: int) -> int:
        """The subcluster bitmap of an extended L2 entry (0 without extended L2)."""
        if not self.geo.extended_l2:
            return 0
        pos = index * 16 + 8
        return int.from_bytes(table[pos : pos + 8], "big")

    def set(self, table: bytearray, l2_offset: int, index: int, entry: int,
            bitmap: int | None = None) -> None:
        """Change an entry (and its bitmap, when given and extended L2)."""
        pos = index * self.geo.l2_entry_size
        table[pos : pos + 8] = entry.to_bytes(8, "big")
        if self.geo.extended_l2 and bitmap is not None:
            table[pos + 8 : pos + 16] = bitmap.to_bytes(8, "big")
        self.cache.dirty.add((L2_TABLE, l2_offset))
