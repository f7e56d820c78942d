"""blockdev-create as a job (QEMU 7.2 block/create.c, file-posix raw_co_create,
qcow2_co_create), for the ``file`` and ``qcow2`` drivers.

The job is a plain job of type ``create`` (not a block job: only
JOB_STATUS_CHANGE events, not in query-block-jobs), created with manual
dismiss, so it stays ``concluded`` until ``job-dismiss``.  Its progress is
0/1 then 1/1 whatever the outcome; a failure shows as ``error`` in query-jobs.

qmpd never writes host files.  ``file`` creates the image in the in-memory
host-file layer: an existing host file is emptied and resized there (the
file on disk stays as it was); a file that does not exist on the host lives
only in memory under its path (its directory must exist, as for QEMU), and
a later ``blockdev-add`` of a ``file`` node with that filename opens it.
``qcow2`` writes the same bytes ``qemu-img create`` would into the node given
as ``file`` (a node name, or inline options opened for the job only).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Generator
from typing import Any

from qmpd.engine import perms
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph, flatten
from qmpd.engine.hostfiles import check_preallocation_room, os_path
from qmpd.engine.jobs.state import Job, JobDriver, JobManager, Sleep
from qmpd.engine.node import Node, Parent
from qmpd.engine.transaction import Transaction
from qmpd.qcow2 import Qcow2FormatError
from qmpd.qcow2 import create_qcow2 as make_qcow2


class CreateJob(JobDriver):
    """blockdev_create_run: the whole creation in one step."""

    def __init__(self, options: dict) -> None:
        self.options = options

    def run(self, job: Job) -> Generator[Sleep, None, int]:
        g = job.mgr.g
        job.total = 1
        try:
            if self.options["driver"] == "file":
                create_file(g, self.options)
            else:
                create_qcow2(g, self.options)
        except BlockError as e:
            # the checks before any I/O fail at once, before the reply; the
            # job keeps the text in the release's words (query-jobs shows it)
            job.error = g.profile.render_all(e.parts)
            job.current = 1
            return -errno.EINVAL
        # A creation that gets as far as writing waits for that I/O (the file's
        # truncate runs in the thread pool): the command has replied, after
        # created/running, before the job goes on to waiting/pending/concluded.
        yield Sleep(job.now(), defer=True)
        job.current = 1
        return 0


def start_create(mgr: JobManager, job_id: str, options: dict) -> Job:
    """qmp_blockdev_create."""
    drv = options["driver"]
    if drv not in ("file", "qcow2"):
        raise BlockError.of("create.qmpd-cannot-create-images-file", drv=drv)
    job = mgr.create_job(job_id, "create", {"auto-dismiss": False}, block_job=False)
    mgr.start(job, CreateJob(options))
    return job


# -- file ---------------------------------------------------------------------
def create_file(g: BlockGraph, opts: dict) -> None:
    path = opts["filename"]
    size = opts["size"]
    prealloc = opts.get("preallocation", "off")
    if opts.get("extent-size-hint", 1 << 20) > 0xFFFFFFFF:
        raise BlockError.of("create.extent-size-hint-too-large")
    layer = g.hostfiles.open_or_create(path)
    if layer is None:
        parent = os.path.dirname(os_path(path)) or b"."
        err = errno.ENOENT if not os.path.isdir(parent) else errno.EACCES
        raise BlockError.of("create.could-not-create", path=path, error=os.strerror(err))
    g.lock_check(layer, perms.WRITE | perms.RESIZE, perms.ALL & ~perms.RESIZE)
    if prealloc not in ("off", "falloc", "full"):
        raise BlockError.of("create.preallocation-mode-unsupported-storage", prealloc=prealloc)
    if prealloc != "off" and size:
        check_preallocation_room(path, size - layer.allocated(), prealloc)
    layer.truncate(0)
    layer.truncate(size)
    if prealloc != "off" and size:
        layer.write_zeroes(0, size)
    for n in layer.nodes:
        n.total = None


# -- qcow2 --------------------------------------------------------------------
def open_blockdev_ref(g: BlockGraph, ref: Any, tx: Transaction) -> Node:
    """bdrv_open_blockdev_ref: a node name, or options opened for the caller."""
    if isinstance(ref, str):
        node = g.nodes.get(ref)
        if node is None:
            raise BlockError.of("node.cannot-find-device-nor-node", reference=ref)
        return node
    opts = flatten(ref)
    opts.setdefault("cache.direct", False)
    opts.setdefault("cache.no-flush", False)
    opts.setdefault("read-only", False)
    return g.open(tx, opts)


def create_qcow2(g: BlockGraph, opts: dict) -> None:
    tx = Transaction()
    try:
        node = open_blockdev_ref(g, opts["file"], tx)
        size = opts["size"]
        if size % 512:
            raise BlockError.of("create.image-size-must-multiple-512")
        for key in ("data-file", "encrypt"):
            if key in opts:
                raise BlockError.of("create.qmpd-cannot-create-qcow2-images", key=key)
        if opts.get("data-file-raw"):
            raise BlockError.of("create.data-file-raw-requires-data")
        version = opts.get("version", "v3")
        prealloc = opts.get("preallocation", "off")
        layer = getattr(node.state, "layer", None)
        if prealloc in ("falloc", "full") and layer is not None:
            check_preallocation_room(layer.path, size, prealloc)
        try:
            data = make_qcow2(size, cluster_size=opts.get("cluster-size", 65536),
                        backing_file=opts.get("backing-file"),
                        backing_format=opts.get("backing-fmt"),
                        compat="0.10" if version == "v2" else "1.1",
                        lazy_refcounts=opts.get("lazy-refcounts", False),
                        refcount_bits=opts.get("refcount-bits", 16),
                        extended_l2=opts.get("extended-l2", False),
                        compression_type=opts.get("compression-type", "zlib"),
                        preallocation=prealloc)
        except Qcow2FormatError as e:
            raise BlockError(getattr(e, "desc", None) or str(e)) from None
        # blk_new_with_bs(bs, WRITE | RESIZE, ALL)
        blk = Parent("create")
        edge = g.attach(blk, node, "root", 0, tx)
        edge.perm = perms.WRITE | perms.RESIZE
        edge.shared = perms.ALL
        g.refresh_perms([node], tx)
        g.write(node, 0, data)
        node.total = None
        # qcow2_co_create opens the new image twice (blk_new_open), each time
        # as an auto-named node: the counter moves on as in QEMU.
        g.name_counter += 2
    finally:
        # The job's BlockBackend and an inline file node go away with it.
        tx.abort()
