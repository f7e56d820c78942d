"""The BlockBackends jobs hold and what the job queries report: a mixin of
:class:`~qmpd.engine.jobs.state.JobManager` (as :mod:`qmpd.engine.jobs.drains`).

A job's target or base is written through a BlockBackend of the job's own;
before 6.0 (Profile.job_main_backend) every job also held one on its main
node with the job's permissions, until the job was freed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from qmpd.engine import perms
from qmpd.engine.node import Node, Parent
from qmpd.engine.surgery import all_or_nothing, attach_fixed, release_children
from qmpd.engine.transaction import Transaction

if TYPE_CHECKING:
    from qmpd.engine.jobs.state import Job


class JobBackends:
    """The BlockBackend and query half of the job manager."""

    g: Any

    @property
    def jobs(self) -> list[Job]:
        raise NotImplementedError

    def add_backend(self, job: Job, node: Node, perm: int, shared: int,
                    tx: Transaction) -> Parent:
        blk = self._new_backend(node, perm, shared, tx)
        job.backends.append(blk)
        return blk

    def _new_backend(self, node: Node, perm: int, shared: int, tx: Transaction) -> Parent:
        blk = Parent("job-backend", "", "an unnamed block device")
        self.g.backends.append(blk)
        tx.on_abort(lambda: self.g.backends.remove(blk))
        attach_fixed(self.g, blk, node, "root", perm, shared, tx)
        return blk

    def remove_backend(self, job: Job, blk: Parent) -> None:
        with all_or_nothing() as tx:
            release_children(self.g, blk, tx)
        if blk in self.g.backends:
            self.g.backends.remove(blk)
        if blk in job.backends:
            job.backends.remove(blk)

    def drop_main_perms(self, job: Job) -> None:
        """blk_set_perm(job->blk, 0, BLK_PERM_ALL): the job's own BlockBackend
        (Profile.job_main_backend) takes nothing any more."""
        blk = job.main_blk
        if blk is None or not blk.children:
            return
        e = blk.children[0]
        e.perm, e.shared = 0, perms.ALL
        with all_or_nothing() as tx:
            self.g.refresh_perms([e.child], tx)

    def free_main_backend(self, job: Job) -> None:
        """block_job_free: the job's own BlockBackend (Profile.job_main_backend)
        goes with the job, and with it a filter only it still held."""
        blk = job.main_blk
        if blk is None:
            return
        job.main_blk = None
        with all_or_nothing() as tx:
            release_children(self.g, blk, tx)
        if blk in self.g.backends:
            self.g.backends.remove(blk)

    def block_job_error(self, job: Job) -> str:
        """A failed block job's error in BLOCK_JOB_COMPLETED and BlockJobInfo:
        the job's message, or (Profile.block_job_error_strerror) the text
        of its errno."""
        if self.g.profile.block_job_error_strerror:
            return os.strerror(-job.ret)
        return job.error or os.strerror(-job.ret)

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
            if not j.block_job:
                continue    # blockdev-create's job is not a block job
            d: dict[str, Any] = {"type": j.type, "device": j.id, "len": j.total,
                                 "offset": j.current, "busy": j.busy,
                                 # block_job_query: pauses asked for, taken or not
                                 "paused": j.pause_count > 0,
                                 "speed": j.speed, "io-status": j.io_status,
                                 # job_is_ready: by the status, not once-ready
                                 "ready": j.status in ("ready", "standby"),
                                 "status": j.status, "auto-finalize": j.auto_finalize,
                                 "auto-dismiss": j.auto_dismiss}
            if j.ret and j.error is not None:
                d["error"] = self.block_job_error(j)
            synced = getattr(j.driver, "actively_synced", None)
            if synced is not None and self.g.profile.mirror_reports_actively_synced:
                d["actively-synced"] = synced(j)
            out.append(d)
        return out


