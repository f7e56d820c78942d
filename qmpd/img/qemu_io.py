"""``qmpd-img io``: the qemu-io commands scenarios and tests use.

Supported: read, readv, aio_read, write (-P, -z, -u, -c, -q, -C), writev,
aio_write, aio_flush, discard, alloc, length, map, info, flush, truncate and
help, plus their qemu-io aliases; under HMP also ``reopen``
(:mod:`qmpd.img.qemu_io_reopen`).  Output text, what goes to stdout versus stderr,
and the exit status (1 when any command failed) follow QEMU 7.2's qemu-io.

Requests move data a chunk at a time (:meth:`QemuIo.run_steps` yields
between chunks), so a daemon that runs a command for a client can serve its
other clients in between, and no request ever holds more than a chunk of
data in memory, except ``read -v``, whose data is dumped once it is all
read (as QEMU dumps nothing when the read fails), within ``output_limit``.
"""

from __future__ import annotations

import array
import contextlib
import dataclasses
import errno
import os
import sys
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol, TextIO, TypeVar

from qmpd.img.images import Qcow2Adapter
from qmpd.img.qemu_io_help import BODIES, TABLE
from qmpd.img.qemu_io_reopen import Reopenable, ReopenUsage, reopen_f
from qmpd.img.sizes import SizeError, cvtstr, parse_size
from qmpd.qcow2.spec import BDRV_MAX_LENGTH, REQUEST_MAX_BYTES
from qmpd.qobject import key_order

# What a request helper returns (the data of a read, None for a write).
_T = TypeVar("_T")
# Data moved per step of a long request: big enough that the per-step cost
# is noise, small enough that a step takes a few milliseconds.
CHUNK = 1 << 19
# A write up to this size goes down as the one request QEMU makes of it: the
# image format allocates per request (qcow2 takes contiguous clusters for a
# whole run, and continues where the last one ended), so pieces would lay out
# the file otherwise.  Longer writes go in CHUNK steps beside other clients.
WHOLE_WRITE_MAX = 16 << 20
# Bytes dumped per step by read -v (a dump costs ~5 output bytes per byte).
DUMP_CHUNK = 1 << 15
# A full dump_buffer() line: "%08x:  " + 16 * "%02x " + " " + 16 chars + "\n".
DUMP_LINE = 77
# isalnum() in the C locale: the character itself, else ".".
_DUMP_TEXT = bytes(c if chr(c).isascii() and chr(c).isalnum() else ord(".") for c in range(256))
Steps = Generator[None, None, bool]


