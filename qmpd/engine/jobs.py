"""Block jobs on the engine side: QEMU 7.2's job state machine (job.c), the
rate limiter (util/ratelimit), and the graph work of block-stream,
block-commit and active commit (block/stream.c, block/commit.c, block/mirror.c).

Everything here is synchronous.  A job's body (``stream_run`` & co.) is a
Python generator that plays the part of QEMU's job coroutine: it yields
``Sleep(deadline_ns)`` where QEMU calls ``job_sleep_ns`` and ``PAUSED`` where it
yields in ``job_pause_point``.  Whoever owns time (qmpd/jobs/runner.py, or a
test) resumes the job with :meth:`Job.enter` when its timer expires or when
QEMU would ``job_enter`` it (resume, set-speed, cancel, complete, end of a
drain).  Events go out through the ``emit`` callback given to the manager.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from qmpd.engine import perms
from qmpd.engine.drivers.registry import get_driver
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph, Transaction, id_wellformed
from qmpd.engine.node import Edge, Node, Parent

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
}

SLICE_NS = 100_000_000          # BLOCK_JOB_SLICE_TIME
STREAM_CHUNK = 512 * 1024
COMMIT_BUFFER = 512 * 1024
MIRROR_CHUNK = 1024 * 1024      # mirror's MAX_IO_BYTES

CR, W, WU, RS = perms.CONSISTENT_READ, perms.WRITE, perms.WRITE_UNCHANGED, perms.RESIZE


class RateLimit:
    """util/ratelimit.h, with an explicit clock."""

    def __init__(self) -> None:
        self.slice_quota = 0
        self.slice_ns = SLICE_NS
        self.slice_start = 0
        self.slice_end = 0
        self.dispatched = 0

    def set_speed(self, speed: int) -> None:
        self.slice_quota = 0 if speed == 0 else max(int(speed * self.slice_ns / 1e9), 1)

    def delay(self, n: int, now: int) -> int:
        if not self.slice_quota:
            return 0
        if self.slice_end < now:
            self.slice_start = now
            self.slice_end = now + self.slice_ns
            self.dispatched = 0
        self.dispatched += n
        if self.dispatched < self.slice_quota:
            return 0
        slices = self.dispatched / self.slice_quota
        self.slice_end = self.slice_start + int(slices * self.slice_ns)
        return self.slice_end - now


@dataclass
class Sleep:
    deadline: int | None     # None: wait until entered


PAUSED = Sleep(None)


class Job:
    """One block job (BlockJob + Job)."""

    def __init__(self, mgr: JobManager, jid: str, jtype: str, args: dict) -> None:
        self.mgr = mgr
        self.id = jid
        self.type = jtype
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
        self.co: Generator[Sleep, None, int] | None = None
        self.waiting_on: Sleep | None = None
        self.deferred = False         # body finished, completion not yet run
        self.driver: Any = None

    def user_desc(self) -> str:
        # child_job_get_parent_desc
        return f"{self.type} job '{self.id}'"

    def label(self) -> str:
        return self.id

    # -- state machine -------------------------------------------------------
    def transition(self, new: str) -> None:
        assert new in TRANSITIONS[self.status], (self.status, new)
        self.status = new
        self.mgr.emit("JOB_STATUS_CHANGE", {"status": new, "id": self.id})

    def apply_verb(self, verb: str) -> None:
        if self.status not in VERBS[verb]:
            raise BlockError(f"Job '{self.id}' in state '{self.status}' cannot accept "
                             f"command verb '{verb}'")

    def is_cancelled(self) -> bool:
        return self.force_cancel

    def should_pause(self) -> bool:
        return self.pause_count > 0

    def now(self) -> int:
        return self.mgr.clock()

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
        return w.deadline is not None and w.deadline <= now

    def enter(self) -> None:
        """Run the body until its next yield; on return, complete the job."""
        if self.co is None or self.deferred:
            return
        if self.waiting_on is PAUSED and self.should_pause():
            return
        self.waiting_on = None
        self.mgr.g.generation += 1    # the job may change what queries show
        try:
            # A zero-length sleep returns at once: QEMU's zero timer fires
            # before the monitor reads the next command.
            while True:
                w = self.waiting_on = next(self.co)
                if w is PAUSED or w.deadline is None or w.deadline > self.now():
                    break
        except StopIteration as stop:
            self.ret = stop.value or 0
            if self.ret and self.error is None:
                self.error = os.strerror(-self.ret)   # job_update_rc
            self.co = None
            self.deferred = True
            self.busy = False
            self.mgr.completed(self)

    def enter_if_sleeping(self, timer_only: bool = False) -> None:
        """job_enter_cond: wake a job that is not busy (and not paused)."""
        w = self.waiting_on
        if w is None or w is PAUSED or self.busy:
            return
        if timer_only and w.deadline is None:
            return
        self.enter()

    def error_action(self, is_read: bool, err: int) -> str:
        """block_job_error_action: the on-error policy's answer, and its event."""
        policy = self.on_error
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


