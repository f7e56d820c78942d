"""``qmpd-img info``, ``map`` and ``compare``: qemu-img's inspection commands.

Output as QEMU 7.2's qemu-img prints it (checked against recorded outputs in
tests/img/data/inspect), for qcow2 (with backing chains) and raw images:

* ``info [-f FMT] [--output=human|json] [--backing-chain] [-U] FILE``:
  bdrv_image_info_dump / the ImageInfo JSON, whose keys come in QDict
  (hash table) order as qemu-img's JSON does;
* ``map [-f FMT] [--output=human|json] [-U] FILE``: the block status of every
  range, merged as img_map merges it;
* ``compare [-f FMT] [-F FMT] [-s] [-q] [-U] FILE1 FILE2``: guest contents,
  exit status 0 (identical), 1 (different) or 2 (error).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

from qmpd.img.create import full_backing_name
from qmpd.img.getopt import getopt_long
from qmpd.img.images import (
    ImageOpenError,
    OpenedImage,
    Qcow2Adapter,
    RawImage,
    display_name,
    open_image,
)
from qmpd.qcow2.entries import subcluster_type
from qmpd.qcow2.spec import (
    L2E_OFFSET_MASK,
    SC_COMPRESSED,
    SC_NORMAL,
    SC_UNALLOC_ALLOC,
    SC_ZERO_ALLOC,
    SC_ZERO_PLAIN,
)
from qmpd.qobject import key_order

_SUFFIXES = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def size_to_str(val: int) -> str:
    """util/cutils.c size_to_str: three significant digits and a binary suffix."""
    _, exp = math.frexp(val / (1000.0 / 1024.0))
    i = (exp - 1) // 10
    i = max(0, min(i, len(_SUFFIXES) - 1))
    return f"{_g3(val / (1 << (i * 10)))} {_SUFFIXES[i]}"


def _g3(x: float) -> str:
    return format(x, ".3g")


def _hex(v: int) -> str:
    """printf's %#x: no 0x prefix for zero."""
    return "0" if v == 0 else f"{v:#x}"


def _ordered(d: dict[str, Any]) -> dict[str, Any]:
    """A dict in the order qemu-img's QDict prints it (keys inserted in ``d``'s order)."""
    return {k: _ordered(d[k]) if isinstance(d[k], dict) else d[k]
            for k in key_order(list(d))}


def _pretty(obj: Any) -> str:
    return json.dumps(obj, indent=4, ensure_ascii=False)


# ---------------------------------------------------------------------------
# info

@dataclass
class _Chain:
    """An opened image and the path/format of each layer, top first."""

    opened: OpenedImage
    layers: list[tuple[str, Any]]     # (path as named, image object)


def _layers(path: str, opened: OpenedImage) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    img: Any = opened.top
    name = path
    while img is not None:
        out.append((name, img))
        if isinstance(img, Qcow2Adapter) and img.chain:
            bname = img.image.backing_file or ""
            name = full_backing_name(name, bname)
            img = img.chain[0]
        else:
            img = None
    return out


def _image_info(name: str, img: Any) -> dict[str, Any]:
    """ImageInfo members in the order the visitor inserts them."""
    info: dict[str, Any] = {"filename": name, "format": img.fmt}
    try:
        actual = os.stat(name).st_blocks * 512
    except OSError:
        actual = None
    if isinstance(img, Qcow2Adapter):
        im = img.image
        hdr = im.header
        info["dirty-flag"] = bool(hdr.dirty)
        if actual is not None:
            info["actual-size"] = actual
        info["virtual-size"] = im.virtual_size
        info["cluster-size"] = im.geo.cluster_size
        if im.backing_file:
            info["backing-filename"] = im.backing_file
            full = full_backing_name(name, im.backing_file)
            info["full-backing-filename"] = full
            if im.backing_format:
                info["backing-filename-format"] = im.backing_format
        data: dict[str, Any] = {"compat": hdr.compat}
        if hdr.version >= 3:
            data["extended-l2"] = bool(hdr.extended_l2)
            data["lazy-refcounts"] = bool(hdr.lazy_refcounts)
            data["corrupt"] = bool(hdr.corrupt)
        data["refcount-bits"] = hdr.refcount_bits
        data["compression-type"] = hdr.compression_type
        info["format-specific"] = {"type": "qcow2", "data": data}
    else:
        info["dirty-flag"] = False
        if actual is not None:
            info["actual-size"] = actual
        info["virtual-size"] = img.length()
    return info


