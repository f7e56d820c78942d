"""``qemu-img create -f qcow2``: option checks and the image bytes QEMU 7.2 writes.

The image is built the way qcow2_co_create does it: a minimal header and
refcount table, the first clusters allocated through the normal refcount
code, the header rewritten, the L1 table grown to the size, then
preallocation and the backing file name.
"""

from __future__ import annotations

import struct

from qmpd.qcow2.image import Qcow2Image
from qmpd.qcow2.preallocation import preallocate_metadata, preallocate_space
from qmpd.qcow2.spec import (
    AUTOCLEAR_DATA_FILE_RAW,
    COMPAT_LAZY_REFCOUNTS,
    DEFAULT_CLUSTER_SIZE,
    INCOMPAT_COMPRESSION,
    INCOMPAT_EXTL2,
    MAX_CLUSTER_BITS,
    MIN_CLUSTER_BITS,
    QCOW_MAGIC,
    SECTOR_SIZE,
    V3_HEADER_LEN,
    Qcow2FormatError,
)
from qmpd.qcow2.store import MemoryStore


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
    img.allocator.alloc(3 * cluster_size)
    img.flush()
    img.update_header()
    img.truncate_grow(size)
    if preallocation == "metadata":
        preallocate_metadata(img, size)
    elif preallocation in ("falloc", "full"):
        preallocate_space(img, size)
    if backing_file:
        img.backing_file = backing_file
        img.backing_format = backing_format
        img.update_header()
    img.flush()
    return bytes(store.data)
