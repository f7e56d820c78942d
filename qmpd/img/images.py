"""Host image files for qmpd-img: a file-backed ByteStore and qemu-io style opening.

``open_image`` mirrors what ``qemu-io [-f FMT] FILE`` does: probe or check the
format, open the qcow2 backing chain read-only (relative names resolved
against the directory of the image naming them) and report failures with
qemu's texts.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import struct
from dataclasses import dataclass, field
from types import SimpleNamespace

from qmpd.engine.drivers.blkdebug import BlkdebugDriver
from qmpd.engine.drivers.blkdebug import parse_config as blkdebug_config
from qmpd.engine.errors import BlockError
from qmpd.engine.hostfiles import punch_hole
from qmpd.qcow2 import (
    BackingReader,
    Qcow2FormatError,
    Qcow2Image,
    is_qcow2,
)
from qmpd.qcow2 import bitmaps as qb

PROBE_WARNING = (
    "WARNING: Image format was not specified for '{name}' and probing guessed raw.\n"
    "         Automatically detecting the format is dangerous for raw images, "
    "write operations on block 0 will be restricted.\n"
    "         Specify the 'raw' format explicitly to remove the restrictions.\n"
)




# file-posix's permission lock bytes (RAW_LOCK_PERM_BASE / RAW_LOCK_SHARED_BASE)
# and the permissions, in bit order, as QEMU 7.2 names them in its messages.
LOCK_PERM_BASE = 100
LOCK_SHARED_BASE = 200
PERM_NAMES = ("consistent read", "write", "write unchanged", "resize")
PERM_CONSISTENT_READ, PERM_WRITE, PERM_WRITE_UNCHANGED, PERM_RESIZE = 1, 2, 4, 8
PERM_ALL = 0xF
_FLOCK = "hhxxxxqqixxxx"        # struct flock on x86_64 / aarch64 Linux


def _ofd_lock(fd: int, cmd: int, ltype: int, offset: int) -> int:
    arg = struct.pack(_FLOCK, ltype, os.SEEK_SET, offset, 1, 0)
    return struct.unpack(_FLOCK, fcntl.fcntl(fd, cmd, arg))[0]


class ImageOpenError(Exception):
    """Opening failed; the text is what qemu prints after ``can't open device X: ``."""


