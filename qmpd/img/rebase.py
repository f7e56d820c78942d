"""``qmpd-img rebase`` and ``resize``: qemu-img's commands that change an image's
backing file or size (QEMU 7.2's img_rebase and img_resize).

* ``rebase [-f FMT] [-t CACHE] [-T SRC_CACHE] [-q] [-U] [-u] [-b BACKING] [-F FMT] FILE``:
  without ``-u`` (safe mode) every range the image does not allocate itself
  is compared between the old and the new backing chain, 512 bytes at a
  time, and where they differ the old data is written into the image, so
  the guest sees the same bytes afterwards; then (in both modes) the header
  names the new backing file and format (none with ``-b ''`` or no ``-b``
  under ``-u``).
* ``resize [-f FMT] [-q] [--shrink] FILE [+|-]SIZE``: qcow2 images grow (and
  shrink with ``--shrink``), raw files are truncated.

Messages and exit statuses are qemu-img's; the outputs are checked against
recorded runs of the real tool (tests/img/data/rebase).
"""

from __future__ import annotations

import os

from qmpd.img.create import full_backing_name
from qmpd.img.getopt import getopt_long
from qmpd.img.images import ImageOpenError, OpenedImage, Qcow2Adapter, RawImage, open_image
from qmpd.img.sizes import SizeError, parse_size
from qmpd.qcow2 import CLUSTER_UNALLOCATED, Qcow2FormatError

# img_rebase's IO_BUF_SIZE: the most one step of the safe-mode loop compares.
IO_BUF_SIZE = 2 << 20
SECTOR = 512
# bdrv_find_format: the drivers QEMU 7.2 (Debian's build) knows by name.
KNOWN_FORMATS = frozenset((
    "blkdebug", "blklogwrites", "blkverify", "bochs", "cloop", "compress",
    "copy-before-write", "copy-on-read", "dmg", "file", "ftp", "ftps", "gluster",
    "host_cdrom", "host_device", "http", "https", "iscsi", "iser", "luks", "nbd",
    "nfs", "null-aio", "null-co", "nvme", "parallels", "preallocate", "qcow",
    "qcow2", "qed", "quorum", "raw", "rbd", "replication", "snapshot-access",
    "ssh", "throttle", "vdi", "vhdx", "vmdk", "vpc", "vvfat"))


def _usage_error(text: str) -> tuple[int, str, str]:
    return 1, "", f"qemu-img: {text}\nTry 'qemu-img --help' for more information\n"


def _compare_run(old: bytes, new: bytes, start: int) -> tuple[bool, int]:
    """compare_buffers: whether the first sector from ``start`` differs, and how
    many bytes (whole sectors) on from ``start`` share that answer."""
    end = len(old)
    i = min(end - start, SECTOR)
    differs = old[start:start + i] != new[start:start + i]
    while start + i < end:
        n = min(end - start - i, SECTOR)
        a = start + i
        if (old[a:a + n] != new[a:a + n]) != differs:
            break
        i += n
    return differs, i


def _allocated_run(top: Qcow2Adapter | RawImage, offset: int, n: int) -> tuple[bool, int]:
    """bdrv_is_allocated of the image alone: the state at ``offset`` and how
    far (at most ``n`` bytes) it lasts.  A raw image allocates everything."""
    if not isinstance(top, Qcow2Adapter):
        return True, n
    extents = top.image.map_extents(offset, n)
    first = extents[0]
    allocated = first.kind != CLUSTER_UNALLOCATED
    length = 0
    for ext in extents:
        if (ext.kind != CLUSTER_UNALLOCATED) != allocated:
            break
        length += ext.length
    return allocated, min(length, n)


