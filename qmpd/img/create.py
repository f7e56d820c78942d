"""``qmpd-img create``: qemu-img create for the qcow2 and raw formats.

The flow, option printing order and messages follow QEMU 7.2's
bdrv_img_create() and the qcow2/raw create drivers; the bytes written come
from :func:`qmpd.qcow2.create_qcow2`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from qmpd.img.images import ImageOpenError, has_protocol, open_image
from qmpd.img.sizes import SizeError, parse_size
from qmpd.qcow2 import Qcow2FormatError, create_qcow2

INT64_MAX = 2**63 - 1
SIZE_HELP = (
    "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n"
    "and exabytes, respectively."
)

# Option kinds: size, number, bool, str.  The order is the order qemu-img
# prints them in ("Formatting ..." line); ``default`` is printed when unset.
QCOW2_OPTS: list[tuple[str, str, str | None]] = [
    ("cluster_size", "size", "65536"),
    ("extended_l2", "bool", "off"),
    ("preallocation", "str", None),
    ("compression_type", "str", "zlib"),
    ("size", "size", None),
    ("compat", "str", None),
    ("backing_file", "str", None),
    ("backing_fmt", "str", None),
    ("data_file", "str", None),
    ("data_file_raw", "bool", None),
    ("encryption", "bool", None),
    ("encrypt.format", "str", None),
    ("lazy_refcounts", "bool", "off"),
    ("refcount_bits", "number", "16"),
    ("nocow", "bool", None),
    ("extent_size_hint", "size", None),
]
RAW_OPTS: list[tuple[str, str, str | None]] = [
    ("size", "size", None),
    ("nocow", "bool", None),
    ("preallocation", "str", None),
    ("extent_size_hint", "size", None),
]
FORMATS = {"qcow2": QCOW2_OPTS, "raw": RAW_OPTS}
_TRUE = ("on", "yes", "true", "y")
_FALSE = ("off", "no", "false", "n")


_HELP = {
    "backing_file": ("<str>", "File name of a base image"),
    "backing_fmt": ("<str>", "Image format of the base image"),
    "cluster_size": ("<size>", "qcow2 cluster size"),
    "compat": ("<str>", "Compatibility level (v2 [0.10] or v3 [1.1])"),
    "compression_type": ("<str>", "Compression method used for image cluster compression"),
    "data_file": ("<str>", "File name of an external data file"),
    "data_file_raw": ("<bool (on/off)>",
                      "The external data file must stay valid as a raw image"),
    "encrypt.cipher-alg": ("<str>", "Name of encryption cipher algorithm"),
    "encrypt.cipher-mode": ("<str>", "Name of encryption cipher mode"),
    "encrypt.format": ("<str>", "Encrypt the image, format choices: 'aes', 'luks'"),
    "encrypt.hash-alg": ("<str>", "Name of encryption hash algorithm"),
    "encrypt.iter-time": ("<num>", "Time to spend in PBKDF in milliseconds"),
    "encrypt.ivgen-alg": ("<str>", "Name of IV generator algorithm"),
    "encrypt.ivgen-hash-alg": ("<str>", "Name of IV generator hash algorithm"),
    "encrypt.key-secret": ("<str>", "ID of secret providing qcow AES key or LUKS passphrase"),
    "encryption": ("<bool (on/off)>", "Encrypt the image with format 'aes'. (Deprecated in "
                   "favor of encrypt.format=aes)"),
    "extended_l2": ("<bool (on/off)>", "Extended L2 tables"),
    "extent_size_hint": ("<size>", "Extent size hint for the image file, 0 to disable"),
    "lazy_refcounts": ("<bool (on/off)>", "Postpone refcount updates"),
    "nocow": ("<bool (on/off)>", "Turn off copy-on-write (valid only on btrfs)"),
    "preallocation": ("<str>", "Preallocation mode (allowed values: off, metadata, falloc, "
                      "full)"),
    "refcount_bits": ("<num>", "Width of a reference count entry in bits"),
    "size": ("<size>", "Virtual disk size"),
}
_FILE_PREALLOC = ("<str>", "Preallocation mode (allowed values: off, falloc, full)")
_HELP_KEYS = {
    "qcow2": [k for k in _HELP if k not in ("extent_size_hint", "nocow")],
    "raw": ["size"],
}
_FILE_KEYS = ["extent_size_hint", "nocow", "preallocation", "size"]


def help_text(fmt: str, with_protocol: bool) -> str:
    """What ``qemu-img create -f FMT -o help [FILE]`` prints."""
    keys = list(_HELP_KEYS[fmt])
    if with_protocol:
        keys = sorted(set(keys) | set(_FILE_KEYS))
    lines = []
    for key in keys:
        kind, text = _HELP[key]
        if key == "preallocation" and fmt == "raw":
            kind, text = _FILE_PREALLOC
        lines.append(f"  {f'{key}={kind}':<22} - {text}\n")
    if with_protocol:
        return "Supported options:\n" + "".join(lines)
    return (f"Supported {fmt} options:\n" + "".join(lines) +
            "\nThe protocol level may support further options.\n"
            "Specify the target filename to include those options.\n")


class CreateError(Exception):
    """An error qemu-img reports as ``qemu-img: FILE: <text>``."""

    def __init__(self, text: str, hint: str = "") -> None:
        super().__init__(text)
        self.text = text
        self.hint = hint


@dataclass
class Opt:
    """One -o option as given: its text and parsed value."""

    text: str
    value: int | bool | str


def split_options(text: str) -> list[tuple[str, str]]:
    """qemu_opts_do_parse: comma separated key=value, ',,' escapes a comma."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        buf = ""
        while i < len(text):
            if text[i] == ",":
                if text[i + 1 : i + 2] == ",":
                    buf += ","
                    i += 2
                    continue
                break
            buf += text[i]
            i += 1
        i += 1
        if not buf:
            continue
        key, sep, value = buf.partition("=")
        out.append((key, value if sep else "on"))
    return out


