"""The job clocks: real (monotonic) time, and virtual time that moves only
on ``x-qmpd-clock-step``.

A :class:`VirtualClock` is also a whole :class:`~qmpd.engine.jobs.state.JobTime`
by itself: nothing becomes due between two steps, and each step runs the
due jobs, so an in-process daemon (tests, benchmarks: no trio) needs no
runner.  Real time needs the trio runner (:mod:`qmpd.jobs.runner`) to enter
jobs when their timers expire.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qmpd.engine.jobs.state import JobManager


class RealClock:
    """time.monotonic_ns."""

    virtual = False

    def now(self) -> int:
        return time.monotonic_ns()

    def step(self, ns: int) -> None:
        raise RuntimeError("a real clock cannot be stepped")

    def reset(self) -> None:
        pass


class VirtualClock:
    """Time that stands still until stepped; starts at 0."""

    virtual = True

    def __init__(self) -> None:
        self.t = 0

    def now(self) -> int:
        return self.t

    def step(self, ns: int) -> None:
        self.t += ns

    def reset(self) -> None:
        self.t = 0

    # As the JobTime of an in-process daemon: whoever steps the clock runs
    # the due jobs (x-qmpd-clock-step), so there is nothing to serve or wake.
    def serve(self, jobs: JobManager) -> None:
        pass

    def wake(self) -> None:
        pass


def make_clock(mode: str) -> RealClock | VirtualClock:
    """The clock ``--clock`` names ("real" or "virtual")."""
    return VirtualClock() if mode == "virtual" else RealClock()
