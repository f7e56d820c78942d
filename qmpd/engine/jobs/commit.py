"""block-commit (QEMU 7.2 blockdev.c qmp_block_commit, block/commit.c
commit_start, and mirror.c commit_active_start for the active layer).

An intermediate commit copies what the nodes from ``top`` down to ``base``
hold into ``base``, under a ``commit_top`` filter that takes ``top``'s place;
when it is done the nodes above ``top`` use ``base`` instead (the chain in
between is dropped).  Committing the active layer is a mirror job into the
base (:class:`~qmpd.engine.jobs.mirror.ActiveCommitJob`): ready once the data
is there, it pivots on job-complete.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

from qmpd.engine import perms, surgery
from qmpd.engine.allocation import allocated_above
from qmpd.engine.drivers.base import Driver
from qmpd.engine.drivers.registry import get_driver
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph
from qmpd.engine.jobs.data import COMMIT_BUFFER, CopyError, copy_chunks, grow_base, write_data
from qmpd.engine.jobs.mirror import ActiveCommitJob, mirror_top_driver, target_perm
from qmpd.engine.jobs.state import Job, JobDriver, JobManager, Sleep
from qmpd.engine.node import Node, Parent, inherits_from_recursive
from qmpd.engine.perms import CONSISTENT_READ as CR
from qmpd.engine.perms import WRITE as W
from qmpd.engine.perms import WRITE_UNCHANGED as WU
from qmpd.engine.transaction import Transaction


@dataclass(eq=False)
class CommitJob(JobDriver):
    """commit_job_driver: data of ``top`` (and down to base_overlay) into ``base``."""

    top: Node
    base: Node
    commit_top: Node
    base_overlay: Node
    base_blk: Parent | None
    top_blk: Parent
    base_read_only: bool
    backing_file: str | None

    def run(self, job: Job) -> Generator[Sleep, None, int]:
        g = job.mgr.g
        length = g.virtual_size(self.top)
        ret = grow_base(g, self.base, length)
        if ret < 0:
            return ret

        def plan(offset: int, most: int) -> tuple[int, Callable[[], None] | None]:
            copy, n = allocated_above(g, self.top, self.base_overlay, offset, most)
            return n, (lambda: self._copy(g, offset, n)) if copy else None

        return (yield from copy_chunks(job, length, COMMIT_BUFFER, plan, skip_ignored=False))

    def _copy(self, g: BlockGraph, offset: int, n: int) -> None:
        try:
            data = g.read(self.top, offset, n)
        except OSError as e:
            raise CopyError(e, is_read=True) from None
        try:
            write_data(g, self.base, offset, data)
        except OSError as e:
            raise CopyError(e, is_read=False) from None

    def _release_base(self, job: Job) -> None:
        surgery.unfreeze_chain(self.commit_top, self.base)
        if self.base_blk is not None:
            job.mgr.remove_backend(job, self.base_blk)
            self.base_blk = None

    def prepare(self, job: Job) -> int:
        g = job.mgr.g
        self._release_base(job)
        # bdrv_drop_intermediate: the parents of commit_top now use base.
        with surgery.all_or_nothing() as tx:
            ct = self.commit_top
            explicit_top: Node | None = ct
            while explicit_top is not None and explicit_top.implicit:
                explicit_top = explicit_top.driver.filtered(explicit_top)
            if explicit_top is not None and inherits_from_recursive(self.base, explicit_top):
                # base takes the dropped top's place in the inheritance too
                old_inh = self.base.inherits_from
                self.base.inherits_from = explicit_top.inherits_from
                tx.on_abort(lambda: setattr(self.base, "inherits_from", old_inh))
            for e in list(ct.parents):
                if isinstance(e.parent, Node):
                    surgery.move_edge(e, self.base, tx)
                    surgery.set_backing_string(g, e.parent, self.base, self.backing_file)
            g.refresh_perms([self.base], tx)
            if ct.alive and not ct.parents:
                g._delete_node(ct, tx)
        return 0

    def abort(self, job: Job) -> None:
        self._release_base(job)
        job.mgr.remove_all_bdrv(job)
        if self.commit_top.alive:
            with surgery.all_or_nothing() as tx:
                surgery.drop_filter(job.mgr.g, self.commit_top, tx)

    def clean(self, job: Job) -> None:
        if self.base_read_only and self.base.alive:
            surgery.set_read_only(job.mgr.g, self.base, True)
        if self.top_blk in job.backends:
            job.mgr.remove_backend(job, self.top_blk)


def start_commit(mgr: JobManager, args: dict) -> Job:
    """qmp_block_commit: which nodes, then an intermediate or an active commit."""
    g = mgr.g
    device = args["device"]
    blk = g.named_backend(device)        # bdrv_lookup_bs: a -drive name first
    bs = blk.children[0].child if blk is not None and blk.children else g.nodes.get(device)
    if bs is None:
        raise BlockError.of("device.not-found", "DeviceNotFound", id=device)
    if not surgery.is_root(bs):
        raise BlockError.of("commit.need-root-block-node")
    surgery.check_not_busy(g, bs)
    top = _by_node_name(mgr, args, "top-node", "top", bs)
    if top is None:
        top = bs
        if "top" in args:
            t = surgery.find_backing_image(g, bs, args["top"]) if \
                g.filename_info(bs)[0] != args["top"] else bs
            if t is None:
                raise BlockError.of("commit.top-image-file-not-found", top=args['top'])
            top = t
    base = _by_node_name(mgr, args, "base-node", "base", top)
    if base is None and "base" in args:
        base = surgery.find_backing_image(g, top, args["base"])
        if base is None:
            raise BlockError.of("stream.find-backing-chain", base=args['base'])
    elif base is None:
        # bdrv_find_base: the bottom of the chain (top itself if it has none).
        below = surgery.chain_below(g, top)
        base = below[-1] if below else top
    # The op blockers of the chain from top down to base inclusive.
    surgery.check_chain_not_busy(g, top, g.filter_or_cow(base))
    if top is base:
        raise BlockError.of("commit.cannot-commit-image-into-itself")
    # Active commit when someone writes to top, or top is the active layer
    # under the device's filters.
    writers = any(e.perm & perms.WRITE for e in top.parents)
    if top is bs or writers or surgery.skip_filters(top) is surgery.skip_filters(bs):
        if "backing-file" in args:
            if top is bs or surgery.skip_filters(top) is surgery.skip_filters(bs):
                raise BlockError.of("commit.backing-file-specified-top-active")
            raise BlockError.of("commit.backing-file-specified-top-writer")
        if top is not bs and "job-id" not in args:
            # the job is named after the device, even when top is below it
            args = {**args, "job-id": g.device_name(bs)}
        return _start_active(mgr, args, top, base)
    # The node above top gets a new backing link: another job must not hold it.
    overlay = surgery.find_overlay(bs, top)
    if overlay is not None:
        surgery.check_not_busy(g, overlay)
    return _start_intermediate(mgr, args, bs, top, base)


def _by_node_name(mgr: JobManager, args: dict, node_key: str, file_key: str,
                  above: Node) -> Node | None:
    """block-commit's top or base given by node name (in ``above``'s chain), if it is."""
    if node_key in args and file_key in args:
        raise BlockError.of("commit.mutually-exclusive", node_key=node_key, file_key=file_key)
    if node_key not in args:
        return None
    n = surgery.lookup_node(mgr.g, None, args[node_key])
    if not mgr.g.chain_contains(above, n):
        raise BlockError.of("commit.not-backing-file-chain", node=n.name)
    return n


def _block_intermediates(mgr: JobManager, job: Job, first: Node | None, top: Node,
                         base: Node, tx: Transaction) -> None:
    """The job's links to the nodes from ``first`` down to ``base``: others
    may write them, and read the one the commit leaves in the chain."""
    g = mgr.g
    overlay = surgery.find_overlay(top, base)
    assert overlay is not None
    filtered_base = surgery.cow_bs(overlay)
    shared = WU | W
    it = first
    while it is not None and it is not base:
        if it is filtered_base:
            shared |= CR
        mgr.add_bdrv(job, "intermediate node", it, 0, shared, tx)
        it = g.filter_or_cow(it)


def _job_filter(name: str) -> Driver:
    """bdrv_new_open_driver's driver: commit's filters are looked up by name."""
    drv = get_driver(name)
    assert drv is not None
    return drv


def _start_intermediate(mgr: JobManager, args: dict, bs: Node, top: Node,
                        base: Node) -> Job:
    """commit_start."""
    g = mgr.g
    with surgery.all_or_nothing() as tx:
        job = mgr.create(args.get("job-id"), "commit", args, bs, 0, perms.ALL, tx)
        # Base read-write for the job (bdrv_reopen_set_read_only), read-only
        # again if the job fails to start or when it ends.
        base_ro = base.read_only
        if base_ro:
            surgery.set_read_only(g, base, False, quiet=False)
            tx.on_abort(lambda: surgery.set_read_only(g, base, True))
        ct = surgery.new_filter_node(g, _job_filter("commit_top"), args.get("filter-node-name"), tx)
        ct.read_only = True     # bdrv_new_open_driver(..., flags 0)
        ct.total = g.virtual_size(top)
        g.attach(ct, top, "backing", perms.ROLE_FILTERED | perms.ROLE_PRIMARY, tx)
        surgery.replace_node(g, top, ct, tx,
                     skip=lambda e: e.parent is ct or not isinstance(e.parent, Node))
        overlay = surgery.find_overlay(top, base)
        assert overlay is not None
        _block_intermediates(mgr, job, top, top, base, tx)
        surgery.freeze_chain(ct, base, tx)
        mgr.add_bdrv(job, "base", base, 0, perms.ALL, tx)
        base_blk = mgr.add_backend(job, base, target_perm(g, base, top, CR | W),
                                   CR | WU | perms.GRAPH_MOD, tx)
        top_blk = mgr.add_backend(job, top, 0, perms.ALL, tx)
    mgr.start(job, CommitJob(top, base, ct, overlay, base_blk, top_blk, base_ro,
                             args.get("backing-file")))
    return job


def _start_active(mgr: JobManager, args: dict, bs: Node, base: Node) -> Job:
    """commit_active_start: a mirror of ``bs`` into ``base``."""
    g = mgr.g
    with surgery.all_or_nothing() as tx:
        # A read-only base (the old top after blockdev-snapshot) is reopened
        # read-write first, and back to read-only if the job fails to start.
        if base.read_only:
            surgery.set_read_only(g, base, False, quiet=False)
            tx.on_abort(lambda: surgery.set_read_only(g, base, True))
        mt = surgery.new_filter_node(g, mirror_top_driver(g, _job_filter("mirror_top")),
                                     args.get("filter-node-name"), tx)
        mt.total = g.virtual_size(bs)
        g.attach(mt, bs, "backing", perms.ROLE_FILTERED | perms.ROLE_PRIMARY, tx)
        surgery.replace_node(g, bs, mt, tx, skip=lambda e: e.parent is mt)
        job = mgr.create(args.get("job-id"), "commit", args, mt, CR,
                         CR | WU | W | perms.GRAPH_MOD, tx)
        blk = mgr.add_backend(job, base, target_perm(g, base, bs, W),
                              WU | CR | W | perms.GRAPH_MOD, tx)
        mgr.add_bdrv(job, "source", bs, 0, WU | W | CR, tx)
        mgr.add_bdrv(job, "target", base, 0, perms.ALL, tx)
        _block_intermediates(mgr, job, g.filter_or_cow(bs), bs, base, tx)
        surgery.freeze_chain(mt, base, tx)
    driver = ActiveCommitJob(bs, base, mt, blk)
    # commit_active_start: on-error is both the source and the target policy
    policy = args.get("on-error", "report")
    driver.policies = (policy, policy)
    mgr.start(job, driver)
    return job
