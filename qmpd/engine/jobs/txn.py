"""Job transactions (QEMU 7.2 job.c JobTxn) and the order in which due jobs
go on: what the job manager (:mod:`qmpd.engine.jobs.state`) asks when jobs
complete together or wait on I/O at the same time."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qmpd.engine.jobs.state import Job


class JobTxn:
    """JobTxn: jobs that complete together (a transaction with
    ``completion-mode: grouped``; every other job is alone in its own).
    None finalizes before all have completed, and one failing cancels the
    others."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.aborting = False


# job_is_completed: the body has finished (successfully or not)
COMPLETED = ("waiting", "pending", "aborting", "concluded", "null")


def completion_order(job: Job) -> tuple[int, int]:
    """The order due jobs go on in: timers first (in job order), then failed
    requests (oldest first), then I/O completions (newest first)."""
    w = job.waiting_on
    if w is None or not w.defer:
        return (0, 0)
    return (1, w.seq) if w.failed else (2, -w.seq)
