"""Cases and runners shared by the qmpd-img tests and their data generator.

A case is a list of tool invocations (``qemu-img create ...`` / ``qemu-io ...``
argument lists, ``$DIR`` standing for a fresh directory).  Running it with
real QEMU (``gen_img_data.py``) records the exit status, the normalised
output and a sha256 of every file left in the directory; the tests run the
same invocations through ``qmpd-img`` and compare.

Normalisation keeps the records independent of the temp directory: ``$DIR``
replaces the directory in output and in file bytes, and when a qcow2 header
names an absolute backing file its name-length field is zeroed too.  qemu-io
timing lines keep their shape but lose their numbers.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent.parent / "data" / "img"
CREATE_DATA = DATA / "create_checksums.json"
IO_DATA = DATA / "io_checksums.json"

Invocation = list[str]  # ["qemu-img", "create", ...] or ["qemu-io", ...]
Runner = Callable[[Invocation], tuple[int, str, str]]

# --------------------------------------------------------------------- create

SIZES = ["0", "512", "4096", "65536", "1M", "2M", "1G", "1000", "12345", "3145735"]
CLUSTERS = ["512", "4096", "65536", "524288", "2M"]


def create_cases() -> list[dict[str, Any]]:
    """The create matrix: formats x sizes x cluster sizes x options x backing."""
    cases: list[dict[str, Any]] = []

    def add(case_id: str, *steps: Invocation) -> None:
        cases.append({"id": case_id, "steps": [list(s) for s in steps]})

    for size in SIZES:
        add(f"raw-{size}", ["qemu-img", "create", "-f", "raw", "$DIR/disk.img", size])
        for cs in CLUSTERS:
            add(f"qcow2-{size}-cs{cs}", ["qemu-img", "create", "-q", "-f", "qcow2", "-o",
                                         f"cluster_size={cs}", "$DIR/img.qcow2", size])
    add("qcow2-default-1M", ["qemu-img", "create", "-f", "qcow2", "$DIR/img.qcow2", "1M"])
    add("qcow2-size-K", ["qemu-img", "create", "-f", "qcow2", "$DIR/img.qcow2", "64K"])
    add("qcow2-size-k", ["qemu-img", "create", "-f", "qcow2", "$DIR/img.qcow2", "64k"])
    add("qcow2-size-T", ["qemu-img", "create", "-q", "-f", "qcow2", "$DIR/img.qcow2", "1T"])
    add("qcow2-size-frac", ["qemu-img", "create", "-f", "qcow2", "$DIR/img.qcow2", "1.5M"])
    add("qcow2-size-hex", ["qemu-img", "create", "-f", "qcow2", "$DIR/img.qcow2", "0x10000"])
    add("qcow2-size-opt", ["qemu-img", "create", "-f", "qcow2", "-o", "size=2M",
                           "$DIR/img.qcow2"])
    for opts in ["compat=0.10", "compat=1.1", "compat=v2", "lazy_refcounts=on",
                 "refcount_bits=1", "refcount_bits=8", "refcount_bits=64",
                 "extended_l2=on", "extended_l2=on,cluster_size=16k",
                 "compression_type=zstd", "preallocation=off",
                 "preallocation=metadata", "preallocation=metadata,cluster_size=4k",
                 "cluster_size=4k,refcount_bits=2", "compat=0.10,cluster_size=512",
                 "lazy_refcounts=on,cluster_size=2M", "cluster_size=1k,refcount_bits=4",
                 "cluster_size=512,refcount_bits=32"]:
        # Metadata preallocation of 1G takes seconds in Python: 64M shows the same.
        size = "64M" if "preallocation=metadata" in opts else "1G"
        add(f"qcow2-opt-{opts}", ["qemu-img", "create", "-f", "qcow2", "-o", opts,
                                  "$DIR/img.qcow2", size])
    for opts in ["preallocation=falloc", "preallocation=full,cluster_size=4k",
                 "preallocation=metadata,cluster_size=2M", "preallocation=falloc,cluster_size=512",
                 "preallocation=full,extended_l2=on", "preallocation=metadata,extended_l2=on"]:
        for size in ["1000", "3M"]:
            add(f"qcow2-{opts}-{size}", ["qemu-img", "create", "-f", "qcow2", "-o", opts,
                                         "$DIR/img.qcow2", size])
    add("raw-prealloc-full", ["qemu-img", "create", "-f", "raw", "-o", "preallocation=full",
                              "$DIR/disk.img", "100k"])
    add("raw-prealloc-falloc", ["qemu-img", "create", "-f", "raw", "-o",
                                "preallocation=falloc", "$DIR/disk.img", "100k"])
    # Backing files: relative and absolute names, with and without -F, -u.
    base = ["qemu-img", "create", "-q", "-f", "qcow2", "$DIR/base.qcow2", "2M"]
    raw = ["qemu-img", "create", "-q", "-f", "raw", "$DIR/disk.img", "1M"]
    top = ["qemu-img", "create", "-f", "qcow2"]
    add("backing-abs-F", base, top + ["-b", "$DIR/base.qcow2", "-F", "qcow2",
                                      "$DIR/top.qcow2", "1M"])
    add("backing-rel-F", base, top + ["-b", "base.qcow2", "-F", "qcow2",
                                      "$DIR/top.qcow2", "1M"])
    add("backing-rel-F-nosize", base, top + ["-b", "base.qcow2", "-F", "qcow2",
                                             "$DIR/top.qcow2"])
    add("backing-abs-F-nosize", base, top + ["-b", "$DIR/base.qcow2", "-F", "qcow2",
                                             "$DIR/top.qcow2"])
    add("backing-no-F", base, top + ["-b", "$DIR/base.qcow2", "$DIR/top.qcow2", "1M"])
    add("backing-no-F-raw", raw, top + ["-b", "$DIR/disk.img", "$DIR/top.qcow2", "1M"])
    add("backing-raw-F", raw, top + ["-b", "$DIR/disk.img", "-F", "raw",
                                     "$DIR/over-raw.qcow2", "65536"])
    add("backing-raw-F-nosize", raw, top + ["-b", "disk.img", "-F", "raw",
                                            "$DIR/over-raw.qcow2"])
    add("backing-qcow2-as-raw", base, top + ["-b", "base.qcow2", "-F", "raw",
                                             "$DIR/top.qcow2"])
    add("backing-raw-as-qcow2", raw, top + ["-b", "disk.img", "-F", "qcow2",
                                            "$DIR/top.qcow2"])
    add("backing-missing", top + ["-b", "$DIR/gone.qcow2", "-F", "qcow2",
                                  "$DIR/orphan.qcow2", "1M"])
    add("backing-missing-rel", top + ["-b", "gone.qcow2", "-F", "qcow2",
                                      "$DIR/orphan.qcow2", "1M"])
    add("backing-u-missing", top + ["-q", "-u", "-b", "$DIR/gone.qcow2", "-F", "qcow2",
                                    "$DIR/orphan.qcow2", "1M"])
    add("backing-u-missing-rel", top + ["-u", "-b", "gone.qcow2", "-F", "qcow2",
                                        "$DIR/orphan.qcow2", "1M"])
    add("backing-u-abs-fixed", top + ["-u", "-b", "/nonexistent/qmpd/base.qcow2", "-F",
                                      "qcow2", "$DIR/orphan.qcow2", "2M"])
    add("backing-u-no-F", top + ["-u", "-b", "gone.qcow2", "$DIR/orphan.qcow2", "1M"])
    add("backing-u-no-size", top + ["-u", "-b", "gone.qcow2", "-F", "qcow2",
                                    "$DIR/orphan.qcow2"])
    add("backing-chain", base,
        top + ["-q", "-b", "$DIR/base.qcow2", "-F", "qcow2", "$DIR/top.qcow2", "2M"],
        top + ["-b", "$DIR/top.qcow2", "-F", "qcow2", "$DIR/top2.qcow2"])
    add("backing-same-name", top + ["-b", "$DIR/x.qcow2", "-F", "qcow2", "$DIR/x.qcow2",
                                    "1M"])
    add("backing-opt", base, top + ["-o", "backing_file=base.qcow2,backing_fmt=qcow2",
                                    "$DIR/top.qcow2"])
    add("backing-cs4k", base, top + ["-o", "cluster_size=4096", "-b", "base.qcow2", "-F",
                                     "qcow2", "$DIR/top.qcow2", "1M"])
    add("backing-v2", base, top + ["-o", "compat=0.10", "-b", "base.qcow2", "-F",
                                   "qcow2", "$DIR/top.qcow2", "1M"])
    add("backing-prealloc", base, top + ["-o", "preallocation=metadata", "-b",
                                         "base.qcow2", "-F", "qcow2", "$DIR/top.qcow2"])
    add("backing-F-only", top + ["-F", "qcow2", "$DIR/top.qcow2", "1M"])
    add("raw-backing", base, ["qemu-img", "create", "-f", "raw", "-b", "base.qcow2",
                              "$DIR/disk.img", "1M"])
    # Errors qemu-img reports.
    img = ["qemu-img", "create", "-f", "qcow2"]
    add("err-no-size", img + ["$DIR/img.qcow2"])
    add("err-no-file", img)
    add("err-bad-size", img + ["$DIR/img.qcow2", "1Q"])
    add("err-huge-size", img + ["$DIR/img.qcow2", "8E"])
    add("err-extra-arg", img + ["$DIR/img.qcow2", "1M", "2M"])
    add("err-format", ["qemu-img", "create", "-f", "nosuch", "$DIR/img", "1M"])
    add("err-no-dir", img + ["$DIR/nodir/img.qcow2", "1M"])
    for opts in ["cluster_size=3k", "cluster_size=4M", "cluster_size=1x", "compat=2",
                 "foo=bar", "refcount_bits=3", "refcount_bits=x", "lazy_refcounts=maybe",
                 "compat=0.10,lazy_refcounts=on", "compat=0.10,refcount_bits=8",
                 "extended_l2=on,cluster_size=4k", "compat=0.10,extended_l2=on",
                 "compression_type=lz4", "compat=0.10,compression_type=zstd",
                 "preallocation=foo", "size=1M"]:
        add(f"err-opt-{opts}", img + ["-o", opts, "$DIR/img.qcow2", "1M"])
    add("help-qcow2", img + ["-o", "help"])
    add("help-qcow2-file", img + ["-o", "help", "$DIR/img.qcow2"])
    add("help-raw", ["qemu-img", "create", "-f", "raw", "-o", "?"])
    add("help-raw-file", ["qemu-img", "create", "-f", "raw", "-o", "help", "$DIR/d.img", "1M"])
    add("raw-default-fmt", ["qemu-img", "create", "$DIR/disk.img", "1M"])
    add("overwrite", ["qemu-img", "create", "-q", "-f", "raw", "$DIR/x.img", "4M"],
        ["qemu-img", "create", "-f", "qcow2", "$DIR/x.img", "64k"])
    return cases


# --------------------------------------------------------------------- qemu-io


def _qcow2(name: str, size: str, opts: str | None = None) -> Invocation:
    inv = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if opts:
        inv += ["-o", opts]
    return inv + [f"$DIR/{name}", size]


def _io(path: str, *cmds: str, fmt: str = "qcow2") -> Invocation:
    inv = ["qemu-io", "-f", fmt]
    for c in cmds:
        inv += ["-c", c]
    return inv + [path]


def io_cases() -> list[dict[str, Any]]:
    """qemu-io write sequences whose resulting files are compared byte for byte."""
    cases: list[dict[str, Any]] = []

    def add(case_id: str, *steps: Invocation) -> None:
        cases.append({"id": case_id, "steps": [list(s) for s in steps]})

    top = "$DIR/top.qcow2"
    add("write-64k", _qcow2("top.qcow2", "1M"), _io(top, "write -P 0x11 0 64k"))
    add("write-1M-read", _qcow2("top.qcow2", "1M"),
        _io(top, "write -P 0x11 0 1M", "read -P 0x11 0 1M", "read -P 0x22 0 512"))
    add("write-unaligned", _qcow2("top.qcow2", "1M"),
        _io(top, "write -P 0x11 1000 3000", "write -P 0x22 70000 100000", "map",
            "read -v 990 20"))
    for cs in CLUSTERS:
        add(f"write-cs{cs}", _qcow2("top.qcow2", "4M", f"cluster_size={cs}"),
            _io(top, "write -P 0x11 0 1M", "write -P 0x22 512k 1M", "write -P 0x33 3M 100",
                "write -P 0x44 2M-300 600", "map"))
    add("write-cs512-growth", _qcow2("top.qcow2", "64M", "cluster_size=512"),
        _io(top, "write -P 0x11 0 20M", "write -P 0x12 30M 5M", "write -P 1 63M 1M"))
    add("write-cs512-rc64", _qcow2("top.qcow2", "16M", "cluster_size=512,refcount_bits=64"),
        _io(top, "write -P 0x11 0 12M"))
    add("write-cs4k-rc1", _qcow2("top.qcow2", "16M", "cluster_size=4096,refcount_bits=1"),
        _io(top, "write -P 0x11 0 12M", "write -z 12M 8k", "write -z -u 0 8k"))
    add("write-l2-boundary", _qcow2("top.qcow2", "8M", "cluster_size=4096"),
        _io(top, "write -P 0x11 2040k 16k", "write -P 0x22 1M 3M"))
    add("write-4G-sparse", _qcow2("top.qcow2", "4G"),
        _io(top, "write -P 1 0 64k", "write -P 2 512M-32k 64k", "write -P 3 3G 64k", "map"))
    add("zero", _qcow2("top.qcow2", "1M"),
        _io(top, "write -z 0 64k", "write -z 100 200", "write -z -u 64k 128k", "map"))
    add("zero-discard", _qcow2("top.qcow2", "1M"),
        _io(top, "write -P 0x11 0 256k", "write -z 0 64k", "write -z -u 64k 64k",
            "discard 128k 64k", "discard 0 1000", "map", "read -P 0 0 192k",
            "read -P 0x11 192k 64k"))
    add("compressed", _qcow2("top.qcow2", "1M"),
        _io(top, "write -c -P 0x11 0 64k", "write -c -P 0x22 64k 64k", "map",
            "read -P 0x11 0 64k", "write -P 0x33 0 512", "read -P 0x22 64k 64k",
            "discard 64k 64k"))
    add("compressed-mixed", _qcow2("top.qcow2", "1M"),
        _io(top, "write -c 0 64k", "write -c 0 64k", "write -z 0 64k", "write -c 64k 64k",
            "write -z -u 64k 64k", "write -c 128k 64k", "write -P 2 128k 4k",
            "write -c 256k 64k", "discard 256k 64k"))
    add("compressed-rc2", _qcow2("top.qcow2", "1M", "cluster_size=4096,refcount_bits=2"),
        _io(top, "write -c -P 3 0 4k", "write -c -P 4 4k 4k", "write -c -P 5 8k 4k",
            "write -c -P 6 12k 4k", "write -P 5 4k 100", "discard 0 8k"))
    add("compressed-tail", _qcow2("top.qcow2", "100k"),
        _io(top, "write -c 64k 36k", "write -z 64k 36k", "discard 64k 36k", "map"))
    add("odd-size", _qcow2("top.qcow2", "1000"),
        _io(top, "write -P 0x11 0 1000", "write -c 0 1024", "read -P 0x11 0 1000"))
    add("v2", _qcow2("top.qcow2", "1M", "compat=0.10"),
        _io(top, "write -P 0x11 0 128k", "write -z 0 64k", "discard 64k 64k",
            "write -z 300 3000"))
    add("lazy-refcounts", _qcow2("top.qcow2", "1M", "lazy_refcounts=on"),
        _io(top, "write -P 0x11 0 128k", "discard 0 64k"))
    add("zstd-uncompressed", _qcow2("top.qcow2", "1M", "compression_type=zstd"),
        _io(top, "write -P 0x11 0 128k", "write -z 0 64k"))
    add("cs2M", _qcow2("top.qcow2", "10M", "cluster_size=2M"),
        _io(top, "write -P 0x11 1M 2M", "write -z 4M 2M", "write -c 6M 2M", "discard 2M 2M"))
    add("cow-small-clusters", _qcow2("top.qcow2", "1M", "cluster_size=512"),
        _io(top, "write -P 0x11 0 64k", "write -P 0x22 16k 64k", "write -P 0x33 32k 512",
            "write -P 0x44 31k 2k"))
    base = _qcow2("base.qcow2", "1M")
    fill = _io("$DIR/base.qcow2", "write -P 0x33 0 1M")
    over = ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
            top, "1M"]
    add("backing-cow", base, fill, over,
        _io(top, "write -P 0x11 4096 512", "read -P 0x33 0 4096", "read -P 0x33 8192 4096",
            "map"))
    add("backing-abs-empty", base,
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "$DIR/base.qcow2", "-F", "qcow2",
         top, "1M"], _io(top, "write -P 0x11 4096 512"))
    add("backing-zero-discard", base, fill, over,
        _io(top, "write -z 100 200", "write -z 64k 64k", "discard 128k 64k",
            "write -z -u 192k 64k", "write -c 256k 64k", "map", "read -P 0x33 0 100",
            "read -P 0 100 200", "read -P 0x33 300 1000", "read -P 0 64k 128k"))
    add("backing-empty-zero", base, over,
        _io(top, "write -z 100 200", "discard 128k 64k", "map"))
    add("backing-v2", _qcow2("base.qcow2", "1M", "compat=0.10"), fill,
        ["qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "base.qcow2",
         "-F", "qcow2", top, "1M"],
        _io(top, "write -z 100 200", "write -z 64k 64k", "discard 128k 64k", "map"))
    add("backing-short", _qcow2("base.qcow2", "512k"),
        _io("$DIR/base.qcow2", "write -P 0x33 0 512k"),
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", top,
         "1M"], _io(top, "write -P 1 500k 100k", "read -P 0x33 0 500k", "read -P 0 600k 400k"))
    add("backing-raw", ["qemu-img", "create", "-q", "-f", "raw", "$DIR/disk.img", "1M"],
        _io("$DIR/disk.img", "write -P 0x55 0 1M", fmt="raw"),
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "$DIR/disk.img", "-F", "raw",
         "$DIR/over-raw.qcow2", "1M"],
        _io("$DIR/over-raw.qcow2", "write -P 0x11 100 512", "read -P 0x55 0 100",
            "read -P 0x55 612 1000"))
    raw_disk = ["qemu-img", "create", "-q", "-f", "raw", "$DIR/disk.img", "1M"]
    raw_over = ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "disk.img", "-F", "raw",
                top, "1M"]
    # Partial write-zeroes asks the backing file whether the rest of the
    # cluster reads as zeros: raw files answer from their holes.
    add("raw-backing-sparse-zero", raw_disk, raw_over,
        _io(top, "write -z 100 200", "write -z 8k 100", "map"))
    add("raw-backing-holes-zero", raw_disk,
        _io("$DIR/disk.img", "write -P 1 0 1M", "write -z 64k 64k", "discard 128k 64k",
            fmt="raw"), raw_over,
        _io(top, "write -z 100 200", "write -z 65636 200", "write -z 131172 200", "map"))
    ext = "extended_l2=on"
    add("extl2-write", _qcow2("top.qcow2", "1M", ext),
        _io(top, "write -P 0x11 1000 3000", "write -P 0x22 70000 100000", "map",
            "read -v 990 20", "write -P 0x33 2k 100"))
    add("extl2-zero-discard", _qcow2("top.qcow2", "1M", ext),
        _io(top, "write -P 0x11 0 64k", "write -z 0 4k", "write -z 10k 100",
            "write -z -u 16k 16k", "discard 64k 64k", "write -P 2 128k 8k",
            "discard 128k 64k", "map"))
    add("extl2-zero-compressed", _qcow2("top.qcow2", "1M", ext),
        _io(top, "write -z 0 4k", "write -z 5000 100", "write -P 1 6000 10", "map",
            "write -c 64k 64k", "write -P 3 64k 10"))
    add("extl2-backing", base, fill,
        ["qemu-img", "create", "-q", "-f", "qcow2", "-o", ext, "-b", "base.qcow2", "-F",
         "qcow2", top, "1M"],
        _io(top, "write -P 0x11 4096 512", "write -P 0x12 8000 100", "map",
            "read -P 0x33 0 4096", "write -z 64k 4k", "discard 128k 64k", "map"))
    add("extl2-cs16k", _qcow2("top.qcow2", "4M", ext + ",cluster_size=16k"),
        _io(top, "write -P 0x11 100 1M", "write -P 0x22 2M 1"))
    add("prealloc-metadata", _qcow2("top.qcow2", "1M", "preallocation=metadata"),
        _io(top, "write -P 0x11 100 1000", "map"))
    add("prealloc-metadata-extl2", _qcow2("top.qcow2", "1M", "preallocation=metadata," + ext),
        _io(top, "write -P 0x11 100 1000", "map"))
    add("chain-3", base, fill, over,
        _io(top, "write -P 0x44 64k 64k"),
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "top.qcow2", "-F", "qcow2",
         "$DIR/top2.qcow2", "1M"],
        _io("$DIR/top2.qcow2", "write -P 0x55 100k 8k", "read -P 0x33 0 64k",
            "read -P 0x44 64k 36k", "read -P 0x55 100k 8k", "map"))
    add("raw-ops", ["qemu-img", "create", "-q", "-f", "raw", "$DIR/disk.img", "1M"],
        _io("$DIR/disk.img", "write -P 0x11 0 64k", "write -z 100 200", "discard 4096 4096",
            "read -v 0 32", "length", "map", "write -c 0 512", fmt="raw"))
    add("raw-probe", ["qemu-img", "create", "-q", "-f", "raw", "$DIR/disk.img", "4096"],
        ["qemu-io", "-c", "write -P 0x41 0 512", "-c", "read -P 0x41 0 512",
         "$DIR/disk.img"])
    add("qcow2-probe", _qcow2("top.qcow2", "1M"),
        ["qemu-io", "-c", "write -P 0x41 0 512", "-c", "length", top])
    add("opts-after-file", _qcow2("top.qcow2", "1M"),
        ["qemu-io", top, "-f", "qcow2", "-c", "write -P 0x41 0 512", "-c", "read -P 0x41 0 1"])
    add("errors", _qcow2("top.qcow2", "1M"),
        _io(top, "bogus", "read", "read 0", "read a b", "write -u 0 1", "length", "map",
            "write -P 300 0 1", "read 0 2M", "write 1M 1", "read -l 5 0 10",
            "read -P 1 -s 5 -l 10 0 10", "write -c 1 512", "write -z -P 1 0 1",
            "discard", "length 1", "write -q -P 9 0 4k", "read -q -P 8 0 4k"))
    add("read-only", _qcow2("top.qcow2", "1M"),
        ["qemu-io", "-r", "-f", "qcow2", "-c", "write 0 1", "-c", "read 0 1", top])
    add("missing-backing", ["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b",
                            "gone.qcow2", "-F", "qcow2", "$DIR/orphan.qcow2", "1M"],
        _io("$DIR/orphan.qcow2", "read 0 1"))
    add("missing-file", _io("$DIR/nosuch.qcow2", "read 0 1"))
    add("wrong-format", ["qemu-img", "create", "-q", "-f", "raw", "$DIR/disk.img", "1M"],
        _io("$DIR/disk.img", "read 0 1"))
    return cases


# --------------------------------------------------------------------- running

_TIMING = re.compile(r"; (\d\d\.\d\d sec|\d+:\d\d:\d\d\.\d\d) \([^)]*\)")
_CSV_TIMING = re.compile(r"^(\d+,\d+),[0-9:.]+,[0-9.]+,[0-9.]+$", re.M)


def normalize_text(text: str, directory: str) -> str:
    text = text.replace(directory, "$DIR")
    text = _TIMING.sub("; T", text)
    return _CSV_TIMING.sub(r"\1,T", text)


def file_digest(path: Path, directory: str) -> str:
    data = path.read_bytes()
    needle = directory.encode()
    if needle in data and data[:4] == b"QFI\xfb":
        # An absolute backing name sits in the header cluster, followed by
        # zeros: swap the directory for "$DIR", keep the cluster length, and
        # blank the name-length field, which depends on the directory.
        cs = 1 << int.from_bytes(data[20:24], "big")
        head = data[:cs].replace(needle, b"$DIR")
        head = head[:16] + b"\0\0\0\0" + head[20:] + bytes(cs - len(head))
        data = head + data[cs:]
    return hashlib.sha256(data).hexdigest()


def run_case(case: dict[str, Any], directory: Path, runner: Runner) -> dict[str, Any]:
    """Run every step; return what the last one did and the files left behind."""
    d = str(directory)
    steps_out = []
    for step in case["steps"]:
        inv = [a.replace("$DIR", d) for a in step]
        rc, out, err = runner(inv)
        steps_out.append({"rc": rc, "stdout": normalize_text(out, d),
                          "stderr": normalize_text(err, d)})
    files = {p.name: file_digest(p, d) for p in sorted(directory.iterdir()) if p.is_file()}
    sizes = {p.name: p.stat().st_size for p in sorted(directory.iterdir()) if p.is_file()}
    return {"results": steps_out, "files": files, "sizes": sizes}


def qemu_runner(inv: Invocation) -> tuple[int, str, str]:
    proc = subprocess.run(inv, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def qmpd_runner(inv: Invocation) -> tuple[int, str, str]:
    """Run qmpd-img in-process with the same arguments (qemu-io -> ``io``)."""
    from qmpd.img.cli import main

    argv = (["create"] + inv[2:]) if inv[0] == "qemu-img" else (["io"] + inv[1:])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def have_qemu() -> bool:
    return shutil.which("qemu-img") is not None and shutil.which("qemu-io") is not None


def fresh_dir(base: Path, name: str) -> Path:
    path = base / re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def qemu_version() -> str:
    return subprocess.run(["qemu-img", "--version"], capture_output=True, text=True,
                          check=False).stdout.splitlines()[0]


def ensure_dir(path: Path) -> None:
    os.makedirs(path, exist_ok=True)
