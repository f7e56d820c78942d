"""A fork server for the conformance replay: qmpd and qmpd-img started by
forking one process that has already imported them.

Why: replaying ~1000 recordings starts ~1000 daemons and ~4000 ``qemu-img`` /
``qemu-io`` setup lines.  Each fresh Python spends most of its CPU importing
(and, with ``PYTHONDONTWRITEBYTECODE``, compiling) qmpd; on a 2-core machine
that was most of ``make test``.  A forked child of a process that imported
everything starts in a few milliseconds and runs the same code, in its own
process, on its own socket, with the caller's arguments, environment, working
directory and standard streams -- so what the replay observes is what a fresh
``python -m qmpd`` would do.

The pieces:

* :func:`serve` (``python -m tests.conformance.forkserver SOCKET``) imports
  qmpd, listens on a UNIX socket and, per request, forks a child that runs
  ``qmpd.cli.main`` or ``qmpd.img.cli.main`` with the request's argv.
* ``forkclient.py`` (run by the shims as ``python -S -I``: no site, no
  project imports, so it starts in ~15 ms) sends its argv, cwd, environment
  and its fds 0-2 (SCM_RIGHTS), then stands in for the child: it forwards
  SIGTERM/SIGINT/SIGHUP/SIGQUIT and exits as the child exited (same code, or
  the same signal).  If the client dies (SIGKILL of its process group), the
  server kills the child: nothing outlives the replay.

Wire format: the client sends a 4-byte big-endian length and a JSON request
``{"prog": "qmpd"|"img", "argv": [...], "cwd": ..., "env": {...}}`` with its
three fds attached; the server answers the child's pid (4 bytes) and, when
the child ends, its raw wait status (4 bytes), then closes the connection.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import pkgutil
import selectors
import shlex
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

CLIENT = Path(__file__).with_name("forkclient.py")
# Modules not loaded in the server: the iotests harness reads the environment
# at import time, and ``__main__`` runs the daemon when imported.
SKIP = ("qmpd.__main__", "qmpd.testing")


def preload() -> None:
    """Import every module of qmpd (the daemon imports most of them lazily,
    at its first command), so that children find them loaded."""
    import qmpd

    for info in pkgutil.walk_packages(qmpd.__path__, "qmpd."):
        if info.name.startswith(SKIP):
            continue
        importlib.import_module(info.name)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def _read_request(conn: socket.socket) -> tuple[dict, list[int]]:
    head, fds, _flags, _addr = socket.recv_fds(conn, 4, 3)
    if len(head) < 4:
        head += _recv_exact(conn, 4 - len(head))
    (size,) = struct.unpack(">I", head)
    return json.loads(_recv_exact(conn, size)), fds


def _run_child(request: dict, fds: list[int]) -> int:
    """In the forked child: become the program the client asked for."""
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.set_wakeup_fd(-1)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    argv = request["argv"]
    if request["prog"] == "qmpd":
        import qmpd.cli

        sys.argv = [str(Path(qmpd.cli.__file__).with_name("__main__.py")), *argv]
        main = qmpd.cli.main
    else:
        import qmpd.img.cli

        sys.argv = ["-c", *argv]
        main = qmpd.img.cli.main
    try:
        code = main()
    except SystemExit as e:
        code = e.code
    except BaseException:  # noqa: BLE001 -- report as a fresh interpreter would
        import traceback

        traceback.print_exc()
        code = 1
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    return code


def _child(request: dict, fds: list[int]) -> None:
    code = 1
    try:
        code = _run_child(request, fds)
        atexit._run_exitfuncs()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def serve(path: str) -> None:
    """Serve fork requests on ``path`` until SIGTERM (or stdin closes)."""
    preload()
    # Nothing the children print may sit in the server's buffers at fork time.
    sys.stdout.flush()
    sys.stderr.flush()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    children: dict[int, socket.socket] = {}     # pid -> the client standing in for it
    print("ready", flush=True)
    while not stop:
        for key, _ in sel.select():
            if key.data == "accept":
                conn, _ = listener.accept()
                try:
                    request, fds = _read_request(conn)
                except (OSError, EOFError, ValueError):
                    conn.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    # The child keeps only its own streams.
                    sel.close()
                    for f in (listener, conn, *children.values()):
                        f.close()
                    signal.set_wakeup_fd(-1)
                    os.close(wake_r)
                    os.close(wake_w)
                    _child(request, fds)
                for fd in fds:
                    os.close(fd)
                conn.sendall(struct.pack(">i", pid))
                children[pid] = conn
                sel.register(conn, selectors.EVENT_READ, pid)
            elif key.data == "wake":
                os.read(wake_r, 4096)
            else:
                # The client went away (killed with its process group): so does its child.
                if not key.fileobj.recv(1):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(key.data, signal.SIGKILL)
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            conn = children.pop(pid, None)
            if conn is not None:
                sel.unregister(conn)
                with contextlib.suppress(OSError):
                    conn.sendall(struct.pack(">i", status))
                conn.close()
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def running(directory: str) -> Iterator[str]:
    """A fork server for the duration of the block; yields its socket path."""
    path = os.path.join(directory, "forkserver.sock")
    proc = subprocess.Popen([sys.executable, "-m", "tests.conformance.forkserver", path],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"the conformance fork server did not start ({line!r})")
        yield path
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def client_command(prog: str, path: str) -> str:
    """The shell words that run ``prog`` ("qmpd" or "img") through the server at ``path``."""
    return (f"{shlex.quote(sys.executable)} -S -I {shlex.quote(str(CLIENT))} "
            f"{shlex.quote(path)} {prog}")


if __name__ == "__main__":
    serve(sys.argv[1])
