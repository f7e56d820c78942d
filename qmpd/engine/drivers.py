"""Block drivers: what each driver takes, opens, lets change and reports.

A driver is data plus a few hooks, as in QEMU's ``BlockDriver``:

* ``open(graph, node, opts, tx)`` runs after the node is named (QEMU's
  ``bdrv_open_driver``): attach children, check options, read headers;
* ``child_perm(node, edge, perm, shared)`` is ``bdrv_child_perm``;
* ``reopen_prepare(graph, node, opts)`` consumes the options the driver may
  change and returns a commit function (``None`` means "cannot reopen");
* ``image_info`` hooks feed ``query-named-block-nodes``.

Errors are :class:`BlockError` with QEMU 7.2's text.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qmpd.engine import perms
from qmpd.engine.errors import BlockError
from qmpd.engine.node import Edge, Node

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph, Transaction

UINT64_MAX = (1 << 64) - 1

Commit = Callable[[], None]


def _size_opt(name: str, value: Any) -> int:
    """A QEMU_OPT_SIZE option given as a number (QemuOpts rejects negatives)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > UINT64_MAX:
        raise BlockError(f"Parameter '{name}' expects a non-negative number below 2^64")
    return value


def _number_opt(value: Any) -> int:
    """A QEMU_OPT_NUMBER option: negative numbers wrap around as uint64."""
    return value & UINT64_MAX


class Driver:
    name = ""
    protocol = False        # opened by bdrv_file_open: no "file" child probing
    is_filter = False
    supports_backing = False
    can_reopen = True
    # Options the driver's reopen consumes and which may also be omitted.
    mutable: tuple[str, ...] = ()
    # Strong runtime options: part of a json: filename.
    strong: tuple[str, ...] = ()
    # Options the driver takes (flat keys); others stay for comparison.
    has_get_info = False
    variable_length = False   # has_variable_length: length asked again each time

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        pass

    def child_perm(self, node: Node, edge: Edge, perm: int, shared: int) -> tuple[int, int]:
        return perms.default(edge.role, g_writable(node), perm, shared)

    def reopen_prepare(self, g: BlockGraph, node: Node, opts: dict,
                       queue: dict) -> Commit | None:
        """Consume what this driver may change from ``opts``; return commit."""
        return lambda: None

    # -- image information ---------------------------------------------------
    def virtual_size(self, g: BlockGraph, node: Node) -> int:
        f = self.primary(node)
        return g.virtual_size(f) if f else 0

    def actual_size(self, g: BlockGraph, node: Node) -> int | None:
        f = self.primary(node)
        return g.actual_size(f) if f else None

    def get_info(self, g: BlockGraph, node: Node) -> tuple[int, bool] | None:
        """(cluster_size, dirty) as bdrv_get_info gives it, or None (ENOTSUP)."""
        f = self.filtered(node)
        return g.get_info(f) if f else None

    def format_specific(self, g: BlockGraph, node: Node) -> dict | None:
        return None

    def read(self, g: BlockGraph, node: Node, offset: int, length: int) -> bytes:
        f = self.primary(node)
        return g.read(f, offset, length) if f else bytes(length)

    def write(self, g: BlockGraph, node: Node, offset: int, data: bytes) -> None:
        f = self.primary(node)
        if f is not None:
            g.write(f, offset, data)

    def write_zeroes(self, g: BlockGraph, node: Node, offset: int, length: int,
                     unmap: bool) -> None:
        f = self.primary(node)
        if f is not None:
            g.write_zeroes(f, offset, length, unmap)

    def discard(self, g: BlockGraph, node: Node, offset: int, length: int) -> None:
        f = self.primary(node)
        if f is not None:
            g.discard(f, offset, length)

    def block_status(self, g: BlockGraph, node: Node, offset: int,
                     length: int) -> list[tuple[int, int, bool, bool]]:
        """[(offset, length, allocated, zero)] as bdrv_block_status sees it."""
        f = self.primary(node)
        if f is not None and self.is_filter:
            return g.block_status(f, offset, length)
        return [(offset, length, True, False)]

    def flush(self, g: BlockGraph, node: Node) -> None:
        pass

    # -- structure -----------------------------------------------------------
    def primary(self, node: Node) -> Node | None:
        """bs->file: the child with the PRIMARY role."""
        for e in node.children:
            if e.role & perms.ROLE_PRIMARY:
                return e.child
        return None

    def filtered(self, node: Node) -> Node | None:
        """bdrv_filter_bs: the filtered child of a filter node."""
        if self.is_filter:
            e = node.backing
            return e.child if e else self.primary(node)
        return None

    def gather_children(self, g: BlockGraph, node: Node, opts: dict,
                        backing_overridden: bool) -> None:
        """bdrv_refresh_filename's generic gathering of child options."""
        for e in reversed(node.children):
            if e.name == "backing" and not backing_overridden:
                continue
            opts[e.name] = g.filename_info(e.child)[2]
        if backing_overridden and node.backing is None:
            opts["backing"] = None

    def exact_filename(self, g: BlockGraph, node: Node, full_opts: dict,
                       generate_json: bool) -> str:
        """bdrv_refresh_filename's choice of a plain filename ("" = use json)."""
        prim = self.primary(node)
        if prim is not None:
            child_exact = g.filename_info(prim)[1]
            if child_exact and prim.driver.protocol and not self.is_filter and not generate_json:
                return child_exact
        return ""


