"""The job state machine (QEMU 7.2 job.c and the generic part of blockjob.c):
statuses and their transitions, the verbs and the states that accept them,
the rate limiter (util/ratelimit, in :mod:`qmpd.engine.jobs.ratelimit`), job creation, completion (the one-job
transaction: prepare, commit or abort, clean), drains, and the query views.

A job kind (stream.py, commit.py, mirror.py, backup.py, create.py in this
package) brings a :class:`JobDriver`.  Its ``run`` is a Python generator that
plays the part of QEMU's job coroutine: it yields ``Sleep(deadline_ns)``
where QEMU calls ``job_sleep_ns`` and ``PAUSED`` where it yields in
``job_pause_point``.  Whoever owns time (the :class:`JobTime` the manager is
made with) resumes the job with :meth:`Job.enter` when its timer expires, and
the verbs enter it where QEMU would ``job_enter`` it (resume, set-speed,
cancel, complete, end of a drain).  Events go out through ``emit``.

Everything here is synchronous.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Protocol

from qmpd.engine import perms
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph
from qmpd.engine.jobs.backends import JobBackends
from qmpd.engine.jobs.drains import DrainedSections
from qmpd.engine.jobs.ratelimit import RateLimit
from qmpd.engine.jobs.txn import COMPLETED, JobTxn, completion_order
from qmpd.engine.node import Edge, Node, Parent, id_wellformed
from qmpd.engine.surgery import all_or_nothing, attach_fixed, release_children
from qmpd.engine.transaction import Transaction

Emit = Callable[[str, dict], None]

STATUSES = ("undefined", "created", "running", "paused", "ready", "standby", "waiting",
            "pending", "aborting", "concluded", "null")
# job.c JobSTT: allowed transitions.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "undefined": ("created",),
    "created": ("running", "aborting", "null"),
    "running": ("paused", "ready", "waiting", "aborting"),
    "paused": ("running",),
    "ready": ("standby", "waiting", "aborting"),
    "standby": ("ready",),
    "waiting": ("pending", "aborting"),
    "pending": ("aborting", "concluded"),
    "aborting": ("aborting", "concluded"),
    "concluded": ("null",),
    "null": (),
}
# job.c JobVerbTable: the states in which each verb is accepted.
VERBS: dict[str, tuple[str, ...]] = {
    "cancel": ("created", "running", "paused", "ready", "standby", "waiting", "pending"),
    "pause": ("created", "running", "paused", "ready", "standby"),
    "resume": ("created", "running", "paused", "ready", "standby"),
    "set-speed": ("created", "running", "paused", "ready", "standby"),
    "complete": ("ready", "standby"),
    "finalize": ("pending",),
    "dismiss": ("concluded",),
    "change": ("created", "running", "paused", "ready", "standby"),
}

@dataclass
class Sleep:
    deadline: int | None     # None: wait until entered
    # Due at once, but the body goes on only from the runner, after the
    # command that started it has replied (a coroutine waiting on I/O).
    defer: bool = False
    # For a deferred sleep: when its I/O was submitted.  The thread pool's
    # completion bottom half finishes the newest request first, so jobs
    # waiting on I/O go on newest first; a request that failed without
    # reaching the thread pool (an injected error: a scheduled coroutine)
    # comes back before them, oldest first.
    seq: int = 0
    failed: bool = False
    # A slow request also ends once the monitor has dispatched this many
    # commands (JobManager.commands), if that comes before its deadline.
    commands: int | None = None


PAUSED = Sleep(None)


def _in_flight(job: Job) -> bool:
    """Whether ``job`` waits on a request of its own in flight (a deferred
    sleep), however long that request has still to go."""
    w = job.waiting_on
    return w is not None and w.defer and w.deadline is not None and job.runnable(w.deadline)


def _co_entry(job: Job, driver: JobDriver) -> Generator[Sleep, None, int]:
    """job_co_entry: a pause point before the kind's body, so a job started
    inside a drained section pauses before its run callback has set up
    anything (its progress still 0 of 0)."""
    yield from job.pause_point()
    return (yield from driver.run(job))


class JobDriver:
    """A job kind's callbacks (job.h JobDriver): ``run`` is the job's body;
    at completion ``prepare`` (may still fail the job), then ``commit`` or
    ``abort``, then ``clean``.  The defaults are QEMU's missing callbacks."""

    # Whether the kind has a .complete callback (mirror and active commit).
    can_complete = False

    def run(self, job: Job) -> Generator[Sleep, None, int]:
        raise NotImplementedError

    def prepare(self, job: Job) -> int:
        return 0

    def commit(self, job: Job) -> None:
        pass

    def abort(self, job: Job) -> None:
        pass

    def clean(self, job: Job) -> None:
        pass

    def cancel(self, job: Job, force: bool) -> bool:
        """The cancel's effective ``force`` (without a .cancel callback: always)."""
        return True

    def complete(self, job: Job) -> None:
        job.should_complete = True


