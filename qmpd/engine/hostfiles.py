"""Host files seen through one in-memory copy-on-write layer each.

By default qmpd never writes a host file.  Every node that opens a host file
reads and writes it through the :class:`HostLayer` of that file's identity
(device and inode), so all nodes on the same file, now or later in the
daemon's life, see the same bytes.  Reads come from the layer where it holds
data and from the host file elsewhere; writes land in the layer.

With host writes on (``--host-writes``, or QEMU's own test launch), a layer
is a pass-through instead: writes, hole punches and truncations go to the
host file at once with pwrite/fallocate/ftruncate, as QEMU's file-posix does,
so that qemu-img and qemu-io see them; blockdev-create makes real files.

The layer also keeps the allocation a real file would have after the same
writes (4 KiB file-system blocks), so ``actual-size`` moves as QEMU's does.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
from collections.abc import Callable

from qmpd.cstrings import cstring
from qmpd.engine.errors import BlockError

BLOCK = 4096
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_fallocate: Callable[[int, int, int, int], int] | None = None


def punch_hole(fd: int, offset: int, length: int) -> bool:
    """fallocate(PUNCH_HOLE | KEEP_SIZE); False where the host cannot.

    libc's fallocate through ctypes, looked up on first use in the symbols
    the interpreter already has (``CDLL(None)``): ``ctypes.util`` (which
    imports subprocess, shutil, tempfile) would cost every qmpd-img run some
    25 ms of imports."""
    global _fallocate
    if _fallocate is None:
        try:
            func = ctypes.CDLL(None, use_errno=True).fallocate
        except (OSError, AttributeError):
            return False
        func.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
        func.restype = ctypes.c_int
        _fallocate = func
    return _fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) == 0
# One shared all-zero block: zero-filled writes (qcow2 COW areas, write -z)
# cost a dict slot, not 4 KiB each.
ZERO_BLOCK = bytes(BLOCK)


def os_path(path: str) -> bytes:
    """The bytes QEMU hands the OS for a path a client sent (see
    :mod:`qmpd.cstrings`): a NUL is C0 80, never an error."""
    return cstring(path)


def check_preallocation_room(path: str, need: int, mode: str) -> None:
    """Fail as QEMU's preallocation of ``need`` more bytes of ``path`` would
    when the host file system has less room (ENOSPC).  qmpd keeps the zeros
    in memory, but QEMU would have written them (file-posix
    handle_aiocb_truncate: fallocate() for falloc, zeroes written for full)."""
    try:
        st = os.statvfs(os.path.dirname(os_path(path)) or b".")
    except OSError:
        return
    if need > st.f_bavail * st.f_frsize:
        if mode == "falloc":
            raise BlockError.of("create.preallocate-failed", error=os.strerror(errno.ENOSPC))
        raise BlockError.of("create.write-zeroes-failed", error=os.strerror(errno.ENOSPC))


# file-posix's lock bytes: RAW_LOCK_PERM_BASE and RAW_LOCK_SHARED_BASE.
LOCK_PERM_BASE = 100
LOCK_SHARED_BASE = 200
_FLOCK = "hhxxxxqqixxxx"        # struct flock on x86_64 / aarch64 Linux


def _flock(fd: int, cmd: int, ltype: int, offset: int) -> int:
    arg = struct.pack(_FLOCK, ltype, os.SEEK_SET, offset, 1, 0)
    res = fcntl.fcntl(fd, cmd, arg)
    return struct.unpack(_FLOCK, res)[0]


def _locked_by_other(fd: int, offset: int) -> bool:
    """F_OFD_GETLK for a write lock: does another open file hold the byte?"""
    try:
        return _flock(fd, fcntl.F_OFD_GETLK, fcntl.F_WRLCK, offset) != fcntl.F_UNLCK
    except OSError:
        return False


def _set_lock(fd: int, offset: int, locked: bool) -> None:
    try:
        _flock(fd, fcntl.F_OFD_SETLK, fcntl.F_RDLCK if locked else fcntl.F_UNLCK, offset)
    except OSError:
        pass


class HostLayer:
    """The copy-on-write view of one host file."""

    def __init__(self, path: str, size: int, host_blocks: int, direct: bool = False) -> None:
        self.path = path
        # Host writes: every change goes to the file (see the module docstring).
        self.direct = direct
        self._fd = -1
        self.size = size
        self.host_size = size
        self.host_allocated = host_blocks
        self.blocks: dict[int, bytes] = {}      # written 4 KiB blocks
        self.added: set[int] = set()            # blocks allocated by writes
        self.freed: set[int] = set()            # host blocks punched out
        self._host_alloc: list[tuple[int, int]] | None = None
        self.nodes: set = set()                 # file nodes open on this file
        self._last = ZERO_BLOCK                 # the block written last (shared)

    # -- host access -------------------------------------------------------
    def _host_read(self, offset: int, length: int) -> bytes:
        if offset >= self.host_size or length <= 0:
            return bytes(max(length, 0))
        try:
            with open(os_path(self.path), "rb") as f:
                f.seek(offset)
                data = f.read(min(length, self.host_size - offset))
        except OSError:
            data = b""
        return data + bytes(length - len(data))

    def _host_extents(self) -> list[tuple[int, int]]:
        """Allocated extents of the host file (SEEK_DATA / SEEK_HOLE)."""
        if self._host_alloc is None:
            ext: list[tuple[int, int]] = []
            try:
                fd = os.open(os_path(self.path), os.O_RDONLY)
            except OSError:
                self._host_alloc = []
                return []
            try:
                pos = 0
                while pos < self.host_size:
                    try:
                        start = os.lseek(fd, pos, os.SEEK_DATA)
                    except OSError:
                        break
                    end = os.lseek(fd, start, os.SEEK_HOLE)
                    ext.append((start, end))
                    pos = end
            except OSError:
                ext = [(0, self.host_size)]
            finally:
                os.close(fd)
            self._host_alloc = ext
        return self._host_alloc

    def _host_block_allocated(self, blk: int) -> bool:
        off = blk * BLOCK
        for s, e in self._host_extents():
            if s <= off < e or s < off + BLOCK <= e:
                return True
        return False

    # -- pass-through (host writes) -------------------------------------------
    def _wfd(self) -> int:
        """The file opened for writing, or -1 when it cannot be (the write then
        stays in memory, as without host writes)."""
        if self._fd < 0:
            try:
                self._fd = os.open(os_path(self.path), os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                self.direct = False
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _direct_done(self) -> None:
        self._host_alloc = None
        try:
            st = os.fstat(self._fd)
        except OSError:
            return
        self.host_size = self.size = st.st_size
        self.host_allocated = st.st_blocks * 512

    # -- image locks (file-posix's byte-range locks, with host writes) ---------
    def host_conflict(self, perm: int, shared: int) -> tuple[int, bool] | None:
        """raw_check_lock_bytes against other processes: (bit, is_shared_lock)
        of the first lock another process holds that ``perm``/``shared`` needs."""
        fd = self._wfd() if self.direct else -1
        if fd < 0:
            return None
        for i in range(4):
            if perm & (1 << i) and _locked_by_other(fd, LOCK_SHARED_BASE + i):
                return i, False
        for i in range(4):
            if not shared & (1 << i) and _locked_by_other(fd, LOCK_PERM_BASE + i):
                return i, True
        return None

    def host_lock(self, perm: int, unshared: int) -> None:
        """raw_apply_lock_bytes: hold read locks on the permission bytes taken
        (100 + bit) and on those not shared (200 + bit); release the others."""
        fd = self._wfd() if self.direct else -1
        if fd < 0:
            return
        for i in range(4):
            _set_lock(fd, LOCK_PERM_BASE + i, bool(perm & (1 << i)))
            _set_lock(fd, LOCK_SHARED_BASE + i, bool(unshared & (1 << i)))

    # -- data ----------------------------------------------------------------
    def read(self, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        if not self.blocks and not self.freed and offset + length <= self.host_size:
            return self._host_read(offset, length)
        out = bytearray()
        pos = offset
        end = offset + length
        while pos < end:
            blk = pos // BLOCK
            boff = pos - blk * BLOCK
            n = min(BLOCK - boff, end - pos)
            data = self.blocks.get(blk)
            if data is not None:
                out += data[boff:boff + n]
            elif blk in self.freed or pos >= self.host_size:
                out += bytes(n)
            else:
                out += self._host_read(pos, n)
            pos += n
        return bytes(out)

    def _block(self, blk: int) -> bytearray:
        data = self.blocks.get(blk)
        if data is not None:
            return bytearray(data)
        if blk in self.freed:
            return bytearray(BLOCK)
        return bytearray(self._host_read(blk * BLOCK, BLOCK))

    def _note_alloc(self, blk: int) -> None:
        if blk in self.freed:
            self.freed.discard(blk)
        elif blk not in self.added and not self._host_block_allocated(blk):
            self.added.add(blk)

    def write(self, offset: int, data: bytes) -> None:
        if self.direct and self._wfd() >= 0:
            os.pwrite(self._fd, data, offset)
            self._direct_done()
            return
        pos = offset
        i = 0
        last = self._last
        end = offset + len(data)
        while pos < end:
            blk = pos // BLOCK
            boff = pos - blk * BLOCK
            n = min(BLOCK - boff, end - pos)
            if boff == 0 and n == BLOCK:
                chunk = bytes(data[i:i + n])
            else:
                b = self._block(blk)
                b[boff:boff + n] = data[i:i + n]
                chunk = bytes(b)
            # Blocks equal to the one before share its bytes: a pattern or
            # zero write of gigabytes costs a dict slot per block, not 4 KiB.
            if chunk == last:
                chunk = last
            elif chunk == ZERO_BLOCK:
                chunk = last = ZERO_BLOCK
            else:
                last = chunk
            self.blocks[blk] = chunk
            self._note_alloc(blk)
            pos += n
            i += n
        self._last = last
        if end > self.size:
            self.size = end

    def write_zeroes(self, offset: int, length: int) -> None:
        """Zeroes written over the range, a megabyte at a time (the blocks
        share one buffer: gigabytes cost a dict slot per block)."""
        zeros = bytes(min(length, 1 << 20))
        end = offset + length
        for pos in range(offset, end, len(zeros) or 1):
            self.write(pos, zeros if end - pos >= len(zeros) else zeros[: end - pos])

    def punch(self, offset: int, length: int) -> None:
        """fallocate(PUNCH_HOLE): whole blocks are freed, partial ones zeroed."""
        end = min(offset + length, self.size)
        if self.direct and self._wfd() >= 0:
            if end > offset and not punch_hole(self._fd, offset, end - offset):
                os.pwrite(self._fd, bytes(end - offset), offset)
            self._direct_done()
            return
        pos = offset
        while pos < end:
            blk = pos // BLOCK
            boff = pos - blk * BLOCK
            n = min(BLOCK - boff, end - pos)
            if n == BLOCK:
                self.blocks.pop(blk, None)
                self.added.discard(blk)
                if self._host_block_allocated(blk):
                    self.freed.add(blk)
            else:
                b = self._block(blk)
                b[boff:boff + n] = bytes(n)
                self.blocks[blk] = bytes(b)
            pos += n

    def truncate(self, n: int) -> None:
        if self.direct and self._wfd() >= 0:
            os.ftruncate(self._fd, n)
            self._direct_done()
            return
        if n < self.size:
            first = -(-n // BLOCK)
            for blk in [b for b in self.blocks if b >= first]:
                del self.blocks[blk]
            self.added = {b for b in self.added if b < first}
            if n % BLOCK and (n // BLOCK) in self.blocks:
                b = bytearray(self.blocks[n // BLOCK])
                b[n % BLOCK:] = bytes(BLOCK - n % BLOCK)
                self.blocks[n // BLOCK] = bytes(b)
            for blk in range(first, -(-self.host_size // BLOCK)):
                if self._host_block_allocated(blk):
                    self.freed.add(blk)
        self.size = n

    def allocated(self) -> int:
        if self.direct and self._fd >= 0:
            return self.host_allocated
        return self.host_allocated + BLOCK * (len(self.added) - len(self.freed))


class HostFiles:
    """All layers of the daemon, by file identity."""

    def __init__(self) -> None:
        self.layers: dict[tuple[int, int], HostLayer] = {}
        # Files blockdev-create made that do not exist on the host: by path.
        self.virtual: dict[str, HostLayer] = {}
        # Host writes (--host-writes): layers pass changes through to the files.
        self.write_through = False
        # bdrv_img_create's "Formatting '...', fmt=..." line for an image made
        # from a file name (drive-mirror, drive-backup, blockdev-snapshot-sync):
        # QEMU prints it on stdout; the daemon says where it goes.
        self.formatted: Callable[[str], None] | None = None

    def announce(self, path: str, fmt: str, size: int, backing: tuple[str, str] | None) -> None:
        """The "Formatting" line of a new image (qemu_opts_print of its options)."""
        if self.formatted is None:
            return
        back = f" backing_file={backing[0]} backing_fmt={backing[1]}" if backing else ""
        if fmt == "qcow2":
            opts = (f"cluster_size=65536 extended_l2=off compression_type=zlib size={size}"
                    f"{back} lazy_refcounts=off refcount_bits=16")
        else:
            opts = f"size={size}{back}"
        self.formatted(f"Formatting '{path}', fmt={fmt} {opts}")

    def layer(self, ident: tuple[int, int], path: str, size: int, blocks: int) -> HostLayer:
        lay = self.layers.get(ident)
        if lay is not None and lay.direct and not lay.nodes:
            # Nobody has the file open: another program may have changed or
            # replaced it since (qemu-img between two uses); start afresh.
            lay.close()
            lay = None
        if lay is None:
            lay = self.layers[ident] = HostLayer(path, size, blocks, self.write_through)
        return lay

    def reset(self) -> None:
        self.flush_all()
        self.layers.clear()
        self.virtual.clear()

    def flush_all(self) -> None:
        """Close the pass-through files (their data is in the host's page cache
        already, where other programs read it)."""
        for lay in self.layers.values():
            lay.close()

    def open_or_create(self, path: str) -> HostLayer | None:
        """The layer blockdev-create writes ``path`` in: the host file's if it
        exists, else a memory-only file (None: its directory is not writable)."""
        host = os_path(path)
        if self.write_through and not os.path.exists(host):
            try:
                os.close(os.open(host, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
            except OSError:
                return None
        try:
            st = os.stat(host)
        except OSError:
            lay = self.virtual.get(path)
            if lay is None:
                parent = os.path.dirname(host) or b"."
                if not os.path.isdir(parent) or not os.access(parent, os.W_OK):
                    return None
                lay = self.virtual[path] = HostLayer(path, 0, 0)
                lay.host_size = 0
            return lay
        return self.layer((st.st_dev, st.st_ino), path, st.st_size, st.st_blocks * 512)