def _copy_differences(top: Qcow2Adapter | RawImage, old: object | None,
                      new: object | None) -> None:
    """The safe-mode loop of img_rebase: keep the guest's view while the
    backing file changes under it."""
    size = top.length()
    old_size = old.length() if old is not None else 0  # type: ignore[attr-defined]
    new_size = new.length() if new is not None else 0  # type: ignore[attr-defined]
    offset = 0
    while offset < size:
        n = min(IO_BUF_SIZE, size - offset)
        allocated, n = _allocated_run(top, offset, n)
        if allocated:
            offset += n
            continue
        old_is_zero = False
        if offset >= old_size:
            buf_old = bytes(n)
            old_is_zero = True
        else:
            n = min(n, old_size - offset)
            buf_old = old.read(offset, n)  # type: ignore[union-attr]
        if offset >= new_size or new is None:
            buf_new = bytes(n)
        else:
            n = min(n, new_size - offset)
            buf_new = new.read(offset, n)  # type: ignore[attr-defined]
        buf_old, buf_new = buf_old[:n], buf_new[:n]
        written = 0
        while written < n:
            differs, run = _compare_run(buf_old, buf_new, written)
            if differs:
                if old_is_zero:
                    top.write_zeroes(offset + written, run, unmap=False)
                else:
                    top.write(offset + written, buf_old[written:written + run])
            written += run
        offset += n


def rebase(argv: list[str]) -> tuple[int, str, str]:
    """``qmpd-img rebase ARGS`` -> (status, stdout, stderr)."""
    try:
        opts, operands = getopt_long(argv, "hf:F:b:upt:T:qU", {
            "help": "h", "object": "O:", "image-opts": "i", "force-share": "U"})
    except ValueError as exc:
        return _usage_error(str(exc))
    fmt: str | None = None
    out_basefmt: str | None = None
    out_baseimg: str | None = None
    unsafe = False
    for key, value in opts:
        if key == "f":
            fmt = value
        elif key == "F":
            out_basefmt = value
        elif key == "b":
            out_baseimg = value
        elif key == "u":
            unsafe = True
        elif key == "p":
            return 1, "", "qmpd-img: rebase: progress output (-p) is not supported\n"
        elif key in ("O", "i"):
            return 1, "", "qmpd-img: rebase: --object and --image-opts are not supported\n"
    if len(operands) != 1:
        return _usage_error("Expecting one image file name")
    if not unsafe and out_baseimg is None:
        return _usage_error("Must specify backing file (-b) or use unsafe mode (-u)")
    filename = operands[0]
    try:
        opened = open_image(filename, fmt, no_backing=unsafe)
    except ImageOpenError as exc:
        return 1, "", f"qemu-img: Could not open '{filename}': {exc}\n"
    new_opened: OpenedImage | None = None
    try:
        top = opened.top
        if out_basefmt is not None and out_basefmt not in KNOWN_FORMATS:
            return 1, "", f"qemu-img: Invalid format name: '{out_basefmt}'\n"
        if not unsafe:
            old = top.chain[0] if isinstance(top, Qcow2Adapter) and top.chain else None
            new = None
            if out_baseimg:
                path = full_backing_name(filename, out_baseimg)
                try:
                    new_opened = open_image(path, out_basefmt, read_only=True)
                except ImageOpenError as exc:
                    return 1, "", (f"qemu-img: Could not open new backing file "
                                   f"'{out_baseimg}': {exc}\n")
                new = new_opened.top
            try:
                _copy_differences(top, old, new)
            except (OSError, Qcow2FormatError) as exc:
                text = exc.desc if isinstance(exc, Qcow2FormatError) else os.strerror(
                    exc.errno or 0)
                return 1, "", f"qemu-img: Error while writing to COW image: {text}\n"
        return _change_backing_file(top, out_baseimg or None, out_basefmt)
    finally:
        if new_opened is not None:
            new_opened.close()
        opened.close()