class JobManager:
    """The jobs of one graph, the events they emit, and the job verbs."""

    def __init__(self, g: BlockGraph, emit: Emit, clock: Callable[[], int]) -> None:
        self.g = g
        self.emit = emit
        self.clock = clock
        self.wakeup: Callable[[], None] = lambda: None   # the runner's kick
        g.jobs = []

    @property
    def jobs(self) -> list[Job]:
        return self.g.jobs

    # -- lookup ----------------------------------------------------------------
    def find(self, jid: str) -> Job | None:
        for j in self.jobs:
            if j.id == jid:
                return j
        return None

    def get_job(self, jid: str) -> Job:
        j = self.find(jid)
        if j is None:
            raise BlockError("Job not found")
        return j

    def get_block_job(self, jid: str) -> Job:
        j = self.find(jid)
        if j is None:
            raise BlockError(f"Block job '{jid}' not found", "DeviceNotActive")
        return j

    # -- creation (job_create / block_job_create) -------------------------------
    def create(self, jid: str | None, jtype: str, args: dict, main: Node,
               perm: int, shared: int, tx: Transaction) -> Job:
        if jid is None:
            jid = ""
        if not id_wellformed(jid):
            raise BlockError.of("job.id-invalid", id=jid)
        if self.find(jid) is not None:
            raise BlockError.of("job.id-in-use", id=jid)
        job = Job(self, jid, jtype, args)
        self.jobs.append(job)
        job.transition("created")
        tx.on_abort(lambda: self.early_fail(job))
        self.add_bdrv(job, "main node", main, perm, shared, tx)
        speed = args.get("speed", 0)
        if speed < 0:
            raise BlockError("Parameter 'speed' expects a non-negative value")
        job.speed = speed
        job.limit.set_speed(speed)
        return job

    def early_fail(self, job: Job) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
        if job.status == "created":
            job.transition("null")

    def add_bdrv(self, job: Job, name: str, node: Node, perm: int, shared: int,
                 tx: Transaction) -> Edge:
        e = attach_fixed(self.g, job, node, name, perm, shared, tx)
        if node not in job.nodes:
            job.nodes.append(node)
        tx.on_abort(lambda: job.edges.remove(e) if e in job.edges else None)
        return e

    def add_backend(self, job: Job, node: Node, perm: int, shared: int,
                    tx: Transaction) -> Parent:
        blk = Parent("job-backend", "", "an unnamed block device")
        self.g.backends.append(blk)
        tx.on_abort(lambda: self.g.backends.remove(blk))
        attach_fixed(self.g, blk, node, "root", perm, shared, tx)
        job.backends.append(blk)
        return blk

    def remove_backend(self, job: Job, blk: Parent) -> None:
        tx = Transaction()
        for e in list(blk.children):
            self.g.detach(e, tx)
            self.g.unref(e.child, tx)
            if e.child.alive:
                self.g.refresh_perms([e.child], tx)
        if blk in self.g.backends:
            self.g.backends.remove(blk)
        if blk in job.backends:
            job.backends.remove(blk)
        tx.commit()

    def remove_all_bdrv(self, job: Job) -> None:
        tx = Transaction()
        for e in list(job.edges):
            self.g.detach(e, tx)
            # The job's reference may have been the last one (a streamed node).
            self.g.unref(e.child, tx)
            if e.child.alive:
                self.g.refresh_perms([e.child], tx)
        job.edges.clear()
        job.nodes.clear()
        tx.commit()

    def start(self, job: Job, body: Generator[Sleep, None, int]) -> None:
        """job_start: the body runs at once up to its first yield."""
        job.co = body
        job.pause_count -= 1
        job.busy = True
        job.paused = False
        job.transition("running")
        job.enter()
        self.wakeup()

    # -- completion (job_completed and the txn functions) -------------------------
    def completed(self, job: Job) -> None:
        # job_update_rc: a cancelled job fails with ECANCELED.
        if not job.ret and job.is_cancelled():
            job.ret = -errno.ECANCELED
        if job.ret and job.error is None:
            job.error = os.strerror(-job.ret)
        if job.ret == 0:
            job.transition("waiting")
            job.transition("pending")
            if job.auto_finalize:
                self.do_finalize(job)
            else:
                self.emit("BLOCK_JOB_PENDING", {"type": job.type, "id": job.id})
        else:
            self.txn_abort(job)

    def do_finalize(self, job: Job) -> None:
        ret = job.driver.prepare(job) if job.ret == 0 else job.ret
        if ret:
            job.ret = ret
            job.error = job.error or os.strerror(-ret)
            self.txn_abort(job)
            return
        job.driver.commit(job)
        self.finalize_single(job)

    def txn_abort(self, job: Job) -> None:
        job.transition("aborting")
        job.driver.abort(job)
        self.finalize_single(job)

    def finalize_single(self, job: Job) -> None:
        job.driver.clean(job)
        for blk in list(job.backends):
            self.remove_backend(job, blk)
        data = self.completion_data(job)
        if not getattr(job, "block_job", True):
            pass    # a plain job (blockdev-create): no BLOCK_JOB_* events
        elif job.is_cancelled():
            self.emit("BLOCK_JOB_CANCELLED", data)
        else:
            if job.ret:
                data["error"] = job.error or os.strerror(-job.ret)
            self.emit("BLOCK_JOB_COMPLETED", data)
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
            raise BlockError("Job is already paused")
        job.user_paused = True
        self._pause(job)

    def _pause(self, job: Job) -> None:
        job.pause_count += 1
        if not job.paused:
            job.enter_if_sleeping()

    def resume(self, job: Job) -> None:
        job.apply_verb("resume")
        if not job.user_paused or job.pause_count <= 0:
            raise BlockError("Can't resume a job that was not paused")
        job.user_paused = False
        job.io_status = "ok"        # block_job_user_resume
        self._resume(job)

    def _resume(self, job: Job) -> None:
        job.pause_count -= 1
        if job.pause_count:
            return
        if job.waiting_on is not None and not job.busy:
            job.enter()
        self.wakeup()

    def set_speed(self, job: Job, speed: int) -> None:
        job.apply_verb("set-speed")
        if speed < 0:
            raise BlockError("Parameter 'speed' expects a non-negative value")
        old = job.speed
        job.limit.set_speed(speed)
        job.speed = speed
        if speed and speed <= old:
            return
        job.enter_if_sleeping(timer_only=True)
        self.wakeup()

    def complete(self, job: Job) -> None:
        job.apply_verb("complete")
        if job.cancelled or not hasattr(job.driver, "complete"):
            raise BlockError(f"The active block job '{job.id}' cannot be completed")
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
        for job in reversed(list(self.jobs)):
            if job in self.jobs and job.status != "null":
                self._cancel(job, True)

    def cancel(self, job: Job, force: bool) -> None:
        job.apply_verb("cancel")
        self._cancel(job, force)

    def _cancel(self, job: Job, force: bool) -> None:
        if job.status == "concluded":
            self.dismiss(job)
            return
        cancel = getattr(job.driver, "cancel", None)
        force = cancel(job, force) if cancel is not None else True
        if job.user_paused:
            job.user_paused = False
            job.pause_count -= 1
        if not job.cancelled:
            job.force_cancel = force
            job.cancelled = True
        else:
            job.force_cancel |= force
        if job.co is None and not job.deferred:
            self.completed(job)
        elif job.deferred:
            if job.is_cancelled() and job.status in ("waiting", "pending"):
                self.txn_abort(job)
        else:
            if job.waiting_on is not None and not job.busy and job.pause_count == 0:
                job.enter()
            elif job.waiting_on is not None and job.waiting_on is not PAUSED:
                job.enter()
        self.wakeup()

    # -- drains ------------------------------------------------------------------
    def drained(self, nodes: list[Node], begin: bool) -> None:
        """A drained section over ``nodes`` (their subtrees and ancestors):
        every job with a node there pauses, then resumes at the end."""
        if not self.jobs:
            return
        area: set[int] = set()
        stack = list(nodes)
        while stack:
            n = stack.pop()
            if id(n) in area:
                continue
            area.add(id(n))
            stack.extend(e.child for e in n.children)
        up = list(nodes)
        while up:
            n = up.pop()
            for e in n.parents:
                if isinstance(e.parent, Node) and id(e.parent) not in area:
                    area.add(id(e.parent))
                    up.append(e.parent)
        for job in list(self.jobs):
            if job.deferred or job.co is None:
                continue
            held = [e.child for e in job.edges] + \
                [e.child for b in job.backends for e in b.children]
            if any(id(n) in area for n in held):
                if begin:
                    self._pause(job)
                else:
                    self._resume(job)

    def reset(self) -> None:
        for job in list(self.jobs):
            job.co = None
        self.jobs.clear()

    # -- queries -------------------------------------------------------------------
    def query_jobs(self) -> list[dict]:
        out = []
        for j in reversed(self.jobs):   # QEMU lists the newest job first
            d: dict[str, Any] = {"id": j.id, "type": j.type, "status": j.status,
                                 "current-progress": j.current, "total-progress": j.total}
            if j.ret and j.error is not None:
                d["error"] = j.error
            out.append(d)
        return out

    def query_block_jobs(self) -> list[dict]:
        out = []
        for j in reversed(self.jobs):
            if not getattr(j, "block_job", True):
                continue    # blockdev-create's job is not a block job
            d: dict[str, Any] = {"type": j.type, "device": j.id, "len": j.total,
                                 "offset": j.current, "busy": j.busy, "paused": j.paused,
                                 "speed": j.speed, "io-status": j.io_status,
                                 "ready": j.ready_flag,
                                 "status": j.status, "auto-finalize": j.auto_finalize,
                                 "auto-dismiss": j.auto_dismiss}
            if j.ret and j.error is not None:
                d["error"] = j.error
            out.append(d)
        return out


