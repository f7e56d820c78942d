"""qcow2 on-disk format: header parsing, image creation and guest data access.

This module is pure: it never opens host files itself.  Callers hand it bytes
(``parse_qcow2_header``), get bytes back (``create_qcow2``) or pass an object
implementing :class:`ByteStore` (``Qcow2Image``).  The block engine uses it to
read image headers; ``qmpd-img`` uses it with a file-backed store to stand in
for ``qemu-img create`` and ``qemu-io``.

The allocation code is a port of QEMU 7.2's block/qcow2*.c algorithms (free
cluster search, refcount block/table growth, L2 allocation, COW areas,
compressed byte allocation, zero clusters, discard) because the goal is that
every write leaves the image file byte-identical to what QEMU 7.2 leaves.
QEMU's metadata caches are modelled as write-back dictionaries flushed at the
end of every top-level operation: the final file content is the same because
each cached table is always written as a whole cluster, as QEMU does.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from qmpd.engine.cstrings import cstring, from_cstring

QCOW_MAGIC = 0x514649FB
QCOW_MAGIC_BYTES = b"QFI\xfb"

MIN_CLUSTER_BITS = 9
MAX_CLUSTER_BITS = 21
DEFAULT_CLUSTER_SIZE = 65536

# Header extension magics (docs/interop/qcow2.txt).
EXT_END = 0x00000000
EXT_BACKING_FORMAT = 0xE2792ACA
EXT_FEATURE_TABLE = 0x6803F857
EXT_CRYPTO_HEADER = 0x0537BE77
EXT_BITMAPS = 0x23852875
EXT_DATA_FILE = 0x44415441

INCOMPAT_DIRTY = 1 << 0
INCOMPAT_CORRUPT = 1 << 1
INCOMPAT_DATA_FILE = 1 << 2
INCOMPAT_COMPRESSION = 1 << 3
INCOMPAT_EXTL2 = 1 << 4
INCOMPAT_MASK = 0x1F
COMPAT_LAZY_REFCOUNTS = 1 << 0
AUTOCLEAR_BITMAPS = 1 << 0
AUTOCLEAR_DATA_FILE_RAW = 1 << 1

# The feature name table QEMU 7.2 writes into every v3 header, in its order.
_FEATURE_TABLE: tuple[tuple[int, int, str], ...] = (
    (0, 0, "dirty bit"),
    (0, 1, "corrupt bit"),
    (0, 2, "external data file"),
    (0, 3, "compression type"),
    (0, 4, "extended L2 entries"),
    (1, 0, "lazy refcounts"),
    (2, 0, "bitmaps"),
    (2, 1, "raw external data"),
)

QCOW_OFLAG_COPIED = 1 << 63
QCOW_OFLAG_COMPRESSED = 1 << 62
QCOW_OFLAG_ZERO = 1 << 0
L1E_OFFSET_MASK = 0x00FFFFFFFFFFFE00
L2E_OFFSET_MASK = 0x00FFFFFFFFFFFE00
REFT_OFFSET_MASK = 0xFFFFFFFFFFFFFE00
QCOW_MAX_REFTABLE_SIZE = 8 * 1024 * 1024 // 8 * 8  # 8 MiB of entries, as QEMU
QCOW_MAX_L1_SIZE = 32 * 1024 * 1024
COMPRESSED_SECTOR_SIZE = 512
# qemu-img rounds create sizes up to whole sectors.
SECTOR_SIZE = 512
# Largest single request the block layer hands a driver (BDRV_REQUEST_MAX_BYTES).
REQUEST_MAX_BYTES = (2**31 - 1) // 512 * 512

V2_HEADER_LEN = 72
V3_HEADER_LEN = 112  # 104 plus compression type byte and padding (QEMU >= 5.1)

# Cluster types, as qcow2_get_cluster_type() names them.
CLUSTER_UNALLOCATED = "unallocated"
CLUSTER_ZERO_PLAIN = "zero-plain"
CLUSTER_ZERO_ALLOC = "zero-alloc"
CLUSTER_NORMAL = "normal"
CLUSTER_COMPRESSED = "compressed"

# Discard types: only REQUEST passes through to the file (BDRV_O_UNMAP).
DISCARD_NEVER = 0
DISCARD_ALWAYS = 1
DISCARD_REQUEST = 2
DISCARD_SNAPSHOT = 3
DISCARD_OTHER = 4


class Qcow2FormatError(Exception):
    """An image QEMU would refuse to open; ``desc`` is QEMU's error text."""

    def __init__(self, desc: str) -> None:
        super().__init__(desc)
        self.desc = desc


class ByteStore(Protocol):
    """The host file an image lives in (a real file, or memory)."""

    def read(self, offset: int, length: int) -> bytes:
        """Read up to ``length`` bytes; may return fewer at end of file."""
        ...

    def write(self, offset: int, data: bytes) -> None:
        """Write, extending the file (zero-filled) when needed."""
        ...

    def size(self) -> int: ...

    def truncate(self, n: int) -> None: ...


class MemoryStore:
    """A :class:`ByteStore` over a bytearray (used by create and tests)."""

    def __init__(self, data: bytes = b"") -> None:
        self.data = bytearray(data)

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.data[offset : offset + length])

    def write(self, offset: int, data: bytes) -> None:
        end = offset + len(data)
        if end > len(self.data):
            self.data.extend(bytes(end - len(self.data)))
        self.data[offset:end] = data

    def size(self) -> int:
        return len(self.data)

    def truncate(self, n: int) -> None:
        if n < len(self.data):
            del self.data[n:]
        else:
            self.data.extend(bytes(n - len(self.data)))


