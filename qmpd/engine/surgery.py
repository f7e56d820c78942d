"""Graph surgery: the block.c operations that block jobs, snapshots, mirror
and backup perform on the graph, in one place (QEMU 7.2 block.c
bdrv_lookup_bs, bdrv_op_is_blocked, bdrv_root_attach_child,
bdrv_replace_node(_noperm), bdrv_append, bdrv_drop_filter,
bdrv_freeze_backing_chain, bdrv_set_backing_hd, bdrv_change_backing_file,
bdrv_reopen_set_read_only, and the backing-chain walks of block.c and
blockdev.c).

Every change takes a :class:`Transaction` and registers its undo there, so a
command that fails half-way leaves the graph as it was.  Nothing here knows a
job kind: a job is only "a parent that is neither a node nor a BlockBackend"
and the nodes it lists (``job.nodes``), which is what QEMU's op blockers see.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from qmpd.engine import perms
from qmpd.engine import reopen as rp
from qmpd.engine.aio import attach_context
from qmpd.engine.drivers.base import Driver
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph
from qmpd.engine.node import Edge, Node, Parent
from qmpd.engine.transaction import Transaction


class NodeUser(Protocol):
    """What the op blockers read of a job: its type and the nodes it blocks."""

    type: str
    nodes: list[Node]


# ---------------------------------------------------------------------------
# lookups and backing-chain walks
def lookup_bs(g: BlockGraph, device: str | None, node_name: str | None) -> Node:
    """bdrv_lookup_bs: a device (BlockBackend) name first, then a node name."""
    if device is not None:
        for b in g.backends:
            # Only named (monitor-owned) BlockBackends are found by name.
            if b.kind == "device-backend" and b.name and b.name == device and b.children:
                return b.children[0].child
    if node_name is not None:
        n = g.nodes.get(node_name)
        if n is not None:
            return n
    raise _not_found(device, node_name)


def lookup_node(g: BlockGraph, device: str | None, node: str | None) -> Node:
    """bdrv_lookup_bs as block-stream and block-commit use it: by node name
    (``node``, else ``device``) only."""
    if device is not None:
        # A -drive's name (a named BlockBackend) first.
        blk = g.named_backend(device)
        if blk is not None and blk.children:
            return blk.children[0].child
    name = node if node is not None else device
    n = g.nodes.get(name or "")
    if n is None:
        raise _not_found(device, node)
    return n


def _not_found(device: str | None, node: str | None) -> BlockError:
    return BlockError.of("node.device-nor-node-not-found", device=device or '',
                         node=node or '')


def is_root(n: Node) -> bool:
    """No node above ``n``: only BlockBackends (or nothing) use it."""
    return all(isinstance(e.parent, Parent) for e in n.parents)


def chain_below(g: BlockGraph, top: Node) -> list[Node]:
    """The filtered and COW children below ``top``, top-down."""
    out = []
    n = g.filter_or_cow(top)
    while n is not None:
        out.append(n)
        n = g.filter_or_cow(n)
    return out


def _has_protocol(name: str) -> bool:
    head, sep, _ = name.partition(":")
    return bool(sep) and "/" not in head


def find_backing_image(g: BlockGraph, top: Node, filename: str) -> Node | None:
    """bdrv_find_backing_image: ``filename`` as a backing file name of the
    chain, a relative one taken from each overlay's directory and compared as
    canonical paths (realpath), as QEMU does."""
    curr = skip_filters(top)
    while curr is not None:
        if curr.backing is None:
            break
        below = skip_filters(curr.backing.child)
        header = g.header_backing(curr)[0]
        if g.backing_overridden(curr):
            # Another backing node than the image names: only that node's
            # own file name can match.
            if below is not None and g.filename_info(below)[0] == filename:
                return below
        elif _has_protocol(filename) or _has_protocol(header):
            if filename == header or (below is not None
                                      and g.filename_info(below)[0] == filename):
                return below
        else:
            own = g.filename_info(curr)[0]
            if os.path.isabs(filename) or "/" not in own:
                wanted = filename
            else:
                wanted = own.rsplit("/", 1)[0] + "/" + filename
            try:
                full = g.full_backing_filename(curr)
            except BlockError:
                full = None
            # The image's backing file name, and the name of the node that is
            # there now (they differ once a backing node was swapped in).
            names = [n for n in (full, g.filename_info(below)[0] if below else None) if n]
            real = os.path.realpath(wanted)
            if any(os.path.realpath(n) == real for n in names):
                return below
        curr = below
    return None


def skip_filters(n: Node | None) -> Node | None:
    """bdrv_skip_filters: the first non-filter at or below ``n``."""
    while n is not None and n.driver.is_filter:
        n = n.driver.filtered(n)
    return n


def cow_bs(n: Node) -> Node | None:
    """bdrv_cow_bs: a format node's backing node (filters have none)."""
    if n.driver.is_filter:
        return None
    b = n.backing
    return b.child if b else None


