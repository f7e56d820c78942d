"""qmpd-img side by side with the installed qemu-img / qemu-io (skipped without QEMU).

The recorded checksums cover CI; this test re-runs every recorded case
against the real tools when they are present, so a drift between the
recording and the installed QEMU, or a change in qmpd-img, shows up as a
direct byte comparison.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from img_cases import (
    create_cases,
    fresh_dir,
    have_qemu,
    io_cases,
    qemu_runner,
    qmpd_runner,
    run_case,
)

pytestmark = pytest.mark.skipif(
    not have_qemu(), reason="qemu-img/qemu-io not installed: live comparison skipped "
    "(recorded checksums in tests/data/img are still checked)")

# Every third create case (the recorded checksums cover them all) keeps the
# live run short; every qemu-io case runs.
CASES = create_cases()[::3] + io_cases()


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_same_bytes_and_output_as_qemu(case: dict[str, Any], tmp_path: Path) -> None:
    # Both tools run in the same directory: absolute backing names are part
    # of the image bytes.
    want = run_case(case, fresh_dir(tmp_path, "w"), qemu_runner)
    got = run_case(case, fresh_dir(tmp_path, "w"), qmpd_runner)
    assert got["results"] == want["results"]
    assert got["sizes"] == want["sizes"]
    assert got["files"] == want["files"]