# ---------------------------------------------------------------------------
# graph helpers
def attach_fixed(g: BlockGraph, parent: Any, child: Node, name: str, perm: int, shared: int,
                 tx: Transaction) -> Edge:
    """bdrv_root_attach_child with fixed permissions (a job or a BlockBackend)."""
    e = Edge(parent, child, name, 0)
    e.perm, e.shared = perm, shared
    parent.children.append(e)
    child.parents.append(e)

    def undo() -> None:
        if e in parent.children:
            parent.children.remove(e)
        if e in child.parents:
            child.parents.remove(e)
    tx.on_abort(undo)
    g.refresh_perms([child], tx)
    return e


def move_edge(e: Edge, new: Node, tx: Transaction) -> None:
    old = e.child
    i = old.parents.index(e)
    del old.parents[i]
    e.child = new
    new.parents.append(e)

    def undo() -> None:
        new.parents.remove(e)
        e.child = old
        old.parents.insert(i, e)
    tx.on_abort(undo)


def replace_node(g: BlockGraph, old: Node, new: Node, tx: Transaction,
                 skip: Callable[[Edge], bool] = lambda e: False) -> None:
    """bdrv_replace_node: the parents of ``old`` now use ``new``."""
    for e in list(old.parents):
        if e.parent is new or skip(e):
            continue
        if e.frozen:
            raise BlockError(f"Cannot change '{e.name}' link to '{old.name}'")
        move_edge(e, new, tx)
    g.refresh_perms([new, old], tx)