def find_overlay(top: Node, base: Node | None) -> Node | None:
    """bdrv_find_overlay: the last non-filter node above ``base``."""
    n = skip_filters(top)
    base = skip_filters(base)
    while n is not None:
        below = skip_filters(cow_bs(n))
        if below is base:
            return n
        n = below
    return None


def filter_or_cow_edge(n: Node) -> Edge | None:
    """bdrv_filter_or_cow_child: the link to the filtered child, or the backing link."""
    if n.driver.is_filter:
        f = n.driver.filtered(n)
        for e in n.children:
            if e.child is f:
                return e
        return None
    return n.backing


def chain_links(top: Node, base: Node | None) -> list[Edge]:
    """The filter and backing links from ``top`` down to ``base`` (exclusive)."""
    out = []
    n: Node | None = top
    while n is not None and n is not base:
        e = filter_or_cow_edge(n)
        if e is None:
            break
        out.append(e)
        n = e.child
    return out


# ---------------------------------------------------------------------------
# op blockers
def job_using(g: BlockGraph, n: Node) -> NodeUser | None:
    """The job whose op blocker is on ``n``, if any."""
    for j in g.jobs:
        if n in j.nodes:
            return j  # type: ignore[no-any-return]
    return None


def check_not_busy(g: BlockGraph, n: Node) -> None:
    """bdrv_op_is_blocked for a job's blocker: QEMU's "busy" error."""
    j = job_using(g, n)
    if j is not None:
        raise BlockError.of("node.node-busy-block-device-use",
                            name=g.device_name(n) or n.name, job=j.type)


def op_blocker(g: BlockGraph, node: Node) -> None:
    """bdrv_op_is_blocked for the operations a backing child or a job blocks
    (the newest blocker is named: :meth:`BlockGraph.op_blocker`)."""
    g.op_blocker(node)


def check_chain_not_busy(g: BlockGraph, top: Node, end: Node | None) -> None:
    """No job blocks a node from ``top`` down to ``end`` (exclusive; the
    whole chain when ``end`` is None or not in it)."""
    n: Node | None = top
    while n is not None and n is not end:
        check_not_busy(g, n)
        n = g.filter_or_cow(n)


def is_job_link(e: Edge) -> bool:
    """A job's own link (a job is the one parent that is neither a node nor a
    BlockBackend): graph surgery never moves it."""
    return not isinstance(e.parent, (Node, Parent))


# ---------------------------------------------------------------------------
# links
@contextmanager
def all_or_nothing() -> Iterator[Transaction]:
    """A transaction for one piece of surgery: committed if the block ends
    normally, undone if it raises (anything: no half-changed graph)."""
    tx = Transaction()
    try:
        yield tx
    except BaseException:
        tx.abort()
        raise
    tx.commit()


def attach_fixed(g: BlockGraph, parent: Any, child: Node, name: str, perm: int, shared: int,
                 tx: Transaction) -> Edge:
    """bdrv_root_attach_child with fixed permissions (a job or a BlockBackend)."""
    e = g.link(parent, child, name, 0, tx)
    e.perm, e.shared = perm, shared
    g.refresh_perms([child], tx)
    return e


def release_children(g: BlockGraph, parent: Any, tx: Transaction) -> None:
    """bdrv_root_unref_child for every link of a job or a BlockBackend."""
    for e in list(parent.children):
        g.detach(e, tx)
        # The parent's reference may have been the last one (a streamed node).
        g.unref(e.child, tx)
        if e.child.alive:
            g.refresh_perms([e.child], tx)


