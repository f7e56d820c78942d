"""The bytes an image lives in and the image behind it, as the qcow2 code sees them.

:class:`ByteStore` is the host file (a real file in ``qmpd-img``, the node's
``file`` child in the block engine, memory in :class:`MemoryStore`);
:class:`BackingReader` is the backing image's guest data.  The package never
opens host files itself.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Protocol


class ByteStore(Protocol):
    """The host file an image lives in (a real file, or memory).

    A store may also offer ``punch(offset, length)``: freed clusters are then
    punched out instead of overwritten with zeros.
    """

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


def read_exact(store: ByteStore, offset: int, length: int) -> bytes:
    """``length`` bytes from ``store``; what lies past its end reads as zeros."""
    data = store.read(offset, length)
    if len(data) < length:
        data = data + bytes(length - len(data))
    return data


def read_table(store: ByteStore, offset: int, entries: int) -> list[int]:
    """A table of big-endian 64-bit entries (the L1 and refcount tables)."""
    raw = read_exact(store, offset, entries * 8) if entries else b""
    return list(struct.unpack(f">{entries}Q", raw))


class BackingReader(Protocol):
    """What a qcow2 image needs from its backing image."""

    def length(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes:
        """Guest data; zeros beyond the end are the caller's business."""
        ...

    def is_zero(self, offset: int, length: int) -> bool:
        """True when the range is known to read as zeros (block status)."""
        ...


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