def filter_or_cow_edge(n: Node) -> Edge | None:
    if n.driver.is_filter:
        f = n.driver.filtered(n)
        for e in n.children:
            if e.child is f:
                return e
        return None
    return n.backing


def freeze_chain(top: Node, base: Node | None, tx: Transaction) -> list[Edge]:
    """bdrv_freeze_backing_chain: freeze the links from ``top`` down to ``base``."""
    out = []
    n: Node | None = top
    while n is not None and n is not base:
        e = filter_or_cow_edge(n)
        if e is None:
            break
        e.frozen = True
        out.append(e)
        n = e.child

    def undo() -> None:
        for e in out:
            e.frozen = False
    tx.on_abort(undo)
    return out


def chain_below(g: BlockGraph, top: Node) -> list[Node]:
    out = []
    n = g.filter_or_cow(top)
    while n is not None:
        out.append(n)
        n = g.filter_or_cow(n)
    return out


def skip_filters(g: BlockGraph, n: Node | None) -> Node | None:
    while n is not None and n.driver.is_filter:
        n = n.driver.filtered(n)
    return n


def cow_bs(n: Node) -> Node | None:
    if n.driver.is_filter:
        return None
    b = n.backing
    return b.child if b else None


def find_overlay(g: BlockGraph, top: Node, base: Node | None) -> Node | None:
    """bdrv_find_overlay: the last non-filter node above ``base``."""
    n: Node | None = skip_filters(g, top)
    base = skip_filters(g, base)
    while n is not None:
        below = skip_filters(g, cow_bs(n))
        if below is base:
            return n
        n = below
    return None


def is_allocated(g: BlockGraph, n: Node, offset: int, length: int) -> tuple[bool, int]:
    for off, ln, alloc, _zero in g.block_status(n, offset, length):
        if off <= offset < off + ln:
            return alloc, min(off + ln - offset, length)
    return False, length


def allocated_above(g: BlockGraph, top: Node | None, bottom: Node | None, offset: int,
                    length: int) -> tuple[bool, int]:
    """bdrv_is_allocated_above(top, bottom, include_base=True)."""
    n = length
    node = top
    while node is not None:
        if node.driver.is_filter:
            node = node.driver.filtered(node)
            continue
        size = g.virtual_size(node)
        if offset < size:
            alloc, pn = is_allocated(g, node, offset, n)
            if alloc:
                return True, pn
            n = min(n, pn)
        if node is bottom:
            break
        node = cow_bs(node)
    return False, n


def copy_range(g: BlockGraph, src: Node, dst: Node, offset: int, n: int) -> None:
    write_data(g, dst, offset, g.read(src, offset, n))


def write_data(g: BlockGraph, dst: Node, offset: int, data: bytes) -> None:
    n = len(data)
    if data.count(0) == len(data):
        g.write_zeroes(dst, offset, n)
    else:
        g.write(dst, offset, data)


__all__ = ["Job", "JobManager", "RateLimit", "Sleep", "PAUSED", "STATUSES", "TRANSITIONS",
           "VERBS", "attach_fixed", "replace_node", "freeze_chain", "find_overlay",
           "allocated_above", "chain_below", "skip_filters", "copy_range"]


# ---------------------------------------------------------------------------
# lookups shared by the job commands (blockdev.c)
def lookup(g: BlockGraph, device: str | None, node: str | None) -> Node:
    """bdrv_lookup_bs: nodes have no BlockBackend names in qmpd."""
    name = node if node is not None else device
    n = g.nodes.get(name or "")
    if n is None:
        raise BlockError(f"Cannot find device='{device or ''}' nor node-name='{node or ''}'")
    return n


def find_backing_image(g: BlockGraph, top: Node, filename: str) -> Node | None:
    for n in chain_below(g, top):
        if g.filename_info(n)[0] == filename:
            return n
    return None


def is_busy(g: BlockGraph, n: Node) -> Job | None:
    for j in g.jobs:
        if n in j.nodes:
            return j
    return None


def check_busy(g: BlockGraph, n: Node) -> None:
    j = is_busy(g, n)
    if j is not None:
        raise BlockError(f"Node '{n.name}' is busy: block device is in use by block job: "
                         f"{j.type}")


def drop_filter(g: BlockGraph, filt: Node, tx: Transaction) -> None:
    """bdrv_cor_filter_drop / removing a job's filter: its parents use its child."""
    e = filter_or_cow_edge(filt)
    if e is None:
        return
    child = e.child
    for fe in filt.children:
        fe.frozen = False
    # bdrv_drop_filter: the node's users move down to its child, except the
    # jobs' own links (the job keeps its "main node" until it is freed), and
    # the filter lets go of its child.
    replace_node(g, filt, child, tx, skip=lambda pe: isinstance(pe.parent, Job))
    for fe in list(filt.children):
        g.detach(fe, tx)
    filt.monitor_owned = False
    if filt.alive and not filt.parents:
        g._delete_node(filt, tx)
    if child.alive:
        g.refresh_perms([child], tx)


