"""The daemon over real UNIX sockets: what a user of ``qmpd --socket`` sees.

Several clients at once, per-client ordering, event fan-out, resilience to
bad clients, socket file life cycle, signals and ``quit``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys

import pytest

GREETING = (b'{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, '
            b'"package": "qmpd 0.1.0"}, "capabilities": ["oob"]}}\r\n')


def test_greeting_bytes_are_qemus_shape(qmpd):
    conn = qmpd.connect()
    conn.close()
    raw = socket.socket(socket.AF_UNIX)
    raw.connect(qmpd.sock)
    assert raw.recv(4096) == GREETING
    raw.close()


def test_qemu_version_option_sets_greeting_and_query_version(start_qmpd):
    # The exact version asked for is reported, whatever micro the profile was made from.
    q = start_qmpd("--qemu-version", "7.2.1")
    conn = q.connect()
    conn.close()
    conn = q.connect(negotiate=True)
    line = conn.send('{"execute": "query-version", "id": 1}\n') or conn.read_line()
    assert line == (b'{"return": {"qemu": {"micro": 1, "minor": 2, "major": 7}, '
                    b'"package": "qmpd 0.1.0"}, "id": 1}\r\n')


def test_control_commands_reply_like_qemu(qmpd):
    conn = qmpd.connect(negotiate=True)
    conn.send('{"execute": "query-status"}\n')
    assert conn.read_line() == (b'{"return": {"status": "running", "singlestep": false, '
                                b'"running": true}}\r\n')
    conn.send('{"execute": "query-name"}\n')
    assert conn.read_line() == b'{"return": {}}\r\n'
    names = {c["name"] for c in conn.cmd("query-commands")["return"]}
    assert {"qmp_capabilities", "query-version", "quit", "query-status", "stop", "cont",
            "query-name", "query-commands", "query-qmp-schema"} <= names
    # query-qmp-schema describes exactly the commands query-commands lists.
    schema = conn.cmd("query-qmp-schema")["return"]
    assert {e["name"] for e in schema if e["meta-type"] == "command"} == names
    assert {"SHUTDOWN", "STOP", "RESUME"} <= {e["name"] for e in schema
                                             if e["meta-type"] == "event"}


def test_stop_and_cont_send_events_before_the_reply(qmpd):
    conn = qmpd.connect(negotiate=True)
    conn.send('{"execute": "stop", "id": "s"}\n')
    event = conn.read()
    assert event["event"] == "STOP" and "data" not in event
    assert set(event["timestamp"]) == {"seconds", "microseconds"}
    assert conn.read() == {"return": {}, "id": "s"}
    # A second stop is silent, as in QEMU.
    conn.send('{"execute": "stop", "id": "s2"}\n')
    assert conn.read() == {"return": {}, "id": "s2"}
    assert conn.cmd("query-status")["return"] == {
        "status": "paused", "singlestep": False, "running": False}
    conn.send('{"execute": "cont", "id": "c"}\n')
    assert conn.read()["event"] == "RESUME"
    assert conn.read() == {"return": {}, "id": "c"}


def test_dash_S_starts_in_prelaunch_and_name_is_reported(start_qmpd):
    q = start_qmpd("-S", "-name", "guest0,debug-threads=on")
    conn = q.connect(negotiate=True)
    assert conn.cmd("query-status")["return"]["status"] == "prelaunch"
    assert conn.cmd("query-name") == {"return": {"name": "guest0"}}
    assert conn.cmd("cont") == {"return": {}}
    assert [e["event"] for e in conn.events] == ["RESUME"]


def test_many_clients_each_negotiate_and_keep_their_order(qmpd):
    conns = [qmpd.connect() for _ in range(6)]
    # Interleave pipelined batches from every client before reading any reply.
    for n, conn in enumerate(conns):
        conn.send('{"execute": "qmp_capabilities", "id": "caps"}'
                  + "".join(f'{{"execute": "query-version", "id": [{n}, {i}]}}'
                            for i in range(50)))
    for n, conn in enumerate(conns):
        assert conn.read() == {"return": {}, "id": "caps"}
        for i in range(50):
            assert conn.read()["id"] == [n, i]


def test_events_reach_every_negotiated_client_only(qmpd):
    actor = qmpd.connect(negotiate=True)
    watcher = qmpd.connect(negotiate=True)
    newcomer = qmpd.connect()  # never negotiates
    actor.send('{"execute": "stop", "id": 1}\n')
    assert actor.read()["event"] == "STOP"
    assert actor.read() == {"return": {}, "id": 1}
    assert watcher.read()["event"] == "STOP"
    # The unnegotiated client's next message is its own reply, not the event.
    newcomer.send('{"execute": "query-status", "id": 2}\n')
    assert newcomer.read() == {"id": 2, "error": {
        "class": "CommandNotFound",
        "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}}


def test_bad_clients_do_not_affect_others(qmpd):
    good = qmpd.connect(negotiate=True)
    garbage = qmpd.connect()
    garbage.send(b"\xff\x00 garbage {{{{ [[[ \x01")
    stalled = qmpd.connect(negotiate=True)
    stalled.send(b'{"execute": "query-')  # never completed
    half = qmpd.connect(negotiate=True)
    half.send(b'{"execute": "query-version", "arg')
    half.close()  # disconnect mid-message
    abrupt = qmpd.connect()
    abrupt.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    abrupt.send(b'{"execute": "qmp_capabilities"}')
    abrupt.close()  # reset while a reply may be on its way
    for i in range(20):
        assert good.cmd("query-version", id=i)["id"] == i
    # And the daemon still takes new clients.
    assert qmpd.connect(negotiate=True).cmd("query-name") == {"return": {}}
    assert qmpd.proc.poll() is None


def test_client_that_never_reads_is_disconnected_past_the_output_limit(start_qmpd):
    q = start_qmpd("--max-output", "4096")
    sleeper = q.connect(negotiate=True)
    actor = q.connect(negotiate=True)
    # Each stop/cont pair sends two events to the sleeper, which never reads:
    # the kernel's socket buffers fill up first, then qmpd's buffer passes 4 KiB.
    batch = '{"execute": "stop"}{"execute": "cont"}' * 500
    sent = 0
    while "more than 4096 bytes" not in q.stderr():
        actor.send(batch)
        for _ in range(1000):
            actor.reply()
        actor.events.clear()
        sent += 1
        assert sent < 200, "the sleeping client was never disconnected"
    # The sleeper gets what was already in its socket buffer, then EOF.
    assert sleeper.read_until_eof().startswith(b'{"timestamp": ')
    assert actor.cmd("query-name") == {"return": {}}


def test_client_cap_refuses_extra_connections(start_qmpd):
    q = start_qmpd("--max-clients", "2")
    a = q.connect(negotiate=True)
    b = q.connect(negotiate=True)
    extra = socket.socket(socket.AF_UNIX)
    extra.settimeout(20)
    extra.connect(q.sock)
    # A QMP error line saying which limit, then EOF (see tests/hardening).
    assert b"too many clients" in extra.recv(4096)
    assert extra.recv(4096) == b""
    extra.close()
    assert a.cmd("query-name") == b.cmd("query-name") == {"return": {}}
    assert "2 clients already connected" in q.stderr()


def test_quit_sends_shutdown_then_reply_then_exits_cleanly(start_qmpd, short_tmp):
    pidfile = os.path.join(short_tmp, "qmpd.pid")
    q = start_qmpd("--pidfile", pidfile)
    other = q.connect(negotiate=True)
    conn = q.connect(negotiate=True)
    conn.send('{"execute": "quit", "id": "bye"}\n{"execute": "query-status"}\n')
    event = conn.read()
    assert event["event"] == "SHUTDOWN"
    assert event["data"] == {"guest": False, "reason": "host-qmp-quit"}
    assert conn.read_line() == b'{"return": {}, "id": "bye"}\r\n'
    assert conn.read_until_eof() == b""  # nothing after quit is run
    assert other.read()["event"] == "SHUTDOWN"
    assert q.wait() == 0
    assert not os.path.exists(q.sock)
    assert not os.path.exists(pidfile)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_sends_shutdown_and_removes_socket(start_qmpd, short_tmp, signum):
    pidfile = os.path.join(short_tmp, "qmpd.pid")
    q = start_qmpd("--pidfile", pidfile)
    conn = q.connect(negotiate=True)
    unnegotiated = q.connect()
    with open(pidfile) as f:
        assert int(f.read()) == q.proc.pid
    q.proc.send_signal(signum)
    event = conn.read()
    assert event["event"] == "SHUTDOWN"
    assert event["data"] == {"guest": False, "reason": "host-signal"}
    assert conn.read_until_eof() == b""
    assert unnegotiated.read_until_eof() == b""  # no event before negotiation
    assert q.wait() == 0
    assert not os.path.exists(q.sock)
    assert not os.path.exists(pidfile)


def test_socket_is_private_by_default_and_mode_is_configurable(start_qmpd, short_tmp):
    q = start_qmpd()
    assert stat.S_IMODE(os.stat(q.sock).st_mode) == 0o600
    other = os.path.join(short_tmp, "group.sock")
    q2 = start_qmpd("--socket-mode", "0660", sock=other)
    assert stat.S_IMODE(os.stat(q2.sock).st_mode) == 0o660


def test_stale_socket_file_is_replaced(start_qmpd, short_tmp):
    path = os.path.join(short_tmp, "stale.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)
    dead.close()  # the file stays, nobody listens
    q = start_qmpd(sock=path)
    assert q.connect(negotiate=True).cmd("query-name") == {"return": {}}


def test_live_socket_is_refused_and_left_alone(qmpd, start_qmpd):
    second = start_qmpd(sock=qmpd.sock, wait=False)
    assert second.wait() == 1
    assert "already listening" in second.stderr()
    assert qmpd.connect(negotiate=True).cmd("query-name") == {"return": {}}


def test_path_that_is_not_a_socket_is_refused(start_qmpd, short_tmp):
    path = os.path.join(short_tmp, "file")
    with open(path, "w") as f:
        f.write("data")
    q = start_qmpd(sock=path, wait=False)
    assert q.wait() == 1
    assert "not a socket" in q.stderr()
    with open(path) as f:
        assert f.read() == "data"


def test_qemu_style_command_lines_serve(start_qmpd, short_tmp):
    for n, args in enumerate([
        ["-machine", "none", "-nodefaults", "-display", "none",
         "-qmp", "unix:{},server=on,wait=off"],
        ["-M", "none", "-nographic", "-accel", "tcg", "-qmp", "unix:{},server,nowait"],
        ["-chardev", "socket,id=mon0,path={},server=on,wait=off",
         "-mon", "chardev=mon0,mode=control"],
    ]):
        path = os.path.join(short_tmp, f"q{n}.sock")
        q = start_qmpd(*[a.replace("{}", path) for a in args], sock=path)
        assert q.connect(negotiate=True).cmd("query-name") == {"return": {}}


def test_trace_records_messages_in_and_out(start_qmpd, short_tmp):
    trace = os.path.join(short_tmp, "trace.jsonl")
    q = start_qmpd("--trace", trace)
    conn = q.connect(negotiate=True)
    conn.cmd("query-name", id="t")
    conn.cmd("quit")
    assert q.wait() == 0
    with open(trace) as f:
        records = [json.loads(line) for line in f]
    assert {"time", "client", "dir", "data"} <= set(records[0])
    assert any(r["dir"] == "in" and "query-name" in r["data"] for r in records)
    assert any(r["dir"] == "out" and r["data"] == '{"return": {}, "id": "t"}\r\n'
               for r in records)


def test_stdio_monitor_serves_one_client(short_tmp):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(
        [sys.executable, "-m", "qmpd", "-qmp", "stdio", "--qemu-version", "7.2.22"], cwd=repo,
        capture_output=True,
        input=b'{"execute": "qmp_capabilities"}\n{"execute": "query-name", "id": 1}\n',
        timeout=20)
    assert proc.returncode == 0
    assert proc.stdout == GREETING + b'{"return": {}}\r\n{"return": {}, "id": 1}\r\n'


def test_socket_accepts_as_soon_as_the_file_appears(start_qmpd, short_tmp):
    path = os.path.join(short_tmp, "early.sock")
    q = start_qmpd(sock=path, wait=False)
    while not os.path.exists(path):  # a script's busy-wait, no delay at all
        assert q.proc.poll() is None
    conn = socket.socket(socket.AF_UNIX)
    conn.settimeout(20)
    conn.connect(path)  # never ECONNREFUSED: the file is renamed in after listen()
    assert conn.recv(4096) == GREETING
    conn.close()
