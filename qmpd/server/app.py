"""The trio server: accepts clients, runs their commands, fans events out.

Structure (structured concurrency only, no threads)::

    root nursery
    ├── signal watcher             SIGINT/SIGTERM -> SHUTDOWN event, then shutdown
    └── clients nursery
        ├── accept nursery         one accept loop per endpoint (or the stdio client)
        └── one task per client    its own nursery: reader (runs commands) + writer

Each client has its own :class:`qmpd.protocol.session.Session` and an output
buffer.  Replies and events are appended to that buffer in the order they are
produced (so an event raised by a command lands before the command's reply),
and the client's writer task sends whatever has accumulated.  Commands run
synchronously in the reader task of the client that sent them; the daemon
state is only ever touched from one task at a time.

Long data-path work (a qemu-io command over megabytes) comes back from the
dispatcher as a :class:`~qmpd.commands.stepwise.Stepwise`: the reader runs it
a step at a time and lets every other task run in between, so other clients
are answered within milliseconds and signals act at once.  Beside it, other
clients' commands run only if they cannot see a state half done: commands
that do not look at the block layer at all, and, beside work that only
reads, queries.  The rest wait until it is finished, each client's commands
still in its own order.  A long reply is queued as pieces, never joined.

Shutdown keeps every line whole: each client's writer finishes what it has
queued, ``SHUTDOWN`` last, for as long as the client keeps reading.

Resilience: a client's bad input only produces error replies for that client;
an exception escaping a handler becomes a GenericError reply and a traceback
on stderr; a client that stops reading is paused (its own commands) and, if
events pile up past ``max_output`` bytes, disconnected.
"""

from __future__ import annotations

import collections
import os
import select
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import trio

from qmpd import __version__
from qmpd.commands.errors import QMPError
from qmpd.commands.stepwise import Stepwise
from qmpd.jobs.clock import make_clock
from qmpd.jobs.runner import JobRunner
from qmpd.launch import device_args, resolve_keyval
from qmpd.profiles.registry import load as load_profile
from qmpd.protocol.encode import PreencodedParts, encode_event
from qmpd.protocol.session import Session
from qmpd.server.config import Endpoint, ServerConfig
from qmpd.server.flow import (
    FEED_SLICE,
    HIGH_WATER,
    READ_SIZE,
    SMALL_REPLY,
    reply_too_large,
    slices,
)
from qmpd.server.greeting import refusal_bytes
from qmpd.server.listener import UnixListener
from qmpd.server.qtest import QtestSession
from qmpd.server.trace import Tracer

perf = time.perf_counter

# Sequential fast path (see Client._receive): how long the event loop may
# block in poll() waiting for the only client's next command, and how many
# commands in a row may skip trio's scheduler before a real checkpoint.
FAST_WAIT_MS = 1
FAST_BUDGET = 16
# How many scheduler turns a command waits at most for a kicked job runner
# (Server.give_loop_turn); it normally needs one or two.
GIVE_TURN_LIMIT = 200
# Adaptive busy-polling on that path, as QEMU's AioContext polling
# (poll-max-ns): before sleeping in poll(), keep trying to read for a short
# while, because waking a sleeping process costs tens of microseconds on
# small VMs -- more than the whole command.  The window grows (doubling from
# SPIN_MIN_S) while the next command arrives within SPIN_MAX_S of the reply,
# and shrinks to nothing when the client is slower than that, so an idle or
# slow client costs no CPU.
# With a single CPU the client cannot run while qmpd spins: no spinning then.
SPIN_MIN_S = 4e-6
SPIN_MAX_S = 200e-6 if len(os.sched_getaffinity(0)) > 1 else 0.0
# On shutdown, a client gets what is queued for it (SHUTDOWN last) as long as
# it keeps reading: it is dropped after FLUSH_TIMEOUT seconds without taking
# a byte, or SHUTDOWN_CAP seconds in all.
FLUSH_TIMEOUT = 2.0
SHUTDOWN_CAP = 10.0


