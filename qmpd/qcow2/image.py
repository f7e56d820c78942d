"""A qcow2 image as the guest sees it: open, read, write, zero, discard, compress.

:class:`Qcow2Image` is the facade the block engine and ``qmpd-img`` use.  It
parses the header, wires the parts together (metadata cache, refcounts,
cluster allocator, L1/L2 tables, write mapping, zeroing) and implements the
block layer's requests over them, as QEMU 7.2's qcow2_co_* functions do, so
that every request leaves the image file byte-identical to QEMU's.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from qmpd.qcow2.allocator import ClusterAllocator
from qmpd.qcow2.cache import HostDiscards, MetadataCache
from qmpd.qcow2.entries import (
    BLOCK_STATUS_KIND,
    DATALESS_SUBCLUSTERS,
    compressed_entry,
    compressed_location,
    subcluster_type,
)
from qmpd.qcow2.header import build_header_cluster, parse_qcow2_header
from qmpd.qcow2.mapping import HostAllocation, HostMapper
from qmpd.qcow2.refcount import RefcountTable
from qmpd.qcow2.spec import (
    CLUSTER_COMPRESSED,
    CLUSTER_NORMAL,
    CLUSTER_UNALLOCATED,
    CLUSTER_ZERO_ALLOC,
    CLUSTER_ZERO_PLAIN,
    DISCARD_ALWAYS,
    DISCARD_REQUEST,
    HEADER_SIZE_OFFSET,
    INCOMPAT_DATA_FILE,
    L2E_OFFSET_MASK,
    MAX_CLUSTER_BITS,
    MIN_CLUSTER_BITS,
    QCOW_MAGIC_BYTES,
    SC_INVALID,
    SECTOR_SIZE,
    Geometry,
    Qcow2FormatError,
)
from qmpd.qcow2.store import BackingReader, ByteStore, read_exact
from qmpd.qcow2.tables import ClusterTables
from qmpd.qcow2.zeroing import ClusterZeroing

# The block layer's fallback for zeroes a driver refuses: a bounce buffer of
# at most this many bytes per write (MAX_WRITE_ZEROES_BOUNCE_BUFFER sectors).
_ZERO_BOUNCE_BYTES = 32768 * 512


@dataclass
class Extent:
    """A run of guest bytes with one allocation state (for map/read)."""

    offset: int
    length: int
    kind: str  # one of the CLUSTER_* names
    host_offset: int = 0


def aligned_pieces(offset: int, length: int, align: int) -> Iterator[tuple[int, int]]:
    """The block layer's split of a request: an unaligned head alone, the
    aligned middle, an unaligned tail alone (bdrv_co_do_pwrite_zeroes and
    bdrv_co_pdiscard cut requests this way before the driver sees them)."""
    head = offset % align
    tail = (offset + length) % align
    while length > 0:
        num = length
        if head:
            num = min(length, align - head)
            head = (head + num) % align
        elif tail and num > align:
            num -= tail
        yield offset, num
        offset += num
        length -= num


class Qcow2Image:
    """Guest access to a qcow2 image stored in a :class:`ByteStore`.

    ``backing`` supplies data for unallocated clusters (``None``: zeros).
    ``unmap`` mirrors BDRV_O_UNMAP (qemu-io sets it): freed clusters of
    discard/write-zeroes requests are punched out of the file (read back as
    zeros).
    """

    def __init__(
        self,
        store: ByteStore,
        *,
        backing: BackingReader | None = None,
        read_only: bool = False,
        unmap: bool = True,
    ) -> None:
        self.store = store
        self.backing = backing
        self.read_only = read_only
        # Called once per data write, after its clusters are allocated (where
        # qcow2_co_pwritev_task sends BLKDBG_WRITE_AIO to the file child).
        self.before_data_write: Callable[[], None] | None = None
        first = read_exact(store, 0, SECTOR_SIZE)
        if first[:4] != QCOW_MAGIC_BYTES:
            raise Qcow2FormatError("Image is not in qcow2 format")
        cluster_bits = struct.unpack(">I", first[20:24])[0]
        if cluster_bits < MIN_CLUSTER_BITS or cluster_bits > MAX_CLUSTER_BITS:
            parse_qcow2_header(first)  # raises the version/cluster errors
        hdr = parse_qcow2_header(read_exact(store, 0, 1 << cluster_bits))
        self.header = hdr
        self.geo = geo = Geometry(hdr.version, hdr.cluster_bits, hdr.refcount_order,
                                  hdr.extended_l2)
        self.virtual_size = hdr.virtual_size
        self.incompatible_features = hdr.incompatible_features
        self.compatible_features = hdr.compatible_features
        self.autoclear_features = hdr.autoclear_features
        self.compression_type = 1 if hdr.compression_type == "zstd" else 0
        self.backing_file = hdr.backing_file
        self.backing_format = hdr.backing_format
        self.nb_bitmaps = hdr.nb_bitmaps
        self.bitmap_directory_size = hdr.bitmap_directory_size
        self.bitmap_directory_offset = hdr.bitmap_directory_offset
        if hdr.crypt_method:
            raise Qcow2FormatError("Encrypted images are not supported by qmpd")
        if (hdr.external_data_file is not None
                or hdr.incompatible_features & INCOMPAT_DATA_FILE):
            raise Qcow2FormatError("External data files are not supported by qmpd")
        self.cache = MetadataCache(store, geo.cluster_size)
        self.discards = HostDiscards(self.cache, unmap)
        self.refcounts = RefcountTable(geo, self.cache, self.discards,
                                       hdr.refcount_table_offset, hdr.refcount_table_clusters)
        self.allocator = ClusterAllocator(self.refcounts)
        self.tables = ClusterTables(geo, self.cache, self.allocator, hdr.l1_table_offset,
                                    hdr.l1_size)
        self.mapper = HostMapper(self.tables, self.allocator)
        self.zeroing = ClusterZeroing(self.tables, self.allocator, self.discards)

    def flush(self) -> None:
        """Write dirty cached refcount blocks and L2 tables (whole clusters)."""
        self.cache.flush()

    def length(self) -> int:
        return self.virtual_size

    # ------------------------------------------------------------ reading

    def map_extents(self, offset: int = 0, length: int | None = None) -> list[Extent]:
        """Allocation state of guest ranges, merged like block status does."""
        if length is None:
            length = self.virtual_size - offset
        geo = self.geo
        lookup = self.tables.lookup
        out: list[Extent] = []
        end = offset + length
        cs = geo.cluster_size
        scs = geo.subcluster_size
        unmapped_end = self.tables.unmapped_end
        pos = offset
        while pos < end:
            hole_end = unmapped_end(pos)
            if hole_end is not None:
                # No L2 table: all it would map is unallocated, in one step
                # (a map of a large empty image is not a loop per cluster).
                n = min(end, hole_end) - pos
                last = out[-1] if out else None
                if (last is not None and last.kind == CLUSTER_UNALLOCATED
                        and last.offset + last.length == pos):
                    last.length += n
                else:
                    out.append(Extent(pos, n, CLUSTER_UNALLOCATED, 0))
                pos += n
                continue
            entry, bitmap = lookup(pos)
            sc = (pos & (cs - 1)) // scs
            sctype = subcluster_type(geo, entry, bitmap, sc)
            if sctype == SC_INVALID:
                raise Qcow2FormatError("Invalid cluster entry found")
            kind = BLOCK_STATUS_KIND[sctype]
            n = min(end, (pos // scs + 1) * scs) - pos
            host = (entry & L2E_OFFSET_MASK) + (pos & (cs - 1)) if kind in (
                CLUSTER_NORMAL, CLUSTER_ZERO_ALLOC) else 0
            last = out[-1] if out else None
            if (last is not None and last.kind == kind and last.offset + last.length == pos
                    and (kind != CLUSTER_NORMAL or last.host_offset + last.length == host)
                    and kind != CLUSTER_COMPRESSED):
                last.length += n
            else:
                out.append(Extent(pos, n, kind, host if kind != CLUSTER_COMPRESSED else entry))
            pos += n
        return out

    def _decompress(self, entry: int) -> bytes:
        coffset, csize = compressed_location(self.geo, entry)
        raw = read_exact(self.store, coffset, csize)
        if self.compression_type != 0:
            raise Qcow2FormatError("zstd compressed clusters are not supported by qmpd")
        cs = self.geo.cluster_size
        out = zlib.decompressobj(-12).decompress(raw, cs)
        if len(out) < cs:
            raise Qcow2FormatError("Could not decompress cluster")
        return out[:cs]

    def read_segments(self, offset: int, length: int) -> list[tuple[int, int, bytes | None]]:
        """Guest data as (offset, length, bytes); ``None`` marks unallocated runs."""
        out: list[tuple[int, int, bytes | None]] = []
        for ext in self.map_extents(offset, length):
            if ext.kind == CLUSTER_UNALLOCATED:
                out.append((ext.offset, ext.length, None))
            elif ext.kind in (CLUSTER_ZERO_PLAIN, CLUSTER_ZERO_ALLOC):
                out.append((ext.offset, ext.length, bytes(ext.length)))
            elif ext.kind == CLUSTER_COMPRESSED:
                data = self._decompress(ext.host_offset)
                start = ext.offset & (self.geo.cluster_size - 1)
                out.append((ext.offset, ext.length, data[start : start + ext.length]))
            else:
                out.append((ext.offset, ext.length,
                            read_exact(self.store, ext.host_offset, ext.length)))
        return out

    def _backing_read(self, offset: int, length: int) -> bytes:
        if self.backing is None:
            return bytes(length)
        blen = self.backing.length()
        if offset >= blen:
            return bytes(length)
        n = min(length, blen - offset)
        data = self.backing.read(offset, n)
        return data + bytes(length - len(data))

    def read(self, offset: int, length: int) -> bytes:
        """Guest data; unallocated ranges come from the backing image (or zeros)."""
        parts = []
        for off, n, data in self.read_segments(offset, length):
            parts.append(self._backing_read(off, n) if data is None else data)
        return b"".join(parts)

    def is_zero(self, offset: int, length: int) -> bool:
        """Block-status view: zero clusters, and unallocated over zero backing."""
        end = min(offset + length, self.virtual_size)
        if end <= offset:
            return True
        for ext in self.map_extents(offset, end - offset):
            if ext.kind in (CLUSTER_ZERO_PLAIN, CLUSTER_ZERO_ALLOC):
                continue
            if ext.kind == CLUSTER_UNALLOCATED:
                if self.backing is None:
                    continue
                blen = self.backing.length()
                if ext.offset >= blen:
                    continue
                if self.backing.is_zero(ext.offset, min(ext.length, blen - ext.offset)):
                    continue
            return False
        return True

    def is_allocated_extents(self) -> list[tuple[int, int, bool]]:
        """bdrv_is_allocated over the whole image (qemu-io ``map``)."""
        out: list[tuple[int, int, bool]] = []
        for ext in self.map_extents():
            alloc = ext.kind != CLUSTER_UNALLOCATED
            if out and out[-1][2] == alloc:
                o, n, a = out[-1]
                out[-1] = (o, n + ext.length, a)
            else:
                out.append((ext.offset, ext.length, alloc))
        return out

    # ------------------------------------------------------------ writing

    def _check_writable(self) -> None:
        if self.read_only:
            raise PermissionError("Block node is read-only")

    def _check_range(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.virtual_size:
            raise OSError(5, "Input/output error")

    def _guest_view(self, offset: int, length: int) -> bytes:
        """Current guest content, zero-padded beyond the virtual size."""
        end = min(offset + length, self.virtual_size)
        data = self.read(offset, end - offset) if end > offset else b""
        return data + bytes(length - len(data))

    def _cow_read(self, m: HostAllocation) -> bytes:
        """The old guest data of an allocation's COW regions, read as
        perform_cow reads them: both regions in one request when the data
        between them is at most 16 KiB, else each on its own (none when
        empty).  The count matters to a blkdebug backing file, whose state
        moves on every read.  The data region in between reads as zeros."""
        start_len = m.cow_start_to - m.cow_start_from
        end_len = m.cow_end_to - m.cow_end_from
        if start_len and end_len and m.cow_end_from - m.cow_start_to <= 16384:
            return self._guest_view(m.offset + m.cow_start_from,
                                    m.cow_end_to - m.cow_start_from)
        head = self._guest_view(m.offset + m.cow_start_from, start_len) if start_len else b""
        tail = self._guest_view(m.offset + m.cow_end_from, end_len) if end_len else b""
        return head + bytes(m.cow_end_from - m.cow_start_to) + tail

    def write(self, offset: int, data: bytes) -> None:
        """Guest write (qcow2_co_pwritev_part)."""
        self._check_writable()
        self._check_range(offset, len(data))
        pos = 0
        while pos < len(data):
            goff = offset + pos
            host, n, metas = self.mapper.alloc_host_offset(goff, len(data) - pos)
            chunk = data[pos : pos + n]
            try:
                if self.before_data_write is not None:
                    self.before_data_write()
                for m in metas:
                    # COW: old guest data around the written bytes, in one write.
                    lo = m.offset + m.cow_start_from
                    buf = bytearray(self._cow_read(m))
                    buf[m.data_start - lo : m.data_end - lo] = chunk[m.data_start - goff :
                                                                     m.data_end - goff]
                    self.store.write(m.alloc_offset + m.cow_start_from, bytes(buf))
                # Bytes landing in clusters we already own are written in place.
                covered = [(m.data_start, m.data_end) for m in metas]
                p = goff
                while p < goff + n:
                    inside = next((c for c in covered if c[0] <= p < c[1]), None)
                    if inside:
                        p = inside[1]
                        continue
                    nxt = min([c[0] for c in covered if c[0] > p] + [goff + n])
                    self.store.write(host + (p - goff), chunk[p - goff : nxt - goff])
                    p = nxt
            except OSError:
                # qcow2_handle_l2meta(link_l2=false): the allocations are undone
                for m in metas:
                    self.mapper.abort(m)
                raise
            for m in metas:
                self.mapper.link(m)
            pos += n
        self.flush()

    def write_zeroes(self, offset: int, length: int, *, unmap: bool = False) -> None:
        """bdrv_co_do_pwrite_zeroes over qcow2 (qemu-io ``write -z [-u]``)."""
        self._check_writable()
        self._check_range(offset, length)
        # qcow2's pwrite_zeroes_alignment is the subcluster.
        for piece, num in aligned_pieces(offset, length, self.geo.subcluster_size):
            if not self._pwrite_zeroes_driver(piece, num, unmap):
                # -ENOTSUP: the block layer falls back to writing a zero buffer.
                pos = 0
                while pos < num:
                    n = min(num - pos, _ZERO_BOUNCE_BYTES)
                    self.write(piece + pos, bytes(n))
                    pos += n
        self.flush()

    def _pwrite_zeroes_driver(self, offset: int, nbytes: int, unmap: bool) -> bool:
        """qcow2_co_pwrite_zeroes; False means -ENOTSUP."""
        scs = self.geo.subcluster_size
        head = offset % scs
        tail = (-(offset + nbytes)) % scs
        if offset + nbytes == self.virtual_size:
            tail = 0
        if head or tail:
            if not (self.is_zero(offset - head, head) and self.is_zero(offset + nbytes, tail)):
                return False
            offset -= head
            nbytes = scs
            entry, bitmap = self.tables.lookup(offset)
            sc = (offset % self.geo.cluster_size) // scs
            if subcluster_type(self.geo, entry, bitmap, sc) not in DATALESS_SUBCLUSTERS:
                return False
        return self.zeroing.zeroize(offset, nbytes, unmap, virtual_size=self.virtual_size,
                                    has_backing=self.backing is not None)

    def cluster_discard(self, offset: int, nbytes: int, dtype: int, full_discard: bool) -> None:
        """qcow2_cluster_discard."""
        self.zeroing.discard(offset, nbytes, dtype, full_discard,
                             has_backing=self.backing is not None)

    def discard(self, offset: int, length: int) -> None:
        """bdrv_co_pdiscard over qcow2 (qemu-io ``discard``); partial clusters are ignored."""
        self._check_writable()
        self._check_range(offset, length)
        if not self.discards.passthrough[DISCARD_REQUEST]:
            return
        for piece, num in aligned_pieces(offset, length, self.geo.cluster_size):
            self._pdiscard_driver(piece, num)
        self.flush()

    def _pdiscard_driver(self, offset: int, nbytes: int) -> None:
        """qcow2_co_pdiscard: only whole clusters (or the image's tail) are discarded."""
        cs = self.geo.cluster_size
        if self.geo.version < 3 and self.backing is not None:
            return
        if (offset | nbytes) & (cs - 1):
            if offset & (cs - 1) or offset + nbytes != self.virtual_size:
                return
        self.cluster_discard(offset, nbytes, DISCARD_REQUEST, False)

    def write_compressed(self, offset: int, data: bytes) -> None:
        """qcow2_co_pwritev_compressed_part (qemu-io ``write -c``)."""
        self._check_writable()
        self._check_range(offset, len(data))
        cs = self.geo.cluster_size
        if offset & (cs - 1):
            raise OSError(22, "Invalid argument")
        if len(data) & (cs - 1) and offset + len(data) != self.virtual_size:
            raise OSError(22, "Invalid argument")
        if self.compression_type != 0:
            raise OSError(95, "Operation not supported")
        pos = 0
        while pos < len(data):
            chunk = data[pos : pos + cs]
            buf = chunk + bytes(cs - len(chunk))
            comp = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -12, 9,
                                    zlib.Z_DEFAULT_STRATEGY)
            out = comp.compress(buf) + comp.flush(zlib.Z_FINISH)
            if len(out) > cs - 1:
                # Incompressible: QEMU writes a normal cluster instead.
                self.write(offset + pos, chunk)
            else:
                self._write_compressed_cluster(offset + pos, out)
            pos += cs
        self.flush()

    def _write_compressed_cluster(self, offset: int, out: bytes) -> None:
        tables = self.tables
        table, idx, l2off = tables.table_for_write(offset)
        if tables.entry(table, idx) & L2E_OFFSET_MASK:
            raise OSError(5, "Input/output error")
        host = self.allocator.alloc_bytes(len(out))
        entry = compressed_entry(self.geo, host, len(out))
        table, idx, l2off = tables.table_for_write(offset)
        tables.set(table, l2off, idx, entry, 0 if self.geo.extended_l2 else None)
        self.flush()
        self.store.write(host, out)

    # ------------------------------------------------------------ header and size

    def update_header(self) -> None:
        """qcow2_update_header: rewrite the whole first cluster."""
        geo, tables, refcounts = self.geo, self.tables, self.refcounts
        self.store.write(0, build_header_cluster(
            version=geo.version, cluster_bits=geo.cluster_bits, virtual_size=self.virtual_size,
            l1_size=tables.l1_size, l1_table_offset=tables.l1_offset,
            refcount_table_offset=refcounts.offset, refcount_table_clusters=refcounts.clusters,
            refcount_order=geo.refcount_order,
            incompatible_features=self.incompatible_features,
            compatible_features=self.compatible_features,
            autoclear_features=self.autoclear_features, compression_type=self.compression_type,
            backing_file=self.backing_file, backing_format=self.backing_format,
            unknown_extensions=self.header.unknown_extensions,
            bitmaps=(self.nb_bitmaps, self.bitmap_directory_size, self.bitmap_directory_offset)))

    def _write_virtual_size(self, size: int) -> None:
        self.store.write(HEADER_SIZE_OFFSET, struct.pack(">Q", size))
        self.virtual_size = size

    def truncate_grow(self, size: int) -> None:
        """qcow2_co_truncate growing with preallocation=off."""
        per_l1 = self.geo.cluster_size * self.geo.l2_size
        try:
            self.tables.grow_l1(-(-size // per_l1), True)
        except Qcow2FormatError as e:
            raise Qcow2FormatError(f"Failed to grow the L1 table: {e.desc}") from None
        self.flush()
        self._write_virtual_size(size)

    def truncate_shrink(self, size: int) -> bool:
        """qcow2_co_truncate shrinking: discard the clusters past the end (always
        passed down to the file), rewrite the size and cut the file after its
        last used cluster.  True when the file got shorter.  The table sizes
        stay as they are."""
        cs = self.geo.cluster_size
        old = self.virtual_size
        start = -(-size // cs) * cs
        if start < old:
            self.cluster_discard(start, old - start, DISCARD_ALWAYS, True)
            self.flush()
        self.store.write(HEADER_SIZE_OFFSET, struct.pack(">Q", size))
        # qcow2_get_last_cluster: the file ends after the last used cluster.
        last = self.refcounts.last_used_cluster(-(-self.store.size() // cs))
        cut = (last + 1) * cs < self.store.size()
        if cut:
            self.store.truncate((last + 1) * cs)
        self.virtual_size = size
        return cut
