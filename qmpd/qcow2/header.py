"""The qcow2 header: parsing the first cluster and writing it as QEMU 7.2 does.

``parse_qcow2_header`` raises :class:`~qmpd.qcow2.spec.Qcow2FormatError` with
QEMU 7.2's open error texts; ``build_header_cluster`` is qcow2_update_header's
output byte for byte (extensions, feature name table, backing file name).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from qmpd.cstrings import cstring, from_cstring
from qmpd.qcow2.spec import (
    AUTOCLEAR_DATA_FILE_RAW,
    COMPAT_LAZY_REFCOUNTS,
    EXT_BACKING_FORMAT,
    EXT_BITMAPS,
    EXT_CRYPTO_HEADER,
    EXT_DATA_FILE,
    EXT_END,
    EXT_FEATURE_TABLE,
    INCOMPAT_CORRUPT,
    INCOMPAT_DIRTY,
    INCOMPAT_EXTL2,
    INCOMPAT_MASK,
    MAX_CLUSTER_BITS,
    MIN_CLUSTER_BITS,
    QCOW_MAGIC,
    QCOW_MAGIC_BYTES,
    V2_HEADER_LEN,
    V3_HEADER_LEN,
    Qcow2FormatError,
)

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
    # The bitmaps extension, when the autoclear bit vouches for it
    # (qcow2_read_extensions ignores it otherwise).
    nb_bitmaps: int = 0
    bitmap_directory_size: int = 0
    bitmap_directory_offset: int = 0

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
            if hdr.autoclear_features & 1 and length == 24:     # AUTOCLEAR_BITMAPS
                (hdr.nb_bitmaps, _, hdr.bitmap_directory_size,
                 hdr.bitmap_directory_offset) = struct.unpack(">IIQQ", payload)
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
    bitmaps: tuple[int, int, int] | None = None,
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
    if bitmaps is not None and bitmaps[0] > 0:
        # (nb_bitmaps, directory size, directory offset)
        body += _header_ext(EXT_BITMAPS, struct.pack(">IIQQ", bitmaps[0], 0, bitmaps[1],
                                                     bitmaps[2]))
    for magic, payload in unknown_extensions or []:
        body += _header_ext(magic, payload)
    body += _header_ext(EXT_END, b"")
    bf_offset = bf_size = 0
    if backing_file:
        name = cstring(backing_file)
        bf_offset = header_length + len(body)
        bf_size = len(name)
        body += name
    head = struct.pack(">IIQIIQIIQQIIQ", QCOW_MAGIC, version, bf_offset, bf_size, cluster_bits,
                       virtual_size, 0, l1_size, l1_table_offset, refcount_table_offset,
                       refcount_table_clusters, nb_snapshots, snapshots_offset)
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


