"""The ``file`` protocol driver (QEMU 7.2 block/file-posix.c).

A host file, read and written through its in-memory layer
(:mod:`qmpd.engine.hostfiles`), with ``locking`` as QEMU's image locks;
a file ``blockdev-create`` made exists in memory only.
"""

from __future__ import annotations

import errno
import os
import stat as stat_mod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qmpd.engine.drivers.base import Commit, Driver
from qmpd.engine.errors import BlockError
from qmpd.engine.hostfiles import os_path
from qmpd.engine.node import Node

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph, Transaction


@dataclass(slots=True, eq=False)
class FileState:
    """An open host file: its identity, the lock and aio options, the sizes
    at open, and its in-memory layer (set once the file is found)."""

    path: str
    ident: tuple[int, int]      # (st_dev, st_ino); (-1, id) for an in-memory file
    locking: bool
    size: int
    blocks: int
    aio: str
    layer: Any = None
    # BDRVRawState.stats: discards that reached the file (query-blockstats).
    discard_nb_ok: int = 0
    discard_nb_failed: int = 0
    discard_bytes_ok: int = 0
    # The descriptor was closed under the node (5.2's reopen:
    # Profile.reopen_detach_closes_queued_fds): fstat fails.
    fd_closed: bool = False


class FileDriver(Driver):
    name = "file"
    protocol = True
    mutable = ("x-check-cache-dropped",)
    has_get_info = True

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        path = opts["filename"]
        aio = opts.get("aio", "threads")
        if aio == "native" and not node.cache_direct:
            raise BlockError.of("file.aio-native-specified-requires-cache")
        locking = opts.get("locking", "auto") != "off"
        host = os_path(path)
        try:
            st = os.stat(host)
        except OSError as e:
            virtual = g.hostfiles.virtual.get(path)
            if virtual is None:
                raise BlockError.of("file.could-not-open", path=path,
                                    error=os.strerror(e.errno or errno.EIO)) from None
            # A file blockdev-create made in memory only (engine/jobs/create.py).
            node.state = FileState(path, (-1, id(virtual)), locking, virtual.size,
                                   virtual.allocated(), aio)
            node.state.layer = virtual
            virtual.nodes.add(node)
            tx.on_abort(lambda: virtual.nodes.discard(node))
            return
        if not node.read_only:
            if stat_mod.S_ISDIR(st.st_mode):
                raise BlockError.of("file.could-not-open", path=path,
                                    error=os.strerror(errno.EISDIR))
            if not os.access(host, os.W_OK) and not node.auto_read_only:
                raise BlockError.of("file.could-not-open", path=path,
                                    error=os.strerror(errno.EACCES))
        elif not os.access(host, os.R_OK):
            raise BlockError.of("file.could-not-open", path=path, error=os.strerror(errno.EACCES))
        if not (stat_mod.S_ISREG(st.st_mode) or stat_mod.S_ISBLK(st.st_mode)
                or stat_mod.S_ISCHR(st.st_mode)):
            raise BlockError.of("file.file-driver-requires-either-regular", path=path)
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
        if node.state.fd_closed:
            return None     # raw_get_allocated_file_size: fstat fails (EBADF)
        return node.state.layer.allocated()

    def get_info(self, g: BlockGraph, node: Node) -> tuple[int, bool] | None:
        return (0, False)

    def zeroes_may_unmap(self, g: BlockGraph, node: Node) -> bool:
        return True     # raw_open_common

    def format_specific(self, g: BlockGraph, node: Node) -> dict | None:
        # file-posix's ImageInfoSpecificFile, in releases that have it (the
        # extent size hint is absent: tmpfs/ext4 report none).
        fs = g.profile.file_format_specific
        return None if fs is None else {"type": fs["type"], "data": dict(fs["data"])}

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
            # raw_account_discard
            node.state.discard_nb_ok += 1
            node.state.discard_bytes_ok += length

    def block_status(self, g: BlockGraph, node: Node, offset: int,
                     length: int) -> list[tuple[int, int, bool, bool]]:
        return [(offset, length, True, False)]

    def exact_filename(self, g: BlockGraph, node: Node, full_opts: dict,
                       generate_json: bool) -> str:
        return node.state.path
