"""blockdev-mirror on the job machinery of :mod:`qmpd.engine.jobs` (QEMU 7.2
blockdev.c qmp_blockdev_mirror / blockdev_mirror_common, block/mirror.c
mirror_start_job, mirror_run, mirror_exit_common).

A ``mirror_top`` filter (implicit and auto-named unless ``filter-node-name``)
takes the source's place; the job copies what the sync mode selects into the
target through its own BlockBackend, says BLOCK_JOB_READY once nothing is
dirty, and keeps copying what guest writes dirty.  ``job-complete`` pivots:
the source's users move to the target.  Cancelling a ready job completes it
without the pivot; ``force`` cancels it.
"""

from __future__ import annotations

import errno
from collections.abc import Generator
from typing import Any

from qmpd.engine import bitmaps as bmod
from qmpd.engine import perms
from qmpd.engine.drivers.mirror_top import PlainMirrorTopDriver
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph, Transaction
from qmpd.engine.node import Node, Parent

CR, W, WU, RS = perms.CONSISTENT_READ, perms.WRITE, perms.WRITE_UNCHANGED, perms.RESIZE


# The filter a mirror job inserts (bdrv_mirror_top without is_commit).
MIRROR_TOP = PlainMirrorTopDriver()


class MirrorJob:
    """mirror_job_driver: run, complete, cancel and the exit work."""

    def __init__(self, bs: Node, target: Node, mtop: Node, target_blk: Parent, sync: str,
                 bitmap: bmod.DirtyBitmap) -> None:
        self.bs = bs
        self.target = target
        self.mtop = mtop
        self.target_blk = target_blk
        self.sync = sync
        self.bitmap = bitmap

    def run(self, job: Any) -> Generator[Any, None, int]:
        from qmpd.engine.jobs import allocated_above, copy_range, mirror_loop

        g: BlockGraph = job.mgr.g
        if job.is_cancelled():
            return 0
        length = g.virtual_size(self.bs)
        if length != g.virtual_size(self.target):
            job.error = "Source and target image have different sizes"
            return -errno.EINVAL
        bm = self.bitmap
        if self.sync == "full" and self.target.discard != "unmap":
            # mirror_dirty_init: a target that cannot write zeroes with unmap
            # is copied in full.
            bm.set_range(0, length)
        elif self.sync != "none":
            base = g.filter_or_cow(self.bs) if self.sync == "top" else None
            offset = 0
            while offset < length:
                alloc, n = allocated_above(g, self.bs, base, offset, length - offset)
                if alloc:
                    bm.set_range(offset, n)
                offset += max(n, 1)
        def copy(off: int, n: int) -> None:
            # mirror_iteration: zero areas of the source become zero writes.
            for o, m, _alloc, zero in g.block_status(self.bs, off, n):
                if zero:
                    g.write_zeroes(self.target, o, m, False)
                else:
                    copy_range(g, self.bs, self.target, o, m)

        try:
            yield from mirror_loop(job, bm, length, copy)
        except OSError as e:
            job.error = e.strerror or "Input/output error"
            return -(e.errno or errno.EIO)
        return 0

    def cancel(self, job: Any, force: bool) -> bool:
        return force or not job.ready_flag

    def complete(self, job: Any) -> None:
        job.should_complete = True

    def _exit(self, job: Any, pivot: bool) -> None:
        from qmpd.engine.jobs import drop_filter
        from qmpd.engine.snapshot import replace_node_noperm, set_read_only

        g: BlockGraph = job.mgr.g
        if bmod.find(self.bs, "") is self.bitmap or self.bitmap in self.bs.dirty_bitmaps:
            self.bs.dirty_bitmaps.remove(self.bitmap)
        if self.target_blk in job.backends:
            job.mgr.remove_backend(job, self.target_blk)
        if pivot and self.target.alive and self.bs.alive:
            if self.bs.read_only != self.target.read_only:
                set_read_only(g, self.target, self.bs.read_only)
            tx = Transaction()
            # bdrv_replace_node(src, target): the filter's link moves too, so
            # dropping the filter below hands its users to the target.
            replace_node_noperm(g, self.bs, self.target, tx)
            g.refresh_perms([self.target, self.bs], tx)
            tx.commit()
        job.mgr.remove_all_bdrv(job)
        if self.mtop.alive:
            tx = Transaction()
            self.mtop.state = "stop"
            drop_filter(g, self.mtop, tx)
            tx.commit()

    def prepare(self, job: Any) -> int:
        self._exit(job, job.should_complete)
        return 0

    def commit(self, job: Any) -> None:
        pass

    def abort(self, job: Any) -> None:
        self._exit(job, False)

    def clean(self, job: Any) -> None:
        pass


def _is_root(n: Node) -> bool:
    return all(isinstance(e.parent, Parent) for e in n.parents)


def start_mirror(mgr: Any, args: dict) -> Any:
    """qmp_blockdev_mirror."""
    from qmpd.engine.snapshot import lookup_bs, op_blocker

    g: BlockGraph = mgr.g
    device = args["device"]
    bs = lookup_bs(g, device, device)
    if not _is_root(bs):
        raise BlockError("Need a root block node")
    target = lookup_bs(g, args["target"], args["target"])
    sync = args["sync"]
    gran = args.get("granularity", 0)
    if gran != 0 and (gran < 512 or gran > 64 * 1048576):
        raise BlockError("Parameter 'granularity' expects a value in range [512B, 64MB]")
    if gran & (gran - 1):
        raise BlockError("Parameter 'granularity' expects a power of 2")
    _busy(g, bs)
    op_blocker(g, target)
    if any(isinstance(e.parent, Parent) and e.parent.kind == "device-backend"
           for e in target.parents):
        raise BlockError("Cannot mirror to an attached block device")
    if sync == "top" and g.filter_or_cow(bs) is None:
        sync = "full"
    if sync in ("incremental", "bitmap"):
        raise BlockError(f"Sync mode '{sync}' not supported")
    if args.get("buf-size", 0) < 0:
        raise BlockError("Parameter 'buf-size' expects a non-negative value")
    if bs is target:
        raise BlockError("Can't mirror node into itself")
    tx = Transaction()
    try:
        mt = Node(MIRROR_TOP)
        g._assign_name(mt, args.get("filter-node-name"), tx)
        mt.implicit = "filter-node-name" not in args
        mt.total = g.virtual_size(bs)
        from qmpd.engine.snapshot import append

        append(g, mt, bs, tx)
        job = mgr.create(args.get("job-id"), "mirror", args, mt, CR, CR | WU | W, tx)
        tperm = W
        if g.virtual_size(target) < g.virtual_size(bs):
            tperm |= RS
        blk = mgr.add_backend(job, target, tperm, WU, tx)
        if not gran:
            gran = bmod.default_granularity(g, target)
        bm = bmod.DirtyBitmap(bs, "", gran)
        bs.dirty_bitmaps.insert(0, bm)
        tx.on_abort(lambda: bmod._release(bm))
        mgr.add_bdrv(job, "source", bs, 0, WU | W | CR, tx)
        mgr.add_bdrv(job, "target", target, 0, perms.ALL, tx)
    except BaseException:
        tx.abort()
        raise
    tx.commit()
    job.driver = MirrorJob(bs, target, mt, blk, sync, bm)
    mgr.start(job, job.driver.run(job))
    return job


def _busy(g: BlockGraph, node: Node) -> None:
    for j in g.jobs:
        if node in getattr(j, "nodes", ()):
            raise BlockError(f"Node '{node.name}' is busy: block device is in use by block "
                             f"job: {j.type}")
