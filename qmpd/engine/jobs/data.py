"""The data side the job kinds share (allocation status lives in
:mod:`qmpd.engine.allocation`): copying a
range with zero detection (what stream, commit and mirror write), and the
chunk loop of stream and commit with the on-error policies."""

from __future__ import annotations

import errno
from collections.abc import Callable, Generator

from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph
from qmpd.engine.jobs.state import Job, Sleep
from qmpd.engine.node import Node

# How long a request that has data to move to the disk takes to come back
# (QEMU: the thread pool's copy, or a flush's metadata writes and fdatasync):
# commands a client sends right behind the reply see the job still waiting
# on it; a drain waits for it (Job.slow_io).  A mirror's first flush took
# 2-12 ms on 7.2, which a client right behind it fills with a few commands:
# 7.2 and 5.2 recorded it done after four (gj-5111), not after three
# (gj72-9008).  Counted in commands, a client slowed down by a busy machine
# sees the same; one that sends nothing sees it done after FLUSH_NS.
IO_COMPLETION_NS = 20_000_000
FLUSH_NS = 100_000_000
FLUSH_COMMANDS = 4
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
