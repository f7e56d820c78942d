"""blockdev-mirror and the active commit, which share mirror.c's loop (QEMU
7.2 blockdev.c qmp_blockdev_mirror / blockdev_mirror_common, block/mirror.c
mirror_start_job, mirror_run, mirror_exit_common; commit_active_start is in
:mod:`qmpd.engine.jobs.commit`).

A ``mirror_top`` filter (implicit and auto-named unless ``filter-node-name``)
takes the source's place; the job copies what is dirty into the target
through its own BlockBackend, says BLOCK_JOB_READY once nothing is dirty,
and keeps copying what guest writes dirty.  ``job-complete`` pivots: the
source's users move to the target.  Cancelling a ready job completes it
without the pivot; ``force`` cancels it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from qmpd.engine import bitmaps as bmod
from qmpd.engine import perms, surgery
from qmpd.engine.allocation import allocated_above, status_above
from qmpd.engine.drivers.base import Driver
from qmpd.engine.drivers.mirror_top import ForwardWritesMirrorTopDriver, PlainMirrorTopDriver
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph
from qmpd.engine.jobs.data import FLUSH_COMMANDS, FLUSH_NS, CopyError, grow_base
from qmpd.engine.jobs.ratelimit import SLICE_NS
from qmpd.engine.jobs.state import Job, JobDriver, JobManager, Sleep
from qmpd.engine.node import Node, Parent
from qmpd.engine.perms import CONSISTENT_READ as CR
from qmpd.engine.perms import RESIZE as RS
from qmpd.engine.perms import WRITE as W
from qmpd.engine.perms import WRITE_UNCHANGED as WU
from qmpd.engine.transaction import Transaction

MIRROR_CHUNK = 1024 * 1024      # mirror's MAX_IO_BYTES
MIRROR_BUF_SIZE = 1 << 24       # DEFAULT_MIRROR_BUF_SIZE
MIRROR_MAX_IN_FLIGHT = 16
MIRROR_MAX_IOV = 1024           # IOV_MAX: a read takes at most this many chunks
# The filter a mirror job inserts (bdrv_mirror_top without is_commit).
MIRROR_TOP = PlainMirrorTopDriver()
# mirror_top before 6.0, for mirrors and active commits alike.
FORWARD_WRITES_MIRROR_TOP = ForwardWritesMirrorTopDriver()


class JobBitmap(bmod.DirtyBitmap):
    """The active commit's anonymous dirty bitmap (no name in queries)."""

    def info(self, with_status: bool = False) -> dict[str, Any]:
        d = super().info(with_status)
        d.pop("name", None)
        return d


@dataclass(eq=False)
class MirrorOps:
    """How a mirror_iteration reaches its nodes: the source's block status
    (bdrv_block_status_above(source, NULL): bytes, data, zero), the three
    MirrorMethods on the target (``copy`` raises CopyError, the zero and
    discard writes OSError), and what the target says about itself."""

    status: Callable[[int, int], tuple[int, bool, bool]]
    copy: Callable[[int, int], None]
    write_zeroes: Callable[[int, int], None]
    discard: Callable[[int, int], None]
    # bdrv_get_info(target)'s cluster size (0: none, any range is aligned)
    target_cluster: int = 0
    # bdrv_can_write_zeroes_with_unmap(target): zero and discard requests
    # then cost the rate limit nothing.
    zeroes_free: bool = False
    # mirror_run's cow_bitmap: reads grow to the target's clusters (0: no),
    # except where both ends are in chunks copied whole already (``cow``)
    cow_cluster: int = 0
    cow: set[int] = field(default_factory=set)


