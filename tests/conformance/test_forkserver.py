"""The conformance fork server stands in for fresh processes faithfully:
qmpd-img's output and exit codes, qmpd's socket, signals and exit status
reach the replay as they would from ``python -m qmpd`` -- otherwise the
conformance suite would compare something other than what users run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import pytest

from tests.conformance import forkserver


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    env_before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(forkserver.CLIENT.parent.parent.parent)
    try:
        with forkserver.running(str(tmp_path_factory.mktemp("fork"))) as path:
            yield path
    finally:
        if env_before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = env_before


def run_img(server: str, args: str, cwd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(f"{forkserver.client_command('img', server)} {args}", shell=True,
                          cwd=cwd, capture_output=True, text=True, **kw)


def test_qmpd_img_runs_in_the_callers_directory_with_its_streams(server, tmp_path):
    r = run_img(server, "create -f qcow2 disk.qcow2 1M", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Formatting 'disk.qcow2', fmt=qcow2")
    assert (tmp_path / "disk.qcow2").exists()


def test_qmpd_img_failure_keeps_its_exit_code_and_stderr(server, tmp_path):
    r = run_img(server, "info missing.qcow2", tmp_path)
    assert r.returncode == 1
    assert "missing.qcow2" in r.stderr and "No such file or directory" in r.stderr


def test_qemu_io_reads_the_environment_of_the_caller(server, tmp_path):
    run_img(server, "create -f raw d.raw 64k", tmp_path)
    r = run_img(server, "io -f raw -c 'write -P 0x5a 0 4k' \"$IMG\"", tmp_path,
                env=dict(os.environ, IMG="d.raw"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "d.raw").read_bytes()[:4096] == b"\x5a" * 4096


def start_qmpd(server: str, sock) -> subprocess.Popen:
    proc = subprocess.Popen(f"exec {forkserver.client_command('qmpd', server)} --socket {sock}",
                            shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 20
    while not os.path.exists(sock):
        assert proc.poll() is None and time.monotonic() < deadline, "qmpd did not start"
        time.sleep(0.01)
    return proc


def greeting(sock) -> bytes:
    s = socket.socket(socket.AF_UNIX)
    s.connect(str(sock))
    try:
        return s.recv(4096)
    finally:
        s.close()


def test_qmpd_sigterm_to_the_client_reaches_the_daemon(server, tmp_path):
    sock = tmp_path / "q.sock"
    proc = start_qmpd(server, sock)
    assert b'"QMP"' in greeting(sock)
    proc.send_signal(signal.SIGTERM)
    # QEMU (and qmpd) exit 0 after a SIGTERM, saying so on stderr.
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert b"terminating on signal 15" in out


def test_killing_the_client_kills_the_daemon(server, tmp_path):
    sock = tmp_path / "q.sock"
    proc = start_qmpd(server, sock)
    assert b'"QMP"' in greeting(sock)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 10
    while True:
        try:
            greeting(sock)
        except OSError:
            break      # nobody listens any more
        assert time.monotonic() < deadline, "the daemon outlived its client"
        time.sleep(0.05)
