"""The block driver interface: what each driver takes, opens, lets change and reports.

A driver is data plus a few hooks, as in QEMU's ``BlockDriver``:

* ``open(graph, node, opts, tx)`` runs after the node is named (QEMU's
  ``bdrv_open_driver``): attach children, check options, read headers;
* ``child_perm(node, edge, perm, shared)`` is ``bdrv_child_perm``;
* ``reopen_prepare(graph, node, opts)`` consumes the options the driver may
  change and returns a commit function (``None`` means "cannot reopen");
* ``image_info`` hooks feed ``query-named-block-nodes``.

Errors are :class:`BlockError` with QEMU 7.2's text.

Each driver lives in a module of its own in this package;
:mod:`qmpd.engine.drivers.registry` lists them.  :class:`FilterDriver` is
the common base of the filters whose one child is ``file``.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qmpd.engine import perms
from qmpd.engine.errors import BlockError
from qmpd.engine.node import Edge, Node

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph, Transaction

UINT64_MAX = (1 << 64) - 1

Commit = Callable[[], None]


def size_opt(name: str, value: Any) -> int:
    """A QEMU_OPT_SIZE option given as a number (QemuOpts rejects negatives)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > UINT64_MAX:
        raise BlockError.of("option.parameter-expects-non-negative-number", name=name,
                            value=str(value))
    return value


def number_opt(value: Any) -> int:
    """A QEMU_OPT_NUMBER option: negative numbers wrap around as uint64."""
    return value & UINT64_MAX

class Driver:
    name = ""
    protocol = False        # opened by bdrv_file_open: no "file" child probing
    is_filter = False
    # A job's own filter (commit_top, mirror_top): no chain may be frozen
    # through a link to it, so that the job can always drop it.
    never_freeze = False
    supports_backing = False
    can_reopen = True
    # Options the driver's reopen consumes and which may also be omitted.
    mutable: tuple[str, ...] = ()
    # Strong runtime options: part of a json: filename.
    strong: tuple[str, ...] = ()
    # Options the driver takes (flat keys); others stay for comparison.
    has_get_info = False
    variable_length = False   # has_variable_length: length asked again each time
    # bs->backing_file is set (query-named-block-nodes' backing_file from the
    # backing child); the filters jobs insert above a backing child never set it.
    reports_backing_file = True

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        pass

    def child_perm(self, node: Node, edge: Edge, perm: int, shared: int) -> tuple[int, int]:
        return perms.default(edge.role, g_writable(node), perm, shared)

    def reopen_prepare(self, g: BlockGraph, node: Node, opts: dict,
                       queue: dict) -> Commit | None:
        """Consume what this driver may change from ``opts``; return commit."""
        return lambda: None

    def reopen_prepare_failed(self, g: BlockGraph, node: Node, file_moved: bool) -> None:
        """bdrv_reopen_prepare's error path after the driver's prepare
        succeeded: the driver's abort runs here, before the transaction
        puts the node's children back (``file_moved``: the ``file`` child
        is not the one the node had when its prepare began)."""

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

    def zeroes_may_unmap(self, g: BlockGraph, node: Node) -> bool:
        """Whether ``BDRV_REQ_MAY_UNMAP`` is among the node's
        supported_zero_flags (zero writes may deallocate)."""
        return False

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

    def make_empty(self, g: BlockGraph, node: Node) -> None:
        """bdrv_make_empty: the node's own layer emptied (after a commit)."""
        raise OSError(errno.ENOTSUP, "Operation not supported")

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

    # The driver flushes as a whole (a bdrv_co_flush of its own: mirror_top,
    # copy-before-write, throttle, preallocate, quorum, blkverify): its
    # filtered child is flushed, without the generic path's debug events.
    flushes_whole = False

    def flush_to_disk(self, g: BlockGraph, node: Node) -> None:
        """bdrv_co_flush_to_disk (only when something was written since the last flush)."""

    def debug_event(self, node: Node, event: str) -> None:
        """bdrv_debug_event: a BLKDBG_EVENT on a child link lands here (blkdebug acts on it)."""

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


class FilterDriver(Driver):
    is_filter = True

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        g.attach_file_child(node, perms.ROLE_FILTERED | perms.ROLE_PRIMARY, tx)

    def exact_filename(self, g: BlockGraph, node: Node, full_opts: dict,
                       generate_json: bool) -> str:
        return ""
