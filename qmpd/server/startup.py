"""Start-up without trio: the listening sockets, the pid file, and the
greeting for clients that connect while the event loop is still loading.

Importing trio is most of qmpd's start-up time (about 110 ms of 150 ms on an
idle machine).  So the sockets are created first, trio and the server are
imported in a background thread, and meanwhile this module accepts
connections and sends them their greeting itself (it only needs the version
numbers).  Once the import is done, the accepted sockets are handed to the
trio server as clients that have been greeted already.  A client sees the
same bytes as ever, just sooner.

Plain blocking code: runs before the event loop exists.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading

from qmpd.server.config import ServerConfig
from qmpd.server.greeting import greeting_bytes, refusal_bytes
from qmpd.server.listener import ListenError, UnixListener

# While the loader thread runs, how often (ms) the accept loop looks whether
# it has finished, and the interpreter's thread switch interval (s): short,
# so that a connecting client's greeting does not wait for the import.
POLL_MS = 2
SWITCH_INTERVAL = 0.0005


def log(msg: str) -> None:
    print(f"qmpd: {msg}", file=sys.stderr, flush=True)


class Prepared:
    """What start-up made, for the server to use and for cleanup to undo."""

    def __init__(self) -> None:
        self.listeners: list[UnixListener] = []
        self.pidfile_written = False
        # Connections accepted and greeted before the server ran.
        self.accepted: list[socket.socket] = []
        # Monitors qmpd connected out to (client-mode chardevs), not greeted yet.
        self.connected: list[socket.socket] = []
        # The qtest connection (-qtest), if any, or the socket it is accepted on.
        self.qtest: socket.socket | None = None
        self.qtest_listener: UnixListener | None = None


def connect_out(path: str, where: str) -> socket.socket:
    """A client-mode socket chardev: QEMU connects at start-up and fails at
    once if nobody listens."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise ListenError(f"{where}: Failed to connect to '{path}': {e.strerror}") from None
    return sock


def inherited(fd: str, where: str) -> socket.socket:
    """A socket chardev's ``fd=``: a connected socket the harness passed down."""
    try:
        return socket.socket(fileno=int(fd))
    except OSError as e:
        raise ListenError(f"{where}: fd {fd} is not a socket: {e.strerror}") from None


def prepare(config: ServerConfig, prep: Prepared) -> bool:
    """Create the sockets and the pid file; False (after saying why) on failure."""
    try:
        for ep in config.endpoints:
            if ep.kind == "unix":
                prep.listeners.append(UnixListener(ep.path, config.socket_mode))
            elif ep.kind == "connect":
                prep.connected.append(connect_out(ep.path, f"-chardev path={ep.path}"))
            elif ep.kind == "fd":
                prep.connected.append(inherited(ep.path, f"-chardev fd={ep.path}"))
        qt = config.qtest
        if qt is not None:
            if qt.kind == "connect":
                prep.qtest = connect_out(qt.path, f"-qtest unix:path={qt.path}")
            elif qt.kind == "fd":
                prep.qtest = inherited(qt.path, f"-chardev fd={qt.path}")
            else:
                prep.qtest_listener = UnixListener(qt.path, config.socket_mode)
    except ListenError as e:
        log(str(e))
        return False
    if config.pidfile:
        try:
            with open(config.pidfile, "w") as f:
                f.write(f"{os.getpid()}\n")
            prep.pidfile_written = True
        except OSError as e:
            log(f"cannot write pidfile {config.pidfile}: {e.strerror}")
            return False
    return True


def cleanup(config: ServerConfig, prep: Prepared) -> None:
    for conn in prep.accepted + prep.connected:
        conn.close()
    if prep.qtest is not None:
        prep.qtest.close()
    if prep.qtest_listener is not None:
        prep.qtest_listener.remove()
    for listener in prep.listeners:
        listener.remove()
    if prep.pidfile_written and config.pidfile:
        try:
            os.unlink(config.pidfile)
        except OSError:
            pass


def greet_while_loading(config: ServerConfig, prep: Prepared) -> BaseException | None:
    """Import the trio server in a thread; accept and greet until it is done.
    Returns the import's exception, if any."""
    failure: list[BaseException] = []

    def load() -> None:
        try:
            import qmpd.server.app  # noqa: F401
        except BaseException as e:  # re-raised in the main thread
            failure.append(e)

    loader = threading.Thread(target=load, name="qmpd-import", daemon=True)
    by_fd = {lst.sock.fileno(): lst for lst in prep.listeners}
    poller = select.poll()
    for fd, lst in by_fd.items():
        lst.sock.setblocking(False)
        poller.register(fd, select.POLLIN)
    greeting = greeting_bytes(config)
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        loader.start()
        while loader.is_alive():
            for fd, _ in poller.poll(POLL_MS):
                try:
                    conn, _ = by_fd[fd].sock.accept()
                except OSError:
                    continue
                full = len(prep.accepted) >= config.max_clients
                try:
                    # A fresh socket's send buffer always has room for one line.
                    conn.send(refusal_bytes(config) if full else greeting)
                except OSError:
                    conn.close()
                    continue
                if full:
                    conn.close()
                else:
                    conn.setblocking(False)
                    prep.accepted.append(conn)
        loader.join()
    finally:
        sys.setswitchinterval(old_interval)
        for lst in prep.listeners:
            lst.sock.setblocking(True)
    return failure[0] if failure else None


def run(config: ServerConfig) -> int:
    """Serve until ``quit`` or a signal; returns the process exit status."""
    prep = Prepared()
    try:
        if not prepare(config, prep):
            return 1
        if prep.listeners:
            err = greet_while_loading(config, prep)
            if err is not None:
                raise err
        # startup -> app, never back: the server gets the sockets as arguments.
        # Imported here, not at the top: greet_while_loading's thread has just
        # imported it (trio and all) while the first clients were greeted.
        from qmpd.server.app import serve

        # Handed over: from now on the server closes them, not cleanup().
        accepted, prep.accepted = prep.accepted, []
        connected, prep.connected = prep.connected, []
        qtest, prep.qtest = prep.qtest, None
        return serve(config, prep.listeners, accepted, connected, qtest,
                     prep.qtest_listener)
    except KeyboardInterrupt:
        return 0
    finally:
        cleanup(config, prep)
