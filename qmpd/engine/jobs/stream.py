"""block-stream (QEMU 7.2 blockdev.c qmp_block_stream, block/stream.c): the
data of the backing chain down to a base is copied into the top node, which
then takes the base as its backing file.

A ``copy-on-read`` filter (implicit unless ``filter-node-name``) takes the
top's place while the job runs; the links from it down to the base are
frozen.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from qmpd.engine import perms, surgery
from qmpd.engine.allocation import allocated_above, is_allocated
from qmpd.engine.drivers.copy_on_read import write_copied
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph
from qmpd.engine.jobs.data import STREAM_CHUNK, CopyError, copy_chunks
from qmpd.engine.jobs.state import Job, JobDriver, JobManager, Sleep
from qmpd.engine.node import Node
from qmpd.engine.perms import CONSISTENT_READ as CR
from qmpd.engine.perms import WRITE as W
from qmpd.engine.perms import WRITE_UNCHANGED as WU
from qmpd.engine.transaction import Transaction
from qmpd.profiles import Message


@dataclass(eq=False)
class StreamJob(JobDriver):
    """stream_job_driver.  ``cor`` is the copy-on-read filter above ``top``,
    or ``top`` itself where the release streams without one (copy-on-read
    on in ``top`` meanwhile, and ``top`` read-only again at the end if it was)."""

    top: Node
    cor: Node
    base_overlay: Node
    above_base: Node
    backing_file: str | None
    restore_read_only: bool = False

    @property
    def in_place(self) -> bool:
        return self.cor is self.top
    bs_read_only: bool = False

    def run(self, job: Job) -> Generator[Sleep, None, int]:
        found = surgery.skip_filters(self.top)
        if found is self.base_overlay or found is None:
            return 0
        # Without a filter, copy-on-read is on in the node itself while the
        # whole chain is streamed (guest reads help; base is not considered).
        cor_on = self.in_place and surgery.cow_bs(self.base_overlay) is None
        if cor_on:
            self.top.copy_on_read += 1
        try:
            return (yield from self._copy(job, found))
        finally:
            if cor_on:
                self.top.copy_on_read -= 1

    def _copy(self, job: Job, found: Node) -> Generator[Sleep, None, int]:
        g = job.mgr.g
        top, base_overlay = found, self.base_overlay
        length = g.virtual_size(self.top)

        def plan(offset: int, most: int) -> tuple[int, Callable[[], None] | None]:
            alloc, n = is_allocated(g, top, offset, most)
            if alloc:
                return n, None
            copy, n = allocated_above(g, surgery.cow_bs(top), base_overlay, offset, n)
            if not copy:
                return (n or length - offset), None
            return n, lambda: _copy_into_top(g, top, offset, n)

        # An error that was ignored still keeps the backing file.
        return (yield from copy_chunks(job, length, STREAM_CHUNK, plan, skip_ignored=True))

    def prepare(self, job: Job) -> int:
        g = job.mgr.g
        surgery.unfreeze_chain(self.cor, self.base_overlay)
        if not self.in_place:
            with surgery.all_or_nothing() as tx:
                surgery.drop_filter(g, self.cor, tx)
        ret = 0
        top = surgery.skip_filters(self.top)
        base = g.filter_or_cow(self.above_base)
        # bdrv_subtree_drained_begin(above_base): the jobs on the chain from
        # the top down pause (and, resumed, copy on) once
        subtree = g.profile.stream_drains is not None and self.above_base.alive
        if subtree:
            job.mgr.drained([self.above_base], True)
        if top is not None and surgery.cow_bs(top) is not None:
            surgery.unfreeze_chain(top, None)
            # stream_prepare: the header names the base below its filters
            named = surgery.skip_filters(base)
            try:
                with surgery.all_or_nothing() as tx:
                    surgery.set_backing(g, top, base, tx, self.backing_file,
                                        header_names=named)
            except BlockError:
                # The new link is refused (another job's permissions on the
                # base): QEMU reports it on stderr, rewrites the image's
                # backing file name all the same, and the job fails with EPERM.
                surgery.set_backing_string(g, top, named, self.backing_file)
                ret = -errno.EPERM
        if subtree:
            job.mgr.drained([self.above_base], False)
        self._restore_read_only(job)
        return ret

    def _restore_read_only(self, job: Job) -> None:
        g = job.mgr.g
        if self.restore_read_only and self.top.alive:
            # stream_clean: "Give up write permissions before making it
            # read-only" (the job's own BlockBackend, blk_set_perm).
            job.mgr.drop_main_perms(job)
            surgery.set_read_only(g, self.top, True)
            self.restore_read_only = False

    def clean(self, job: Job) -> None:
        _drain(job.mgr, self.top, 1, extra=int(self.bs_read_only) - 1)
        surgery.unfreeze_chain(self.cor, self.base_overlay)
        if self.in_place:
            self._restore_read_only(job)
        elif self.cor.alive:
            with surgery.all_or_nothing() as tx:
                surgery.drop_filter(job.mgr.g, self.cor, tx)
        if self.bs_read_only and self.top.alive:
            # the job's write permission goes first (blk_set_perm), then the reopen
            job.mgr.remove_all_bdrv(job)
            surgery.set_read_only(job.mgr.g, self.top, True)


def _drain(mgr: JobManager, top: Node, when: int, extra: int = 0) -> None:
    """The drained sections over ``top`` of the filter's insertion (``when``
    0) or of the job's completion (1), as the profile counts them: each
    pauses and resumes the other jobs there (Profile.stream_drains).  They
    drain ``top`` and what is above it, not the chain below (one of the
    completion's is stream_prepare's subtree drain, :meth:`StreamJob.prepare`)."""
    counts = mgr.g.profile.stream_drains
    if counts is None or not top.alive:
        return
    for _ in range(counts[when] + extra):
        mgr.drained([top], True, subtree=False)
        mgr.drained([top], False, subtree=False)


def _copy_into_top(g: BlockGraph, top: Node, offset: int, n: int) -> None:
    """Copy-on-read of the chunk: the data below ``top`` into ``top``
    (stream_populate reads with BDRV_REQ_COPY_ON_READ)."""
    try:
        write_copied(g, top, offset, g.read(top, offset, n))
    except OSError as e:
        raise CopyError(e, is_read=True) from None


def start_stream(mgr: JobManager, args: dict) -> Job:
    """qmp_block_stream and stream_start."""
    g = mgr.g
    for a, b in (("base", "base-node"), ("base", "bottom"), ("bottom", "base-node")):
        if a in args and b in args:
            raise BlockError.of("stream.cannot-specified-same-time", a=a, b=b)
    device = args["device"]
    bs = surgery.lookup_node(g, device, device)
    base: Node | None = None
    bottom: Node | None = None
    if "base" in args:
        base = surgery.find_backing_image(g, bs, args["base"])
        if base is None:
            raise BlockError.of("stream.find-backing-chain", base=args['base'])
    if "base-node" in args:
        base = surgery.lookup_node(g, None, args["base-node"])
        if base is bs or not g.chain_contains(bs, base):
            raise BlockError.of("stream.node-not-backing-image", base=base.name, bs=bs.name)
    if "bottom" in args:
        bottom = surgery.lookup_node(g, None, args["bottom"])
        if bottom.driver.is_filter:
            raise BlockError.of("stream.node-filter-use-non-filter", bottom=bottom.name)
        if not g.chain_contains(bs, bottom):
            raise BlockError.of("stream.node-not-chain-starting", bottom=bottom.name, bs=bs.name)
    # The op blockers of the chain from bs down to base, or to bottom inclusive.
    surgery.check_chain_not_busy(g, bs, g.filter_or_cow(bottom) if bottom is not None else base)
    if base is None and "backing-file" in args:
        raise BlockError.of("stream.backing-file-specified-streaming-entire")

    if bottom is not None:
        base_overlay = above_base = bottom
    else:
        ov = surgery.find_overlay(bs, base)
        if ov is None:
            raise BlockError.of("stream.not-backing-chain", base=base.name if base else '',
                                bs=bs.name)
        base_overlay = above_base = ov
        if surgery.cow_bs(above_base) is not base:
            nxt = surgery.cow_bs(above_base)
            assert nxt is not None
            above_base = nxt
            while above_base.driver.filtered(above_base) is not base:
                f = above_base.driver.filtered(above_base)
                assert f is not None
                above_base = f

    if not g.profile.stream_inserts_filter:
        return _start_stream_in_place(mgr, args, bs, base_overlay, above_base)
    # stream_start: a read-only node is made writable for the job (the chain
    # held frozen meanwhile) and made read-only again by stream_clean.
    bs_read_only = bs.read_only
    if bs_read_only:
        held = surgery.freeze_chain(bs, above_base, Transaction())
        try:
            surgery.set_read_only(g, bs, False, quiet=False)
        finally:
            for e in held:
                e.frozen = False
    try:
        job, cor = _create(mgr, g, args, bs, base_overlay, above_base)
    except BlockError:
        if bs_read_only:
            surgery.set_read_only(g, bs, True)
        raise
    mgr.start(job, StreamJob(bs, cor, base_overlay, above_base,
                             args.get("backing-file"), bs_read_only=bs_read_only))
    return job


def _create(mgr: JobManager, g: BlockGraph, args: dict, bs: Node, base_overlay: Node,
            above_base: Node) -> tuple[Job, Node]:
    """The filter, the job and its links, all or nothing."""
    with surgery.all_or_nothing() as tx:
        fname = args.get("filter-node-name")
        opts: dict[str, Any] = {"driver": "copy-on-read", "file": bs.name,
                                "bottom": base_overlay.name}
        if fname is not None:
            opts["node-name"] = fname
        try:
            cor = g.open(tx, opts)
        except BlockError as e:
            raise e.prefixed(Message("stream.create-node-failed-prefix")) from None
        cor.implicit = fname is None
        surgery.replace_node(g, bs, cor, tx, skip=lambda e: e.parent is cor)
        _drain(mgr, bs, 0)
        surgery.freeze_chain(cor, base_overlay, tx)
        job = mgr.create(args.get("job-id"), "stream", args, cor, 0, perms.ALL, tx)
        basic = CR | WU
        mgr.add_backend(job, cor, CR, basic | W, tx)
        mgr.add_bdrv(job, "active node", bs, 0, basic | W, tx)
        stop = g.filter_or_cow(above_base)
        it = g.filter_or_cow(bs)
        while it is not None and it is not stop:
            mgr.add_bdrv(job, "intermediate node", it, 0, basic, tx)
            it = g.filter_or_cow(it)
    return job, cor


def _start_stream_in_place(mgr: JobManager, args: dict, bs: Node, base_overlay: Node,
                           above_base: Node) -> Job:
    """stream_start before 6.0: no filter node.  The chain down to the node
    above base is frozen, the active node made read-write if it was not, and
    the job's own BlockBackend on it; copy-on-read is on in the node while
    the job copies."""
    g = mgr.g
    with surgery.all_or_nothing() as tx:
        surgery.freeze_chain(bs, above_base, tx)
        was_ro = bs.read_only
        if was_ro:
            surgery.set_read_only(g, bs, False, quiet=False)
            tx.on_abort(lambda: surgery.set_read_only(g, bs, True))
        # block_job_create's own BlockBackend (Profile.job_main_backend) takes
        # graph-mod too.
        basic = CR | WU
        job = mgr.create(args.get("job-id"), "stream", args, bs, basic | perms.GRAPH_MOD,
                         basic | W, tx)
        stop = g.filter_or_cow(above_base)
        it = g.filter_or_cow(bs)
        while it is not None and it is not stop:
            mgr.add_bdrv(job, "intermediate node", it, 0, basic, tx)
            it = g.filter_or_cow(it)
    mgr.start(job, StreamJob(bs, bs, base_overlay, above_base, args.get("backing-file"),
                             restore_read_only=was_ro))
    return job
