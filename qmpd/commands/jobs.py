"""Block-job commands: block-stream, block-commit, the job-* and block-job-*
verbs, query-jobs, query-block-jobs and the x-qmpd-clock-step extension.

The engine side (state machine, graph work, data copying) is
:mod:`qmpd.engine.jobs`; time passes in :mod:`qmpd.jobs.runner`, which the
first job command starts on the server's nursery (``daemon.spawn``).
"""

from __future__ import annotations

from typing import Any

from qmpd.commands.registry import command
from qmpd.engine.errors import BlockError


def manager(daemon: Any) -> Any:
    """The daemon's JobManager (and its runner), created on first use."""
    mgr = getattr(daemon, "job_manager", None)
    if mgr is not None and mgr.g is daemon.graph:
        return mgr
    from qmpd.engine.jobs import JobManager
    from qmpd.jobs.runner import JobRunner, make_clock

    clock = getattr(daemon, "job_clock", None)
    if clock is None:
        clock = daemon.job_clock = make_clock(getattr(daemon, "clock_mode", "real"))
    mgr = JobManager(daemon.graph, daemon.emit, clock.now)
    daemon.graph.drain_hook = mgr.drained
    runner = JobRunner(mgr, clock)
    mgr.wakeup = runner.kick
    daemon.job_manager = mgr
    daemon.job_runner = runner
    # quit: QEMU's cleanup cancels every job (job_cancel_sync_all) before it exits.
    daemon.on_quit = mgr.cancel_all
    spawn = getattr(daemon, "spawn", None)
    if spawn is not None:
        spawn(runner.run)
    return mgr


@command("block-stream")
def block_stream(daemon: Any, args: dict) -> dict:
    from qmpd.engine.jobs import start_stream

    start_stream(manager(daemon), args)
    return {}


@command("block-commit")
def block_commit(daemon: Any, args: dict) -> dict:
    from qmpd.engine.jobs import start_commit

    start_commit(manager(daemon), args)
    return {}


# -- job-* (class GenericError "Job not found") ----------------------------------
@command("job-pause")
def job_pause(daemon: Any, args: dict) -> dict:
    mgr = manager(daemon)
    mgr.pause(mgr.get_job(args["id"]))
    return {}


@command("job-resume")
def job_resume(daemon: Any, args: dict) -> dict:
    mgr = manager(daemon)
    mgr.resume(mgr.get_job(args["id"]))
    return {}


@command("job-cancel")
def job_cancel(daemon: Any, args: dict) -> dict:
    mgr = manager(daemon)
    mgr.cancel(mgr.get_job(args["id"]), True)
    return {}


@command("job-complete")
def job_complete(daemon: Any, args: dict) -> dict:
    mgr = manager(daemon)
    mgr.complete(mgr.get_job(args["id"]))
    return {}


@command("job-finalize")
def job_finalize(daemon: Any, args: dict) -> dict:
    mgr = manager(daemon)
    mgr.finalize(mgr.get_job(args["id"]))
    return {}


@command("job-dismiss")
def job_dismiss(daemon: Any, args: dict) -> dict:
    mgr = manager(daemon)
    mgr.user_dismiss(mgr.get_job(args["id"]))
    return {}


# -- block-job-* (class DeviceNotActive "Block job 'X' not found") ------------------
@command("block-job-set-speed")
def block_job_set_speed(daemon: Any, args: dict) -> dict:
    mgr = manager(daemon)
    mgr.set_speed(mgr.get_block_job(args["device"]), args["speed"])
    return {}


@command("block-job-cancel")
def block_job_cancel(daemon: Any, args: dict) -> dict:
    mgr = manager(daemon)
    job = mgr.get_block_job(args["device"])
    force = args.get("force", False)
    if job.user_paused and not force:
        raise BlockError(f"The block job for device '{args['device']}' is currently paused")
    mgr.cancel(job, force)
    return {}


@command("block-job-pause")
def block_job_pause(daemon: Any, args: dict) -> dict:
    mgr = manager(daemon)
    mgr.pause(mgr.get_block_job(args["device"]))
    return {}


@command("block-job-resume")
def block_job_resume(daemon: Any, args: dict) -> dict:
    mgr = manager(daemon)
    mgr.resume(mgr.get_block_job(args["device"]))
    return {}


@command("block-job-complete")
def block_job_complete(daemon: Any, args: dict) -> dict:
    mgr = manager(daemon)
    mgr.complete(mgr.get_block_job(args["device"]))
    return {}


@command("block-job-finalize")
def block_job_finalize(daemon: Any, args: dict) -> dict:
    mgr = manager(daemon)
    mgr.finalize(mgr.get_block_job(args["id"]))
    return {}


@command("block-job-dismiss")
def block_job_dismiss(daemon: Any, args: dict) -> dict:
    mgr = manager(daemon)
    mgr.user_dismiss(mgr.get_block_job(args["id"]))
    return {}


@command("query-jobs")
def query_jobs(daemon: Any, args: dict) -> list:
    return manager(daemon).query_jobs()


@command("query-block-jobs")
def query_block_jobs(daemon: Any, args: dict) -> list:
    return manager(daemon).query_block_jobs()


@command("x-qmpd-clock-step", extension=True)
def x_qmpd_clock_step(daemon: Any, args: dict) -> dict:
    mgr = manager(daemon)
    clock = daemon.job_clock
    if not getattr(clock, "virtual", False):
        raise BlockError("The job clock is not virtual (start qmpd with --clock virtual)")
    if args["ns"] < 0:
        raise BlockError("Parameter 'ns' expects a non-negative value")
    clock.step(args["ns"])
    mgr_run_due(mgr)
    return {}


def mgr_run_due(mgr: Any) -> None:
    from qmpd.jobs.runner import run_due

    run_due(mgr)
