"""blockdev-backup (QEMU 7.2 blockdev.c do_backup_common, block/backup.c,
block/copy-before-write.c, block/block-copy.c).

The job inserts a ``copy-before-write`` filter above the source (auto-named
unless ``filter-node-name`` is given) with the source as its ``file`` child and
the target as its ``target`` child, then copies the clusters the sync mode
selects: all of them (``full``), the allocated ones of the top image
(``top``), those dirty in a bitmap (``bitmap``/``incremental``), or none
(``none``: it only copies old data before guest writes through the filter,
until cancelled).  Zero areas are written as zeroes, as block-copy does.  A
sync bitmap is frozen with a successor while the job runs and afterwards
either replaced by it (bits copied) or merged with it, per ``bitmap-mode``.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import dataclass, field

from qmpd.engine import bitmaps as bmod
from qmpd.engine import perms, surgery
from qmpd.engine.allocation import allocated_above, is_allocated
from qmpd.engine.drivers.copy_before_write import BackupTopDriver, CopyBeforeWriteDriver
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph
from qmpd.engine.jobs.data import IO_COMPLETION_NS, CopyError
from qmpd.engine.jobs.state import Job, JobDriver, JobManager, Sleep
from qmpd.engine.node import Node
from qmpd.engine.transaction import Transaction

CBW = CopyBeforeWriteDriver()
CBW_ALWAYS_READS = CopyBeforeWriteDriver(always_reads_source=True)
BACKUP_TOP = BackupTopDriver()
DEFAULT_CLUSTER = 65536          # BLOCK_COPY_CLUSTER_SIZE_DEFAULT
BLOCK_COPY_MAX_BUFFER = 1 << 20


@dataclass(eq=False)
class BackupJob(JobDriver):
    """backup_job_driver, and the job's block-copy state."""

    source: Node
    target: Node
    cbw: Node
    sync: str
    bitmap: bmod.DirtyBitmap | None
    bitmap_mode: str | None
    cluster: int
    dirty: set[int] = field(default_factory=set)   # the block-copy bitmap, in clusters
    job: Job | None = None
    copy_bitmap: bmod.DirtyBitmap | None = None
    # copy-before-write's done_bitmap (none on 5.2's backup-top)
    done_bitmap: bmod.DirtyBitmap | None = None
    on_source_error: str = "report"
    on_target_error: str = "report"
    # x-perf's max-chunk: the longest block-copy task (0: no limit of its own)
    max_chunk: int = 0

    @property
    def shift(self) -> int:
        return self.cluster.bit_length() - 1

    # -- block-copy ----------------------------------------------------------
    def _copy(self, g: BlockGraph, offset: int, n: int) -> None:
        """block_copy_do_copy; an I/O error says whether it was the read."""
        for off, m, _alloc, zero in g.block_status(self.source, offset, n):
            if zero:
                data = None
            else:
                try:
                    data = g.read(self.source, off, m)
                except OSError as e:
                    raise CopyError(e, True) from None
            try:
                if data is None:
                    g.write_zeroes(self.target, off, m, False)
                else:
                    g.write(self.target, off, data)
            except OSError as e:
                raise CopyError(e, False) from None

    def copy_before_write(self, g: BlockGraph, offset: int, length: int) -> None:
        """cbw_do_copy_before_write: old data of still-dirty clusters goes first."""
        if length <= 0:
            return
        size = g.virtual_size(self.source)
        first = offset >> self.shift
        last = (offset + length - 1) >> self.shift
        for i in range(first, last + 1):
            if i in self.dirty:
                self.dirty.discard(i)
                off = i << self.shift
                try:
                    self._copy(g, off, min(self.cluster, size - off))
                except CopyError as e:
                    # on-cbw-error=break-guest-write: the guest write fails
                    self.dirty.add(i)
                    raise OSError(e.errno, os.strerror(e.errno)) from None
                if self.job is not None:
                    self.job.progress(min(self.cluster, size - off))
        if self.done_bitmap is not None:
            # done_bitmap: the whole cluster-aligned range of the write
            self.done_bitmap.bits.update(range(first, last + 1))

    # -- the job body (backup_run) ---------------------------------------------
    def run(self, job: Job) -> Generator[Sleep, None, int]:
        g = job.mgr.g
        size = g.virtual_size(self.source)
        # backup_init_bcs_bitmap: the progress's total is set here, not at
        # creation (a job started paused shows 0 until it runs).
        job.total = len(self.dirty) << self.shift
        if self.sync == "none":
            # Only old data before guest writes is copied, until cancelled.
            while not job.is_cancelled():
                yield from job.yield_idle()
            return 0
        if self.sync == "top":
            for i in sorted(self.dirty):
                off = i << self.shift
                n = min(self.cluster, size - off)
                alloc, _ = is_allocated(g, self.source, off, n)
                if not alloc:
                    self.dirty.discard(i)
            job.total = len(self.dirty) << self.shift
        yield from job.pause_point()
        if g.profile.backup_copies_by_cluster:
            return (yield from self._loop_by_cluster(job, size))
        # block_copy_dirty_clusters: tasks of up to BLOCK_COPY_MAX_BUFFER of
        # contiguous dirty clusters, cut where the source's block status
        # changes; with a speed, a task waits while the rate limit says so.
        cs = self.cluster
        # block_copy_task_create: MIN_NON_ZERO(block_copy_chunk_size, max_chunk)
        chunk = max(cs, BLOCK_COPY_MAX_BUFFER)
        if self.max_chunk:
            chunk = min(chunk, self.max_chunk)
        while self.dirty:
            if job.is_cancelled():
                return 0
            first = min(self.dirty)
            count = 1
            while count * cs < chunk and first + count in self.dirty:
                count += 1
            off = first << self.shift
            n = min(count * cs, size - off)
            # block_copy_block_status: bdrv_block_status_above down the whole
            # chain (sync=top: the source alone), so a run ends where the
            # layer holding the data changes.
            bottom = self.source if self.sync == "top" else None
            _, num = allocated_above(g, self.source, bottom, off, n)
            if num < n:
                n = cs if num < cs else (num - num % cs)
            delay = job.rate_delay(0)
            if delay > 0:
                yield from job.sleep_ns(delay)
                continue
            job.rate_delay(n)
            for i in range(first, first + -(-n // cs)):
                self.dirty.discard(i)
            try:
                self._copy(g, off, min(n, size - off))
            except CopyError as e:
                ret = yield from self._failed(job, e, range(first, first + -(-n // cs)))
                if ret is not None:
                    return ret
                continue
            job.progress(min(n, size - off))
        # The last request's completion, too, is seen after the reply, and
        # after commands the client sends right behind it (the thread pool
        # takes a while to copy); it wakes the job in backup_loop's job_yield,
        # whose pause point a pause asked for meanwhile stops at (everything
        # copied, not yet done).
        # (Under a virtual job clock, at once: the clock then moves only when
        # told, and QEMU's I/O does not wait on qtest's clock.)
        yield job.slow_io(IO_COMPLETION_NS)
        yield from job.pause_point()
        return 0

    def _loop_by_cluster(self, job: Job, size: int) -> Generator[Sleep, None, int]:
        """backup_loop before 6.0: the dirty clusters in order, one block_copy
        each, and before each a yield_and_check (a sleep, of what the rate
        limit asks for the bytes copied since the last one, or none); a
        failed cluster is tried again until its policy says report."""
        cs = self.cluster
        bytes_read = 0
        pos = 0
        while True:
            ahead = [i for i in self.dirty if i >= pos]
            if not ahead:
                break
            i = min(ahead)
            while True:
                if job.is_cancelled():
                    return 0
                delay = job.rate_delay(bytes_read)
                bytes_read = 0
                yield from job.sleep_ns(delay)
                if job.is_cancelled():
                    return 0
                if i not in self.dirty:
                    break       # a guest write copied it meanwhile
                off = i << self.shift
                n = min(cs, size - off)
                self.dirty.discard(i)
                try:
                    self._copy(job.mgr.g, off, n)
                except CopyError as e:
                    ret = yield from self._failed(job, e, range(i, i + 1))
                    if ret is not None:
                        return ret
                    continue
                job.progress(n)
                bytes_read += n
                break
            pos = i + 1
        yield Sleep(job.now(), defer=True)
        return 0

    def _failed(self, job: Job, e: CopyError, clusters: range) -> Generator[Sleep, None, int | None]:
        """A request that failed.  It completes in the background: the job acts
        on it after the command that started it has replied (other jobs of its
        transaction have started and copied meanwhile).  Then, as
        block_copy_task_end and backup_loop: its clusters are dirty again and
        the policy of the side that failed decides.  The job's result when
        the error is reported, else None (go on; a stop has paused the job)."""
        yield Sleep(job.now(), defer=True, failed=True)
        self.dirty.update(clusters)
        action = job.error_action(e.is_read, e.errno, self.on_source_error
                                  if e.is_read else self.on_target_error)
        if action == "report":
            job.error = os.strerror(e.errno)
            return -e.errno
        if action == "stop":
            yield from job.pause_point()
        return None

    def _cleanup_sync_bitmap(self, ret: int) -> None:
        bm = self.bitmap
        if bm is None:
            return
        sync = (ret == 0 or self.bitmap_mode == "always") and self.bitmap_mode != "never"
        if sync:
            bmod.abdicate(bm)
            if ret < 0 and self.bitmap_mode == "always":
                for i in self.dirty:
                    bm.set_range(i << self.shift, self.cluster)
        else:
            bmod.reclaim(bm)

    def commit(self, job: Job) -> None:
        self._cleanup_sync_bitmap(0)

    def abort(self, job: Job) -> None:
        self._cleanup_sync_bitmap(-1)

    def clean(self, job: Job) -> None:
        # backup_clean: the job lets go of its nodes and bdrv_cbw_drop puts
        # the source back in the filter's place.  The filter is dropped first
        # here because the job's reference to it stands for the one
        # bdrv_cbw_drop releases; a drive-backup target, which only the job
        # held, goes with them (before the job is dismissed).
        self.cbw.state = None
        if self.copy_bitmap is not None:
            bmod._release(self.copy_bitmap)
        g = job.mgr.g
        if g.profile.backup_filter_is_backup_top:
            # backup_clean before 6.0: bdrv_backup_top_drop only; the job
            # keeps its links (and so the filter, with its target) until it
            # is freed.
            if self.cbw.alive:
                with surgery.all_or_nothing() as tx:
                    _drop_backup_top(g, self.cbw, tx)
            return
        if self.cbw.alive:
            with surgery.all_or_nothing() as tx:
                surgery.drop_filter(g, self.cbw, tx)
        job.mgr.remove_all_bdrv(job)


def _drop_backup_top(g: BlockGraph, top: Node, tx: Transaction) -> None:
    """bdrv_backup_top_drop: its users (all but the job's own links) move to
    the source, which it lets go of (bdrv_set_backing_hd(NULL))."""
    e = top.child(BACKUP_TOP.source_child)
    if e is None:
        return
    source = e.child
    for pe in list(top.parents):
        if pe.parent is source or surgery.is_job_link(pe):
            continue
        surgery.move_edge(pe, source, tx)
    g.detach(e, tx)
    g.refresh_perms([source], tx)
    g.refresh_perms([top], tx)


def _insert_backup_top(g: BlockGraph, source: Node, target: Node, name: str | None,
                       tx: Transaction) -> Node:
    """bdrv_backup_top_append (before 6.0): the target child first, then
    bdrv_append puts the filter above the source, its backing child."""
    top = Node(BACKUP_TOP)
    g._assign_name(top, name, tx)
    top.read_only = False       # bdrv_new_open_driver(..., BDRV_O_RDWR)
    top.options = {"driver": BACKUP_TOP.name, "backing": source.name, "target": target.name}
    te = g.link(top, target, "target", perms.ROLE_DATA, tx)
    g.refresh_perms([top], tx, new_edge=te)
    surgery.append(g, top, source, tx)
    return top


def _insert_cbw(g: BlockGraph, source: Node, target: Node, name: str | None,
                tx: Transaction) -> Node:
    """bdrv_cbw_append -> bdrv_insert_node: the filter takes the source's place."""
    if g.profile.backup_filter_is_backup_top:
        return _insert_backup_top(g, source, target, name, tx)
    cbw = Node(CBW_ALWAYS_READS if g.profile.cbw_always_reads_source else CBW)
    g._assign_name(cbw, name, tx)
    cbw.options = {"driver": CBW.name, "file": source.name, "target": target.name}
    fe = g.link(cbw, source, "file", perms.ROLE_FILTERED | perms.ROLE_PRIMARY, tx)
    te = g.link(cbw, target, "target", perms.ROLE_DATA, tx)
    g.refresh_perms([cbw], tx, new_edge=fe)
    g.refresh_perms([cbw], tx, new_edge=te)
    surgery.replace_node_noperm(g, source, cbw, tx, skip=fe)
    g.refresh_perms([cbw, source], tx)
    return cbw


def cluster_size(g: BlockGraph, target: Node) -> int:
    """block_copy_calculate_cluster_size."""
    gi = g.get_info(target)
    if gi is None or not gi[0]:
        return DEFAULT_CLUSTER
    return max(DEFAULT_CLUSTER, gi[0])


def create_backup(mgr: JobManager, args: dict, tx: Transaction) -> Job:
    """blockdev_backup_prepare + do_backup_common + backup_job_create.

    Returns the created job; the caller starts it with its driver
    (``mgr.start(job, job.driver)``) when the transaction commits.
    """
    g = mgr.g
    bs = surgery.lookup_bs(g, args["device"], args["device"])
    target = surgery.lookup_bs(g, args["target"], args["target"])
    sync = args["sync"]
    has_bitmap = "bitmap" in args
    mode = args.get("bitmap-mode")
    if sync in ("bitmap", "incremental") and not has_bitmap:
        raise BlockError.of("backup.must-provide-valid-bitmap-name", sync=sync)
    if sync == "incremental":
        if mode is not None and mode != "on-success":
            raise BlockError.of("backup.bitmap-sync-mode-must-success")
        mode = "on-success"
        sync = "bitmap"
    bm: bmod.DirtyBitmap | None = None
    if has_bitmap:
        bm = bmod.find(bs, args["bitmap"])
        if bm is None:
            raise BlockError.of("backup.bitmap-could-not-found", bitmap=args['bitmap'])
        if mode is None:
            raise BlockError.of("backup.bitmap-sync-mode-must-given")
        bmod.check(bm, bmod.ALLOW_RO)
        if sync == "none":
            raise BlockError.of("backup.sync-mode-none-does-not")
        if mode == "never" and sync != "bitmap":
            raise BlockError.of("backup.bitmap-sync-mode-never-no", sync=sync)
    if not has_bitmap and mode is not None:
        raise BlockError.of("backup.cannot-specify-bitmap-sync-mode")
    perf = args.get("x-perf", {})
    # backup_job_create
    if bs is target:
        raise BlockError.of("backup.source-target-cannot-same")
    if args.get("compress") and target.driver.name != "qcow2":
        raise BlockError.of("backup.compression-not-supported-drive", target=target.name)
    surgery.check_not_busy(g, bs)
    surgery.op_blocker(g, target)
    workers = perf.get("max-workers", 64)
    if workers < 1 or workers > 2**31 - 1:
        raise BlockError.of("backup.max-workers-must-between-1", max=2**31 - 1)
    if perf.get("max-chunk", 0) < 0:
        raise BlockError.of("backup.max-chunk-must-zero-means")
    if bm is not None:
        if mode != "never":
            bmod.check(bm, bmod.DEFAULT)
        bmod.create_successor(bm)
        tx.on_abort(lambda: bmod.reclaim(bm) if bm.successor is not None else None)
    size = g.virtual_size(bs)
    if g.virtual_size(target) != size:
        raise BlockError.of("backup.source-target-image-different-sizes")
    cbw = _insert_cbw(g, bs, target, args.get("filter-node-name"), tx)
    cluster = cluster_size(g, target)
    chunk = perf.get("max-chunk", 0)
    if chunk and chunk < cluster:
        raise BlockError.of("backup.required-max-chunk-less-backup", chunk=chunk, cluster=cluster)
    job = mgr.create(args.get("job-id"), "backup", args, cbw, 0, perms.ALL, tx)

    def cancel_created() -> None:
        # blockdev_backup_abort: job_cancel_sync on a job that never started.
        if job.status == "created":
            for st in ("aborting", "concluded", "null"):
                job.transition(st)
    tx.on_abort(cancel_created)
    drv = BackupJob(bs, target, cbw, sync, bm, mode, cluster,
                    on_source_error=args.get("on-source-error", "report"),
                    on_target_error=args.get("on-target-error", "report"),
                    max_chunk=chunk)
    drv.job = job
    # backup_init_bcs_bitmap
    nclusters = -(-size // cluster)
    if sync == "bitmap" and bm is not None:
        for off, n in bm.byte_ranges():
            first = off >> drv.shift
            last = (off + n - 1) >> drv.shift
            drv.dirty.update(i for i in range(first, last + 1) if i < nclusters)
    else:
        drv.dirty = set(range(nclusters))
    # The anonymous, disabled bitmaps QEMU shows: the filter's access_bitmap
    # (all set) and done_bitmap (newest first), and block-copy's copy bitmap
    # on the source, which is what is left to copy.
    size_clusters = set(range(nclusters))
    done = bmod.DirtyBitmap(cbw, "", cluster)
    access = bmod.DirtyBitmap(cbw, "", cluster)
    access.bits = size_clusters
    # block_copy_state_new's copy bitmap: on the source (7.2) or on the
    # filter itself (10.0's cbw_open passes its own node), created first.
    on_filter = g.profile.block_copy_bitmap_on_filter
    copy = bmod.DirtyBitmap(cbw if on_filter else bs, "", cluster)
    copy.bits = drv.dirty
    for b in (done, access, copy):
        b.disabled = True
    if not g.profile.backup_filter_is_backup_top:
        # backup-top had no bitmaps of its own.
        cbw.dirty_bitmaps = [access, done]
        drv.done_bitmap = done
    if on_filter:
        cbw.dirty_bitmaps.append(copy)
    else:
        bs.dirty_bitmaps.insert(0, copy)
    drv.copy_bitmap = copy
    tx.on_abort(lambda: bmod._release(copy))
    cbw.state = drv
    mgr.add_bdrv(job, "target", target, 0, perms.ALL, tx)
    job.driver = drv
    return job