def set_backing(g: BlockGraph, node: Node, new: Node | None, tx: Transaction,
                backing_file: str | None = None) -> None:
    """bdrv_set_backing_hd plus bdrv_change_backing_file's in-memory effect."""
    old = node.backing
    if old is not None:
        if new is not None and old.child is new:
            return
        # bdrv_remove_child does not refresh the old child: its own links keep
        # the permissions they had until something else refreshes them.
        g.detach(old, tx)
        g.unref(old.child, tx)
    if new is not None:
        g.attach(node, new, "backing", perms.ROLE_COW, tx)
    set_backing_string(g, node, new, backing_file)


def set_backing_string(g: BlockGraph, node: Node, new: Node | None,
                       backing_file: str | None) -> None:
    """bdrv_change_backing_file: the image header names the new backing file."""
    name = (backing_file or g.filename_info(new)[0]) if new is not None else ""
    fmt = new.driver.name if new is not None else ""
    node.auto_backing_file = name
    h = getattr(node.state, "header", None)
    if h is None:
        return
    h.backing_file = name or None
    h.backing_format = fmt or None
    # qcow2_change_backing_file: the header cluster is rewritten on disk, so a
    # later open of the image sees the new backing file.
    image_of = getattr(node.driver, "_image", None)
    if image_of is not None:
        try:
            im = image_of(g, node)
            im.backing_file = name or None
            im.backing_format = fmt or None
            im.update_header()
        except (OSError, AttributeError):
            pass


class StreamJob:
    def __init__(self, top: Node, cor: Node, base_overlay: Node, above_base: Node,
                 backing_file: str | None) -> None:
        self.top = top
        self.cor = cor
        self.base_overlay = base_overlay
        self.above_base = above_base
        self.backing_file = backing_file

    def run(self, job: Job) -> Generator[Sleep, None, int]:
        g = job.mgr.g
        top = skip_filters(g, self.top)
        if top is self.base_overlay or top is None:
            return 0
        length = g.virtual_size(self.top)
        job.total = length
        offset = 0
        delay = 0
        error = 0
        while offset < length:
            yield from job.sleep_ns(delay)
            if job.is_cancelled():
                break
            copy = False
            alloc, n = is_allocated(g, top, offset, min(STREAM_CHUNK, length - offset))
            if not alloc:
                below = cow_bs(top)
                copy, n = allocated_above(g, below, self.base_overlay, offset, n)
                if not copy and n == 0:
                    n = length - offset
            if copy:
                try:
                    copy_range(g, top, top, offset, n)
                except OSError as e:
                    action = job.error_action(True, e.errno or errno.EIO)
                    if action == "stop":
                        delay = 0
                        continue
                    if not error:
                        error = -(e.errno or errno.EIO)
                    if action == "report":
                        break
            job.progress(n)
            delay = job.rate_delay(n) if copy else 0
            offset += n
        # An error that was ignored still keeps the backing file.
        return error

    def prepare(self, job: Job) -> int:
        g = job.mgr.g
        for e in freeze_chain_edges(self.cor, self.base_overlay):
            e.frozen = False
        tx = Transaction()
        drop_filter(g, self.cor, tx)
        top = skip_filters(g, self.top)
        base = g.filter_or_cow(self.above_base)
        if top is not None and cow_bs(top) is not None:
            for e in freeze_chain_edges(top, None):
                e.frozen = False
            set_backing(g, top, base, tx, self.backing_file)
        tx.commit()
        return 0

    def commit(self, job: Job) -> None:
        pass

    def abort(self, job: Job) -> None:
        pass

    def clean(self, job: Job) -> None:
        for e in freeze_chain_edges(self.cor, self.base_overlay):
            e.frozen = False
        if self.cor.alive:
            tx = Transaction()
            drop_filter(job.mgr.g, self.cor, tx)
            tx.commit()


def freeze_chain_edges(top: Node, base: Node | None) -> list[Edge]:
    out = []
    n: Node | None = top
    while n is not None and n is not base:
        e = filter_or_cow_edge(n)
        if e is None:
            break
        out.append(e)
        n = e.child
    return out


