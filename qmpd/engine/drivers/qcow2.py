"""The qcow2 block driver: header, options and image information.

The on-disk format itself (header parsing, clusters) lives in
:mod:`qmpd.qcow2`; this module is the driver glue: it reads the
header through the node's ``file`` child, applies QEMU 7.2's option checks
(cache sizes, lazy refcounts, encryption, data-file) in QEMU's order, and
reports what ``query-named-block-nodes`` shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qmpd.engine import bitmaps as bmod
from qmpd.engine import perms
from qmpd.engine.drivers.base import Commit, Driver, number_opt, size_opt
from qmpd.engine.errors import BlockError
from qmpd.engine.node import Node
from qmpd.qcow2 import (
    CLUSTER_COMPRESSED,
    CLUSTER_NORMAL,
    CLUSTER_UNALLOCATED,
    CLUSTER_ZERO_ALLOC,
    CLUSTER_ZERO_PLAIN,
    Qcow2FormatError,
    Qcow2Image,
    is_qcow2,
    parse_qcow2_header,
)
from qmpd.qcow2 import bitmaps as qb
from qmpd.qcow2.empty import make_empty

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph, Transaction

DEFAULT_L2_CACHE_MAX_SIZE = 32 * 1024 * 1024
MIN_REFCOUNT_CACHE_SIZE = 4
MIN_CLUSTER_BITS = 9

RUNTIME_PREFIXES = (
    "lazy-refcounts", "pass-discard-request", "pass-discard-snapshot", "pass-discard-other",
    "overlap-check", "cache-size", "l2-cache-size", "l2-cache-entry-size",
    "refcount-cache-size", "cache-clean-interval", "encrypt",
)


class Qcow2State:
    __slots__ = ("header", "lazy_refcounts", "options", "image", "data_child_stale")

    def __init__(self, header: Any, lazy_refcounts: bool) -> None:
        self.header = header
        self.lazy_refcounts = lazy_refcounts
        self.image: Any = None
        # s->data_file no longer the node's file child (see reopen_prepare_failed).
        self.data_child_stale = False


class _ChildStore:
    """The qcow2 file as a ByteStore: the node's current ``file`` child."""

    def __init__(self, g: BlockGraph, node: Node) -> None:
        self.g = g
        self.node = node

    def _child(self) -> Node:
        e = self.node.file
        assert e is not None
        return e.child

    def read(self, offset: int, length: int) -> bytes:
        c = self._child()
        size = c.driver.virtual_size(self.g, c)
        if offset >= size:
            return b""
        return self.g.read(c, offset, min(length, size - offset))

    def write(self, offset: int, data: bytes) -> None:
        self.g.write(self._child(), offset, data)

    def size(self) -> int:
        c = self._child()
        return c.driver.virtual_size(self.g, c)

    def truncate(self, n: int) -> None:
        c = self._child()
        lay = getattr(c.state, "layer", None)
        if lay is not None:
            lay.truncate(n)

    def punch(self, offset: int, length: int) -> None:
        self.g.discard(self._child(), offset, length)

    def is_hole(self, offset: int, length: int) -> bool:
        return False


class _BackingReader:
    """Guest data of the node's current backing child (None: zeroes)."""

    def __init__(self, g: BlockGraph, node: Node) -> None:
        self.g = g
        self.node = node

    def _child(self) -> Node | None:
        e = self.node.backing
        return e.child if e is not None else None

    def length(self) -> int:
        c = self._child()
        return self.g.virtual_size(c) if c is not None else 0

    def read(self, offset: int, length: int) -> bytes:
        c = self._child()
        if c is None:
            return bytes(length)
        size = self.g.virtual_size(c)
        if offset >= size:
            return bytes(length)
        n = min(length, size - offset)
        return self.g.read(c, offset, n) + bytes(length - n)

    def is_zero(self, offset: int, length: int) -> bool:
        c = self._child()
        if c is None:
            return True
        return all(z for _, _, _, z in self.g.block_status(c, offset, length))