def parse_opt(name: str, kind: str, text: str) -> int | bool | str:
    if kind == "size":
        try:
            return parse_size(text)
        except SizeError:
            raise CreateError(
                f"Parameter '{name}' expects a non-negative number below 2^64\n{SIZE_HELP}"
            ) from None
    if kind == "number":
        try:
            return int(text, 0)
        except ValueError:
            raise CreateError(f"Parameter '{name}' expects a number") from None
    if kind == "bool":
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise CreateError(f"Parameter '{name}' expects 'on' or 'off'")
    return text


def format_line(filename: str, fmt: str, opts: dict[str, Opt]) -> str:
    parts = []
    for name, kind, default in FORMATS[fmt]:
        if name in opts:
            opt = opts[name]
            value = str(opt.value) if kind in ("size", "number") else opt.text
            if kind == "str":
                # qemu_opts_print's escaped_print: a comma in a string is doubled
                value = value.replace(",", ",,")
        elif default is not None:
            value = default
        else:
            continue
        parts.append(f"{name}={value}")
    return f"Formatting '{filename}', fmt={fmt} " + " ".join(parts)


def full_backing_name(filename: str, backing: str) -> str:
    """bdrv_get_full_backing_filename_from_filename: protocol names
    (``null-co://``, ``blkdebug:...``) and absolute paths as they are, others
    relative to the directory of the image naming them."""
    if os.path.isabs(backing) or has_protocol(backing) or not os.path.dirname(filename):
        return backing
    return os.path.join(os.path.dirname(filename), backing)


