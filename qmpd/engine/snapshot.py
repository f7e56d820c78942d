"""External snapshots and node replacement (QEMU 7.2 blockdev.c
external_snapshot_prepare/commit/abort, block.c bdrv_append and
bdrv_replace_node_noperm).

``blockdev-snapshot {node, overlay}`` makes ``node`` the backing child of
``overlay`` and moves every parent of ``node`` (devices, exports, other
nodes) over to ``overlay``.  The commit step then reopens ``node``
read-only, as QEMU does (errors of that reopen are ignored, as in QEMU).
"""

from __future__ import annotations

from qmpd.engine import perms
from qmpd.engine.aio import attach_context
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph, Transaction
from qmpd.engine.node import Edge, Node, Parent


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
    raise BlockError(f"Cannot find device='{device or ''}' nor node-name='{node_name or ''}'")


def op_blocker(g: BlockGraph, node: Node) -> None:
    """bdrv_op_is_blocked for the operations a backing child or a job blocks."""
    for e in node.parents:
        if e.name == "backing" and isinstance(e.parent, Node):
            raise BlockError(f"Node '{node.name}' is busy: node is used as backing hd of "
                             f"'{e.parent.name}'")
    for j in g.jobs:
        if node in getattr(j, "nodes", ()):
            raise BlockError(f"Node '{node.name}' is busy: block device is in use by block "
                             f"job: {j.type}")


def _should_update(g: BlockGraph, e: Edge, to: Node) -> bool:
    """should_update_child: never a job's link, never a link from inside ``to``."""
    if isinstance(e.parent, Parent):
        return e.parent.kind not in ("job", "job-backend")
    if e.parent in [j for j in g.jobs]:
        return False
    return not g.reaches(to, e.parent)


def replace_node_noperm(g: BlockGraph, old: Node, new: Node, tx: Transaction,
                        skip: Edge | None = None) -> None:
    """bdrv_replace_node_noperm with auto_skip: move ``old``'s parents to ``new``."""
    # QEMU walks bs->parents newest first.
    for e in list(reversed(old.parents)):
        if e is skip or not _should_update(g, e, new):
            continue
        if e.frozen:
            raise BlockError(f"Cannot change '{e.name}' link to '{old.name}'")
        move_edge(e, new, tx)


def move_edge(e: Edge, new: Node, tx: Transaction) -> None:
    """bdrv_replace_child_noperm: point ``e`` at ``new`` (newest parent of it)."""
    old = e.child
    i = old.parents.index(e)
    del old.parents[i]
    e.child = new
    new.parents.append(e)

    def undo() -> None:
        new.parents.remove(e)
        e.child = old
        old.parents.insert(i, e)
    tx.on_abort(undo)


def append(g: BlockGraph, new: Node, top: Node, tx: Transaction) -> None:
    """bdrv_append: ``top`` becomes the backing child of ``new``, which takes its place."""
    role = (perms.ROLE_FILTERED | perms.ROLE_PRIMARY) if new.driver.is_filter \
        else perms.ROLE_COW
    if g.reaches(top, new):
        raise BlockError(f"Making '{top.name}' a backing child of '{new.name}' would create "
                         "a cycle")
    attach_context(g, new, top, tx)
    e = Edge(new, top, "backing", role)
    new.children.append(e)
    top.parents.append(e)

    def undo() -> None:
        new.children.remove(e)
        top.parents.remove(e)
    tx.on_abort(undo)
    replace_node_noperm(g, top, new, tx, skip=e)
    g.refresh_perms([new], tx, new_edge=e)
    old_ro = new.no_backing
    new.no_backing = False
    tx.on_abort(lambda: setattr(new, "no_backing", old_ro))


class SnapshotAction:
    """One blockdev-snapshot (alone or as a transaction action)."""

    def __init__(self, node: str, overlay: str) -> None:
        self.node_name = node
        self.overlay_name = overlay
        self.old: Node | None = None

    def prepare(self, g: BlockGraph, tx: Transaction) -> None:
        old = lookup_bs(g, self.node_name, self.node_name)
        op_blocker(g, old)
        new = lookup_bs(g, self.overlay_name, self.overlay_name)
        perm, _ = g.cumulative(new)
        if perm & perms.CONSISTENT_READ:
            raise BlockError("The overlay is already in use")
        if new.driver.is_filter:
            raise BlockError("Filters cannot be used as overlays")
        if new.backing is not None:
            raise BlockError("The overlay already has a backing image")
        if not new.driver.supports_backing:
            raise BlockError("The overlay does not support backing images")
        append(g, new, old, tx)
        self.old = old

    def commit(self, g: BlockGraph) -> None:
        old = self.old
        if old is None or not old.alive or old.driver.name == "copy-on-read":
            return
        set_read_only(g, old)


