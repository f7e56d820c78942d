"""The data side the job kinds share: allocation status down a backing chain
(QEMU 7.2 block/io.c bdrv_is_allocated, bdrv_is_allocated_above), copying a
range with zero detection (what stream, commit and mirror write), and the
chunk loop of stream and commit with the on-error policies."""

from __future__ import annotations

import errno
from collections.abc import Callable, Generator

from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph
from qmpd.engine.jobs.state import Job, Sleep
from qmpd.engine.node import Node
from qmpd.engine.surgery import cow_bs

# The chunk loops' steps (stream.c's STREAM_CHUNK, commit.c's COMMIT_BUFFER).
STREAM_CHUNK = 512 * 1024
COMMIT_BUFFER = 512 * 1024
# One step of a chunk loop: (bytes it covers, how to copy them, or None).
Plan = Callable[[int, int], "tuple[int, Callable[[], None] | None]"]


class CopyError(Exception):
    """An I/O error while copying a chunk, on its read or its write side."""

    def __init__(self, err: OSError, is_read: bool) -> None:
        super().__init__(err)
        self.errno = err.errno or errno.EIO
        self.is_read = is_read


def copy_chunks(job: Job, length: int, chunk: int, plan: Plan,
                skip_ignored: bool) -> Generator[Sleep, None, int]:
    """stream_run's and commit_run's loop: chunk by chunk at the job's rate
    until the end or a cancel; ``plan(offset, most)`` says what the next step
    covers.  On an I/O error the on-error policy acts: ``stop`` (and, for
    commit, ``ignore``) retries the chunk, ``ignore`` with ``skip_ignored``
    (stream) goes on and fails the job at the end, ``report`` fails it now.
    Returns the job's result: 0 or the first error."""
    job.total = length
    offset = delay = error = 0
    while offset < length:
        yield from job.rate_sleep(delay)
        if job.is_cancelled():
            break
        n, copy = plan(offset, min(chunk, length - offset))
        if copy is not None:
            try:
                copy()
            except CopyError as e:
                action = job.error_action(e.is_read, e.errno)
                if action == "stop" or (action == "ignore" and not skip_ignored):
                    delay = 0
                    continue
                error = error or -e.errno
                if action == "report":
                    break
        job.progress(n)
        delay = job.rate_delay(n) if copy is not None else 0
        offset += n
    return error


def is_allocated(g: BlockGraph, n: Node, offset: int, length: int) -> tuple[bool, int]:
    """bdrv_is_allocated: whether ``n`` itself has the data at ``offset``, and
    for how many bytes that answer holds."""
    for off, ln, alloc, _zero in g.block_status(n, offset, length):
        if off <= offset < off + ln:
            return alloc, min(off + ln - offset, length)
    return False, length


def allocated_above(g: BlockGraph, top: Node | None, bottom: Node | None, offset: int,
                    length: int) -> tuple[bool, int]:
    """bdrv_is_allocated_above(top, bottom, include_base=True)."""
    n = length
    node = top
    while node is not None:
        if node.driver.is_filter:
            node = node.driver.filtered(node)
            continue
        size = g.virtual_size(node)
        if offset < size:
            alloc, pn = is_allocated(g, node, offset, n)
            if alloc:
                return True, pn
            n = min(n, pn)
        if node is bottom:
            break
        node = cow_bs(node)
    return False, n


def copy_range(g: BlockGraph, src: Node, dst: Node, offset: int, n: int) -> None:
    write_data(g, dst, offset, g.read(src, offset, n))


def write_data(g: BlockGraph, dst: Node, offset: int, data: bytes) -> None:
    """Write ``data``, as zeroes where it is all zero (the jobs' zero detection)."""
    n = len(data)
    if data.count(0) == len(data):
        g.write_zeroes(dst, offset, n)
    else:
        g.write(dst, offset, data)


def grow_base(g: BlockGraph, base: Node, length: int) -> int:
    """commit_run / mirror_run (active commit): a base shorter than what is
    committed into it grows to that length first (blk_truncate, no
    preallocation); 0, or the -errno the job fails with."""
    from qmpd.engine.resize import truncate

    if g.virtual_size(base) >= length:
        return 0
    try:
        truncate(g, base, length)
    except BlockError:
        return -errno.EPERM
    except OSError as e:
        return -(e.errno or errno.EIO)
    return 0
