"""qmpd-img rebase (unsafe and safe), resize, create over null-co:// and
blkdebug: backing files, and qemu-io's quit do what QEMU 7.2's tools do: the
same messages and exit statuses, and byte-identical image files afterwards.

The expected results were recorded with the real qemu-img / qemu-io 7.2 on
images made by qmpd-img (tests/img/rebase_cases.py, data/rebase_qemu72.json).
"""

from __future__ import annotations

import json
import shlex

import pytest

from tests.img.rebase_cases import DATA, make_images, qmpd_tools, run_case

RECORDED = json.loads(DATA.read_text())["cases"]


@pytest.mark.parametrize("case", RECORDED, ids=[" ; ".join(c["lines"]) for c in RECORDED])
def test_same_outputs_and_images_as_qemu_7_2(tmp_path: object, case: dict) -> None:
    img, io = qmpd_tools()
    folder = str(tmp_path)
    make_images(folder, shlex.split(img))
    mine = run_case(img, io, case["lines"], folder)
    assert mine["steps"] == case["steps"]
    assert mine["files"] == case["files"]