def move_edge(e: Edge, new: Node, tx: Transaction) -> None:
    """bdrv_replace_child_noperm: point ``e`` at ``new`` (its newest parent link)."""
    old = e.child
    serial = e.serial
    i = old.parents.index(e)
    del old.parents[i]
    e.child = new
    new.parents.append(e)
    if e.name == "backing":
        # bdrv_backing_attach blocks the new backing node's operations anew:
        # that blocker is now the node's newest (bdrv_op_is_blocked names it).
        e.renew_serial()

    def undo() -> None:
        new.parents.remove(e)
        e.child = old
        e.serial = serial
        old.parents.insert(i, e)
    tx.on_abort(undo)


def _move_parent(e: Edge, old: Node, new: Node, tx: Transaction) -> None:
    if e.frozen:
        raise BlockError.of("node.cannot-change-link", edge=e.name, old=old.name)
    move_edge(e, new, tx)


def replace_node(g: BlockGraph, old: Node, new: Node, tx: Transaction,
                 skip: Callable[[Edge], bool] = lambda e: False) -> None:
    """bdrv_replace_node: the parents of ``old`` (but those ``skip`` names)
    now use ``new``; then both nodes' permissions are refreshed."""
    for e in list(old.parents):
        if e.parent is not new and not skip(e):
            _move_parent(e, old, new, tx)
    refresh_replaced(g, new, old, tx)


def refresh_replaced(g: BlockGraph, new: Node, old: Node, tx: Transaction) -> None:
    """The permission refresh after bdrv_replace_node: both nodes (6.0+), or
    only ``new`` and what is below it (before: ``old`` keeps what its old
    parents asked of its children until something refreshes it again)."""
    g.refresh_perms([new, old] if g.profile.replace_node_refreshes_old else [new], tx)


def _should_update(g: BlockGraph, e: Edge, to: Node) -> bool:
    """should_update_child: never a job's link, never a link from inside ``to``."""
    if isinstance(e.parent, Parent):
        return e.parent.kind != "job-backend"
    if is_job_link(e):
        return False
    return not g.reaches(to, e.parent)


def replace_node_noperm(g: BlockGraph, old: Node, new: Node, tx: Transaction,
                        skip: Edge | None = None) -> None:
    """bdrv_replace_node_noperm with auto_skip: move ``old``'s parents to ``new``
    (no permission refresh: the caller does it)."""
    # QEMU walks bs->parents newest first.
    for e in list(reversed(old.parents)):
        if e is not skip and _should_update(g, e, new):
            _move_parent(e, old, new, tx)


def append(g: BlockGraph, new: Node, top: Node, tx: Transaction) -> None:
    """bdrv_append: ``top`` becomes the backing child of ``new``, which takes its place."""
    role = (perms.ROLE_FILTERED | perms.ROLE_PRIMARY) if new.driver.is_filter \
        else perms.ROLE_COW
    if g.reaches(top, new):
        raise BlockError.of("node.backing-child-would-create-cycle", top=top.name, new=new.name)
    attach_context(g, new, top, tx)
    e = g.link(new, top, "backing", role, tx)
    replace_node_noperm(g, top, new, tx, skip=e)
    g.refresh_perms([new], tx, new_edge=e)
    old_no_backing = new.no_backing
    new.no_backing = False
    tx.on_abort(lambda: setattr(new, "no_backing", old_no_backing))


def new_filter_node(g: BlockGraph, driver: Driver, name: str | None,
                    tx: Transaction) -> Node:
    """bdrv_new_open_driver for a job's own filter: implicit unless named."""
    node = Node(driver)
    g._assign_name(node, name, tx)
    node.implicit = name is None
    return node