def _human_info(info: dict[str, Any]) -> str:
    lines = [f"image: {info['filename']}", f"file format: {info['format']}",
             f"virtual size: {size_to_str(info['virtual-size'])} "
             f"({info['virtual-size']} bytes)",
             "disk size: " + (size_to_str(info["actual-size"]) if "actual-size" in info
                              else "unavailable")]
    if "cluster-size" in info:
        lines.append(f"cluster_size: {info['cluster-size']}")
    if "backing-filename" in info:
        b, full = info["backing-filename"], info.get("full-backing-filename")
        lines.append(f"backing file: {b}" + (f" (actual path: {full})"
                                             if full and full != b else ""))
        if "backing-filename-format" in info:
            lines.append(f"backing file format: {info['backing-filename-format']}")
    fs = info.get("format-specific")
    if fs is not None:
        lines.append("Format specific information:")
        for k, v in _ordered(fs["data"]).items():
            val = ("true" if v else "false") if isinstance(v, bool) else str(v)
            lines.append(f"    {k.replace('-', ' ')}: {val}")
    return "\n".join(lines) + "\n"


def cmd_info(path: str, fmt: str | None, output: str, backing_chain: bool,
             force_share: bool = False) -> tuple[int, str]:
    # collect_image_info_list opens the image with BDRV_O_NO_BACKING: its
    # backing file is opened (and must exist) only for --backing-chain.
    opened = open_image(path, fmt, read_only=True, no_backing=not backing_chain,
                        force_share=force_share)
    try:
        layers = _layers(display_name(path), opened)
        if not backing_chain:
            layers = layers[:1]
        infos = [_image_info(n, i) for n, i in layers]
    finally:
        opened.close()
    if output == "json":
        objs = [_ordered(i) for i in infos]
        return 0, _pretty(objs if backing_chain else objs[0]) + "\n"
    return 0, "\n".join(_human_info(i) for i in infos)


# ---------------------------------------------------------------------------
# map

