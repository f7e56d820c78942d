"""What docs/interop/qcow2.txt fixes: magics, flags, masks, limits and type names.

Every other module of :mod:`qmpd.qcow2` takes its numbers from here, plus
:class:`Geometry` (the sizes one image's header implies) and
:class:`Qcow2FormatError` (an image QEMU would refuse, with QEMU's text).
"""

from __future__ import annotations

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

# Incompatible feature bits 0 to 4, in qcow2.txt's order; MASK: all known.
INCOMPAT_DIRTY, INCOMPAT_CORRUPT, INCOMPAT_DATA_FILE, INCOMPAT_COMPRESSION, INCOMPAT_EXTL2 = (
    1 << bit for bit in range(5))
INCOMPAT_MASK = 0x1F
COMPAT_LAZY_REFCOUNTS = 1 << 0
AUTOCLEAR_BITMAPS = 1 << 0
AUTOCLEAR_DATA_FILE_RAW = 1 << 1

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
# Largest image the block layer allows (BDRV_MAX_LENGTH: INT64_MAX aligned
# down to BDRV_MAX_ALIGNMENT, 1 GiB); bdrv_co_truncate refuses more.
BDRV_MAX_LENGTH = (2**63 - 1) // 2**30 * 2**30

V2_HEADER_LEN = 72
V3_HEADER_LEN = 112  # 104 plus compression type byte and padding (QEMU >= 5.1)

# Header fields rewritten in place (offsets into the first cluster).
HEADER_SIZE_OFFSET = 24
HEADER_L1_OFFSET = 36
HEADER_REFCOUNT_TABLE_OFFSET = 48

# Cluster types, as qcow2_get_cluster_type() names them.
CLUSTER_UNALLOCATED = "unallocated"
CLUSTER_ZERO_PLAIN = "zero-plain"
CLUSTER_ZERO_ALLOC = "zero-alloc"
CLUSTER_NORMAL = "normal"
CLUSTER_COMPRESSED = "compressed"

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


class Geometry:
    """The sizes an image's header implies (BDRVQcow2State's derived fields).

    Plain attributes computed once, because the cluster loops read them for
    every cluster they visit.
    """

    __slots__ = (
        "version", "cluster_bits", "cluster_size", "extended_l2", "l2_entry_size", "l2_size",
        "l2_bits", "subclusters_per_cluster", "subcluster_size", "refcount_order",
        "refcount_block_bits", "refcount_block_size", "refcount_max", "csize_shift",
        "cluster_offset_mask", "csize_mask",
    )

    def __init__(self, version: int, cluster_bits: int, refcount_order: int,
                 extended_l2: bool) -> None:
        self.version = version
        self.cluster_bits = cluster_bits
        self.cluster_size = 1 << cluster_bits
        self.extended_l2 = extended_l2
        self.l2_entry_size = 16 if extended_l2 else 8
        self.l2_size = self.cluster_size // self.l2_entry_size  # entries per L2 table
        self.l2_bits = self.l2_size.bit_length() - 1
        self.subclusters_per_cluster = 32 if extended_l2 else 1
        self.subcluster_size = self.cluster_size // self.subclusters_per_cluster
        self.refcount_order = refcount_order
        # log2 of the refcount entries one refcount block holds.
        self.refcount_block_bits = cluster_bits + 3 - refcount_order
        self.refcount_block_size = 1 << self.refcount_block_bits
        self.refcount_max = (1 << (1 << refcount_order)) - 1
        # A compressed L2 entry: host offset below csize_shift, sector count above.
        self.csize_shift = 62 - (cluster_bits - 8)
        self.cluster_offset_mask = (1 << self.csize_shift) - 1
        self.csize_mask = (1 << (cluster_bits - 8)) - 1