def _is_runtime_key(key: str) -> bool:
    for p in RUNTIME_PREFIXES:
        if key == p or key.startswith(p + "."):
            return True
    return False


class Qcow2Driver(Driver):
    name = "qcow2"
    supports_backing = True
    has_get_info = True
    mutable = ("lazy-refcounts", "pass-discard-request", "pass-discard-snapshot",
               "pass-discard-other", "overlap-check", "cache-size", "l2-cache-size",
               "l2-cache-entry-size", "refcount-cache-size", "cache-clean-interval")
    strong = ("encrypt.key-secret",)

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        child = g.attach_file_child(node, perms.ROLE_IMAGE, tx)
        first = g.read(child, 0, 65536)
        if not is_qcow2(first):
            raise BlockError.of("qcow2.image-not-qcow2-format")
        try:
            header = parse_qcow2_header(first)
            if header.cluster_size > len(first):
                header = parse_qcow2_header(g.read(child, 0, header.cluster_size))
        except Qcow2FormatError as e:
            raise BlockError(e.desc if hasattr(e, "desc") else str(e)) from None
        if getattr(header, "external_data_file", None) is None and \
                ("data-file" in opts or any(k.startswith("data-file.") for k in opts)):
            g.open_child_bs(None, opts, "data-file", node, perms.ROLE_DATA, tx)
            raise BlockError.of("qcow2.data-file-set-images-external")
        node.state = Qcow2State(header, bool(header.lazy_refcounts))
        node.auto_backing_file = header.backing_file or ""
        commit = self._update_options(g, node, header, opts)
        commit()
        if header.nb_bitmaps:
            self._load_bitmaps(g, node)

    # -- persistent dirty bitmaps (qcow2-bitmap.c) ----------------------------
    def _load_bitmaps(self, g: BlockGraph, node: Node) -> None:
        """qcow2_load_dirty_bitmaps at open: each stored bitmap becomes one of
        the node's (newest first, so the reverse of the directory)."""
        im = self._image(g, node)
        try:
            stored = qb.load(im, not node.read_only)
        except OSError:
            return
        size = g.virtual_size(node)
        for sb in stored:
            bm = bmod.DirtyBitmap(node, sb.name, sb.granularity, size)
            bm.bits = sb.bits
            bm.disabled = not sb.enabled
            bm.persistent = True
            bm.readonly = sb.readonly
            bm.inconsistent = sb.inconsistent
            node.dirty_bitmaps.insert(0, bm)

    def _store_bitmaps(self, g: BlockGraph, node: Node) -> None:
        """qcow2_store_persistent_dirty_bitmaps: every writable persistent
        bitmap is written anew (at close, and before a reopen read-only)."""
        if node.read_only or not any(b.persistent for b in node.dirty_bitmaps):
            return
        im = self._image(g, node)
        stored = [qb.StoredBitmap(b.name, b.granularity, b.size, set(b.bits),
                                  enabled=not b.disabled, persistent=b.persistent,
                                  readonly=b.readonly, inconsistent=b.inconsistent)
                  for b in node.dirty_bitmaps if b.name]
        try:
            qb.store(im, stored)
        except OSError:
            pass

    def close(self, g: BlockGraph, node: Node) -> None:
        """qcow2_close -> qcow2_inactivate: persistent bitmaps go to the image."""
        if isinstance(node.state, Qcow2State) and node.file is not None:
            self._store_bitmaps(g, node)

    def remove_persistent_bitmap(self, g: BlockGraph, node: Node, name: str) -> None:
        """qcow2_co_remove_persistent_dirty_bitmap: gone from the image at once."""
        im = self._image(g, node)
        if im.nb_bitmaps:
            qb.remove_stored(im, name)

    def _reopen_bitmaps(self, g: BlockGraph, node: Node, read_only: bool) -> Commit | None:
        """qcow2_reopen_bitmaps_ro (store, then read-only) and _rw (marked in
        use again, writable)."""
        persistent = [b for b in node.dirty_bitmaps if b.persistent]
        if read_only and not node.read_only:
            self._store_bitmaps(g, node)

            def to_ro() -> None:
                for b in persistent:
                    b.readonly = True
            return to_ro
        if node.read_only and not read_only and persistent:
            def to_rw() -> None:
                im = self._image(g, node)
                entries = qb.load_directory(im)
                by_name = {b.name: b for b in persistent}
                if any(not e.flags & qb.BME_FLAG_IN_USE for e in entries if e.name in by_name):
                    for e in entries:
                        if e.name in by_name:
                            e.flags |= qb.BME_FLAG_IN_USE
                    qb._update_dir_in_place(im, entries)
                for b in persistent:
                    b.readonly = False
            return to_rw
        return None

    def _update_options(self, g: BlockGraph, node: Node, header: Any, opts: dict) -> Commit:
        cluster_size = header.cluster_size
        combined_set = "cache-size" in opts
        l2_set = "l2-cache-size" in opts
        rc_set = "refcount-cache-size" in opts
        entry_set = "l2-cache-entry-size" in opts
        combined = size_opt("cache-size", opts["cache-size"]) if combined_set else 0
        l2_max_setting = size_opt("l2-cache-size", opts["l2-cache-size"]) if l2_set \
            else DEFAULT_L2_CACHE_MAX_SIZE
        rc = size_opt("refcount-cache-size", opts["refcount-cache-size"]) if rc_set else 0
        entry = size_opt("l2-cache-entry-size", opts["l2-cache-entry-size"]) if entry_set \
            else cluster_size
        interval = number_opt(opts["cache-clean-interval"]) \
            if "cache-clean-interval" in opts else 600

        min_rc = MIN_REFCOUNT_CACHE_SIZE * cluster_size
        l2_entry_bytes = 16 if header.extended_l2 else 8
        max_l2_entries = -(-header.virtual_size // cluster_size)
        max_l2_cache = -(-(max_l2_entries * l2_entry_bytes) // cluster_size) * cluster_size
        l2 = min(max_l2_cache, l2_max_setting)
        if combined_set:
            if l2_set and rc_set:
                raise BlockError.of("qcow2.cache-size-l2-cache-size")
            if l2_set and l2_max_setting > combined:
                raise BlockError.of("qcow2.l2-cache-size-may-not")
            if rc > combined:
                raise BlockError.of("qcow2.refcount-cache-size-may-not")
            if l2_set:
                rc = combined - l2
            elif rc_set:
                l2 = combined - rc
            elif combined >= max_l2_cache + min_rc:
                l2 = max_l2_cache
                rc = combined - l2
            else:
                rc = min(combined, min_rc)
                l2 = combined - rc
        if l2 < max_l2_cache and not entry_set:
            entry = min(cluster_size, 4096)
        if entry < (1 << MIN_CLUSTER_BITS) or entry > cluster_size or entry & (entry - 1):
            raise BlockError.of("qcow2.l2-cache-entry-size-must", min=1 << MIN_CLUSTER_BITS,
                                cluster_size=cluster_size)
        if l2 // entry > 0x7FFFFFFF:
            raise BlockError.of("qcow2.l2-cache-size-too-big")
        if rc // cluster_size > 0x7FFFFFFF:
            raise BlockError.of("qcow2.refcount-cache-size-too-big")
        if interval > 0xFFFFFFFF:
            raise BlockError.of("qcow2.cache-clean-interval-too-big")
        lazy = opts.get("lazy-refcounts", bool(header.lazy_refcounts))
        if lazy and header.version < 3:
            raise BlockError.of("qcow2.lazy-refcounts-require-qcow2-image")
        overlap = opts.get("overlap-check")
        template = opts.get("overlap-check.template")
        if isinstance(overlap, str) and template is not None and overlap != template:
            raise BlockError.of("qcow2.conflicting-values-qcow2-options-overlap", overlap=overlap,
                                template=template)
        fmt = opts.get("encrypt.format")
        if not header.crypt_method and fmt is not None:
            raise BlockError.of("qcow2.no-encryption-image-header-options", fmt=fmt)
        if header.crypt_method:
            hdr_fmt = "aes" if header.crypt_method == 1 else "luks"
            if fmt is not None and fmt != hdr_fmt:
                raise BlockError.of("qcow2.header-reported-encryption-format-options",
                                    hdr_fmt=hdr_fmt, fmt=fmt)

        def commit() -> None:
            node.state.lazy_refcounts = bool(lazy)
        return commit

    def reopen_prepare(self, g: BlockGraph, node: Node, opts: dict, queue: dict) -> Commit | None:
        commit = self._update_options(g, node, node.state.header, opts)
        for k in [k for k in opts if _is_runtime_key(k)]:
            del opts[k]
        st = queue.get(id(node))
        bitmaps = self._reopen_bitmaps(g, node, st.read_only) if st is not None else None
        if bitmaps is None:
            return commit

        def both() -> None:
            commit()
            bitmaps()
        return both

    def reopen_prepare_failed(self, g: BlockGraph, node: Node, file_moved: bool) -> None:
        # qcow2_reopen_prepare clears s->data_file (it aliases bs->file) and
        # qcow2_reopen_abort sets it back to bs->file -- which, when a later
        # check of the same node fails after its file child was swapped, is
        # the new child.  The transaction then restores the old one, and from
        # then on has_data_file() is true: QEMU lists "data-file-raw" for the
        # node for as long as it stays open.
        if file_moved and not getattr(node.state.header, "external_data_file", None):
            node.state.data_child_stale = True

    # -- information -------------------------------------------------------
    def virtual_size(self, g: BlockGraph, node: Node) -> int:
        return node.state.header.virtual_size

    def actual_size(self, g: BlockGraph, node: Node) -> int | None:
        """bdrv_sum_allocated_file_size: a child that cannot tell (blkdebug,
        a protocol without the callback) leaves the sum unknown."""
        total = 0
        for e in node.children:
            if e.name in ("file", "data-file"):
                s = g.actual_size(e.child)
                if s is None:
                    return None
                total += s
        return total

    def get_info(self, g: BlockGraph, node: Node) -> tuple[int, bool] | None:
        h = node.state.header
        return (h.cluster_size, bool(h.dirty))

    def zeroes_may_unmap(self, g: BlockGraph, node: Node) -> bool:
        return bool(node.state.header.version >= 3)    # qcow2_do_open

    def format_specific(self, g: BlockGraph, node: Node) -> dict | None:
        h = node.state.header
        if h.version == 2:
            data: dict[str, Any] = {"compat": "0.10", "refcount-bits": h.refcount_bits,
                                    "compression-type": "zlib"}
        else:
            data = {"compat": "1.1"}
            if getattr(h, "external_data_file", None):
                data["data-file"] = h.external_data_file
                data["data-file-raw"] = bool(h.data_file_raw)
            elif node.state.data_child_stale:
                data["data-file-raw"] = bool(h.data_file_raw)
            data["extended-l2"] = bool(h.extended_l2)
            data["lazy-refcounts"] = bool(h.lazy_refcounts)
            data["corrupt"] = bool(h.corrupt)
            data["refcount-bits"] = h.refcount_bits
            if h.nb_bitmaps or node.state.image is not None:
                        # qcow2_get_bitmap_info_list reads the directory on disk
                listed = qb.info_list(self._image(g, node))
                if listed is not None:
                    data["bitmaps"] = listed
            data["compression-type"] = h.compression_type
        return {"type": "qcow2", "data": data}

    # -- data path ----------------------------------------------------------
    def _image(self, g: BlockGraph, node: Node) -> Any:
        st = node.state
        if st.image is None:
            st.image = Qcow2Image(_ChildStore(g, node), backing=_BackingReader(g, node),
                                  unmap=self._passthrough(node))
        st.image.backing = _BackingReader(g, node)
        return st.image

    @staticmethod
    def _passthrough(node: Node) -> bool:
        v = node.options.get("pass-discard-request")
        return bool(v) if v is not None else node.discard == "unmap"

    def _io(self, g: BlockGraph, node: Node, fn: Any) -> Any:
        try:
            return fn(self._image(g, node))
        except Qcow2FormatError as e:
            raise OSError(5, e.desc if hasattr(e, "desc") else str(e)) from None

    @staticmethod
    def _debug_events(node: Node, im: Any, offset: int, length: int) -> None:
        """BLKDBG_EVENT(bs->file, READ_AIO / READ_COMPRESSED) for the data
        clusters a read touches, so that blkdebug rules on the file child
        fire as in QEMU."""
        e = node.file
        if e is None or e.child.driver.name != "blkdebug":
            return
        dbg = e.child
        for ext in im.map_extents(offset, length):
            if ext.kind == CLUSTER_NORMAL:
                dbg.driver.debug_event(dbg, "read_aio")
            elif ext.kind == CLUSTER_COMPRESSED:
                dbg.driver.debug_event(dbg, "read_compressed")

    def read(self, g: BlockGraph, node: Node, offset: int, length: int) -> bytes:
        def r(im: Any) -> bytes:
            self._debug_events(node, im, offset, length)
            return im.read(offset, length)
        return self._io(g, node, r)

    def write(self, g: BlockGraph, node: Node, offset: int, data: bytes) -> None:
        def w(im: Any) -> None:
            e = node.file
            if e is not None:
                # WRITE_AIO once the clusters are allocated, before the data
                dbg = e.child
                im.before_data_write = lambda: dbg.driver.debug_event(dbg, "write_aio")
            try:
                im.write(offset, data)
            finally:
                im.before_data_write = None
            im.flush()
        self._io(g, node, w)

    def write_zeroes(self, g: BlockGraph, node: Node, offset: int, length: int,
                     unmap: bool) -> None:
        def w(im: Any) -> None:
            im.write_zeroes(offset, length, unmap=unmap)
            im.flush()
        self._io(g, node, w)

    def write_compressed(self, g: BlockGraph, node: Node, offset: int, data: bytes) -> None:
        def w(im: Any) -> None:
            im.write_compressed(offset, data)
            im.flush()
        self._io(g, node, w)

    def make_empty(self, g: BlockGraph, node: Node) -> None:
        """qcow2_make_empty (qmpd.qcow2.empty): the layer reads through to
        its backing file again."""
        if self._io(g, node, make_empty):
            # Rebuilt from scratch: the cached tables and header are stale.
            st = node.state
            st.image = None
            h = st.header
            cs = 1 << h.cluster_bits
            h.l1_table_offset, h.refcount_table_offset = 3 * cs, cs
            h.refcount_table_clusters = 1

    def discard(self, g: BlockGraph, node: Node, offset: int, length: int) -> None:
        def w(im: Any) -> None:
            im.discard(offset, length)
            im.flush()
        self._io(g, node, w)

    def block_status(self, g: BlockGraph, node: Node, offset: int,
                     length: int) -> list[tuple[int, int, bool, bool]]:
        im = self._image(g, node)
        out: list[tuple[int, int, bool, bool]] = []
        end = min(offset + length, im.virtual_size)
        if offset < end:
            for ext in im.map_extents(offset, end - offset):
                alloc = ext.kind != CLUSTER_UNALLOCATED
                # Zero clusters are allocated here and read as zeroes
                # (BDRV_BLOCK_ZERO): a mirror or backup writes zeroes for them.
                if ext.kind in (CLUSTER_ZERO_PLAIN, CLUSTER_ZERO_ALLOC):
                    zero = True
                elif alloc:
                    zero = False
                else:
                    zero = _BackingReader(g, node).is_zero(ext.offset, ext.length)
                last = out[-1] if out else None
                if last is not None and last[2] == alloc and last[3] == zero:
                    out[-1] = (last[0], last[1] + ext.length, alloc, zero)
                else:
                    out.append((ext.offset, ext.length, alloc, zero))
        return out or [(offset, length, False, True)]

    def allocation(self, g: BlockGraph, node: Node) -> list[tuple[int, int, bool]]:
        return self._image(g, node).is_allocated_extents()