class JobTime(Protocol):
    """Where jobs read the time, and who enters them at their deadlines: the
    server's trio runner (qmpd/jobs/runner.py), or in-process a virtual clock
    that only x-qmpd-clock-step moves (qmpd/jobs/clock.py)."""

    @property
    def virtual(self) -> bool: ...

    def now(self) -> int: ...

    def step(self, ns: int) -> None:
        """Move a virtual clock on (the caller then runs the due jobs)."""

    def reset(self) -> None:
        """x-qmpd-reset: a virtual clock starts at 0 again."""

    def serve(self, jobs: JobManager) -> None:
        """Take on ``jobs``: enter them at their deadlines from now on."""

    def wake(self) -> None:
        """A verb changed a job: look at the deadlines again."""


class Job:
    """One job (Job, and BlockJob unless ``block_job`` is false)."""

    def __init__(self, mgr: JobManager, jid: str, jtype: str, args: dict,
                 block_job: bool = True) -> None:
        self.mgr = mgr
        self.id = jid
        self.type = jtype
        # blockdev-create's job is a plain job: no BLOCK_JOB_* events, not
        # in query-block-jobs, no graph links.
        self.block_job = block_job
        self.status = "undefined"
        self.auto_finalize = args.get("auto-finalize", True)
        self.auto_dismiss = args.get("auto-dismiss", True)
        self.on_error = args.get("on-error", "report")
        self.speed = 0
        self.limit = RateLimit()
        self.current = 0
        self.total = 0
        self.busy = False
        self.paused = False
        self.pause_count = 1          # job_create: a job starts paused until job_start
        self.user_paused = False
        self.cancelled = False
        self.force_cancel = False
        self.should_complete = False
        self.ready_flag = False
        self.ret = 0
        self.io_status = "ok"
        self.error: str | None = None
        self.edges: list[Edge] = []
        self.children = self.edges    # what graph code walks on a parent
        self.nodes: list[Node] = []
        self.backends: list[Parent] = []
        # Profile.job_main_backend: the job's own BlockBackend on its main node.
        self.main_blk: Parent | None = None
        self.co: Generator[Sleep, None, int] | None = None
        self.waiting_on: Sleep | None = None
        self.deferred = False         # body finished, completion not yet run
        self.driver = JobDriver()     # the kind's, from mgr.start on
        self.txn = JobTxn()           # its own, unless created in a group

    def user_desc(self) -> str:
        # child_job_get_parent_desc
        return f"{self.type} job '{self.id}'"

    def user_name(self) -> str:
        # bdrv_child_user_desc (5.2's "Conflicts with use by ..." texts)
        return self.user_desc()

    def label(self) -> str:
        return self.id

    # -- state machine -------------------------------------------------------
    def transition(self, new: str) -> None:
        assert new in TRANSITIONS[self.status], (self.status, new)
        old, self.status = self.status, new
        if new != old:      # aborting -> aborting says nothing
            self.mgr.emit("JOB_STATUS_CHANGE", {"status": new, "id": self.id})

    def apply_verb(self, verb: str) -> None:
        allowed = self.mgr.g.profile.job_verbs.get(verb) or VERBS[verb]
        if self.status not in allowed:
            raise BlockError.of("job.verb-not-allowed", id=self.id,
                                status=self.status, verb=verb)

    def is_cancelled(self) -> bool:
        return self.force_cancel

    def is_completed(self) -> bool:
        """job_is_completed: the body is over (successfully or not)."""
        return self.status in COMPLETED

    def should_pause(self) -> bool:
        return self.pause_count > 0

    def now(self) -> int:
        return self.mgr.time.now()

    # -- coroutine helpers (job_sleep_ns, job_pause_point) ---------------------
    def pause_point(self) -> Generator[Sleep, None, None]:
        if self.should_pause() and not self.is_cancelled():
            status = self.status
            self.transition("standby" if status == "ready" else "paused")
            self.paused = True
            self.busy = False
            yield PAUSED
            self.busy = True
            self.paused = False
            self.transition(status)

    def sleep_ns(self, ns: int) -> Generator[Sleep, None, None]:
        if not self.should_pause():
            self.busy = False
            yield Sleep(self.now() + ns)
            self.busy = True
        yield from self.pause_point()

    def rate_sleep(self, delay: int) -> Generator[Sleep, None, None]:
        """The sleep after a rate-limited step (``delay``: what the limit
        asked for when the bytes were counted).  Where the release re-checks
        (Profile.ratelimit_sleep_rechecks: block_job_ratelimit_sleep), a job
        woken early sleeps again until the limit, at the current speed, lets
        it go on or it is cancelled."""
        yield from self.sleep_ns(delay)
        if not self.mgr.g.profile.ratelimit_sleep_rechecks:
            return
        while delay and not self.is_cancelled():
            delay = self.limit.delay(0, self.now())
            yield from self.sleep_ns(delay)

    def slow_io(self, ns: int, commands: int | None = None) -> Sleep:
        """The wait on a request with data to move to the disk (see
        jobs.data.IO_COMPLETION_NS): ``ns``, or until ``commands`` more
        commands were dispatched; none under the virtual clock."""
        if self.mgr.time.virtual:
            return Sleep(self.now(), defer=True)
        return Sleep(self.now() + ns, defer=True,
                     commands=None if commands is None else self.mgr.commands + commands)

    def yield_idle(self) -> Generator[Sleep, None, None]:
        """job_yield: wait until entered (used by other job drivers, e.g. backup)."""
        if not self.should_pause():
            self.busy = False
            yield Sleep(None)
            self.busy = True
        yield from self.pause_point()

    # -- driving ---------------------------------------------------------------
    def runnable(self, now: int) -> bool:
        w = self.waiting_on
        if self.co is None or self.deferred or w is None:
            return False
        if w is PAUSED:
            return False
        if self.at_breakpoint():
            return False
        if w.commands is not None and self.mgr.commands >= w.commands:
            return True
        return w.deadline is not None and w.deadline <= now

    def _blkdebug_below(self) -> list[Node]:
        """The blkdebug nodes at or below the job's nodes (where its requests go)."""
        seen: set[int] = set()
        found: list[Node] = []
        stack = [n for n in self.nodes if n.alive]
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            if n.driver.name == "blkdebug" and isinstance(n.state, dict):
                found.append(n)
            stack.extend(e.child for e in n.children)
        return found

    def at_breakpoint(self) -> bool:
        """A request of the job is suspended at a blkdebug breakpoint
        (qemu-io ``break``): the job makes no progress until that request is
        resumed (``resume``/``remove_break``)."""
        return any(job is self for n in self._blkdebug_below()
                   for _, job in n.state.get("suspended", ()))

    def hit_breakpoint(self) -> str | None:
        """The job's next request reaches a blkdebug node with a breakpoint:
        the breakpoint is used up (a one-shot rule, as suspend_request removes
        it) and the request suspended there.  Returns the breakpoint's tag."""
        for n in self._blkdebug_below():
            rules = n.state.get("breakpoints")
            if rules:
                _, tag = rules.pop(0)
                n.state.setdefault("suspended", []).insert(0, (tag, self))
                return tag  # type: ignore[no-any-return]
        return None

    def enter(self) -> None:
        """Run the body until its next yield; on return, complete the job."""
        if self.co is None or self.deferred:
            return
        # job_enter_cond: a cancelled job leaves its pause point even paused
        if self.waiting_on is PAUSED and self.should_pause() and not self.is_cancelled():
            return
        if (self.at_breakpoint() or self.hit_breakpoint()) and not self.is_cancelled():
            # Held at a blkdebug breakpoint: due again once resumed.
            if self.waiting_on is None or self.waiting_on.deadline is None:
                self.waiting_on = Sleep(self.now())
            return
        self.waiting_on = None
        self.mgr.g.generation += 1    # the job may change what queries show
        try:
            # A zero-length sleep is a timer: it fires in the main loop's
            # next turn (the runner goes on through it), not inside the
            # command that entered the job (a drain's end, resume), whose
            # next drain finds the job asleep.  The virtual clock: at once.
            goes_on = self.mgr._in_runner or self.mgr.time.virtual
            while True:
                w = self.waiting_on = next(self.co)
                if w.defer:
                    self.mgr.io_seq += 1
                    w.seq = self.mgr.io_seq
                if w is PAUSED or w.deadline is None or w.deadline > self.now() or w.defer \
                        or not goes_on:
                    break
                if (self.at_breakpoint() or self.hit_breakpoint()) and \
                        not self.is_cancelled():
                    break
        except StopIteration as stop:
            self.ret = stop.value or 0
            if self.ret and self.error is None:
                self.error = os.strerror(-self.ret)   # job_update_rc
            self.co = None
            self.deferred = True
            self.busy = False
            self.mgr.body_done(self)

    def enter_if_sleeping(self, timer_only: bool = False) -> None:
        """job_enter_cond: wake a job that is not busy (and not paused)."""
        w = self.waiting_on
        if w is None or w is PAUSED or self.busy:
            return
        if timer_only and w.deadline is None:
            return
        self.enter()

    def error_action(self, is_read: bool, err: int, policy: str | None = None) -> str:
        """block_job_error_action: the on-error policy's answer (``policy``, else
        the job's on-error), and its event."""
        policy = policy or self.on_error
        if policy in ("enospc", "auto"):
            action = "stop" if err == errno.ENOSPC else "report"
        else:
            action = policy
        if action == "stop":
            if not self.user_paused:
                self.pause_count += 1
                self.user_paused = True
            self.io_status = "nospace" if err == errno.ENOSPC else "failed"
        self.mgr.emit("BLOCK_JOB_ERROR", {"device": self.id,
                                          "operation": "read" if is_read else "write",
                                          "action": action})
        return action

    def progress(self, n: int) -> None:
        self.current += n

    def rate_delay(self, n: int) -> int:
        return self.limit.delay(n, self.now())


