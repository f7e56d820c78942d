"""Reference counts: the refcount table, its blocks, and growing both.

A port of QEMU 7.2's qcow2-refcount.c core: reading and updating entries of
any width (1..64 bits), allocating refcount blocks (which may describe
themselves or need the table to grow: ``_Again`` is QEMU's -EAGAIN), building
a new self-describing refcount area, and the free-cluster search that uses
the refcounts (``find_free``).  Taking references on allocation and freeing
what L2 entries point to is :mod:`qmpd.qcow2.allocator`'s business.
"""

from __future__ import annotations

import struct

from qmpd.qcow2.cache import REFBLOCK, HostDiscards, MetadataCache
from qmpd.qcow2.spec import (
    DISCARD_NEVER,
    DISCARD_OTHER,
    HEADER_REFCOUNT_TABLE_OFFSET,
    REFT_OFFSET_MASK,
    Geometry,
    Qcow2FormatError,
)
from qmpd.qcow2.store import read_table


def refcount_metadata_size(
    clusters: int, cluster_size: int, refcount_order: int, generous_increase: bool
) -> tuple[int, int]:
    """qcow2_refcount_metadata_size: (bytes of refcount metadata, refblock count)."""
    blocks_per_table_cluster = cluster_size // 8
    refcounts_per_block = cluster_size * 8 // (1 << refcount_order)
    table = blocks = n = 0
    while True:
        last = n
        blocks = -(-(clusters + table + blocks) // refcounts_per_block)
        table = -(-blocks // blocks_per_table_cluster)
        n = clusters + blocks + table
        if n == last and generous_increase:
            clusters += -(-table // 2)
            n = 0
            generous_increase = False
        if n == last:
            break
    return (blocks + table) * cluster_size, blocks


# --------------------------------------------------------------------------
# Refcount entry accessors for every width (1..64 bits)


def _get_refcount(block: bytearray, index: int, order: int) -> int:
    if order == 4:
        return (block[2 * index] << 8) | block[2 * index + 1]
    if order == 3:
        return block[index]
    if order < 3:
        bits = 1 << order
        per_byte = 8 // bits
        byte = block[index // per_byte]
        return (byte >> (bits * (index % per_byte))) & ((1 << bits) - 1)
    width = 1 << (order - 3)
    return int.from_bytes(block[index * width : (index + 1) * width], "big")


def _set_refcount(block: bytearray, index: int, order: int, value: int) -> None:
    if order == 4:
        block[2 * index] = value >> 8
        block[2 * index + 1] = value & 0xFF
        return
    if order == 3:
        block[index] = value
        return
    if order < 3:
        bits = 1 << order
        per_byte = 8 // bits
        shift = bits * (index % per_byte)
        mask = ((1 << bits) - 1) << shift
        i = index // per_byte
        block[i] = (block[i] & ~mask & 0xFF) | ((value << shift) & mask)
        return
    width = 1 << (order - 3)
    block[index * width : (index + 1) * width] = value.to_bytes(width, "big")


class Again(Exception):
    """alloc_refcount_block's -EAGAIN: the caller restarts its search."""



class RefcountTable:
    """The refcount table (a list of refcount block offsets) and its blocks.

    ``free_cluster_index`` is QEMU's search hint: no cluster below it is
    free, so every update that frees a cluster lowers it.
    """

    def __init__(self, geo: Geometry, cache: MetadataCache, discards: HostDiscards,
                 table_offset: int, table_clusters: int) -> None:
        self.geo, self.cache, self.discards = geo, cache, discards
        self.offset = table_offset
        self.size = table_clusters * geo.cluster_size // 8
        self.table = read_table(cache.store, table_offset, self.size)
        self._update_max_index()
        self.free_cluster_index = 0

    @property
    def clusters(self) -> int:
        """The table's length in clusters (the header's refcount_table_clusters)."""
        return self.size * 8 // self.geo.cluster_size

    def _update_max_index(self) -> None:
        i = self.size - 1
        while i > 0 and (self.table[i] & REFT_OFFSET_MASK) == 0:
            i -= 1
        self.max_index = i

    def get(self, cluster_index: int) -> int:
        """The refcount of a host cluster (0 where no block describes it)."""
        geo = self.geo
        table_index = cluster_index >> geo.refcount_block_bits
        if table_index >= self.size:
            return 0
        block_offset = self.table[table_index] & REFT_OFFSET_MASK
        if not block_offset:
            return 0
        block = self.cache.load_refblock(block_offset)
        return _get_refcount(
            block, cluster_index & (geo.refcount_block_size - 1), geo.refcount_order
        )

    def last_used_cluster(self, nb_clusters: int) -> int:
        """The index of the last cluster below ``nb_clusters`` in use, or -1."""
        last = nb_clusters - 1
        while last >= 0 and self.get(last) == 0:
            last -= 1
        return last

    def find_free(self, size: int) -> int:
        """alloc_clusters_noref: the offset of enough free clusters, unreferenced."""
        if self.discards.caching:
            self.discards.process(True)
        nb = -(-size // self.geo.cluster_size)
        while True:
            i = 0
            while i < nb:
                idx = self.free_cluster_index
                self.free_cluster_index += 1
                if self.get(idx) != 0:
                    break
                i += 1
            if i == nb:
                break
        return (self.free_cluster_index - nb) << self.geo.cluster_bits

    def _in_same_block(self, a: int, b: int) -> bool:
        shift = self.geo.cluster_bits + self.geo.refcount_block_bits
        return (a >> shift) == (b >> shift)

    def _alloc_block(self, cluster_index: int) -> bytearray:
        """alloc_refcount_block: the block describing ``cluster_index``.

        Raises :class:`Again` after allocating one: the caller starts over.
        """
        geo = self.geo
        cs = geo.cluster_size
        rt_index = cluster_index >> geo.refcount_block_bits
        if rt_index < self.size:
            off = self.table[rt_index] & REFT_OFFSET_MASK
            if off:
                return self.cache.load_refblock(off)
        new_block = self.find_free(cs)
        if new_block == 0:
            raise Qcow2FormatError(
                "Preventing invalid allocation of refcount block at offset 0"
            )
        if self._in_same_block(new_block, cluster_index << geo.cluster_bits):
            block = self.cache.new_refblock(new_block)
            _set_refcount(
                block,
                (new_block >> geo.cluster_bits) & (geo.refcount_block_size - 1),
                geo.refcount_order,
                1,
            )
        else:
            # Described somewhere else: may recurse, raising Again from there.
            self.update(new_block, cs, 1, False, DISCARD_NEVER)
            self.cache.new_refblock(new_block)
        if rt_index < self.size:
            self.cache.store.write(self.offset + rt_index * 8, struct.pack(">Q", new_block))
            self.table[rt_index] = new_block
            self.max_index = max(self.max_index, rt_index)
            raise Again()
        blocks_used = -(
            -max(cluster_index + 1, (new_block >> geo.cluster_bits) + 1)
            // geo.refcount_block_size
        )
        meta_offset = blocks_used * geo.refcount_block_size * cs
        self.area(meta_offset, 0, False, rt_index, new_block)
        raise Again()

    def area(
        self,
        start_offset: int,
        additional_clusters: int,
        exact_size: bool,
        new_refblock_index: int,
        new_refblock_offset: int,
    ) -> int:
        """qcow2_refcount_area: new self-describing refcount table + blocks.

        Returns the end of the new area (where data may be allocated next).
        """
        geo = self.geo
        cs = geo.cluster_size
        _, total = refcount_metadata_size(
            start_offset // cs + additional_clusters, cs, geo.refcount_order, not exact_size
        )
        area_index = (start_offset // cs) // geo.refcount_block_size
        table_size = total if exact_size else total + -(-total // 2)
        per = cs // 8
        table_size = -(-table_size // per) * per
        table_clusters = table_size * 8 // cs
        new_table = [0] * table_size
        if table_size > self.max_index:
            n = self.max_index + 1
            new_table[:n] = self.table[:n]
        else:
            new_table[:] = self.table[:table_size]
        if new_refblock_offset:
            new_table[new_refblock_index] = new_refblock_offset
        additional = sum(1 for i in range(area_index, total) if not new_table[i])
        table_offset = start_offset + additional * cs
        end_offset = table_offset + table_clusters * cs
        block_offset = start_offset
        for i in range(area_index, total):
            if new_table[i]:
                block = self.cache.load_refblock(new_table[i])
                boff = new_table[i]
            else:
                block = self.cache.new_refblock(block_offset)
                boff = block_offset
                new_table[i] = block_offset
                block_offset += cs
            first_covered = i * geo.refcount_block_size * cs
            if first_covered < end_offset:
                j = (start_offset - first_covered) // cs if first_covered < start_offset else 0
                end_index = min((end_offset - first_covered) // cs, geo.refcount_block_size)
                for k in range(j, end_index):
                    _set_refcount(block, k, geo.refcount_order, 1)
                self.cache.dirty.add((REFBLOCK, boff))
        self.cache.flush()
        raw = struct.pack(f">{table_size}Q", *new_table)
        store = self.cache.store
        store.write(table_offset, raw)
        store.write(HEADER_REFCOUNT_TABLE_OFFSET, struct.pack(">QI", table_offset, table_clusters))
        old_offset, old_size = self.offset, self.size
        self.table = new_table
        self.size = table_size
        self.offset = table_offset
        self._update_max_index()
        self.free(old_offset, old_size * 8, DISCARD_OTHER)
        return end_offset

    def update(
        self, offset: int, length: int, addend: int, decrease: bool, dtype: int
    ) -> None:
        """update_refcount: add (or take) ``addend`` for every cluster of a range.

        On error (and on :class:`Again`) what was done is undone, as in QEMU.
        """
        if length <= 0:
            return
        geo = self.geo
        cs = geo.cluster_size
        cluster_bits = geo.cluster_bits
        block_bits = geo.refcount_block_bits
        block_mask = geo.refcount_block_size - 1
        order = geo.refcount_order
        dirty = self.cache.dirty
        discards = self.discards
        start = offset & ~(cs - 1)
        last = (offset + length - 1) & ~(cs - 1)
        cluster_offset = start
        old_table_index = -1
        block: bytearray | None = None
        block_off = 0
        try:
            while cluster_offset <= last:
                cluster_index = cluster_offset >> cluster_bits
                table_index = cluster_index >> block_bits
                if table_index != old_table_index:
                    try:
                        block = self._alloc_block(cluster_index)
                    except Again:
                        # Let the caller retry the same clusters first.
                        self.free_cluster_index = min(self.free_cluster_index, start >> cluster_bits)
                        raise
                    block_off = self.table[table_index] & REFT_OFFSET_MASK
                old_table_index = table_index
                assert block is not None
                dirty.add((REFBLOCK, block_off))
                idx = cluster_index & block_mask
                rc = _get_refcount(block, idx, order)
                if decrease:
                    if rc < addend:
                        raise Qcow2FormatError("refcount underflow")
                    rc -= addend
                else:
                    if rc + addend > geo.refcount_max:
                        raise Qcow2FormatError("refcount overflow")
                    rc += addend
                if rc == 0 and cluster_index < self.free_cluster_index:
                    self.free_cluster_index = cluster_index
                _set_refcount(block, idx, order, rc)
                if rc == 0 and discards.passthrough[dtype]:
                    discards.queue(cluster_offset, cs)
                cluster_offset += cs
        except (Again, Qcow2FormatError):
            if not discards.caching:
                discards.process(False)
            # Undo what was done so far, as QEMU does on error.
            self.update(offset, cluster_offset - offset, addend, not decrease, DISCARD_NEVER)
            raise
        if not discards.caching:
            discards.process(True)

    def free(self, offset: int, size: int, dtype: int) -> None:
        """qcow2_free_clusters: drop one reference from every cluster of a range."""
        try:
            self.update(offset, size, 1, True, dtype)
        except Qcow2FormatError:
            pass  # QEMU only logs a leak here
