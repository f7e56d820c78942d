"""Persistent dirty bitmaps in qcow2 images (QEMU 7.2 block/qcow2-bitmap.c).

The bitmaps header extension points at a bitmap directory: one entry per
bitmap (its table's offset and size, flags ``in-use``/``auto``, granularity
and name).  A bitmap table has one entry per cluster of serialized bitmap
data (0: all zero, no cluster).  Serialized data is the HBitmap's last level,
little-endian: bit ``i`` covers guest bytes ``[i * granularity, (i+1) *
granularity)``.

This module works on a :class:`~qmpd.qcow2.image.Qcow2Image` only,
with plain data (:class:`StoredBitmap`), so that both ``qmpd-img bitmap``
and the engine's qcow2 driver use it.  Cluster allocation and freeing follow
QEMU's order exactly, so images come out byte-identical:

* open read-write (:func:`load`): bitmaps without ``in-use`` get it, and the
  directory is rewritten in place (autoclear bit off, directory, bit on);
* close (:func:`store`): every persistent bitmap the node has is written anew
  (data clusters, then its table), then a new directory, the header, and
  the old directory, tables and data clusters are freed;
* remove (:func:`remove_stored`): directory without the bitmap, then its clusters.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qmpd.qcow2.spec import DISCARD_ALWAYS as _DISCARD_ALWAYS
from qmpd.qcow2.spec import DISCARD_OTHER as _DISCARD_OTHER
from qmpd.qcow2.store import read_exact

if TYPE_CHECKING:
    from qmpd.qcow2.image import Qcow2Image

BME_FLAG_IN_USE = 1 << 0
BME_FLAG_AUTO = 1 << 1
BME_TABLE_ENTRY_OFFSET_MASK = 0x00FFFFFFFFFFFE00
BME_TABLE_ENTRY_FLAG_ALL_ONES = 1
BT_DIRTY_TRACKING_BITMAP = 1
DIR_ENTRY = struct.Struct(">QIIBBHI")
AUTOCLEAR_BITMAPS = 1 << 0
# (data clusters of a dropped bitmap are discarded always, its table and the
# old directory as "other")


@dataclass
class DirEntry:
    """One Qcow2BitmapDirEntry."""

    name: str
    granularity_bits: int
    flags: int
    table_offset: int
    table_size: int
    extra: bytes = b""


@dataclass
class StoredBitmap:
    """A bitmap as the node holds it (the fields qcow2-bitmap.c reads)."""

    name: str
    granularity: int
    size: int                       # bytes covered (bdrv_dirty_bitmap_size)
    bits: set[int] = field(default_factory=set)
    enabled: bool = True
    persistent: bool = True
    readonly: bool = False
    inconsistent: bool = False


def dir_entry_size(name_len: int, extra_len: int = 0) -> int:
    """calc_dir_entry_size."""
    return (DIR_ENTRY.size + name_len + extra_len + 7) & ~7


def load_directory(img: Qcow2Image) -> list[DirEntry]:
    """bitmap_list_load: the directory in its on-disk order."""
    if not getattr(img, "nb_bitmaps", 0):
        return []
    raw = read_exact(img.store, img.bitmap_directory_offset, img.bitmap_directory_size)
    out = []
    pos = 0
    while pos + DIR_ENTRY.size <= len(raw):
        toff, tsize, flags, _type, gbits, nlen, xlen = DIR_ENTRY.unpack_from(raw, pos)
        start = pos + DIR_ENTRY.size
        extra = raw[start:start + xlen]
        name = raw[start + xlen:start + xlen + nlen].decode("utf-8", "replace")
        out.append(DirEntry(name, gbits, flags, toff, tsize, bytes(extra)))
        pos += dir_entry_size(nlen, xlen)
    return out


def _table(img: Qcow2Image, e: DirEntry) -> list[int]:
    raw = read_exact(img.store, e.table_offset, e.table_size * 8) if e.table_size else b""
    return list(struct.unpack(f">{e.table_size}Q", raw))


def read_bits(img: Qcow2Image, e: DirEntry) -> set[int]:
    """load_bitmap_data: the set chunks of a stored bitmap."""
    bits_per_cluster = img.geo.cluster_size * 8
    out: set[int] = set()
    for i, entry in enumerate(_table(img, e)):
        base = i * bits_per_cluster
        if entry & BME_TABLE_ENTRY_FLAG_ALL_ONES:
            out.update(range(base, base + bits_per_cluster))
            continue
        off = entry & BME_TABLE_ENTRY_OFFSET_MASK
        if not off:
            continue
        value = int.from_bytes(read_exact(img.store, off, img.geo.cluster_size), "little")
        while value:
            low = value & -value
            out.add(base + low.bit_length() - 1)
            value ^= low
    return out


def _encode_directory(entries: list[DirEntry]) -> bytes:
    out = bytearray()
    for e in entries:
        name = e.name.encode()
        chunk = DIR_ENTRY.pack(e.table_offset, e.table_size, e.flags, BT_DIRTY_TRACKING_BITMAP,
                               e.granularity_bits, len(name), len(e.extra)) + e.extra + name
        out += chunk + bytes(dir_entry_size(len(name), len(e.extra)) - len(chunk))
    return bytes(out)


def _set_ext(img: Qcow2Image, nb: int, offset: int, size: int) -> None:
    img.nb_bitmaps = nb
    img.bitmap_directory_offset = offset
    img.bitmap_directory_size = size


def _update_dir(img: Qcow2Image, entries: list[DirEntry]) -> None:
    """update_ext_header_and_dir: a new directory, the header, the old one freed."""
    old_offset, old_size = img.bitmap_directory_offset, img.bitmap_directory_size
    if entries:
        data = _encode_directory(entries)
        offset = img.allocator.alloc(len(data))
        img.store.write(offset, data)
        img.flush()
        img.autoclear_features |= AUTOCLEAR_BITMAPS
        _set_ext(img, len(entries), offset, len(data))
    else:
        img.autoclear_features &= ~AUTOCLEAR_BITMAPS
        _set_ext(img, 0, 0, 0)
    img.update_header()
    if old_size > 0:
        img.allocator.free(old_offset, old_size, _DISCARD_OTHER)


def _update_dir_in_place(img: Qcow2Image, entries: list[DirEntry]) -> None:
    """update_ext_header_and_dir_in_place (only the flags changed)."""
    img.autoclear_features &= ~AUTOCLEAR_BITMAPS
    img.update_header()
    img.store.write(img.bitmap_directory_offset, _encode_directory(entries))
    img.flush()
    img.autoclear_features |= AUTOCLEAR_BITMAPS
    img.update_header()


def _free_bitmap_clusters(img: Qcow2Image, offset: int, size: int) -> None:
    """free_bitmap_clusters: the data clusters (discarded), then the table."""
    if not size:
        return
    e = DirEntry("", 0, 0, offset, size)
    for entry in _table(img, e):
        addr = entry & BME_TABLE_ENTRY_OFFSET_MASK
        if addr:
            img.allocator.free(addr, img.geo.cluster_size, _DISCARD_ALWAYS)
    img.allocator.free(offset, size * 8, _DISCARD_OTHER)


def load(img: Qcow2Image, writable: bool) -> list[StoredBitmap]:
    """qcow2_load_dirty_bitmaps: the bitmaps in directory order.

    Read-write, the ones not yet in use are marked in use on disk; one that
    already was is inconsistent (its owner did not close it).  Read-only, all
    are read-only."""
    entries = load_directory(img)
    out = []
    needs_update = False
    for e in entries:
        bm = StoredBitmap(e.name, 1 << e.granularity_bits, img.virtual_size)
        bm.bits = read_bits(img, e)
        if e.flags & BME_FLAG_IN_USE:
            bm.inconsistent = True
        else:
            e.flags |= BME_FLAG_IN_USE
            needs_update = True
        bm.enabled = bool(e.flags & BME_FLAG_AUTO)
        out.append(bm)
    if needs_update and writable:
        _update_dir_in_place(img, entries)
    if not writable:
        for bm in out:
            bm.readonly = True
    return out


def _table_size(img: Qcow2Image, bm: StoredBitmap) -> int:
    nbits = -(-bm.size // bm.granularity)
    nbytes = -(-nbits // 64) * 8
    return -(-nbytes // img.geo.cluster_size)


def _store_data(img: Qcow2Image, bm: StoredBitmap) -> tuple[int, int]:
    """store_bitmap: data clusters in ascending order, then the table."""
    cs = img.geo.cluster_size
    per_cluster = cs * 8
    tb_size = _table_size(img, bm)
    table = [0] * tb_size
    clusters: dict[int, int] = {}
    for b in bm.bits:
        c = b // per_cluster
        clusters[c] = clusters.get(c, 0) | (1 << (b - c * per_cluster))
    for c in sorted(clusters):
        if c >= tb_size:
            continue
        off = img.allocator.alloc(cs)
        table[c] = off
        img.store.write(off, clusters[c].to_bytes(cs, "little"))
    tb_offset = img.allocator.alloc(tb_size * 8)
    img.store.write(tb_offset, struct.pack(f">{tb_size}Q", *table))
    return tb_offset, tb_size


def store(img: Qcow2Image, bitmaps: list[StoredBitmap]) -> None:
    """qcow2_store_persistent_dirty_bitmaps, ``bitmaps`` in the node's order
    (newest first).  Does nothing on a read-only image."""
    if img.read_only:
        return
    entries = load_directory(img)
    by_name = {e.name: e for e in entries}
    drop: list[tuple[int, int]] = []
    live: dict[str, StoredBitmap] = {}
    for bm in bitmaps:
        if not bm.persistent or bm.inconsistent or bm.readonly:
            continue
        e = by_name.get(bm.name)
        if e is None:
            e = DirEntry(bm.name, 0, 0, 0, 0)
            entries.append(e)
            by_name[bm.name] = e
        else:
            drop.append((e.table_offset, e.table_size))
            e.table_offset = e.table_size = 0
        e.flags = BME_FLAG_AUTO if bm.enabled else 0
        e.granularity_bits = bm.granularity.bit_length() - 1
        live[bm.name] = bm
    if not live:
        return          # need_write: nothing writable to store
    for e in entries:
        bm = live.get(e.name)
        if bm is None:
            continue
        e.table_offset, e.table_size = _store_data(img, bm)
    _update_dir(img, entries)
    for offset, size in drop:
        _free_bitmap_clusters(img, offset, size)
    img.flush()


def remove_stored(img: Qcow2Image, name: str) -> None:
    """qcow2_co_remove_persistent_dirty_bitmap: gone from the image at once."""
    entries = load_directory(img)
    for e in entries:
        if e.name == name:
            entries.remove(e)
            _update_dir(img, entries)
            _free_bitmap_clusters(img, e.table_offset, e.table_size)
            img.flush()
            return


def info_list(img: Qcow2Image) -> list[dict] | None:
    """qcow2_get_bitmap_info_list: format-specific ``bitmaps`` (None: none)."""
    entries = load_directory(img)
    if not entries:
        return None
    out = []
    for e in entries:
        flags = []
        if e.flags & BME_FLAG_IN_USE:
            flags.append("in-use")
        if e.flags & BME_FLAG_AUTO:
            flags.append("auto")
        out.append({"name": e.name, "granularity": 1 << e.granularity_bits, "flags": flags})
    return out
