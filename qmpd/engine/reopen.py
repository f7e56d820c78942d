"""Reopen transactions: QEMU 7.2's bdrv_reopen_queue / bdrv_reopen_multiple.

One :func:`reopen` call is one transaction over a queue of nodes:

1. every entry is looked up and queued with the inherited children its
   options reach (``queue_child``), merging repeated entries;
2. every queued node is *prepared* in queue order: generic options, driver
   options, the ``backing`` and ``file`` links, then the comparison of the
   options that cannot change.  Link changes are applied to the graph under
   an undo log, so the later checks see the graph as it would be;
3. permissions are refreshed for the whole queue against the state after the
   reopen (new read-only flags, new links);
4. commit, or abort: the undo log puts every edge, flag and option back.

Nodes dropped by the reopen (an inherited backing file detached, an old
``file`` child replaced) are unreferenced only after everything succeeded, so
a node that becomes a new child elsewhere in the same transaction survives.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from qmpd.engine import perms
from qmpd.engine.aio import attach_context
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import (
    GENERIC_KEYS,
    BlockGraph,
    Transaction,
    extract_sub,
    flatten,
    inherit_options,
    is_true,
)
from qmpd.engine.node import Edge, Node, adopt_inheritance, inherits_from_recursive
from qmpd.qobject import key_order


def _order(keys: list[str]) -> list[str]:
    return list(key_order(keys))


def qobj_equal(a: Any, b: Any) -> bool:
    """qobject_is_equal: values of different JSON types are never equal."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if type(a) is not type(b):
        return False
    return a == b



# The node's generic options a reopen may change (read-only, discard, cache...).
GENERIC_FIELDS = ("read_only", "auto_read_only", "discard", "detect_zeroes", "cache_direct",
                  "cache_no_flush")


class ReopenState:
    """One queued node's reopen: its new options and generic settings."""

    __slots__ = ("node", "options", "explicit", *GENERIC_FIELDS, "backing_missing",
                 "commits", "old_children", "top_level", "replaced")
    read_only: bool
    auto_read_only: bool
    discard: str
    detect_zeroes: str
    cache_direct: bool
    cache_no_flush: bool

    def __init__(self, node: Node) -> None:
        self.node = node
        self.options: dict[str, Any] = {}
        self.explicit: dict[str, Any] = {}
        # The generic options' new values (bdrv_reopen_prepare's), copied
        # back to the node at commit.
        for field in GENERIC_FIELDS:
            setattr(self, field, getattr(node, field))
        self.backing_missing = False
        self.commits: list[Any] = []
        self.old_children: list[Node] = []
        self.top_level = False
        self.replaced: set[str] = set()   # child links this reopen changes


def _join(options: dict, old: dict) -> None:
    for k, v in old.items():
        if k not in options:
            options[k] = v


def queue_child(queue: dict[int, ReopenState], node: Node, options: dict | None,
                role: int, parent_options: dict | None, keep_old: bool) -> None:
    if options is None:
        options = {}
    entry = queue.get(id(node))
    if entry is not None or keep_old:
        _join(options, entry.explicit if entry is not None else node.explicit)
    explicit = dict(options)
    if parent_options is not None:
        inherit_options(role, options, parent_options)
    if keep_old:
        _join(options, node.options)
    if entry is None:
        entry = ReopenState(node)
        queue[id(node)] = entry
    entry.top_level = entry.top_level or parent_options is None
    entry.options = options
    entry.explicit = explicit
    entry.read_only = is_true(options.get("read-only", False))
    entry.auto_read_only = is_true(options.get("auto-read-only", False))
    entry.cache_direct = is_true(options.get("cache.direct", False))
    entry.cache_no_flush = is_true(options.get("cache.no-flush", False))
    if not keep_old:
        entry.backing_missing = "backing" not in options and "backing.driver" not in options

    for e in list(reversed(node.children)):
        child = e.child
        if child.inherits_from is not node:
            continue
        if e.name in options:
            ref = options[e.name]
            if not (isinstance(ref, str) and ref == child.name):
                continue
            child_opts: dict | None = None
            child_keep = True
        else:
            extract_sub(explicit, e.name + ".")
            child_opts = extract_sub(options, e.name + ".")
            child_keep = keep_old
        queue_child(queue, child, child_opts, e.role, options, child_keep)