def mirror_loop(job: Job, bm: bmod.DirtyBitmap, length: int, ops: MirrorOps,
                buf_size: int = MIRROR_BUF_SIZE,
                policies: tuple[str, str] = ("report", "report"),
                flush: Callable[[], bool] = lambda: False) -> Generator[Sleep, None, None]:
    """mirror_run's main loop: each pass copies the next dirty area
    (mirror_iteration) and sleeps as long as the rate limit asks for its last
    request; with nothing dirty the job becomes ready, then looks again
    every slice -- and, ready, goes on at once while anything is dirty (the
    rate limit no longer holds it) -- until completed or cancelled.  An
    I/O error makes the area dirty again and the policy of the side that
    failed (``policies``: on-source-error, on-target-error) acts, as
    mirror_read_complete / mirror_write_complete: ``stop`` pauses the job,
    ``ignore`` copies the area again later, ``report`` ends the job with the
    error (OSError).  ``flush`` (mirror_flush) flushes the target before the
    job becomes ready and before it completes; it says whether the target
    had writes to flush."""
    job.total = job.current + bm.count()
    cursor = 0      # s->dbi: where the next iteration looks for dirty chunks
    # The first requests wait on I/O (the thread pool): they are issued under
    # the command that started the job, which replies before they complete
    # (their progress, or an error's event, come after the reply), and a
    # cancel that comes meanwhile still lets them finish.
    first = bool(bm.count())
    if first:
        yield Sleep(job.now(), defer=True)
    while True:
        yield from job.pause_point()
        if job.is_cancelled() and not first:
            return
        cnt = bm.count()
        job.total = job.current + cnt
        delay = 0
        failed = False
        if cnt:
            delay, cursor, failed = _iteration(job, bm, length, ops, cursor, buf_size, policies)
        first = False
        should_complete = False
        if cnt == 0:
            if not job.ready_flag:
                try:
                    pending = flush()
                except OSError as e:
                    if job.error_action(False, e.errno, policies[1]) == "report":
                        raise
                    # mirror_flush failed: go round again (a stop has paused
                    # the job)
                    yield from job.sleep_ns(SLICE_NS)
                    continue
                # A target with writes to flush is slow I/O the job waits for
                # (ready only a while after the command that woke it, or in
                # the next drain); with nothing to flush, at once.
                if pending and not job.mgr.time.virtual:
                    yield job.slow_io(FLUSH_NS, FLUSH_COMMANDS)
                job.mgr.set_ready(job)
            should_complete = job.should_complete or job.cancelled
            cnt = bm.count()
        if cnt == 0 and should_complete:
            # bdrv_drained_begin(bs), then one more look and mirror_flush
            try:
                flush()
            except OSError as e:
                if job.error_action(False, e.errno, policies[1]) == "report":
                    raise
                yield from job.sleep_ns(SLICE_NS)
                continue
            return
        if failed:
            # A request failed and its area is dirty again (a stop has paused
            # the job): QEMU's I/O takes time before the next try, qmpd's
            # none, so the next try waits a slice rather than spin.
            yield from job.sleep_ns(max(delay, SLICE_NS))
            continue
        if job.ready_flag and not should_complete:
            # Ready, the job goes round again at once while anything was
            # dirty (its rate limit no longer holds it), else after a slice;
            # where the release sleeps through block_job_ratelimit_sleep
            # (8.0+), not even through a zero timer.
            if cnt == 0:
                yield from job.sleep_ns(SLICE_NS)
            elif not job.mgr.g.profile.ratelimit_sleep_rechecks:
                yield from job.sleep_ns(0)
            continue
        yield from job.rate_sleep(delay)


