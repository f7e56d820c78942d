"""qmpd.qcow2 as a library over an in-memory store (how the block engine uses it)."""

from __future__ import annotations

import pytest

from qmpd.qcow2 import (
    CLUSTER_COMPRESSED,
    CLUSTER_NORMAL,
    CLUSTER_UNALLOCATED,
    CLUSTER_ZERO_PLAIN,
    MemoryStore,
    Qcow2FormatError,
    Qcow2Image,
    create_qcow2,
    parse_qcow2_header,
)


def _image(size: int = 1 << 20, **kw: object) -> Qcow2Image:
    return Qcow2Image(MemoryStore(create_qcow2(size, **kw)))  # type: ignore[arg-type]


def test_fresh_image_is_one_unallocated_range() -> None:
    img = _image()
    assert img.read_segments(0, 1 << 20) == [(0, 1 << 20, None)]
    assert img.read(1000, 24) == bytes(24)


def test_write_then_read_back_and_unallocated_rest() -> None:
    img = _image()
    img.write(70000, b"\x11" * 1000)
    segs = img.read_segments(0, 1 << 20)
    # The written cluster is allocated as a whole; the rest stays unallocated
    # so a caller can fall through to the backing file.
    assert [(o, n, d is None) for o, n, d in segs] == [
        (0, 65536, True), (65536, 65536, False), (131072, (1 << 20) - 131072, True)]
    assert img.read(69999, 1002) == b"\0" + b"\x11" * 1000 + b"\0"


def test_reopening_the_store_sees_the_data() -> None:
    store = MemoryStore(create_qcow2(1 << 20, cluster_size=4096))
    Qcow2Image(store).write(5000, b"abc")
    again = Qcow2Image(store)
    assert again.read(5000, 3) == b"abc"
    assert parse_qcow2_header(bytes(store.data)).l1_table_offset == again.tables.l1_offset


def test_zero_discard_and_compressed_cluster_kinds() -> None:
    img = _image()
    img.write(0, b"\x22" * 65536)
    img.write_zeroes(65536, 65536)
    img.write_compressed(131072, b"\x33" * 65536)
    img.discard(0, 65536)
    extents = [(e.offset, e.length, e.kind) for e in img.map_extents(0, 196608)]
    # Discarded data (no backing file, v3) and zeroed space are zero clusters.
    assert extents == [(0, 131072, CLUSTER_ZERO_PLAIN), (131072, 65536, CLUSTER_COMPRESSED)]
    assert img.read(131072, 65536) == b"\x33" * 65536
    assert img.read(0, 131072) == bytes(131072)


def test_backing_reader_fills_unallocated_ranges() -> None:
    base = _image()
    base.write(0, b"\x44" * (1 << 20))
    top = Qcow2Image(MemoryStore(create_qcow2(1 << 20, backing_file="b", backing_format="qcow2")),
                     backing=base)
    top.write(100, b"\x55")
    assert top.read(99, 3) == b"\x44\x55\x44"
    assert top.read(200000, 4) == b"\x44" * 4
    kinds = {e.kind for e in top.map_extents()}
    assert kinds == {CLUSTER_NORMAL, CLUSTER_UNALLOCATED}


def test_write_zeroes_without_data_makes_zero_clusters() -> None:
    img = _image()
    img.write_zeroes(0, 1 << 20)
    assert {e.kind for e in img.map_extents()} == {CLUSTER_ZERO_PLAIN}


def test_read_only_and_range_errors() -> None:
    img = Qcow2Image(MemoryStore(create_qcow2(65536)), read_only=True)
    with pytest.raises(PermissionError):
        img.write(0, b"x")
    rw = _image(65536)
    with pytest.raises(OSError):
        rw.write(65000, b"x" * 1000)


def test_invalid_create_options_use_qemu_texts() -> None:
    with pytest.raises(Qcow2FormatError, match="power of two between 512 and 2048k"):
        create_qcow2(1 << 20, cluster_size=3072)
    with pytest.raises(Qcow2FormatError, match="Invalid compatibility level: '2'"):
        create_qcow2(1 << 20, compat="2")
