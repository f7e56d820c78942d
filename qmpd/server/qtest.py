"""The qtest protocol (``-qtest``) for what block tests use of it.

QEMU's qtest accelerator lets a test drive the guest's virtual clock over a
line protocol: one command per line, one ``OK ...`` or ``FAIL ...`` line
back (QEMU 7.2 softmmu/qtest.c).  qmpd has no guest; it keeps the virtual
clock (``clock_step``, ``clock_set``, which answer ``OK <now in ns>``) and,
when the job clock is virtual (``--clock virtual``), moves the block jobs'
clock with it, so a test steps jobs as it steps QEMU's clock.  The
guest-memory and device commands have nothing to act on and fail as unknown
commands do.
"""

from __future__ import annotations

from collections.abc import Callable


class QtestSession:
    """The state of the virtual clock and the line protocol's replies."""

    def __init__(self, step_jobs: Callable[[int], None] | None = None) -> None:
        self.now = 0
        # Called with the nanoseconds the clock moved (jobs follow it).
        self.step_jobs = step_jobs

    def _warp(self, target: int) -> None:
        delta = target - self.now
        if delta <= 0:
            return
        self.now = target
        if self.step_jobs is not None:
            self.step_jobs(delta)

    def handle(self, line: str) -> str:
        """One command line (without its newline) -> the reply line."""
        words = line.split()
        if not words:
            return ""
        cmd = words[0]
        if cmd == "clock_step":
            if len(words) > 1:
                ns = _int(words[1])
                if ns is None:
                    return "FAIL invalid clock_step argument\n"
            else:
                ns = 0      # no timer of qmpd's is on the virtual clock
            self._warp(self.now + ns)
            return f"OK {self.now}\n"
        if cmd == "clock_set":
            ns = _int(words[1]) if len(words) > 1 else None
            if ns is None:
                return "FAIL invalid clock_set argument\n"
            self._warp(ns)
            return f"OK {self.now}\n"
        if cmd == "endianness":
            return "OK little\n"
        return f"FAIL Unknown command '{cmd}'\n"


def _int(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        return None


__all__ = ["QtestSession"]
