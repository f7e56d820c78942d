"""Command line of ``qmpd-img``: qemu-img's create, info, map, compare, check,
bitmap, rebase and resize, and ``io`` (qemu-io).

    qmpd-img create [-q] -f qcow2|raw [-b BACKING [-F FMT]] [-u] [-o opt=val,...] FILE [SIZE]
    qmpd-img io [-f FMT] [-r] FILE -c 'CMD' [-c 'CMD' ...]

Messages and exit codes follow qemu-img / qemu-io of QEMU 7.2.
"""

from __future__ import annotations

import sys

from qmpd.img.bitmap import cmd_bitmap
from qmpd.img.check import run as run_check
from qmpd.img.create import FORMATS, INT64_MAX, CreateError, help_text, img_create, split_options
from qmpd.img.getopt import getopt_long as _getopt_long
from qmpd.img.images import ImageOpenError, open_image
from qmpd.img.inspect import run as run_inspect
from qmpd.img.qemu_io import run_commands
from qmpd.img.rebase import rebase as run_rebase
from qmpd.img.rebase import resize as run_resize
from qmpd.img.sizes import SizeError, parse_size

USAGE = """\
usage: qmpd-img COMMAND [args]

Stand-in for the qemu-img and qemu-io commands qmpd's tests and scenarios use
(QEMU 7.2 output, byte-identical images).

  qmpd-img create [-q] [-f FMT] [-b BACKING [-F BACKING_FMT]] [-u] [-o OPTIONS] FILE [SIZE]
      FMT is qcow2 or raw; SIZE accepts k, M, G, T, P, E suffixes.
      OPTIONS: cluster_size, compat, lazy_refcounts, refcount_bits, extended_l2,
      compression_type, backing_file, backing_fmt, preallocation (off/metadata).
  qmpd-img io [-f FMT] [-r] FILE -c CMD [-c CMD ...]
      CMD is a qemu-io command: read, write, discard, length, map, flush, quit...
  qmpd-img bitmap (--add | --remove | --clear | --enable | --disable | --merge SRC)...
           [-g GRANULARITY] [-b SRC_FILE [-F SRC_FMT]] [-f FMT] FILE BITMAP
      persistent bitmaps of a qcow2 image, as qemu-img bitmap.
  qmpd-img info [-f FMT] [--output=human|json] [--backing-chain] FILE
  qmpd-img map [-f FMT] [--output=human|json] FILE
  qmpd-img compare [-f FMT] [-F FMT] [-s] [-q] FILE1 FILE2
  qmpd-img check [-f FMT] [--output=human|json] [-q] FILE
      consistency of a qcow2 image, as qemu-img check (no repairs).
  qmpd-img rebase [-f FMT] [-q] [-U] [-u] [-b BACKING] [-F BACKING_FMT] FILE
      a new backing file; without -u the data that would change is copied first.
  qmpd-img resize [-f FMT] [-q] [--shrink] FILE [+|-]SIZE

Supported formats: qcow2 raw (qmpd itself also opens blkdebug blkverify compress
copy-on-read file null-aio null-co preallocate quorum throttle)
"""


# bdrv_parse_cache_mode's names (qmpd-img does its I/O the same way for all).
CACHE_MODES = ("none", "off", "directsync", "writeback", "unsafe", "writethrough")


def _img_error(text: str) -> int:
    sys.stderr.write(f"qemu-img: {text}\nTry 'qemu-img --help' for more information\n")
    return 1


def _wants_usage(opts: list[tuple[str, str]]) -> bool:
    """-h anywhere prints the usage and ends the command (nothing else the
    options say has been acted on yet).  Of the other options, a repeated
    one counts as its last occurrence, as getopt loops leave it."""
    if any(key == "h" for key, _ in opts):
        sys.stdout.write(USAGE)
        return True
    return False


