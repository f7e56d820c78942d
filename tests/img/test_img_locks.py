"""qmpd-img locks image files as qemu-img / qemu-io 7.2 do: run while qmpd
(with host writes, as under QEMU's test harness) holds a qcow2 and a raw
image, each command is refused or runs exactly as the real tools did while
the real QEMU 7.2 held the same images (tests/img/lock_cases.py,
data/locks_qemu72.json): reading a qcow2 image in use needs -U, writing
needs the image free, a raw file shares everything but what its user
unshares.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

import pytest

from tests.img.lock_cases import DATA, make_images, qmpd_img, run_cases, start_holder

RECORDED = json.loads(DATA.read_text())["cases"]
QMPD = [sys.executable, "-m", "qmpd", "--qemu-version", "7.2.22", "--host-writes"]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:
    folder = str(tmp_path_factory.mktemp("locks"))
    make_images(folder)
    holder = start_holder(QMPD, folder)
    try:
        img = qmpd_img()
        yield {r["case"]: r for r in run_cases(img, img + " io", folder)}
    finally:
        holder.terminate()
        holder.wait()


@pytest.mark.parametrize("case", RECORDED, ids=[c["case"] for c in RECORDED])
def test_same_answer_as_qemu_7_2_while_the_image_is_in_use(results: dict, case: dict) -> None:
    mine = results[case["case"]]
    assert (mine["status"], mine["output"]) == (case["status"], case["output"])

