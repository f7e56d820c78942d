"""``qmpd-img bitmap``: qemu-img 7.2's ``bitmap`` subcommand (img_bitmap).

    qmpd-img bitmap (--merge SOURCE | --add | --remove | --clear | --enable |
                     --disable)... [-b SOURCE_FILE [-F SOURCE_FMT]] [-g GRANULARITY]
                     [-f FMT] FILE BITMAP

The image is opened read-write without its backing chain; its persistent
bitmaps are loaded (and marked in use on disk), the actions run in the order
given, on the bitmaps in memory, and closing the image stores every
persistent bitmap again (also after a failed action, as qemu-img's
``blk_unref`` does).  The bytes on disk are qemu-img's
(:mod:`qmpd.qcow2.bitmaps`).
"""

from __future__ import annotations

import os
import sys

from qmpd.img.images import FileStore
from qmpd.img.sizes import SizeError, parse_size
from qmpd.qcow2 import Qcow2FormatError, Qcow2Image, is_qcow2
from qmpd.qcow2 import bitmaps as qb

MAX_NAME = 1023
BME_MAX_GRANULARITY_BITS = 31
BME_MIN_GRANULARITY_BITS = 9


class BitmapError(Exception):
    """An action failed; the text follows ``Operation OP on bitmap NAME failed: ``."""


def _err(text: str) -> int:
    sys.stderr.write(f"qemu-img: {text}\n")
    return 1


class _Image:
    """One opened qcow2 image with its bitmaps as the block layer holds them."""

    def __init__(self, path: str, fmt: str | None, writable: bool) -> None:
        self.store = FileStore(path, writable=writable)
        first = self.store.read(0, 512)
        fmt = fmt or ("qcow2" if is_qcow2(first) else "raw")
        self.fmt = fmt
        self.img: Qcow2Image | None = None
        self.bitmaps: list[qb.StoredBitmap] = []      # newest first
        if fmt == "qcow2":
            self.img = Qcow2Image(self.store, read_only=not writable)
            for bm in qb.load(self.img, writable):
                self.bitmaps.insert(0, bm)

    def find(self, name: str) -> qb.StoredBitmap | None:
        return next((b for b in self.bitmaps if b.name == name), None)

    def lookup(self, name: str) -> qb.StoredBitmap:
        bm = self.find(name)
        if bm is None:
            raise BitmapError(f"Dirty bitmap '{name}' not found")
        return bm

    def close(self) -> None:
        if self.img is not None:
            qb.store(self.img, self.bitmaps)
            self.img.flush()
        self.store.close()


def _check(bm: qb.StoredBitmap, readonly: bool = True) -> None:
    """bdrv_dirty_bitmap_check (no job uses a bitmap here)."""
    if readonly and bm.readonly:
        raise BitmapError(f"Bitmap '{bm.name}' is readonly and cannot be modified")
    if bm.inconsistent:
        raise BitmapError(f"Bitmap '{bm.name}' is inconsistent and cannot be used")


def _add(im: _Image, name: str, granularity: int) -> None:
    """qmp_block_dirty_bitmap_add(persistent=true).  (QEMU's texts for the
    persistence checks also name the node, which qemu-img names at random.)"""
    if im.img is None:
        raise BitmapError("Can't store persistent bitmaps to this image: Operation not supported")
    # has_granularity is qemu-img's int64 being non-zero; the QMP argument
    # itself is a uint32, so the value is cut to 32 bits.
    if granularity:
        granularity &= 0xFFFFFFFF
        if granularity < 512 or granularity & (granularity - 1):
            raise BitmapError("Granularity must be power of 2 and at least 512")
    else:
        granularity = min(65536, max(4096, im.img.geo.cluster_size))
    if im.find(name) is not None:
        raise BitmapError(f"Bitmap already exists: {name}")
    bits = granularity.bit_length() - 1
    prefix = f"Can't make bitmap '{name}' persistent: "
    if im.img.geo.version < 3:
        raise BitmapError(prefix + "Cannot store dirty bitmaps in qcow2 v2 files")
    if bits > BME_MAX_GRANULARITY_BITS:
        raise BitmapError(prefix + "Granularity exceeds maximum (2147483648 bytes)")
    if bits < BME_MIN_GRANULARITY_BITS:
        raise BitmapError(prefix + "Granularity is under minimum (512 bytes)")
    if len(name.encode()) > MAX_NAME:
        raise BitmapError(prefix + f"Name length exceeds maximum ({MAX_NAME} characters)")
    im.bitmaps.insert(0, qb.StoredBitmap(name, granularity, im.img.virtual_size))


