"""The qcow2 image format, pure: no host files, no engine, no JSON.

Callers hand it bytes (``parse_qcow2_header``), get bytes back
(``create_qcow2``) or pass a :class:`ByteStore` (``Qcow2Image``).  The block
engine's qcow2 driver and ``block_resize`` use it over a node's ``file``
child; ``qmpd-img`` uses it over a host file for ``qemu-img create`` and
``qemu-io``.

The allocation code is a port of QEMU 7.2's block/qcow2*.c algorithms (free
cluster search, refcount block/table growth, L2 allocation, COW areas,
compressed byte allocation, zero clusters, discard) because the goal is that
every write leaves the image file byte-identical to what QEMU 7.2 leaves.

Layout, from the bottom up:

* ``spec``: magics, flags, masks, type names, :class:`Geometry`, the error;
* ``store``: the host file (:class:`ByteStore`) and backing image protocols;
* ``header``: parse and write the header cluster;
* ``cache``: write-back refcount blocks and L2 tables, host discards;
* ``refcount``: the refcount table and blocks (and their growth);
* ``entries``: what an L2 entry says; ``allocator``: host clusters and bytes;
* ``tables``: the L1 and L2 tables; ``mapping``: guest writes to host clusters;
* ``zeroing``: zero and discard clusters;
* ``image``: :class:`Qcow2Image`, the guest's view (read, write, zeroes,
  discard, compressed writes, resize);
* ``preallocation`` and ``create``: ``qemu-img create`` and preallocated growth.
"""

from qmpd.qcow2.create import create_qcow2
from qmpd.qcow2.header import Qcow2Header, build_header_cluster, is_qcow2, parse_qcow2_header
from qmpd.qcow2.image import Extent, Qcow2Image
from qmpd.qcow2.preallocation import preallocate_metadata, preallocate_space
from qmpd.qcow2.spec import (
    CLUSTER_COMPRESSED,
    CLUSTER_NORMAL,
    CLUSTER_UNALLOCATED,
    CLUSTER_ZERO_ALLOC,
    CLUSTER_ZERO_PLAIN,
    DEFAULT_CLUSTER_SIZE,
    DISCARD_ALWAYS,
    DISCARD_REQUEST,
    Geometry,
    Qcow2FormatError,
)
from qmpd.qcow2.store import BackingReader, ByteStore, MemoryStore, raw_reader

__all__ = [
    "CLUSTER_COMPRESSED",
    "CLUSTER_NORMAL",
    "CLUSTER_UNALLOCATED",
    "CLUSTER_ZERO_ALLOC",
    "CLUSTER_ZERO_PLAIN",
    "DEFAULT_CLUSTER_SIZE",
    "DISCARD_ALWAYS",
    "DISCARD_REQUEST",
    "BackingReader",
    "ByteStore",
    "Extent",
    "Geometry",
    "MemoryStore",
    "Qcow2FormatError",
    "Qcow2Header",
    "Qcow2Image",
    "build_header_cluster",
    "create_qcow2",
    "is_qcow2",
    "parse_qcow2_header",
    "preallocate_metadata",
    "preallocate_space",
    "raw_reader",
]