class FileStore:
    """A :class:`~qmpd.qcow2.ByteStore` over a host file descriptor."""

    def __init__(self, path: str, writable: bool) -> None:
        flags = os.O_RDWR if writable else os.O_RDONLY
        self.fd = os.open(path, flags)

    def read(self, offset: int, length: int) -> bytes:
        out = bytearray()
        while len(out) < length:
            chunk = os.pread(self.fd, length - len(out), offset + len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def write(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(self.fd, view, offset)
            view = view[n:]
            offset += n

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def truncate(self, n: int) -> None:
        os.ftruncate(self.fd, n)

    def punch(self, offset: int, length: int) -> None:
        """Discard a range like file-posix: a hole reading as zeros, size kept.

        Holes matter beyond the bytes: QEMU's block status (and so whether a
        later partial write-zeroes may use a zero cluster) sees them.
        """
        end = min(offset + length, self.size())
        if end <= offset:
            return
        if punch_hole(self.fd, offset, end - offset):
            return
        self.write(offset, bytes(end - offset))

    def is_hole(self, offset: int, length: int) -> bool:
        """True when no data lies in the range (SEEK_DATA), as file-posix reports."""
        if length <= 0 or offset >= self.size():
            return True
        try:
            data = os.lseek(self.fd, offset, os.SEEK_DATA)
        except OSError as exc:
            return exc.errno == errno.ENXIO
        return data >= offset + length

    def extent(self, offset: int, length: int) -> tuple[int, bool]:
        """(bytes, is_hole) of the run starting at ``offset`` (SEEK_DATA/SEEK_HOLE),
        as file-posix's block status sees the file."""
        try:
            data = os.lseek(self.fd, offset, os.SEEK_DATA)
        except OSError:
            return length, True
        if data > offset:
            return min(length, data - offset), True
        hole = os.lseek(self.fd, offset, os.SEEK_HOLE)
        return min(length, hole - offset), False

    def lock(self, path: str, perm: int, shared: int) -> None:
        """raw_check_lock_bytes then raw_apply_lock_bytes: fail as QEMU does when
        another process holds a lock that conflicts (one that unshares a
        permission taken here, or holds one not shared here), else hold read
        locks on the bytes of the permissions taken and of those not shared,
        as qemu-img and qemu-io do, so that a QEMU (or qmpd) opening the file
        meanwhile sees them.  Without OFD locks (other systems) nothing is
        checked, as file-posix's locking=auto."""
        getlk = getattr(fcntl, "F_OFD_GETLK", None)
        setlk = getattr(fcntl, "F_OFD_SETLK", None)
        if getlk is None or setlk is None:
            return
        hint = f"\nIs another process using the image [{path}]?"
        try:
            for i, name in enumerate(PERM_NAMES):
                if perm & (1 << i) and _ofd_lock(self.fd, getlk, fcntl.F_WRLCK,
                                                 LOCK_SHARED_BASE + i) != fcntl.F_UNLCK:
                    raise ImageOpenError(f'Failed to get "{name}" lock{hint}')
            for i, name in enumerate(PERM_NAMES):
                if not shared & (1 << i) and _ofd_lock(self.fd, getlk, fcntl.F_WRLCK,
                                                       LOCK_PERM_BASE + i) != fcntl.F_UNLCK:
                    raise ImageOpenError(f'Failed to get shared "{name}" lock{hint}')
            for i in range(len(PERM_NAMES)):
                if perm & (1 << i):
                    _ofd_lock(self.fd, setlk, fcntl.F_RDLCK, LOCK_PERM_BASE + i)
                if not shared & (1 << i):
                    _ofd_lock(self.fd, setlk, fcntl.F_RDLCK, LOCK_SHARED_BASE + i)
        except OSError:
            return

    def close(self) -> None:
        os.close(self.fd)


class RawImage:
    """The raw format over a file: guest offset == host offset."""

    fmt = "raw"

    def __init__(self, store: FileStore, read_only: bool) -> None:
        self.store = store
        self.read_only = read_only

    def length(self) -> int:
        # The block layer counts whole sectors: a 1000-byte file is 1024 long.
        return -(-self.store.size() // 512) * 512

    def read(self, offset: int, length: int) -> bytes:
        data = self.store.read(offset, length)
        return data + bytes(length - len(data))

    def is_zero(self, offset: int, length: int) -> bool:
        return self.store.is_hole(offset, length)

    def write(self, offset: int, data: bytes) -> None:
        self.store.write(offset, data)

    def write_zeroes(self, offset: int, length: int, *, unmap: bool = False) -> None:
        # file-posix zeroes with fallocate, which leaves a hole-like range.
        size = self.store.size()
        self.store.punch(offset, length)
        if offset + length > size:
            self.store.write(max(offset, size), bytes(offset + length - max(offset, size)))

    def discard(self, offset: int, length: int) -> None:
        self.store.punch(offset, length)

    def write_compressed(self, offset: int, data: bytes) -> None:
        raise OSError(errno.ENOTSUP, "Operation not supported")

    def truncate(self, size: int, prealloc: str) -> None:
        if prealloc != "off":
            raise OSError(errno.ENOTSUP, "qmpd-img io: truncate -m is not supported")
        self.store.truncate(size)

    def allocation(self) -> list[tuple[int, int, bool]]:
        size = self.length()
        return [(0, size, True)] if size else []


class Qcow2Adapter:
    """A Qcow2Image plus the chain it owns, with the qemu-io facing methods."""

    fmt = "qcow2"

    def __init__(self, image: Qcow2Image, store: FileStore, chain: list[object]) -> None:
        self.image = image
        self.store = store
        self.chain = chain
        self.read_only = image.read_only
        # Persistent bitmaps of the top image (newest first): loaded at open,
        # marked by every write, stored again at close, as qemu-io does.
        self.bitmaps: list[qb.StoredBitmap] = []

    def _dirty(self, offset: int, length: int) -> None:
        """bdrv_set_dirty for the enabled bitmaps."""
        if length <= 0:
            return
        for bm in self.bitmaps:
            if bm.enabled:
                g = bm.granularity
                bm.bits.update(range(offset // g, (offset + length - 1) // g + 1))

    def length(self) -> int:
        return self.image.virtual_size

    def read(self, offset: int, length: int) -> bytes:
        return self.image.read(offset, length)

    def is_zero(self, offset: int, length: int) -> bool:
        return self.image.is_zero(offset, length)

    def write(self, offset: int, data: bytes) -> None:
        self.image.write(offset, data)
        self._dirty(offset, len(data))

    def write_zeroes(self, offset: int, length: int, *, unmap: bool = False) -> None:
        self.image.write_zeroes(offset, length, unmap=unmap)
        self._dirty(offset, length)

    def discard(self, offset: int, length: int) -> None:
        self.image.discard(offset, length)
        self._dirty(offset, length)

    def write_compressed(self, offset: int, data: bytes) -> None:
        self.image.write_compressed(offset, data)
        self._dirty(offset, len(data))

    def truncate(self, size: int, prealloc: str) -> None:
        if size % 512:
            raise OSError(errno.EINVAL, "The new size must be a multiple of 512")
        if prealloc != "off" or size < self.image.virtual_size:
            raise OSError(errno.ENOTSUP, "qmpd-img io: only growing qcow2 images "
                          "without preallocation is supported")
        if size > self.image.virtual_size:
            try:
                self.image.truncate_grow(size)
            except Qcow2FormatError as exc:
                raise OSError(errno.EFBIG, exc.desc) from None
            for bm in self.bitmaps:
                bm.size = size

    def allocation(self) -> list[tuple[int, int, bool]]:
        return self.image.is_allocated_extents()


class NullImage:
    """``null-co://`` / ``null-aio://``: 1 GiB (null's default size) that reads as
    zeros and takes every write (as read-zeroes=on; QEMU 7.2's default leaves
    the read buffer as it was, which qemu-io shows as zeros for a fresh one)."""

    fmt = "raw"

    def __init__(self, read_only: bool) -> None:
        self.read_only = read_only

    def length(self) -> int:
        return 1 << 30

    def read(self, offset: int, length: int) -> bytes:
        return bytes(length)

    def is_zero(self, offset: int, length: int) -> bool:
        return True

    def write(self, offset: int, data: bytes) -> None:
        pass

    def write_zeroes(self, offset: int, length: int, *, unmap: bool = False) -> None:
        pass

    def discard(self, offset: int, length: int) -> None:
        pass

    def write_compressed(self, offset: int, data: bytes) -> None:
        raise OSError(errno.ENOTSUP, "Operation not supported")

    def truncate(self, size: int, prealloc: str) -> None:
        raise OSError(errno.ENOTSUP, "Operation not supported")

    def allocation(self) -> list[tuple[int, int, bool]]:
        return [(0, self.length(), True)]


class BlkdebugRawImage(RawImage):
    """The raw format over ``blkdebug:CONFIG:FILE``: raw sends READ_AIO /
    WRITE_AIO events to blkdebug before each request (raw_co_preadv /
    raw_co_pwritev), and blkdebug fails the requests its active rules hit,
    with the rule and state logic of qmpd's own blkdebug driver."""

    def __init__(self, store: FileStore, read_only: bool,
                 sections: list[tuple[str, dict]]) -> None:
        super().__init__(store, read_only)
        self._driver = BlkdebugDriver()
        self._node = SimpleNamespace(state={
            "rules": self._driver._rules({}, sections),
            "active": [], "state": 1})

    def _check(self, event: str | None, offset: int, length: int, iotype: str) -> None:
        if event is not None:
            self._driver.debug_event(self._node, event)  # type: ignore[arg-type]
        self._driver.rule_check(self._node, offset, length, iotype)  # type: ignore[arg-type]

    def read(self, offset: int, length: int) -> bytes:
        self._check("read_aio", offset, length, "read")
        return super().read(offset, length)

    def write(self, offset: int, data: bytes) -> None:
        self._check("write_aio", offset, len(data), "write")
        super().write(offset, data)

    def write_zeroes(self, offset: int, length: int, *, unmap: bool = False) -> None:
        self._check(None, offset, length, "write-zeroes")
        super().write_zeroes(offset, length, unmap=unmap)

    def discard(self, offset: int, length: int) -> None:
        self._check(None, offset, length, "discard")
        super().discard(offset, length)


def has_protocol(name: str) -> bool:
    """path_has_protocol: a ``:`` before any ``/`` (``null-co://``, ``blkdebug:...``)."""
    for ch in name:
        if ch == "/":
            return False
        if ch == ":":
            return True
    return False


def _blkdebug_config(config: str) -> list[tuple[str, dict]]:
    """The sections of a blkdebug config file (no file name: no rules)."""
    if not config:
        return []
    try:
        with open(config, encoding="utf-8", errors="replace") as f:
            return blkdebug_config(f.read())
    except OSError as exc:
        raise ImageOpenError(f"Could not read blkdebug config file: {_os_error_text(exc)}"
                             ) from None
    except BlockError as exc:
        raise ImageOpenError(str(exc)) from None


@dataclass
class OpenedImage:
    """What open_image returns: the top image and every file it opened."""

    top: RawImage | Qcow2Adapter | NullImage
    stores: list[FileStore] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def close(self) -> None:
        if isinstance(self.top, Qcow2Adapter):
            qb.store(self.top.image, self.top.bitmaps)
            self.top.image.flush()
        for store in self.stores:
            store.close()


def _unflatten(opts: dict) -> dict:
    """qdict_crumple: ``file.filename`` keys as nested dicts."""
    out: dict = {}
    for key, value in opts.items():
        node = out
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ImageOpenError(f"Cannot mix {part} and {key}")
        node[last] = _unflatten(value) if isinstance(value, dict) else value
    return out


def display_name(path: str) -> str:
    """The name qemu-img shows for an image it opened by ``path``: what a
    ``json:`` filename names (bdrv_refresh_filename's plain filename when
    the options are only a format over a file), else ``path``."""
    if path.startswith("json:"):
        try:
            return _json_filename(path, None)[1]
        except ImageOpenError:
            return path
    return path


def _json_filename(name: str, fmt: str | None) -> tuple[str | None, str]:
    """A ``json:{...}`` filename as (format, plain or protocol name), for what
    qmpd-img opens: qcow2 or raw (or no format) over a file, null-co or
    blkdebug node."""
    try:
        opts = json.loads(name[len("json:"):])
    except ValueError:
        raise ImageOpenError("Could not parse the JSON options") from None
    if not isinstance(opts, dict):
        raise ImageOpenError("Invalid JSON object given")
    opts = _unflatten(opts)
    driver = opts.get("driver")
    if driver in ("qcow2", "raw"):
        if fmt is not None and fmt != driver:
            raise ImageOpenError("Cannot override driver")
        fmt, child = driver, opts.get("file")
    else:
        child = opts
    if isinstance(child, str):
        return fmt, child
    if isinstance(child, dict) and isinstance(child.get("filename"), str):
        proto = child.get("driver", "file")
        if proto == "file":
            return fmt or "raw", child["filename"]
        if proto in ("null-co", "null-aio"):
            return fmt or "raw", f"{proto}://"
    if isinstance(child, dict) and child.get("driver") in ("null-co", "null-aio"):
        return fmt or "raw", f"{child['driver']}://"
    if isinstance(child, dict) and child.get("driver") == "blkdebug":
        image = child.get("image")
        inner = image.get("filename") if isinstance(image, dict) else image
        if isinstance(inner, str) and (not isinstance(image, dict)
                                       or image.get("driver", "file") == "file"):
            return fmt or "raw", f"blkdebug:{child.get('config', '')}:{inner}"
    raise ImageOpenError("qmpd-img: this json: filename names nodes qmpd-img does not "
                         "open (it opens qcow2 and raw over file, null-co and blkdebug)")


def _raw_perm(read_only: bool) -> int:
    """What the raw format passes down of its user's permissions (blk_new_open:
    consistent read, and write when read-write)."""
    return PERM_CONSISTENT_READ | (0 if read_only else PERM_WRITE)


def _os_error_text(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


def open_image(path: str, fmt: str | None, *, read_only: bool = False,
               unmap: bool = True, no_backing: bool = False, size_only: bool = False,
               force_share: bool = False, _depth: int = 0,
               _stores: list[FileStore] | None = None,
               _warnings: list[str] | None = None) -> OpenedImage:
    """Open ``path`` like qemu-io does (raises :class:`ImageOpenError`).

    ``unmap`` is BDRV_O_UNMAP (qemu-io's default; ``-d ignore`` clears it):
    guest discards reach the qcow2 image's file.  ``no_backing`` is
    BDRV_O_NO_BACKING (``qemu-img rebase -u``): the backing file named in the
    header is not opened, so it need not exist.  ``size_only``: the caller
    only asks the length (qemu-img create's backing file), so a blkdebug
    config's error rules, which qmpd-img does not run, do not matter.
    Protocol names (``null-co://``, ``blkdebug:CONFIG:IMAGE``, ``file:``) and
    ``json:{...}`` filenames open what they name.

    Every file is locked as QEMU's file driver locks it (see
    :meth:`FileStore.lock`): a qcow2 image's file as soon as it is opened
    (the format takes write and resize when writable and shares neither), a
    raw one with what the user of the image asks (read, and write unless
    read-only; everything shared).  ``force_share`` (``-U``) takes no locks.
    """
    stores: list[FileStore] = [] if _stores is None else _stores
    warnings: list[str] = [] if _warnings is None else _warnings
    if _depth > 16:
        raise ImageOpenError("Backing chain too deep")
    if path.startswith("json:"):
        fmt, path = _json_filename(path, fmt)
    if has_protocol(path):
        protocol = path.partition(":")[0]
        if protocol in ("null-co", "null-aio") and fmt in (None, "raw"):
            return OpenedImage(NullImage(read_only), stores, warnings)
        if protocol == "blkdebug":
            # blkdebug:[CONFIG]:IMAGE, the format (if any) on top of it.
            config, _, inner = path[len("blkdebug:"):].partition(":")
            sections = _blkdebug_config(config)
            if fmt == "raw" and not has_protocol(inner):
                try:
                    store = FileStore(inner, writable=not read_only)
                except OSError as exc:
                    raise ImageOpenError(
                        f"Could not open '{inner}': {_os_error_text(exc)}") from None
                stores.append(store)
                if not force_share:
                    store.lock(inner, _raw_perm(read_only), PERM_ALL)
                return OpenedImage(BlkdebugRawImage(store, read_only, sections), stores, warnings)
            if sections and not size_only:
                # Other formats send their own events (l2_load, cow_read...)
                # to blkdebug, which qmpd-img does not model.
                raise ImageOpenError(
                    f"qmpd-img: blkdebug rules under the {fmt or 'probed'} format "
                    "are not supported")
            return open_image(inner, fmt, read_only=read_only, unmap=unmap,
                              no_backing=no_backing, size_only=size_only,
                              force_share=force_share, _depth=_depth, _stores=stores,
                              _warnings=warnings)
        if protocol != "file":
            raise ImageOpenError(f"Unknown protocol '{protocol}'")
        path = path[len("file:"):]
    try:
        store = FileStore(path, writable=not read_only)
    except OSError as exc:
        if exc.errno == errno.EACCES and not read_only:
            raise ImageOpenError(
                f"Could not open '{path}': {_os_error_text(exc)}") from None
        raise ImageOpenError(f"Could not open '{path}': {_os_error_text(exc)}") from None
    stores.append(store)
    first = store.read(0, 512)
    if fmt is None:
        fmt = "qcow2" if is_qcow2(first) else "raw"
        if fmt == "raw" and _depth == 0:
            warnings.append(PROBE_WARNING.format(name=path))
    if fmt == "raw":
        if not force_share:
            store.lock(path, _raw_perm(read_only), PERM_ALL)
        return OpenedImage(RawImage(store, read_only), stores, warnings)
    if fmt != "qcow2":
        raise ImageOpenError(f"Unknown driver '{fmt}'")
    if not force_share:
        # bdrv_default_perms_for_storage: metadata is written and the file may
        # grow; nobody else may write or resize it.
        writable = 0 if read_only else PERM_WRITE | PERM_RESIZE
        store.lock(path, PERM_CONSISTENT_READ | writable,
                   PERM_ALL & ~(PERM_WRITE | PERM_RESIZE))
    backing: BackingReader | None = None
    try:
        probe = Qcow2Image(store, read_only=True)
    except Qcow2FormatError as exc:
        raise ImageOpenError(exc.desc) from None
    chain: list[object] = []
    if probe.backing_file and not no_backing:
        name = probe.backing_file
        full = name if os.path.isabs(name) or has_protocol(name) else os.path.join(
            os.path.dirname(path), name)
        try:
            sub = open_image(full, probe.backing_format, read_only=True,
                             force_share=force_share, _depth=_depth + 1,
                             _stores=stores, _warnings=warnings)
        except ImageOpenError as exc:
            raise ImageOpenError(f"Could not open backing file: {exc}") from None
        backing = sub.top
        chain.append(sub.top)
    try:
        image = Qcow2Image(store, backing=backing, read_only=read_only, unmap=unmap)
    except Qcow2FormatError as exc:
        raise ImageOpenError(exc.desc) from None
    adapter = Qcow2Adapter(image, store, chain)
    if _depth == 0:
        for bm in qb.load(image, not read_only):
            adapter.bitmaps.insert(0, bm)
    return OpenedImage(adapter, stores, warnings)