def cmd_create(argv: list[str]) -> int:
    try:
        opts, operands = _getopt_long(argv, "F:b:f:ho:qu", {"help": "h", "object": "O:"})
    except ValueError as exc:
        return _img_error(str(exc))
    if _wants_usage(opts):
        return 0
    last = dict(opts)
    fmt = last.get("f", "raw")
    backing, backing_fmt = last.get("b"), last.get("F")
    options = [value for key, value in opts if key == "o"]
    quiet, unsafe = "q" in last, "u" in last
    if any(key in ("help", "?") for o in options for key, _ in split_options(o)):
        if fmt not in FORMATS:
            sys.stderr.write(f"qemu-img: Unknown file format '{fmt}'\n")
            return 1
        sys.stdout.write(help_text(fmt, bool(operands)))
        return 0
    if not operands:
        return _img_error("Expecting image file name")
    filename = operands[0]
    size_text: str | None = None
    if len(operands) >= 2:
        try:
            size = parse_size(operands[1])
        except SizeError:
            size = -1
        if size < 0 or size > INT64_MAX:
            if size > INT64_MAX:
                sys.stderr.write("qemu-img: Invalid image size specified. Must be between "
                                 f"0 and {INT64_MAX}.\n")
            else:
                sys.stderr.write(
                    "qemu-img: Invalid image size specified. You may use k, M, G, T, P or "
                    "E suffixes for\nqemu-img: kilobytes, megabytes, gigabytes, terabytes, "
                    "petabytes and exabytes.\n")
            return 1
        size_text = str(size)
    if len(operands) > 2:
        return _img_error(f"Unexpected argument: {operands[2]}")
    try:
        img_create(filename, fmt, size_text, backing=backing, backing_fmt=backing_fmt,
                   unsafe=unsafe, options=options, quiet=quiet)
    except CreateError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"qemu-img: {filename}: {exc.text}\n{exc.hint}")
        return 1
    return 0


def cmd_io(argv: list[str]) -> int:
    try:
        opts, operands = _getopt_long(
            argv, "hc:d:f:rsnCmkt:i:o:TUq",
            {"cmd": "c:", "format": "f:", "read-only": "r", "help": "h",
             "force-share": "U", "image-opts": "o", "cache": "t:", "discard": "d:",
             "aio": "i:", "snapshot": "s", "native-aio": "k", "misalign": "m",
             "copy-on-read": "C", "nocache": "n", "trace": "T:", "object": "O:"})
    except ValueError as exc:
        sys.stderr.write(f"qemu-io: {exc}\nTry 'qemu-io --help' for more information\n")
        return 1
    if _wants_usage(opts):
        return 0
    last = dict(opts)
    fmt = last.get("f")
    if "o" in last or "O" in last:
        sys.stderr.write("qmpd-img io: --image-opts and --object are not supported\n")
        return 1
    if last.get("t", "writeback") not in CACHE_MODES:
        sys.stderr.write(f"qemu-io: Invalid cache option: {last['t']}\n")
        return 1
    read_only = "r" in last
    unmap = last.get("d", "unmap") in ("on", "unmap")
    commands = [value for key, value in opts if key == "c"]
    if len(operands) > 1:
        sys.stderr.write("qemu-io: too many arguments\nTry 'qemu-io --help' for more "
                         "information\n")
        return 1
    if not operands:
        sys.stderr.write("qmpd-img io: an image file is required\n")
        return 1
    path = operands[0]
    force_share = "U" in last
    if force_share and not read_only:
        sys.stderr.write(f"qemu-io: can't open device {path}: force-share=on can only be "
                         "used with read-only images\n")
        return 1
    try:
        opened = open_image(path, fmt, read_only=read_only, unmap=unmap,
                            force_share=force_share)
    except ImageOpenError as exc:
        sys.stderr.write(f"qemu-io: can't open device {path}: {exc}\n")
        return 1
    for warning in opened.warnings:
        sys.stderr.write(warning)
    top = opened.top
    try:
        ok = run_commands(top, commands)
    finally:
        opened.close()
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0 if args else 1
    cmd, rest = args[0], args[1:]
    if cmd == "create":
        return cmd_create(rest)
    if cmd in ("io", "qemu-io"):
        return cmd_io(rest)
    if cmd == "bitmap":
        return cmd_bitmap(rest, _getopt_long)
    if cmd in ("info", "map", "compare", "check", "rebase", "resize"):
        if cmd == "check":
            status, out, err = run_check(rest)
        elif cmd == "rebase":
            status, out, err = run_rebase(rest)
        elif cmd == "resize":
            status, out, err = run_resize(rest)
        else:
            status, out, err = run_inspect(cmd, rest)
        # qemu-img reports errors at once on stderr; its stdout (a pipe under
        # test) comes out at exit: the same order in a combined stream.
        sys.stderr.write(err)
        sys.stderr.flush()
        sys.stdout.write(out)
        return status
    sys.stderr.write(f"qmpd-img: unknown command '{cmd}'\n{USAGE}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