def g_writable(node: Node) -> bool:
    return not node.read_only


# ---------------------------------------------------------------------------
class FileState:
    __slots__ = ("path", "ident", "locking", "size", "blocks", "aio", "layer")

    def __init__(self, path: str, ident: tuple[int, int], locking: bool, size: int,
                 blocks: int, aio: str) -> None:
        self.path = path
        self.ident = ident
        self.locking = locking
        self.size = size
        self.blocks = blocks
        self.aio = aio


class FileDriver(Driver):
    name = "file"
    protocol = True
    mutable = ("x-check-cache-dropped",)
    has_get_info = True

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        path = opts["filename"]
        aio = opts.get("aio", "threads")
        if aio == "native" and not node.cache_direct:
            raise BlockError("aio=native was specified, but it requires cache.direct=on, "
                             "which was not specified.")
        locking = opts.get("locking", "auto") != "off"
        try:
            st = os.stat(path)
        except OSError as e:
            virtual = g.hostfiles.virtual.get(path)
            if virtual is None:
                raise BlockError(f"Could not open '{path}': "
                                 f"{os.strerror(e.errno or errno.EIO)}") from None
            # A file blockdev-create made in memory only (engine/create.py).
            node.state = FileState(path, (-1, id(virtual)), locking, virtual.size,
                                   virtual.allocated(), aio)
            node.state.layer = virtual
            virtual.nodes.add(node)
            tx.on_abort(lambda: virtual.nodes.discard(node))
            return
        import stat as stat_mod

        if not node.read_only:
            if stat_mod.S_ISDIR(st.st_mode):
                raise BlockError(f"Could not open '{path}': {os.strerror(errno.EISDIR)}")
            if not os.access(path, os.W_OK) and not node.auto_read_only:
                raise BlockError(f"Could not open '{path}': {os.strerror(errno.EACCES)}")
        elif not os.access(path, os.R_OK):
            raise BlockError(f"Could not open '{path}': {os.strerror(errno.EACCES)}")
        if not (stat_mod.S_ISREG(st.st_mode) or stat_mod.S_ISBLK(st.st_mode)
                or stat_mod.S_ISCHR(st.st_mode)):
            raise BlockError(f"'file' driver requires '{path}' to be either a regular file "
                             "or a block device")
        node.state = FileState(path, (st.st_dev, st.st_ino), locking, st.st_size,
                               st.st_blocks * 512, aio)
        lay = node.state.layer = g.hostfiles.layer(node.state.ident, path, st.st_size,
                                                   st.st_blocks * 512)
        lay.nodes.add(node)
        tx.on_abort(lambda: lay.nodes.discard(node))

    def reopen_prepare(self, g: BlockGraph, node: Node, opts: dict, queue: dict) -> Commit | None:
        opts.pop("drop-cache", None)
        opts.pop("x-check-cache-dropped", None)
        # QemuOpts hands the rest back as strings: typed options never compare equal.
        if "aio-max-batch" in opts:
            opts["aio-max-batch"] = str(opts["aio-max-batch"])
        return lambda: None

    def virtual_size(self, g: BlockGraph, node: Node) -> int:
        return node.state.layer.size

    def actual_size(self, g: BlockGraph, node: Node) -> int | None:
        return node.state.layer.allocated()

    def get_info(self, g: BlockGraph, node: Node) -> tuple[int, bool] | None:
        return (0, False)

    def read(self, g: BlockGraph, node: Node, offset: int, length: int) -> bytes:
        lay = node.state.layer
        data = lay.read(offset, max(0, min(length, lay.size - offset)))
        return data + bytes(length - len(data))

    def write(self, g: BlockGraph, node: Node, offset: int, data: bytes) -> None:
        node.state.layer.write(offset, data)

    def write_zeroes(self, g: BlockGraph, node: Node, offset: int, length: int,
                     unmap: bool) -> None:
        lay = node.state.layer
        if unmap and node.discard == "unmap":
            lay.punch(offset, length)
            if offset + length > lay.size:
                lay.write(max(offset, lay.size), bytes(offset + length - max(offset, lay.size)))
        else:
            lay.write(offset, bytes(length))

    def discard(self, g: BlockGraph, node: Node, offset: int, length: int) -> None:
        if node.discard == "unmap":
            node.state.layer.punch(offset, length)

    def block_status(self, g: BlockGraph, node: Node, offset: int,
                     length: int) -> list[tuple[int, int, bool, bool]]:
        return [(offset, length, True, False)]

    def exact_filename(self, g: BlockGraph, node: Node, full_opts: dict,
                       generate_json: bool) -> str:
        return node.state.path