def img_create(
    filename: str,
    fmt: str,
    size_text: str | None,
    *,
    backing: str | None = None,
    backing_fmt: str | None = None,
    unsafe: bool = False,
    options: list[str] | None = None,
    quiet: bool = False,
    out: Callable[[str], None] | None = None,
) -> None:
    """Create an image; raises CreateError (prefix ``FILE: ``) on failure."""
    if fmt not in FORMATS:
        raise CreateError(f"Unknown file format '{fmt}'")
    known = {name: kind for name, kind, _ in FORMATS[fmt]}
    opts: dict[str, Opt] = {}
    for text in options or []:
        for key, value in split_options(text):
            if key not in known:
                raise CreateError(f"Invalid parameter '{key}'")
            opts[key] = Opt(value, parse_opt(key, known[key], value))
    img_size: int | None = None
    if size_text is not None:
        img_size = int(size_text)
    if "size" in opts and img_size is not None:
        raise CreateError("The image size must be specified only once")
    if backing is not None:
        if "backing_file" not in known:
            raise CreateError(f"Backing file not supported for file format '{fmt}'")
        opts["backing_file"] = Opt(backing, backing)
    if backing_fmt is not None:
        if "backing_fmt" not in known:
            raise CreateError(f"Backing file format not supported for file format '{fmt}'")
        opts["backing_fmt"] = Opt(backing_fmt, backing_fmt)
    bfile = opts["backing_file"].text if "backing_file" in opts else None
    bfmt = opts["backing_fmt"].text if "backing_fmt" in opts else None
    if bfile is not None:
        if bfile == filename:
            raise CreateError(
                "Error: Trying to create an image with the same filename as the backing file")
        if bfile == "":
            raise CreateError("Expected backing file name, got empty string")
    size = opts["size"].value if "size" in opts else img_size
    if bfile is not None and not unsafe:
        full = full_backing_name(filename, bfile)
        try:
            opened = open_image(full, bfmt, read_only=True, size_only=True)
        except ImageOpenError as exc:
            raise CreateError(str(exc), "Could not open backing image.\n") from None
        try:
            if bfmt is None:
                raise CreateError("Backing file specified without backing format",
                                  f"Detected format of {opened.top.fmt}.")
            if size is None:
                size = opened.top.length()
                opts["size"] = Opt(str(size), size)
        finally:
            opened.close()
    elif bfile is not None and bfmt is None:
        raise CreateError("Backing file specified without backing format")
    if size is None:
        raise CreateError("Image creation needs a size parameter")
    assert isinstance(size, int)
    if "size" not in opts:
        opts["size"] = Opt(str(size), size)
    if not quiet:
        (out or sys.stdout.write)(format_line(filename, fmt, opts) + "\n")
        sys.stdout.flush()
    if fmt == "raw":
        data_size = -(-size // 512) * 512
        prealloc = opts["preallocation"].text if "preallocation" in opts else "off"
        if prealloc not in ("off", "falloc", "full"):
            raise CreateError(f"Parameter 'preallocation' does not accept value '{prealloc}'")
        fd = _create_file(filename)
        try:
            os.ftruncate(fd, 0)
            os.ftruncate(fd, data_size)
            if prealloc == "full" and data_size:
                os.pwrite(fd, bytes(data_size), 0)
            elif prealloc == "falloc" and data_size:
                os.posix_fallocate(fd, 0, data_size)
            elif data_size:
                # file-posix allocate_first_block(): the first block holds
                # written zeros, which block status reports as data.
                os.pwrite(fd, bytes(512 if data_size < 4096 else 4096), 0)
        finally:
            os.close(fd)
        return
    data = _qcow2_bytes(opts, size, bfile, bfmt)
    fd = _create_file(filename)
    try:
        os.ftruncate(fd, 0)
        prealloc = opts["preallocation"].text if "preallocation" in opts else "off"
        if prealloc == "off":
            _write_sparse(fd, data)
        else:
            _write_nonzero(fd, data, prealloc)
    finally:
        os.close(fd)


def _create_file(filename: str) -> int:
    try:
        return os.open(filename, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise CreateError(
            f"Could not create '{filename}': {os.strerror(exc.errno or 0)}") from None


def _write_sparse(fd: int, data: bytes) -> None:
    """Write every byte of the image, zero-filled clusters included.

    qemu-img writes whole zero-filled metadata clusters (header, refcount
    table and block, L1/L2 tables), so those blocks are allocated on disk and
    count in ``actual-size``; writing only non-zero blocks would leave holes
    qemu-img does not leave (e.g. 3 x 512 KiB clusters with cluster_size=512k).
    """
    block = 1 << 20
    view = memoryview(data)
    for off in range(0, len(data), block):
        os.pwrite(fd, view[off : off + block], off)
    os.ftruncate(fd, len(data))


def _write_nonzero(fd: int, data: bytes, prealloc: str) -> None:
    """Preallocated images: data clusters stay holes (metadata) or are
    allocated without being written (falloc), as qemu-img leaves them."""
    block = 65536
    for off in range(0, len(data), block):
        chunk = data[off : off + block]
        if chunk.count(0) != len(chunk):
            os.pwrite(fd, chunk, off)
    os.ftruncate(fd, len(data))
    if prealloc in ("falloc", "full") and data:
        os.posix_fallocate(fd, 0, len(data))


def _qcow2_bytes(opts: dict[str, Opt], size: int, bfile: str | None,
                 bfmt: str | None) -> bytes:
    def get(name: str, default: object) -> object:
        return opts[name].value if name in opts else default

    compat = str(get("compat", "1.1"))
    if compat not in ("0.10", "1.1", "v2", "v3"):
        raise CreateError(f"Parameter 'version' does not accept value '{compat}'")
    prealloc = str(get("preallocation", "off"))
    if prealloc not in ("off", "metadata", "falloc", "full"):
        raise CreateError(f"Parameter 'preallocation' does not accept value '{prealloc}'")
    ctype = str(get("compression_type", "zlib"))
    if ctype not in ("zlib", "zstd"):
        raise CreateError(f"Parameter 'compression-type' does not accept value '{ctype}'")
    if bfmt is not None and bfmt not in ("qcow2", "raw", "qcow", "vmdk", "vdi", "qed",
                                         "vpc", "vhdx", "luks", "file", "null-co",
                                         "blkdebug", "copy-on-read", "throttle"):
        raise CreateError(f"Parameter 'backing-fmt' does not accept value '{bfmt}'")
    if get("encryption", False) or "encrypt.format" in opts:
        raise CreateError("qmpd-img: encrypted images are not supported")
    if "data_file" in opts:
        raise CreateError("qmpd-img: external data files are not supported")
    try:
        return create_qcow2(
            int(size),
            cluster_size=int(get("cluster_size", 65536)),  # type: ignore[call-overload]
            backing_file=bfile,
            backing_format=bfmt,
            compat=compat,
            lazy_refcounts=bool(get("lazy_refcounts", False)),
            refcount_bits=int(get("refcount_bits", 16)),  # type: ignore[call-overload]
            extended_l2=bool(get("extended_l2", False)),
            compression_type=ctype,
            preallocation=prealloc,
            data_file_raw=bool(get("data_file_raw", False)),
        )
    except Qcow2FormatError as exc:
        raise CreateError(exc.desc) from None
