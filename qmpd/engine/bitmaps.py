"""Dirty bitmaps and write thresholds of block nodes (QEMU 7.2 block/dirty-bitmap.c,
block/monitor/bitmap-qmp-cmds.c, block/write-threshold.c).

A node's bitmaps live in ``node.dirty_bitmaps``, newest first (QEMU inserts at
the head of ``bs->dirty_bitmaps``, and query-named-block-nodes lists them in
that order).  A bitmap is a set of chunk numbers at its granularity; its
``count`` is the number of set chunks times the granularity, as hbitmap_count
reports it (not clipped to the image size).

:func:`note_write` is what the data path calls for every write, write-zeroes
and discard that reaches a node (BlockGraph.write/write_zeroes/discard): it
checks the write threshold first (bdrv_co_write_req_prepare) and marks the
enabled bitmaps (bdrv_co_write_req_finish).  Persistent bitmaps are kept in
memory only: QEMU 7.2 too writes them to the image only when the node is
closed or inactivated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qmpd.cstrings import cstring
from qmpd.engine.errors import BlockError
from qmpd.profiles import Message

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph, Transaction
    from qmpd.engine.node import Node

MAX_NAME = 1023                 # BDRV_BITMAP_MAX_NAME_SIZE
QCOW2_MAX_GRANULARITY = 1 << 31
QCOW2_MAX_BITMAPS = 65535
QCOW2_MAX_DIR = 1024 * QCOW2_MAX_BITMAPS
BME_MAX_PHYS_SIZE = 0x20000000
BME_MAX_TABLE_SIZE = 0x8000000


class DirtyBitmap:
    """One BdrvDirtyBitmap."""

    def __init__(self, node: Node, name: str, granularity: int, size: int = 0) -> None:
        self.node = node
        self.name = name
        # hbitmap orig_size: the node's length when the bitmap was made, then
        # the length of every resize (bdrv_dirty_bitmap_truncate).
        self.size = size
        self.granularity = granularity
        self.shift = granularity.bit_length() - 1
        self.bits: set[int] = set()
        self.disabled = False
        self.persistent = False
        self.busy = False            # in use by a job (successor or user)
        self.readonly = False
        self.inconsistent = False
        # A job's successor (bdrv_dirty_bitmap_create_successor): while it
        # exists the bitmap is frozen and new writes go to the successor.
        self.successor: DirtyBitmap | None = None

    @property
    def recording(self) -> bool:
        s = self.successor
        return not self.disabled or (s is not None and not s.disabled)

    def count(self) -> int:
        return len(self.bits) << self.shift

    def set_range(self, offset: int, length: int) -> None:
        if length <= 0:
            return
        first = offset >> self.shift
        last = (offset + length - 1) >> self.shift
        self.bits.update(range(first, last + 1))

    def is_dirty_range(self, offset: int, length: int) -> bool:
        first = offset >> self.shift
        last = (offset + length - 1) >> self.shift
        return any(i in self.bits for i in range(first, last + 1))

    def next_dirty(self, chunk: int) -> int | None:
        """bdrv_dirty_iter_next: the first dirty chunk at or after ``chunk``."""
        return min((i for i in self.bits if i >= chunk), default=None)

    def byte_ranges(self) -> list[tuple[int, int]]:
        """The dirty areas as (offset, length) in bytes, merged, ascending."""
        out: list[tuple[int, int]] = []
        for i in sorted(self.bits):
            off = i << self.shift
            if out and out[-1][0] + out[-1][1] == off:
                out[-1] = (out[-1][0], out[-1][1] + self.granularity)
            else:
                out.append((off, self.granularity))
        return out

    def merge_from(self, src: DirtyBitmap) -> None:
        """hbitmap_merge: every dirty area of ``src`` at this granularity."""
        if src.shift == self.shift:
            self.bits |= src.bits
            return
        for off, n in src.byte_ranges():
            self.set_range(off, n)

    def truncate(self, size: int) -> None:
        """hbitmap_truncate: chunks past the new end are dropped."""
        limit = (size + self.granularity - 1) >> self.shift
        self.bits = {b for b in self.bits if b < limit}
        self.size = size

    def serialize(self) -> bytes:
        """The last level of the HBitmap: one bit per chunk in 64-bit
        little-endian words, at least one word (hbitmap_alloc's sizes[])."""
        nbits = (self.size + self.granularity - 1) >> self.shift
        words = max((nbits + 63) >> 6, 1)
        value = 0
        for b in self.bits:
            value |= 1 << b
        return value.to_bytes(words * 8, "little")

    def sha256(self) -> str:
        """hbitmap_sha256 over :meth:`serialize`."""
        return hashlib.sha256(self.serialize()).hexdigest()

    def status(self) -> str:
        """bdrv_dirty_bitmap_status: the DirtyBitmapStatus that ``status``
        reported before 6.0 (deprecated since 4.0 for recording and busy)."""
        if self.inconsistent:
            return "inconsistent"
        if self.successor is not None:
            return "frozen"
        if self.busy:
            return "locked"
        return "disabled" if self.disabled else "active"

    def info(self, with_status: bool = False) -> dict[str, Any]:
        """BlockDirtyInfo, in QAPI member order (``with_status``: the
        release still has the deprecated ``status`` member)."""
        d: dict[str, Any] = {}
        if self.name:
            # Anonymous bitmaps (a job's internal ones) have no name member.
            d["name"] = self.name
        d.update({"count": self.count(), "granularity": self.granularity,
                  "recording": self.recording, "busy": self.busy})
        if with_status:
            d["status"] = self.status()
        d["persistent"] = self.persistent
        if self.inconsistent:
            d["inconsistent"] = True
        return d


def bitmaps_of(node: Node) -> list[DirtyBitmap]:
    return node.dirty_bitmaps


def find(node: Node, name: str) -> DirtyBitmap | None:
    for bm in node.dirty_bitmaps:
        if bm.name == name:
            return bm
    return None


def lookup_node(g: BlockGraph, name: str) -> Node:
    """block_dirty_bitmap_lookup's node part (bdrv_lookup_bs: a -drive name too)."""
    blk = g.named_backend(name)
    if blk is not None and blk.children:
        return blk.children[0].child
    node = g.nodes.get(name)
    if node is None:
        raise BlockError.of("node.not-found", name=name)
    return node


def lookup(g: BlockGraph, node_name: str, name: str) -> tuple[Node, DirtyBitmap]:
    node = lookup_node(g, node_name)
    bm = find(node, name)
    if bm is None:
        raise BlockError.of("bitmap.dirty-bitmap-not-found", name=name)
    return node, bm


BUSY, RO, INCONSISTENT = 1, 2, 4
DEFAULT = BUSY | RO | INCONSISTENT
ALLOW_RO = BUSY | INCONSISTENT


def check(bm: DirtyBitmap, flags: int) -> None:
    """bdrv_dirty_bitmap_check."""
    if flags & BUSY and bm.busy:
        raise BlockError.of("bitmap.bitmap-currently-use-another-operation", bitmap=bm.name)
    if flags & RO and bm.readonly:
        raise BlockError.of("bitmap.bitmap-readonly-cannot-modified", bitmap=bm.name)
    if flags & INCONSISTENT and bm.inconsistent:
        raise BlockError.of("bitmap.bitmap-inconsistent-cannot-used", bitmap=bm.name)


def default_granularity(g: BlockGraph, node: Node) -> int:
    """bdrv_get_default_bitmap_granularity: the cluster size within [4k, 64k]."""
    gi = g.get_info(node)
    if gi is not None and gi[0] > 0:
        return min(65536, max(4096, gi[0]))
    return 65536


def _qcow2_node(node: Node) -> bool:
    return node.driver.name == "qcow2"


def can_store(g: BlockGraph, node: Node, name: str, granularity: int) -> None:
    """bdrv_can_store_new_dirty_bitmap (only qcow2 can)."""
    if not _qcow2_node(node):
        raise BlockError.of("bitmap.store-persistent-bitmaps-operation-not", node=node.name)
    if find(node, name) is not None:
        # checked before the prefixed checks (qcow2_co_can_store_new_dirty_bitmap)
        raise BlockError.of("bitmap.bitmap-already-exists", name=name)
    try:
        _qcow2_can_store(g, node, name, granularity)
    except BlockError as e:
        prefix = Message("bitmap.persistent-failed-prefix", name=name, node=node.name)
        raise e.prefixed(prefix) from None


def _qcow2_can_store(g: BlockGraph, node: Node, name: str, granularity: int) -> None:
    if find(node, name) is not None:
        raise BlockError.of("bitmap.bitmap-already-exists", name=name)
    header = node.state.header
    if getattr(header, "version", 3) < 3:
        raise BlockError.of("bitmap.cannot-store-dirty-bitmaps-qcow2")
    bits = granularity.bit_length() - 1
    if bits > 31:
        raise BlockError.of("bitmap.granularity-exceeds-maximum-bytes", max=QCOW2_MAX_GRANULARITY)
    if bits < 9:
        raise BlockError.of("bitmap.granularity-under-minimum-512-bytes")
    size = g.virtual_size(node)
    nbits = -(-size // granularity)
    nbytes = -(-nbits // 8)
    cluster = header.cluster_size
    if nbytes > BME_MAX_PHYS_SIZE or nbytes > BME_MAX_TABLE_SIZE * cluster:
        raise BlockError.of("bitmap.too-much-space-will-occupied")
    if len(cstring(name)) > MAX_NAME:
        raise BlockError.of("bitmap.name-length-exceeds-maximum-characters", max=MAX_NAME)
    persistent = [b for b in node.dirty_bitmaps if b.persistent]
    if len(persistent) + 1 > QCOW2_MAX_BITMAPS:
        raise BlockError.of("bitmap.maximum-number-persistent-bitmaps-already")

    def entry(n: int) -> int:
        return (24 + n + 7) & ~7
    if sum(entry(len(cstring(b.name))) for b in persistent) + entry(len(cstring(name))) \
            > QCOW2_MAX_DIR:
        raise BlockError.of("bitmap.not-enough-space-bitmap-directory")


def add(g: BlockGraph, node_name: str, name: str, granularity: int | None = None,
        persistent: bool = False, disabled: bool = False,
        tx: Transaction | None = None) -> DirtyBitmap:
    """qmp_block_dirty_bitmap_add."""
    if not name:
        raise BlockError.of("bitmap.bitmap-name-cannot-empty")
    blk = g.named_backend(node_name)       # bdrv_lookup_bs: a -drive name too
    node = blk.children[0].child if blk is not None and blk.children else \
        g.nodes.get(node_name)
    if node is None:
        raise BlockError.of("node.cannot-find-device-nor-node", reference=node_name)
    if granularity is not None:
        if granularity < 512 or granularity & (granularity - 1):
            raise BlockError.of("bitmap.granularity-must-power-2-least")
    else:
        granularity = default_granularity(g, node)
    if persistent:
        can_store(g, node, name, granularity)
    if find(node, name) is not None:
        raise BlockError.of("bitmap.bitmap-already-exists", name=name)
    if len(cstring(name)) > MAX_NAME:
        raise BlockError.of("bitmap.bitmap-name-too-long", name=name)
    bm = DirtyBitmap(node, name, granularity, g.virtual_size(node))
    bm.disabled = disabled
    bm.persistent = persistent
    node.dirty_bitmaps.insert(0, bm)
    if tx is not None:
        tx.on_abort(lambda: _release(bm))
    return bm


def _release(bm: DirtyBitmap) -> None:
    if bm in bm.node.dirty_bitmaps:
        bm.node.dirty_bitmaps.remove(bm)


def remove(g: BlockGraph, node_name: str, name: str, tx: Transaction | None = None) -> None:
    """qmp_block_dirty_bitmap_remove (in a transaction: released at commit)."""
    node, bm = lookup(g, node_name, name)
    check(bm, BUSY | RO)
    if bm.persistent:
        # bdrv_remove_persistent_dirty_bitmap: the image forgets it at once.
        drop = getattr(node.driver, "remove_persistent_bitmap", None)
        if drop is not None:
            try:
                drop(g, node, name)
            except OSError as e:
                raise BlockError(e.strerror or "Input/output error") from None
    if tx is None:
        _release(bm)
        return
    # QEMU hides the bitmap (busy) at prepare and releases it at commit.
    old_busy = bm.busy
    bm.busy = True
    tx.on_abort(lambda: setattr(bm, "busy", old_busy))
    tx.on_commit(lambda: _release(bm))


def clear(g: BlockGraph, node_name: str, name: str, tx: Transaction | None = None) -> None:
    node, bm = lookup(g, node_name, name)
    check(bm, DEFAULT)
    old = bm.bits
    bm.bits = set()
    if tx is not None:
        tx.on_abort(lambda: setattr(bm, "bits", old))


def set_enabled(g: BlockGraph, node_name: str, name: str, enabled: bool,
                tx: Transaction | None = None) -> None:
    node, bm = lookup(g, node_name, name)
    check(bm, ALLOW_RO)
    old = bm.disabled
    bm.disabled = not enabled
    if tx is not None:
        tx.on_abort(lambda: setattr(bm, "disabled", old))


def merge(g: BlockGraph, node_name: str, target: str, sources: list,
          tx: Transaction | None = None) -> DirtyBitmap:
    """block_dirty_bitmap_merge: ``sources`` are names on the node or {node, name}.

    As QEMU, the sources are merged first into an anonymous bitmap of the
    target's node (its granularity, the node's length), each checked on the
    way (busy, inconsistent, size); only then is the target checked and the
    result merged into it, so a failure leaves the target unchanged.  An empty
    list leaves the target alone (QEMU 7.2 crashes there).
    """
    node, dst = lookup(g, node_name, target)
    anon = DirtyBitmap(node, "", dst.granularity, g.virtual_size(node))
    for s in sources:
        if isinstance(s, str):
            src = find(node, s)
            if src is None:
                raise BlockError.of("bitmap.dirty-bitmap-not-found", name=s)
        else:
            _, src = lookup(g, s["node"], s["name"])
        _merge_into(anon, src)
    before = set(dst.bits)
    _merge_into(dst, anon)
    if tx is not None:
        tx.on_abort(lambda: setattr(dst, "bits", before))
    return dst


def _merge_into(dst: DirtyBitmap, src: DirtyBitmap) -> None:
    """bdrv_merge_dirty_bitmap: checks, then hbitmap_merge."""
    check(dst, DEFAULT)
    check(src, ALLOW_RO)
    if src.size != dst.size:
        raise BlockError.of("bitmap.merge-different-sizes", dst=dst.size, src=src.size)
    dst.merge_from(src)


def truncate(node: Node, size: int) -> None:
    for bm in node.dirty_bitmaps:
        bm.truncate(size)


EventFn = Callable[[str, dict], None]


def note_write(g: BlockGraph, node: Node, offset: int, length: int) -> None:
    """A write of ``length`` bytes at ``offset`` reaches ``node``."""
    thr = node.write_threshold
    if thr and offset + length > thr:
        # bdrv_write_threshold_check_write: the event fires once, then the
        # threshold is off.
        node.write_threshold = 0
        emit = g.emit_event
        if emit is not None:
            emit("BLOCK_WRITE_THRESHOLD", {"node-name": node.name,
                                           "amount-exceeded": offset + length - thr,
                                           "write-threshold": thr})
    for bm in node.dirty_bitmaps:
        # (a frozen bitmap's successor is in the list itself)
        if not bm.disabled:
            bm.set_range(offset, length)


def create_successor(bm: DirtyBitmap) -> None:
    """bdrv_dirty_bitmap_create_successor: freeze ``bm``; writes go to a child."""
    check(bm, BUSY)
    if bm.successor is not None:
        raise BlockError.of("bitmap.cannot-create-successor-bitmap-already")
    child = DirtyBitmap(bm.node, "", bm.granularity, bm.size)
    child.disabled = bm.disabled
    bm.disabled = True
    bm.successor = child
    bm.busy = True
    # an anonymous bitmap of the node: listed (newest first) until it goes
    bm.node.dirty_bitmaps.insert(0, child)


def abdicate(bm: DirtyBitmap) -> None:
    """bdrv_dirty_bitmap_abdicate: the successor takes the bitmap's place."""
    child = bm.successor
    assert child is not None
    bm.bits = child.bits
    bm.disabled = child.disabled
    bm.successor = None
    bm.busy = False
    _release(child)


def reclaim(bm: DirtyBitmap) -> None:
    """bdrv_reclaim_dirty_bitmap: the successor's bits go back into the bitmap."""
    child = bm.successor
    assert child is not None
    bm.merge_from(child)
    bm.disabled = child.disabled
    bm.successor = None
    bm.busy = False
    _release(child)