class NullDriver(Driver):
    protocol = True
    strong = ("size", "read-zeroes")

    def __init__(self, name: str) -> None:
        self.name = name

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        size = _size_opt("size", opts.get("size", 1 << 30))
        latency = opts.get("latency-ns", 0)
        if latency < 0:
            raise BlockError("latency-ns is invalid")
        node.state = {"size": size, "read-zeroes": bool(opts.get("read-zeroes", False))}

    def virtual_size(self, g: BlockGraph, node: Node) -> int:
        return node.state["size"]

    def actual_size(self, g: BlockGraph, node: Node) -> int | None:
        return 0

    def get_info(self, g: BlockGraph, node: Node) -> tuple[int, bool] | None:
        return None

    def read(self, g: BlockGraph, node: Node, offset: int, length: int) -> bytes:
        # Without read-zeroes the caller's buffer is left alone: it keeps what
        # the caller filled it with (qemu-io: 0xab).
        if node.state["read-zeroes"]:
            return bytes(length)
        return bytes([g.read_fill]) * length

    def leaves_buffer(self, node: Node) -> bool:
        return not node.state["read-zeroes"]

    def write(self, g: BlockGraph, node: Node, offset: int, data: bytes) -> None:
        pass

    def write_zeroes(self, g: BlockGraph, node: Node, offset: int, length: int,
                     unmap: bool) -> None:
        pass

    def discard(self, g: BlockGraph, node: Node, offset: int, length: int) -> None:
        pass

    def block_status(self, g: BlockGraph, node: Node, offset: int,
                     length: int) -> list[tuple[int, int, bool, bool]]:
        return [(offset, length, True, bool(node.state["read-zeroes"]))]

    def exact_filename(self, g: BlockGraph, node: Node, full_opts: dict,
                       generate_json: bool) -> str:
        if all(k in ("filename", "driver", "latency-ns") for k in full_opts):
            return f"{self.name}://"
        return ""


class RawState:
    __slots__ = ("offset", "has_size", "size")

    def __init__(self, offset: int, has_size: bool, size: int) -> None:
        self.offset = offset
        self.has_size = has_size
        self.size = size