class BackingReader(Protocol):
    """What a qcow2 image needs from its backing image."""

    def length(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes:
        """Guest data; zeros beyond the end are the caller's business."""
        ...

    def is_zero(self, offset: int, length: int) -> bool:
        """True when the range is known to read as zeros (block status)."""
        ...


@dataclass
class Qcow2Header:
    """The fields of a qcow2 header plus what its extensions say."""

    version: int
    virtual_size: int
    cluster_bits: int
    cluster_size: int
    l1_size: int
    l1_table_offset: int
    refcount_table_offset: int
    refcount_table_clusters: int
    refcount_order: int
    refcount_bits: int
    nb_snapshots: int
    snapshots_offset: int
    header_length: int
    crypt_method: int
    incompatible_features: int
    compatible_features: int
    autoclear_features: int
    backing_file: str | None
    backing_format: str | None
    backing_file_offset: int = 0
    backing_file_size: int = 0
    external_data_file: str | None = None
    compression_type: str = "zlib"
    dirty: bool = False
    corrupt: bool = False
    extended_l2: bool = False
    lazy_refcounts: bool = False
    data_file_raw: bool = False
    has_feature_table: bool = False
    # Extensions QEMU does not know; kept so a header rewrite preserves them.
    unknown_extensions: list[tuple[int, bytes]] = field(default_factory=list)
    has_bitmaps_extension: bool = False

    @property
    def compat(self) -> str:
        """The ``compat`` string qemu-img uses for this version."""
        return "0.10" if self.version == 2 else "1.1"


def is_qcow2(first_bytes: bytes) -> bool:
    """Magic check, as QEMU's qcow2 probe does."""
    return len(first_bytes) >= 8 and first_bytes[:4] == QCOW_MAGIC_BYTES and (
        struct.unpack(">I", first_bytes[4:8])[0] >= 2
    )


def parse_qcow2_header(data: bytes) -> Qcow2Header:
    """Parse a header from the first bytes of an image (one cluster suffices).

    Raises :class:`Qcow2FormatError` with QEMU 7.2's open error texts.
    """
    if len(data) < V2_HEADER_LEN or data[:4] != QCOW_MAGIC_BYTES:
        raise Qcow2FormatError("Image is not in qcow2 format")
    (
        _magic,
        version,
        backing_file_offset,
        backing_file_size,
        cluster_bits,
        size,
        crypt_method,
        l1_size,
        l1_table_offset,
        refcount_table_offset,
        refcount_table_clusters,
        nb_snapshots,
        snapshots_offset,
    ) = struct.unpack(">IIQIIQIIQQIIQ", data[:V2_HEADER_LEN])
    if version < 2 or version > 3:
        raise Qcow2FormatError(f"Unsupported qcow2 version {version}")
    if cluster_bits < MIN_CLUSTER_BITS or cluster_bits > MAX_CLUSTER_BITS:
        raise Qcow2FormatError(f"Unsupported cluster size: 2^{cluster_bits}")
    cluster_size = 1 << cluster_bits
    incompat = compat = autoclear = 0
    refcount_order = 4
    header_length = V2_HEADER_LEN
    compression_type = 0
    if version == 3:
        if len(data) < 104:
            raise Qcow2FormatError("qcow2 header too short")
        incompat, compat, autoclear, refcount_order, header_length = struct.unpack(
            ">QQQII", data[72:104]
        )
        if header_length < 104:
            raise Qcow2FormatError("qcow2 header too short")
        if header_length > cluster_size:
            raise Qcow2FormatError("qcow2 header exceeds cluster size")
        if header_length > 104 and len(data) > 104:
            compression_type = data[104]
    if refcount_order > 6:
        raise Qcow2FormatError(
            "Reference count entry width too large; may not exceed 64 bits"
        )
    if incompat & ~INCOMPAT_MASK:
        raise Qcow2FormatError(
            f"Unsupported qcow2 feature(s): {incompat & ~INCOMPAT_MASK:#x}"
        )
    if compression_type not in (0, 1):
        raise Qcow2FormatError(
            f"qcow2: unknown compression type: {compression_type}"
        )
    hdr = Qcow2Header(
        version=version,
        virtual_size=size,
        cluster_bits=cluster_bits,
        cluster_size=cluster_size,
        l1_size=l1_size,
        l1_table_offset=l1_table_offset,
        refcount_table_offset=refcount_table_offset,
        refcount_table_clusters=refcount_table_clusters,
        refcount_order=refcount_order,
        refcount_bits=1 << refcount_order,
        nb_snapshots=nb_snapshots,
        snapshots_offset=snapshots_offset,
        header_length=header_length,
        crypt_method=crypt_method,
        incompatible_features=incompat,
        compatible_features=compat,
        autoclear_features=autoclear,
        backing_file=None,
        backing_format=None,
        backing_file_offset=backing_file_offset,
        backing_file_size=backing_file_size,
        compression_type="zstd" if compression_type == 1 else "zlib",
        dirty=bool(incompat & INCOMPAT_DIRTY),
        corrupt=bool(incompat & INCOMPAT_CORRUPT),
        extended_l2=bool(incompat & INCOMPAT_EXTL2),
        lazy_refcounts=bool(compat & COMPAT_LAZY_REFCOUNTS),
        data_file_raw=bool(autoclear & AUTOCLEAR_DATA_FILE_RAW),
    )
    # Header extensions run from the end of the header up to the backing file
    # name (or the end of the first cluster).
    ext_end = backing_file_offset if backing_file_offset else cluster_size
    pos = header_length
    while pos + 8 <= min(ext_end, len(data)):
        magic, length = struct.unpack(">II", data[pos : pos + 8])
        pos += 8
        if magic == EXT_END:
            break
        if pos + length > len(data):
            raise Qcow2FormatError("ext_end: Invalid extension length")
        payload = bytes(data[pos : pos + length])
        if magic == EXT_BACKING_FORMAT:
            hdr.backing_format = from_cstring(payload)
        elif magic == EXT_DATA_FILE:
            hdr.external_data_file = from_cstring(payload)
        elif magic == EXT_FEATURE_TABLE:
            hdr.has_feature_table = True
        elif magic == EXT_BITMAPS:
            hdr.has_bitmaps_extension = True
        elif magic != EXT_CRYPTO_HEADER:
            hdr.unknown_extensions.append((magic, payload))
        pos += (length + 7) & ~7
    if backing_file_offset:
        if backing_file_size > 1023 or backing_file_offset > cluster_size:
            raise Qcow2FormatError("Backing file name too long")
        raw = data[backing_file_offset : backing_file_offset + backing_file_size]
        hdr.backing_file = from_cstring(bytes(raw))
    return hdr


# --------------------------------------------------------------------------
# Header serialisation (qcow2_update_header)


def _header_ext(magic: int, payload: bytes) -> bytes:
    pad = (-len(payload)) % 8
    return struct.pack(">II", magic, len(payload)) + payload + bytes(pad)


def _feature_table() -> bytes:
    out = bytearray()
    for ftype, bit, name in _FEATURE_TABLE:
        out += struct.pack(">BB", ftype, bit) + name.encode().ljust(46, b"\0")
    return bytes(out)


def build_header_cluster(
    *,
    version: int,
    cluster_bits: int,
    virtual_size: int,
    l1_size: int,
    l1_table_offset: int,
    refcount_table_offset: int,
    refcount_table_clusters: int,
    refcount_order: int,
    incompatible_features: int,
    compatible_features: int,
    autoclear_features: int,
    compression_type: int,
    backing_file: str | None,
    backing_format: str | None,
    data_file: str | None = None,
    nb_snapshots: int = 0,
    snapshots_offset: int = 0,
    unknown_extensions: list[tuple[int, bytes]] | None = None,
) -> bytes:
    """The first cluster exactly as QEMU 7.2's qcow2_update_header writes it."""
    cluster_size = 1 << cluster_bits
    header_length = V3_HEADER_LEN if version >= 3 else V2_HEADER_LEN
    body = bytearray()
    if backing_format:
        body += _header_ext(EXT_BACKING_FORMAT, cstring(backing_format))
    if data_file:
        body += _header_ext(EXT_DATA_FILE, cstring(data_file))
    # QEMU 7.2 leaves the feature name table out of headers of clusters of
    # 4 KiB or less (measured: present from 8 KiB up).
    if version >= 3 and cluster_size > 4096:
        body += _header_ext(EXT_FEATURE_TABLE, _feature_table())
    for magic, payload in unknown_extensions or []:
        body += _header_ext(magic, payload)
    body += _header_ext(EXT_END, b"")
    bf_offset = bf_size = 0
    if backing_file:
        name = cstring(backing_file)
        bf_offset = header_length + len(body)
        bf_size = len(name)
        body += name
    head = struct.pack(
        ">IIQIIQIIQQIIQ",
        QCOW_MAGIC,
        version,
        bf_offset,
        bf_size,
        cluster_bits,
        virtual_size,
        0,
        l1_size,
        l1_table_offset,
        refcount_table_offset,
        refcount_table_clusters,
        nb_snapshots,
        snapshots_offset,
    )
    if version >= 3:
        head += struct.pack(
            ">QQQII",
            incompatible_features,
            compatible_features,
            autoclear_features,
            refcount_order,
            header_length,
        )
        head += bytes([compression_type]) + bytes(7)
    out = head + bytes(body)
    if len(out) > cluster_size:
        raise Qcow2FormatError("Cannot fit header and extensions in one cluster")
    return out + bytes(cluster_size - len(out))


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


class _Again(Exception):
    """alloc_refcount_block's -EAGAIN: the caller restarts its search."""


@dataclass
class Extent:
    """A run of guest bytes with one allocation state (for map/read)."""

    offset: int
    length: int
    kind: str  # one of the CLUSTER_* names
    host_offset: int = 0


@dataclass
class _L2Meta:
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


# Subcluster types (qcow2_get_subcluster_type).
SC_NORMAL = "normal"
SC_ZERO_PLAIN = "zero-plain"
SC_ZERO_ALLOC = "zero-alloc"
SC_UNALLOC_PLAIN = "unallocated-plain"
SC_UNALLOC_ALLOC = "unallocated-alloc"
SC_COMPRESSED = "compressed"
SC_INVALID = "invalid"
L2_BITMAP_ALL_ALLOC = 0xFFFFFFFF
L2_BITMAP_ALL_ZEROES = 0xFFFFFFFF << 32


def _sub_alloc_range(a: int, b: int) -> int:
    return ((1 << b) - 1) & ~((1 << a) - 1)


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
        first = self._pread(0, SECTOR_SIZE)
        if first[:4] != QCOW_MAGIC_BYTES:
            raise Qcow2FormatError("Image is not in qcow2 format")
        cluster_bits = struct.unpack(">I", first[20:24])[0]
        if cluster_bits < MIN_CLUSTER_BITS or cluster_bits > MAX_CLUSTER_BITS:
            parse_qcow2_header(first)  # raises the version/cluster errors
        hdr = parse_qcow2_header(self._pread(0, 1 << cluster_bits))
        self.header = hdr
        self.version = hdr.version
        self.cluster_bits = hdr.cluster_bits
        self.cluster_size = hdr.cluster_size
        self.virtual_size = hdr.virtual_size
        self.extended_l2 = hdr.extended_l2
        self.l2_entry_size = 16 if hdr.extended_l2 else 8
        self.l2_size = self.cluster_size // self.l2_entry_size
        self.subclusters_per_cluster = 32 if hdr.extended_l2 else 1
        self.subcluster_size = self.cluster_size // self.subclusters_per_cluster
        self.l2_bits = self.l2_size.bit_length() - 1
        self.refcount_order = hdr.refcount_order
        self.refcount_block_bits = self.cluster_bits + 3 - self.refcount_order
        self.refcount_block_size = 1 << self.refcount_block_bits
        self.refcount_max = (1 << (1 << self.refcount_order)) - 1
        self.csize_shift = 62 - (self.cluster_bits - 8)
        self.cluster_offset_mask = (1 << self.csize_shift) - 1
        self.csize_mask = (1 << (self.cluster_bits - 8)) - 1
        self.incompatible_features = hdr.incompatible_features
        self.compatible_features = hdr.compatible_features
        self.autoclear_features = hdr.autoclear_features
        self.compression_type = 1 if hdr.compression_type == "zstd" else 0
        self.backing_file = hdr.backing_file
        self.backing_format = hdr.backing_format
        self.data_file = hdr.external_data_file
        if hdr.crypt_method:
            raise Qcow2FormatError("Encrypted images are not supported by qmpd")
        if self.data_file is not None or hdr.incompatible_features & INCOMPAT_DATA_FILE:
            raise Qcow2FormatError("External data files are not supported by qmpd")
        self.l1_size = hdr.l1_size
        self.l1_table_offset = hdr.l1_table_offset
        if self.l1_size > QCOW_MAX_L1_SIZE // 8:
            raise Qcow2FormatError("Active L1 table too large")
        raw_l1 = self._pread(self.l1_table_offset, self.l1_size * 8) if self.l1_size else b""
        self.l1_table = list(struct.unpack(f">{self.l1_size}Q", raw_l1))
        self.refcount_table_offset = hdr.refcount_table_offset
        self.refcount_table_size = hdr.refcount_table_clusters * self.cluster_size // 8
        raw_rt = self._pread(self.refcount_table_offset, self.refcount_table_size * 8)
        self.refcount_table = list(struct.unpack(f">{self.refcount_table_size}Q", raw_rt))
        self._update_max_refcount_table_index()
        self.free_cluster_index = 0
        self.free_byte_offset = 0
        self.discard_passthrough = {
            DISCARD_NEVER: False,
            DISCARD_ALWAYS: True,
            DISCARD_REQUEST: unmap,
            DISCARD_SNAPSHOT: True,
            DISCARD_OTHER: False,
        }
        self.cache_discards = False
        self._discards: list[list[int]] = []
        self._refblocks: dict[int, bytearray] = {}
        self._l2_tables: dict[int, bytearray] = {}
        self._dirty: set[tuple[str, int]] = set()

    # ------------------------------------------------------------ basic I/O

    def _pread(self, offset: int, length: int) -> bytes:
        data = self.store.read(offset, length)
        if len(data) < length:
            data = data + bytes(length - len(data))
        return data

    def flush(self) -> None:
        """Write dirty cached refcount blocks and L2 tables (whole clusters)."""
        for kind, off in sorted(self._dirty, key=lambda k: (k[0] != "rb", k[1])):
            table = self._refblocks[off] if kind == "rb" else self._l2_tables[off]
            self.store.write(off, bytes(table))
        self._dirty.clear()

    def _update_max_refcount_table_index(self) -> None:
        i = self.refcount_table_size - 1
        while i > 0 and (self.refcount_table[i] & REFT_OFFSET_MASK) == 0:
            i -= 1
        self.max_refcount_table_index = i

    # ------------------------------------------------------------ refcounts

    def _load_refblock(self, offset: int) -> bytearray:
        block = self._refblocks.get(offset)
        if block is None:
            block = bytearray(self._pread(offset, self.cluster_size))
            self._refblocks[offset] = block
        return block

    def _new_refblock(self, offset: int) -> bytearray:
        block = bytearray(self.cluster_size)
        self._refblocks[offset] = block
        self._dirty.add(("rb", offset))
        return block

    def get_refcount(self, cluster_index: int) -> int:
        table_index = cluster_index >> self.refcount_block_bits
        if table_index >= self.refcount_table_size:
            return 0
        block_offset = self.refcount_table[table_index] & REFT_OFFSET_MASK
        if not block_offset:
            return 0
        block = self._load_refblock(block_offset)
        return _get_refcount(
            block, cluster_index & (self.refcount_block_size - 1), self.refcount_order
        )

    def _in_same_refcount_block(self, a: int, b: int) -> bool:
        shift = self.cluster_bits + self.refcount_block_bits
        return (a >> shift) == (b >> shift)

    def _alloc_refcount_block(self, cluster_index: int) -> bytearray:
        rt_index = cluster_index >> self.refcount_block_bits
        if rt_index < self.refcount_table_size:
            off = self.refcount_table[rt_index] & REFT_OFFSET_MASK
            if off:
                return self._load_refblock(off)
        new_block = self._alloc_clusters_noref(self.cluster_size)
        if new_block == 0:
            raise Qcow2FormatError(
                "Preventing invalid allocation of refcount block at offset 0"
            )
        if self._in_same_refcount_block(new_block, cluster_index << self.cluster_bits):
            block = self._new_refblock(new_block)
            _set_refcount(
                block,
                (new_block >> self.cluster_bits) & (self.refcount_block_size - 1),
                self.refcount_order,
                1,
            )
        else:
            # Described somewhere else: may recurse, raising _Again from there.
            self._update_refcount(new_block, self.cluster_size, 1, False, DISCARD_NEVER)
            self._new_refblock(new_block)
        if rt_index < self.refcount_table_size:
            self.store.write(
                self.refcount_table_offset + rt_index * 8, struct.pack(">Q", new_block)
            )
            self.refcount_table[rt_index] = new_block
            self.max_refcount_table_index = max(self.max_refcount_table_index, rt_index)
            raise _Again()
        blocks_used = -(
            -max(cluster_index + 1, (new_block >> self.cluster_bits) + 1)
            // self.refcount_block_size
        )
        meta_offset = blocks_used * self.refcount_block_size * self.cluster_size
        self.refcount_area(meta_offset, 0, False, rt_index, new_block)
        raise _Again()

    def refcount_area(
        self,
        start_offset: int,
        additional_clusters: int,
        exact_size: bool,
        new_refblock_index: int,
        new_refblock_offset: int,
    ) -> int:
        """qcow2_refcount_area: new self-describing refcount table + blocks."""
        cs = self.cluster_size
        _, total = refcount_metadata_size(
            start_offset // cs + additional_clusters, cs, self.refcount_order, not exact_size
        )
        area_index = (start_offset // cs) // self.refcount_block_size
        table_size = total if exact_size else total + -(-total // 2)
        per = cs // 8
        table_size = -(-table_size // per) * per
        table_clusters = table_size * 8 // cs
        new_table = [0] * table_size
        if table_size > self.max_refcount_table_index:
            n = self.max_refcount_table_index + 1
            new_table[:n] = self.refcount_table[:n]
        else:
            new_table[:] = self.refcount_table[:table_size]
        if new_refblock_offset:
            new_table[new_refblock_index] = new_refblock_offset
        additional = sum(1 for i in range(area_index, total) if not new_table[i])
        table_offset = start_offset + additional * cs
        end_offset = table_offset + table_clusters * cs
        block_offset = start_offset
        for i in range(area_index, total):
            if new_table[i]:
                block = self._load_refblock(new_table[i])
                boff = new_table[i]
            else:
                block = self._new_refblock(block_offset)
                boff = block_offset
                new_table[i] = block_offset
                block_offset += cs
            first_covered = i * self.refcount_block_size * cs
            if first_covered < end_offset:
                j = (start_offset - first_covered) // cs if first_covered < start_offset else 0
                end_index = min((end_offset - first_covered) // cs, self.refcount_block_size)
                for k in range(j, end_index):
                    _set_refcount(block, k, self.refcount_order, 1)
                self._dirty.add(("rb", boff))
        self.flush()
        raw = struct.pack(f">{table_size}Q", *new_table)
        self.store.write(table_offset, raw)
        self.store.write(48, struct.pack(">QI", table_offset, table_clusters))
        old_offset, old_size = self.refcount_table_offset, self.refcount_table_size
        self.refcount_table = new_table
        self.refcount_table_size = table_size
        self.refcount_table_offset = table_offset
        self._update_max_refcount_table_index()
        self.free_clusters(old_offset, old_size * 8, DISCARD_OTHER)
        return end_offset

    def _update_refcount(
        self, offset: int, length: int, addend: int, decrease: bool, dtype: int
    ) -> None:
        if length <= 0:
            return
        cs = self.cluster_size
        start = offset & ~(cs - 1)
        last = (offset + length - 1) & ~(cs - 1)
        cluster_offset = start
        old_table_index = -1
        block: bytearray | None = None
        block_off = 0
        try:
            while cluster_offset <= last:
                cluster_index = cluster_offset >> self.cluster_bits
                table_index = cluster_index >> self.refcount_block_bits
                if table_index != old_table_index:
                    try:
                        block = self._alloc_refcount_block(cluster_index)
                    except _Again:
                        # Let the caller retry the same clusters first.
                        if self.free_cluster_index > (start >> self.cluster_bits):
                            self.free_cluster_index = start >> self.cluster_bits
                        raise
                    block_off = self.refcount_table[table_index] & REFT_OFFSET_MASK
                old_table_index = table_index
                assert block is not None
                self._dirty.add(("rb", block_off))
                idx = cluster_index & (self.refcount_block_size - 1)
                rc = _get_refcount(block, idx, self.refcount_order)
                if decrease:
                    if rc < addend:
                        raise Qcow2FormatError("refcount underflow")
                    rc -= addend
                else:
                    if rc + addend > self.refcount_max:
                        raise Qcow2FormatError("refcount overflow")
                    rc += addend
                if rc == 0 and cluster_index < self.free_cluster_index:
                    self.free_cluster_index = cluster_index
                _set_refcount(block, idx, self.refcount_order, rc)
                if rc == 0 and self.discard_passthrough[dtype]:
                    self._queue_discard(cluster_offset, cs)
                cluster_offset += cs
        except (_Again, Qcow2FormatError):
            if not self.cache_discards:
                self._process_discards(False)
            # Undo what was done so far, as QEMU does on error.
            self._update_refcount(offset, cluster_offset - offset, addend, not decrease,
                                  DISCARD_NEVER)
            raise
        if not self.cache_discards:
            self._process_discards(True)

    def _queue_discard(self, offset: int, length: int) -> None:
        self._discards.append([offset, length])

    def _process_discards(self, ok: bool) -> None:
        discards, self._discards = self._discards, []
        if not ok:
            return
        size = self.store.size()
        punch = getattr(self.store, "punch", None)
        for off, length in discards:
            # A punched hole reads as zeros and never grows the file.
            end = min(off + length, size)
            if end > off:
                self.flush()
                if punch is not None:
                    punch(off, end - off)
                else:
                    self.store.write(off, bytes(end - off))

    def _alloc_clusters_noref(self, size: int) -> int:
        if self.cache_discards:
            self._process_discards(True)
        nb = -(-size // self.cluster_size)
        while True:
            i = 0
            while i < nb:
                idx = self.free_cluster_index
                self.free_cluster_index += 1
                if self.get_refcount(idx) != 0:
                    break
                i += 1
            if i == nb:
                break
        return (self.free_cluster_index - nb) << self.cluster_bits

    def alloc_clusters(self, size: int) -> int:
        """qcow2_alloc_clusters: find free clusters and take a reference."""
        while True:
            offset = self._alloc_clusters_noref(size)
            try:
                self._update_refcount(offset, size, 1, False, DISCARD_NEVER)
            except _Again:
                continue
            return offset

    def alloc_clusters_at(self, offset: int, nb_clusters: int) -> int:
        """qcow2_alloc_clusters_at: take as many free clusters at offset as possible."""
        if nb_clusters == 0:
            return 0
        while True:
            idx = offset >> self.cluster_bits
            i = 0
            while i < nb_clusters and self.get_refcount(idx + i) == 0:
                i += 1
            try:
                self._update_refcount(offset, i << self.cluster_bits, 1, False, DISCARD_NEVER)
            except _Again:
                continue
            return i

    def alloc_bytes(self, size: int) -> int:
        """qcow2_alloc_bytes: sub-cluster allocation for compressed data."""
        cs = self.cluster_size
        offset = self.free_byte_offset
        if offset and self.get_refcount(offset >> self.cluster_bits) == self.refcount_max:
            offset = 0
        free_in_cluster = cs - (offset & (cs - 1))
        while True:
            if not offset or free_in_cluster < size:
                new_cluster = self._alloc_clusters_noref(cs)
                if not offset or ((offset + cs - 1) & ~(cs - 1)) != new_cluster:
                    offset = new_cluster
                    free_in_cluster = cs
                else:
                    free_in_cluster += cs
            try:
                self._update_refcount(offset, size, 1, False, DISCARD_NEVER)
            except _Again:
                offset = 0
                continue
            break
        self.free_byte_offset = offset + size
        if not self.free_byte_offset & (cs - 1):
            self.free_byte_offset = 0
        return offset

    def free_clusters(self, offset: int, size: int, dtype: int) -> None:
        try:
            self._update_refcount(offset, size, 1, True, dtype)
        except Qcow2FormatError:
            pass  # QEMU only logs a leak here

    def free_any_cluster(self, l2_entry: int, dtype: int) -> None:
        ctype = self.cluster_type(l2_entry)
        if ctype == CLUSTER_COMPRESSED:
            coffset, csize = self._compressed_location(l2_entry)
            self.free_clusters(coffset, csize, dtype)
        elif ctype in (CLUSTER_NORMAL, CLUSTER_ZERO_ALLOC):
            self.free_clusters(l2_entry & L2E_OFFSET_MASK, self.cluster_size, dtype)

    # ------------------------------------------------------------ L1 / L2

    def _write_l1_entry(self, index: int) -> None:
        self.store.write(self.l1_table_offset + 8 * index, struct.pack(">Q", self.l1_table[index]))

    def grow_l1_table(self, min_size: int, exact_size: bool) -> None:
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
            raise Qcow2FormatError("L1 table too large")
        new_table = self.l1_table + [0] * (new_size - self.l1_size)
        new_offset = self.alloc_clusters(new_size * 8)
        self.flush()
        self.store.write(new_offset, struct.pack(f">{new_size}Q", *new_table))
        self.store.write(36, struct.pack(">IQ", new_size, new_offset))
        old_offset, old_size = self.l1_table_offset, self.l1_size
        self.l1_table = new_table
        self.l1_table_offset = new_offset
        self.l1_size = new_size
        if old_size:
            self.free_clusters(old_offset, old_size * 8, DISCARD_OTHER)

    def _l2_load(self, l2_offset: int) -> bytearray:
        table = self._l2_tables.get(l2_offset)
        if table is None:
            table = bytearray(self._pread(l2_offset, self.cluster_size))
            self._l2_tables[l2_offset] = table
        return table

    def _l2_allocate(self, l1_index: int) -> None:
        old = self.l1_table[l1_index]
        l2_offset = self.alloc_clusters(self.l2_size * self.l2_entry_size)
        if old & L1E_OFFSET_MASK:
            table = bytearray(self._l2_load(old & L1E_OFFSET_MASK))
        else:
            table = bytearray(self.cluster_size)
        self._l2_tables[l2_offset] = table
        self._dirty.add(("l2", l2_offset))
        self.flush()
        self.l1_table[l1_index] = l2_offset | QCOW_OFLAG_COPIED
        self._write_l1_entry(l1_index)

    def _get_cluster_table(self, offset: int) -> tuple[bytearray, int, int]:
        """get_cluster_table: the L2 table for a write (allocated/COWed if needed)."""
        l1_index = offset >> (self.l2_bits + self.cluster_bits)
        if l1_index >= self.l1_size:
            self.grow_l1_table(l1_index + 1, False)
        l2_offset = self.l1_table[l1_index] & L1E_OFFSET_MASK
        if not self.l1_table[l1_index] & QCOW_OFLAG_COPIED:
            self._l2_allocate(l1_index)
            if l2_offset:
                self.free_clusters(l2_offset, self.cluster_size, DISCARD_OTHER)
            l2_offset = self.l1_table[l1_index] & L1E_OFFSET_MASK
        l2_index = (offset >> self.cluster_bits) & (self.l2_size - 1)
        return self._l2_load(l2_offset), l2_index, l2_offset

    def _get_l2(self, table: bytearray, index: int) -> int:
        return int.from_bytes(table[index * self.l2_entry_size : index * self.l2_entry_size + 8], "big")

    def _get_l2_bitmap(self, table: bytearray, index: int) -> int:
        if not self.extended_l2:
            return 0
        pos = index * 16 + 8
        return int.from_bytes(table[pos : pos + 8], "big")

    def _set_l2(self, table: bytearray, l2_offset: int, index: int, entry: int,
                bitmap: int | None = None) -> None:
        pos = index * self.l2_entry_size
        table[pos : pos + 8] = entry.to_bytes(8, "big")
        if self.extended_l2 and bitmap is not None:
            table[pos + 8 : pos + 16] = bitmap.to_bytes(8, "big")
        self._dirty.add(("l2", l2_offset))

    def cluster_type(self, entry: int, bitmap: int = 0) -> str:
        if entry & QCOW_OFLAG_COMPRESSED:
            return CLUSTER_COMPRESSED
        if (entry & QCOW_OFLAG_ZERO) and not self.extended_l2:
            return CLUSTER_ZERO_ALLOC if entry & L2E_OFFSET_MASK else CLUSTER_ZERO_PLAIN
        if not entry & L2E_OFFSET_MASK:
            return CLUSTER_UNALLOCATED
        return CLUSTER_NORMAL

    def subcluster_type(self, entry: int, bitmap: int, sc: int) -> str:
        ctype = self.cluster_type(entry)
        if ctype == CLUSTER_COMPRESSED:
            return SC_COMPRESSED
        if not self.extended_l2:
            return {CLUSTER_ZERO_PLAIN: SC_ZERO_PLAIN, CLUSTER_ZERO_ALLOC: SC_ZERO_ALLOC,
                    CLUSTER_NORMAL: SC_NORMAL, CLUSTER_UNALLOCATED: SC_UNALLOC_PLAIN}[ctype]
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

    def _lookup(self, offset: int) -> tuple[int, int]:
        """(L2 entry, bitmap) for a guest offset without allocating anything."""
        l1_index = offset >> (self.l2_bits + self.cluster_bits)
        if l1_index >= self.l1_size:
            return 0, 0
        l2_offset = self.l1_table[l1_index] & L1E_OFFSET_MASK
        if not l2_offset:
            return 0, 0
        table = self._l2_load(l2_offset)
        idx = (offset >> self.cluster_bits) & (self.l2_size - 1)
        return self._get_l2(table, idx), self._get_l2_bitmap(table, idx)

    def _compressed_location(self, entry: int) -> tuple[int, int]:
        coffset = entry & self.cluster_offset_mask
        nb_csectors = ((entry >> self.csize_shift) & self.csize_mask) + 1
        csize = nb_csectors * COMPRESSED_SECTOR_SIZE - (coffset & (COMPRESSED_SECTOR_SIZE - 1))
        return coffset, csize

    # ------------------------------------------------------------ reading

    def map_extents(self, offset: int = 0, length: int | None = None) -> list[Extent]:
        """Allocation state of guest ranges, merged like block status does."""
        if length is None:
            length = self.virtual_size - offset
        out: list[Extent] = []
        end = offset + length
        cs = self.cluster_size
        scs = self.subcluster_size
        kinds = {SC_NORMAL: CLUSTER_NORMAL, SC_ZERO_PLAIN: CLUSTER_ZERO_PLAIN,
                 SC_ZERO_ALLOC: CLUSTER_ZERO_ALLOC, SC_UNALLOC_PLAIN: CLUSTER_UNALLOCATED,
                 SC_UNALLOC_ALLOC: CLUSTER_UNALLOCATED, SC_COMPRESSED: CLUSTER_COMPRESSED}
        pos = offset
        while pos < end:
            entry, bitmap = self._lookup(pos)
            sc = (pos & (cs - 1)) // scs
            sctype = self.subcluster_type(entry, bitmap, sc)
            if sctype == SC_INVALID:
                raise Qcow2FormatError("Invalid cluster entry found")
            kind = kinds[sctype]
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
        coffset, csize = self._compressed_location(entry)
        raw = self._pread(coffset, csize)
        if self.compression_type != 0:
            raise Qcow2FormatError("zstd compressed clusters are not supported by qmpd")
        d = zlib.decompressobj(-12)
        out = d.decompress(raw, self.cluster_size)
        if len(out) < self.cluster_size:
            raise Qcow2FormatError("Could not decompress cluster")
        return out[: self.cluster_size]

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
                start = ext.offset & (self.cluster_size - 1)
                out.append((ext.offset, ext.length, data[start : start + ext.length]))
            else:
                out.append((ext.offset, ext.length, self._pread(ext.host_offset, ext.length)))
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

    def length(self) -> int:
        return self.virtual_size

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

    def _needs_new_alloc(self, entry: int) -> bool:
        ctype = self.cluster_type(entry)
        if ctype in (CLUSTER_NORMAL, CLUSTER_ZERO_ALLOC):
            return not entry & QCOW_OFLAG_COPIED
        return True

    def _count_single_write_clusters(self, nb: int, table: bytearray, idx: int,
                                     new_alloc: bool) -> int:
        expected = self._get_l2(table, idx) & L2E_OFFSET_MASK
        i = 0
        while i < nb:
            entry = self._get_l2(table, idx + i)
            if self._needs_new_alloc(entry) != new_alloc:
                break
            if not new_alloc:
                if expected != entry & L2E_OFFSET_MASK:
                    break
                expected += self.cluster_size
            i += 1
        return i

    def _calculate_l2_meta(self, host_cluster: int, guest_offset: int, nbytes: int,
                           table: bytearray, keep_old: bool) -> _L2Meta | None:
        """calculate_l2_meta: the COW areas of a write, or None when there are none."""
        cs = self.cluster_size
        scs = self.subcluster_size
        spc = self.subclusters_per_cluster
        l2_index = (guest_offset >> self.cluster_bits) & (self.l2_size - 1)
        cow_start_to = guest_offset & (cs - 1)
        cow_end_from = cow_start_to + nbytes
        nb_clusters = -(-cow_end_from // cs)
        skip_cow = keep_old
        for i in range(nb_clusters):
            entry = self._get_l2(table, l2_index + i)
            bitmap = self._get_l2_bitmap(table, l2_index + i)
            if skip_cow:
                write_from = max(cow_start_to, i * cs)
                write_to = min(cow_end_from, (i + 1) * cs)
                first_sc = (write_from % cs) // scs
                last_sc = ((write_to - 1) % cs) // scs
                for sc in range(first_sc, last_sc + 1):
                    if self.subcluster_type(entry, bitmap, sc) != SC_NORMAL:
                        skip_cow = False
                        break
        if skip_cow:
            return None
        entry = self._get_l2(table, l2_index)
        bitmap = self._get_l2_bitmap(table, l2_index)
        sc_index = (guest_offset & (cs - 1)) // scs
        sctype = self.subcluster_type(entry, bitmap, sc_index)
        alloc_bits = bitmap & L2_BITMAP_ALL_ALLOC
        if not keep_old:
            if sctype == SC_COMPRESSED:
                cow_start_from = 0
            elif sctype in (SC_NORMAL, SC_ZERO_ALLOC, SC_UNALLOC_ALLOC):
                if self.extended_l2:
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
        entry = self._get_l2(table, l2_last)
        bitmap = self._get_l2_bitmap(table, l2_last)
        sc_index = ((guest_offset + nbytes - 1) & (cs - 1)) // scs
        sctype = self.subcluster_type(entry, bitmap, sc_index)
        alloc_bits = bitmap & L2_BITMAP_ALL_ALLOC
        if not keep_old:
            if sctype == SC_COMPRESSED:
                cow_end_to = -(-cow_end_from // cs) * cs
            elif sctype in (SC_NORMAL, SC_ZERO_ALLOC, SC_UNALLOC_ALLOC):
                cow_end_to = -(-cow_end_from // cs) * cs
                if self.extended_l2:
                    clz = 32 - alloc_bits.bit_length()
                    cow_end_to -= min(spc - sc_index - 1, clz) * scs
            else:
                cow_end_to = -(-cow_end_from // scs) * scs
        elif sctype == SC_NORMAL:
            cow_end_to = cow_end_from
        else:
            cow_end_to = -(-cow_end_from // scs) * scs
        return _L2Meta(guest_offset & ~(cs - 1), host_cluster, nb_clusters, cow_start_from,
                       cow_start_to, cow_end_from, cow_end_to, keep_old)

    def _alloc_host_offset(self, offset: int, nbytes: int) -> tuple[int, int, list[_L2Meta]]:
        """qcow2_alloc_host_offset: (host offset, bytes covered, new allocations)."""
        cs = self.cluster_size
        start = offset
        remaining = nbytes
        cluster_offset: int | None = None
        host_offset: int | None = None
        cur = 0
        metas: list[_L2Meta] = []
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
            l2_index = (start >> self.cluster_bits) & (self.l2_size - 1)
            nb = min(-(-((start & (cs - 1)) + cur) // cs), self.l2_size - l2_index)
            nb = min(nb, REQUEST_MAX_BYTES >> self.cluster_bits)
            table, l2_index, _l2off = self._get_cluster_table(start)
            entry = self._get_l2(table, l2_index)
            if not self._needs_new_alloc(entry):
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
                alloc = self.alloc_clusters(nb * cs)
            else:
                alloc = cluster_offset & ~(cs - 1)
                nb = self.alloc_clusters_at(alloc, nb)
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

    def _link_l2(self, m: _L2Meta, prealloc: bool = False) -> None:
        """qcow2_alloc_cluster_link_l2, then free the clusters it replaced."""
        cs = self.cluster_size
        old: list[int] = []
        table, idx, l2off = self._get_cluster_table(m.offset)
        for i in range(m.nb_clusters):
            entry = self._get_l2(table, idx + i)
            if entry != 0:
                old.append(entry)
            bitmap = None
            if self.extended_l2 and not prealloc:
                bitmap = self._get_l2_bitmap(table, idx + i)
                written_from = max(m.cow_start_from, i * cs)
                written_to = min(m.cow_end_to, (i + 1) * cs)
                first_sc = (written_from - i * cs) // self.subcluster_size
                last_sc = (written_to - 1 - i * cs) // self.subcluster_size
                rng = _sub_alloc_range(first_sc, last_sc + 1)
                bitmap = (bitmap | rng) & ~(rng << 32)
            self._set_l2(table, l2off, idx + i, (m.alloc_offset + i * cs) | QCOW_OFLAG_COPIED,
                         bitmap)
        if not m.keep_old:
            for entry in old:
                self.free_any_cluster(entry, DISCARD_NEVER)

    def write(self, offset: int, data: bytes) -> None:
        """Guest write (qcow2_co_pwritev_part)."""
        self._check_writable()
        self._check_range(offset, len(data))
        pos = 0
        while pos < len(data):
            goff = offset + pos
            host, n, metas = self._alloc_host_offset(goff, len(data) - pos)
            chunk = data[pos : pos + n]
            for m in metas:
                # COW: old guest data around the written bytes, in one write.
                lo, hi = m.offset + m.cow_start_from, m.offset + m.cow_end_to
                buf = bytearray(self._guest_view(lo, hi - lo))
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
            for m in metas:
                self._link_l2(m)
            pos += n
        self.flush()

    def _guest_view(self, offset: int, length: int) -> bytes:
        """Current guest content, zero-padded beyond the virtual size."""
        end = min(offset + length, self.virtual_size)
        data = self.read(offset, end - offset) if end > offset else b""
        return data + bytes(length - len(data))

    def _check_range(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.virtual_size:
            raise OSError(5, "Input/output error")

    def write_zeroes(self, offset: int, length: int, *, unmap: bool = False) -> None:
        """bdrv_co_do_pwrite_zeroes over qcow2 (qemu-io ``write -z [-u]``)."""
        self._check_writable()
        self._check_range(offset, length)
        align = self.subcluster_size  # qcow2's pwrite_zeroes_alignment
        head = offset % align
        tail = (offset + length) % align
        while length > 0:
            num = length
            if head:
                num = min(length, align - head)
                head = (head + num) % align
            elif tail and num > align:
                num -= tail
            if not self._pwrite_zeroes_driver(offset, num, unmap):
                # -ENOTSUP: the block layer falls back to writing a zero buffer.
                pos = 0
                while pos < num:
                    n = min(num - pos, 32768 * 512)
                    self.write(offset + pos, bytes(n))
                    pos += n
            offset += num
            length -= num
        self.flush()

    def _pwrite_zeroes_driver(self, offset: int, nbytes: int, unmap: bool) -> bool:
        """qcow2_co_pwrite_zeroes; False means -ENOTSUP."""
        scs = self.subcluster_size
        head = offset % scs
        tail = (-(offset + nbytes)) % scs
        if offset + nbytes == self.virtual_size:
            tail = 0
        if head or tail:
            if not (self.is_zero(offset - head, head) and self.is_zero(offset + nbytes, tail)):
                return False
            offset -= head
            nbytes = scs
            entry, bitmap = self._lookup(offset)
            sc = (offset % self.cluster_size) // scs
            if self.subcluster_type(entry, bitmap, sc) not in (
                    SC_UNALLOC_PLAIN, SC_UNALLOC_ALLOC, SC_ZERO_PLAIN, SC_ZERO_ALLOC):
                return False
        return self._subcluster_zeroize(offset, nbytes, unmap)

    def _zero_l2_subclusters(self, offset: int, nb_subclusters: int) -> bool:
        table, idx, l2off = self._get_cluster_table(offset)
        entry = self._get_l2(table, idx)
        if self.cluster_type(entry) == CLUSTER_COMPRESSED:
            return False  # cannot partially zeroize compressed clusters
        sc = (offset % self.cluster_size) // self.subcluster_size
        old = self._get_l2_bitmap(table, idx)
        rng = _sub_alloc_range(sc, sc + nb_subclusters)
        new = (old | (rng << 32)) & ~rng
        if new != old:
            self._set_l2(table, l2off, idx, entry, new)
        return True

    def _subcluster_zeroize(self, offset: int, nbytes: int, unmap: bool) -> bool:
        """qcow2_subcluster_zeroize; False means -ENOTSUP."""
        cs = self.cluster_size
        if self.version < 3:
            if self.backing is None:
                self.cluster_discard(offset, nbytes, DISCARD_REQUEST, False)
                return True
            return False
        end_offset = offset + nbytes
        head = min(end_offset, -(-offset // cs) * cs) - offset
        offset += head
        tail = 0 if end_offset >= self.virtual_size else (
            end_offset - max(offset, end_offset & ~(cs - 1)))
        end_offset -= tail
        scs = self.subcluster_size
        self.cache_discards = True
        try:
            if head and not self._zero_l2_subclusters(offset - head, -(-head // scs)):
                return False
            nb = -(-(end_offset - offset) // cs) if end_offset > offset else 0
            while nb > 0:
                table, idx, l2off = self._get_cluster_table(offset)
                n = min(nb, self.l2_size - idx)
                for i in range(n):
                    old = self._get_l2(table, idx + i)
                    old_bm = self._get_l2_bitmap(table, idx + i)
                    ctype = self.cluster_type(old)
                    do_unmap = ctype == CLUSTER_COMPRESSED or (
                        unmap and ctype in (CLUSTER_NORMAL, CLUSTER_ZERO_ALLOC))
                    new = 0 if do_unmap else old
                    if self.extended_l2:
                        new_bm = L2_BITMAP_ALL_ZEROES
                        if old == new and old_bm == new_bm:
                            continue
                        self._set_l2(table, l2off, idx + i, new, new_bm)
                    else:
                        new |= QCOW_OFLAG_ZERO
                        if old == new:
                            continue
                        self._set_l2(table, l2off, idx + i, new)
                    if do_unmap:
                        self.free_any_cluster(old, DISCARD_REQUEST)
                nb -= n
                offset += n * cs
            if tail and not self._zero_l2_subclusters(end_offset, -(-tail // scs)):
                return False
        finally:
            self.cache_discards = False
            self.flush()
            self._process_discards(True)
        return True

    def cluster_discard(self, offset: int, nbytes: int, dtype: int, full_discard: bool) -> None:
        """qcow2_cluster_discard."""
        nb = -(-nbytes // self.cluster_size)
        self.cache_discards = True
        try:
            while nb > 0:
                table, idx, l2off = self._get_cluster_table(offset)
                n = min(nb, self.l2_size - idx)
                for i in range(n):
                    old = self._get_l2(table, idx + i)
                    old_bm = self._get_l2_bitmap(table, idx + i)
                    ctype = self.cluster_type(old)
                    new, new_bm = old, old_bm
                    if full_discard:
                        new = new_bm = 0
                    elif self.backing is not None or ctype in (
                            CLUSTER_NORMAL, CLUSTER_ZERO_ALLOC, CLUSTER_COMPRESSED):
                        if self.extended_l2:
                            new, new_bm = 0, 0xFFFFFFFF << 32
                        else:
                            new = QCOW_OFLAG_ZERO if self.version >= 3 else 0
                    if old == new and old_bm == new_bm:
                        continue
                    self._set_l2(table, l2off, idx + i, new,
                                 new_bm if self.extended_l2 else None)
                    self.free_any_cluster(old, dtype)
                nb -= n
                offset += n * self.cluster_size
        finally:
            self.cache_discards = False
            self.flush()
            self._process_discards(True)

    def discard(self, offset: int, length: int) -> None:
        """bdrv_co_pdiscard over qcow2 (qemu-io ``discard``); partial clusters are ignored."""
        self._check_writable()
        self._check_range(offset, length)
        if not self.discard_passthrough[DISCARD_REQUEST]:
            return
        align = self.cluster_size
        head = offset % align
        tail = (offset + length) % align
        while length > 0:
            num = length
            if head:
                num = min(length, align - head)
                head = (head + num) % align
            elif tail and num > align:
                num -= tail
            self._pdiscard_driver(offset, num)
            offset += num
            length -= num
        self.flush()

    def _pdiscard_driver(self, offset: int, nbytes: int) -> None:
        cs = self.cluster_size
        if self.version < 3 and self.backing is not None:
            return
        if (offset | nbytes) & (cs - 1):
            if offset & (cs - 1) or offset + nbytes != self.virtual_size:
                return
        self.cluster_discard(offset, nbytes, DISCARD_REQUEST, False)

    def write_compressed(self, offset: int, data: bytes) -> None:
        """qcow2_co_pwritev_compressed_part (qemu-io ``write -c``)."""
        self._check_writable()
        self._check_range(offset, len(data))
        cs = self.cluster_size
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
        table, idx, l2off = self._get_cluster_table(offset)
        if self._get_l2(table, idx) & L2E_OFFSET_MASK:
            raise OSError(5, "Input/output error")
        host = self.alloc_bytes(len(out))
        nb_csectors = (host + len(out) - 1) // COMPRESSED_SECTOR_SIZE - host // COMPRESSED_SECTOR_SIZE
        entry = host | QCOW_OFLAG_COMPRESSED | (nb_csectors << self.csize_shift)
        table, idx, l2off = self._get_cluster_table(offset)
        self._set_l2(table, l2off, idx, entry, 0 if self.extended_l2 else None)
        self.flush()
        self.store.write(host, out)

    # ------------------------------------------------------------ header

    def update_header(self) -> None:
        """qcow2_update_header: rewrite the whole first cluster."""
        self.store.write(0, build_header_cluster(
            version=self.version,
            cluster_bits=self.cluster_bits,
            virtual_size=self.virtual_size,
            l1_size=self.l1_size,
            l1_table_offset=self.l1_table_offset,
            refcount_table_offset=self.refcount_table_offset,
            refcount_table_clusters=self.refcount_table_size * 8 // self.cluster_size,
            refcount_order=self.refcount_order,
            incompatible_features=self.incompatible_features,
            compatible_features=self.compatible_features,
            autoclear_features=self.autoclear_features,
            compression_type=self.compression_type,
            backing_file=self.backing_file,
            backing_format=self.backing_format,
            unknown_extensions=self.header.unknown_extensions,
        ))

    def truncate_grow(self, size: int) -> None:
        """qcow2_co_truncate growing with preallocation=off."""
        cs = self.cluster_size
        per_l1 = cs * self.l2_size
        new_l1_size = -(-size // per_l1)
        self.grow_l1_table(new_l1_size, True)
        self.flush()
        self.store.write(24, struct.pack(">Q", size))
        self.virtual_size = size


def _preallocate_metadata(img: Qcow2Image, size: int, start: int = 0) -> None:
    """preallocation=metadata: allocate every cluster from ``start`` on
    (qcow2 preallocate_co; ``start`` is the old size when growing)."""
    offset = start
    host_end = 0
    while offset < size:
        n = min(size - offset, REQUEST_MAX_BYTES)
        host, cur, metas = img._alloc_host_offset(offset, n)
        for m in metas:
            # perform_cow() without guest data: the COW areas alone are
            # written (zeros: no backing file is attached during create).
            for lo, hi in ((m.cow_start_from, m.cow_start_to), (m.cow_end_from, m.cow_end_to)):
                if hi > lo:
                    img.store.write(m.alloc_offset + lo, bytes(hi - lo))
            img._link_l2(m, prealloc=True)
        host_end = max(host_end, host + cur)
        offset += cur
    img.flush()
    # QEMU extends the file to the end of the last preallocated cluster.
    if host_end > img.store.size():
        img.store.truncate(host_end)


def _preallocate_space(img: Qcow2Image, size: int, start: int = 0) -> None:
    """preallocation=falloc/full: qcow2_co_truncate's allocation of data
    clusters for the guest range from ``start`` (the old size) to ``size``.

    New self-describing refcount structures go after the last used cluster,
    the data area follows them, and L2 tables are filled in afterwards (they
    land in whatever clusters are free first, e.g. the old refcount table).
    """
    cs = img.cluster_size
    old_file_size = img.store.size()
    last = -(-old_file_size // cs) - 1
    while last >= 0 and img.get_refcount(last) == 0:
        last -= 1
    old_file_size = (last + 1) * cs if last >= 0 else -(-old_file_size // cs) * cs
    first = start // cs * cs
    nb_data = (-(-size // cs) * cs - first) // cs
    nb_l2 = -(-nb_data // (cs // img.l2_entry_size)) + 1
    allocation_start = img.refcount_area(old_file_size, nb_data + nb_l2, True, 0, 0)
    img.alloc_clusters_at(allocation_start, nb_data)
    img.flush()
    new_file_size = allocation_start + nb_data * cs
    if new_file_size > img.store.size():
        img.store.truncate(new_file_size)
    host_offset, guest_offset = allocation_start, first
    while nb_data:
        l2_index = (guest_offset >> img.cluster_bits) & (img.l2_size - 1)
        n = min(nb_data, img.l2_size - l2_index)
        img._link_l2(_L2Meta(guest_offset, host_offset, n, 0, 0, n * cs, n * cs),
                     prealloc=True)
        guest_offset += n * cs
        host_offset += n * cs
        nb_data -= n
    img.flush()


def create_qcow2(
    size: int,
    *,
    cluster_size: int = DEFAULT_CLUSTER_SIZE,
    backing_file: str | None = None,
    backing_format: str | None = None,
    compat: str = "1.1",
    lazy_refcounts: bool = False,
    refcount_bits: int = 16,
    extended_l2: bool = False,
    compression_type: str = "zlib",
    preallocation: str = "off",
    data_file_raw: bool = False,
) -> bytes:
    """The bytes ``qemu-img create -f qcow2`` (QEMU 7.2) writes.

    Raises :class:`Qcow2FormatError` with qemu-img's text for invalid options.
    """
    cluster_bits = cluster_size.bit_length() - 1
    if (cluster_size & (cluster_size - 1)) or not (
        MIN_CLUSTER_BITS <= cluster_bits <= MAX_CLUSTER_BITS
    ):
        raise Qcow2FormatError(
            "Cluster size must be a power of two between 512 and 2048k"
        )
    if compat in ("0.10", "v2"):
        version = 2
    elif compat in ("1.1", "v3"):
        version = 3
    else:
        raise Qcow2FormatError(f"Invalid compatibility level: '{compat}'")
    if refcount_bits > 64 or refcount_bits <= 0 or refcount_bits & (refcount_bits - 1):
        raise Qcow2FormatError(
            "Refcount width must be a power of two and may not exceed 64 bits"
        )
    if version < 3 and refcount_bits != 16:
        raise Qcow2FormatError(
            "Different refcount widths than 16 bits require compatibility level "
            "1.1 or above (use version=v3 or greater)"
        )
    if version < 3 and lazy_refcounts:
        raise Qcow2FormatError(
            "Lazy refcounts only supported with compatibility level 1.1 and above "
            "(use version=v3 or greater)"
        )
    if version < 3 and extended_l2:
        raise Qcow2FormatError(
            "Extended L2 entries are only supported with compatibility level 1.1 "
            "and above (use version=v3 or greater)"
        )
    if extended_l2 and cluster_size < 16384:
        raise Qcow2FormatError(
            "Extended L2 entries are only supported with cluster sizes of at least "
            "16384 bytes"
        )
    if compression_type not in ("zlib", "zstd"):
        raise Qcow2FormatError(
            f"Parameter 'compression-type' does not accept value '{compression_type}'"
        )
    if version < 3 and compression_type != "zlib":
        raise Qcow2FormatError(
            "Non-zlib compression type is only supported with compatibility level "
            "1.1 and above (use version=v3 or greater)"
        )
    if backing_file and preallocation != "off" and not extended_l2:
        raise Qcow2FormatError(
            "Backing file and preallocation can only be used at the same time if "
            "extended_l2 is on"
        )
    if backing_format and not backing_file:
        raise Qcow2FormatError("Backing format cannot be used without backing file")
    if preallocation not in ("off", "metadata", "falloc", "full"):
        raise Qcow2FormatError(
            f"Parameter 'preallocation' does not accept value '{preallocation}'"
        )
    size = -(-size // SECTOR_SIZE) * SECTOR_SIZE
    refcount_order = refcount_bits.bit_length() - 1
    incompat = 0
    if compression_type == "zstd":
        incompat |= INCOMPAT_COMPRESSION
    if extended_l2:
        incompat |= INCOMPAT_EXTL2
    store = MemoryStore()
    # Initial header + an empty refcount table naming one refcount block.
    first = bytearray(cluster_size)
    struct.pack_into(
        ">IIQIIQIIQQIIQ", first, 0, QCOW_MAGIC, version, 0, 0, cluster_bits, 0, 0, 0, 0,
        cluster_size, 1, 0, 0,
    )
    struct.pack_into(">QQQII", first, 72, incompat,
                     COMPAT_LAZY_REFCOUNTS if lazy_refcounts else 0,
                     AUTOCLEAR_DATA_FILE_RAW if data_file_raw else 0, refcount_order,
                     V3_HEADER_LEN)
    first[104] = 1 if compression_type == "zstd" else 0
    store.write(0, bytes(first))
    reft = bytearray(2 * cluster_size)
    struct.pack_into(">Q", reft, 0, 2 * cluster_size)
    store.write(cluster_size, bytes(reft))
    img = Qcow2Image(store)
    img.alloc_clusters(3 * cluster_size)
    img.flush()
    img.update_header()
    img.truncate_grow(size)
    if preallocation == "metadata":
        _preallocate_metadata(img, size)
    elif preallocation in ("falloc", "full"):
        _preallocate_space(img, size)
    if backing_file:
        img.backing_file = backing_file
        img.backing_format = backing_format
        img.update_header()
    img.flush()
    return bytes(store.data)


def raw_reader(read: Callable[[int, int], bytes], size: int) -> BackingReader:
    """Wrap a raw image as a :class:`BackingReader` (zeros are not detected)."""

    class _Raw:
        def length(self) -> int:
            return size

        def read(self, offset: int, length: int) -> bytes:
            data = read(offset, length)
            return data + bytes(length - len(data))

        def is_zero(self, offset: int, length: int) -> bool:
            return False

    return _Raw()
