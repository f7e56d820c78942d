"""Header parsing of images made by qmpd-img (what the block engine reads back)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from img_cases import qmpd_runner

from qmpd.qcow2 import (
    Qcow2FormatError,
    create_qcow2,
    is_qcow2,
    parse_qcow2_header,
)


def _create(*args: str) -> None:
    rc, _out, err = qmpd_runner(["qemu-img", "create", "-q", *args])
    assert rc == 0, err


@pytest.mark.parametrize("size,cluster", [(0, 65536), (1 << 20, 512), (2 << 20, 4096),
                                          (12345, 65536), (1 << 30, 2 << 20)])
def test_size_and_cluster_size(tmp_path: Path, size: int, cluster: int) -> None:
    img = tmp_path / "img.qcow2"
    _create("-f", "qcow2", "-o", f"cluster_size={cluster}", str(img), str(size))
    hdr = parse_qcow2_header(img.read_bytes()[:cluster])
    assert hdr.virtual_size == -(-size // 512) * 512  # qemu-img rounds to sectors
    assert hdr.cluster_size == cluster
    assert hdr.cluster_bits == cluster.bit_length() - 1
    assert hdr.backing_file is None and hdr.backing_format is None
    assert (hdr.version, hdr.compat, hdr.header_length) == (3, "1.1", 112)
    assert hdr.refcount_bits == 16 and hdr.compression_type == "zlib"
    assert not (hdr.dirty or hdr.corrupt or hdr.extended_l2 or hdr.lazy_refcounts)


def test_backing_name_and_format(tmp_path: Path) -> None:
    _create("-f", "qcow2", str(tmp_path / "base.qcow2"), "2M")
    _create("-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", str(tmp_path / "top.qcow2"))
    hdr = parse_qcow2_header((tmp_path / "top.qcow2").read_bytes()[:65536])
    assert hdr.backing_file == "base.qcow2"
    assert hdr.backing_format == "qcow2"
    assert hdr.virtual_size == 2 << 20  # taken from the backing file


def test_unsafe_absolute_backing_to_raw(tmp_path: Path) -> None:
    _create("-f", "qcow2", "-u", "-b", "/gone/disk.img", "-F", "raw",
            str(tmp_path / "o.qcow2"), "1M")
    hdr = parse_qcow2_header((tmp_path / "o.qcow2").read_bytes())
    assert (hdr.backing_file, hdr.backing_format) == ("/gone/disk.img", "raw")


def test_compat_010_vs_11(tmp_path: Path) -> None:
    _create("-f", "qcow2", "-o", "compat=0.10", str(tmp_path / "v2.qcow2"), "1M")
    _create("-f", "qcow2", "-o", "compat=1.1,lazy_refcounts=on",
            str(tmp_path / "v3.qcow2"), "1M")
    v2 = parse_qcow2_header((tmp_path / "v2.qcow2").read_bytes())
    v3 = parse_qcow2_header((tmp_path / "v3.qcow2").read_bytes())
    assert (v2.version, v2.compat, v2.header_length, v2.has_feature_table) == (
        2, "0.10", 72, False)
    assert (v3.version, v3.compat, v3.header_length, v3.has_feature_table) == (
        3, "1.1", 112, True)
    assert v3.lazy_refcounts and not v2.lazy_refcounts


def test_feature_bits() -> None:
    hdr = parse_qcow2_header(create_qcow2(1 << 20, extended_l2=True,
                                          compression_type="zstd", refcount_bits=64))
    assert hdr.extended_l2 and hdr.compression_type == "zstd" and hdr.refcount_bits == 64


def test_magic_check(tmp_path: Path) -> None:
    assert is_qcow2(create_qcow2(65536))
    assert not is_qcow2(b"\0" * 512)
    assert not is_qcow2(b"QFI")


def test_qemu_error_texts() -> None:
    good = bytearray(create_qcow2(1 << 20))
    bad_version = good[:4] + struct.pack(">I", 4) + good[8:]
    with pytest.raises(Qcow2FormatError, match="^Unsupported qcow2 version 4$"):
        parse_qcow2_header(bytes(bad_version))
    with pytest.raises(Qcow2FormatError, match="^Image is not in qcow2 format$"):
        parse_qcow2_header(b"\0" * 512)
    bad_cluster = good[:20] + struct.pack(">I", 30) + good[24:]
    with pytest.raises(Qcow2FormatError, match=r"^Unsupported cluster size: 2\^30$"):
        parse_qcow2_header(bytes(bad_cluster))