class RawDriver(Driver):
    name = "raw"
    variable_length = True
    mutable = ("offset", "size")
    strong = ("offset", "size")

    @staticmethod
    def _read_options(opts: dict) -> tuple[int, bool, int]:
        offset = _size_opt("offset", opts.get("offset", 0))
        has_size = "size" in opts
        size = _size_opt("size", opts["size"]) if has_size else 0
        return offset, has_size, size

    @staticmethod
    def _apply(g: BlockGraph, child: Node, offset: int, has_size: bool, size: int) -> RawState:
        real = g.virtual_size(child)
        if offset > real:
            raise BlockError(f"Offset ({offset}) cannot be greater than size of the "
                             f"containing file ({real})")
        if has_size and real - offset < size:
            raise BlockError(f"The sum of offset ({offset}) and size ({size}) has to be smaller "
                             f"or equal to the  actual size of the containing file ({real})")
        if has_size and size % 512:
            raise BlockError("Specified size is not multiple of 512")
        return RawState(offset, has_size, size if has_size else real - offset)

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        offset, has_size, size = self._read_options(opts)
        role = (perms.ROLE_DATA | perms.ROLE_PRIMARY) if (has_size or offset) \
            else (perms.ROLE_FILTERED | perms.ROLE_PRIMARY)
        child = g.attach_file_child(node, role, tx)
        node.state = self._apply(g, child, offset, has_size, size)

    def child_perm(self, node: Node, edge: Edge, perm: int, shared: int) -> tuple[int, int]:
        p, s = perms.default(edge.role, g_writable(node), perm, shared)
        p &= ~(perms.WRITE | perms.RESIZE)
        p |= perm & (perms.WRITE | perms.RESIZE)
        return p, s

    def reopen_prepare(self, g: BlockGraph, node: Node, opts: dict, queue: dict) -> Commit | None:
        offset, has_size, size = self._read_options(opts)
        opts.pop("offset", None)
        opts.pop("size", None)
        child = self.primary(node)
        assert child is not None
        st = self._apply(g, child, offset, has_size, size)

        def commit() -> None:
            node.state = st
        return commit

    def virtual_size(self, g: BlockGraph, node: Node) -> int:
        # raw_getlength: the size follows the (possibly replaced) child.
        st = node.state
        f = self.primary(node)
        length = g.virtual_size(f) if f else 0
        if length < st.offset:
            st.size = 0
        elif st.has_size:
            st.size = min(st.size, length - st.offset)
        else:
            st.size = length - st.offset
        return st.size

    def get_info(self, g: BlockGraph, node: Node) -> tuple[int, bool] | None:
        f = self.primary(node)
        return g.get_info(f) if f else None

    def read(self, g: BlockGraph, node: Node, offset: int, length: int) -> bytes:
        f = self.primary(node)
        if f is None:
            return bytes(length)
        return g.read(f, node.state.offset + offset, length)

    def write(self, g: BlockGraph, node: Node, offset: int, data: bytes) -> None:
        f = self.primary(node)
        if f is not None:
            g.write(f, node.state.offset + offset, data)

    def write_zeroes(self, g: BlockGraph, node: Node, offset: int, length: int,
                     unmap: bool) -> None:
        f = self.primary(node)
        if f is not None:
            g.write_zeroes(f, node.state.offset + offset, length, unmap)

    def discard(self, g: BlockGraph, node: Node, offset: int, length: int) -> None:
        f = self.primary(node)
        if f is not None:
            g.discard(f, node.state.offset + offset, length)

    def block_status(self, g: BlockGraph, node: Node, offset: int,
                     length: int) -> list[tuple[int, int, bool, bool]]:
        f = self.primary(node)
        if f is None:
            return [(offset, length, True, False)]
        base = node.state.offset
        return [(o - base, n, a, z) for o, n, a, z in g.block_status(f, base + offset, length)]


class FilterDriver(Driver):
    is_filter = True

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        g.attach_file_child(node, perms.ROLE_FILTERED | perms.ROLE_PRIMARY, tx)

    def exact_filename(self, g: BlockGraph, node: Node, full_opts: dict,
                       generate_json: bool) -> str:
        return ""


class ThrottleDriver(FilterDriver):
    name = "throttle"
    strong = ("throttle-group",)

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        super().open(g, node, opts, tx)
        group = opts["throttle-group"]
        if group not in g.throttle_groups:
            raise BlockError(f"Throttle group '{group}' does not exist")
        node.state = group
        g.throttle_groups[group].users += 1
        tx.on_abort(lambda: g.throttle_group_unref(group))

    def reopen_prepare(self, g: BlockGraph, node: Node, opts: dict, queue: dict) -> Commit | None:
        group = opts.pop("throttle-group", None)
        if group is None:
            raise BlockError("Please specify a throttle group")
        if group not in g.throttle_groups:
            raise BlockError(f"Throttle group '{group}' does not exist")

        def commit() -> None:
            old = node.state
            node.state = group
            g.throttle_groups[group].users += 1
            g.throttle_group_unref(old)
        return commit


