"""The block graph: the single owner of nodes and the links between them.

:class:`BlockGraph` follows QEMU 7.2's block.c where it matters for what a
client sees: the order in which ``bdrv_open_inherit`` opens children and
names nodes (the auto-name counter is global and never rolled back),
permission refreshes in topological order with QEMU's conflict and image
lock checks, and node lifetime by references.

Every mutation runs inside a :class:`Transaction`; a failing command aborts
it, and the undo log puts the graph back exactly as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from qmpd.cstrings import cstring
from qmpd.engine import perms
from qmpd.engine.aio import attach_context
from qmpd.engine.bitmaps import note_write
from qmpd.engine.devices.model import Machine
from qmpd.engine.drivers.base import Driver
from qmpd.engine.drivers.registry import get_driver
from qmpd.engine.errors import BlockError
from qmpd.engine.exports import ExportState
from qmpd.engine.hostfiles import HostFiles
from qmpd.engine.node import Edge, Node, Parent, id_wellformed, protocol_of
from qmpd.engine.objects import IOThread, ThrottleGroup
from qmpd.engine.transaction import Transaction
from qmpd.profiles import Message, Profile, select
from qmpd.qcow2 import is_qcow2
from qmpd.qobject import dumps

__all__ = ["BlockGraph", "Transaction", "flatten", "extract_sub", "inherit_options",
           "id_wellformed", "is_true", "GENERIC_KEYS"]

GENERIC_KEYS = ("node-name", "discard", "cache.direct", "cache.no-flush", "read-only",
                "auto-read-only", "detect-zeroes")




def is_true(v: Any) -> bool:
    return v is True or v == "on"


def flatten(d: dict, prefix: str = "", out: dict | None = None) -> dict:
    """QEMU's qdict_flatten: nested dicts and lists become dotted keys."""
    if out is None:
        out = {}
    for k, v in d.items():
        key = prefix + k
        if isinstance(v, dict):
            if v:
                flatten(v, key + ".", out)
            else:
                out[key] = v
        elif isinstance(v, list):
            if v:
                for i, item in enumerate(v):
                    if isinstance(item, dict):
                        flatten(item, f"{key}.{i}.", out)
                    else:
                        out[f"{key}.{i}"] = item
            else:
                out[key] = v
        else:
            out[key] = v
    return out


def extract_sub(opts: dict, prefix: str) -> dict:
    """qdict_extract_subqdict: move ``prefix*`` keys out of ``opts``."""
    sub = {}
    for k in [k for k in opts if k.startswith(prefix)]:
        sub[k[len(prefix):]] = opts.pop(k)
    return sub


def inherit_options(role: int, child: dict, parent: dict) -> None:
    """bdrv_inherited_options: defaults a child takes from its parent."""
    for k in ("cache.direct", "cache.no-flush", "force-share"):
        if k not in child and k in parent:
            child[k] = parent[k]
    if role & perms.ROLE_COW:
        child.setdefault("read-only", "on")
        child.setdefault("auto-read-only", "off")
    else:
        for k in ("read-only", "auto-read-only"):
            if k not in child and k in parent:
                child[k] = parent[k]
    child.setdefault("discard", "unmap")