def reopen_keep_old(g: BlockGraph, node: Node, options: dict) -> None:
    """bdrv_reopen(bs, options, keep_old_opts=true), as qemu-io's ``reopen``
    calls it: ``options`` (flat keys) change what they name, every other
    option keeps its value, and the node's subtree is drained meanwhile."""
    for key in _order(list(options)):
        # QemuOpts strings (qemu-io's -o) are parsed where QEMU absorbs them
        # (bdrv_runtime_opts in bdrv_reopen_prepare, the driver's own runtime
        # options); the engine's drivers take them typed, as blockdev-add's.
        value = options[key]
        if not isinstance(value, str):
            continue
        last = key.rpartition(".")[2]
        generic = next((b for b in RUNTIME_BOOLS if key == b or key.endswith("." + b)), None)
        if generic is not None or last in _DRIVER_BOOLS:
            options[key] = parse_bool(generic or last, value)
        elif last in _DRIVER_NUMBERS and value.isdigit():
            options[key] = int(value)
    queue: dict[int, ReopenState] = {}
    drain = g.drain_hook
    if drain is not None:
        drain([node], True)
    try:
        queue_child(queue, node, options, 0, None, True)
        run_queue(g, queue)
    finally:
        if drain is not None:
            drain([node], False)


# bdrv_runtime_opts' booleans; the drivers' reopenable booleans and numbers.
RUNTIME_BOOLS = ("read-only", "auto-read-only", "cache.direct", "cache.no-flush", "force-share")
_DRIVER_BOOLS = frozenset(("lazy-refcounts", "pass-discard-request", "pass-discard-snapshot",
                           "pass-discard-other", "x-check-cache-dropped"))
_DRIVER_NUMBERS = frozenset(("cache-size", "l2-cache-size", "l2-cache-entry-size",
                             "refcount-cache-size", "cache-clean-interval", "offset", "size"))


def parse_bool(key: str, value: str) -> bool:
    """qapi_bool_parse, QemuOpts' reading of a boolean (option ``key``)."""
    if value in ("on", "yes", "true", "y"):
        return True
    if value in ("off", "no", "false", "n"):
        return False
    raise BlockError(f"Parameter '{key}' expects 'on' or 'off'")


def reopen(g: BlockGraph, entries: list[dict]) -> None:
    """blockdev-reopen of ``entries`` (validated BlockdevOptions dicts)."""
    queue: dict[int, ReopenState] = {}
    # QEMU drains each entry's subtree before queueing it, and ends the drained
    # sections after the reopen, failed or not: jobs there pause and resume.
    drained: list[Node] = []
    try:
        for entry in entries:
            name = entry.get("node-name")
            if name is None:
                raise BlockError.of("reopen.node-name-not-specified")
            node = g.nodes.get(name)
            if node is None:
                raise BlockError.of("reopen.node-not-found", name=name)
            if g.drain_hook is not None:
                g.drain_hook([node], True)
                drained.append(node)
            queue_child(queue, node, flatten(entry), 0, None, False)
        if queue:
            run_queue(g, queue)
    finally:
        if g.drain_hook is not None:
            for node in drained:
                g.drain_hook([node], False)


def run_queue(g: BlockGraph, queue: dict[int, ReopenState]) -> None:
    """bdrv_reopen_multiple over a queue: committed, or undone whole if any
    step fails (the error is raised again)."""
    tx = Transaction()
    try:
        _run(g, queue, tx)
    except BaseException:
        tx.abort()
        raise
    tx.commit()


def _run(g: BlockGraph, queue: dict[int, ReopenState], tx: Transaction) -> None:
    states = list(queue.values())
    for st in states:
        _prepare(g, st, queue, tx)
    roots: list[Node] = []
    for st in states:
        roots.append(st.node)
        roots.extend(st.old_children)
    if g.profile.reopen_refresh_list_prepended:
        roots.reverse()
    by_node = {id(st.node): st for st in states}

    def writable(n: Node) -> bool:
        st = by_node.get(id(n))
        return not (st.read_only if st is not None else n.read_only)

    g.refresh_perms(roots, tx, writable=writable)
    for st in reversed(states):
        _commit(g, st, tx)
    if g.profile.reopen_detach_closes_queued_fds:
        _close_detached_fds(states, tx)
    # Old children nobody holds any more go now, after the new links exist.
    for st in states:
        for old in st.old_children:
            g.unref(old, tx)
            if old.alive:
                g.refresh_perms([old], tx)