def _change_backing_file(top: Qcow2Adapter | RawImage, backing: str | None,
                         backing_fmt: str | None) -> tuple[int, str, str]:
    """bdrv_change_backing_file(require=true) and qemu-img's words for its errors."""
    def failed(why: str) -> tuple[int, str, str]:
        return 1, "", f"qemu-img: Could not change the backing file to '{backing}': {why}\n"

    if not isinstance(top, Qcow2Adapter):
        return failed("Operation not supported")
    if backing is not None and backing_fmt is None:
        return failed("backing format must be specified")
    if backing is not None and len(backing.encode()) > 1023:
        return failed("Invalid argument")
    image = top.image
    image.backing_file = backing
    image.backing_format = backing_fmt if backing is not None else None
    try:
        image.update_header()
    except Qcow2FormatError:
        return 1, "", (f"qemu-img: Could not change the backing file to '{backing}': "
                       "No space left in the file header\n")
    return 0, "", ""


def resize(argv: list[str]) -> tuple[int, str, str]:
    """``qmpd-img resize ARGS`` -> (status, stdout, stderr)."""
    if len(argv) < 2:
        return _usage_error("Not enough arguments")
    # A size like -1G would read as an option: img_resize moves it out of the way.
    if len(argv) >= 1 and argv[-1].startswith("-") and argv[-1][1:2].isdigit():
        argv = argv[:-1] + ["--", argv[-1]]
        if argv.count("--") > 1:
            argv.remove("--")
    try:
        opts, operands = getopt_long(argv, "hf:qU", {
            "help": "h", "object": "O:", "image-opts": "i", "preallocation": "P:",
            "shrink": "S", "force-share": "U"})
    except ValueError as exc:
        return _usage_error(str(exc))
    fmt: str | None = None
    quiet = shrink = False
    for key, value in opts:
        if key == "f":
            fmt = value
        elif key == "q":
            quiet = True
        elif key == "S":
            shrink = True
        elif key == "P" and value != "off":
            return 1, "", "qmpd-img: resize: only --preallocation=off is supported\n"
        elif key in ("O", "i"):
            return 1, "", "qmpd-img: resize: --object and --image-opts are not supported\n"
    if len(operands) != 2:
        return _usage_error("Expecting image file name and size")
    filename, size_text = operands
    relative = size_text[0] if size_text[:1] in ("+", "-") else ""
    try:
        amount = parse_size(size_text[1:] if relative else size_text)
    except SizeError:
        # qemu_opt_set of BLOCK_OPT_SIZE, in QemuOpts' words.
        return 1, "", ("qemu-img: Parameter 'size' expects a non-negative number below 2^64\n"
                       "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, "
                       "peta-\nand exabytes, respectively.\n")
    try:
        opened = open_image(filename, fmt, no_backing=True)
    except ImageOpenError as exc:
        return 1, "", f"qemu-img: Could not open '{filename}': {exc}\n"
    try:
        top = opened.top
        current = top.length()
        total = current + amount if relative == "+" else (
            current - amount if relative == "-" else amount)
        if total < 0:
            return 1, "", "qemu-img: New image size must be positive\n"
        if total < current and not shrink:
            return 1, "", ("qemu-img: Use the --shrink option to perform a shrink operation.\n"
                           "qemu-img: warning: Shrinking an image will delete all data beyond "
                           "the shrunken image's end. Before performing such an operation, make "
                           "sure there is no important data there.\n")
        try:
            _truncate(top, total)
        except OSError as exc:
            return 1, "", f"qemu-img: {exc.strerror or os.strerror(exc.errno or 0)}\n"
        except Qcow2FormatError as exc:
            return 1, "", f"qemu-img: {exc.desc}\n"
    finally:
        opened.close()
    return 0, "" if quiet else "Image resized.\n", ""


def _truncate(top: Qcow2Adapter | RawImage, size: int) -> None:
    if isinstance(top, RawImage):
        top.store.truncate(size)
        return
    if size % SECTOR:
        raise OSError(0, "The new size must be a multiple of 512")
    image = top.image
    if size > image.virtual_size:
        image.truncate_grow(size)
    elif size < image.virtual_size:
        image.truncate_shrink(size)
    for bm in top.bitmaps:
        bm.size = size
