"""qmpd-img bitmap (and qemu-io over images with persistent bitmaps) against
what QEMU 7.2's qemu-img / qemu-io recorded: exit status, messages, and the
sha256 of every image file (tests/data/img/bitmap_checksums.json, made by
tests/img/bitmap_cases.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bitmap_cases import BITMAP_DATA, qmpd_runner
from img_cases import fresh_dir, run_case

CASES: list[dict[str, Any]] = json.loads(BITMAP_DATA.read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bitmap_images_match_qemu_img(case: dict[str, Any], tmp_path: Path) -> None:
    got = run_case({"id": case["id"], "steps": case["steps"]},
                   fresh_dir(tmp_path, case["id"]), qmpd_runner)
    assert got["results"] == case["results"], "exit status or output differs"
    assert got["sizes"] == case["sizes"], "file sizes differ"
    assert got["files"] == case["files"], "file contents differ"


def test_bitmap_survives_reopen_with_its_bits(tmp_path: Path) -> None:
    """A bitmap qemu-io marked is read back by the next open: merging it into a
    fresh bitmap changes that bitmap's stored data."""
    img = str(tmp_path / "d.qcow2")
    assert qmpd_runner(["qemu-img", "create", "-q", "-f", "qcow2", img, "1M"])[0] == 0
    for name in ("a", "b"):
        assert qmpd_runner(["qemu-img", "bitmap", "--add", "--disable", img, name])[0] == 0
    before = Path(img).read_bytes()
    assert qmpd_runner(["qemu-img", "bitmap", "--enable", img, "a"])[0] == 0
    assert qmpd_runner(["qemu-io", "-f", "qcow2", "-c", "write 0 4k", img])[0] == 0
    assert qmpd_runner(["qemu-img", "bitmap", "--disable", img, "a"])[0] == 0
    assert qmpd_runner(["qemu-img", "bitmap", "--merge", "a", img, "b"])[0] == 0
    from qmpd.qcow2 import MemoryStore, Qcow2Image
    from qmpd.qcow2 import bitmaps as qb

    im = Qcow2Image(MemoryStore(Path(img).read_bytes()), read_only=True)
    bits = {bm.name: bm.bits for bm in qb.load(im, writable=False)}
    assert bits == {"a": {0}, "b": {0}}
    assert before != Path(img).read_bytes()
