"""What the daemon may do to the host: create its socket (mode 0600 unless
``--socket-mode`` says otherwise), its pid file and the trace file named on
its command line, and nothing else.  Image files named in ``filename`` are
only ever opened for reading: guest writes stay in memory.

Checked without strace: every file's bytes and mtime before and after a
session of blockdev-add, qemu-io writes, reopen and blockdev-del, in a
directory that is also the daemon's cwd, HOME and TMPDIR.  The permission
tests run the daemon as an unprivileged user (as root they would prove
nothing); they are skipped, with the reason, where that is not possible.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, Conn

SETPRIV = shutil.which("setpriv")


def img(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "qmpd.img.cli", "create", "-q", *args],
                   check=True, stdout=subprocess.DEVNULL, cwd=REPO)


def tree(root: str) -> dict[str, tuple[str, int, int]]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISSOCK(st.st_mode):
                out[p] = ("socket", 0, st.st_mode)
                continue
            with open(p, "rb") as f:
                out[p] = (hashlib.sha256(f.read()).hexdigest(), st.st_mtime_ns, st.st_mode)
    return out


@pytest.fixture
def workdir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="qmpd-sec-", dir="/tmp")
    os.chmod(d, 0o755)
    img("-f", "qcow2", f"{d}/base.qcow2", "1M")
    img("-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", f"{d}/top.qcow2", "1M")
    img("-f", "raw", f"{d}/disk.img", "1M")
    for name in ("home", "tmp", "run"):
        os.mkdir(f"{d}/{name}")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def start(workdir: str, sock: str, extra: list[str], preexec: list[str] | None = None,
          ) -> subprocess.Popen:
    env = dict(os.environ, HOME=f"{workdir}/home", TMPDIR=f"{workdir}/tmp",
               PYTHONDONTWRITEBYTECODE="1")
    argv = (preexec or []) + [sys.executable, "-m", "qmpd", "--socket", sock, *extra]
    proc = subprocess.Popen(argv, cwd=workdir, env=dict(env, PYTHONPATH=str(REPO)),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    while not os.path.exists(sock):
        if proc.poll() is not None:
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "exited")
        assert time.monotonic() < deadline, "no socket"
        time.sleep(0.01)
    return proc


def session(sock: str, d: str) -> None:
    conn = Conn(sock)
    conn.read()
    conn.negotiate()
    ok = {"return": {}}
    assert conn.cmd("blockdev-add", {"driver": "qcow2", "node-name": "top",
                                     "file": {"driver": "file", "filename": f"{d}/top.qcow2"}}) == ok
    assert conn.cmd("blockdev-add", {"driver": "raw", "node-name": "disk",
                                     "file": {"driver": "file", "filename": f"{d}/disk.img"}}) == ok
    for node in ("top", "disk"):
        out = conn.cmd("human-monitor-command",
                       {"command-line": f'qemu-io {node} "write -P 0x5a 0 64k"'})["return"]
        assert out.startswith("wrote 65536/65536 bytes")
    assert conn.cmd("blockdev-reopen", {"options": [
        {"driver": "qcow2", "node-name": "top", "file": conn.cmd(
            "query-named-block-nodes")["return"][-1]["node-name"], "backing": None}]}) == ok
    assert conn.cmd("blockdev-del", {"node-name": "top"}) == ok
    assert conn.cmd("blockdev-del", {"node-name": "disk"}) == ok
    conn.cmd("stop")
    conn.cmd("cont")
    conn.send('{"execute": "quit"}\n')
    conn.read_until_eof()
    conn.close()


def test_daemon_writes_only_socket_pidfile_and_trace(workdir: str) -> None:
    d = workdir
    sock, pid, trace = f"{d}/run/q.sock", f"{d}/run/q.pid", f"{d}/run/trace.log"
    before = tree(d)
    proc = start(d, sock, ["--pidfile", pid, "--trace", trace])
    # Once a command has run, the server is fully up (the trace file is
    # opened when the event loop starts).
    probe = Conn(sock)
    probe.read()
    probe.negotiate()
    probe.close()
    during = tree(d)
    assert set(during) - set(before) == {sock, pid, trace}
    assert stat.S_IMODE(during[sock][2]) == 0o600
    assert Path(pid).read_text().strip() == str(proc.pid)
    session(sock, d)
    assert proc.wait(20) == 0
    after = tree(d)
    # The socket and pid file are gone; only the trace file stays.
    assert set(after) - set(before) == {trace}
    del after[trace]
    assert after == before, "a host file was modified"


def _unprivileged() -> tuple[int, int] | None:
    if os.geteuid() != 0 or SETPRIV is None:
        return None
    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return pw.pw_uid, pw.pw_gid


needs_setpriv = pytest.mark.skipif(
    _unprivileged() is None,
    reason="needs root and setpriv to run the daemon as the unprivileged user 'nobody'")


def _as(uid: int, gid: int) -> list[str]:
    return [SETPRIV or "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]


@needs_setpriv
def test_unprivileged_daemon_opens_images_read_only_and_keeps_its_socket_private(
        workdir: str) -> None:
    uid, gid = _unprivileged() or (0, 0)
    d = workdir
    # QEMU (and so qmpd) refuses a read-write node on a file the user may not
    # write, so the images are world-writable; their directory is root's and
    # closed to the daemon's user, so the daemon can only create files in run/.
    for name in ("base.qcow2", "top.qcow2", "disk.img"):
        os.chmod(f"{d}/{name}", 0o666)
    os.chown(f"{d}/run", uid, gid)
    for name in ("home", "tmp"):
        os.chown(f"{d}/{name}", uid, gid)
    sock = f"{d}/run/q.sock"
    before = tree(d)
    proc = start(d, sock, ["--pidfile", f"{d}/run/q.pid"], preexec=_as(uid, gid))
    st = os.stat(sock)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (uid, 0o600)
    # Another unprivileged user cannot connect to the 0600 socket.
    probe = subprocess.run(
        _as(uid + 1 if uid + 1 != 0 else 2, gid) + [sys.executable, "-c",
            "import socket,sys\ns=socket.socket(socket.AF_UNIX)\n"
            "try:\n s.connect(sys.argv[1])\nexcept PermissionError:\n sys.exit(3)\n",
            sock], timeout=20)
    assert probe.returncode == 3
    session(sock, d)
    assert proc.wait(20) == 0
    assert tree(d) == before


@needs_setpriv
def test_socket_mode_option_opens_the_socket_to_others(workdir: str) -> None:
    uid, gid = _unprivileged() or (0, 0)
    d = workdir
    os.chown(f"{d}/run", uid, gid)
    os.chmod(f"{d}/run", 0o755)
    sock = f"{d}/run/q.sock"
    proc = start(d, sock, ["--socket-mode", "0666"], preexec=_as(uid, gid))
    try:
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o666
        probe = subprocess.run(
            _as(uid + 1 if uid + 1 != 0 else 2, gid) + [sys.executable, "-c",
                "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\n"
                "sys.exit(0 if s.recv(4096).startswith(b'{\"QMP\"') else 4)\n", sock],
            timeout=20)
        assert probe.returncode == 0
    finally:
        proc.terminate()
        proc.wait(20)


def test_root_socket_is_private_by_default(qmpd) -> None:  # noqa: ANN001
    assert stat.S_IMODE(os.stat(qmpd.sock).st_mode) == 0o600
    s = socket.socket(socket.AF_UNIX)
    s.connect(qmpd.sock)
    s.close()