def drop_filter(g: BlockGraph, filt: Node, tx: Transaction, keep: Any = None) -> None:
    """bdrv_drop_filter (a job's filter going away): its users use its child.

    ``keep``: a parent that stays on the filter (a job's own BlockBackend,
    put back there before 6.0): the filter then keeps its child too."""
    e = filter_or_cow_edge(filt)
    if e is None:
        return
    child = e.child
    for fe in filt.children:
        fe.frozen = False
    # The node's users move down to its child, except the jobs' own links
    # (the job keeps its "main node" until it is freed), and the filter lets
    # go of its child.
    # As bdrv_replace_node_common with detach_subchain: the filter's links to
    # its children go before permissions are refreshed (the filter would
    # otherwise still unshare what the moved users need).
    for pe in list(filt.parents):
        if pe.parent is child or pe.parent is keep or is_job_link(pe):
            continue
        if pe.frozen:
            raise BlockError.of("node.cannot-change-link", edge=pe.name, old=filt.name)
        move_edge(pe, child, tx)
    if keep is not None and any(pe.parent is keep for pe in filt.parents):
        g.refresh_perms([filt], tx)
        g.refresh_perms([child], tx)
        return
    for fe in list(filt.children):
        g.detach(fe, tx)
    g.refresh_perms([child], tx)
    filt.monitor_owned = False
    if filt.alive and not filt.parents:
        g._delete_node(filt, tx)
    if child.alive:
        g.refresh_perms([child], tx)


# ---------------------------------------------------------------------------
# frozen backing chains
def freeze_chain(top: Node, base: Node | None, tx: Transaction) -> list[Edge]:
    """bdrv_freeze_backing_chain: freeze the links from ``top`` down to
    ``base``; refused, with nothing frozen, when one of them is frozen
    already or leads to a job's own filter (which must stay droppable)."""
    out = chain_links(top, base)
    for e in out:
        if e.frozen:
            raise BlockError.of("node.cannot-change-link-from", edge=e.name,
                                node=e.parent.name, child=e.child.name)
    for e in out:
        if e.child.driver.never_freeze:
            raise BlockError.of("node.cannot-freeze-link", edge=e.name, child=e.child.name)
    for e in out:
        e.frozen = True

    def undo() -> None:
        for e in out:
            e.frozen = False
    tx.on_abort(undo)
    return out


def unfreeze_chain(top: Node, base: Node | None) -> None:
    """bdrv_unfreeze_backing_chain."""
    for e in chain_links(top, base):
        e.frozen = False


# ---------------------------------------------------------------------------
# backing files and read-only state
def set_backing(g: BlockGraph, node: Node, new: Node | None, tx: Transaction,
                backing_file: str | None = None, header_names: Node | None = None) -> None:
    """bdrv_set_backing_hd plus bdrv_change_backing_file's in-memory effect.
    The header names ``header_names`` (default ``new``): stream names the
    node below the filters it links to."""
    old = node.backing
    if old is not None and new is not None and old.child is new:
        # the link stays; the header is rewritten all the same
        set_backing_string(g, node, header_names if header_names is not None else new,
                           backing_file)
        return
    # A node from further down the chain that was opened through ``node``'s
    # options (inherited, maybe via the nodes in between) is ``node``'s own
    # inherited child afterwards: a reopen of ``node`` may pass its options.
    update_inherits = new is not None and g.chain_contains(node, new) and \
        _inherits_from_recursive(new, node)
    if old is not None:
        # bdrv_remove_child does not refresh the old child: its own links keep
        # the permissions they had until something else refreshes them
        # (before 6.0, bdrv_unref_child did: Profile.unref_child_refreshes_old).
        g.detach(old, tx)
        if g.profile.unref_child_refreshes_old and old.child.alive:
            g.refresh_perms([old.child], tx)
        g.unref(old.child, tx)
    if new is not None:
        g.attach(node, new, "backing", perms.ROLE_COW, tx)
        if update_inherits and new.inherits_from is not node:
            prev = new.inherits_from
            new.inherits_from = node
            tx.on_abort(lambda: setattr(new, "inherits_from", prev))
    set_backing_string(g, node, header_names if header_names is not None else new,
                       backing_file)


def _inherits_from_recursive(child: Node | None, parent: Node) -> bool:
    while child is not None and child is not parent:
        child = child.inherits_from
    return child is not None


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


def set_read_only(g: BlockGraph, node: Node, read_only: bool = True,
                  quiet: bool = True) -> None:
    """bdrv_reopen_set_read_only(bs, read_only, errp): a reopen that keeps the
    other options.  With ``quiet`` (errp NULL) a failure leaves things as they were."""
    if node.read_only == read_only:
        return
    queue: dict[int, rp.ReopenState] = {}
    rp.queue_child(queue, node, {"read-only": read_only}, 0, None, True)
    try:
        rp.run_queue(g, queue)
    except BlockError:
        if quiet:
            return
        raise