def _close_detached_fds(states: list[ReopenState], tx: Transaction) -> None:
    """Before 6.0 every queued file node took a new descriptor in prepare,
    which its permission check kept as perm_change_fd; the commits run
    children first, so the file nodes already use it when a parent's commit
    aborts the permission update of the backing node it detaches, and of
    everything below: raw_abort_perm_update (no reopen_state any more)
    closes perm_change_fd, the node's own descriptor.  Such a node goes on
    with a closed descriptor (fstat fails: no actual-size).  A reopen that
    queues it again opens the file anew (the dup fails, qemu_open)."""
    queued = {id(st.node) for st in states}
    files = [st.node for st in states if hasattr(st.node.state, "fd_closed")]
    for n in files:
        if n.state.fd_closed:
            tx.on_abort(lambda n=n: setattr(n.state, "fd_closed", True))
            n.state.fd_closed = False
    for st in states:
        if "backing" not in st.replaced:
            continue
        stack = list(st.old_children)
        seen: set[int] = set()
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            stack.extend(e.child for e in n.children)
            if id(n) in queued and hasattr(n.state, "fd_closed") and not n.state.fd_closed:
                tx.on_abort(lambda n=n: setattr(n.state, "fd_closed", False))
                n.state.fd_closed = True


def _prepare(g: BlockGraph, st: ReopenState, queue: dict[int, ReopenState],
             tx: Transaction) -> None:
    node = st.node
    drv = node.driver
    opts = dict(st.options)
    # Generic options (bdrv_runtime_opts); node-name, driver and force-share
    # go back into the dict as QemuOpts strings.
    if "discard" in opts:
        st.discard = opts.pop("discard")
    elif not st.top_level:
        st.discard = node.discard
    for k in ("cache.direct", "cache.no-flush", "read-only", "auto-read-only"):
        opts.pop(k, None)
    st.detect_zeroes = opts.pop("detect-zeroes", "off")
    if st.detect_zeroes == "unmap" and st.discard != "unmap":
        raise BlockError.of("node.setting-detect-zeroes-unmap-not")
    if "force-share" in opts:
        opts["force-share"] = "on" if is_true(opts["force-share"]) else "off"
    # bdrv_can_set_read_only
    if st.read_only and not node.read_only and node.copy_on_read:
        raise BlockError.of("reopen.ro-copy-on-read", name=node.name)
    # bdrv_reopen_prepare: "Flush here so that the flush won't happen at a
    # bad time during the reopen" (what a job wrote is on disk afterwards).
    try:
        g.flush(node)
    except OSError as e:
        raise BlockError(f"Error flushing drive: {os.strerror(e.errno or errno.EIO)}") from None
    if not drv.can_reopen:
        raise BlockError.of("reopen.block-format-used-node-does", drv=drv.name, node=node.name)
    # bdrv_reset_options_allowed
    for key in _order(list(node.options)):
        if key in opts or key in GENERIC_KEYS:
            continue
        if any(key == m or key.startswith(m + ".") for m in drv.mutable):
            continue
        raise BlockError.of("reopen.option-cannot-reset-default-value", key=key)
    commit = drv.reopen_prepare(g, node, opts, queue)
    if commit is not None:
        st.commits.append(commit)
    file_before = node.file
    try:
        _prepare_children_and_options(g, st, opts, tx)
    except BlockError:
        drv.reopen_prepare_failed(g, node, node.file is not file_before)
        raise


def _prepare_children_and_options(g: BlockGraph, st: ReopenState, opts: dict,
                                  tx: Transaction) -> None:
    """The part of bdrv_reopen_prepare after the driver's own prepare."""
    node = st.node
    drv = node.driver
    if drv.supports_backing and st.backing_missing and \
            (node.backing is not None or g.header_backing(node)[0]):
        raise BlockError.of("reopen.backing-missing", node=node.name)
    _parse_child(g, st, opts, "backing", tx)
    opts.pop("backing", None)
    if g.profile.reopen_replaces_file:
        _parse_child(g, st, opts, "file", tx)
        opts.pop("file", None)
    # else: ``file`` is an ordinary option that must name the current child
    stored = node.options
    for key in _order(list(opts)):
        new = opts[key]
        if isinstance(new, str):
            e = node.child(key)
            if e is not None and e.child.name == new:
                continue
        if key not in stored or not qobj_equal(new, stored[key]):
            raise BlockError.of("reopen.cannot-change-option", key=key)


def _skip_implicit(n: Node | None) -> Node | None:
    while n is not None and n.implicit:
        e = n.file or n.backing
        n = e.child if e is not None else None
    return n