class CopyOnReadDriver(FilterDriver):
    name = "copy-on-read"
    variable_length = True
    can_reopen = False

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        super().open(g, node, opts, tx)
        bottom = opts.get("bottom")
        if bottom is not None:
            b = g.nodes.get(bottom)
            if b is None:
                raise BlockError(f"Bottom node '{bottom}' not found")
            if not g.chain_contains(node, b):
                raise BlockError(f"Bottom node '{bottom}' is not in the backing chain "
                                 f"starting from '{node.name}'")

    def child_perm(self, node: Node, edge: Edge, perm: int, shared: int) -> tuple[int, int]:
        passthrough = perms.CONSISTENT_READ | perms.WRITE | perms.RESIZE
        p = perm & passthrough
        s = (shared & passthrough) | (perms.ALL & ~passthrough)
        return p | perms.WRITE_UNCHANGED, s


class BlkdebugDriver(Driver):
    name = "blkdebug"
    protocol = True
    is_filter = True
    strong = ("config", "inject-error.", "set-state.", "align", "max-transfer",
              "opt-write-zero", "max-write-zero", "opt-discard", "max-discard")

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        config = opts.get("config")
        if config is not None:
            try:
                with open(config):
                    pass
            except OSError as e:
                raise BlockError("Could not read blkdebug config file: "
                                 f"{os.strerror(e.errno or errno.EIO)}") from None
        bits = {n: 1 << i for i, n in enumerate(perms.NAMES)}
        take = 0
        unshare = 0
        for k, v in opts.items():
            if k.startswith("take-child-perms."):
                take |= bits.get(v, 0)
            elif k.startswith("unshare-child-perms."):
                unshare |= bits.get(v, 0)
        node.state = {"take": take, "unshare": unshare, "rules": self._rules(opts),
                      "active": [], "state": 1}
        g.open_and_attach(node, opts, "image", perms.ROLE_FILTERED | perms.ROLE_PRIMARY, tx)
        align = _size_opt("align", opts.get("align", 0))
        if align and (align >= 0x7FFFFFFF or align & (align - 1)):
            raise BlockError(f"Cannot meet constraints with align {align}")
        align = max(align, 1)
        prev = align
        for key, base in (("max-transfer", None), ("opt-write-zero", None),
                          ("max-write-zero", "opt-write-zero"), ("opt-discard", None),
                          ("max-discard", "opt-discard")):
            v = _size_opt(key, opts.get(key, 0))
            a = max(_size_opt(base, opts.get(base, 0)), align) if base else align
            if v and (v >= 0x7FFFFFFF or v % a):
                raise BlockError(f"Cannot meet constraints with {key} {v}")
        del prev

    def child_perm(self, node: Node, edge: Edge, perm: int, shared: int) -> tuple[int, int]:
        p, s = perms.default(edge.role, g_writable(node), perm, shared)
        st = node.state or {}
        return p | st.get("take", 0), s & ~st.get("unshare", 0)

    IOTYPES = ("read", "write", "write-zeroes", "discard", "flush", "block-status")

    def _rules(self, opts: dict) -> list[dict]:
        """inject-error and set-state rules (blkdebug's add_rule)."""
        rules: list[dict] = []
        for kind in ("inject-error", "set-state"):
            i = 0
            while f"{kind}.{i}.event" in opts:
                p = f"{kind}.{i}."
                r = {"action": kind, "event": opts[p + "event"],
                     "state": opts.get(p + "state", 0)}
                if kind == "inject-error":
                    sector = opts.get(p + "sector", -1)
                    iotype = opts.get(p + "iotype")
                    r.update(errno=opts.get(p + "errno", errno.EIO),
                             once=bool(opts.get(p + "once", False)),
                             immediately=bool(opts.get(p + "immediately", False)),
                             offset=-1 if sector == -1 else sector * 512,
                             iotypes=(iotype,) if iotype else self.IOTYPES[:5])
                else:
                    r["new_state"] = opts.get(p + "new_state", 0)
                rules.append(r)
                i += 1
        return rules

    def debug_event(self, node: Node, event: str) -> None:
        """blkdebug_debug_event: activate inject rules, change state."""
        st = node.state
        new_state = st["state"]
        injected = 0
        for r in st["rules"]:
            if r["event"] != event or (r["state"] and r["state"] != st["state"]):
                continue
            if r["action"] == "inject-error":
                injected += 1
                if injected == 1:
                    st["active"] = []
                st["active"].insert(0, r)
            else:
                new_state = r["new_state"]
        st["state"] = new_state

    def rule_check(self, node: Node, offset: int, length: int, iotype: str) -> None:
        st = node.state
        for r in st["active"]:
            off = r["offset"]
            if (off == -1 or (length and offset <= off < offset + length)) \
                    and iotype in r["iotypes"]:
                break
        else:
            return
        if not r["errno"]:
            return
        if r["once"]:
            st["active"].remove(r)
            st["rules"].remove(r)
        raise OSError(r["errno"], os.strerror(r["errno"]))

    def read(self, g: BlockGraph, node: Node, offset: int, length: int) -> bytes:
        self.rule_check(node, offset, length, "read")
        return super().read(g, node, offset, length)

    def write(self, g: BlockGraph, node: Node, offset: int, data: bytes) -> None:
        self.rule_check(node, offset, len(data), "write")
        super().write(g, node, offset, data)

    def write_zeroes(self, g: BlockGraph, node: Node, offset: int, length: int,
                     unmap: bool) -> None:
        self.rule_check(node, offset, length, "write-zeroes")
        super().write_zeroes(g, node, offset, length, unmap)

    def discard(self, g: BlockGraph, node: Node, offset: int, length: int) -> None:
        self.rule_check(node, offset, length, "discard")
        super().discard(g, node, offset, length)

    def actual_size(self, g: BlockGraph, node: Node) -> int | None:
        return None

    def exact_filename(self, g: BlockGraph, node: Node, full_opts: dict,
                       generate_json: bool) -> str:
        prim = self.primary(node)
        child_exact = g.filename_info(prim)[1] if prim else ""
        if not child_exact:
            return ""
        if any(k not in ("config", "image", "x-image", "driver") for k in full_opts):
            return ""
        return f"blkdebug:{node.options.get('config', '')}:{child_exact}"


