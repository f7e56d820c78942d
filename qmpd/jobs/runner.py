"""Advances block jobs over time.

The engine's jobs (:mod:`qmpd.engine.jobs`) are generators that sleep until a
deadline on the job clock.  :class:`JobRunner` is one trio task that enters
every job whose deadline has passed, then waits for the next deadline or for
a kick (a command that changed a job).  With ``--clock virtual`` the clock
only moves on ``x-qmpd-clock-step``, which runs the due jobs itself: job time
stands still otherwise, and tests stop a job exactly where they want.
"""

from __future__ import annotations

import time
from typing import Any

import trio


class RealClock:
    virtual = False

    def now(self) -> int:
        return time.monotonic_ns()


class VirtualClock:
    virtual = True

    def __init__(self) -> None:
        self.t = 0

    def now(self) -> int:
        return self.t

    def step(self, ns: int) -> None:
        self.t += ns


def make_clock(mode: str) -> RealClock | VirtualClock:
    return VirtualClock() if mode == "virtual" else RealClock()


def run_due(mgr: Any) -> None:
    """Enter every job whose timer has expired, until none is due."""
    for _ in range(1_000_000):
        now = mgr.clock()
        due = [j for j in list(mgr.jobs) if j.runnable(now)]
        if not due:
            return
        for j in due:
            if j.runnable(mgr.clock()):
                j.enter()


def next_deadline(mgr: Any) -> int | None:
    best = None
    for j in mgr.jobs:
        w = j.waiting_on
        if j.co is None or w is None or w.deadline is None:
            continue
        if best is None or w.deadline < best:
            best = w.deadline
    return best


class JobRunner:
    def __init__(self, mgr: Any, clock: RealClock | VirtualClock) -> None:
        self.mgr = mgr
        self.clock = clock
        self._kick = trio.Event() if _in_trio() else None
        self._stopped = False

    def kick(self) -> None:
        if self._kick is not None:
            self._kick.set()

    def stop(self) -> None:
        """End the task and let go of the manager (and so of its graph):
        x-qmpd-reset replaces both, and a runner left waiting would keep
        the old ones alive for the daemon's whole life."""
        self._stopped = True
        self.mgr = None
        self.kick()

    async def run(self) -> None:
        while not self._stopped:
            if self._kick is None:
                self._kick = trio.Event()
            run_due(self.mgr)
            # Zero-length sleeps still yield to the clients (QEMU's job
            # coroutine yields to the main loop at every job_sleep_ns).
            await trio.lowlevel.checkpoint()
            if self._stopped:
                return
            if any(j.runnable(self.mgr.clock()) for j in self.mgr.jobs):
                continue
            self._kick = trio.Event()
            deadline = None if self.clock.virtual else next_deadline(self.mgr)
            if deadline is None:
                await self._kick.wait()
            else:
                delay = max(0, deadline - self.clock.now()) / 1e9
                with trio.move_on_after(delay):
                    await self._kick.wait()


def _in_trio() -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True