def _remove(im: _Image, name: str) -> None:
    bm = im.lookup(name)
    _check(bm)
    if bm.persistent and im.img is not None:
        qb.remove_stored(im.img, name)
    im.bitmaps.remove(bm)


def _merge(im: _Image, name: str, src_im: _Image, src_name: str) -> None:
    """do_dirty_bitmap_merge: one external source, through an anonymous bitmap."""
    dst = im.lookup(name)
    src = src_im.lookup(src_name)
    _check(src, readonly=False)
    size = im.img.virtual_size if im.img is not None else dst.size
    if src.size != size:
        raise BitmapError(f"Bitmaps are of different sizes (destination size is {size}, "
                          f"source size is {src.size}) and can't be merged")
    _check(dst)
    if dst.size != size:
        raise BitmapError(f"Bitmaps are of different sizes (destination size is {dst.size}, "
                          f"source size is {size}) and can't be merged")
    if src.granularity == dst.granularity:
        dst.bits |= src.bits
        return
    for b in src.bits:
        start = b * src.granularity
        end = start + src.granularity - 1
        dst.bits.update(range(start // dst.granularity, end // dst.granularity + 1))


def cmd_bitmap(argv: list[str], getopt: object) -> int:
    """img_bitmap; ``getopt`` is the CLI's GNU getopt_long."""
    longopts = {"help": "h", "object": "O:", "image-opts": "I", "add": "A", "remove": "R",
                "clear": "C", "enable": "E", "disable": "D", "merge": "M:",
                "granularity": "g:", "source-file": "b:", "source-format": "F:"}
    try:
        opts, operands = getopt(argv, "b:f:F:g:h", longopts)  # type: ignore[operator]
    except ValueError as exc:
        return _err(f"{exc}\nTry 'qemu-img --help' for more information")
    fmt = src_fmt = src_file = None
    granularity = 0
    actions: list[tuple[str, str]] = []
    for key, value in opts:
        if key == "h":
            sys.stdout.write(__doc__.split("\n\n")[1] + "\n")
            return 0
        if key == "b":
            src_file = value
        elif key == "f":
            fmt = value
        elif key == "F":
            src_fmt = value
        elif key == "g":
            try:
                granularity = parse_size(value)
            except SizeError:
                return _err("Invalid granularity specified. You may use k, M, G, T, P or E "
                            "suffixes for")
        elif key in "ARCEDM":
            actions.append(({"A": "add", "R": "remove", "C": "clear", "E": "enable",
                             "D": "disable", "M": "merge"}[key], value))
    names = [a for a, _ in actions]
    if not actions:
        return _err("Need at least one of --add, --remove, --clear, --enable, --disable, "
                    "or --merge")
    if granularity and "add" not in names:
        return _err("granularity only supported with --add")
    if src_fmt and not src_file:
        return _err("-F only supported with -b")
    if src_file and "merge" not in names:
        return _err("Merge bitmap source file only supported with --merge")
    if len(operands) != 2:
        return _err("Expecting filename and bitmap name")
    filename, name = operands
    try:
        im = _Image(filename, fmt, writable=True)
    except OSError as exc:
        return _err(f"Could not open '{filename}': {os.strerror(exc.errno or 5)}")
    except Qcow2FormatError as exc:
        return _err(f"Could not open '{filename}': {exc.desc}")
    src_im = im
    rc = 0
    try:
        if src_file:
            try:
                src_im = _Image(src_file, src_fmt, writable=False)
            except OSError as exc:
                return _err(f"Could not open '{src_file}': {os.strerror(exc.errno or 5)}")
        for act, src in actions:
            try:
                if act == "add":
                    _add(im, name, granularity)
                elif act == "remove":
                    _remove(im, name)
                elif act == "clear":
                    bm = im.lookup(name)
                    _check(bm)
                    bm.bits = set()
                elif act in ("enable", "disable"):
                    bm = im.lookup(name)
                    _check(bm, readonly=False)
                    bm.enabled = act == "enable"
                else:
                    _merge(im, name, src_im, src)
            except BitmapError as exc:
                rc = _err(f"Operation {act} on bitmap {name} failed: {exc}")
                break
    finally:
        if src_im is not im:
            src_im.store.close()
        im.close()
    return rc
