"""Write-back caches of qcow2 metadata, and the host discards they must precede.

QEMU's metadata caches are modelled as dictionaries of whole clusters, flushed
at the end of every top-level operation: the final file content is the same
as QEMU's because each cached table is always written as a whole cluster.
Refcount blocks are written before L2 tables, as QEMU's cache dependency does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from qmpd.qcow2.spec import (
    DISCARD_ALWAYS,
    DISCARD_NEVER,
    DISCARD_OTHER,
    DISCARD_REQUEST,
    DISCARD_SNAPSHOT,
)
from qmpd.qcow2.store import ByteStore, read_exact

# Keys of the dirty set: the kind of cached table, then its host offset.
REFBLOCK = "rb"
L2_TABLE = "l2"


class MetadataCache:
    """Cached refcount blocks and L2 tables by host offset, and which are dirty."""

    def __init__(self, store: ByteStore, cluster_size: int) -> None:
        self.store = store
        self.cluster_size = cluster_size
        self.refblocks: dict[int, bytearray] = {}
        self.l2_tables: dict[int, bytearray] = {}
        self.dirty: set[tuple[str, int]] = set()

    def _load(self, tables: dict[int, bytearray], offset: int) -> bytearray:
        """The cached cluster at ``offset``, read on first use."""
        table = tables.get(offset)
        if table is None:
            table = tables[offset] = bytearray(read_exact(self.store, offset, self.cluster_size))
        return table

    def load_refblock(self, offset: int) -> bytearray:
        return self._load(self.refblocks, offset)

    def new_refblock(self, offset: int) -> bytearray:
        """An all-zero refcount block at ``offset`` (written on the next flush)."""
        block = bytearray(self.cluster_size)
        self.refblocks[offset] = block
        self.dirty.add((REFBLOCK, offset))
        return block

    def load_l2(self, offset: int) -> bytearray:
        return self._load(self.l2_tables, offset)

    def put_l2(self, offset: int, table: bytearray) -> None:
        """A new L2 table at ``offset`` (written on the next flush)."""
        self.l2_tables[offset] = table
        self.dirty.add((L2_TABLE, offset))

    def flush(self) -> None:
        """Write dirty cached refcount blocks and L2 tables (whole clusters)."""
        for kind, off in sorted(self.dirty, key=lambda k: (k[0] != REFBLOCK, k[1])):
            table = self.refblocks[off] if kind == REFBLOCK else self.l2_tables[off]
            self.store.write(off, bytes(table))
        self.dirty.clear()


class HostDiscards:
    """Clusters whose refcount dropped to zero, to discard in the host file.

    ``passthrough`` says which discard types reach the file (QEMU's
    ``discard_passthrough``); ``unmap`` mirrors BDRV_O_UNMAP for guest
    requests.  While :meth:`batched` runs, discards wait for the end of the
    operation (``cache_discards``).
    """

    def __init__(self, cache: MetadataCache, unmap: bool) -> None:
        self.cache = cache
        self.passthrough = {
            DISCARD_NEVER: False,
            DISCARD_ALWAYS: True,
            DISCARD_REQUEST: unmap,
            DISCARD_SNAPSHOT: True,
            DISCARD_OTHER: False,
        }
        self.caching = False
        self.pending: list[tuple[int, int]] = []

    def queue(self, offset: int, length: int) -> None:
        self.pending.append((offset, length))

    def process(self, ok: bool) -> None:
        """Discard what is queued (``ok``) or forget it (an undone update)."""
        discards, self.pending = self.pending, []
        if not ok:
            return
        store = self.cache.store
        size = store.size()
        punch = getattr(store, "punch", None)
        for off, length in discards:
            # A punched hole reads as zeros and never grows the file.
            end = min(off + length, size)
            if end > off:
                self.cache.flush()
                if punch is not None:
                    punch(off, end - off)
                else:
                    store.write(off, bytes(end - off))

    @contextmanager
    def batched(self) -> Iterator[None]:
        """Hold discards until the end, then flush metadata and discard."""
        self.caching = True
        try:
            yield
        finally:
            self.caching = False
            self.cache.flush()
            self.process(True)