class BlkverifyDriver(Driver):
    name = "blkverify"
    protocol = True
    is_filter = True
    can_reopen = False

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        g.open_and_attach(node, opts, "raw", perms.ROLE_FILTERED | perms.ROLE_PRIMARY, tx)
        g.open_and_attach(node, opts, "test", perms.ROLE_DATA, tx)

    def _test(self, node: Node) -> Node | None:
        e = node.child("test")
        return e.child if e else None

    def virtual_size(self, g: BlockGraph, node: Node) -> int:
        t = self._test(node)
        return g.virtual_size(t) if t else 0

    def actual_size(self, g: BlockGraph, node: Node) -> int | None:
        return None

    def read(self, g: BlockGraph, node: Node, offset: int, length: int) -> bytes:
        t = self._test(node)
        return g.read(t, offset, length) if t else bytes(length)

    def write(self, g: BlockGraph, node: Node, offset: int, data: bytes) -> None:
        for e in node.children:
            g.write(e.child, offset, data)

    def exact_filename(self, g: BlockGraph, node: Node, full_opts: dict,
                       generate_json: bool) -> str:
        r = self.primary(node)
        t = self._test(node)
        re_ = g.filename_info(r)[1] if r else ""
        te = g.filename_info(t)[1] if t else ""
        if re_ and te:
            return f"blkverify:{re_}:{te}"
        return ""