def _parse_child(g: BlockGraph, st: ReopenState, opts: dict, name: str,
                 tx: Transaction) -> None:
    if name not in opts:
        return
    node = st.node
    value = opts[name]
    is_backing = name == "backing"
    old_edge = node.child(name)
    old = old_edge.child if old_edge is not None else None
    new: Node | None
    if value is None:
        new = None
    else:
        new = g.nodes.get(value)
        if new is None:
            raise BlockError.of("reopen.cannot-find-device-nor-node", value=value)
        if g.reaches(new, node):
            raise BlockError.of("node.making-child-would-create-cycle", child=value, name=name,
                                parent=node.name)
    if old is new:
        return
    if old is not None:
        if _skip_implicit(old) is new:
            return
        if old.implicit:
            raise BlockError.of("reopen.cannot-replace-implicit-child", name=name, node=node.name)
    if node.driver.is_filter and old is None:
        raise BlockError.of("reopen.filter-node-does-not-support", node=node.name,
                            driver=node.driver.name, name=name)
    # bdrv_set_file_or_backing_noperm
    if old_edge is not None and old_edge.frozen:
        raise BlockError.of("reopen.cannot-change-frozen-link", name=name, node=node.name,
                            child=old_edge.child.name)
    if is_backing and not node.driver.is_filter and not node.driver.supports_backing:
        raise BlockError.of("reopen.driver-node-does-not-support", driver=node.driver.name,
                            node=node.name)
    st.replaced.add(name)
    if node.driver.is_filter:
        role = perms.ROLE_FILTERED | perms.ROLE_PRIMARY
    elif is_backing:
        role = perms.ROLE_COW
    else:
        if old_edge is None:
            raise BlockError.of("reopen.cannot-set-file-child-format")
        role = old_edge.role
    update_inherits = new is not None and inherits_from_recursive(new, node)
    if old_edge is not None:
        # bdrv_unset_inherits_from: only when no other link of the node
        # still reaches the old child (a file that was also the backing).
        if old is not None and old.inherits_from is node and not any(
                e is not old_edge and e.child is old for e in node.children):
            old.inherits_from = None
            tx.on_abort(lambda o=old: setattr(o, "inherits_from", node))
        _replace_edge(g, node, old_edge, tx)
        st.old_children.append(old_edge.child)
    if name == "file" and hasattr(node.state, "image"):
        # A cached qcow2 image belongs to the old file.
        st.commits.append(lambda: setattr(node.state, "image", None))
    if new is not None:
        if new.aio_context != node.aio_context:
            # bdrv_attach_child_common: the new child must follow the node's
            # AioContext (or the node the child's).
            attach_context(g, node, new, tx)
        g.link(node, new, name, role, tx)
        if update_inherits:
            adopt_inheritance(new, node, tx)


def _replace_edge(g: BlockGraph, node: Node, edge: Edge, tx: Transaction) -> None:
    g.detach(edge, tx)


def _commit(g: BlockGraph, st: ReopenState, tx: Transaction) -> None:
    node = st.node
    old = (node.read_only, node.auto_read_only, node.discard, node.detect_zeroes,
           node.cache_direct, node.cache_no_flush, node.options, node.explicit, node.state)
    options = dict(st.options)
    explicit = dict(st.explicit)
    for d in (options, explicit):
        for e in node.children:
            d.pop(e.name, None)
        # A link this reopen changed is forgotten too (bdrv_reopen_commit's
        # replace_backing_bs); with the switch, also one given but absent.
        for name in ("backing", "file"):
            if g.profile.reopen_forgets_absent_children or name in st.replaced:
                d.pop(name, None)
    for field in GENERIC_FIELDS:
        setattr(node, field, getattr(st, field))
    node.options = options
    node.explicit = explicit
    if "force-share" in options:
        node.force_share = is_true(options["force-share"])

    def undo() -> None:
        (node.read_only, node.auto_read_only, node.discard, node.detect_zeroes,
         node.cache_direct, node.cache_no_flush, node.options, node.explicit,
         node.state) = old
    tx.on_abort(undo)
    for c in st.commits:
        c()
    if g.profile.reopen_refreshes_length:
        # bdrv_reopen_commit ends with bdrv_refresh_total_sectors (10.0): the
        # node's cached length follows its new options and children now.
        old_total = node.total

        def undo_total() -> None:
            node.total = old_total
        tx.on_abort(undo_total)
        node.total = None
        g.virtual_size(node)
