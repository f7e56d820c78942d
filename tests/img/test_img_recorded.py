"""qmpd-img against what QEMU 7.2's qemu-img / qemu-io recorded (no QEMU needed).

Every case of tests/data/img/*.json is replayed through qmpd-img; the exit
status and output of each step and the sha256 of every resulting file must
match the recording.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from img_cases import CREATE_DATA, IO_DATA, fresh_dir, qmpd_runner, run_case


def _load(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["cases"]


CREATE_CASES = _load(CREATE_DATA)
IO_CASES = _load(IO_DATA)


@pytest.mark.parametrize("case", CREATE_CASES, ids=[c["id"] for c in CREATE_CASES])
def test_create_matches_qemu_img(case: dict[str, Any], tmp_path: Path) -> None:
    _compare(case, tmp_path)


@pytest.mark.parametrize("case", IO_CASES, ids=[c["id"] for c in IO_CASES])
def test_io_matches_qemu_io(case: dict[str, Any], tmp_path: Path) -> None:
    _compare(case, tmp_path)


def _compare(case: dict[str, Any], tmp_path: Path) -> None:
    replay = {"id": case["id"], "steps": case["steps"]}
    got = run_case(replay, fresh_dir(tmp_path, case["id"]), qmpd_runner)
    assert got["results"] == case["results"], "exit status or output differs"
    assert got["sizes"] == case["sizes"], "file sizes differ"
    assert got["files"] == case["files"], "file contents differ"
