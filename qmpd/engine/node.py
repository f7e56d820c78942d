"""Nodes and edges of the block graph.

A :class:`Node` is one BlockDriverState: its driver, the options it was
opened with (``options``: own keys, flattened with dots, children removed, as
QEMU keeps ``bs->options``), its generic flags and its links.  An
:class:`Edge` is one BdrvChild: parent, child, the child's name under the
parent (``file``, ``backing``, ``children.0``, ...), its role bits and the
permissions the parent holds on the child and shares with others.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any

from qmpd.engine import perms

if TYPE_CHECKING:
    from qmpd.engine.drivers.base import Driver

# id_wellformed (util/id.c): node names and every other user-given id.
_ID_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*\Z")


def id_wellformed(name: str) -> bool:
    return bool(_ID_RE.match(name))

# Attach order of every edge ever made: QEMU keeps a node's op blockers
# newest first (QLIST_INSERT_HEAD), and a backing link or a job adds its
# blocker when the edge is attached, so the newest edge names the blocker.
_EDGE_SERIAL = itertools.count()


class Edge:
    __slots__ = ("parent", "child", "name", "role", "perm", "shared", "frozen", "serial")

    def __init__(self, parent: Node | Parent, child: Node, name: str, role: int) -> None:
        self.parent = parent
        self.child = child
        self.name = name
        self.role = role
        self.perm = 0
        self.shared = perms.ALL
        self.frozen = False
        self.serial = next(_EDGE_SERIAL)

    def renew_serial(self) -> None:
        """The link counts as attached now (its op blocker is the newest)."""
        self.serial = next(_EDGE_SERIAL)

    def user_desc(self) -> str:
        """How QEMU names the parent in permission-conflict texts."""
        return self.parent.user_desc()

    def user_name(self) -> str:
        """The parent's bare name, as get_parent_desc gives it (before 6.0's texts)."""
        return self.parent.user_name()

    def __repr__(self) -> str:
        return f"<Edge {self.parent.label()} -{self.name}-> {self.child.name}>"


class Parent:
    """A parent that is not a node: a BlockBackend (device, job, qemu-io)."""

    def __init__(self, kind: str, name: str = "", desc: str = "an unnamed block device") -> None:
        self.kind = kind
        self.name = name
        self.desc = desc
        self.children: list[Edge] = []

    def user_desc(self) -> str:
        return self.desc

    def user_name(self) -> str:
        # blk_root_get_parent_desc: the backend's name, else its device's id
        return self.name or "a block device"

    def label(self) -> str:
        return self.name or self.kind


class Node:
    """One block node (BlockDriverState)."""

    # Slots: past 30 attributes CPython stops sharing instance-dict keys, and
    # a graph of 100 000 nodes then costs twice the memory.
    __slots__ = ("driver", "name", "auto_named", "seq", "options", "explicit", "read_only",
                 "auto_read_only", "force_share", "discard", "detect_zeroes", "cache_direct",
                 "cache_no_flush", "children", "parents", "inherits_from", "monitor_owned",
                 "implicit", "aio_context", "no_backing", "auto_backing_file", "state", "alive",
                 "total", "dirty_bitmaps", "write_threshold", "active", "filter_job",
                 "copy_on_read", "write_gen", "flushed_gen", "wr_highest_offset", "__weakref__")

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.name = ""
        self.auto_named = False
        self.seq = -1                      # position in naming order
        self.options: dict[str, Any] = {}  # stored own options (flat)
        self.explicit: dict[str, Any] = {}  # explicitly given own options (flat)
        self.read_only = False
        self.auto_read_only = False
        self.force_share = False
        self.discard = "ignore"
        self.detect_zeroes = "off"
        self.cache_direct = False
        self.cache_no_flush = False
        self.children: list[Edge] = []     # attach order (oldest first)
        self.parents: list[Edge] = []      # attach order (oldest first)
        self.inherits_from: Node | None = None
        self.monitor_owned = False
        self.implicit = False
        self.aio_context = "main"
        self.no_backing = False            # opened with backing: null
        self.auto_backing_file = ""
        self.state: Any = None             # driver-specific state
        self.alive = True
        self.total: int | None = None      # cached length (total_sectors * 512)
        self.dirty_bitmaps: list[Any] = []  # newest first (engine/bitmaps.py)
        self.write_threshold = 0           # block-set-write-threshold (0: off)
        # False once inactivated (blockdev-set-active; BDRV_O_INACTIVE): the
        # image is left to another process, so no writes and no write permission.
        self.active = True
        # A job's own filter node (mirror_top): the job whose writes it tracks.
        self.filter_job: Any = None
        self.copy_on_read = 0              # bdrv_enable_copy_on_read users (a stream job)
        # bs->write_gen and bs->flushed_gen: a flush reaches the disk (and
        # blkdebug's flush_to_disk event fires) only after new writes.
        self.write_gen = 0
        # bs->wr_highest_offset: the end of the furthest write (query-blockstats).
        self.wr_highest_offset = 0
        self.flushed_gen = 0

    # -- links -------------------------------------------------------------

    def wrote(self, offset: int, length: int) -> None:
        """bdrv_co_write_req_finish for a write or zero write that reached the node."""
        self.write_gen += 1
        if length and offset + length > self.wr_highest_offset:
            self.wr_highest_offset = offset + length
    def child(self, name: str) -> Edge | None:
        for e in self.children:
            if e.name == name:
                return e
        return None

    @property
    def file(self) -> Edge | None:
        return self.child("file")

    @property
    def backing(self) -> Edge | None:
        return self.child("backing")

    def user_desc(self) -> str:
        return f"node '{self.name}'"

    def user_name(self) -> str:
        return self.name

    def label(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Node {self.name} {self.driver.name}>"


def inherits_from_recursive(child: Node | None, parent: Node) -> bool:
    """bdrv_inherits_from_recursive: ``child`` inherits its options from
    ``parent``, directly or through the nodes it inherits from."""
    while child is not None and child is not parent:
        child = child.inherits_from
    return child is not None


def adopt_inheritance(child: Node, parent: Node, tx: Any) -> None:
    """bdrv_set_inherits_from in bdrv_set_file_or_backing_noperm: a node that
    becomes the new file/backing child of a node it (indirectly) inherited
    from now inherits from that node directly, so a later reopen of the parent
    hands it the nested options."""
    old = child.inherits_from
    if old is parent:
        return
    child.inherits_from = parent
    tx.on_abort(lambda: setattr(child, "inherits_from", old))


# Protocol prefixes of filenames (bdrv_find_protocol) for the protocol drivers
# qmpd has; any other "proto:" is taken as a plain path, as QEMU does for
# prefixes no driver claims.
_PROTOCOLS = {"null-co": "null-co", "null-aio": "null-aio", "blkdebug": "blkdebug",
              "file": "file"}


def protocol_of(filename: str) -> str:
    """The protocol driver a filename names (``null-co://`` -> null-co)."""
    head, sep, _ = filename.partition(":")
    if sep and "/" not in head and head in _PROTOCOLS:
        return _PROTOCOLS[head]
    return "file"