class QuorumDriver(Driver):
    name = "quorum"
    can_reopen = False
    strong = ("vote-threshold", "blkverify", "rewrite-corrupted", "read-pattern")

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        idx: set[int] = set()
        for k in opts:
            if k.startswith("children."):
                head = k[len("children."):].split(".", 1)[0]
                if head.isdigit():
                    idx.add(int(head))
        n = 0
        while n in idx:
            n += 1
        if n != len(idx):
            raise BlockError("Option children is not a valid array")
        if n < 1:
            raise BlockError("Number of provided children must be 1 or more")
        threshold = opts.get("vote-threshold", 0)
        threshold = ((threshold & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000
        if threshold < 1:
            raise BlockError("Parameter 'vote-threshold' expects a value >= 1")
        if threshold > n:
            raise BlockError("threshold may not exceed children count")
        pattern = opts.get("read-pattern", "quorum")
        rewrite = False
        if pattern == "quorum":
            blkverify = bool(opts.get("blkverify", False))
            if blkverify and (n != 2 or threshold != 2):
                raise BlockError("blkverify=on can only be set if there are exactly two files "
                                 "and vote-threshold is 2")
            rewrite = bool(opts.get("rewrite-corrupted", False))
            if rewrite and blkverify:
                raise BlockError("rewrite-corrupted=on cannot be used with blkverify=on")
        node.state = {"n": n, "threshold": threshold, "rewrite": rewrite}
        for i in range(n):
            g.open_and_attach(node, opts, f"children.{i}", perms.ROLE_DATA, tx)
        sizes = {g.virtual_size(e.child) for e in node.children}
        if len(sizes) > 1:
            raise BlockError("Could not refresh total sector count: Input/output error")

    def child_perm(self, node: Node, edge: Edge, perm: int, shared: int) -> tuple[int, int]:
        p = perm & perms.ALL
        if node.state and node.state.get("rewrite"):
            p |= perms.WRITE
        s = shared & (perms.CONSISTENT_READ | perms.WRITE_UNCHANGED)
        return p, s

    def _children(self, node: Node) -> list[Node]:
        return [e.child for e in node.children if e.name.startswith("children.")]

    def virtual_size(self, g: BlockGraph, node: Node) -> int:
        ch = self._children(node)
        return g.virtual_size(ch[0]) if ch else 0

    def actual_size(self, g: BlockGraph, node: Node) -> int | None:
        total = 0
        for c in self._children(node):
            s = g.actual_size(c)
            if s is None:
                return None
            total += s
        return total

    def read(self, g: BlockGraph, node: Node, offset: int, length: int) -> bytes:
        ch = self._children(node)
        return g.read(ch[0], offset, length) if ch else bytes(length)

    def write(self, g: BlockGraph, node: Node, offset: int, data: bytes) -> None:
        for c in self._children(node):
            g.write(c, offset, data)

    def gather_children(self, g: BlockGraph, node: Node, opts: dict,
                        backing_overridden: bool) -> None:
        opts["children"] = [g.filename_info(c)[2] for c in self._children(node)]

    def exact_filename(self, g: BlockGraph, node: Node, full_opts: dict,
                       generate_json: bool) -> str:
        return ""


class CompressDriver(FilterDriver):
    """The compress filter: needs a child that can write compressed clusters."""

    name = "compress"
    variable_length = True
    can_reopen = False
    COMPRESSING = ("qcow2", "copy-on-read", "throttle")

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        super().open(g, node, opts, tx)
        child = self.primary(node)
        assert child is not None
        if child.driver.name not in self.COMPRESSING:
            raise BlockError("Compression is not supported for underlying format: "
                             f"{child.driver.name}")


class PreallocateDriver(FilterDriver):
    """The preallocate filter: options checked, no preallocation modelled."""

    name = "preallocate"
    variable_length = True

    @staticmethod
    def _absorb(opts: dict) -> None:
        align = _size_opt("prealloc-align", opts.pop("prealloc-align", 1 << 20))
        _size_opt("prealloc-size", opts.pop("prealloc-size", 128 << 20))
        if align % 512:
            raise BlockError("prealloc-align parameter of preallocate filter is not aligned "
                             "to 512")

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        super().open(g, node, opts, tx)
        self._absorb(dict(opts))

    def reopen_prepare(self, g: BlockGraph, node: Node, opts: dict, queue: dict) -> Commit | None:
        self._absorb(opts)
        return lambda: None

    def child_perm(self, node: Node, edge: Edge, perm: int, shared: int) -> tuple[int, int]:
        p, s = perms.default(edge.role, g_writable(node), perm, shared)
        if perm & perms.WRITE and perm & perms.RESIZE:
            p |= perms.WRITE | perms.RESIZE
            s &= ~(perms.WRITE | perms.RESIZE)
        return p, s


def _qcow2_driver() -> Driver:
    from qmpd.engine.qcow2 import Qcow2Driver
    return Qcow2Driver()


_FACTORIES: dict[str, Callable[[], Driver]] = {
    "file": FileDriver,
    "null-co": lambda: NullDriver("null-co"),
    "null-aio": lambda: NullDriver("null-aio"),
    "raw": RawDriver,
    "throttle": ThrottleDriver,
    "copy-on-read": CopyOnReadDriver,
    "blkdebug": BlkdebugDriver,
    "blkverify": BlkverifyDriver,
    "quorum": QuorumDriver,
    "compress": CompressDriver,
    "preallocate": PreallocateDriver,
    "qcow2": _qcow2_driver,
}
_DRIVERS: dict[str, Driver] = {}


def get_driver(name: str) -> Driver | None:
    drv = _DRIVERS.get(name)
    if drv is None:
        factory = _FACTORIES.get(name)
        if factory is None:
            return None
        drv = _DRIVERS[name] = factory()
    return drv