def _no_report(msg: str) -> None:
    pass


class JobManager(DrainedSections, JobBackends):
    """The jobs of the daemon's graph, the events they emit, and the job verbs.

    It lives as long as the daemon; ``time`` is a declared dependency (there
    is no job manager whose jobs nothing would ever wake)."""

    def __init__(self, g: BlockGraph, emit: Emit, time: JobTime) -> None:
        self.emit = emit
        self.time = time
        self.g = g
        # error_report(): what QEMU prints on stderr outside any reply (a
        # mirror that can no longer replace its node); the daemon sets it.
        self.error_report: Callable[[str], None] = _no_report
        # drained sections under way: nodes -> (the jobs each paused, its nodes)
        self._drained: dict[tuple[int, ...], list[tuple[list[Job], list[Node]]]] = {}
        # A transaction with completion-mode grouped: the group its jobs join.
        self.group: JobTxn | None = None
        # Jobs whose body ended while a command ran them (job_exit's bottom
        # half not yet run), and whether the runner is entering jobs now.
        self._exits: list[Job] = []
        self._in_runner = False
        self.io_seq = 0     # numbers the deferred sleeps (Sleep.seq)
        self.commands = 0   # the commands dispatched (Sleep.commands)
        self._bind(g)
        time.serve(self)

    def _bind(self, g: BlockGraph) -> None:
        self.g = g
        g.jobs = []
        # blockdev-reopen's drained sections pause the jobs there.
        g.drain_hook = self.drained

    def wakeup(self) -> None:
        self.time.wake()

    @property
    def jobs(self) -> list[Job]:
        return self.g.jobs

    @property
    def graph_mod(self) -> int:
        """GRAPH_MOD where the release has it (a permission a job takes), else 0."""
        return perms.GRAPH_MOD if self.g.profile.graph_mod_perm else 0

    # -- lookup ----------------------------------------------------------------
    def find(self, jid: str) -> Job | None:
        for j in self.jobs:
            if j.id == jid:
                return j
        return None

    def get_job(self, jid: str) -> Job:
        j = self.find(jid)
        if j is None:
            raise BlockError.of("job.not-found")
        return j

    def get_block_job(self, jid: str) -> Job:
        j = self.find(jid)
        # find_block_job: blockdev-create's job is a job, not a block job
        if j is None or not j.block_job:
            raise BlockError.of("job.block-job-not-found", "DeviceNotActive", jid=jid)
        return j

    # -- creation (job_create / block_job_create) -------------------------------
    def create_job(self, jid: str, jtype: str, args: dict, block_job: bool = True) -> Job:
        """job_create: a new job, ``created``, with no links yet."""
        if not id_wellformed(jid):
            raise BlockError.of("job.id-invalid", id=jid)
        if self.find(jid) is not None:
            raise BlockError.of("job.id-in-use", id=jid)
        job = Job(self, jid, jtype, args, block_job)
        if self.group is not None:
            job.txn = self.group
        job.txn.jobs.insert(0, job)
        self.jobs.append(job)
        job.transition("created")
        return job

    def create(self, jid: str | None, jtype: str, args: dict, main: Node,
               perm: int, shared: int, tx: Transaction) -> Job:
        """block_job_create: the job and its link to ``main``; undone with ``tx``."""
        # block_job_create: without an id, the node's BlockBackend name.
        jid = self.g.device_name(main) if jid is None else jid
        if not self.g.profile.job_main_backend:
            job = self.create_job(jid, jtype, args)
            tx.on_abort(lambda: self.early_fail(job))
            self.add_bdrv(job, "main node", main, perm, shared, tx)
        else:
            # Before 6.0 the permissions are the job's own BlockBackend's,
            # taken before the job exists (blk_new_with_bs, then job_create).
            blk = self._new_backend(main, perm, shared, tx)
            job = self.create_job(jid, jtype, args)
            tx.on_abort(lambda: self.early_fail(job))
            job.main_blk = blk
            self.add_bdrv(job, "main node", main, 0, perms.ALL, tx)
        speed = args.get("speed", 0)
        if speed < 0:
            raise BlockError.of("job.speed-negative")
        job.speed = speed
        job.limit.set_speed(speed)
        return job

    def early_fail(self, job: Job) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
        if job in job.txn.jobs:
            job.txn.jobs.remove(job)
        if job.status == "created":
            job.transition("null")

    def add_bdrv(self, job: Job, name: str, node: Node, perm: int, shared: int,
                 tx: Transaction) -> Edge:
        e = attach_fixed(self.g, job, node, name, perm, shared, tx)
        if node not in job.nodes:
            job.nodes.append(node)
        return e

    def remove_all_bdrv(self, job: Job) -> None:
        with all_or_nothing() as tx:
            release_children(self.g, job, tx)
        job.nodes.clear()

    def start(self, job: Job, driver: JobDriver) -> None:
        """job_start: the kind's body runs at once up to its first yield."""
        job.driver = driver
        job.co = _co_entry(job, driver)
        job.pause_count -= 1
        if self._drained:
            self._enter_drained(job)
        job.busy = True
        job.paused = False
        job.transition("running")
        job.enter()
        self.wakeup()

    # -- completion (job_completed and the txn functions) -------------------------
    def body_done(self, job: Job) -> None:
        """job_co_entry: the body is over and job_exit runs in a bottom half,
        so when a command ran the job (a drain's end, resume, set-speed,
        cancel) its completion comes after that command's reply, as the main
        loop's next turn (the runner).  Under the virtual clock, at once."""
        if self._in_runner or self.time.virtual:
            self.completed(job)
        else:
            self._exits.append(job)
            self.wakeup()

    def command_begins(self) -> None:
        """The monitor dispatches a command: the pending job exits run
        first, and a slow request that has waited its commands out ends in
        the main loop's turn after this one (the runner is woken)."""
        self.commands += 1
        self.flush_exits()
        if any(j.waiting_on is not None and j.waiting_on.commands is not None
               for j in self.jobs):
            self.wakeup()

    def flush_exits(self) -> None:
        """Run the pending job_exit bottom halves: the main loop does before
        it dispatches the next command."""
        if not self._exits:
            return
        self.g.generation += 1
        self._in_runner = True
        try:
            for job in list(self._exits):
                self._run_exit(job)
        finally:
            self._in_runner = False

    def _run_exit(self, job: Job) -> None:
        if job in self._exits:
            self._exits.remove(job)
            if job in self.jobs and not job.is_completed():
                self.completed(job)

    def completed(self, job: Job) -> None:
        """job_completed: the body is over; the job's transaction goes on."""
        self.update_rc(job)
        if job.ret:
            self.txn_abort(job)
        else:
            self.txn_success(job)

    @staticmethod
    def update_rc(job: Job) -> None:
        """job_update_rc: a cancelled job fails with ECANCELED; a failed one aborts."""
        if not job.ret and job.is_cancelled():
            job.ret = -errno.ECANCELED
        if job.ret:
            if job.error is None:
                job.error = os.strerror(-job.ret)
            job.transition("aborting")

    def txn_success(self, job: Job) -> None:
        """job_completed_txn_success: wait for the group, then all go pending
        (and finalize unless one of them waits for job-finalize)."""
        job.transition("waiting")
        txn = job.txn
        if any(not other.is_completed() for other in txn.jobs):
            return
        for other in list(txn.jobs):
            other.transition("pending")
            if not other.auto_finalize:
                self.emit("BLOCK_JOB_PENDING", {"type": other.type, "id": other.id})
        if all(other.auto_finalize for other in txn.jobs):
            self.do_finalize(job)

    def do_finalize(self, job: Job) -> None:
        """job_do_finalize: prepare every job of the group, then finalize each
        (or tear the group down at the first that fails)."""
        for other in list(job.txn.jobs):
            if other.ret == 0:
                other.ret = other.driver.prepare(other)
                self.update_rc(other)
            if other.ret:
                self.txn_abort(job)
                return
        for other in list(job.txn.jobs):
            self.finalize_single(other)

    def txn_abort(self, job: Job) -> None:
        """job_completed_txn_abort: the group's other jobs are force-cancelled
        and run to their end, then every job of the group is finalized."""
        txn = job.txn
        if txn.aborting:
            return      # another job of the group is tearing it down
        txn.aborting = True
        for other in list(txn.jobs):
            if other is not job:
                self.cancel_async(other, True)
        while txn.jobs:
            other = txn.jobs[0]
            if not other.is_completed():
                self.finish_sync(other)
            self.finalize_single(other)

    def finish_sync(self, job: Job) -> None:
        """job_finish_sync: run a (cancelled) job until its body is over."""
        for _ in range(100_000):
            self._run_exit(job)
            if job.is_completed():
                return
            if job.co is None:
                if not job.deferred:     # never started
                    self.update_rc(job)
                return
            job.enter()
        # A body that does not end when cancelled ends here.
        if job.co is not None:
            job.co.close()
            job.co = None
        job.deferred = True
        job.busy = False
        if not job.ret:
            job.ret = -errno.ECANCELED
        self.update_rc(job)

    def finalize_single(self, job: Job) -> None:
        """job_finalize_single: commit or abort, clean, the completion event,
        concluded (and dismissed when auto-dismiss)."""
        self.update_rc(job)
        if job.ret == 0:
            job.driver.commit(job)
        else:
            job.driver.abort(job)
        job.driver.clean(job)
        for blk in list(job.backends):
            self.remove_backend(job, blk)
        data = self.completion_data(job)
        if not job.block_job:
            pass    # a plain job (blockdev-create): no BLOCK_JOB_* events
        elif job.is_cancelled():
            self.emit("BLOCK_JOB_CANCELLED", data)
        else:
            if job.ret:
                data["error"] = self.block_job_error(job)
            self.emit("BLOCK_JOB_COMPLETED", data)
        if job in job.txn.jobs:
            job.txn.jobs.remove(job)
        job.transition("concluded")
        if job.auto_dismiss:
            self.dismiss(job)

    def completion_data(self, job: Job) -> dict:
        return {"device": job.id, "len": job.total, "offset": job.current,
                "speed": job.speed, "type": job.type}

    def dismiss(self, job: Job) -> None:
        job.transition("null")
        # block_job_free: the job's links go when the job does.
        self.remove_all_bdrv(job)
        self.free_main_backend(job)
        if job in self.jobs:
            self.jobs.remove(job)

    def set_ready(self, job: Job) -> None:
        job.ready_flag = True
        job.transition("ready")
        self.emit("BLOCK_JOB_READY", self.completion_data(job))

    # -- verbs -------------------------------------------------------------------
    def pause(self, job: Job) -> None:
        job.apply_verb("pause")
        if job.user_paused:
            raise BlockError.of("job.already-paused")
        job.user_paused = True
        self._pause(job)

    def _pause(self, job: Job) -> None:
        job.pause_count += 1
        # 6.0+ wakes a sleeping job so that it pauses now; before, it pauses
        # at its next pause point (a rate-limited job: when its sleep ends).
        if not job.paused and self.g.profile.job_pause_wakes:
            job.enter_if_sleeping()

    def resume(self, job: Job) -> None:
        # job_user_resume: "not paused" is checked before the verb table, so a
        # concluded job the user never paused answers that, not the verb text.
        if not job.user_paused or job.pause_count <= 0:
            raise BlockError.of("job.resume-not-paused")
        job.apply_verb("resume")
        job.user_paused = False
        job.io_status = "ok"        # block_job_user_resume
        self._resume(job)

    def _resume(self, job: Job) -> None:
        job.pause_count -= 1
        if job.pause_count:
            return
        w = job.waiting_on
        if w is not None and not job.busy:
            # job_resume kicks only a job without a timer pending: where a
            # pause does not wake a sleeping job (Profile.job_pause_wakes),
            # one still in its timed sleep is left to its timer.
            if (self.g.profile.job_pause_wakes or w is PAUSED or w.deadline is None
                    or w.defer or w.deadline <= job.now()):
                job.enter()
        self.wakeup()

    def set_speed(self, job: Job, speed: int) -> None:
        job.apply_verb("set-speed")
        if speed < 0:
            raise BlockError.of("job.speed-negative")
        old = job.speed
        job.limit.set_speed(speed)
        job.speed = speed
        if speed and speed <= old:
            return
        job.enter_if_sleeping(timer_only=True)
        self.wakeup()

    def complete(self, job: Job) -> None:
        job.apply_verb("complete")
        # Before 6.0 a job asked to pause (still ready until it does) could
        # not be completed either (Profile.complete_refuses_paused).
        paused = job.pause_count > 0 and self.g.profile.complete_refuses_paused
        if job.cancelled or not job.driver.can_complete or paused:
            raise BlockError.of("job.cannot-complete", id=job.id)
        job.driver.complete(job)
        job.enter_if_sleeping()
        self.wakeup()

    def finalize(self, job: Job) -> None:
        job.apply_verb("finalize")
        self.do_finalize(job)

    def user_dismiss(self, job: Job) -> None:
        job.apply_verb("dismiss")
        self.dismiss(job)

    def cancel_all(self) -> None:
        """job_cancel_sync_all (quit): every job is force-cancelled, or
        dismissed if it already concluded."""
        # qemu_cleanup: the block layer is drained first (and stays so), then
        # the jobs are cancelled: running jobs pause, and leave the pause
        # point to abort.
        # job_cancel_sync_all waits for each job's end (AIO_WAIT_WHILE runs
        # the bottom halves): the jobs complete here, as if from the runner.
        self.flush_exits()
        self._in_runner = True
        try:
            if self.jobs:
                nodes = list(self.g.nodes.values())
                self.drained(nodes, True)
            for job in reversed(list(self.jobs)):
                if job in self.jobs and job.status != "null":
                    self._cancel(job, True)
        finally:
            self._in_runner = False

    def cancel(self, job: Job, force: bool) -> None:
        job.apply_verb("cancel")
        self._cancel(job, force)

    def block_job_cancel(self, job: Job, force: bool) -> None:
        """qmp_block_job_cancel: a job the user paused goes only by force."""
        if job.user_paused and not force:
            raise BlockError.of("job.device-job-paused", device=job.id)
        self.cancel(job, force)

    def cancel_async(self, job: Job, force: bool) -> None:
        """job_cancel_async: mark the job cancelled (and no longer user-paused);
        a soft request is ignored once the body has finished."""
        force = job.driver.cancel(job, force)
        if job.user_paused:
            job.user_paused = False
            job.pause_count -= 1
        if force or not job.deferred:
            job.cancelled = True
            job.force_cancel |= force

    def _cancel(self, job: Job, force: bool) -> None:
        if job.status == "concluded":
            self.dismiss(job)
            return
        self.cancel_async(job, force)
        if job.co is None and not job.deferred:
            self.completed(job)
        elif job.deferred:
            if job.is_cancelled() and job.status in ("waiting", "pending"):
                self.txn_abort(job)
        else:
            if job.waiting_on is not None and not job.busy and job.pause_count == 0:
                job.enter()
            elif job.waiting_on is not None and (job.waiting_on is not PAUSED
                                                 or job.is_cancelled()):
                job.enter()
        self.wakeup()

    def reset(self, g: BlockGraph) -> None:
        """x-qmpd-reset: the jobs go without a word (no events), and the
        manager serves the new graph ``g`` from now on."""
        for job in list(self.jobs):
            job.co = None
        self.jobs.clear()
        self._exits.clear()
        self._drained.clear()     # a section 5.2's drive-backup never ended
        self._bind(g)
        self.time.reset()

    # -- time ----------------------------------------------------------------------
    def run_due(self) -> None:
        """Complete the jobs whose body ended under a command, then enter
        every job whose timer has expired, until none is due."""
        self._in_runner = True
        try:
            for job in list(self._exits):
                self._run_exit(job)
            for _ in range(1_000_000):
                now = self.time.now()
                due = [j for j in list(self.jobs) if j.runnable(now)]
                if not due:
                    return
                if any(j.waiting_on is not None and j.waiting_on.defer for j in due):
                    # The thread pool's completion bottom half finishes every
                    # request done by then, not only the first one due.
                    due += [j for j in list(self.jobs) if j not in due and _in_flight(j)]
                due.sort(key=completion_order)
                for j in due:
                    if j.runnable(self.time.now()) or _in_flight(j):
                        j.enter()
        finally:
            self._in_runner = False

    def any_due(self) -> bool:
        now = self.time.now()
        return bool(self._exits) or any(j.runnable(now) for j in self.jobs)

    def next_deadline(self) -> int | None:
        """The earliest timer of a sleeping job (None: no job sleeps on a timer)."""
        best = None
        for j in self.jobs:
            w = j.waiting_on
            if j.co is None or w is None or w.deadline is None or j.at_breakpoint():
                continue
            if best is None or w.deadline < best:
                best = w.deadline
        return best