class IoTarget(Protocol):
    """What the commands need: an image opened by ``qmpd-img io`` or a qmpd node."""

    read_only: bool

    def length(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes: ...

    def write(self, offset: int, data: bytes) -> None: ...

    def write_zeroes(self, offset: int, length: int, *, unmap: bool = False) -> None: ...

    def discard(self, offset: int, length: int) -> None: ...

    def write_compressed(self, offset: int, data: bytes) -> None: ...

    def allocation(self) -> list[tuple[int, int, bool]]: ...

    def truncate(self, size: int, prealloc: str) -> None:
        """blk_truncate(exact=false); OSError whose strerror QEMU reports."""


class CommandFailed(Exception):
    """A command returned an error (qemu-io then exits with status 1)."""


class OutputTooLarge(Exception):
    """A command's output would exceed :attr:`QemuIo.output_limit`; raised
    before any of it is produced (qmpd-only: QEMU prints to stdout)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"{size} bytes of output, more than the limit of {limit}")
        self.size = size
        self.limit = limit


class Accounting(Protocol):
    """block_acct_start/done/failed/invalid on one BlockBackend's stats;
    ``kind`` is "rd", "wr" or "flush"."""

    def start(self, kind: str, nbytes: int) -> Any: ...

    def done(self, cookie: Any) -> None: ...

    def failed(self, cookie: Any) -> None: ...

    def invalid(self, kind: str) -> None: ...


@dataclass
class Command:
    name: str
    altname: str | None
    argmin: int
    argmax: int
    args: str
    oneline: str
    # What the command needs on its BlockBackend first (cmdinfo_t.perm):
    # "write", "resize".
    perm: tuple[str, ...] = ()


def _command(name: str, argmin: int, argmax: int, perm: tuple[str, ...] = ()) -> Command:
    alt, args, oneline = TABLE[name]
    return Command(name, alt, argmin, argmax, args or "", oneline, perm)


# The commands qmpd runs (argument counts from qemu-io-cmds.c); names,
# usage and summaries from QEMU's own table (qmpd.img.qemu_io_help).
COMMANDS = {c.name: c for c in (
    _command("read", 2, -1), _command("write", 2, -1, ("write",)),
    _command("discard", 2, -1, ("write",)), _command("length", 0, 0), _command("map", 0, 0),
    _command("flush", 0, 0), _command("readv", 2, -1), _command("writev", 2, -1, ("write",)),
    _command("aio_read", 2, -1), _command("aio_write", 2, -1, ("write",)),
    _command("aio_flush", 0, 0), _command("alloc", 1, 2), _command("info", 0, 0),
    _command("truncate", 1, 3, ("write", "resize")), _command("help", 0, 1),
    _command("reopen", 0, -1),
)}

ALIASES = {c.altname: c.name for c in COMMANDS.values() if c.altname}


def find_command(word: str) -> Command | None:
    """The command a line's first word names (its name or alternative name)."""
    return COMMANDS.get(ALIASES.get(word, word))


def _strerror(exc: OSError) -> str:
    return os.strerror(exc.errno) if exc.errno else str(exc)


class QemuIo:
    """Runs qemu-io command lines against one opened image."""

    def __init__(self, image: IoTarget, out: TextIO, err: TextIO,
                 clock: Callable[[], float] = time.monotonic, *,
                 help_rows: Mapping[str, tuple[str | None, str, str, str]] | None = None,
                 dump_prefix_on_monitor: bool = False,
                 truncate_prealloc: bool = True,
                 strtosz_negative_erange: bool = False) -> None:
        self.image = image
        # The help table and extended help: 7.2's, with a release's own rows
        # (name order, as qemuio_add_command keeps them).
        self.help_table = dict(TABLE)
        self.help_bodies = dict(BODIES)
        for name, (alt, args, summary, body) in (help_rows or {}).items():
            self.help_table[name] = (alt, args, summary)
            self.help_bodies[name] = body
        self.help_table = dict(sorted(self.help_table.items()))
        # truncate's -m prealloc_mode (5.1+); before, the offset is its only
        # argument and no option is parsed.
        self.truncate_prealloc = truncate_prealloc
        # qemu_strtosz parsed with strtod before 6.0: a negative number is
        # out of range ("argument too large"), not a parse error.
        self.strtosz_negative_erange = strtosz_negative_erange
        self.commands = dict(COMMANDS)
        if not isinstance(image, Reopenable):
            # ``reopen`` needs a node of a block graph (HMP's qemu-io);
            # qmpd-img's own images are opened once and for all.
            del self.commands["reopen"]
        if not truncate_prealloc:
            self.commands["truncate"] = dataclasses.replace(
                COMMANDS["truncate"], argmax=1, args=self.help_table["truncate"][1])
        # "Format specific information:" on the monitor (10.0) or stdout (7.2).
        self.dump_prefix_on_monitor = dump_prefix_on_monitor
        self.out = out
        self.err = err
        self.monitor = out      # where qemu_printf goes (the monitor, under HMP)
        self._argv0 = ""        # the command's name as typed (getopt's messages)
        self._permuted: list[str] = []   # the arguments as getopt left them
        self.clock = clock
        # Most bytes one command may write to ``out`` (None: no limit); a
        # dump that would be larger raises OutputTooLarge before it starts.
        self.output_limit: int | None = None
        # The BlockBackend's accounting (block_acct_*), when it has one that
        # lasts: HMP qemu-io on a -drive or a device.  aio_read, aio_write and
        # aio_flush account their requests there, as qemu-io-cmds.c does.
        self.accounting: Accounting | None = None
        self._io_error = False  # the last request failed with an I/O error

    # -------------------------------------------------------------- helpers

    def _cvtnum(self, text: str, named: str | None = None) -> int:
        """qemu-io's cvtnum: a size up to INT64_MAX, else its parsing error
        naming ``named`` (default: the text itself)."""
        named = text if named is None else named
        try:
            value = parse_size(text)
        except SizeError as exc:
            too_large = exc.too_large
            if self.strtosz_negative_erange and text.startswith("-"):
                try:
                    parse_size(text[1:])
                    too_large = True
                except SizeError:
                    pass
        else:
            if value <= 2**63 - 1:
                return value
            too_large = True
        if too_large:
            self.out.write(f"Parsing error: argument too large -- {named}\n")
        else:
            self.out.write("Parsing error: non-numeric argument, or "
                           f"extraneous/unrecognized suffix -- {named}\n")
        raise CommandFailed()

    def _pattern(self, text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            value = -1
        if not 0 <= value <= 255:
            self.out.write(f"{text} is not a valid pattern byte\n")
            raise CommandFailed()
        return value

    def _usage(self, cmd: Command) -> NoReturn:
        _, args, oneline = self.help_table.get(cmd.name, (None, cmd.args, cmd.oneline))
        self.out.write(f"{cmd.name} {args or ''} -- {oneline}\n")
        raise CommandFailed()

    def _report(self, op: str, elapsed: float, offset: int, count: int, total: int,
                cnt: int, cflag: bool) -> None:
        elapsed = max(elapsed, 1e-9)
        secs = int(elapsed)
        centis = int((elapsed - secs) * 100)
        # timestr(): "SS.cc sec" below one second, "H:MM:SS.cc" otherwise and with -C.
        long_ts = f"{secs // 3600}:{secs // 60 % 60:02d}:{secs % 60:02d}.{centis:02d}"
        if cflag:
            self.out.write(f"{total},{cnt},{long_ts},{total / elapsed:.3f},"
                           f"{cnt / elapsed:.3f}\n")
            return
        self.out.write(f"{op} {total}/{count} bytes at offset {offset}\n")
        ts = long_ts if secs else f"{secs:02d}.{centis:02d} sec"
        self.out.write(f"{cvtstr(total)}, {cnt} ops; {ts} "
                       f"({cvtstr(total / elapsed)}/sec and {cnt / elapsed:.4f} ops/sec)\n")

    def _check_request(self, offset: int, count: int) -> None:
        if offset + count > self.image.length():
            raise OSError(errno.EIO, "Input/output error")

    def _getopt(self, cmd: Command, args: list[str], spec: str
                ) -> tuple[list[tuple[str, str]], list[str]]:
        """GNU getopt, as qemu-io uses it: options may follow operands (the
        operands are moved after them, ``--`` ends the options).  A bad option
        gets glibc's message (on stderr, named as the command was typed), then
        the command's usage, and fails it.  ``self._permuted`` is the argument
        list as getopt leaves it."""
        prog = self._argv0
        opts: list[tuple[str, str]] = []
        option_words: list[str] = []
        operands: list[str] = []
        i = 0
        while i < len(args):
            arg = args[i]
            if arg == "--":
                option_words.append(arg)
                operands.extend(args[i + 1:])
                break
            if not arg.startswith("-") or arg == "-":
                operands.append(arg)
                i += 1
                continue
            option_words.append(arg)
            j = 1
            while j < len(arg):
                ch = arg[j]
                pos = spec.find(ch) if ch != ":" else -1
                if pos < 0:
                    self.err.write(f"{prog}: invalid option -- '{ch}'\n")
                    self._usage(cmd)
                if pos + 1 < len(spec) and spec[pos + 1] == ":":
                    if j + 1 < len(arg):
                        opts.append((ch, arg[j + 1 :]))
                    elif i + 1 < len(args):
                        i += 1
                        option_words.append(args[i])
                        opts.append((ch, args[i]))
                    else:
                        self.err.write(f"{prog}: option requires an argument -- '{ch}'\n")
                        self._usage(cmd)
                    break
                opts.append((ch, ""))
                j += 1
            i += 1
        self._permuted = option_words + operands
        return opts, operands

    # -------------------------------------------------------------- commands

    def run(self, line: str) -> bool:
        """Run one command line; False if it failed."""
        steps = self.run_steps(line)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return bool(done.value)

    def run_steps(self, line: str) -> Steps:
        """Run one command line, yielding between chunks of data; returns
        False if it failed.  Closing the generator abandons the command."""
        words = [w for w in line.split(" ") if w]
        if not words:
            return True
        cmd = self.commands.get(ALIASES.get(words[0], words[0]))
        if cmd is None:
            self.err.write(f'command "{words[0]}" not found\n')
            return False
        argc = len(words) - 1
        if argc < cmd.argmin or (cmd.argmax != -1 and argc > cmd.argmax):
            if cmd.argmax == -1:
                self.err.write(f"bad argument count {argc} to {words[0]}, "
                               f"expected at least {cmd.argmin} arguments\n")
            elif cmd.argmin == cmd.argmax:
                self.err.write(f"bad argument count {argc} to {words[0]}, "
                               f"expected {cmd.argmin} arguments\n")
            else:
                self.err.write(f"bad argument count {argc} to {words[0]}, expected "
                               f"between {cmd.argmin} and {cmd.argmax} arguments\n")
            return False
        if "write" in cmd.perm and self.image.read_only:
            self.err.write("qemu-io: Block node is read-only\n")
            return False
        self._argv0 = words[0]
        try:
            steps = getattr(self, "cmd_" + cmd.name)(cmd, words[1:])
            if steps is not None:
                yield from steps
        except CommandFailed:
            return False
        return True

    def cmd_read(self, cmd: Command, args: list[str]) -> Generator[None]:
        opts, rest = self._getopt(cmd, args, "bCl:pP:qs:v")
        flags = dict(opts)
        if len(rest) != 2:
            self._usage(cmd)
        pattern = self._pattern(flags["P"]) if "P" in flags else None
        offset = self._cvtnum(rest[0])
        count = self._cvtnum(rest[1])
        if count > REQUEST_MAX_BYTES:
            self.out.write(f"length cannot exceed {REQUEST_MAX_BYTES}, given {rest[1]}\n")
            raise CommandFailed()
        if pattern is None and ("l" in flags or "s" in flags):
            self._usage(cmd)
        pattern_offset = self._cvtnum(flags["s"]) if "s" in flags else 0
        if "l" in flags:
            pattern_count = self._cvtnum(flags["l"])
        else:
            pattern_count = count - pattern_offset
        if pattern_count < 0 or pattern_offset + pattern_count > count:
            self.out.write("pattern verification range exceeds end of read data\n")
            raise CommandFailed()
        yield from self._checked_read(flags, offset, count, pattern, "read",
                                      pattern_offset, pattern_offset + pattern_count)

    def _checked_read(self, flags: dict[str, str], offset: int, count: int,
                      pattern: int | None, fail: str, lo: int = 0,
                      hi: int | None = None) -> Generator[None]:
        """The read of read and readv, in steps: ``count`` bytes at ``offset``.
        With a pattern, bytes ``lo`` to ``hi`` of them (all by default) must
        all be it, else QEMU's line and the command fails after its report;
        -v dumps what was read."""
        hi = count if hi is None else hi
        dump = "v" in flags and "q" not in flags
        start = self.clock()
        matches = True
        streamed = dump and self._streams_dump(pattern)
        kept = bytearray() if dump and not streamed else None
        try:
            self._check_request(offset, count)
            if dump:
                self._reserve_dump(offset, count)
            for pos, data in self._read_chunks(offset, count):
                if pattern is not None and matches and pos < hi and pos + len(data) > lo:
                    region = data[max(lo - pos, 0) : hi - pos]
                    matches = region.count(pattern) == len(region)
                if kept is not None:
                    kept += data
                elif streamed:
                    yield from self._dump(data, offset + pos)
                yield
        except OSError as exc:
            self._io_error = True
            self.out.write(f"{fail} failed: {_strerror(exc)}\n")
            raise CommandFailed() from None
        elapsed = self.clock() - start
        if not matches:
            self.out.write(f"Pattern verification failed at offset {offset + lo}, "
                           f"{hi - lo} bytes\n")
        if "q" not in flags:
            if kept is not None:
                yield from self._dump(kept, offset)
            self._report("read", elapsed, offset, count, count, 1, "C" in flags)
        if not matches:
            raise CommandFailed()

    def _read_chunks(self, offset: int, count: int) -> Generator[tuple[int, bytes]]:
        """The request's data a chunk at a time: (position in it, bytes)."""
        pos = 0
        while pos < count:
            n = min(CHUNK, count - pos)
            yield pos, self.image.read(offset + pos, n)
            pos += n

    def _streams_dump(self, pattern: int | None) -> bool:
        """Whether a dump goes out chunk by chunk as the data is read.  Only
        without an output limit (stdout, the qmpd-img tool), where the data
        of a 2 GiB read must not be kept whole, and without a pattern check,
        whose verdict QEMU prints before the dump; QEMU prints no dump when
        the read fails, which only a read failing half way can tell apart."""
        return self.output_limit is None and pattern is None

    def _request(self, offset: int, count: int, fail: str,
                 run: Callable[[], _T]) -> tuple[_T, float]:
        """One request on the image in one go, timed: the range check, then
        ``run``; an error fails the command with "FAIL failed: <errno text>"
        as qemu-io prints it.  Returns what ``run`` returned and its time."""
        start = self.clock()
        try:
            self._check_request(offset, count)
            result = run()
        except OSError as exc:
            self.out.write(f"{fail} failed: {_strerror(exc)}\n")
            raise CommandFailed() from None
        return result, self.clock() - start

    def _reserve_dump(self, offset: int, count: int) -> None:
        """Refuse a dump larger than ``output_limit`` before reading anything."""
        if self.output_limit is None:
            return
        width = max(8, len(f"{offset + count:x}"))
        # Each line as it travels in a JSON reply: its newline is two bytes.
        size = -(-count // 16) * (DUMP_LINE + 1 + width - 8)
        if size > self.output_limit:
            raise OutputTooLarge(size, self.output_limit)

    def _dump(self, data: bytes | bytearray, offset: int) -> Generator[None]:
        """qemu-io's dump_buffer(), DUMP_CHUNK bytes per step."""
        for i in range(0, len(data), DUMP_CHUNK):
            self.out.write(dump_lines(bytes(data[i : i + DUMP_CHUNK]), offset + i))
            yield

    def cmd_write(self, cmd: Command, args: list[str]) -> Generator[None]:
        opts, rest = self._getopt(cmd, args, "bcCfnpP:qs:uz")
        flags = dict(opts)
        pattern = 0xCD
        if "P" in flags:
            pattern = self._pattern(flags["P"])
        if len(rest) != 2:
            self._usage(cmd)
        z, c, b = "z" in flags, "c" in flags, "b" in flags
        if b and z:
            self.out.write("-b and -z cannot be specified at the same time\n")
            raise CommandFailed()
        if "f" in flags and (b or c):
            self.out.write("-f and -b or -c cannot be specified at the same time\n")
            raise CommandFailed()
        if "n" in flags and not z:
            self.out.write("-n requires -z to be specified\n")
            raise CommandFailed()
        if "u" in flags and not z:
            self.out.write("-u requires -z to be specified\n")
            raise CommandFailed()
        if z + ("P" in flags) + ("s" in flags) > 1:
            self.out.write("Only one of -z, -P, and -s can be specified at the same time\n")
            raise CommandFailed()
        if "s" in flags or b:
            self.out.write("qmpd-img: write -s and -b are not supported\n")
            raise CommandFailed()
        offset = self._cvtnum(rest[0])
        count = self._cvtnum(rest[1])
        if count > REQUEST_MAX_BYTES and "n" not in flags:
            self.out.write(f"length cannot exceed {REQUEST_MAX_BYTES} without -n, "
                           f"given {rest[1]}\n")
            raise CommandFailed()
        if c:
            if offset % 512:
                self.out.write(f"{offset} is not a sector-aligned value for 'offset'\n")
                raise CommandFailed()
            if count % 512:
                self.out.write(f"{count} is not a sector-aligned value for 'count'\n")
                raise CommandFailed()
        yield from self._do_write(flags, offset, count, pattern, "write")

    def _do_write(self, flags: dict[str, str], offset: int, count: int, pattern: int,
                  fail: str) -> Generator[None]:
        """One write request (-z zeroes, -c compressed, else the pattern), reported."""
        start = self.clock()
        # Compressed writes go whole clusters at a time (2 MiB is a multiple
        # of every cluster size); the rest whole up to WHOLE_WRITE_MAX, else in
        # CHUNK pieces.
        if "c" in flags:
            step = 2 << 20
        elif count <= WHOLE_WRITE_MAX:
            step = max(count, 1)
        else:
            step = CHUNK
        block = bytes([pattern]) * min(step, count)
        try:
            self._check_request(offset, count)
            pos = 0
            while pos < count or not count:
                n = min(step, count - pos)
                data = block if n == len(block) else block[:n]
                if "z" in flags:
                    self.image.write_zeroes(offset + pos, n, unmap="u" in flags)
                elif "c" in flags:
                    self.image.write_compressed(offset + pos, data)
                else:
                    self.image.write(offset + pos, data)
                pos += n
                if pos >= count:
                    break
                yield
        except OSError as exc:
            self._io_error = True
            self.out.write(f"{fail} failed: {_strerror(exc)}\n")
            raise CommandFailed() from None
        elapsed = self.clock() - start
        if "q" not in flags:
            self._report("wrote", elapsed, offset, count, count, 1, "C" in flags)

    def cmd_discard(self, cmd: Command, args: list[str]) -> None:
        opts, rest = self._getopt(cmd, args, "Cq")
        flags = dict(opts)
        if len(rest) != 2:
            self._usage(cmd)
        offset = self._cvtnum(rest[0])
        count = self._cvtnum(rest[1])
        if count > REQUEST_MAX_BYTES:
            self.out.write(f"length cannot exceed {REQUEST_MAX_BYTES}, given {rest[1]}\n")
            raise CommandFailed()
        _, elapsed = self._request(offset, count, "discard",
                                   lambda: self.image.discard(offset, count))
        if "q" not in flags:
            self._report("discard", elapsed, offset, count, count, 1, "C" in flags)

    # -- vectored and asynchronous requests: done at once, reported as QEMU
    # reports them when they complete.
    def _vector(self, cmd: Command, args: list[str], spec: str, acct: str | None = None
                ) -> tuple[dict[str, str], int, int]:
        opts, rest = self._getopt(cmd, args, spec)
        if len(rest) < 2:
            self._usage(cmd)
        offset = self._cvtnum(rest[0])
        try:
            return dict(opts), offset, self._iovec_total(rest[1:])
        except CommandFailed:
            # aio_read/aio_write: create_iovec() failing is an invalid request.
            if acct is not None and self.accounting is not None and "z" not in dict(opts):
                self.accounting.invalid(acct)
            raise

    def _iovec_total(self, lengths: list[str]) -> int:
        # create_iovec(): each vector, then the running total, within
        # BDRV_REQUEST_MAX_BYTES.
        total = 0
        for arg in lengths:
            n = self._cvtnum(arg)
            if n > REQUEST_MAX_BYTES:
                self.out.write(f"Argument '{arg}' exceeds maximum size {REQUEST_MAX_BYTES}\n")
                raise CommandFailed()
            if total > REQUEST_MAX_BYTES - n:
                self.out.write("The total number of bytes exceed the maximum size "
                               f"{REQUEST_MAX_BYTES}\n")
                raise CommandFailed()
            total += n
        return total

    def _vread(self, cmd: Command, args: list[str], spec: str, fail: str,
               acct: str | None = None) -> Generator[None]:
        flags, offset, count = self._vector(cmd, args, spec, acct)
        pattern = self._pattern(flags["P"]) if "P" in flags else None
        # Unlike before, a pattern mismatch fails readv as it fails read
        # (QEMU 7.2's readv_f returns -EINVAL: qemu-io exits with 1).
        yield from self._accounted(acct, count,
                                   self._checked_read(flags, offset, count, pattern, fail))

    def _vwrite(self, cmd: Command, args: list[str], spec: str, fail: str,
                acct: str | None = None) -> Generator[None]:
        flags, offset, count = self._vector(cmd, args, spec, acct)
        pattern = self._pattern(flags["P"]) if "P" in flags else 0xCD
        # aio_write -z accounts nothing (its cookie is never started).
        yield from self._accounted(None if "z" in flags else acct, count,
                                   self._do_write(flags, offset, count, pattern, fail))

    def _accounted(self, kind: str | None, count: int, steps: Generator[None]) -> Generator[None]:
        """One request under block_acct_start: done when it completes (a
        pattern mismatch too), failed on an I/O error."""
        acct = self.accounting if kind is not None else None
        if acct is None:
            yield from steps
            return
        cookie = acct.start(kind, count)  # type: ignore[arg-type]
        self._io_error = False
        try:
            yield from steps
        except CommandFailed:
            if self._io_error:
                acct.failed(cookie)
            else:
                acct.done(cookie)
            raise
        acct.done(cookie)

    def _injects_invalid(self, cmd: Command, args: list[str], spec: str, kind: str,
                         what: str) -> bool:
        """aio_read/aio_write -i: count an invalid request and stop there."""
        opts, _ = self._getopt(cmd, args, spec)
        if not any(o == "i" for o, _ in opts):
            return False
        self.out.write(f"injecting invalid {what} request\n")
        if self.accounting is not None:
            self.accounting.invalid(kind)
        return True

    def cmd_readv(self, cmd: Command, args: list[str]) -> Generator[None]:
        return self._vread(cmd, args, "CP:qv", "readv")

    def cmd_aio_read(self, cmd: Command, args: list[str]) -> Generator[None] | None:
        if self._injects_invalid(cmd, args, "CiP:qv", "rd", "read"):
            return None
        return self._vread(cmd, args, "CiP:qv", "readv", acct="rd")

    def cmd_writev(self, cmd: Command, args: list[str]) -> Generator[None]:
        return self._vwrite(cmd, args, "CfP:q", "writev")

    def cmd_aio_write(self, cmd: Command, args: list[str]) -> Generator[None] | None:
        if self._injects_invalid(cmd, args, "CfiP:quz", "wr", "write"):
            return None
        return self._vwrite(cmd, args, "CfiP:quz", "aio_write", acct="wr")

    def cmd_aio_flush(self, cmd: Command, args: list[str]) -> None:
        # block_acct_start(FLUSH), blk_drain_all (nothing is in flight), done.
        if self.accounting is not None:
            self.accounting.done(self.accounting.start("flush", 0))

    def cmd_alloc(self, cmd: Command, args: list[str]) -> None:
        offset = self._cvtnum(args[0])
        count = self._cvtnum(args[1]) if len(args) > 1 else 512
        end = min(offset + count, self.image.length())
        total = 0
        for o, n, alloc in self.image.allocation():
            lo, hi = max(o, offset), min(o + n, end)
            if alloc and lo < hi:
                total += hi - lo
        count = max(0, end - offset)
        self.out.write(f"{total}/{count} bytes allocated at offset {cvtstr(offset)}\n")

    def cmd_info(self, cmd: Command, args: list[str]) -> None:
        info = getattr(self.image, "info", None)
        if info is None:
            return
        fmt, proto, cluster, vm_state, specific = info()
        self.out.write(f"format name: {fmt}\n")
        if proto:
            self.out.write(f"format name: {proto}\n")
        if cluster is None:
            return
        self.out.write(f"cluster size: {cvtstr(cluster)}\n"
                       f"vm state offset: {cvtstr(vm_state)}\n")
        if specific:
            (self.monitor if self.dump_prefix_on_monitor else self.out).write(
                "Format specific information:\n")
            # bdrv_image_info_specific_dump prints with qemu_printf: in a
            # monitor command that is the monitor, not stdout.
            for k in key_order(list(specific)):
                v = specific[k]
                v = str(v).lower() if isinstance(v, bool) else v
                self.monitor.write(f"    {k.replace('-', ' ')}: {v}\n")

    def cmd_length(self, cmd: Command, args: list[str]) -> None:
        self.out.write(cvtstr(self.image.length()) + "\n")

    def cmd_flush(self, cmd: Command, args: list[str]) -> None:
        if isinstance(self.image, Qcow2Adapter):
            self.image.image.flush()
            return
        flush = getattr(self.image, "flush", None)
        if flush is not None:
            with contextlib.suppress(OSError):
                # flush_f returns blk_flush's error and prints nothing
                flush()

    def _error_report(self, msg: str) -> None:
        # error_report(): the monitor under HMP, else stderr with the program name.
        if self.monitor is self.out:
            self.err.write(f"qemu-io: {msg}\n")
        else:
            self.monitor.write(msg + "\n")

    def cmd_truncate(self, cmd: Command, args: list[str]) -> None:
        if not self.truncate_prealloc:
            self._truncate(self._cvtnum(args[0]), "off")
            return
        opts, rest = self._getopt(cmd, args, "m:")
        prealloc = "off"
        for _, value in opts:
            if value not in ("off", "metadata", "falloc", "full"):
                self._error_report(f"Invalid preallocation mode '{value}'")
                raise CommandFailed()
            prealloc = value
        if not rest:
            # qemu-io reads argv[optind] past the end: NULL, no number.
            self._usage(cmd)
        # print_cvtnum_err(offset, argv[1]): QEMU names the first argument
        # after getopt's reordering, not the offset.
        self._truncate(self._cvtnum(rest[0], named=self._permuted[0]), prealloc)

    def _truncate(self, offset: int, prealloc: str) -> None:
        if offset > BDRV_MAX_LENGTH:
            self._error_report(f"offset({offset}) exceeds maximum({BDRV_MAX_LENGTH})")
            raise CommandFailed()
        try:
            self.image.truncate(offset, prealloc)
        except OSError as exc:
            self._error_report(_strerror(exc) if exc.strerror is None else exc.strerror)
            raise CommandFailed() from None

    def cmd_reopen(self, cmd: Command, args: list[str]) -> None:
        assert isinstance(self.image, Reopenable)
        opts, rest = self._getopt(cmd, args, "c:o:rw")
        try:
            ok = reopen_f(self.image, opts, rest, self._error_report)
        except ReopenUsage:
            self._usage(cmd)
        if not ok:
            raise CommandFailed()

    def cmd_help(self, cmd: Command, args: list[str]) -> None:
        def oneline(name: str, cmd_args: str | None, summary: str) -> str:
            return f"{name} " + (f"{cmd_args} " if cmd_args is not None else "") + f"-- {summary}\n"

        table = self.help_table
        if not args:
            for name, (_, cmd_args, summary) in table.items():
                self.out.write(oneline(name, cmd_args, summary))
            self.out.write("\nUse 'help commandname' for extended help.\n")
            return
        found = next((n for n, (alt, _, _) in table.items() if args[0] in (n, alt)), None)
        if found is None:
            self.out.write(f"command {args[0]} not found\n")
            raise CommandFailed()
        _, cmd_args, summary = table[found]
        self.out.write(oneline(args[0], cmd_args, summary) + self.help_bodies.get(found, ""))

    def cmd_map(self, cmd: Command, args: list[str]) -> None:
        for offset, length, allocated in self.image.allocation():
            state = "    allocated" if allocated else "not allocated"
            self.out.write(f"{cvtstr(length)} (0x{length:x}) bytes {state} at offset "
                           f"{cvtstr(offset)} (0x{offset:x})\n")


def dump_lines(data: bytes, offset: int) -> str:
    """qemu-io's dump_buffer() of ``data`` read at ``offset``:
    ``"%08x:  "``, the bytes in hex, then as text (isalnum or ".").

    Built column by column with strided slice assignments over whole
    blocks of lines: about 20x faster than formatting line by line.

    >>> dump_lines(b"qemu-io\\x00" * 3, 0x10)
    '00000010:  71 65 6d 75 2d 69 6f 00 71 65 6d 75 2d 69 6f 00  qemu.io.qemu.io.\\n00000020:  71 65 6d 75 2d 69 6f 00  qemu.io.\\n'
    """
    rows = len(data) // 16
    tail = data[rows * 16 :]
    end = offset + 16 * rows
    out = ""
    if rows and end <= 1 << 32:
        # Offsets as big-endian 32-bit words in hex: "%08x" for all rows at once.
        offs = array.array("I", range(offset, end, 16))
        if sys.byteorder == "little":
            offs.byteswap()
        digits = offs.tobytes().hex().encode()
        buf = bytearray(b" " * (DUMP_LINE * rows))
        for j in range(8):
            buf[j::DUMP_LINE] = digits[j::8]
        buf[8::DUMP_LINE] = b":" * rows
        hexes = data[: rows * 16].hex(" ").encode()
        for j in range(48):
            if j % 3 != 2:
                buf[11 + j :: DUMP_LINE] = hexes[j::48]
        text = data[: rows * 16].translate(_DUMP_TEXT)
        for j in range(16):
            buf[60 + j :: DUMP_LINE] = text[j::16]
        buf[DUMP_LINE - 1 :: DUMP_LINE] = b"\n" * rows
        out = buf.decode("ascii")
    elif rows:
        tail = data
        end = offset
    if tail:
        out += "".join(
            f"{end + i:08x}:  " + "".join(f"{b:02x} " for b in tail[i : i + 16]) + " "
            + tail[i : i + 16].translate(_DUMP_TEXT).decode("ascii") + "\n"
            for i in range(0, len(tail), 16))
    return out


# qemu-io.c's quit_cmd and its alias (argmin/argmax -1: any arguments).
QUIT_WORDS = ("quit", "q")
# The tool's own commands in its help (qemu-io.c adds them to the table; not
# under HMP).  Of them qmpd-img runs quit; open and close are not offered.
TOOL_HELP_ROWS = {"quit": ("q", None, "exit the program", "")}


def run_commands(image: IoTarget, commands: list[str],
                 out: TextIO | None = None, err: TextIO | None = None) -> bool:
    """Run every command (qemu-io keeps going after failures); True if all passed."""
    out = out or sys.stdout
    err = err or sys.stderr
    io = QemuIo(image, out, err, help_rows=TOOL_HELP_ROWS)
    ok = True
    for line in commands:
        words = line.split()
        if words and words[0] in QUIT_WORDS:
            # qemu-io's own quit (not a qemu-io-cmds.c command, so not under
            # HMP): the remaining -c commands are not run.
            break
        if not io.run(line):
            ok = False
        out.flush()
    return ok
