"""bdrv_commit: a node's own layer written into its backing file at once
(HMP ``commit DEVICE`` and ``commit all``), not as a block job.

QEMU 7.2's block/commit.c does it with two temporary BlockBackends (the node
read with write-unchanged, the backing node written and resized) and a
commit_top filter put between the node and its backing file so that the
backing file may be written whatever the node's link to it allows; it grows
the backing file to the node's length, copies every range allocated in the
node's layer, empties the layer and flushes both.  Everything but the data is
put back afterwards, the backing file's read-only flag too.

Errors come back as a negative errno (what ``'commit' error for 'X': ...``
names); those QEMU reports on the way (error_report_err) go to ``report``.
"""

from __future__ import annotations

import errno
from collections.abc import Callable

from qmpd.engine import perms, surgery
from qmpd.engine.drivers.registry import get_driver
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph
from qmpd.engine.node import Node, Parent
from qmpd.engine.resize import truncate
from qmpd.engine.transaction import Transaction

# COMMIT_BUF_SIZE: the longest range looked at and copied at once.
COMMIT_BUF_SIZE = 2 << 20


def commit_layer(g: BlockGraph, bs: Node, report: Callable[[BlockError], None]) -> int:
    """bdrv_commit(bs): 0, or -errno."""
    backing_edge = None if bs.driver.is_filter else bs.backing
    if backing_edge is None:
        return -errno.ENOTSUP
    base = backing_edge.child
    # bdrv_op_is_blocked(COMMIT_SOURCE / COMMIT_TARGET): a job's blockers,
    # and the blocker every backing link puts on its child (which leaves
    # COMMIT_TARGET alone).
    if surgery.job_using(g, bs) is not None or surgery.job_using(g, base) is not None \
            or any(e.name == "backing" and isinstance(e.parent, Node) for e in bs.parents):
        return -errno.EBUSY
    read_only = base.read_only
    if read_only:
        surgery.set_read_only(g, base, False)
        if base.read_only:
            return -errno.EACCES
    tx = Transaction()
    try:
        return _copy(g, bs, base, tx, report)
    finally:
        tx.abort()      # the BlockBackends and commit_top go; the data stays
        if read_only:
            surgery.set_read_only(g, base, True)


def _copy(g: BlockGraph, bs: Node, base: Node, tx: Transaction,
          report: Callable[[BlockError], None]) -> int:
    def insert_backend(node: Node, perm: int) -> bool:
        """blk_new(perm, ALL) + blk_insert_bs; a conflict is reported."""
        try:
            surgery.attach_fixed(g, Parent("commit"), node, "root", perm, perms.ALL, tx)
        except BlockError as e:
            report(e)
            return False
        return True

    if not insert_backend(bs, perms.CONSISTENT_READ | perms.WRITE_UNCHANGED):
        return -errno.EPERM
    top_driver = get_driver("commit_top")
    assert top_driver is not None
    commit_top = surgery.new_filter_node(g, top_driver, None, tx)
    commit_top.total = g.virtual_size(base)
    g.attach(commit_top, base, "backing", perms.ROLE_FILTERED | perms.ROLE_PRIMARY, tx)
    assert bs.backing is not None
    surgery.move_edge(bs.backing, commit_top, tx)
    g.refresh_perms([commit_top, base], tx)
    if not insert_backend(base, perms.WRITE | perms.RESIZE):
        return -errno.EPERM
    length = g.virtual_size(bs)
    if length > g.virtual_size(base):
        try:
            truncate(g, base, length)
        except BlockError as e:
            report(e)
            return -errno.ENOTSUP
    offset = 0
    while offset < length:
        want = min(COMMIT_BUF_SIZE, length - offset)
        _, n, allocated, _ = g.block_status(bs, offset, want)[0]
        if allocated:
            try:
                g.write(base, offset, g.read(bs, offset, n))
            except OSError as e:
                return -(e.errno or errno.EIO)
        offset += n
    # blk_make_empty: a driver without bdrv_make_empty is fine (-ENOTSUP).
    try:
        bs.driver.make_empty(g, bs)
    except OSError as e:
        if e.errno != errno.ENOTSUP:
            return -(e.errno or errno.EIO)
    for node in (bs, base):
        try:
            g.flush(node)
        except OSError:
            pass    # blk_flush's result is not looked at
    return 0
