"""Block-job commands: block-stream, block-commit, the job-* and block-job-*
verbs, query-jobs, query-block-jobs and the x-qmpd-clock-step extension.

The engine side is the package :mod:`qmpd.engine.jobs`; the daemon's job
manager (``daemon.jobs``) is made with the daemon, and its time comes from
the server's runner (:mod:`qmpd.jobs.runner`) or, in-process, a virtual clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qmpd.commands.registry import command
from qmpd.engine.errors import BlockError
from qmpd.engine.jobs.commit import start_commit
from qmpd.engine.jobs.state import Job, JobManager
from qmpd.engine.jobs.stream import start_stream


@command("block-stream")
def block_stream(daemon: Any, args: dict) -> dict:
    start_stream(daemon.jobs, args)
    return {}


@command("block-commit")
def block_commit(daemon: Any, args: dict) -> dict:
    start_commit(daemon.jobs, args)
    return {}


@dataclass(frozen=True)
class JobVerb:
    """One job verb command: how it finds its job, and what it does to it."""

    command: str
    # job-*: by "id", "Job not found"; block-job-*: by "device" or "id",
    # class DeviceNotActive "Block job 'X' not found".
    key: str
    block_job: bool
    act: Callable[[JobManager, Job, dict], None]

    def __call__(self, daemon: Any, args: dict) -> dict:
        mgr: JobManager = daemon.jobs
        jid = args[self.key]
        job = mgr.get_block_job(jid) if self.block_job else mgr.get_job(jid)
        self.act(mgr, job, args)
        return {}


VERBS = (
    JobVerb("job-pause", "id", False, lambda m, j, a: m.pause(j)),
    JobVerb("job-resume", "id", False, lambda m, j, a: m.resume(j)),
    JobVerb("job-cancel", "id", False, lambda m, j, a: m.cancel(j, True)),
    JobVerb("job-complete", "id", False, lambda m, j, a: m.complete(j)),
    JobVerb("job-finalize", "id", False, lambda m, j, a: m.finalize(j)),
    JobVerb("job-dismiss", "id", False, lambda m, j, a: m.user_dismiss(j)),
    JobVerb("block-job-set-speed", "device", True, lambda m, j, a: m.set_speed(j, a["speed"])),
    JobVerb("block-job-cancel", "device", True,
            lambda m, j, a: m.block_job_cancel(j, a.get("force", False))),
    JobVerb("block-job-pause", "device", True, lambda m, j, a: m.pause(j)),
    JobVerb("block-job-resume", "device", True, lambda m, j, a: m.resume(j)),
    JobVerb("block-job-complete", "device", True, lambda m, j, a: m.complete(j)),
    JobVerb("block-job-finalize", "id", True, lambda m, j, a: m.finalize(j)),
    JobVerb("block-job-dismiss", "id", True, lambda m, j, a: m.user_dismiss(j)),
)
for _verb in VERBS:
    command(_verb.command)(_verb)


@command("block-job-change")
def block_job_change(daemon: Any, args: dict) -> dict:
    """qmp_block_job_change / block_job_change_locked (10.0+ schemas only)."""
    mgr: JobManager = daemon.jobs
    job = mgr.get_block_job(args["id"])
    job.apply_verb("change")
    change = getattr(job.driver, "change", None)
    if change is None:
        raise BlockError.of("job.change-unsupported")
    # The union's branch is chosen by the argument's type, not the job's: a
    # mirror job told type "commit" sees the branch's zeroed members.
    change(args.get("copy-mode", "background") if args["type"] == "mirror" else "background")
    return {}


@command("query-jobs")
def query_jobs(daemon: Any, args: dict) -> list:
    return daemon.jobs.query_jobs()


@command("query-block-jobs")
def query_block_jobs(daemon: Any, args: dict) -> list:
    return daemon.jobs.query_block_jobs()


@command("x-qmpd-clock-step", extension=True)
def x_qmpd_clock_step(daemon: Any, args: dict) -> dict:
    mgr: JobManager = daemon.jobs
    if not mgr.time.virtual:
        raise BlockError.of("job.clock-not-virtual")
    if args["ns"] < 0:
        raise BlockError.of("job.ns-negative")
    mgr.time.step(args["ns"])
    mgr.run_due()
    return {}
