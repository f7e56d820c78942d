"""Regenerate tests/data/img/*.json from the real qemu-img / qemu-io (QEMU 7.2).

    .venv/bin/python tests/img/gen_img_data.py

Run it on a machine with QEMU 7.2 installed; CI only reads the results.
Multi-cluster ``write -c`` is left out of the cases on purpose: QEMU
compresses clusters in parallel, so their host order is not reproducible.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from img_cases import (  # noqa: E402
    CREATE_DATA,
    IO_DATA,
    create_cases,
    ensure_dir,
    fresh_dir,
    io_cases,
    qemu_runner,
    qemu_version,
    run_case,
)


def record(cases: list[dict], target: Path) -> None:
    out = []
    with tempfile.TemporaryDirectory(prefix="qmpd-img-gen-") as tmp:
        for case in cases:
            result = run_case(case, fresh_dir(Path(tmp), case["id"]), qemu_runner)
            out.append({**case, **result})
    ensure_dir(target.parent)
    target.write_text(json.dumps({"qemu": qemu_version(), "cases": out}, indent=1) + "\n")
    print(f"{target}: {len(out)} cases")


if __name__ == "__main__":
    record(create_cases(), CREATE_DATA)
    record(io_cases(), IO_DATA)