def log(msg: str) -> None:
    print(f"qmpd: {msg}", file=sys.stderr, flush=True)


def _timestamp() -> tuple[int, int]:
    now = time.time()
    sec = int(now)
    return sec, int((now - sec) * 1_000_000)


class Client:
    """One connection: its session, output buffer and the two tasks."""

    def __init__(self, server: Server, cid: int, rstream: Any, wstream: Any,
                 rfd: int = -1, wfd: int = -1) -> None:
        self.server = server
        self.cid = cid
        self.rstream = rstream
        self.wstream = wstream
        self.session = Session(server.version_info)
        # A monitor on stdio (-qmp stdio) hears quit's reply before SHUTDOWN
        # (QEMU runs it in the main loop; socket monitors, in their I/O thread,
        # see the shutdown's events first).
        self.stdio = False
        self.buf = bytearray()
        # Pieces of long replies (and whatever was in buf before them), sent
        # before buf; ``queued`` is their size.
        self.queue: collections.deque[bytes | bytearray] = collections.deque()
        self.queued = 0
        self.wake = trio.Event()
        self.drained = trio.Event()
        self.closing = False
        self.dead = False
        self.sending = False
        self.scope = trio.CancelScope()
        self.reader_scope = trio.CancelScope()
        self.tracer = server.tracer
        # Non-blocking descriptors for the direct read/write fast paths (-1: none).
        self.rfd = rfd
        self.fd = wfd
        self._poll: Any = None
        self._fast_budget = FAST_BUDGET
        self._spin_s = 0.0
        if rfd >= 0:
            self._poll = select.poll()
            self._poll.register(rfd, select.POLLIN)

    def push(self, data: bytes) -> None:
        if self.dead:
            return
        if self.tracer is not None:
            self.tracer.log(self.cid, "out", data)
        self.buf += data

    def push_parts(self, parts: list[bytes]) -> None:
        """Queue one message given in pieces (a long reply) without joining them."""
        if self.dead:
            return
        if self.tracer is not None:
            for part in parts:
                self.tracer.log(self.cid, "out", part)
        if self.buf:
            self.queue.append(self.buf)
            self.queued += len(self.buf)
            self.buf = bytearray()
        self.queue.extend(parts)
        self.queued += sum(len(p) for p in parts)
        self.wake.set()

    def unsent(self) -> int:
        return self.queued + len(self.buf)

    def push_event(self, data: bytes) -> None:
        """Queue an event caused by another client: only these can pile up
        without bound (a client's own commands wait for its output to drain)."""
        self.push(data)
        self.wake.set()
        # Only while the writer is stuck (the kernel's buffer is full because
        # the peer does not read) does queued output count against the limit;
        # otherwise it is on its way as soon as the writer runs.
        if self.sending and len(self.buf) > self.server.config.max_output:
            log(f"client {self.cid}: disconnected, more than "
                f"{self.server.config.max_output} bytes of output unread")
            self.dead = True
            self.buf = bytearray()
            self.queue.clear()
            self.scope.cancel()

    def finish(self) -> None:
        """Stop reading; the writer sends what is queued, then the connection closes."""
        self.closing = True
        self.reader_scope.cancel()
        self.wake.set()

    async def run(self, greeted: bool = False) -> None:
        if greeted:
            # Sent before the event loop ran (qmpd.server.startup).
            if self.tracer is not None:
                self.tracer.log(self.cid, "out", self.session.greeting())
        else:
            self.push(self.session.greeting())
            self._send_now()
        with self.scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer)
                with self.reader_scope:
                    await self._reader()
                self.closing = True
                self.wake.set()

    async def _reader(self) -> None:
        session = self.session
        server = self.server
        execute = server.execute
        receive = self._receive
        while not self.closing:
            try:
                data = await receive()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return
            if not data:
                return
            if self.tracer is not None:
                self.tracer.log(self.cid, "in", data)
            if len(data) > FEED_SLICE and len(server.clients) > 1:
                # Parsing costs about a microsecond per token: a read full of
                # tiny tokens (a flood, a huge argument) is parsed a slice at
                # a time, and the other clients are served in between.
                pieces = slices(data)
            else:
                pieces = (data,)
            for k, piece in enumerate(pieces):
                if k:
                    await trio.lowlevel.checkpoint()
                try:
                    items = session.feed(piece)
                except Exception:
                    # The protocol core must not fail; if it does, this session's
                    # state is unknown, so only this client is dropped.
                    log(f"client {self.cid}: protocol error, disconnecting\n"
                        + traceback.format_exc())
                    return
                while items:
                    for item in items:
                        if item.__class__ is bytes:
                            self.push(item)
                        else:
                            if server.long is not None and server.long_client is not self:
                                await server.wait_beside_long(self, item)
                            if server.loop_turn_wanted():
                                await server.give_loop_turn()
                            out = execute(self, item)
                            if out.__class__ is not bytes:
                                out = await server.run_long(self, item, out)
                            if out.__class__ is list:
                                self.push_parts(out)
                            else:
                                self.push(out)
                            if server.after_pending:
                                server.run_after_reply()
                            if server.quitting:
                                return
                        if self.queued + len(self.buf) > HIGH_WATER:
                            await self._wait_drained()
                    # Input after a qmp_capabilities is held back until its reply
                    # switched the session's mode.
                    items = session.feed(b"") if session.has_pending else None
                if self.buf:
                    self._send_now()

    def _send_now(self) -> None:
        """Write the queued output straight to the socket if the writer task is
        idle: saves a task switch per reply on the request/response path.
        Whatever the kernel does not take now is left to the writer."""
        if self.sending or self.fd < 0 or self.queue:
            self.wake.set()
            return
        data = self.buf
        try:
            n = os.write(self.fd, data)
        except BlockingIOError:
            n = 0
        except OSError:
            # The peer is gone; the reader sees it on its next receive.
            self.dead = True
            self.buf = bytearray()
            self.scope.cancel()
            return
        if n == len(data):
            self.buf = bytearray()
        else:
            del data[:n]
            self.wake.set()

    async def _receive(self) -> bytes:
        # Straight on the descriptor: a client waiting for its reply has sent
        # nothing more, so wait first and read once (trio's receive_some
        # would try a read that fails with EAGAIN before every wait).
        fd = self.rfd
        if fd < 0:
            return await self.rstream.receive_some(READ_SIZE)
        budget = self._fast_budget
        server = self.server
        if budget and len(server.clients) == 1 and not server.loop_turn_wanted():
            # The only client, nothing else to run and no timer due soon: wait
            # for its next command in poll() itself, which skips trio's
            # register/epoll/reschedule round (most of the per-command cost of
            # a sequential client).  Bounded: FAST_WAIT_MS of blocking when the
            # client goes quiet, and a real checkpoint every FAST_BUDGET
            # commands so that new connections, signals and other tasks run.
            # (The run queue and timers are looked at once per budget: the
            # statistics call costs as much as the rest of this path.)
            if budget == FAST_BUDGET:
                stats = trio.lowlevel.current_statistics()
                if (stats.tasks_runnable
                        or stats.seconds_to_next_deadline <= FAST_WAIT_MS / 1000 * FAST_BUDGET):
                    budget = 0
            if budget:
                self._fast_budget = budget - 1
                data = self._spin_then_poll(fd)
                if data is not None:
                    return data
        self._fast_budget = FAST_BUDGET
        await trio.lowlevel.wait_readable(fd)
        try:
            return os.read(fd, READ_SIZE)
        except BlockingIOError:
            return await self._receive()

    def _spin_then_poll(self, fd: int) -> bytes | None:
        """The next command of the only client, read without trio: busy-poll
        for the adaptive window, then sleep in poll() for FAST_WAIT_MS.
        None when nothing came (the caller then waits the trio way)."""
        t0 = perf()
        spin = self._spin_s
        if spin:
            deadline = t0 + spin
            while True:
                try:
                    return os.read(fd, READ_SIZE)
                except BlockingIOError:
                    pass
                if perf() >= deadline:
                    break
        if not self._poll.poll(FAST_WAIT_MS):
            self._spin_s = 0.0
            return None
        waited = perf() - t0
        if waited <= SPIN_MAX_S:
            # The client answered quickly: spinning would have caught it.
            # (Never true with SPIN_MAX_S == 0: spinning stays off.)
            self._spin_s = min(SPIN_MAX_S, max(SPIN_MIN_S, 2 * spin))
        else:
            self._spin_s = spin / 2 if spin > SPIN_MIN_S else 0.0
        try:
            return os.read(fd, READ_SIZE)
        except BlockingIOError:
            return None

    async def _wait_drained(self) -> None:
        while self.unsent() > HIGH_WATER and not self.dead:
            self.wake.set()
            self.drained = trio.Event()
            await self.drained.wait()

    async def _writer(self) -> None:
        while True:
            if self.queue:
                data = self.queue.popleft()
                self.queued -= len(data)
            elif self.buf:
                data = self.buf
                self.buf = bytearray()
            else:
                if self.closing or self.dead:
                    return
                await self.wake.wait()
                self.wake = trio.Event()
                continue
            self.sending = True
            if not await self._send(data):
                # The peer went away (or, at shutdown, stopped reading).
                self.dead = True
                self.buf = bytearray()
                self.queue.clear()
                self.scope.cancel()
                return
            self.sending = False
            if not self.queue:
                self.drained.set()

    async def _send(self, data: bytes | bytearray) -> bool:
        """Write all of ``data``; False if the peer is gone, or if at shutdown
        it took nothing for FLUSH_TIMEOUT seconds.  (The direct writes also
        keep a line that is being sent whole when shutdown begins: only a
        peer that stops reading can be left with part of one.)"""
        fd = self.fd
        if fd < 0:
            try:
                await self.wstream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return False
            return True
        with memoryview(data) as view:
            sent = 0
            while sent < len(view):
                try:
                    sent += os.write(fd, view[sent:])
                    continue
                except BlockingIOError:
                    pass
                except OSError:
                    return False
                if not self.closing:
                    await trio.lowlevel.wait_writable(fd)
                    continue
                with trio.move_on_after(FLUSH_TIMEOUT) as waited:
                    await trio.lowlevel.wait_writable(fd)
                if waited.cancelled_caught:
                    log(f"client {self.cid}: not reading, dropped at shutdown")
                    return False
        return True


