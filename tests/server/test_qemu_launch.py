"""qmpd launched as QEMU's iotests launch QEMU (``QEMU_PROG=qmpd ./check``).

The harness probes the binary (``-machine help``, ``-M none -device help``,
``-drive format=help``), listens on the monitor and qtest sockets itself and
waits for QEMU to connect out, and gives block nodes, drives and devices on
the command line.  These tests play the harness's side over real sockets,
as QEMU 7.2's python/qemu/machine does.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qmpd.cli import UsageError, parse_args
from qmpd.launch import keyval, typed_keyval

REPO = Path(__file__).resolve().parent.parent.parent
WAIT = 20.0
IMG = [sys.executable, "-c", "import sys; from qmpd.img.cli import main; sys.exit(main())"]


def _qmpd(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qmpd", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=WAIT, **kw)


# ----------------------------------------------------------------- help probes

@pytest.mark.parametrize("args, machine", [
    ((), "pc-i440fx-10.0"),                               # the default release, 10.0.2
    (("--qemu-version", "7.2.22"), "pc-i440fx-7.2"),
    (("--qemu-version", "5.2.0"), "pc-i440fx-5.2"),
])
def test_machine_help_names_a_default_machine_as_iotests_reads_it(args, machine):
    out = _qmpd(*args, "-machine", "help").stdout
    lines = out.split("\n")
    # testenv.get_default_machine: the "(default)" line, then its alias.
    default = next(m for m in lines if m.endswith(" (default)")).split(" ", 1)[0]
    alias = next(m for m in lines if m.endswith(f" (alias of {default})"))
    assert default == machine and alias.split(" ", 1)[0] == "pc"
    assert "none                 empty machine" in lines


def test_device_help_lists_the_block_devices_iotests_look_for():
    out = _qmpd("-nodefaults", "-M", "none", "-device", "help").stdout
    assert 'name "virtio-blk-pci", bus PCI, alias "virtio-blk"' in out
    assert 'name "virtio-scsi-pci", bus PCI, alias "virtio-scsi"' in out


def test_drive_format_help_parses_as_supported_formats():
    out = _qmpd("-nodefaults", "-drive", "format=help").stdout
    # iotests.supported_formats(): line 0 (rw) and 1 (ro), words after the colon.
    rw = out.splitlines()[0].split(":")[1].split()
    ro = out.splitlines()[1].split(":")[1].split()
    assert {"qcow2", "raw", "file", "quorum", "throttle", "blkdebug"} <= set(rw)
    assert rw == ro


# ----------------------------------------------------------------- keyval

def test_keyval_values_take_the_schema_types():
    args = typed_keyval("blockdev-add", keyval(
        "driver=qcow2,node-name=top,read-only=on,file.driver=null-co,file.size=1M,"
        "file.node-name=n,,1"))
    assert args == {"driver": "qcow2", "node-name": "top", "read-only": True,
                    "file": {"driver": "null-co", "size": 1 << 20, "node-name": "n,1"}}


def test_keyval_members_of_lists_take_the_schema_types():
    # iotest stream-error-on-reset's -blockdev: blkdebug rules as a list
    args = typed_keyval("blockdev-add", keyval(
        "driver=blkdebug,node-name=dbg,inject-error.0.event=pwritev,"
        "inject-error.0.immediately=true,inject-error.0.once=on,"
        "inject-error.0.errno=5,image.driver=null-co"))
    assert args["inject-error"] == [{"event": "pwritev", "immediately": True, "once": True,
                                     "errno": 5}]


def test_keyval_implied_key_and_lists():
    assert keyval("iothread,id=io0", implied="qom-type") == {"qom-type": "iothread",
                                                            "id": "io0"}
    assert keyval("children.0=a,children.1=b") == {"children": ["a", "b"]}


# ----------------------------------------------------------------- the harness side

class Harness:
    """Listening monitor and qtest sockets, as QEMUMachine/QEMUQtestMachine make them."""

    def __init__(self, tmp: str) -> None:
        self.mon_path = os.path.join(tmp, "mon.sock")
        self.qtest_path = os.path.join(tmp, "qtest.sock")
        self.mon_l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.mon_l.bind(self.mon_path)
        self.mon_l.listen(1)
        self.mon_l.settimeout(WAIT)
        self.qt_l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.qt_l.bind(self.qtest_path)
        self.qt_l.listen(1)
        self.qt_l.settimeout(WAIT)
        self.proc: subprocess.Popen[str] | None = None
        self.mon: Any = None
        self.qt: Any = None
        self.events: list[dict] = []

    def argv(self, *extra: str) -> list[str]:
        # QEMU 7.2's iotests: the harness expects that release's answers.
        return [sys.executable, "-m", "qmpd", "--qemu-version", "7.2.22",
                "-display", "none", "-vga", "none",
                "-chardev", f"socket,id=mon,path={self.mon_path}",
                "-mon", "chardev=mon,mode=control",
                "-qtest", f"unix:path={self.qtest_path}", "-accel", "qtest",
                "-nodefaults", "-display", "none", "-accel", "qtest", *extra]

    def launch(self, *extra: str) -> None:
        self.proc = subprocess.Popen(self.argv(*extra), cwd=REPO, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        conn, _ = self.mon_l.accept()
        conn.settimeout(WAIT)
        self.mon = conn.makefile("rw")
        self.mon_sock = conn

    def accept_qtest(self) -> None:
        conn, _ = self.qt_l.accept()
        conn.settimeout(WAIT)
        self.qt = conn.makefile("rw")
        self.qt_sock = conn

    def read(self) -> dict:
        line = self.mon.readline()
        assert line, "monitor closed"
        return json.loads(line)

    def cmd(self, name: str, args: dict | None = None) -> dict:
        msg: dict[str, Any] = {"execute": name}
        if args is not None:
            msg["arguments"] = args
        self.mon.write(json.dumps(msg) + "\n")
        self.mon.flush()
        while True:
            reply = self.read()
            if "event" not in reply:
                return reply
            self.events.append(reply)

    def event(self, name: str) -> dict:
        while True:
            for ev in self.events:
                if ev["event"] == name:
                    self.events.remove(ev)
                    return ev
            self.events.append(self.read())

    def qtest(self, line: str) -> str:
        self.qt.write(line + "\n")
        self.qt.flush()
        return self.qt.readline()

    def close(self) -> None:
        for s in (self.mon_l, self.qt_l):
            s.close()
        for f in (self.mon, self.qt):
            if f is not None:
                f.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def harness(short_tmp: str) -> Any:
    h = Harness(short_tmp)
    yield h
    h.close()


def test_connects_out_to_monitor_and_qtest_and_serves_both(harness, short_tmp):
    harness.launch("-blockdev", "null-co,node-name=null0,size=1M",
                   "-object", "iothread,id=io0")
    assert harness.read()["QMP"]["version"]["qemu"]["major"] == 7
    assert harness.cmd("qmp_capabilities") == {"return": {}}
    harness.accept_qtest()
    nodes = harness.cmd("query-named-block-nodes", {"flat": True})["return"]
    assert [(n["node-name"], n["drv"], n["image"]["virtual-size"]) for n in nodes] == \
        [("null0", "null-co", 1 << 20)]
    assert harness.cmd("query-iothreads")["return"][0]["id"] == "io0"
    assert harness.qtest("clock_step 1000") == "OK 1000\n"
    assert harness.qtest("clock_set 5000") == "OK 5000\n"
    assert harness.qtest("clock_step") == "OK 5000\n"
    assert harness.qtest("readb 0x1000") == "FAIL Unknown command 'readb'\n"
    assert harness.cmd("quit") == {"return": {}}
    assert harness.proc is not None and harness.proc.wait(WAIT) == 0


def test_monitor_and_qtest_on_inherited_socket_fds():
    # QEMU 10.0's iotests: socketpair ends passed down as -chardev fd=N,
    # the qtest one named by -qtest chardev:ID.
    mon, mon_peer = socket.socketpair()
    qt, qt_peer = socket.socketpair()
    fds = [mon_peer.fileno(), qt_peer.fileno()]
    argv = [sys.executable, "-m", "qmpd", "--qemu-version", "10.0.2", "-display", "none",
            "-chardev", f"socket,id=mon,fd={fds[0]}", "-mon", "chardev=mon,mode=control",
            "-chardev", f"socket,id=qtest,fd={fds[1]}", "-qtest", "chardev:qtest",
            "-accel", "qtest", "-nodefaults"]
    proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, pass_fds=fds)
    try:
        mon_peer.close()
        qt_peer.close()
        for s in (mon, qt):
            s.settimeout(WAIT)
        mf, qf = mon.makefile("rw"), qt.makefile("rw")
        assert json.loads(mf.readline())["QMP"]["version"]["qemu"]["major"] == 10
        mf.write('{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n')
        mf.flush()
        qf.write("clock_step 1000\n")
        qf.flush()
        assert qf.readline() == "OK 1000\n"
        replies = [m for m in (json.loads(line) for line in mf) if "event" not in m]
        assert replies == [{"return": {}}, {"return": {}}]     # capabilities, quit
        assert proc.wait(WAIT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        mon.close()
        qt.close()


def test_chardev_fd_refuses_a_path_as_well():
    with pytest.raises(UsageError, match="fd= takes a connected socket"):
        parse_args(["-chardev", "socket,id=m,fd=3,path=/tmp/x", "-mon", "chardev=m,mode=control"])


def test_failing_blockdev_stops_qmpd_with_qemus_message(harness):
    harness.launch("-blockdev", "driver=qcow2,node-name=x,file.driver=file,"
                   "file.filename=/nonexistent/x.qcow2")
    # The monitor was connected, then dropped: the harness is not left waiting.
    assert harness.mon.readline() == ""
    assert harness.proc is not None and harness.proc.wait(WAIT) == 1
    err = harness.proc.stderr.read() if harness.proc.stderr else ""
    assert "-blockdev driver=qcow2,node-name=x" in err
    assert "Could not open '/nonexistent/x.qcow2': No such file or directory" in err


def test_refused_option_hangs_up_on_the_waiting_harness(harness):
    harness.launch("-incoming", "defer")
    assert harness.mon.readline() == ""
    assert harness.proc is not None and harness.proc.wait(WAIT) == 1
    assert "-incoming defer" in (harness.proc.stderr.read() if harness.proc.stderr else "")


def test_drive_if_none_is_a_named_block_backend_a_device_takes(harness, short_tmp):
    img = os.path.join(short_tmp, "a.qcow2")
    subprocess.run([*IMG, "create", "-q", "-f", "qcow2", img, "1M"],
                   cwd=REPO, check=True, timeout=WAIT)
    harness.launch("-drive", f"if=none,id=drive0,file={img},format=qcow2,cache=writethrough,"
                   "aio=threads,node-name=top",
                   "-device", "virtio-scsi,id=scsi0", "-device", "scsi-hd,id=sd0,drive=drive0")
    harness.read()
    harness.cmd("qmp_capabilities")
    blocks = harness.cmd("query-block")["return"]
    assert [(b["device"], b["qdev"], b["inserted"]["node-name"],
             b["inserted"]["cache"]["writeback"]) for b in blocks] == \
        [("drive0", "sd0", "top", False)]
    # Jobs find the drive by its name and take it as their default id.
    assert harness.cmd("block-stream", {"device": "drive0"}) == {"return": {}}
    assert harness.event("BLOCK_JOB_COMPLETED")["data"]["device"] == "drive0"


def _pattern_ok(img: str, pattern: str, where: str) -> bool:
    out = subprocess.run([*IMG, "io", "-f", "qcow2", "-c",
                          f"read -P {pattern} {where}", img], cwd=REPO, capture_output=True,
                         text=True, timeout=WAIT).stdout
    return "Pattern verification failed" not in out and "read " in out


@pytest.mark.parametrize("host_writes", [True, False])
def test_writes_reach_the_image_only_with_host_writes(start_qmpd, short_tmp, host_writes):
    img = os.path.join(short_tmp, "w.qcow2")
    subprocess.run([*IMG, "create", "-q", "-f", "qcow2", img, "1M"],
                   cwd=REPO, check=True, timeout=WAIT)
    before = Path(img).read_bytes()
    extra = ["--host-writes"] if host_writes else []
    q = start_qmpd(*extra, "-blockdev", f"driver=qcow2,node-name=d,file.driver=file,"
                   f"file.filename={img}")
    c = q.connect(negotiate=True)
    r = c.cmd("human-monitor-command", {"command-line": 'qemu-io d "write -P 0xab 64k 64k"'})
    assert "wrote 65536/65536" in r["return"]
    c.cmd("quit")
    assert q.wait() == 0
    if host_writes:
        assert _pattern_ok(img, "0xab", "64k 64k")
    else:
        assert Path(img).read_bytes() == before


def test_qmpd_exits_when_the_harness_hangs_up(harness):
    # A test whose setUp failed never shuts its VM down: once the monitor it
    # connected out to is gone, nothing can reach qmpd again.
    harness.launch()
    harness.read()
    harness.mon.close()
    harness.mon_sock.close()
    harness.mon = None
    assert harness.proc is not None and harness.proc.wait(WAIT) == 0


@pytest.mark.parametrize("version", ["10.0.2", "7.2.22"])
def test_host_writes_lock_the_image_against_another_process(start_qmpd, short_tmp, version):
    # As QEMU's file-posix: a second process cannot take "write" on an image
    # the first one uses without sharing it (iotests' mirror-top-perms).
    img = os.path.join(short_tmp, "locked.img")
    subprocess.run([*IMG, "create", "-q", "-f", "raw", img, "1M"], cwd=REPO, check=True,
                   timeout=WAIT)
    first = start_qmpd("--host-writes", "-blockdev",
                       f"file,node-name=f,filename={img}", "-device", "virtio-blk,drive=f",
                       sock=os.path.join(short_tmp, "a.sock"))
    first.connect(negotiate=True)
    # (share-rw=on is command-line text, which 10.0 takes as 7.2 does)
    second = _qmpd("--qemu-version", version, "--host-writes",
                   "--socket", os.path.join(short_tmp, "b.sock"),
                   "-blockdev", f"file,node-name=g,filename={img}",
                   "-device", "virtio-blk,drive=g,share-rw=on")
    assert second.returncode == 1
    assert second.stderr.splitlines()[-2:] == [
        'qmpd: -device virtio-blk,drive=g,share-rw=on: Failed to get "write" lock',
        f"Is another process using the image [{img}]?"]


# ----------------------------------------------------------------- -device forms

def _raw_image(short_tmp: str) -> str:
    img = os.path.join(short_tmp, "dev.img")
    subprocess.run([*IMG, "create", "-q", "-f", "raw", img, "1M"], cwd=REPO, check=True,
                   timeout=WAIT)
    return img


@pytest.mark.parametrize("version", ["10.0.2", "7.2.22", "5.2.0"])
def test_device_option_text_is_parsed_as_qemuopts_strings(start_qmpd, short_tmp, version):
    # `-device virtio-blk,share-rw=on` is how iotests give devices: every
    # release reads its values as text, even 10.0, whose QMP device_add
    # takes JSON types only.
    img = _raw_image(short_tmp)
    q = start_qmpd("--qemu-version", version, "-M", "pc",
                   "-blockdev", f"file,node-name=f,filename={img}",
                   "-device", "virtio-blk,drive=f,share-rw=on,id=vd0,"
                   "logical_block_size=4k,physical_block_size=4k")
    c = q.connect(negotiate=True)
    blocks = c.cmd("query-block")["return"]
    assert [(b["qdev"], b["inserted"]["node-name"]) for b in blocks] == [
        ("/machine/peripheral/vd0/virtio-backend", "f")]
    # share-rw=on took effect: a second user may write beside the device.
    assert c.cmd("human-monitor-command", {"command-line": 'qemu-io f "write 0 4k"'})[
        "return"].startswith("wrote 4096/4096")
    # and QMP device_add is still 10.0's typed JSON.
    r = c.cmd("device_add", {"driver": "virtio-blk", "drive": "f", "share-rw": "on"})
    if version == "10.0.2":
        assert r["error"]["desc"] == "Invalid parameter type for 'share-rw', expected: boolean"
    else:
        assert "Invalid parameter type" not in r.get("error", {}).get("desc", "")
    c.cmd("quit")


@pytest.mark.parametrize("version,message", [
    ("10.0.2", "Invalid parameter type for 'share-rw', expected: boolean"),
    ("7.2.22", "Invalid parameter type for 'share-rw', expected: boolean"),
    # 5.2 has no JSON -device: QemuOpts takes the text up to the first comma
    # as the driver's name.
    ("5.2.0", "'{\"driver\":\"virtio-blk\"' is not a valid device model name"),
])
def test_json_device_option_is_typed_since_6_2(short_tmp, version, message):
    img = _raw_image(short_tmp)
    dev = '{"driver":"virtio-blk","drive":"f","share-rw":"on"}'
    r = _qmpd("--qemu-version", version, "--socket", os.path.join(short_tmp, "j.sock"),
              "-M", "pc", "-blockdev", f"file,node-name=f,filename={img}", "-device", dev)
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == f"qmpd: -device {dev}: {message}"


@pytest.mark.parametrize("version,warns,size_error", [
    ("10.0.2", True, "Parameter 'logical_block_size' expects size"),
    ("7.2.22", True, "Parameter 'logical_block_size' expects size"),
    ("5.2.0", False, "Parameter 'logical_block_size' expects a non-negative number below 2^64"),
])
def test_device_option_short_booleans_and_sizes(short_tmp, version, warns, size_error):
    img = _raw_image(short_tmp)
    dev = "virtio-blk,drive=f,share-rw,logical_block_size=abc"
    r = _qmpd("--qemu-version", version, "--socket", os.path.join(short_tmp, "s.sock"),
              "-M", "pc", "-blockdev", f"file,node-name=f,filename={img}", "-device", dev)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    warning = [f"qmpd: -device {dev}: warning: short-form boolean option 'share-rw' "
               "deprecated", "Please use share-rw=on instead"]
    assert (lines[:2] == warning) is warns
    assert lines[-1] == f"qmpd: -device {dev}: {size_error}"


def test_qtest_protocol_is_logged_on_stderr_as_qemu_logs_it(harness):
    """Without -qtest-log QEMU logs the qtest connection on stderr; tests
    strip exactly these lines from QEMU's log (041 compares what is left)."""
    harness.launch()
    harness.read()
    harness.cmd("qmp_capabilities")
    harness.accept_qtest()
    assert harness.qtest("clock_step 1000") == "OK 1000\n"
    harness.qt_sock.close()
    harness.qt.close()
    harness.qt = None
    assert harness.cmd("quit") == {"return": {}}
    assert harness.proc is not None and harness.proc.wait(WAIT) == 0
    assert harness.proc.stderr is not None
    lines = harness.proc.stderr.read().splitlines()
    assert re.fullmatch(r"\[I \d+\.\d{6}\] OPENED", lines[0])
    assert re.fullmatch(r"\[R \+\d+\.\d{6}\] clock_step 1000", lines[1])
    assert re.fullmatch(r"\[S \+\d+\.\d{6}\] OK 1000", lines[2])
    assert re.fullmatch(r"\[I \+\d+\.\d{6}\] CLOSED", lines[3])


