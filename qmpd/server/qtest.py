"""The qtest protocol (``-qtest``) for what block tests use of it.

QEMU's qtest accelerator lets a test drive the guest's virtual clock over a
line protocol: one command per line, one ``OK ...`` or ``FAIL ...`` line
back (QEMU 7.2 softmmu/qtest.c).  qmpd has no guest; it keeps the virtual
clock (``clock_step``, ``clock_set``, which answer ``OK <now in ns>``) and,
when the job clock is virtual (``--clock virtual``), moves the block jobs'
clock with it, so a test steps jobs as it steps QEMU's clock.  The
guest-memory and device commands have nothing to act on and fail as unknown
commands do.

Like QEMU without ``-qtest-log``, the session logs the protocol on stderr:
``[I <t>] OPENED`` when the test connects, ``[R +<t>] <command>`` and
``[S +<t>] <reply>`` per line, ``[I +<t>] CLOSED`` at the end (``<t>`` the
seconds since the connection opened, ``%.06f``).  Tests read QEMU's log
and strip exactly these lines (iotests ``filter_qtest``, 041's checks of
the log's last lines).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


class QtestSession:
    """The state of the virtual clock and the line protocol's replies."""

    def __init__(self, step_jobs: Callable[[int], None] | None = None,
                 log: TextIO | None = None) -> None:
        self.now = 0
        # Called with the nanoseconds the clock moved (jobs follow it).
        self.step_jobs = step_jobs
        # qtest_log_fp: where the protocol is logged (None: not at all).
        self.log = log
        self._opened_at = 0.0

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self._opened_at:.06f}"

    def _write_log(self, text: str) -> None:
        if self.log is not None:
            self.log.write(text)
            self.log.flush()

    def opened(self) -> None:
        """CHR_EVENT_OPENED: the log's timer starts."""
        self._opened_at = time.monotonic()
        self._write_log(f"[I {self._elapsed()}] OPENED\n")

    def closed(self) -> None:
        self._write_log(f"[I +{self._elapsed()}] CLOSED\n")

    def handle_logged(self, line: str) -> str:
        """:meth:`handle`, with the command and its reply in the log."""
        words = line.split()
        if words:
            self._write_log(f"[R +{self._elapsed()}] {' '.join(words)}\n")
        reply = self.handle(line)
        if reply:
            self._write_log(f"[S +{self._elapsed()}] {reply}")
        return reply

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
