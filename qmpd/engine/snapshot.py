"""External snapshots (QEMU 7.2 blockdev.c external_snapshot_prepare,
commit and abort); the graph surgery they do (bdrv_append) is in
:mod:`qmpd.engine.surgery`.

``blockdev-snapshot {node, overlay}`` makes ``node`` the backing child of
``overlay`` and moves every parent of ``node`` (devices, exports, other
nodes) over to ``overlay``.  The commit step then reopens ``node``
read-only, as QEMU does (errors of that reopen are ignored, as in QEMU).
"""

from __future__ import annotations

from qmpd.engine import perms
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph
from qmpd.engine.node import Node
from qmpd.engine.surgery import all_or_nothing, append, lookup_bs, op_blocker, set_read_only
from qmpd.engine.transaction import Transaction
from qmpd.qcow2 import Qcow2FormatError, create_qcow2


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
        self._append(g, new, old, tx)

    def _append(self, g: BlockGraph, new: Node, old: Node, tx: Transaction) -> None:
        """The overlay checks of external_snapshot_prepare, then bdrv_append."""
        perm, _ = g.cumulative(new)
        if perm & perms.CONSISTENT_READ:
            raise BlockError.of("snapshot.overlay-already-use")
        if new.driver.is_filter:
            raise BlockError.of("snapshot.filters-cannot-used-overlays")
        if new.backing is not None:
            raise BlockError.of("snapshot.overlay-already-backing-image")
        if not new.driver.supports_backing:
            raise BlockError.of("snapshot.overlay-does-not-support-backing")
        append(g, new, old, tx)
        self.old = old

    def commit(self, g: BlockGraph) -> None:
        old = self.old
        if old is None or not old.alive or old.driver.name == "copy-on-read":
            return
        set_read_only(g, old)


class SnapshotSyncAction(SnapshotAction):
    """blockdev-snapshot-sync (transaction action): create the overlay, open it, append.

    The image is created in the in-memory host-file layer (engine/jobs/create.py's
    rules).  As in QEMU, the new node is referenced only by the users it took
    over: a node nobody uses gets an overlay that is gone again at the end.
    """

    def __init__(self, data: dict) -> None:
        super().__init__(data.get("device") or "", "")
        self.data = data
        self.new: Node | None = None

    def prepare(self, g: BlockGraph, tx: Transaction) -> None:
        d = self.data
        node_name = d.get("node-name")
        old = lookup_bs(g, d.get("device"), node_name)
        op_blocker(g, old)
        snap = d.get("snapshot-node-name")
        if node_name is not None and snap is None:
            raise BlockError.of("snapshot.new-overlay-node-name-missing")
        if snap is not None and snap in g.nodes:
            raise BlockError.of("snapshot.new-overlay-node-name-already")
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
                raise BlockError.of("snapshot.backing-file-not-supported-file")
            else:
                raise BlockError.of("snapshot.qmpd-cannot-create-images", fmt=fmt)
            g.hostfiles.announce(path, fmt, size, (g.filename_info(old)[0], old.driver.name))
            layer = g.hostfiles.open_or_create(path)
            if layer is None:
                raise BlockError.of("snapshot.could-not-create-no-such", path=path)
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
        self._append(g, new, old, tx)

    def commit(self, g: BlockGraph) -> None:
        super().commit(g)
        new = self.new
        if new is not None and new.alive and not new.parents:
            # external_snapshot_clean: the action's reference goes.
            with all_or_nothing() as tx:
                g.unref(new, tx)
                for e in list(new.children):
                    g.detach(e, tx)


def blockdev_snapshot(g: BlockGraph, node: str, overlay: str) -> None:
    act = SnapshotAction(node, overlay)
    with all_or_nothing() as tx:
        act.prepare(g, tx)
    act.commit(g)