def _subclusters(im: Any, offset: int, end: int) -> tuple[str, int, int]:
    """(subcluster type, run length, host offset) of the run at ``offset``."""
    geo = im.geo
    cs, scs = geo.cluster_size, geo.subcluster_size

    def at(pos: int) -> tuple[str, int]:
        entry, bitmap = im.tables.lookup(pos)
        t = subcluster_type(geo, entry, bitmap, (pos & (cs - 1)) // scs)
        host = (entry & L2E_OFFSET_MASK) + (pos & (cs - 1))
        return t, host

    kind, host = at(offset)
    pos = min(end, (offset // scs + 1) * scs)
    while pos < end and kind != SC_COMPRESSED:
        k, h = at(pos)
        if k != kind or (kind in _WITH_OFFSET and h != host + (pos - offset)):
            break
        pos = min(end, pos + scs)
    return kind, pos - offset, host


_WITH_OFFSET = (SC_NORMAL, SC_ZERO_ALLOC, SC_UNALLOC_ALLOC)


def _status(layers: list[tuple[str, Any]], offset: int, end: int
            ) -> tuple[int, dict[str, Any]]:
    """img_map's get_block_status at ``offset``: (length, entry).

    Down the chain until a layer says data or zero (a layer without a
    backing file says zero for what it does not allocate)."""
    length = end - offset
    last = len(layers) - 1
    for depth, (name, img) in enumerate(layers):
        if isinstance(img, Qcow2Adapter):
            im = img.image
            if offset >= im.virtual_size:
                return length, {"depth": depth, "present": False, "zero": True,
                                "data": False}
            kind, n, host = _subclusters(im, offset, min(end, im.virtual_size))
            length = min(length, n)
            e: dict[str, Any] = {"depth": depth}
            if kind == SC_NORMAL:
                e.update(present=True, zero=False, data=True)
            elif kind == SC_COMPRESSED:
                e.update(present=True, zero=False, data=True)
            elif kind in (SC_ZERO_PLAIN, SC_ZERO_ALLOC):
                e.update(present=True, zero=True, data=False)
            elif depth == last or offset >= layers[depth + 1][1].length():
                # Unallocated with no backing file, or past the backing
                # file's end: bdrv_co_block_status says zero at this depth.
                e.update(present=False, zero=True, data=False)
            else:
                continue
            if kind in _WITH_OFFSET:
                e.update(offset=host, filename=name)
            return length, e
        # raw over a file: guest offset is the file offset; holes read as zeroes.
        size = img.length()
        if offset >= size:
            return length, {"depth": depth, "present": False, "zero": True, "data": False}
        n, hole = img.store.extent(offset, min(end, size) - offset)
        return min(length, n), {"depth": depth, "present": True, "zero": hole,
                                "data": not hole, "offset": offset, "filename": name}
    return length, {"depth": last, "present": False, "zero": True, "data": False}


def _mergeable(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if any(a[k] != b[k] for k in ("depth", "present", "zero", "data")):
        return False
    if ("offset" in a) != ("offset" in b) or a.get("filename") != b.get("filename"):
        return False
    return "offset" not in a or a["offset"] + a["length"] == b["offset"]


def map_entries(layers: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    size = layers[0][1].length()
    out: list[dict[str, Any]] = []
    pos = 0
    while pos < size:
        n, e = _status(layers, pos, size)
        n = max(n, 1)
        e = {"start": pos, "length": n, **e}
        if out and _mergeable(out[-1], e):
            out[-1]["length"] += n
        else:
            out.append(e)
        pos += n
    return out


def cmd_map(path: str, fmt: str | None, output: str,
            force_share: bool = False) -> tuple[int, str, str]:
    opened = open_image(path, fmt, read_only=True, force_share=force_share)
    try:
        entries = map_entries(_layers(path, opened))
    finally:
        opened.close()
    if output == "json":
        parts = []
        for e in entries:
            s = (f'{{ "start": {e["start"]}, "length": {e["length"]}, "depth": {e["depth"]},'
                 f' "present": {_b(e["present"])}, "zero": {_b(e["zero"])},'
                 f' "data": {_b(e["data"])}')
            if "offset" in e:
                s += f', "offset": {e["offset"]}'
            parts.append(s + "}")
        return 0, "[" + ",\n".join(parts) + "]\n", ""
    lines = ["Offset          Length          Mapped to       File"]
    for e in entries:
        if e["data"] and "offset" not in e:
            return 1, "\n".join(lines) + "\n", \
                "qemu-img: File contains external, encrypted or compressed clusters.\n"
        if e["data"] and not e["zero"]:
            lines.append(f"{_hex(e['start']):<16}{_hex(e['length']):<16}"
                         f"{_hex(e.get('offset', 0)):<16}{e.get('filename', '')}")
    return 0, "\n".join(lines) + "\n", ""


def _b(v: bool) -> str:
    return "true" if v else "false"


# ---------------------------------------------------------------------------
# compare

SECTOR = 512
CHUNK = 1 << 20


def _first_diff(a: bytes, b: bytes) -> int | None:
    if a == b:
        return None
    for i in range(0, len(a), SECTOR):
        if a[i:i + SECTOR] != b[i:i + SECTOR]:
            return i
    return 0


def _first_nonzero(a: bytes) -> int | None:
    if not a.strip(b"\0"):
        return None
    for i in range(0, len(a), SECTOR):
        if a[i:i + SECTOR].strip(b"\0"):
            return i
    return 0


def cmd_compare(path1: str, path2: str, fmt1: str | None, fmt2: str | None,
                strict: bool, force_share: bool = False) -> tuple[int, str, str]:
    try:
        o1 = open_image(path1, fmt1, read_only=True, force_share=force_share)
    except ImageOpenError as e:
        return 2, "", f"qemu-img: Could not open '{path1}': {e}\n"
    try:
        o2 = open_image(path2, fmt2, read_only=True, force_share=force_share)
    except ImageOpenError as e:
        o1.close()
        return 2, "", f"qemu-img: Could not open '{path2}': {e}\n"
    try:
        a, b = o1.top, o2.top
        s1, s2 = a.length(), b.length()
        if strict and s1 != s2:
            return 1, "Strict mode: Image size mismatch!\n", ""
        common = min(s1, s2)
        pos = 0
        while pos < common:
            n = min(CHUNK, common - pos)
            d = _first_diff(a.read(pos, n), b.read(pos, n))
            if d is not None:
                return 1, f"Content mismatch at offset {pos + d}!\n", ""
            pos += n
        out = ""
        if s1 != s2:
            longer = a if s1 > s2 else b
            pos, end = common, max(s1, s2)
            while pos < end:
                n = min(CHUNK, end - pos)
                d = _first_nonzero(longer.read(pos, n))
                if d is not None:
                    return 1, f"Content mismatch at offset {pos + d}!\n", ""
                pos += n
            out = "Warning: Image size mismatch!\n"
        return 0, out + "Images are identical.\n", ""
    finally:
        o1.close()
        o2.close()


__all__ = ["cmd_info", "cmd_map", "cmd_compare", "size_to_str", "map_entries", "RawImage"]


# ---------------------------------------------------------------------------
# command lines (qemu-img's getopt strings)

def _opts(argv: list[str], short: str, long: dict[str, str]
          ) -> tuple[list[tuple[str, str]], list[str]] | str:
    try:
        return getopt_long(argv, short, long)
    except ValueError as exc:
        return str(exc)


def _usage_error(text: str) -> tuple[int, str, str]:
    return 1, "", f"qemu-img: {text}\nTry 'qemu-img --help' for more information\n"


def run(command: str, argv: list[str]) -> tuple[int, str, str]:
    """``qmpd-img info|map|compare ARGS`` -> (status, stdout, stderr)."""
    if command == "compare":
        parsed = _opts(argv, "hf:F:T:pqsU", {"help": "h", "object": "O:",
                                            "image-opts": "o", "force-share": "U"})
    else:
        parsed = _opts(argv, "f:hU", {"help": "h", "format": "f:", "output": "o:",
                                      "backing-chain": "b", "force-share": "U",
                                      "object": "O:", "image-opts": "i", "start-offset": "s:",
                                      "max-length": "l:"})
    if isinstance(parsed, str):
        return _usage_error(parsed)
    opts, operands = parsed
    # A later option overrides an earlier one, as with qemu-img's getopt loop.
    given = dict(opts)
    if command == "compare":
        if len(operands) != 2:
            return _usage_error("Expecting two image file names")
        rc, out, err = cmd_compare(operands[0], operands[1], given.get("f"), given.get("F"),
                                   "s" in given, "U" in given)
        return rc, "" if "q" in given else out, err
    output = given.get("o", "human")
    if output not in ("human", "json"):
        return 1, "", "qemu-img: --output must be used with human or json as argument.\n"
    if len(operands) != 1:
        return _usage_error("Expecting one image file name")
    path = operands[0]
    try:
        if command == "info":
            rc, out = cmd_info(path, given.get("f"), output, "b" in given, "U" in given)
            return rc, out, ""
        return cmd_map(path, given.get("f"), output, "U" in given)
    except ImageOpenError as e:
        # bdrv_open's message, prefixed once more by img_open's own.
        return 1, "", f"qemu-img: Could not open '{path}': {e}\n"
