"""Shared fixtures: a real ``python -m qmpd`` process on a short socket path,
and a small blocking QMP client for talking to it byte by byte.

Socket paths live under ``/tmp/qmpd-XXXXXX/`` because AF_UNIX paths stop at
107 bytes and pytest's ``tmp_path`` is often deeper than that.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parent.parent
# ``tests.*`` helpers (e.g. the conformance runner) import from the checkout
# root, whichever way pytest was started.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
# `make fuzz` runs the property-based tests with this profile.
settings.register_profile("fuzz", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])

# Upper bound for waiting on the daemon; tests never assert on durations.
WAIT = 20.0


def _inode(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class Conn:
    """A blocking QMP client that keeps every raw line it receives."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(WAIT)
        self.sock.connect(path)
        self._pending = b""
        self.events: list[dict] = []

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def read_line(self) -> bytes:
        """The next message as sent on the wire, ``\\r\\n`` included."""
        while b"\n" not in self._pending:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError(f"connection closed; unterminated data: {self._pending!r}")
            self._pending += data
        line, _, self._pending = self._pending.partition(b"\n")
        return line + b"\n"

    def read(self) -> dict:
        return json.loads(self.read_line())

    def reply(self) -> dict:
        """The next message that is not an event (events are kept in ``events``)."""
        while True:
            msg = self.read()
            if "event" in msg:
                self.events.append(msg)
                continue
            return msg

    def cmd(self, name: str, arguments: dict | None = None, id: Any = None) -> dict:
        msg: dict[str, Any] = {"execute": name}
        if arguments is not None:
            msg["arguments"] = arguments
        if id is not None:
            msg["id"] = id
        self.send(json.dumps(msg) + "\n")
        return self.reply()

    def negotiate(self) -> None:
        assert self.cmd("qmp_capabilities") == {"return": {}}

    def read_until_eof(self) -> bytes:
        data = self._pending
        self._pending = b""
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                return data
            data += chunk

    def close(self) -> None:
        self.sock.close()


class Qmpd:
    """One qmpd process serving ``self.sock``."""

    def __init__(self, workdir: str, args: list[str], sock: str | None) -> None:
        self.workdir = workdir
        self.sock = sock or os.path.join(workdir, "qmp.sock")
        # A stale socket file may be there already: wait for a new one.
        self._old_inode = _inode(self.sock)
        self.stderr_path = os.path.join(workdir, f"stderr-{time.monotonic_ns()}.log")
        self._stderr = open(self.stderr_path, "wb")
        argv = [sys.executable, "-m", "qmpd"]
        if not any(a.startswith(("-qmp", "-chardev")) for a in args):
            argv += ["--socket", self.sock]
        # The suite's expectations were recorded on QEMU 7.2; a test of another
        # release (or of the default) says --qemu-version itself.
        if "--qemu-version" not in args:
            argv += ["--qemu-version", "7.2.22"]
        self.proc = subprocess.Popen(argv + args, cwd=REPO, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._stderr)
        self.conns: list[Conn] = []

    def wait_ready(self) -> Qmpd:
        deadline = time.monotonic() + WAIT
        while _inode(self.sock) in (None, self._old_inode):
            if self.proc.poll() is not None:
                raise RuntimeError(f"qmpd exited with {self.proc.returncode}: {self.stderr()}")
            if time.monotonic() > deadline:
                raise RuntimeError("qmpd did not create its socket")
            time.sleep(0.01)
        return self

    def stderr(self) -> str:
        self._stderr.flush()
        return Path(self.stderr_path).read_text(errors="replace")

    def connect(self, negotiate: bool = False) -> Conn:
        conn = Conn(self.sock)
        self.conns.append(conn)
        greeting = conn.read()
        assert "QMP" in greeting
        if negotiate:
            conn.negotiate()
        return conn

    def wait(self) -> int:
        return self.proc.wait(WAIT)

    def stop(self) -> None:
        for conn in self.conns:
            conn.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._stderr.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "conformance: replays recorded QEMU 7.2 scenarios against qmpd (slow)")


@pytest.fixture
def short_tmp() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="qmpd-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def start_qmpd(short_tmp: str) -> Iterator[Any]:
    """``start_qmpd(*args, sock=None, wait=True)`` -> a running :class:`Qmpd`."""
    started: list[Qmpd] = []

    def start(*args: str, sock: Any = None, wait: bool = True) -> Qmpd:
        q = Qmpd(short_tmp, list(args), sock)
        started.append(q)
        return q.wait_ready() if wait else q

    yield start
    for q in started:
        q.stop()


@pytest.fixture
def qmpd(start_qmpd: Any) -> Qmpd:
    return start_qmpd()