class BlockGraph:
    """All nodes, objects and parents of the daemon's block layer."""

    def __init__(self, profile: Profile | None = None) -> None:
        # The QEMU release the graph answers as: its semantic switches are
        # asked here, never version numbers (qmpd.profiles).
        self.profile: Profile = profile if profile is not None else select()
        self.nodes: dict[str, Node] = {}        # naming order
        self.name_counter = 0
        self.throttle_groups: dict[str, ThrottleGroup] = {}
        self.iothreads: dict[str, IOThread] = {}
        self.backends: list[Parent] = []
        self.jobs: list[Any] = []
        # Called with (nodes, begin) around a drained section (blockdev-reopen);
        # the job manager pauses and resumes the jobs there (qmpd/engine/jobs/state.py).
        self.drain_hook: Callable[[list[Node], bool], None] | None = None
        # Bumped by everything that may change what the queries show (every
        # command but the pure queries, every step of a job): results cached
        # for an older generation are stale (qmpd.commands.dispatch).
        self.generation = 0
        # While a query runs (nothing changes), filenames are worked out once
        # per node instead of once per parent that asks: id(node) -> result.
        self.filename_memo: dict[int, tuple[str, str, dict]] | None = None
        self.visits = 0                         # nodes touched by the last operation
        self.read_fill = 0                      # what unfilled read buffers hold
        self._seq = 0                           # naming order of nodes
        self.hostfiles = HostFiles()
        # The guest devices using the graph (device_add / device_del).
        self.machine = Machine()
        # The NBD server and the block exports (nbd-server-*, block-export-*).
        self.exports = ExportState()
        # Where engine events go (BLOCK_WRITE_THRESHOLD): the daemon's emit.
        self.emit_event: Callable[[str, dict], None] | None = None
        self._rand = random.Random()

    # ------------------------------------------------------------------
    # naming
    def _assign_name(self, node: Node, name: str | None, tx: Transaction) -> None:
        if name is None:
            name = f"#block{self.name_counter}{self._rand.randrange(100):02d}"
            self.name_counter += 1
            auto = True
        else:
            auto = False
            if not id_wellformed(name):
                raise BlockError.of("node.invalid-node-name", name=name)
        if any(b.name == name for b in self.backends if b.kind == "device-backend"):
            raise BlockError.of("node.node-name-conflicting-device-id", name=name)
        if name in self.nodes:
            raise BlockError.of("node.duplicate-nodes-node-name", name=name)
        if len(cstring(name)) >= 32:
            raise BlockError.of("node.node-name-too-long")
        node.name = name
        node.auto_named = auto
        self._seq += 1
        node.seq = self._seq
        self.nodes[name] = node
        tx.on_abort(lambda: self._forget(node))

    def named_backend(self, name: str) -> Parent | None:
        """blk_by_name: the BlockBackend a -drive named ``name``."""
        if not name:
            return None
        for b in self.backends:
            if b.kind == "device-backend" and b.name == name:
                return b
        return None

    def device_name(self, node: Node) -> str:
        """bdrv_get_device_name: the name of a named BlockBackend on ``node``."""
        for e in node.parents:
            p = e.parent
            if isinstance(p, Parent) and p.kind == "device-backend" and p.name:
                return p.name
        return ""

    def _forget(self, node: Node) -> None:
        if self.nodes.get(node.name) is node:
            del self.nodes[node.name]
        node.alive = False

    def find(self, name: str) -> Node | None:
        return self.nodes.get(name)

    # ------------------------------------------------------------------
    # opening (bdrv_open_inherit and friends)
    def add(self, options: dict) -> Node:
        """blockdev-add: ``options`` is a validated BlockdevOptions dict."""
        opts = flatten(options)
        if not isinstance(opts.get("node-name"), str):
            raise BlockError.of("node.node-name-must-specified-root")
        opts.setdefault("cache.direct", False)
        opts.setdefault("cache.no-flush", False)
        opts.setdefault("read-only", False)
        tx = Transaction()
        try:
            node = self.open(tx, opts)
            node.monitor_owned = True
        except BaseException:
            tx.abort()
            raise
        tx.commit()
        return node

    def open(self, tx: Transaction, opts: dict, *, filename: str | None = None,
             reference: str | None = None, parent: Node | None = None, role: int = 0,
             parent_options: dict | None = None) -> Node:
        if reference is not None:
            if filename is not None or opts:
                raise BlockError.of("node.cannot-reference-existing-block-device")
            found = self.nodes.get(reference)
            if found is None:
                raise BlockError.of("node.cannot-find-device-nor-node", reference=reference)
            return found

        if filename is not None and filename.startswith("json:"):
            # bdrv_fill_options / parse_json_filename: the options are the filename.
            filename = self._json_filename(filename, opts)
        explicit = dict(opts)
        if parent is not None:
            inherit_options(role, opts, parent_options or {})
        drvname = opts.get("driver")
        drv: Driver | None = None
        if drvname is None and filename is not None and parent is not None \
                and not role & perms.ROLE_COW:
            # Children of format nodes are protocol nodes: the protocol is
            # found from the filename's prefix (plain paths are 'file').
            drvname = opts["driver"] = protocol_of(filename)
        elif drvname is None and isinstance(opts.get("filename"), str) and parent is not None \
                and not role & perms.ROLE_COW:
            # bdrv_fill_options: a protocol child given by its filename option.
            drvname = opts["driver"] = protocol_of(opts["filename"])
        if drvname is not None:
            drv = get_driver(drvname)
            if drv is None:
                raise BlockError.of("node.driver-not-supported-qmpd", drvname=drvname)
        if drv is not None and drv.protocol and filename is not None:
            # bdrv_fill_options: a protocol driver takes the filename as an option.
            if "filename" in opts:
                raise BlockError.of("node.specify-file-filename-options-same")
            if drv.name in ("null-co", "null-aio"):
                if filename != f"{drv.name}://":
                    raise BlockError.of("node.allowed-filename-driver", drv=drv.name)
                filename = None
        node = Node(drv or get_driver("raw"))  # type: ignore[arg-type]
        node.inherits_from = parent
        no_backing = False
        if "backing" in opts and (opts["backing"] is None or opts["backing"] == ""):
            no_backing = True
            del opts["backing"]
            explicit.pop("backing", None)

        read_only = is_true(opts.get("read-only"))
        node.read_only = read_only
        node.auto_read_only = is_true(opts.get("auto-read-only"))
        node.cache_direct = is_true(opts.get("cache.direct"))
        node.cache_no_flush = is_true(opts.get("cache.no-flush"))

        pending: dict[str, Node] = {}
        if drv is None or not drv.protocol:
            child = self.open_child_bs(filename, opts, "file", node, perms.ROLE_IMAGE, tx,
                                       allow_none=True)
            if child is not None:
                pending["file"] = child
                if drv is None:
                    drv = self._probe(child)
                    opts["driver"] = drv.name
                    node.driver = drv
        elif filename is not None:
            opts["filename"] = filename
        assert drv is not None
        node.driver = drv
        node.state = pending

        # bdrv_open_common
        node.force_share = is_true(opts.get("force-share"))
        if node.force_share and not read_only:
            raise BlockError.of("node.force-share-used-read-images")
        node.discard = opts.get("discard", "ignore")
        node.detect_zeroes = opts.get("detect-zeroes", "off")
        if node.detect_zeroes == "unmap" and node.discard != "unmap":
            raise BlockError.of("node.setting-detect-zeroes-unmap-not")
        self._assign_name(node, opts.get("node-name"), tx)
        try:
            drv.open(self, node, opts, tx)
        finally:
            if isinstance(node.state, dict) and node.state is pending:
                node.state = None
        node.total = None
        self.virtual_size(node)     # refresh_total_sectors at the end of the open
        for n in pending.values():
            if n.alive and not n.parents and not n.monitor_owned:
                self._delete_node(n, tx)

        if drv.supports_backing and not no_backing:
            self._open_backing_file(node, opts, tx)
        node.no_backing = no_backing

        for e in node.children:
            extract_sub(opts, e.name + ".")
            extract_sub(explicit, e.name + ".")
            opts.pop(e.name, None)
            explicit.pop(e.name, None)
        for key in ("file", "backing"):
            if key not in [e.name for e in node.children]:
                extract_sub(opts, key + ".")
                opts.pop(key, None)
        node.options = opts
        node.explicit = explicit
        return node

    @staticmethod
    def _json_filename(filename: str, opts: dict) -> str | None:
        try:
            value = json.loads(filename[5:])
        except ValueError as e:
            raise BlockError(f"Could not parse the JSON options: {e}") from None
        if not isinstance(value, dict):
            raise BlockError("Invalid JSON object given")
        for k, v in flatten(value).items():
            if k in opts:
                raise BlockError(f"Option '{k}' cannot be set in both the filename and "
                                 "the options")
            opts[k] = v
        return None

    def _probe(self, child: Node) -> Driver:
        head = self.read(child, 0, 512)
        drv = get_driver("qcow2" if is_qcow2(head) else "raw")
        assert drv is not None
        return drv

    def open_child_bs(self, filename: str | None, opts: dict, key: str, parent: Node,
                      role: int, tx: Transaction, allow_none: bool = False) -> Node | None:
        child_opts = extract_sub(opts, key + ".")
        ref = opts.get(key)
        reference = ref if isinstance(ref, str) else None
        if filename is None and reference is None and not child_opts:
            opts.pop(key, None)
            if not allow_none:
                raise BlockError.of("node.block-device-must-specified", key=key)
            return None
        child = self.open(tx, child_opts, filename=filename, reference=reference,
                          parent=parent, role=role, parent_options=opts)
        opts.pop(key, None)
        return child

    def attach_file_child(self, node: Node, role: int, tx: Transaction) -> Node:
        """The driver's bdrv_open_file_child: attach the probed ``file`` node."""
        pending = node.state if isinstance(node.state, dict) else {}
        child = pending.pop("file", None)
        if child is None:
            raise BlockError.of("node.block-device-must-specified-file")
        self.attach(node, child, "file", role, tx)
        return child

    def open_and_attach(self, node: Node, opts: dict, key: str, role: int,
                        tx: Transaction) -> Node:
        """bdrv_open_child: open (or look up) child ``key`` and attach it."""
        child = self.open_child_bs(None, opts, key, node, role, tx)
        assert child is not None
        self.attach(node, child, key, role, tx)
        return child

    def _open_backing_file(self, node: Node, opts: dict, tx: Transaction) -> None:
        child_opts = extract_sub(opts, "backing.")
        ref = opts.get("backing")
        reference = ref if isinstance(ref, str) else None
        header_backing = self.header_backing(node)
        implicit = False
        backing_filename = None
        if reference is not None or "file.filename" in child_opts:
            pass
        elif not header_backing[0] and not child_opts:
            return
        else:
            if not child_opts:
                implicit = True
            backing_filename = self.full_backing_filename(node)
        fmt = header_backing[1]
        if reference is None and fmt and "driver" not in child_opts:
            child_opts["driver"] = fmt
        role = (perms.ROLE_FILTERED | perms.ROLE_PRIMARY) if node.driver.is_filter \
            else perms.ROLE_COW
        try:
            bk = self.open(tx, child_opts, filename=backing_filename, reference=reference,
                           parent=node, role=role, parent_options=opts)
        except BlockError as e:
            raise e.prefixed(Message("node.backing-open-failed-prefix")) from None
        if implicit:
            node.auto_backing_file = self.filename_info(bk)[0]
        self.attach(node, bk, "backing", role, tx)
        opts.pop("backing", None)

    def header_backing(self, node: Node) -> tuple[str, str]:
        st = node.state
        h = getattr(st, "header", None)
        if h is None:
            return "", ""
        return h.backing_file or "", h.backing_format or ""

    def full_backing_filename(self, node: Node) -> str | None:
        backing, _ = self.header_backing(node)
        if not backing:
            return None
        if os.path.isabs(backing) or re.match(r"^[a-zA-Z0-9+.-]+:", backing):
            return backing
        # QEMU resolves against the name the node had when its file child was
        # opened (its exact filename), which is the file child's own name.
        f = node.file
        if f is not None:
            filename, exact, _ = self.filename_info(f.child)
        else:
            filename, exact, _ = self.filename_info(node)
        backed = exact or filename
        if not backed or backed.startswith("json:"):
            raise BlockError.of("node.cannot-use-relative-backing-file", backed=backed)
        d = backed.rsplit("/", 1)[0] + "/" if "/" in backed else ""
        return d + backing

    # ------------------------------------------------------------------
    # edges and lifetime
    def attach(self, parent: Node | Parent, child: Node, name: str, role: int,
               tx: Transaction) -> Edge:
        if isinstance(parent, Node) and self.reaches(child, parent):
            raise BlockError.of("node.making-child-would-create-cycle", child=child.name, name=name,
                                parent=parent.name)
        if isinstance(parent, Node) and parent.active and not child.active:
            # Only blockdev-set-active (10.0+) makes a node inactive.
            raise BlockError(f"Inactive '{child.name}' can't be a {name} child of active "
                             f"'{parent.name}'")
        if isinstance(parent, Node) and parent.aio_context != child.aio_context:
            attach_context(self, parent, child, tx)
        e = self.link(parent, child, name, role, tx)
        if isinstance(parent, Node):
            self.refresh_perms([child], tx, new_edge=e)
        else:
            self.refresh_perms([child], tx)
        return e

    def link(self, parent: Node | Parent, child: Node, name: str, role: int,
             tx: Transaction) -> Edge:
        """Add the edge only (no checks, no permission refresh), undoably."""
        e = Edge(parent, child, name, role)
        parent.children.append(e)
        child.parents.append(e)

        def undo() -> None:
            parent.children.remove(e)
            child.parents.remove(e)
        tx.on_abort(undo)
        return e

    def detach(self, e: Edge, tx: Transaction) -> None:
        parent, child = e.parent, e.child
        i = parent.children.index(e)
        j = child.parents.index(e)
        del parent.children[i]
        del child.parents[j]

        def undo() -> None:
            parent.children.insert(i, e)
            child.parents.insert(j, e)
        tx.on_abort(undo)

    def unref(self, node: Node, tx: Transaction) -> None:
        """Delete ``node`` if nothing holds it any more."""
        if node.alive and not node.parents and not node.monitor_owned:
            self._delete_node(node, tx)

    def _delete_node(self, node: Node, tx: Transaction) -> None:
        named = self.nodes.get(node.name) is node
        if named:
            del self.nodes[node.name]
        node.alive = False
        lay = getattr(node.state, "layer", None)
        if lay is not None:
            lay.nodes.discard(node)
            tx.on_abort(lambda: lay.nodes.add(node))
            if getattr(lay, "direct", False):
                # raw_close: the node's locks go with its file descriptor.
                self.host_relock(lay)
                tx.on_abort(lambda: self.host_relock(lay))
        if isinstance(node.driver, Driver) and node.driver.name == "throttle" and \
                isinstance(node.state, str):
            grp = node.state
            self.throttle_group_unref(grp)
            tx.on_abort(lambda: self._throttle_ref(grp))

        def undo() -> None:
            node.alive = True
            if named:
                # Put the node back at its place in naming order.
                self.nodes[node.name] = node
                if any(n.seq > node.seq for n in self.nodes.values()):
                    self.nodes = dict(sorted(self.nodes.items(), key=lambda kv: kv[1].seq))
        tx.on_abort(undo)
        close = getattr(node.driver, "close", None)
        if close is not None:
            # bdrv_close: the driver writes back what it keeps (qcow2's
            # persistent bitmaps) while its children are still there.
            close(self, node)
        for e in list(reversed(node.children)):
            self.detach(e, tx)
            self.unref(e.child, tx)
            if e.child.alive:
                self.refresh_perms([e.child], tx)

    def _throttle_ref(self, gid: str) -> None:
        if gid in self.throttle_groups:
            self.throttle_groups[gid].users += 1

    def throttle_group_unref(self, gid: str) -> None:
        g = self.throttle_groups.get(gid)
        if g is not None:
            g.users -= 1

    # ------------------------------------------------------------------
    # permissions
    def cumulative(self, node: Node) -> tuple[int, int]:
        perm, shared = 0, perms.ALL
        for e in node.parents:
            perm |= e.perm
            shared &= e.shared
        return perm, shared

    def topological(self, roots: Iterable[Node]) -> list[Node]:
        found: set[int] = set()
        out: list[Node] = []

        def dfs(n: Node) -> None:
            if id(n) in found:
                return
            found.add(id(n))
            for e in reversed(n.children):
                dfs(e.child)
            out.append(n)
        for r in roots:
            dfs(r)
        out.reverse()
        return out

    def refresh_perms(self, roots: list[Node], tx: Transaction,
                      new_edge: Edge | None = None,
                      writable: Callable[[Node], bool] | None = None,
                      ro_now: Callable[[Node], bool] | None = None,
                      changed: Edge | None = None) -> None:
        """bdrv_refresh_perms over ``roots`` and all below (``changed``: a user's new perms)."""
        if writable is None:
            writable = self._writable_now
        order = self.topological(roots)
        self.visits = len(order)
        if new_edge is not None:
            # A new child: its permissions are those the parent needs now.
            p = new_edge.parent
            assert isinstance(p, Node)
            cp, cs = self.cumulative(p)
            new_edge.perm, new_edge.shared = self._child_perm_w(p, new_edge, cp, cs, writable)
        for n in order:
            self._parent_conflicts(n, changed)
            cp, cs = self.cumulative(n)
            if cp & (perms.WRITE | perms.WRITE_UNCHANGED) and not writable(n):
                if not self._writable_now(n):
                    raise BlockError.of("node.read-only")
                raise BlockError.of("node.read-block-node-cannot-support", node=n.name)
            self._set_perm(n, cp, cs, tx)
            for e in n.children:
                np_, ns = self._child_perm_w(n, e, cp, cs, writable)
                if (np_, ns) != (e.perm, e.shared):
                    old = (e.perm, e.shared)
                    e.perm, e.shared = np_, ns

                    def undo(e: Edge = e, old: tuple[int, int] = old) -> None:
                        e.perm, e.shared = old
                    tx.on_abort(undo)

    def _child_perm_w(self, n: Node, e: Edge, cp: int, cs: int,
                      writable: Callable[[Node], bool]) -> tuple[int, int]:
        ro = n.read_only
        target_ro = not writable(n)
        if ro == target_ro:
            p, s = n.driver.child_perm(n, e, cp, cs)
        else:
            n.read_only = target_ro
            try:
                p, s = n.driver.child_perm(n, e, cp, cs)
            finally:
                n.read_only = ro
        if e.child.force_share:
            s = perms.ALL
        return p, s

    @staticmethod
    def _writable_now(n: Node) -> bool:
        # bdrv_is_writable: read-write and not handed away (BDRV_O_INACTIVE).
        return not n.read_only and n.active

    def _parent_conflicts(self, n: Node, changed: Edge | None = None) -> None:
        ps = list(reversed(n.parents))   # QEMU's parent list is newest first
        if len(ps) < 2:
            return
        if self.profile.perm_conflicts == "newcomer":
            # Before 6.0: the user coming (newest) or changing, against each other.
            b = changed if changed in ps else ps[0]
            for a in (p for p in ps if p is not b):
                if b.perm & ~a.shared:
                    raise BlockError.of("node.conflicts-with-use-denied", user=a.user_name(),
                                        role=a.name, perms=perms.names(b.perm & ~a.shared),
                                        name=n.name)
                if a.perm & ~b.shared:
                    raise BlockError.of("node.conflicts-with-use-used", user=a.user_name(),
                                        role=a.name, perms=perms.names(a.perm & ~b.shared),
                                        name=n.name)
            return
        for a in ps:
            for b in ps:
                if a is b:
                    continue
                if (b.perm & a.shared) != b.perm:
                    bad = perms.names(b.perm & ~a.shared)
                    raise BlockError.of("node.permission-conflict", node=n.name, bad=bad,
                                        required_by=b.user_desc(), required_as=b.name,
                                        unshared_by=a.user_desc(), unshared_as=a.name)

    def _set_perm(self, n: Node, perm: int, shared: int, tx: Transaction) -> None:
        """The driver's check_perm: the file driver's image locks."""
        st = n.state
        if n.driver.name != "file" or st is None or not st.locking:
            return
        self.lock_check(st.layer, perm, shared, exclude=n)
        layer = st.layer
        if getattr(layer, "direct", False):
            # Host writes: other processes (another QEMU, qemu-img) see the
            # image locks too, as QEMU's file-posix sets them.
            bad = layer.host_conflict(perm, shared)
            if bad is not None:
                bit, shared_lock = bad
                err = BlockError(f'Failed to get {"shared " if shared_lock else ""}'
                                 f'"{perms.NAMES[bit]}" lock')
                err.hint = f"Is another process using the image [{layer.path}]?"
                raise err
            self.host_relock(layer, n, (perm, shared))
            tx.on_abort(lambda: self.host_relock(layer))

    def host_relock(self, layer: Any, node: Node | None = None,
                    new: tuple[int, int] | None = None) -> None:
        """The file's locks: the union of what its open file nodes take and unshare."""
        taken, unshared = 0, 0
        for o in layer.nodes:
            if not o.alive or o.state is None or not o.state.locking:
                continue
            p, sh = new if o is node and new is not None else self.cumulative(o)
            taken |= p
            unshared |= perms.ALL & ~sh
        if node is not None and node not in layer.nodes and new is not None:
            taken |= new[0]
            unshared |= perms.ALL & ~new[1]
        layer.host_lock(taken, unshared)

    def lock_check(self, layer: Any, perm: int, shared: int, exclude: Node | None = None) -> None:
        """raw_check_lock_bytes against the other file nodes open on the file."""
        others = [o for o in layer.nodes
                  if o is not exclude and o.alive and o.state is not None and o.state.locking]
        if not others:
            return
        for i in range(4):
            p = 1 << i
            if perm & p:
                for o in others:
                    _, osh = self.cumulative(o)
                    if not osh & p:
                        raise BlockError.of("file.lock-failed", perm=perms.TEXT_NAMES[i])
        for i in range(4):
            p = 1 << i
            if not shared & p:
                for o in others:
                    op, _ = self.cumulative(o)
                    if op & p:
                        raise BlockError.of("file.shared-lock-failed", perm=perms.TEXT_NAMES[i])

    def op_blocker(self, node: Node) -> None:
        """bdrv_op_is_blocked for the operations a backing child or a job blocks.

        QEMU reports the first blocker of the node's list, which is the newest:
        the backing parent or job whose link to the node was attached last."""
        newest: tuple[int, BlockError] | None = None
        name = self.device_name(node) or node.name     # bdrv_get_device_or_node_name
        for e in node.parents:
            err: BlockError | None = None
            # bdrv_backing_attach: only a COW backing child blocks (not a filter's)
            if e.name == "backing" and isinstance(e.parent, Node) and e.role & perms.ROLE_COW:
                err = BlockError.of("node.node-busy-node-used-backing", name=name,
                                    parent=e.parent.name)
            elif e.parent in self.jobs:
                err = BlockError.of("node.node-busy-block-device-use", name=name,
                                    job=e.parent.type)
            if err is not None and (newest is None or e.serial > newest[0]):
                newest = (e.serial, err)
        if newest is None:
            for j in self.jobs:
                if node in getattr(j, "nodes", ()):
                    newest = (0, BlockError.of("node.node-busy-block-device-use",
                                               name=name, job=j.type))
                    break
        if newest is not None:
            raise newest[1]

    # ------------------------------------------------------------------
    # deletion
    def delete(self, name: str) -> None:
        """blockdev-del."""
        node = self.nodes.get(name)
        if node is None:
            raise BlockError.of("del.node-not-found", name=name)
        for e in node.parents:
            if isinstance(e.parent, Parent) and e.parent.kind in ("device-backend", "job-backend"):
                raise BlockError.of("node.in-use", name=name)
        self.op_blocker(node)
        if not node.monitor_owned:
            raise BlockError.of("node.node-not-owned-monitor", name=name)
        if node.parents:
            raise BlockError.of("node.block-device-in-use", name=name)
        tx = Transaction()
        node.monitor_owned = False
        tx.on_abort(lambda: setattr(node, "monitor_owned", True))
        try:
            self._delete_node(node, tx)
        except BaseException:
            tx.abort()
            raise
        tx.commit()

    # ------------------------------------------------------------------
    # structure helpers
    def chain_contains(self, top: Node, target: Node) -> bool:
        n: Node | None = top
        while n is not None:
            if n is target:
                return True
            n = self.filter_or_cow(n)
        return False

    def filter_or_cow(self, n: Node) -> Node | None:
        if n.driver.is_filter:
            return n.driver.filtered(n)
        b = n.backing
        return b.child if b else None

    def reaches(self, start: Node, target: Node) -> bool:
        """Whether ``target`` is ``start`` or below it through any child."""
        seen: set[int] = set()
        stack = [start]
        while stack:
            n = stack.pop()
            if n is target:
                return True
            if id(n) in seen:
                continue
            seen.add(id(n))
            stack.extend(e.child for e in n.children)
        return False

    # ------------------------------------------------------------------
    # data and sizes (pass-through to drivers)
    def read(self, node: Node, offset: int, length: int) -> bytes:
        return node.driver.read(self, node, offset, length)

    def write(self, node: Node, offset: int, data: bytes) -> None:
        if node.dirty_bitmaps or node.write_threshold:
            note_write(self, node, offset, len(data))
        node.driver.write(self, node, offset, data)
        node.wrote(offset, len(data))
        end = (offset + len(data) + 511) & ~511
        if node.total is not None and end > node.total:
            node.total = end   # bdrv_co_write_req_finish grows total_sectors

    def write_zeroes(self, node: Node, offset: int, length: int, unmap: bool = False) -> None:
        if node.dirty_bitmaps or node.write_threshold:
            note_write(self, node, offset, length)
        node.driver.write_zeroes(self, node, offset, length, unmap)
        node.wrote(offset, length)

    def discard(self, node: Node, offset: int, length: int) -> None:
        if node.dirty_bitmaps or node.write_threshold:
            note_write(self, node, offset, length)
        node.driver.discard(self, node, offset, length)
        node.write_gen += 1

    def flush(self, node: Node) -> None:
        """bdrv_co_flush: FLUSH_TO_OS on the primary child, then, if the node
        was written since its last flush and cache.no-flush is off,
        FLUSH_TO_DISK and the driver's flush; then every child it writes to.
        Raises OSError as the flush fails (the generation stays unflushed)."""
        if node.read_only:
            return
        drv = node.driver
        if drv.flushes_whole:
            child = drv.filtered(node)
            if child is not None:
                self.flush(child)
            return
        gen = node.write_gen
        prim = drv.primary(node)
        if prim is not None:
            prim.driver.debug_event(prim, "flush_to_os")
        if not node.cache_no_flush and node.flushed_gen != gen:
            if prim is not None:
                prim.driver.debug_event(prim, "flush_to_disk")
            drv.flush_to_disk(self, node)
        failure: OSError | None = None
        for e in list(node.children):
            if e.perm & (perms.WRITE | perms.WRITE_UNCHANGED):
                try:
                    self.flush(e.child)
                except OSError as exc:
                    failure = failure or exc
        if failure is not None:
            raise failure
        node.flushed_gen = gen

    def block_status(self, node: Node, offset: int,
                     length: int) -> list[tuple[int, int, bool, bool]]:
        return node.driver.block_status(self, node, offset, length)

    def virtual_size(self, node: Node) -> int:
        """bdrv_getlength: total_sectors * 512.

        QEMU caches the length at open; only drivers with variable length
        (raw, copy-on-read, ...) ask again each time.  So a filter keeps the
        size its child had when the filter was opened, even after a reopen
        changed or replaced that child.
        """
        if node.total is None or (node.driver.variable_length
                                  and self.profile.driver_lengths_vary):
            node.total = (node.driver.virtual_size(self, node) + 511) & ~511
        return node.total

    def actual_size(self, node: Node) -> int | None:
        return node.driver.actual_size(self, node)

    def get_info(self, node: Node) -> tuple[int, bool] | None:
        return node.driver.get_info(self, node)

    def format_specific(self, node: Node) -> dict | None:
        return node.driver.format_specific(self, node)

    # ------------------------------------------------------------------
    # filenames (bdrv_refresh_filename)
    @contextlib.contextmanager
    def querying(self) -> Iterator[None]:
        """A query runs inside: nothing changes meanwhile, so each node's
        filename is worked out once, not once per parent or chain that asks."""
        self.filename_memo = {}
        try:
            yield
        finally:
            self.filename_memo = None

    def filename_info(self, node: Node) -> tuple[str, str, dict]:
        """(filename, exact_filename, full_open_options) of ``node``."""
        memo = self.filename_memo
        if memo is None:
            return self._filename_info(node)
        r = memo.get(id(node))
        if r is None:
            r = memo[id(node)] = self._filename_info(node)
        return r

    def _filename_info(self, node: Node) -> tuple[str, str, dict]:
        drv = node.driver
        if node.implicit and node.children:
            return self.filename_info(node.children[0].child)
        backing_overridden = self.backing_overridden(node)
        opts: dict[str, Any] = {}
        opts["driver"] = drv.name
        if "filename" in node.options:
            opts["filename"] = node.options["filename"]
        found_any = False
        # Most nodes have none of their driver's strong options: one cheap
        # pass finds out, and only then are they copied in the driver's order.
        strong = drv.strong
        if strong and any(k.startswith(strong) for k in node.options):
            for s in strong:
                for k, v in node.options.items():
                    if (k.startswith(s) if s.endswith(".") else k == s):
                        opts[k] = v
                        found_any = True
        generate_json = found_any or backing_overridden
        drv.gather_children(self, node, opts, backing_overridden)
        exact = drv.exact_filename(self, node, opts, generate_json)
        if exact:
            return exact, exact, opts
        return "json:" + dumps(opts), "", opts

    def backing_overridden(self, node: Node) -> bool:
        b = node.backing
        if b is not None:
            return node.auto_backing_file != self.filename_info(b.child)[0]
        return node.auto_backing_file != ""