def _iteration(job: Job, bm: bmod.DirtyBitmap, length: int, ops: MirrorOps, cursor: int,
               buf_size: int, policies: tuple[str, str]) -> tuple[int, int, bool]:
    """mirror_iteration: the consecutive dirty chunks from the next dirty one
    (from ``cursor``, else from the start), up to the buffer size, cleared,
    then copied in requests that each cover one run of the source's block
    status -- data in operations of up to max(buf_size / MAX_IN_FLIGHT, 1 MiB),
    a zero run (aligned to the target's clusters) as one zero write.  Each
    request is counted by the rate limit (zero writes not, where the target
    writes zeroes by unmapping) and the delay is what the limit asked for the
    last one.  Returns (delay, the new cursor, whether a request failed)."""
    gran = bm.granularity
    chunk = bm.next_dirty(cursor >> bm.shift)
    if chunk is None:
        chunk = bm.next_dirty(0)
    assert chunk is not None
    offset = chunk << bm.shift
    nb = 1
    while nb * gran < buf_size:
        nxt = offset + nb * gran
        if nxt >= length or (nxt >> bm.shift) not in bm.bits:
            break
        nb += 1
    cursor = offset + nb * gran
    _clear_range(bm, offset, nb * gran)
    max_io = max(buf_size // MIRROR_MAX_IN_FLIGHT, MIRROR_CHUNK)
    delay = 0
    failed = False
    while nb > 0 and offset < length:
        try:
            io, data, zero = ops.status(offset, nb * gran)
            failed = False
        except OSError:
            io, data, zero, failed = min(nb * gran, max_io), True, False, True
        if data and not failed:
            io = min(io, max_io)
        io -= io % gran
        method = "copy"
        if io < gran:
            io = gran
        elif not failed and not data and _cluster_aligned(ops.target_cluster, offset, io):
            method = "zero" if zero else "discard"
        io = min(io, length - offset)
        done, ok = _perform(job, bm, ops, offset, io, method, buf_size, length, policies)
        failed |= not ok
        offset += done
        nb -= -(-done // gran)
        delay = job.rate_delay(0 if method != "copy" and ops.zeroes_free else done)
    return delay, cursor, failed


def _cluster_aligned(cluster: int, offset: int, n: int) -> bool:
    """bdrv_round_to_clusters leaves the range as it is."""
    return not cluster or (offset % cluster == 0 and n % cluster == 0)


def _perform(job: Job, bm: bmod.DirtyBitmap, ops: MirrorOps, offset: int, n: int,
             method: str, buf_size: int, length: int,
             policies: tuple[str, str]) -> tuple[int, bool]:
    """mirror_perform: one request; returns the bytes it handled from
    ``offset`` on (a copy grown to the target's clusters handles more), and
    whether it succeeded."""
    handled = n
    if method == "copy":
        # mirror_co_read: no more than the buffer (and max_iov chunks)
        n = handled = min(buf_size, bm.granularity * MIRROR_MAX_IOV, n)
        if ops.cow_cluster:
            start, size = _cow_align(ops.cow, bm.granularity, ops.cow_cluster, offset, n, length)
            handled = start + size - offset
            offset, n = start, size
    try:
        if method == "copy":
            ops.copy(offset, n)
        else:
            try:
                (ops.write_zeroes if method == "zero" else ops.discard)(offset, n)
            except OSError as e:
                raise CopyError(e, False) from None
    except CopyError as e:
        bm.set_range(offset, n)
        action = job.error_action(e.is_read, e.errno, policies[0] if e.is_read else policies[1])
        if action == "report":
            raise OSError(e.errno, os.strerror(e.errno)) from None
        return handled, False
    if ops.cow_cluster:
        ops.cow.update(range(offset // bm.granularity, -(-(offset + n) // bm.granularity)))
    job.progress(n)
    return handled, True


def _dirty_init_waits(job: Job) -> Generator[Sleep, None, None]:
    """mirror_dirty_init's block-status queries wait on I/O: the job goes on
    (to ready, when nothing is dirty) only after the command has replied.
    sync=none has no dirty init and becomes ready before the reply."""
    yield Sleep(job.now(), defer=True)
    yield from job.pause_point()


def _cow_align(cow: set[int], gran: int, cluster: int, off: int, n: int,
               length: int) -> tuple[int, int]:
    """mirror_cow_align: (offset, bytes) of the read, grown to the target's
    clusters unless both its first and last chunks were copied already."""
    if off // gran in cow and (off + n - 1) // gran in cow:
        return off, n
    start = off - off % cluster
    end = min(-(-(off + n) // cluster) * cluster, length)
    return start, end - start


def copy_checked(g: BlockGraph, src: Node, dst: Node, offset: int, n: int) -> None:
    """mirror's MIRROR_METHOD_COPY: it writes what it read, zero bytes or not
    (only the block status makes zero writes); its I/O errors say whether the
    read or the write failed."""
    try:
        data = g.read(src, offset, n)
    except OSError as e:
        raise CopyError(e, True) from None
    try:
        g.write(dst, offset, data)
    except OSError as e:
        raise CopyError(e, False) from None


def _unflushed(node: Node) -> bool:
    """Whether a flush of ``node`` has writes to send to the disk (its own,
    or those of a child it writes to)."""
    if node.write_gen != node.flushed_gen and not node.cache_no_flush:
        return True
    return any(_unflushed(e.child) for e in node.children if e.perm & (W | WU))


def _clear_range(bm: bmod.DirtyBitmap, offset: int, length: int) -> None:
    first = offset >> bm.shift
    last = (offset + length - 1) >> bm.shift
    bm.bits.difference_update(range(first, last + 1))


def _dirty_allocated(g: BlockGraph, bm: bmod.DirtyBitmap, top: Node, base: Node | None,
                     length: int) -> None:
    """mirror_dirty_init: what is allocated above ``base`` is dirty."""
    offset = 0
    while offset < length:
        alloc, n = allocated_above(g, top, base, offset, length - offset)
        if alloc:
            bm.set_range(offset, n)
        offset += max(n, 1)


class _MirrorDriver(JobDriver):
    """What mirror_job_driver and commit_active_job_driver share."""

    can_complete = True

    # buf-size (0: DEFAULT_MIRROR_BUF_SIZE)
    buf_size = 0
    # on-source-error, on-target-error (an active commit's on-error for both)
    policies = ("report", "report")

    def _loop(self, job: Job, bm: bmod.DirtyBitmap, length: int, source: Node,
              target: Node, copy: Callable[[int, int], None], unmap: bool, keep_error: bool,
              cow_cluster: int = 0) -> Generator[Sleep, None, int]:
        """mirror_run's loop from ``source`` (the filter's child) into
        ``target``: ``copy`` is MIRROR_METHOD_COPY, zero writes unmap with
        ``unmap`` (s->unmap)."""
        g = job.mgr.g
        info = g.get_info(target)

        def write_zeroes(off: int, n: int) -> None:
            g.write_zeroes(target, off, n, unmap)

        def discard(off: int, n: int) -> None:
            g.discard(target, off, n)

        ops = MirrorOps(status=lambda off, n: status_above(g, source, off, n),
                        copy=copy, write_zeroes=write_zeroes, discard=discard,
                        target_cluster=info[0] if info is not None else 0,
                        zeroes_free=can_write_zeroes_with_unmap(g, target),
                        cow_cluster=cow_cluster)
        try:
            yield from mirror_loop(job, bm, length, ops, self.buf_size or MIRROR_BUF_SIZE,
                                   self.policies, lambda: self.flush_target(job, target))
        except OSError as e:
            if keep_error:
                job.error = e.strerror or "Input/output error"
            return -(e.errno or errno.EIO)
        return 0

    def cancel(self, job: Job, force: bool) -> bool:
        return force or not job.ready_flag

    def target_node(self) -> Node | None:
        raise NotImplementedError

    def flush_target(self, job: Job, target: Node) -> bool:
        """mirror_flush: flush the target; whether it had writes to flush
        (bdrv_co_flush then waits for the disk).  Raises OSError as the
        flush fails (the job's on-target-error decides)."""
        if not target.alive:
            return False
        pending = _unflushed(target)
        job.mgr.g.flush(target)
        return pending

    def _exit(self, job: Job, pivot: bool) -> None:
        raise NotImplementedError

    def prepare(self, job: Job) -> int:
        self._exit(job, job.should_complete)
        return 0

    def abort(self, job: Job) -> None:
        self._exit(job, False)


@dataclass(eq=False)
class MirrorJob(_MirrorDriver):
    """mirror_job_driver: source into target, pivot on complete."""

    bs: Node
    target: Node
    mtop: Node
    target_blk: Parent
    sync: str
    bitmap: bmod.DirtyBitmap
    # s->replaces: a node name, looked up again at job-complete (s->to_replace)
    replaces: str | None = None
    to_replace: Node | None = None
    # zero_target is sync=full as the user gave it (qmp_blockdev_mirror),
    # before a sync=top without backing becomes full.
    zero_target: bool = False
    # MirrorCopyMode: "write-blocking" also copies guest writes as they
    # happen; block-job-change can only switch background -> write-blocking.
    copy_mode: str = "background"
    # A write was only marked dirty since the job became ready (actively-synced off).
    spoiled: bool = False
    # drive-mirror: what becomes of the target's backing chain at the end
    # ("leave" for blockdev-mirror; see qmpd.engine.drive_jobs).
    backing_mode: str = "leave"
    backing_base: Node | None = None
    # s->unmap: drive-mirror's "unmap" (blockdev-mirror: always)
    unmap: bool = True

    def target_node(self) -> Node | None:
        return self.target

    def prepare(self, job: Job) -> int:
        if self.backing_mode != "leave":
            # mirror_exit_common: the filter stops taking WRITE on the source
            # before the target's backing changes (the source may become it).
            g = job.mgr.g
            if self.mtop.alive:
                self.mtop.state = "stop"
                tx = Transaction()
                try:
                    g.refresh_perms([self.mtop], tx)
                    tx.commit()
                except BlockError:
                    tx.abort()
            finish_mirror_backing(g, self.target, self.backing_mode, self.backing_base)
        self._exit(job, job.should_complete)
        # a replacement that can no longer be made fails the job
        return -errno.EPERM if self.failed else 0

    def actively_synced(self, job: Job) -> bool:
        """mirror_query's actively-synced: on once the job is ready in write-blocking mode."""
        return bool(job.ready_flag) and self.copy_mode == "write-blocking" and not self.spoiled

    def write_passed(self, job: Job, offset: int, length: int,
                     copy: Callable[[Node], None]) -> None:
        """A write went through the filter (bdrv_mirror_top_do_write), where the
        job's bitmap sits on it (Profile.mirror_bitmap_on_filter): copy it to
        the target now (write-blocking, job running) or mark it dirty."""
        if self.bitmap.node is not self.mtop:
            return
        if self.copy_mode == "write-blocking" and job.ret >= 0 and not job.cancelled:
            copy(self.target)
            return
        self.spoiled = True
        self.bitmap.set_range(offset, length)

    def change(self, copy_mode: str) -> None:
        """mirror_change."""
        if copy_mode == self.copy_mode:
            return
        if copy_mode != "write-blocking":
            raise BlockError.of("job.copy-mode-change-unimplemented", mode=copy_mode)
        self.copy_mode = copy_mode

    def run(self, job: Job) -> Generator[Sleep, None, int]:
        g = job.mgr.g
        if job.is_cancelled():
            return 0
        length = g.virtual_size(self.bs)
        if length != g.virtual_size(self.target):
            job.error = "Source and target image have different sizes"
            return -errno.EINVAL
        bm = self.bitmap
        if self.zero_target and not can_write_zeroes_with_unmap(g, self.target):
            # mirror_dirty_init: a target that cannot write zeroes with unmap
            # is copied in full.
            bm.set_range(0, length)
        elif self.sync != "none":
            # bdrv_is_allocated_above(bs, base_overlay, include_base=true):
            # sync=top copies what the source's own image holds, above its
            # backing file (base_overlay is the node right above that base).
            overlay = surgery.skip_filters(self.bs) if self.sync == "top" else None
            _dirty_allocated(g, bm, self.bs, overlay, length)
            yield from _dirty_init_waits(job)

        def copy(off: int, n: int) -> None:
            copy_checked(g, self.bs, self.target, off, n)

        # mirror_run: a target whose image names a backing file it was not
        # opened with (drive-mirror's mode=existing, sync=top) and whose
        # clusters are larger than the granularity gets whole clusters.
        info = g.get_info(self.target)
        cluster = info[0] if info is not None and info[0] else 0
        cow_cluster = cluster if (self.target.auto_backing_file and self.target.backing is None
                                  and bm.granularity < cluster) else 0
        return (yield from self._loop(job, bm, length, self.bs, self.target, copy, self.unmap,
                                      keep_error=True, cow_cluster=cow_cluster))

    def complete(self, job: Job) -> None:
        """mirror_complete: the node to replace is looked up by name now."""
        if self.replaces is not None:
            node = job.mgr.g.nodes.get(self.replaces)
            if node is None:
                raise BlockError(f"Node name '{self.replaces}' not found")
            self.to_replace = node
        super().complete(job)

    failed: bool = False

    def _exit(self, job: Job, pivot: bool) -> None:
        g = job.mgr.g
        owner = self.bitmap.node     # the source (7.2) or the filter (10.0)
        if self.bitmap in owner.dirty_bitmaps:
            owner.dirty_bitmaps.remove(self.bitmap)
        if self.target_blk in job.backends:
            job.mgr.remove_backend(job, self.target_blk)
        to_replace = self.to_replace or self.bs
        if pivot and self.target.alive and self.bs.alive and to_replace.alive:
            if to_replace.read_only != self.target.read_only:
                surgery.set_read_only(g, self.target, to_replace.read_only)
            # A replacement that fails (the graph's permissions, or no longer
            # allowed) is reported on stderr by QEMU (error_report_err); the
            # job fails with EPERM ("Operation not permitted").
            if can_replace(self.bs, to_replace):
                try:
                    with surgery.all_or_nothing() as tx:
                        # bdrv_replace_node(to_replace, target): with the source
                        # itself the filter's link moves too, so dropping the
                        # filter below hands its users to the target.
                        surgery.replace_node_noperm(g, to_replace, self.target, tx)
                        surgery.refresh_replaced(g, self.target, to_replace, tx)
                except BlockError as e:
                    job.mgr.error_report(g.profile.render_all(e.parts))
                    self.failed = True
            else:
                job.mgr.error_report(f"Can no longer replace '{to_replace.name}' by "
                               f"'{self.target.name}', because it can no longer be "
                               "guaranteed that doing so would not lead to an abrupt "
                               "change of visible data")
                self.failed = True
        _drop_mirror_top(job, self.mtop)


@dataclass(eq=False)
class ActiveCommitJob(_MirrorDriver):
    """commit_active_job_driver: the active layer into its base, ready, then
    pivot on complete."""

    bs: Node
    base: Node
    mtop: Node
    target_blk: Parent
    bitmap: JobBitmap | None = None

    def target_node(self) -> Node | None:
        return self.base

    def run(self, job: Job) -> Generator[Sleep, None, int]:
        g = job.mgr.g
        length = g.virtual_size(self.bs)
        # mirror_run: an active commit grows a shorter base first.
        ret = grow_base(g, self.base, length)
        if ret < 0:
            return ret
        overlay = surgery.find_overlay(self.bs, self.base)
        gran = bmod.default_granularity(g, self.base)
        if g.profile.mirror_bitmap_on_filter:
            # 10.0: as for a mirror, the bitmap belongs to the filter, which
            # marks the writes that pass it (write_passed).
            bm = self.bitmap = JobBitmap(self.mtop, "", gran)
            bm.disabled = True
            self.mtop.dirty_bitmaps.insert(0, bm)
            self.mtop.filter_job = job
        else:
            bm = self.bitmap = JobBitmap(self.bs, "", gran)
            self.bs.dirty_bitmaps.append(bm)
        _dirty_allocated(g, bm, self.bs, overlay, length)
        yield from _dirty_init_waits(job)

        def copy(off: int, n: int) -> None:
            copy_checked(g, self.bs, self.base, off, n)

        # commit_active_start: the job unmaps (mirror_start_job's unmap)
        return (yield from self._loop(job, bm, length, self.bs, self.base, copy, True,
                                      keep_error=False))

    def write_passed(self, job: Job, offset: int, length: int,
                     copy: Callable[[Node], None]) -> None:
        """A write went through the filter that holds the bitmap (10.0):
        the area is dirty again (active commit copies in the background)."""
        if self.bitmap is not None and self.bitmap.node is self.mtop:
            self.bitmap.set_range(offset, length)

    def _exit(self, job: Job, pivot: bool) -> None:
        """mirror_exit_common with the source as the node to replace: the
        parents of the active layer (the filter among them) move to the base,
        so the users above the filter end on the base while the old top keeps
        its own chain (and stays if something else holds it)."""
        g = job.mgr.g
        surgery.unfreeze_chain(self.mtop, self.base)
        if self.bitmap is not None and self.bitmap in self.bitmap.node.dirty_bitmaps:
            self.bitmap.node.dirty_bitmaps.remove(self.bitmap)
        self.mtop.filter_job = None
        if self.target_blk in job.backends:
            job.mgr.remove_backend(job, self.target_blk)
        if pivot and self.bs.alive and self.base.alive:
            if self.bs.read_only != self.base.read_only:
                surgery.set_read_only(g, self.base, self.bs.read_only)
            with surgery.all_or_nothing() as tx:
                surgery.replace_node_noperm(g, self.bs, self.base, tx)
                surgery.refresh_replaced(g, self.base, self.bs, tx)
        _drop_mirror_top(job, self.mtop)


def _drop_mirror_top(job: Job, mtop: Node) -> None:
    """mirror_exit_common's end: the job lets go of its nodes and the filter
    goes; before 6.0 the job's own BlockBackend, now taking nothing, is put
    back on the filter, which stays (with its child) until the job is freed."""
    job.mgr.remove_all_bdrv(job)
    job.mgr.drop_main_perms(job)
    if mtop.alive:
        with surgery.all_or_nothing() as tx:
            mtop.state = "stop"
            surgery.drop_filter(job.mgr.g, mtop, tx, keep=job.main_blk)


def can_replace(bs: Node, to_replace: Node) -> bool:
    """bdrv_recurse_can_replace: ``to_replace`` is ``bs`` or is reached through
    filters only; quorum may replace one of its own children that has no other
    parent."""
    n: Node | None = bs
    while n is not None:
        if n is to_replace:
            return True
        if n.driver.name == "quorum":
            for e in n.children:
                if e.child is to_replace:
                    return len(to_replace.parents) == 1
            return False
        n = n.driver.filtered(n)
    return False


def check_to_replace_node(g: BlockGraph, bs: Node, name: str) -> Node:
    """check_to_replace_node: exists, not blocked, reachable without a change of data."""
    node = g.nodes.get(name)
    if node is None:
        raise BlockError.of("mirror.replaces-node-not-found", name=name)
    g.op_blocker(node)
    if not can_replace(bs, node):
        raise BlockError(f"Cannot replace '{name}' by a node mirrored from '{bs.name}', "
                         "because it cannot be guaranteed that doing so would not lead to an "
                         "abrupt change of visible data")
    return node


def can_write_zeroes_with_unmap(g: BlockGraph, node: Node) -> bool:
    """bdrv_can_write_zeroes_with_unmap: the node was opened with
    discard=unmap and its zero writes may deallocate."""
    return node.discard == "unmap" and node.driver.zeroes_may_unmap(g, node)


def target_perm(g: BlockGraph, target: Node, source: Node, perm: int) -> int:
    """A job's permissions on its target, with resize where the target is the smaller."""
    return perm | RS if g.virtual_size(target) < g.virtual_size(source) else perm


def mirror_top_driver(g: BlockGraph, flavour: Driver) -> Driver:
    """The release's mirror_top for a mirror (or, ``flavour``, an active commit)."""
    return FORWARD_WRITES_MIRROR_TOP if g.profile.mirror_top_forwards_writes_only else flavour


def start_mirror(mgr: JobManager, args: dict, zero_target: bool | None = None,
                 backing_mode: str = "leave") -> Job:
    """qmp_blockdev_mirror and mirror_start_job.

    ``zero_target`` is drive-mirror's (None: blockdev-mirror's, sync=full);
    ``backing_mode`` drive-mirror's too (a target whose backing chain the
    job changes at the end is a graph change: its BlockBackend takes
    graph-mod where the release has it)."""
    g = mgr.g
    device = args["device"]
    bs = surgery.lookup_bs(g, device, device)
    if not surgery.is_root(bs):
        raise BlockError.of("commit.need-root-block-node")
    target = surgery.lookup_bs(g, args["target"], args["target"])
    sync = args["sync"]
    gran = args.get("granularity", 0)
    if gran != 0 and (gran < 512 or gran > 64 * 1048576):
        raise BlockError.of("mirror.parameter-granularity-expects-value-range")
    if gran & (gran - 1):
        raise BlockError.of("mirror.parameter-granularity-expects-power-2")
    surgery.check_not_busy(g, bs)
    surgery.op_blocker(g, target)
    if any(isinstance(e.parent, Parent) and e.parent.kind == "device-backend"
           for e in target.parents):
        raise BlockError.of("mirror.cannot-mirror-attached-block-device")
    if sync == "top" and g.filter_or_cow(bs) is None:
        sync = "full"
    replaces = args.get("replaces")
    if replaces is None:
        # Mirror from the node under implicit filters, keeping them on top.
        under = bs
        while under.implicit and under.driver.is_filter:
            f = under.driver.filtered(under)
            if f is None:
                break
            under = f
        if under is not bs:
            replaces = under.name
    if replaces is not None:
        to_replace = check_to_replace_node(g, bs, replaces)
        if g.virtual_size(bs) != g.virtual_size(to_replace):
            raise BlockError("cannot replace image with a mirror image of different size")
    # mirror_start, then mirror_start_job
    if sync in ("incremental", "bitmap"):
        raise BlockError.of("mirror.sync-mode-not-supported", sync=sync)
    if args.get("buf-size", 0) < 0:
        raise BlockError.of("mirror.invalid-parameter-buf-size")
    if surgery.skip_filters(bs) is surgery.skip_filters(target):
        raise BlockError.of("mirror.mirror-node-into-itself")
    with surgery.all_or_nothing() as tx:
        mt = surgery.new_filter_node(g, mirror_top_driver(g, MIRROR_TOP),
                                     args.get("filter-node-name"), tx)
        mt.total = g.virtual_size(bs)
        surgery.append(g, mt, bs, tx)
        job = mgr.create(args.get("job-id"), "mirror", args, mt, CR,
                         CR | WU | W | perms.GRAPH_MOD, tx)
        # mirror_start_job: a target in the source's backing chain may be
        # resized to the source's length, and others may read and write it.
        tperm, tshared = W, WU
        if g.chain_contains(bs, target):
            tperm = target_perm(g, target, bs, W)
            tshared |= CR | W | perms.GRAPH_MOD
        if backing_mode != "leave":
            tperm |= mgr.graph_mod
        blk = mgr.add_backend(job, target, tperm, tshared, tx)
        if not gran:
            gran = bmod.default_granularity(g, target)
        if g.profile.mirror_bitmap_on_filter:
            # 10.0: the bitmap belongs to the filter and records nothing by
            # itself; the filter marks what passes (see _passed).
            bm = bmod.DirtyBitmap(mt, "", gran)
            bm.disabled = True
            mt.dirty_bitmaps.insert(0, bm)
            mt.filter_job = job
        else:
            bm = bmod.DirtyBitmap(bs, "", gran)
            bs.dirty_bitmaps.insert(0, bm)
        tx.on_abort(lambda: bmod._release(bm))
        mgr.add_bdrv(job, "source", bs, 0, WU | W | CR, tx)
        mgr.add_bdrv(job, "target", target, 0, perms.ALL, tx)
    driver = MirrorJob(bs, target, mt, blk, sync, bm, replaces=replaces,
                       zero_target=(args["sync"] == "full" if zero_target is None
                                    else zero_target),
                       copy_mode=args.get("copy-mode", "background"))
    driver.buf_size = args.get("buf-size", 0)
    driver.policies = (args.get("on-source-error", "report"),
                       args.get("on-target-error", "report"))
    mgr.start(job, driver)
    return job


def finish_mirror_backing(g: BlockGraph, target: Node, mode: str,
                          base: Node | None) -> None:
    """mirror_exit_common: the target's backing chain once the copy is done."""
    unfiltered = surgery.skip_filters(target)
    if unfiltered is None or not unfiltered.alive:
        return
    tx = Transaction()
    try:
        if mode == "source":
            if surgery.cow_bs(unfiltered) is not base and base is not None and base.alive:
                g.attach(unfiltered, base, "backing", perms.ROLE_COW, tx)
                unfiltered.no_backing = False
        elif mode == "open" and unfiltered.backing is None:
            unfiltered.no_backing = False
            g._open_backing_file(unfiltered, {}, tx)
    except BlockError:
        tx.abort()
        return
    tx.commit()