def start_stream(mgr: JobManager, args: dict) -> Job:
    g = mgr.g
    for a, b in (("base", "base-node"), ("base", "bottom"), ("bottom", "base-node")):
        if a in args and b in args:
            raise BlockError(f"'{a}' and '{b}' cannot be specified at the same time")
    device = args["device"]
    bs = lookup(g, device, device)
    base: Node | None = None
    bottom: Node | None = None
    if "base" in args:
        base = find_backing_image(g, bs, args["base"])
        if base is None:
            raise BlockError(f"Can't find '{args['base']}' in the backing chain")
    if "base-node" in args:
        base = lookup(g, None, args["base-node"])
        if base is bs or not g.chain_contains(bs, base):
            raise BlockError(f"Node '{base.name}' is not a backing image of '{bs.name}'")
    if "bottom" in args:
        bottom = lookup(g, None, args["bottom"])
        if bottom.driver.is_filter:
            raise BlockError(f"Node '{bottom.name}' is a filter, use a non-filter node as "
                             "'bottom'")
        if not g.chain_contains(bs, bottom):
            raise BlockError(f"Node '{bottom.name}' is not in a chain starting from "
                             f"'{bs.name}'")
    n: Node | None = bs
    while n is not None and n is not base:
        check_busy(g, n)
        n = g.filter_or_cow(n)
    if base is None and "backing-file" in args:
        raise BlockError("backing file specified, but streaming the entire chain")

    if bottom is not None:
        base_overlay = above_base = bottom
    else:
        ov = find_overlay(g, bs, base)
        if ov is None:
            raise BlockError(f"'{base.name if base else ''}' is not in the backing chain of "
                             f"'{bs.name}'")
        base_overlay = above_base = ov
        if cow_bs(above_base) is not base:
            nxt = cow_bs(above_base)
            assert nxt is not None
            above_base = nxt
            while above_base.driver.filtered(above_base) is not base:
                f = above_base.driver.filtered(above_base)
                assert f is not None
                above_base = f

    tx = Transaction()
    try:
        fname = args.get("filter-node-name")
        opts: dict[str, Any] = {"driver": "copy-on-read", "file": bs.name,
                                "bottom": base_overlay.name}
        if fname is not None:
            opts["node-name"] = fname
        try:
            cor = g.open(tx, opts)
        except BlockError as e:
            raise e.prefixed("Could not create node: ") from None
        cor.implicit = fname is None
        replace_node(g, bs, cor, tx, skip=lambda e: e.parent is cor)
        freeze_chain(cor, base_overlay, tx)
        job = mgr.create(args.get("job-id"), "stream", args, cor, 0, perms.ALL, tx)
        basic = CR | WU
        mgr.add_backend(job, cor, CR, basic | W, tx)
        mgr.add_bdrv(job, "active node", bs, 0, basic | W, tx)
        stop = g.filter_or_cow(above_base)
        it = g.filter_or_cow(bs)
        while it is not None and it is not stop:
            mgr.add_bdrv(job, "intermediate node", it, 0, basic, tx)
            it = g.filter_or_cow(it)
    except BaseException:
        tx.abort()
        raise
    tx.commit()
    job.driver = StreamJob(bs, cor, base_overlay, above_base, args.get("backing-file"))
    mgr.start(job, job.driver.run(job))
    return job


class CommitJob:
    """Intermediate commit: data of ``top`` (and down to base_overlay) into ``base``."""

    def __init__(self, top: Node, base: Node, commit_top: Node, base_overlay: Node,
                 base_blk: Parent, top_blk: Parent, base_read_only: bool,
                 backing_file: str | None) -> None:
        self.top = top
        self.base = base
        self.commit_top = commit_top
        self.base_overlay = base_overlay
        self.base_blk: Parent | None = base_blk
        self.top_blk = top_blk
        self.base_read_only = base_read_only
        self.backing_file = backing_file

    def run(self, job: Job) -> Generator[Sleep, None, int]:
        g = job.mgr.g
        length = g.virtual_size(self.top)
        job.total = length
        offset = 0
        delay = 0
        while offset < length:
            yield from job.sleep_ns(delay)
            if job.is_cancelled():
                break
            copy, n = allocated_above(g, self.top, self.base_overlay, offset,
                                      min(COMMIT_BUFFER, length - offset))
            if copy:
                try:
                    data = g.read(self.top, offset, n)
                except OSError as e:
                    if job.error_action(True, e.errno or errno.EIO) == "report":
                        return -(e.errno or errno.EIO)
                    delay = 0
                    continue
                try:
                    write_data(g, self.base, offset, data)
                except OSError as e:
                    if job.error_action(False, e.errno or errno.EIO) == "report":
                        return -(e.errno or errno.EIO)
                    delay = 0
                    continue
            job.progress(n)
            delay = job.rate_delay(n) if copy else 0
            offset += n
        return 0

    def prepare(self, job: Job) -> int:
        g = job.mgr.g
        for e in freeze_chain_edges(self.commit_top, self.base):
            e.frozen = False
        if self.base_blk is not None:
            job.mgr.remove_backend(job, self.base_blk)
            self.base_blk = None
        # bdrv_drop_intermediate: the parents of commit_top now use base.
        tx = Transaction()
        ct = self.commit_top
        for e in list(ct.parents):
            if isinstance(e.parent, Node):
                move_edge(e, self.base, tx)
                set_backing_string(g, e.parent, self.base, self.backing_file)
        g.refresh_perms([self.base], tx)
        if ct.alive and not ct.parents:
            g._delete_node(ct, tx)
        tx.commit()
        return 0

    def commit(self, job: Job) -> None:
        pass

    def abort(self, job: Job) -> None:
        g = job.mgr.g
        for e in freeze_chain_edges(self.commit_top, self.base):
            e.frozen = False
        if self.base_blk is not None:
            job.mgr.remove_backend(job, self.base_blk)
            self.base_blk = None
        job.mgr.remove_all_bdrv(job)
        if self.commit_top.alive:
            tx = Transaction()
            drop_filter(g, self.commit_top, tx)
            tx.commit()

    def clean(self, job: Job) -> None:
        if self.base_read_only and self.base.alive:
            from qmpd.engine.snapshot import set_read_only

            set_read_only(job.mgr.g, self.base, True)
        if self.top_blk in job.backends:
            job.mgr.remove_backend(job, self.top_blk)