def test_stdio_monitor_hears_quits_reply_before_shutdown(short_tmp):
    """iotests' common.qemu (-monitor none -qmp stdio): QEMU answers quit on
    its stdio monitor before it sends SHUTDOWN (156, 185 and 247 expect so)."""
    script = '{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n'
    proc = subprocess.run([sys.executable, "-m", "qmpd", "--qemu-version", "7.2.22",
                           "-nographic", "-serial", "none", "-monitor", "none",
                           "-qmp", "stdio", "-nodefaults", "-display", "none"],
                          cwd=REPO, input=script, capture_output=True, text=True,
                          timeout=WAIT)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [m.get("event", "return" if "return" in m else "?") for m in lines[1:]] == \
        ["return", "return", "SHUTDOWN"]


def test_drives_without_id_are_numbered_per_interface(short_tmp):
    """drive_new: the first free unit of the interface names the drive."""
    script = ('{"execute": "qmp_capabilities"}\n{"execute": "query-block"}\n'
              '{"execute": "quit"}\n')
    proc = subprocess.run([sys.executable, "-m", "qmpd", "--qemu-version", "7.2.22",
                           "-monitor", "none", "-qmp", "stdio", "-nodefaults",
                           "-drive", "if=none,driver=null-co",
                           "-drive", "if=none,id=mine,driver=null-co",
                           "-drive", "if=none,driver=null-co"],
                          cwd=REPO, input=script, capture_output=True, text=True,
                          timeout=WAIT)
    block = json.loads(proc.stdout.splitlines()[2])["return"]
    assert [b["device"] for b in block] == ["none0", "mine", "none2"]
