"""Benchmark ``qmpd.schema.validate`` (not collected by pytest).

    .venv/bin/python tests/schema/bench_validate.py

Prints the time per call for a few typical argument sets, plus the one-off
cost of importing qmpd.schema and of the first validate() (lazy loading).
"""

from __future__ import annotations

import sys
import time
import timeit
from pathlib import Path

# Run from a checkout without installing: the repository root first on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

t0 = time.perf_counter()
from qmpd.schema import ArgumentError, validate  # noqa: E402

t1 = time.perf_counter()
validate("blockdev-add", {"driver": "null-co", "node-name": "n0"})
t2 = time.perf_counter()

CASES = [
    ("blockdev-add", {"driver": "null-co", "node-name": "n0", "size": 1048576}),
    ("blockdev-add", {"driver": "qcow2", "node-name": "hd0", "file": "hd0-file"}),
    ("blockdev-add", {"driver": "qcow2", "node-name": "hd0",
                      "file": {"driver": "file", "filename": "/tmp/hd0.img"},
                      "backing": None, "cache": {"direct": False}}),
    ("blockdev-reopen", {"options": [{"driver": "qcow2", "node-name": "hd0",
                                      "file": "hd0-file", "backing": None}]}),
    ("blockdev-add", {"driver": "null-co", "node-name": "n1", "zzz": 1, "aaa": 2}),
    ("query-named-block-nodes", {"flat": True}),
]


def main() -> None:
    print(f"import qmpd.schema: {(t1 - t0) * 1e3:.2f} ms; first validate (load + compile): "
          f"{(t2 - t1) * 1e3:.2f} ms")
    for cmd, args in CASES:
        def run(cmd: str = cmd, args: dict = args) -> None:
            try:
                validate(cmd, args)
            except ArgumentError:
                pass
        n = 20000
        best = min(timeit.repeat(run, number=n, repeat=5)) / n
        print(f"{best * 1e6:7.2f} us  {cmd} {args}")


if __name__ == "__main__":
    main()