class ActiveCommitJob:
    """Active commit (mirror.c with the base as target): ready, then pivot on complete."""

    def __init__(self, bs: Node, base: Node, mtop: Node, target_blk: Parent) -> None:
        self.bs = bs
        self.base = base
        self.mtop = mtop
        self.target_blk = target_blk
        self.bitmap: Any = None

    def run(self, job: Job) -> Generator[Sleep, None, int]:
        g = job.mgr.g
        length = g.virtual_size(self.bs)
        overlay = find_overlay(g, self.bs, self.base)
        bm = self.bitmap = _job_bitmap(g, self.bs, self.base)
        # mirror_dirty_init: what is allocated above the base is dirty.
        offset = 0
        while offset < length:
            alloc, n = allocated_above(g, self.bs, overlay, offset, length - offset)
            if alloc:
                bm.set_range(offset, n)
            offset += n
        def copy(off: int, n: int) -> None:
            copy_range(g, self.bs, self.base, off, n)

        try:
            yield from mirror_loop(job, bm, length, copy)
        except OSError as e:
            return -(e.errno or errno.EIO)
        return 0

    def cancel(self, job: Job, force: bool) -> bool:
        return force or not job.ready_flag

    def complete(self, job: Job) -> None:
        job.should_complete = True

    def _exit(self, job: Job, pivot: bool) -> None:
        g = job.mgr.g
        tx = Transaction()
        for e in freeze_chain_edges(self.mtop, self.base):
            e.frozen = False
        if pivot:
            # bdrv_replace_node(top, base) for the users of top other than the
            # filter, then the filter goes.
            replace_node(g, self.bs, self.base, tx,
                         skip=lambda e: not isinstance(e.parent, Node) or e.parent is self.mtop)
        if self.bitmap is not None and self.bitmap in self.bs.dirty_bitmaps:
            self.bs.dirty_bitmaps.remove(self.bitmap)
        if self.target_blk in job.backends:
            job.mgr.remove_backend(job, self.target_blk)
        job.mgr.remove_all_bdrv(job)
        if self.mtop.alive:
            drop_filter(g, self.mtop, tx)
        tx.commit()

    def prepare(self, job: Job) -> int:
        self._exit(job, job.should_complete)
        return 0

    def commit(self, job: Job) -> None:
        pass

    def abort(self, job: Job) -> None:
        self._exit(job, False)

    def clean(self, job: Job) -> None:
        pass


def _job_bitmap(g: BlockGraph, bs: Node, target: Node) -> Any:
    """The mirror's anonymous dirty bitmap on the source (no name in queries)."""
    from qmpd.engine import bitmaps

    class JobBitmap(bitmaps.DirtyBitmap):
        def info(self) -> dict[str, Any]:
            d = super().info()
            d.pop("name", None)
            return d

    bm = JobBitmap(bs, "", bitmaps.default_granularity(g, target))
    bs.dirty_bitmaps.append(bm)
    return bm


def mirror_loop(job: Job, bm: Any, length: int,
                copy: Callable[[int, int], None]) -> Generator[Sleep, None, None]:
    """mirror_run's main loop, shared by active commit and blockdev-mirror:
    copy dirty chunks at the job's rate, become ready when nothing is dirty,
    then wait (looking again every slice) until completed or cancelled.
    ``copy(offset, length)`` raises OSError on an I/O error."""
    job.total = job.current + bm.count()
    delay = 0
    while True:
        yield from job.sleep_ns(delay)
        if job.cancelled:
            return
        ranges = bm.byte_ranges()
        job.total = job.current + bm.count()
        if not ranges:
            if not job.ready_flag:
                job.mgr.set_ready(job)
            if job.should_complete:
                return
            # Steady state: look again every slice (guest writes dirty it).
            delay = SLICE_NS
            continue
        off, n = ranges[0]
        n = min(n, MIRROR_CHUNK, length - off)
        _clear_range(bm, off, n)
        copy(off, n)
        job.progress(n)
        delay = job.rate_delay(n)


def _clear_range(bm: Any, offset: int, length: int) -> None:
    first = offset >> bm.shift
    last = (offset + length - 1) >> bm.shift
    bm.bits.difference_update(range(first, last + 1))


def _is_root(n: Node) -> bool:
    return all(isinstance(e.parent, Parent) for e in n.parents)


def start_commit(mgr: JobManager, args: dict) -> Job:
    g = mgr.g
    device = args["device"]
    bs = g.nodes.get(device)
    if bs is None:
        raise BlockError(f"Device '{device}' not found", "DeviceNotFound")
    if not _is_root(bs):
        raise BlockError("Need a root block node")
    check_busy(g, bs)
    top = bs
    if "top-node" in args and "top" in args:
        raise BlockError("'top-node' and 'top' are mutually exclusive")
    if "top-node" in args:
        top = lookup(g, None, args["top-node"])
        if not g.chain_contains(bs, top):
            raise BlockError(f"'{top.name}' is not in this backing file chain")
    elif "top" in args:
        t = find_backing_image(g, bs, args["top"]) if \
            g.filename_info(bs)[0] != args["top"] else bs
        if t is None:
            raise BlockError(f"Top image file {args['top']} not found")
        top = t
    if "base-node" in args and "base" in args:
        raise BlockError("'base-node' and 'base' are mutually exclusive")
    if "base-node" in args:
        base = lookup(g, None, args["base-node"])
        if not g.chain_contains(top, base):
            raise BlockError(f"'{base.name}' is not in this backing file chain")
    elif "base" in args:
        b = find_backing_image(g, top, args["base"])
        if b is None:
            raise BlockError(f"Can't find '{args['base']}' in the backing chain")
        base = b
    else:
        # bdrv_find_base: the bottom of the chain (top itself if it has none).
        below = chain_below(g, top)
        base = below[-1] if below else top
    n: Node | None = top
    while n is not None and n is not base:
        check_busy(g, n)
        n = g.filter_or_cow(n)
    if top is base:
        raise BlockError("cannot commit an image into itself")
    if top is bs:
        if "backing-file" in args:
            raise BlockError("'backing-file' specified, but 'top' is the active layer")
        return _start_active(mgr, args, bs, base)
    return _start_intermediate(mgr, args, bs, top, base)