class Server:
    """The clients, the (lazily created) daemon and dispatcher, and shutdown."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        major, minor, micro = config.qemu_version
        # Built in schema member order (VersionInfo: qemu, package;
        # VersionTriple: major, minor, micro); the encoder orders keys as QEMU.
        self.version_info = {"qemu": {"major": major, "minor": minor, "micro": micro},
                             "package": f"qmpd {__version__}"}
        self.clients: set[Client] = set()
        self.tracer = Tracer(config.trace) if config.trace else None
        self.quitting = False
        self._shutdown = trio.Event()
        self._next_cid = 0
        self._daemon: Any = None
        self._execute: Callable[..., Any] | None = None
        # Words a command's error in the daemon's profile (the dispatcher's
        # qmp_error); None until the first command loads the dispatcher.
        self._qmp_error: Callable[[Exception], QMPError | None] | None = None
        self._root: trio.Nursery | None = None
        # Block-job time: started in main (nursery.start), before any daemon.
        self.job_runner = JobRunner(make_clock(config.clock))
        # The client whose command is running (its events need no wake-up
        # and do not count against the unread-output limit).
        self._running_for: Client | None = None
        # Callables queued by the daemon's after_reply that have not run yet.
        self.after_pending: list[Callable[[], None]] = []
        # The long (stepwise) command in progress, if any, and its client
        # (see wait_beside_long for what may run beside it).
        self.long: Stepwise | None = None
        self.long_client: Client | None = None
        self._long_done = trio.Event()
        self._table: dict[str, Any] = {}
        self.unix_endpoints = sum(1 for e in config.endpoints if e.kind == "unix")
        self._refusal = refusal_bytes(config)
        self.exit_status = 0
        self._connected_gone = 0

    # ------------------------------------------------------------ commands

    def _load_dispatcher(self) -> Callable[..., Any]:
        # Deferred to the first command so that the greeting goes out before the
        # engine, schema and command modules are imported.
        from qmpd.commands.dispatch import Daemon, Dispatcher

        cfg = self.config
        # The runner refuses to serve the daemon's jobs unless main started it.
        daemon = Daemon(load_profile(cfg.qemu_series, cfg.qemu_version), job_time=self.job_runner,
                        extensions=cfg.extensions)
        daemon.hmp_output = cfg.hmp_output
        daemon.vm_name = cfg.vm_name
        if cfg.start_paused:
            daemon.running = False
            daemon.run_state = "prelaunch"
        daemon.event_sink = self.broadcast
        daemon.after_reply = self._after_reply
        if cfg.host_writes:
            daemon.graph.hostfiles.write_through = True
        # The largest reply a client gets (qemu-io's output is refused before
        # it is made when it would be larger).
        daemon.max_output = cfg.max_output
        dispatcher = Dispatcher(daemon)   # links itself to the daemon
        self._table = dispatcher.table
        self._daemon = daemon
        self._execute = dispatcher.execute
        self._qmp_error = dispatcher.qmp_error
        return dispatcher.execute

    def execute(self, client: Client, req: Any) -> bytes | Stepwise:
        """Run one command; returns the reply bytes (never raises), or the
        command's remaining work for :meth:`run_long`."""
        session = client.session
        self._running_for = client
        try:
            run = self._execute or self._load_dispatcher()
            if req.name == "quit":
                self._daemon.quit_reply_first = client.stdio
            result = run(req.name, req.arguments, oob=req.oob, preencoded=True, stepwise=True)
            if result.__class__ is Stepwise:
                return result
            reply = session.reply(req, result)
        except Exception as e:
            return self._error_reply(session, req, e)
        finally:
            self._running_for = None
        return self._finish(session, req, reply)

    def _error_reply(self, session: Session, req: Any, e: Exception) -> bytes:
        """The reply to a command that raised ``e``: its QMP error, worded by
        the daemon's profile as the dispatcher words it (a long command's
        later steps raise theirs here, outside the dispatcher), or qmpd's
        internal error."""
        err = self._qmp_error(e) if self._qmp_error is not None else None
        if err is None and isinstance(e, QMPError):
            err = e     # no dispatcher yet: nothing to word it with
        if err is None:
            return self._internal_error(session, req, e)
        return session.error(req, err.cls, err.desc)

    def _after_reply(self, fn: Callable[[], None]) -> None:
        """The daemon's ``after_reply``: run ``fn`` once the command under way
        has finished and its reply is queued -- before its client's next
        command is read (the reader runs what is pending), or from the event
        loop when the reply went out another way."""
        try:
            token = trio.lowlevel.current_trio_token()
        except RuntimeError:    # outside the event loop (no reply under way)
            fn()
            return
        self.after_pending.append(fn)
        token.run_sync_soon(self.run_after_reply)

    def run_after_reply(self) -> None:
        """Run the callables queued by ``after_reply``, oldest first."""
        while self.after_pending:
            fn = self.after_pending.pop(0)
            try:
                fn()
            except Exception:   # never let a callback kill the loop
                log("internal error after a reply:\n" + traceback.format_exc())

    def loop_turn_wanted(self) -> bool:
        """Whether work waits for the event loop (a kicked job runner, an
        after-reply callback): a client's fast path must not read its next
        command first, or jobs would stand still while commands stream in."""
        return bool(self.after_pending) or self.job_runner.wants_turn()

    async def give_loop_turn(self) -> None:
        """Let the work that waits for the event loop run before the next
        command: QEMU's monitor yields to the main loop between two commands,
        so a job kicked (or a timer expired) by one command has moved before
        the next is dispatched.  Without this, a command already read when the
        job runner became runnable raced it in trio's (randomised) batch order:
        a query after drive-mirror saw the first copies or not, by chance."""
        # Bounded: the runner's timer may round a hair later than the job
        # clock's deadline; a few hundred turns are far longer than that.
        for _ in range(GIVE_TURN_LIMIT):
            await trio.lowlevel.checkpoint()
            if not self.loop_turn_wanted():
                return

    def _internal_error(self, session: Session, req: Any, e: Exception) -> bytes:
        log(f"internal error in command {req.name!r}:\n" + traceback.format_exc())
        return session.error(req, "GenericError",
                             f"qmpd internal error in '{req.name}': {type(e).__name__}: {e}")

    def _finish(self, session: Session, req: Any, reply: bytes) -> bytes:
        """The reply as sent: refused if larger than --max-output; quit's
        cleanup."""
        limit = self.config.max_output
        if len(reply) > limit:
            reply = session.error(req, "GenericError", reply_too_large(len(reply), limit))
        daemon = self._daemon
        if daemon.quit_requested:
            # Daemon-side cleanup (QEMU cancels its block jobs): its events
            # reach socket clients ahead of the quit reply, a stdio client after.
            def cleanup() -> None:
                daemon.jobs.cancel_all()
                self.request_shutdown()
            if daemon.quit_reply_first:
                daemon.after_reply(cleanup)
            else:
                cleanup()
        return reply

    async def run_long(self, client: Client, req: Any, work: Stepwise) -> bytes | list[bytes]:
        """Run ``work`` a step at a time, every other task running in between;
        the reply (as pieces when it is a long one)."""
        session = client.session
        self.long = work
        self.long_client = client
        self._long_done = trio.Event()
        try:
            while True:
                self._running_for = client
                try:
                    if work.step():
                        break
                finally:
                    self._running_for = None
                await trio.lowlevel.checkpoint()
            result = work.result
            if result.__class__ is PreencodedParts:
                if result.size > self.config.max_output:
                    return session.error(req, "GenericError",
                                         reply_too_large(result.size, self.config.max_output))
                parts = session.reply_parts(req, result)
                if result.size > SMALL_REPLY:
                    return parts
                reply = b"".join(parts)   # goes out at once, as any short reply
            else:
                reply = session.reply(req, result)
        except Exception as e:
            return self._error_reply(session, req, e)
        finally:
            work.close()
            self.long = None
            self.long_client = None
            self._long_done.set()
            # Queries cached while it ran (beside a read through a filter
            # that changes nothing visible) are not trusted after it.
            self._daemon.graph.generation += 1
        return self._finish(session, req, reply)

    def _may_run_beside_long(self, req: Any) -> bool:
        work = self.long
        if work is None:
            return True
        info = self._table.get(req.name)
        if info is None or info.blockless:
            return True     # an error reply, or nothing of the block layer
        return info.pure and not work.writes

    async def wait_beside_long(self, client: Client, req: Any) -> None:
        """Hold ``req`` of ``client`` while another client's long command is
        in progress and ``req`` could see its work half done."""
        while (self.long is not None and self.long_client is not client
               and not self._may_run_beside_long(req)):
            await self._long_done.wait()

    # ------------------------------------------------------------ events

    def broadcast(self, name: str, data: dict | None, ts: tuple[int, int]) -> None:
        """The daemon's event sink: queue the event for every negotiated client."""
        msg = encode_event(name, data, ts)
        source = self._running_for
        for client in tuple(self.clients):
            if client is source:
                client.push(msg)
            elif client.session.negotiated:
                client.push_event(msg)

    def emit(self, name: str, data: dict | None = None) -> None:
        if self._daemon is not None:
            self._daemon.emit(name, data)
        else:
            self.broadcast(name, data, _timestamp())

    # ------------------------------------------------------------ lifecycle

    def flush_host_files(self) -> None:
        """At exit, as QEMU's bdrv_close_all: what was written reaches the files."""
        daemon = self._daemon
        if daemon is not None and self.config.host_writes:
            daemon.graph.hostfiles.flush_all()

    def request_shutdown(self) -> None:
        self.quitting = True
        self._shutdown.set()

    async def _client_task(self, rstream: Any, wstream: Any, rfd: int = -1, wfd: int = -1,
                           greeted: bool = False, stdio: bool = False) -> None:
        self._next_cid += 1
        client = Client(self, self._next_cid, rstream, wstream, rfd, wfd)
        client.stdio = stdio
        self.clients.add(client)
        if self.tracer is not None:
            self.tracer.log(client.cid, "connect", b"")
        try:
            await client.run(greeted)
        except Exception:
            log(f"client {client.cid}: unexpected error, disconnected\n"
                + traceback.format_exc())
        finally:
            self.clients.discard(client)
            if self.tracer is not None:
                self.tracer.log(client.cid, "disconnect", b"")
            for stream in {id(rstream): rstream, id(wstream): wstream}.values():
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(stream)

    async def _accept_unix(self, listener: UnixListener, nursery: trio.Nursery) -> None:
        sock = trio.socket.from_stdlib_socket(listener.sock)
        while True:
            try:
                conn, _ = await sock.accept()
            except OSError as e:
                # e.g. EMFILE: keep serving the clients we have.
                log(f"accept on {listener.path} failed: {e}")
                await trio.sleep(0.1)
                continue
            if len(self.clients) >= self.config.max_clients:
                log(f"refusing a connection on {listener.path}: "
                    f"{self.config.max_clients} clients already connected")
                # Say why in QMP's own error shape (a client expecting a
                # greeting shows it), then close.  A fresh socket's buffer
                # has room for one line, so this never blocks.
                try:
                    os.write(conn.fileno(), self._refusal)
                except OSError:
                    pass
                conn.close()
                continue
            stream = trio.SocketStream(conn)
            fd = conn.fileno()
            nursery.start_soon(self._client_task, stream, stream, fd, fd)

    async def _serve_connected(self, conn: Any, count: int) -> None:
        """A monitor qmpd connected out to (QEMU's client-mode chardev).  When
        every such monitor has hung up and qmpd serves nothing else, the
        harness that launched it is gone: exit rather than linger."""
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(conn))
        fd = conn.fileno()
        await self._client_task(stream, stream, fd, fd, False)
        self._connected_gone += 1
        if (self._connected_gone == count and not self.unix_endpoints
                and not any(e.kind == "stdio" for e in self.config.endpoints)):
            self.request_shutdown()

    async def _serve_stdio(self) -> None:
        rstream = trio.lowlevel.FdStream(os.dup(0))
        wstream = trio.lowlevel.FdStream(os.dup(1))
        await self._client_task(rstream, wstream, rstream.fileno(), wstream.fileno(),
                                stdio=True)
        if not self.unix_endpoints:
            # The only client is gone: nothing left to serve.
            self.request_shutdown()

    async def _watch_signals(self) -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                if self.quitting and self._root is not None:
                    # A second signal: do not wait for slow clients any longer.
                    self._root.cancel_scope.cancel()
                    return
                log(f"terminating on signal {signum}")
                self.emit("SHUTDOWN", {"guest": False, "reason": "host-signal"})
                self.request_shutdown()

    def run_startup(self) -> bool:
        """-object, -blockdev, -drive, -device: False (after QEMU's message) if one fails."""
        # The command modules come with the dispatcher, after the greeting
        # (see _load_dispatcher), not with this module.
        from qmpd.commands.devices import device_option
        from qmpd.commands.drive import drive_new

        cfg = self.config
        if not cfg.startup and not cfg.host_writes:
            return True
        self._load_dispatcher()
        assert self._execute is not None
        profile = self._daemon.graph.profile
        for item in cfg.startup:
            try:
                if item.command == "device":
                    args, typed = device_args(item, profile.device_option_json)
                    if not typed and profile.warns_short_form_booleans:
                        for warning in item.warnings:
                            log(f"{item.where}: {warning}")
                    device_option(self._daemon, args, typed)
                    continue
                if profile.warns_short_form_booleans:
                    for warning in item.warnings:
                        log(f"{item.where}: {warning}")
                args = resolve_keyval(item, self._daemon.schema.validate)
                if item.command == "drive":
                    drive_new(self._daemon, args)
                else:
                    self._execute(item.command, args)
            except QMPError as e:
                log(f"{item.where}: {e.desc}" + (f"\n{e.hint}" if e.hint else ""))
                return False
            except Exception as e:      # UsageError of keyval typing, mostly
                desc = getattr(e, "desc", None) or str(e)
                log(f"{item.where}: {desc}")
                return False
        return True

    async def _qtest_task(self, sock: Any, listener: Any) -> None:
        if listener is not None:
            lsock = trio.socket.from_stdlib_socket(listener.sock)
            conn, _ = await lsock.accept()
        else:
            conn = trio.socket.from_stdlib_socket(sock)
        stream = trio.SocketStream(conn)
        # QEMU logs the protocol on stderr when no -qtest-log is given.
        session = QtestSession(self._step_job_clock, log=sys.stderr)
        session.opened()
        buf = b""
        try:
            while True:
                data = await stream.receive_some(READ_SIZE)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    reply = session.handle_logged(line.decode("utf-8", "replace"))
                    if reply:
                        await stream.send_all(reply.encode())
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return
        finally:
            session.closed()
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)

    def _step_job_clock(self, ns: int) -> None:
        """qtest moved the virtual clock: a virtual job clock follows."""
        runner = self.job_runner
        if runner.virtual:
            runner.step(ns)

    async def main(self, listeners: list[UnixListener],
                   accepted: list[Any] | None = None, connected: list[Any] | None = None,
                   qtest: Any = None, qtest_listener: Any = None) -> None:
        async with trio.open_nursery() as root:
            self._root = root
            # The job runner lives in the root nursery, so a client's
            # disconnect does not stop the jobs it started.
            await root.start(self.job_runner.run)
            if not self.run_startup():
                self.exit_status = 1
                root.cancel_scope.cancel()
                return
            root.start_soon(self._watch_signals)
            if qtest is not None or qtest_listener is not None:
                self._daemon.qtest_enabled = True
                root.start_soon(self._qtest_task, qtest, qtest_listener)
            async with trio.open_nursery() as clients:
                async with trio.open_nursery() as accept:
                    for conn in accepted or ():
                        stream = trio.SocketStream(trio.socket.from_stdlib_socket(conn))
                        fd = conn.fileno()
                        clients.start_soon(self._client_task, stream, stream, fd, fd, True)
                    for conn in connected or ():
                        conn.setblocking(False)
                        clients.start_soon(self._serve_connected, conn, len(connected or ()))
                    for listener in listeners:
                        accept.start_soon(self._accept_unix, listener, clients)
                    if any(e.kind == "stdio" for e in self.config.endpoints):
                        clients.start_soon(self._serve_stdio)
                    await self._shutdown.wait()
                    accept.cancel_scope.cancel()
                for client in tuple(self.clients):
                    client.finish()
                # Each writer drops its client when it stops reading (see
                # Client._send); this bounds the whole flush.
                clients.cancel_scope.deadline = trio.current_time() + SHUTDOWN_CAP
            root.cancel_scope.cancel()


def serve(config: ServerConfig, listeners: list[UnixListener],
          accepted: list[socket.socket], connected: list[socket.socket] | None = None,
          qtest: socket.socket | None = None, qtest_listener: Any = None) -> int:
    """Run the server on what :mod:`qmpd.server.startup` prepared: the
    listening sockets, the connections it greeted already and the monitors
    and qtest socket it connected out to (which the server now owns); the
    caller removes the sockets and the pid file."""
    server = Server(config)
    try:
        trio.run(server.main, listeners, accepted, connected or [], qtest, qtest_listener)
    finally:
        if server.tracer is not None:
            server.tracer.close()
        server.flush_host_files()
    return server.exit_status




__all__ = ["Client", "Endpoint", "Server", "serve"]
