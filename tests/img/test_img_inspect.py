"""qmpd-img info, map, compare and check print what qemu-img 7.2 prints (check:
clean images, leaked clusters, corruptions, formats without checks, exit codes).

The images are made with qmpd-img (byte-identical to QEMU's); the expected
outputs were recorded from the real qemu-img 7.2 on the same images
(tests/img/inspect_cases.py, data/inspect_qemu72.json).  Disk usage is masked
in the recordings and checked here against the file system instead.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.img.inspect_cases import DATA, make_images, run_case

IMG = [sys.executable, "-c", "import sys; from qmpd.img.cli import main; sys.exit(main())"]
RECORDED = json.loads(DATA.read_text())["cases"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = str(tmp_path_factory.mktemp("inspect"))
    make_images(d, IMG)
    return d


@pytest.mark.parametrize("case", RECORDED, ids=[c["args"] for c in RECORDED])
def test_output_matches_qemu_img_7_2(folder: str, case: dict) -> None:
    mine = run_case(IMG, case["args"], folder)
    assert (mine["status"], mine["output"]) == (case["status"], case["output"])


def test_actual_size_is_the_files_disk_usage(folder: str) -> None:
    out = run_case_raw(["info", "--output=json", "top.qcow2"], folder)
    assert json.loads(out)["actual-size"] == os.stat(os.path.join(folder, "top.qcow2")).st_blocks * 512


def run_case_raw(args: list[str], folder: str) -> str:
    import subprocess

    return subprocess.run([*IMG, *args], cwd=folder, capture_output=True, text=True,
                          check=True).stdout
