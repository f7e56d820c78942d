"""Dispatch: one QMP command from name and arguments to its result.

The order of checks is QEMU's: command lookup, then the out-of-band check,
then argument validation against ``schema/``, then the handler.  Engine and
schema errors are turned into :class:`QMPError` here and nowhere else.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from qmpd import __version__

# Importing the family modules registers their handlers in COMMANDS.
from qmpd.commands import (  # noqa: F401
    bitmaps,
    block,
    control,
    devices,
    drive_jobs,
    exports,
    hmp,
    jobs,
    objects,
    query,
    reopen,
    resize,
    snapshot,
)
from qmpd.commands.errors import CommandNotFound, QMPError
from qmpd.commands.registry import COMMANDS, CommandInfo
from qmpd.commands.stepwise import Stepwise
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph
from qmpd.engine.jobs.state import JobManager, JobTime
from qmpd.profiles import Profile, select
from qmpd.protocol.encode import Preencoded, PreencodedParts, dumps
from qmpd.schema import ArgumentError, load

EventSink = Callable[[str, "dict | None", tuple[int, int]], None]


# The program whose messages qmpd's error_report() lines stand for.
QEMU_PROGRAM = "qemu-system-x86_64"


def _run_now(fn: Callable[[], None]) -> None:
    fn()


class Daemon:
    """Everything a command acts on: the release it answers as, the block
    graph, objects, run state.

    It knows nothing of sockets: events go to ``event_sink``, which the
    server points at its broadcast.  Its block jobs get their time from
    ``job_time``, which must be given: the server's running job runner
    (qmpd.jobs.runner), or in-process a ``qmpd.jobs.clock.VirtualClock``.
    """

    def __init__(self, profile: Profile | None = None, *, job_time: JobTime,
                 package: str | None = None, extensions: bool = False) -> None:
        #: The QEMU release whose answers qmpd gives (--qemu-version).
        self.profile: Profile = profile if profile is not None else select()
        #: That release's QAPI schema: argument checks and introspection.
        self.schema = load(self.profile.schema_dir)
        self.package = package if package is not None else f"qmpd {__version__}"
        self.extensions = extensions
        self.graph = BlockGraph(self.profile)
        self.graph.hostfiles.formatted = self.print_line
        self.running = True
        #: "prelaunch" (-S until the first cont), "paused" (after stop) or "running".
        self.run_state = "running"
        self.quit_requested = False
        #: quit's reply goes out before SHUTDOWN (the server sets it for a
        #: monitor on stdio).
        self.quit_reply_first = False
        self.event_sink: EventSink | None = None
        #: Set by the Dispatcher built on this daemon (query-commands reads its table).
        self.dispatcher: Dispatcher | None = None
        #: Where qemu-io output of human-monitor-command goes: "reply" or "stdout".
        self.hmp_output = "reply"
        #: -qtest given: blkdebug prints nothing about suspended requests then
        #: (qtest_enabled() in block/blkdebug.c).
        self.qtest_enabled = False
        #: -name: what query-name reports.
        self.vm_name: str | None = None
        #: The largest reply (--max-output; None in process): qemu-io output
        #: that would be larger is refused before it is made.
        self.max_output: int | None = None
        #: Runs a callable once the reply to the command under way has gone
        #: out (a SCSI disk's deferred unplug): the server's event loop does
        #: that; in process there is no reply to wait for, so it runs now.
        self.after_reply: Callable[[Callable[[], None]], None] = _run_now
        #: Callables run by x-qmpd-reset, for subsystems with per-daemon state.
        self.reset_hooks: list[Callable[[], None]] = []
        #: The block jobs, for the daemon's lifetime (serving the current graph).
        self.jobs = JobManager(self.graph, self.emit, job_time)
        self.jobs.error_report = self.error_report

    @property
    def qemu_version(self) -> tuple[int, int, int]:
        """The exact version reported (greeting, query-version, info version)."""
        return self.profile.version

    def new_graph(self) -> None:
        """An empty block graph of the same release (x-qmpd-reset)."""
        self.graph = BlockGraph(self.profile)
        self.graph.hostfiles.formatted = self.print_line
        # The old graph's jobs go without a word (and a virtual clock restarts).
        self.jobs.reset(self.graph)

    def error_report(self, msg: str) -> None:
        """QEMU's error_report(): a line on stderr after the program's name
        (qmpd stands in for qemu-system-x86_64, whose name QEMU prints)."""
        sys.stderr.write(f"{QEMU_PROGRAM}: {msg}\n")
        sys.stderr.flush()

    def print_line(self, text: str) -> None:
        """A line QEMU prints on its stdout (bdrv_img_create's "Formatting")."""
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def emit(self, name: str, data: dict | None = None) -> None:
        """Send event ``name`` to every negotiated client, now."""
        now = time.time()
        sec = int(now)
        ts = (sec, int((now - sec) * 1_000_000))
        if self.event_sink is not None:
            self.event_sink(name, data, ts)


class Dispatcher:
    """Runs commands against one :class:`Daemon`."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        daemon.dispatcher = self   # query-commands and query-qmp-schema read the table
        # The release's commands are those its schema describes (qmpd has a
        # handler for each); qmpd's own x-qmpd-* ones only with --extensions.
        offered = set(daemon.schema.command_names())
        self.table: dict[str, CommandInfo] = {
            name: info for name, info in COMMANDS.items()
            if (daemon.extensions if info.extension else name in offered)
        }
        self.profile = daemon.profile
        self.validate = daemon.schema.validate
        # (name, arguments) -> (graph, generation, Preencoded): see _cached.
        self._cache: dict[tuple, tuple[Any, int, Any]] = {}

    def command_names(self) -> list[str]:
        return list(self.table)

    def execute(self, name: str, arguments: dict | None, *, oob: bool = False,
                preencoded: bool = False, stepwise: bool = False) -> Any:
        """The result of command ``name``, or QMPError.

        With ``preencoded`` (the server's way), a cached command's result may
        come back as a :class:`Preencoded` text, kept from an earlier run while
        nothing changed since; in-process callers get plain values.  With
        ``stepwise`` (the server's way too), a long command comes back as a
        :class:`~qmpd.commands.stepwise.Stepwise` for the caller to run.
        """
        info = self.table.get(name)
        if info is None:
            raise CommandNotFound(f"The command {name} has not been found")
        if oob and not info.allow_oob:
            raise QMPError(f"The command {name} does not support OOB")
        args = {} if arguments is None else arguments
        # The main loop runs pending bottom halves (a job's exit) before the
        # monitor dispatches the next command.
        self.daemon.jobs.command_begins()
        try:
            self.validate(name, args)
            if not info.pure:
                # Before the handler: even a failed command may have changed
                # something on its way (a job it woke, say).
                self.daemon.graph.generation += 1
            elif preencoded and info.cached:
                return self._cached(info, args)
            result = info.handler(self.daemon, args)
            if result.__class__ is Stepwise and not stepwise:
                result = result.run()
                if result.__class__ is PreencodedParts:
                    result = result.value()
            return result
        except (ArgumentError, BlockError, QMPError) as e:
            err = self.qmp_error(e)
            if err is e:
                raise
            raise err from None

    def qmp_error(self, e: Exception) -> QMPError | None:
        """``e`` as the QMP error a client sees, in the words of the daemon's
        profile; None when ``e`` is no command's error (a bug in qmpd).

        The server words the errors of a long command's later steps here
        too, so that they read as the same error from ``execute`` would."""
        if isinstance(e, QMPError):
            if isinstance(e.message, str):
                return e
            err = QMPError(self.profile.render(e.message), e.cls)
        elif isinstance(e, BlockError):
            err = QMPError(self.profile.render_all(e.parts), e.cls)
        elif isinstance(e, ArgumentError):
            # the QAPI visitor's words differ between releases too
            return QMPError(self.profile.render(e.desc))
        else:
            return None
        err.hint = e.hint       # shown for command-line options only
        return err

    def _cached(self, info: CommandInfo, args: dict) -> Any:
        """``info``'s result encoded, from the cache when the graph has not
        changed since it was made (same graph object, same generation)."""
        graph = self.daemon.graph
        gen = graph.generation
        try:
            key = (info.name, tuple(args.items()))
            hit = self._cache.get(key)
        except TypeError:       # unhashable arguments: not cached
            return info.handler(self.daemon, args)
        if hit is not None and hit[0] is graph and hit[1] == gen:
            return hit[2]
        result = Preencoded(dumps(info.handler(self.daemon, args)))
        if graph.generation == gen and self.daemon.graph is graph:
            self._cache[key] = (graph, gen, result)
        return result
