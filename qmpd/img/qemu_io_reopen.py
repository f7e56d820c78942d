"""qemu-io's ``reopen`` command (reopen_f): new options for a node of a
block graph, every option not named kept (bdrv_reopen with keep_old_opts).

Only a target that can reopen offers it: HMP's qemu-io on a qmpd node
(:class:`qmpd.commands.hmp`); ``qmpd-img io``'s images are opened once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from qmpd.launch import qemu_opts


class ReopenFailed(Exception):
    """bdrv_reopen's error, its text in the words of the target's release."""


@runtime_checkable
class Reopenable(Protocol):
    """A target ``reopen`` works on: a node under a BlockBackend."""

    def open_flags(self) -> tuple[bool, bool, bool]:
        """The node's read-only, cache.direct and cache.no-flush."""

    def write_cache(self) -> tuple[bool, bool]:
        """The BlockBackend's write cache, and whether a device is attached."""

    def set_write_cache(self, enabled: bool) -> None: ...

    def drain(self) -> None:
        """bdrv_drain(bs): requests in flight settle, jobs pause and resume."""

    def reopen(self, options: dict[str, Any]) -> None:
        """bdrv_reopen(keep_old_opts=true); :class:`ReopenFailed` if refused."""


# bdrv_parse_cache_mode: BDRV_O_NOCACHE, BDRV_O_NO_FLUSH, writethrough.
CACHE_MODE_FLAGS = {
    "off": (True, False, False), "none": (True, False, False),
    "directsync": (True, False, True), "writeback": (False, False, False),
    "unsafe": (False, True, False), "writethrough": (False, False, True),
}


class ReopenUsage(Exception):
    """Arguments left after the options: the caller prints the usage."""


def reopen_f(image: Reopenable, opts: list[tuple[str, str]], operands: list[str],
             error_report: Callable[[str], None]) -> bool:
    """reopen_f after getopt (``opts`` in order): False when it failed (its
    error reported), :class:`ReopenUsage` for stray operands.  -o takes
    QemuOpts text; -r/-w and -c stand for read-only and the cache options."""
    read_only, nocache, no_flush = image.open_flags()
    write_cache, attached = image.write_cache()
    writethrough = not write_cache
    has_rw = has_cache = False
    given: dict[str, Any] = {}
    for ch, value in opts:
        if ch == "c":
            mode = CACHE_MODE_FLAGS.get(value)
            if mode is None:
                error_report(f"Invalid cache option: {value}")
                return False
            nocache, no_flush, writethrough = mode
            has_cache = True
        elif ch == "o":
            # reopen_opts merges every -o into one QemuOpts; the last of a
            # repeated key wins in the QDict made of it.
            parsed, warnings = qemu_opts(value)
            for warning in warnings:
                error_report(warning)
            given.update(parsed)
        else:
            if has_rw:
                error_report("Only one -r/-w option may be given")
                return False
            read_only = ch == "r"
            has_rw = True
    if operands:
        raise ReopenUsage()
    if writethrough == write_cache and attached:
        error_report("Cannot change cache.writeback: Device attached")
        return False
    if read_only:
        # Before a read-only reopen, reopen_f drains the node and drops its
        # BlockBackend's write permissions.
        image.drain()
    options: dict[str, Any] = dict(given)
    if "read-only" in options:
        if has_rw:
            error_report("Cannot set both -r/-w and 'read-only'")
            return False
    else:
        options["read-only"] = read_only
    for key, flag in (("cache.direct", nocache), ("cache.no-flush", no_flush)):
        if key in options:
            if has_cache:
                error_report("Cannot set both -c and the cache options")
                return False
        else:
            options[key] = flag
    try:
        image.reopen(options)
    except ReopenFailed as exc:
        # reopen_f reports bdrv_reopen's error and still returns 0.
        error_report(str(exc))
        return True
    if writethrough == write_cache:
        image.set_write_cache(not writethrough)
    return True
