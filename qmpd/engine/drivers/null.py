"""The ``null-co`` and ``null-aio`` protocol drivers (QEMU 7.2 block/null.c).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qmpd.engine.drivers.base import Driver, size_opt
from qmpd.engine.errors import BlockError
from qmpd.engine.node import Node

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph, Transaction


class NullDriver(Driver):
    protocol = True
    strong = ("size", "read-zeroes")

    def __init__(self, name: str) -> None:
        self.name = name

    def open(self, g: BlockGraph, node: Node, opts: dict, tx: Transaction) -> None:
        size = size_opt("size", opts.get("size", 1 << 30))
        latency = opts.get("latency-ns", 0)
        if latency < 0:
            raise BlockError.of("null.latency-ns-invalid")
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
