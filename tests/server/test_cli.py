"""Command-line parsing: QEMU's spellings accepted, everything else refused
with a message that says what to do instead."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qmpd.cli import UsageError, parse_args, split_qemu_opts
from qmpd.server.config import Endpoint

REPO = Path(__file__).resolve().parent.parent.parent


def test_native_socket_option():
    cfg = parse_args(["--socket", "/tmp/x.sock"])
    assert cfg.endpoints == [Endpoint("unix", "/tmp/x.sock")]
    assert cfg.qemu_version == (10, 0, 2)   # the default: what users run today
    assert cfg.socket_mode == 0o600


@pytest.mark.parametrize("spec", [
    "unix:/tmp/q.sock,server=on,wait=off",
    "unix:/tmp/q.sock,server,nowait",
    "unix:/tmp/q.sock,wait=off,server=on",
])
def test_qemu_qmp_spellings(spec):
    cfg = parse_args(["-machine", "none", "-nodefaults", "-display", "none", "-qmp", spec])
    assert cfg.endpoints == [Endpoint("unix", "/tmp/q.sock")]


def test_libvirt_chardev_and_mon():
    cfg = parse_args(["-S", "-nographic",
                      "-chardev", "socket,id=charmonitor,path=/tmp/m.sock,server=on,wait=off",
                      "-mon", "chardev=charmonitor,id=monitor,mode=control"])
    assert cfg.endpoints == [Endpoint("unix", "/tmp/m.sock")]
    assert cfg.start_paused


def test_stdio_monitor():
    assert parse_args(["-qmp", "stdio"]).endpoints == [Endpoint("stdio")]


def test_ignored_qemu_options_and_extras():
    cfg = parse_args(["-M", "q35", "-accel", "kvm", "-accel", "tcg", "--socket", "/tmp/a",
                      "--qemu-version", "7.2.5", "--extensions", "--hmp-output", "stdout",
                      "--socket-mode", "660", "-name", "guest=vm1,debug-threads=on"])
    assert cfg.qemu_version == (7, 2, 5)
    assert cfg.extensions and cfg.hmp_output == "stdout"
    assert cfg.socket_mode == 0o660
    assert cfg.vm_name == "vm1"


def test_commas_are_escaped_by_doubling():
    assert split_qemu_opts("unix:/tmp/a,,b,server") == ["unix:/tmp/a,b", "server"]


@pytest.mark.parametrize("argv, words", [
    ([], "nowhere to serve"),
    (["-qmp", "tcp:localhost:4444,server"], "unix:PATH"),
    (["-qmp", "unix:/tmp/a,server,telnet"], "'telnet' is not supported"),
    (["-chardev", "socket,id=c,path=/tmp/a,server=on", "-mon", "chardev=c"], "mode=control"),
    (["-chardev", "socket,id=c,path=/tmp/a,server=on", "-mon", "chardev=d,mode=control"],
     "no -chardev with id=d"),
    (["--socket", "/tmp/a", "-display", "gtk"], "-display none"),
    (["--socket", "/tmp/a", "-incoming", "defer"], "cannot receive a migration"),
    (["--socket", "/tmp/a", "-vga", "std"], "-vga none"),
    (["--socket", "/tmp/a", "-serial", "stdio"], "-serial null"),
    (["--socket", "/tmp/a", "-qtest", "tcp:localhost:3000"], "unix:PATH"),
    (["--socket", "/tmp/a", "-blockdev", "null-co,node-name"], "Expected '='"),
    (["--socket", "/tmp/a", "-kernel", "vmlinuz"], "-kernel: not supported"),
    (["--socket", "/tmp/a", "--qemu-version", "seven"], "MAJOR.MINOR.MICRO"),
    # A release series without a profile is refused, naming the ones there are.
    (["--socket", "/tmp/a", "--qemu-version", "6.0.0"],
     r"no profile for QEMU 6\.0 \(it has: .*7\.2"),
    (["--socket", "/tmp/a", "--socket-mode", "999"], "octal"),
    (["-qmp", "stdio", "-qmp", "stdio"], "only one monitor"),
])
def test_refused_command_lines(argv, words):
    with pytest.raises(UsageError, match=words):
        parse_args(argv)


def test_refusal_exits_1_with_a_message_and_creates_nothing(short_tmp):
    sock = f"{short_tmp}/q.sock"
    proc = subprocess.run([sys.executable, "-m", "qmpd", "--socket", sock, "-soundhw", "hda"],
                          cwd=REPO, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 1
    assert proc.stderr.startswith("qmpd: -soundhw: not supported by qmpd")
    assert not Path(sock).exists()