def _new_filter(g: BlockGraph, drvname: str, name: str | None, tx: Transaction) -> Node:
    drv = get_driver(drvname)
    assert drv is not None
    node = Node(drv)
    g._assign_name(node, name, tx)
    node.implicit = name is None
    return node


def _start_intermediate(mgr: JobManager, args: dict, bs: Node, top: Node,
                        base: Node) -> Job:
    g = mgr.g
    tx = Transaction()
    try:
        job = mgr.create(args.get("job-id"), "commit", args, bs, 0, perms.ALL, tx)
        # commit_start: convert base to read-write (bdrv_reopen_set_read_only),
        # back to read-only if the job fails to start or when it ends.
        base_ro = base.read_only
        if base_ro:
            from qmpd.engine.snapshot import set_read_only

            set_read_only(g, base, False, quiet=False)
            tx.on_abort(lambda: set_read_only(g, base, True))
        ct = _new_filter(g, "commit_top", args.get("filter-node-name"), tx)
        ct.read_only = True     # bdrv_new_open_driver(..., flags 0)
        ct.total = g.virtual_size(top)
        g.attach(ct, top, "backing", perms.ROLE_FILTERED | perms.ROLE_PRIMARY, tx)
        replace_node(g, top, ct, tx, skip=lambda e: e.parent is ct or not isinstance(e.parent, Node))
        overlay = find_overlay(g, top, base)
        assert overlay is not None
        filtered_base = cow_bs(overlay)
        shared = WU | W
        it: Node | None = top
        while it is not None and it is not base:
            if it is filtered_base:
                shared |= CR
            mgr.add_bdrv(job, "intermediate node", it, 0, shared, tx)
            it = g.filter_or_cow(it)
        freeze_chain(ct, base, tx)
        mgr.add_bdrv(job, "base", base, 0, perms.ALL, tx)
        bperm = CR | W
        if g.virtual_size(base) < g.virtual_size(top):
            bperm |= RS
        base_blk = mgr.add_backend(job, base, bperm, CR | WU, tx)
        top_blk = mgr.add_backend(job, top, 0, perms.ALL, tx)
    except BaseException:
        tx.abort()
        raise
    tx.commit()
    job.driver = CommitJob(top, base, ct, overlay, base_blk, top_blk, base_ro,
                           args.get("backing-file"))
    mgr.start(job, job.driver.run(job))
    return job


def _start_active(mgr: JobManager, args: dict, bs: Node, base: Node) -> Job:
    g = mgr.g
    # commit_active_start: a read-only base (the old top after blockdev-snapshot)
    # is reopened read-write first, and back to read-only if the job fails to start.
    # (hook added by the block-ops helper; qmpd/engine/snapshot.py)
    from qmpd.engine.snapshot import set_read_only

    base_ro = base.read_only
    if base_ro:
        set_read_only(g, base, False, quiet=False)
    try:
        return _start_active_job(mgr, args, bs, base)
    except BlockError:
        if base_ro:
            set_read_only(g, base, True)
        raise


def _start_active_job(mgr: JobManager, args: dict, bs: Node, base: Node) -> Job:
    g = mgr.g
    tx = Transaction()
    try:
        mt = _new_filter(g, "mirror_top", args.get("filter-node-name"), tx)
        mt.total = g.virtual_size(bs)
        g.attach(mt, bs, "backing", perms.ROLE_FILTERED | perms.ROLE_PRIMARY, tx)
        replace_node(g, bs, mt, tx, skip=lambda e: e.parent is mt)
        job = mgr.create(args.get("job-id"), "commit", args, mt, CR, CR | WU | W, tx)
        tperm = W
        if g.virtual_size(base) < g.virtual_size(bs):
            tperm |= RS
        blk = mgr.add_backend(job, base, tperm, WU | CR | W, tx)
        mgr.add_bdrv(job, "source", bs, 0, WU | W | CR, tx)
        mgr.add_bdrv(job, "target", base, 0, perms.ALL, tx)
        overlay = find_overlay(g, bs, base)
        assert overlay is not None
        filtered_target = cow_bs(overlay)
        shared = WU | W
        it = g.filter_or_cow(bs)
        while it is not None and it is not base:
            if it is filtered_target:
                shared |= CR
            mgr.add_bdrv(job, "intermediate node", it, 0, shared, tx)
            it = g.filter_or_cow(it)
        freeze_chain(mt, base, tx)
    except BaseException:
        tx.abort()
        raise
    tx.commit()
    job.driver = ActiveCommitJob(bs, base, mt, blk)
    mgr.start(job, job.driver.run(job))
    return job
