"""Fixtures for the hardening tests: the daemon's memory and descriptors as
the kernel reports them, and the fuzz input totals at the end of the run."""

from __future__ import annotations

import os
from typing import Any

from .counts import INPUTS


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (VmRSS from /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if INPUTS:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(INPUTS.items()))
        terminalreporter.write_line(
            f"fuzz inputs: {sum(INPUTS.values())} in all ({parts})")