class SnapshotSyncAction(SnapshotAction):
    """blockdev-snapshot-sync (transaction action): create the overlay, open it, append.

    The image is created in the in-memory host-file layer (engine/create.py's
    rules).  As in QEMU, the new node is referenced only by the users it took
    over: a node nobody uses gets an overlay that is gone again at the end.
    """

    def __init__(self, data: dict) -> None:
        super().__init__(data.get("device") or "", "")
        self.data = data
        self.new: Node | None = None

    def prepare(self, g: BlockGraph, tx: Transaction) -> None:
        from qmpd.qcow2 import Qcow2FormatError, create_qcow2

        d = self.data
        node_name = d.get("node-name")
        old = lookup_bs(g, d.get("device"), node_name)
        op_blocker(g, old)
        snap = d.get("snapshot-node-name")
        if node_name is not None and snap is None:
            raise BlockError("New overlay node-name missing")
        if snap is not None and snap in g.nodes:
            raise BlockError("New overlay node-name already in use")
        fmt = d.get("format", "qcow2")
        path = d["snapshot-file"]
        if d.get("mode", "absolute-paths") != "existing":
            size = g.virtual_size(old)
            if fmt == "qcow2":
                try:
                    data = create_qcow2(size, backing_file=g.filename_info(old)[0],
                                        backing_format=old.driver.name)
                except Qcow2FormatError as e:
                    raise BlockError(getattr(e, "desc", None) or str(e)) from None
            elif fmt == "raw":
                # bdrv_img_create with a backing file
                raise BlockError("Backing file not supported for file format 'raw'")
            else:
                raise BlockError(f"qmpd cannot create '{fmt}' images")
            layer = g.hostfiles.open_or_create(path)
            if layer is None:
                raise BlockError(f"Could not create '{path}': No such file or directory")
            layer.truncate(0)
            layer.write(0, data)
            # bdrv_img_create opened three nodes to format the image (the file,
            # then qcow2 twice in qcow2_co_create): auto names are used up.
            g.name_counter += 3
            for n in layer.nodes:
                n.total = None
        opts: dict = {"driver": fmt, "backing": None, "read-only": old.read_only,
                      "cache.direct": old.cache_direct, "cache.no-flush": old.cache_no_flush,
                      "discard": old.discard}
        if snap is not None:
            opts["node-name"] = snap
        new = g.open(tx, opts, filename=path)
        self.new = new
        perm, _ = g.cumulative(new)
        if perm & perms.CONSISTENT_READ:
            raise BlockError("The overlay is already in use")
        if new.driver.is_filter:
            raise BlockError("Filters cannot be used as overlays")
        if new.backing is not None:
            raise BlockError("The overlay already has a backing image")
        if not new.driver.supports_backing:
            raise BlockError("The overlay does not support backing images")
        append(g, new, old, tx)
        self.old = old

    def commit(self, g: BlockGraph) -> None:
        super().commit(g)
        new = self.new
        if new is not None and new.alive and not new.parents:
            # external_snapshot_clean: the action's reference goes.
            tx = Transaction()
            g.unref(new, tx)
            for e in list(new.children):
                g.detach(e, tx)
            tx.commit()


def set_read_only(g: BlockGraph, node: Node, read_only: bool = True,
                  quiet: bool = True) -> None:
    """bdrv_reopen_set_read_only(bs, read_only, errp): a reopen that keeps the
    other options.  With ``quiet`` (errp NULL) a failure leaves things as they were."""
    from qmpd.engine import reopen as rp

    if node.read_only == read_only:
        return
    queue: dict[int, rp.ReopenState] = {}
    rp.queue_child(queue, node, {"read-only": read_only}, 0, None, True)
    tx = Transaction()
    try:
        rp._run(g, queue, tx)
    except BlockError:
        tx.abort()
        if quiet:
            return
        raise
    tx.commit()


def blockdev_snapshot(g: BlockGraph, node: str, overlay: str) -> None:
    act = SnapshotAction(node, overlay)
    tx = Transaction()
    try:
        act.prepare(g, tx)
    except BaseException:
        tx.abort()
        raise
    tx.commit()
    act.commit(g)
