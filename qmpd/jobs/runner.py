"""Advances block jobs over time: the trio side of the job manager.

The engine's jobs (:mod:`qmpd.engine.jobs`) are generators that sleep until a
deadline on the job clock.  :class:`JobRunner` is one trio task that enters
every job whose deadline has passed, then waits for the next deadline or for
a wake-up (a command that changed a job).  The server starts it with
``nursery.start`` before it makes the daemon, whose job manager it then
serves: a manager made with a runner that is not running refuses at once
instead of leaving its jobs asleep.  With ``--clock virtual`` the clock only
moves on ``x-qmpd-clock-step``, which runs the due jobs itself: job time
stands still otherwise, and tests stop a job exactly where they want.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from qmpd.jobs.clock import RealClock, VirtualClock

if TYPE_CHECKING:
    # Typing only: the server imports this module before its greeting, the
    # engine only with its first command.
    from qmpd.engine.jobs.state import JobManager


class JobRunner:
    """The daemon's job time (a :class:`~qmpd.engine.jobs.state.JobTime`) in a
    trio program: its clock, and the task that enters due jobs."""

    def __init__(self, clock: RealClock | VirtualClock) -> None:
        self.clock = clock
        self._jobs: JobManager | None = None
        self._kick: trio.Event | None = None
        # The job clock's time the task sleeps until (None: until kicked).
        self._deadline: int | None = None

    # -- JobTime -------------------------------------------------------------------
    @property
    def virtual(self) -> bool:
        return self.clock.virtual

    def now(self) -> int:
        return self.clock.now()

    def step(self, ns: int) -> None:
        self.clock.step(ns)

    def reset(self) -> None:
        self.clock.reset()

    def serve(self, jobs: JobManager) -> None:
        if self._kick is None:
            raise RuntimeError("the job runner is not running: start it with "
                               "nursery.start(runner.run) before making the daemon")
        self._jobs = jobs
        self._kick.set()

    def wake(self) -> None:
        if self._kick is not None:
            self._kick.set()

    def wants_turn(self) -> bool:
        """Whether the task has work now (a wake-up it has not seen, or the
        timer it sleeps on has expired): the server lets it run before it
        reads the next command, as QEMU's main loop runs due job coroutines
        between two monitor commands."""
        kick = self._kick
        if kick is not None and kick.is_set():
            return True
        deadline = self._deadline
        return deadline is not None and self.clock.now() >= deadline

    # -- the task --------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        self._kick = trio.Event()
        task_status.started()
        while True:
            # A fresh event before looking: a wake-up while we look is kept.
            kick = self._kick = trio.Event()
            jobs = self._jobs
            if jobs is not None:
                jobs.run_due()
            # Zero-length sleeps still yield to the clients (QEMU's job
            # coroutine yields to the main loop at every job_sleep_ns).
            await trio.lowlevel.checkpoint()
            if jobs is None:
                await kick.wait()
                continue
            if jobs.any_due():
                continue
            deadline = None if self.clock.virtual else jobs.next_deadline()
            if deadline is None:
                await kick.wait()
            else:
                self._deadline = deadline
                with trio.move_on_after(max(0, deadline - self.clock.now()) / 1e9):
                    await kick.wait()
                self._deadline = None
