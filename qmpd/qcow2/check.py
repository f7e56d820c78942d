"""Consistency check of a qcow2 image (QEMU 7.2 block/qcow2-refcount.c
qcow2_check_refcounts, without repairs), for ``qmpd-img check``.

The image's bytes are read afresh, not through :class:`~qmpd.qcow2.image.Qcow2Image`'s
caches: a check must not trust the structures it checks.  The references to
every cluster are counted (header, L1 and L2 tables, data and compressed
clusters, snapshot L1 tables and table, the refcount table and blocks,
persistent bitmaps) and compared with the on-disk refcounts, then the
OFLAG_COPIED flags of the active L1/L2 entries are checked.  Messages are
QEMU's, in its order; they go to ``messages`` (qemu-img prints them on stderr).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from qmpd.qcow2.bitmaps import BME_TABLE_ENTRY_OFFSET_MASK, DIR_ENTRY, dir_entry_size
from qmpd.qcow2.header import Qcow2Header, parse_qcow2_header
from qmpd.qcow2.spec import (
    COMPRESSED_SECTOR_SIZE,
    L1E_OFFSET_MASK,
    L2_BITMAP_ALL_ALLOC,
    L2E_OFFSET_MASK,
    QCOW_OFLAG_COMPRESSED,
    QCOW_OFLAG_COPIED,
    QCOW_OFLAG_ZERO,
    REFT_OFFSET_MASK,
)
from qmpd.qcow2.store import ByteStore, read_exact

L1E_RESERVED_MASK = 0x7F000000000001FF
L2E_STD_RESERVED_MASK = 0x3F000000000001FE
REFT_RESERVED_MASK = 0x1FF
SNAPSHOT_HEADER = struct.Struct(">QIHHIIQII")

# qcow2_get_cluster_type's answers
UNALLOCATED, ZERO_PLAIN, ZERO_ALLOC, NORMAL, COMPRESSED = range(5)


@dataclass
class CheckResult:
    """BdrvCheckResult with its BlockFragInfo."""

    corruptions: int = 0
    leaks: int = 0
    check_errors: int = 0
    image_end_offset: int = 0
    total_clusters: int = 0
    allocated_clusters: int = 0
    fragmented_clusters: int = 0
    compressed_clusters: int = 0
    messages: list[str] = field(default_factory=list)


class _Checker:
    def __init__(self, store: ByteStore, hdr: Qcow2Header) -> None:
        self.store = store
        self.h = hdr
        self.bits = hdr.cluster_bits
        self.cs = hdr.cluster_size
        self.extended = hdr.extended_l2
        self.l2_entry_size = 16 if self.extended else 8
        self.l2_size = self.cs // self.l2_entry_size
        self.file_len = store.size()
        self.res = CheckResult()
        self.counts: list[int] = []
        self.refcount_max = (1 << hdr.refcount_bits) - 1 if hdr.refcount_bits < 64 \
            else (1 << 64) - 1
        nrt = hdr.refcount_table_clusters << (self.bits - 3)
        raw = read_exact(store, hdr.refcount_table_offset, nrt * 8) if nrt else b""
        self.reftable = list(struct.unpack(f">{nrt}Q", raw))
        self.block_bits = self.bits - (hdr.refcount_order - 3)

    def say(self, text: str) -> None:
        self.res.messages.append(text)

    # -- the on-disk refcounts (qcow2_get_refcount) ---------------------------------
    def refcount(self, cluster: int) -> int:
        idx = cluster >> self.block_bits
        if idx >= len(self.reftable):
            return 0
        block = self.reftable[idx] & REFT_OFFSET_MASK
        if not block:
            return 0
        i = cluster & ((1 << self.block_bits) - 1)
        width = self.h.refcount_bits
        if width >= 8:
            nbytes = width // 8
            raw = read_exact(self.store, block + i * nbytes, nbytes)
            return int.from_bytes(raw, "big")
        byte = read_exact(self.store, block + (i * width) // 8, 1)[0]
        shift = (i * width) % 8
        return (byte >> shift) & ((1 << width) - 1)

    # -- the in-memory refcount table (qcow2_inc_refcounts_imrt) --------------------
    def inc(self, offset: int, size: int) -> None:
        if size <= 0:
            return
        if offset + size - self.file_len >= self.cs:
            self.say("ERROR: counting reference for region exceeding the end of the file "
                     f"by one cluster or more: offset {offset:#x} size {size:#x}")
            self.res.corruptions += 1
            return
        first = offset >> self.bits
        last = (offset + size - 1) >> self.bits
        for k in range(first, last + 1):
            if k >= len(self.counts):
                self.counts.extend([0] * (k + 1 - len(self.counts)))
            if self.counts[k] == self.refcount_max:
                self.say(f"ERROR: overflow cluster offset={k << self.bits:#x}")
                self.say("Use qemu-img amend to increase the refcount entry width or "
                         "qemu-img convert to create a clean copy if the image cannot be "
                         "opened for writing")
                self.res.corruptions += 1
                continue
            self.counts[k] += 1

    # -- tables ------------------------------------------------------------------------
    def cluster_type(self, entry: int) -> int:
        if entry & QCOW_OFLAG_COMPRESSED:
            return COMPRESSED
        if entry & QCOW_OFLAG_ZERO and not self.extended:
            return ZERO_ALLOC if entry & L2E_OFFSET_MASK else ZERO_PLAIN
        if not entry & L2E_OFFSET_MASK:
            return UNALLOCATED
        return NORMAL

    def l2_entries(self, l2_offset: int) -> list[tuple[int, int]]:
        raw = read_exact(self.store, l2_offset, self.cs)
        if self.extended:
            vals = struct.unpack(f">{self.l2_size * 2}Q", raw)
            return [(vals[2 * i], vals[2 * i + 1]) for i in range(self.l2_size)]
        return [(v, 0) for v in struct.unpack(f">{self.l2_size}Q", raw)]

    def check_l2(self, l2_offset: int, frag: bool) -> None:
        res = self.res
        next_contiguous = 0
        csize_shift = 62 - (self.bits - 8)
        csize_mask = (1 << (self.bits - 8)) - 1
        coffset_mask = (1 << csize_shift) - 1
        for i, (entry, bitmap) in enumerate(self.l2_entries(l2_offset)):
            kind = self.cluster_type(entry)
            if kind != COMPRESSED and entry & L2E_STD_RESERVED_MASK:
                self.say(f"ERROR found l2 entry with reserved bits set: {entry:x}")
                res.corruptions += 1
            if kind == COMPRESSED:
                if entry & QCOW_OFLAG_COPIED:
                    self.say(f"ERROR: coffset={entry & coffset_mask:#x}: copied flag must never "
                             "be set for compressed clusters")
                    entry &= ~QCOW_OFLAG_COPIED
                    res.corruptions += 1
                if bitmap:
                    self.say(f"ERROR compressed cluster {i} with non-zero subcluster "
                             f"allocation bitmap, entry={entry:#x}")
                    res.corruptions += 1
                    continue
                coffset = entry & coffset_mask
                nb_csectors = ((entry >> csize_shift) & csize_mask) + 1
                csize = nb_csectors * COMPRESSED_SECTOR_SIZE - \
                    (coffset & (COMPRESSED_SECTOR_SIZE - 1))
                self.inc(coffset, csize)
                if frag:
                    res.allocated_clusters += 1
                    res.compressed_clusters += 1
                    res.fragmented_clusters += 1
            elif kind in (ZERO_ALLOC, NORMAL):
                offset = entry & L2E_OFFSET_MASK
                if (bitmap >> 32) & bitmap:
                    res.corruptions += 1
                    self.say(f"ERROR offset={offset:x}: Allocated cluster has corrupted "
                             "subcluster allocation bitmap")
                if offset & (self.cs - 1):
                    res.corruptions += 1
                    data = bool(bitmap & L2_BITMAP_ALL_ALLOC) if self.extended \
                        else not entry & QCOW_OFLAG_ZERO
                    if not data:
                        self.say(f"ERROR offset={offset:x}: Preallocated cluster is not "
                                 "properly aligned; L2 entry corrupted.")
                    else:
                        self.say(f"ERROR offset={offset:x}: Data cluster is not properly "
                                 "aligned; L2 entry corrupted.")
                if frag:
                    res.allocated_clusters += 1
                    if next_contiguous and offset != next_contiguous:
                        res.fragmented_clusters += 1
                    next_contiguous = offset + self.cs
                self.inc(offset, self.cs)
            elif kind == UNALLOCATED and bitmap & L2_BITMAP_ALL_ALLOC:
                res.corruptions += 1
                self.say("ERROR: Unallocated cluster has non-zero subcluster allocation map")

    def read_l1(self, offset: int, size: int) -> list[int]:
        raw = read_exact(self.store, offset, size * 8) if size else b""
        return list(struct.unpack(f">{size}Q", raw))

    def check_l1(self, offset: int, size: int, frag: bool) -> None:
        if not size:
            return
        self.inc(offset, size * 8)
        for entry in self.read_l1(offset, size):
            if not entry:
                continue
            if entry & L1E_RESERVED_MASK:
                self.say(f"ERROR found L1 entry with reserved bits set: {entry:x}")
                self.res.corruptions += 1
            l2 = entry & L1E_OFFSET_MASK
            self.inc(l2, self.cs)
            if l2 & (self.cs - 1):
                self.say(f"ERROR l2_offset={l2:x}: Table is not cluster aligned; "
                         "L1 entry corrupted")
                self.res.corruptions += 1
            self.check_l2(l2, frag)

    def snapshots(self) -> None:
        """The snapshots' L1 tables, then the snapshot table itself."""
        h = self.h
        pos = h.snapshots_offset
        for _ in range(h.nb_snapshots):
            (l1_off, l1_size, id_len, name_len, _s, _ns, _vm, _vms,
             extra) = SNAPSHOT_HEADER.unpack(read_exact(self.store, pos, SNAPSHOT_HEADER.size))
            body = pos + SNAPSHOT_HEADER.size + extra
            ident = read_exact(self.store, body, id_len).decode("utf-8", "replace")
            name = read_exact(self.store, body + id_len, name_len).decode("utf-8", "replace")
            pos = (body + id_len + name_len + 7) & ~7
            if l1_off & (self.cs - 1):
                self.say(f"ERROR snapshot {ident} ({name}) l1_offset={l1_off:#x}: L1 table "
                         "is not cluster aligned; snapshot table entry corrupted")
                self.res.corruptions += 1
                continue
            self.check_l1(l1_off, l1_size, False)
        self.inc(h.snapshots_offset, pos - h.snapshots_offset)

    def bitmaps(self) -> None:
        """qcow2_check_bitmaps_refcounts."""
        h = self.h
        if not h.nb_bitmaps:
            return
        self.inc(h.bitmap_directory_offset, h.bitmap_directory_size)
        raw = read_exact(self.store, h.bitmap_directory_offset, h.bitmap_directory_size)
        pos = 0
        while pos + DIR_ENTRY.size <= len(raw):
            toff, tsize, _flags, _type, _gbits, nlen, xlen = DIR_ENTRY.unpack_from(raw, pos)
            pos += dir_entry_size(nlen, xlen)
            self.inc(toff, tsize * 8)
            table = struct.unpack(f">{tsize}Q", read_exact(self.store, toff, tsize * 8)) \
                if tsize else ()
            for entry in table:
                off = entry & BME_TABLE_ENTRY_OFFSET_MASK
                if entry & 0xFF000000000001FE or off & (self.cs - 1):
                    self.res.corruptions += 1
                    continue
                if off:
                    self.inc(off, self.cs)

    def refblocks(self) -> None:
        """check_refblocks (without repairs)."""
        nb_clusters = len(self.counts)
        for i, entry in enumerate(self.reftable):
            offset = entry & REFT_OFFSET_MASK
            cluster = offset >> self.bits
            if entry & REFT_RESERVED_MASK:
                self.say(f"ERROR refcount table entry {i} has reserved bits set")
                self.res.corruptions += 1
                continue
            if offset & (self.cs - 1):
                self.say(f"ERROR refcount block {i} is not cluster aligned; refcount table "
                         "entry corrupted")
                self.res.corruptions += 1
                continue
            if cluster >= nb_clusters:
                self.res.corruptions += 1
                self.say(f"ERROR refcount block {i} is outside image")
                continue
            if offset:
                self.inc(offset, self.cs)
                if self.counts[cluster] != 1:
                    self.say(f"ERROR refcount block {i} refcount={self.counts[cluster]}")
                    self.res.corruptions += 1

    def compare(self) -> int:
        """compare_refcounts: returns the highest cluster in use."""
        highest = 0
        for i, computed in enumerate(self.counts):
            ondisk = self.refcount(i)
            if ondisk or computed:
                highest = i
            if ondisk != computed:
                self.say(f"{'ERROR' if ondisk < computed else 'Leaked'} cluster {i} "
                         f"refcount={ondisk} reference={computed}")
                if ondisk < computed:
                    self.res.corruptions += 1
                else:
                    self.res.leaks += 1
        return highest

    def oflag_copied(self) -> None:
        """check_oflag_copied (without repairs)."""
        for i, l1e in enumerate(self.read_l1(self.h.l1_table_offset, self.h.l1_size)):
            l2 = l1e & L1E_OFFSET_MASK
            if not l2:
                continue
            rc = self.refcount(l2 >> self.bits)
            if (rc == 1) != bool(l1e & QCOW_OFLAG_COPIED):
                self.res.corruptions += 1
                self.say(f"ERROR OFLAG_COPIED L2 cluster: l1_index={i} l1_entry={l1e:x} "
                         f"refcount={rc}")
            for entry, _bitmap in self.l2_entries(l2):
                if self.cluster_type(entry) not in (NORMAL, ZERO_ALLOC):
                    continue
                rc = self.refcount((entry & L2E_OFFSET_MASK) >> self.bits)
                if (rc == 1) != bool(entry & QCOW_OFLAG_COPIED):
                    self.res.corruptions += 1
                    self.say(f"ERROR OFLAG_COPIED data cluster: l2_entry={entry:x} "
                             f"refcount={rc}")

    def run(self) -> CheckResult:
        h = self.h
        cs = self.cs
        self.counts = [0] * (-(-self.file_len // cs))
        self.res.total_clusters = -(-((h.virtual_size + 511) & ~511) // cs)
        self.inc(0, cs)
        self.check_l1(h.l1_table_offset, h.l1_size, True)
        self.snapshots()
        self.inc(h.refcount_table_offset, len(self.reftable) * 8)
        self.bitmaps()
        self.refblocks()
        highest = self.compare()
        self.oflag_copied()
        self.res.image_end_offset = (highest + 1) * cs
        return self.res


def check_qcow2(store: ByteStore) -> CheckResult:
    """qcow2_co_check without repairs: what ``qemu-img check`` reports."""
    bits = struct.unpack(">I", read_exact(store, 20, 4))[0]
    hdr = parse_qcow2_header(read_exact(store, 0, 1 << bits))
    return _Checker(store, hdr).run()
