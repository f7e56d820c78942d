"""Fuzzing the protocol core with the real command layer behind it, in
process and over a real server socket.

Inputs are random bytes and mutations of valid QMP messages (bytes flipped,
cut, repeated, spliced into each other), fed in random chunks.  Whatever
arrives, the daemon answers with well-formed QMP lines only, never raises,
and keeps serving.  Example counts follow the hypothesis profile, so
``make fuzz`` (profile ``fuzz``) runs many more than CI.
"""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmpd.commands.dispatch import Daemon, Dispatcher
from qmpd.commands.errors import QMPError
from qmpd.jobs.clock import VirtualClock
from qmpd.profiles import select
from qmpd.protocol import Request, Session
from qmpd.protocol.splitter import JSONStreamParser, ParsedValue

from .counts import count

# What these tests expect is QEMU 7.2's (their cases were recorded on it).
QEMU_7_2 = select("7.2.22")

VERSION = {"qemu": {"major": 7, "minor": 2, "micro": 22}, "package": "qmpd fuzz"}

# Valid messages to mutate: the envelope forms and commands of every kind
# that neither touch host files nor end the daemon.
CORPUS = [
    b'{"execute": "qmp_capabilities"}',
    b'{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}',
    b'{"execute": "query-version", "id": 1}',
    b'{"execute": "query-status", "id": "two"}',
    b'{"exec-oob": "query-yank", "id": 3}',
    b'{"execute": "stop"}',
    b'{"execute": "cont", "id": [1, {"a": null}]}',
    b'{"execute": "query-name", "id": 2.5}',
    b'{"execute": "query-commands"}',
    b'{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "a"}}',
    b'{"execute": "blockdev-add", "arguments": {"driver": "raw", "node-name": "r",'
    b' "file": {"driver": "null-aio", "size": 65536, "read-zeroes": true}}}',
    b'{"execute": "blockdev-add", "arguments": {"driver": "throttle", "node-name": "t",'
    b' "throttle-group": "g", "file": "a"}}',
    b'{"execute": "object-add", "arguments": {"qom-type": "throttle-group", "id": "g",'
    b' "limits": {"iops-total": 100}}}',
    b'{"execute": "blockdev-reopen", "arguments": {"options": [{"driver": "null-co",'
    b' "node-name": "a", "read-only": true}]}}',
    b'{"execute": "blockdev-del", "arguments": {"node-name": "a"}}',
    b'{"execute": "query-named-block-nodes", "arguments": {"flat": true}}',
    b'{"execute": "x-debug-query-block-graph"}',
    b"{'execute': 'query-block', 'id': 'sq\\'x'}",
    b'{"execute": "human-monitor-command", "arguments": {"command-line": "info block"}}',
]
NOISE = [b"{", b"}", b"[", b"]", b'"', b"'", b"\\", b",", b":", b"\n", b"\xff", b"\x00",
         b"\xc3", b"\xc0\x80", b"\\u", b"\\ud800", b"1e999", b"-0", b"null", b"tru", b" "]


@st.composite
def mutated(draw: Any) -> bytes:
    msgs = draw(st.lists(st.sampled_from(CORPUS), min_size=1, max_size=6))
    data = bytearray(b"\n".join(msgs))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete", "dup", "splice"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(NOISE))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
        elif op == "dup":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 40))]
        else:
            data[pos:pos] = draw(st.sampled_from(CORPUS))
    return bytes(data)


_INF = re.compile(rb"\b(?:inf|nan)\b")
wire_input = mutated() | st.binary(max_size=200)
chunks = st.lists(st.integers(0, 4000), max_size=5)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    parts, last = [], 0
    for p in points:
        parts.append(data[last:p])
        last = p
    parts.append(data[last:])
    return parts


def check_line(line: bytes) -> dict:
    """One line the daemon sent: QEMU's framing and a QMP message shape."""
    assert line.endswith(b"\r\n") and b"\n" not in line[:-2] and b"\r" not in line[:-2]
    line.decode("ascii")
    # QEMU echoes an id of 1e999 as inf (and so does qmpd): not JSON, so
    # spelled as a number that parses to the same value before checking.
    line = _INF.sub(b"1e999", line)
    [item] = JSONStreamParser().feed(line)
    assert isinstance(item, ParsedValue)
    msg = item.value
    assert isinstance(msg, dict)
    if "event" in msg:
        assert set(msg) <= {"event", "data", "timestamp"}
        assert set(msg["timestamp"]) == {"seconds", "microseconds"}
    elif "QMP" in msg:
        assert set(msg) == {"QMP"}
    elif "error" in msg:
        assert set(msg) <= {"id", "error"}
        assert set(msg["error"]) == {"class", "desc"}
        assert isinstance(msg["error"]["desc"], str) and msg["error"]["desc"]
    else:
        assert set(msg) <= {"id", "return"} and "return" in msg
    return msg


def run_in_process(parts: list[bytes]) -> list[bytes]:
    """What the server does with these bytes, minus the socket."""
    out: list[bytes] = []
    daemon = Daemon(QEMU_7_2, job_time=VirtualClock())
    daemon.event_sink = lambda name, data, ts: out.append(
        json.dumps({"event": name, "data": data,
                    "timestamp": {"seconds": ts[0], "microseconds": ts[1]}}).encode() + b"\r\n")
    dispatcher = Dispatcher(daemon)
    session = Session(VERSION)
    out.append(session.greeting())
    for part in parts:
        count("protocol (in process)")
        items = session.feed(part)
        while True:
            for item in items:
                if isinstance(item, Request):
                    try:
                        out.append(session.reply(item, dispatcher.execute(
                            item.name, item.arguments, oob=item.oob)))
                    except QMPError as e:
                        out.append(session.error(item, e.cls, e.desc))
                else:
                    out.append(item)
            if not session.has_pending:
                break
            items = session.feed(b"")
    return out


# Cheap enough to run four times the profile's example count.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow],
          max_examples=4 * settings.default.max_examples)
@given(wire_input, chunks)
def test_protocol_and_dispatcher_never_fail_on_any_input(data: bytes, cuts: list[int]) -> None:
    for reply in run_in_process(split(data, cuts)):
        check_line(reply)


@pytest.fixture(scope="module")
def daemon_sock() -> Any:
    import shutil
    import tempfile

    from conftest import Qmpd

    d = tempfile.mkdtemp(prefix="qmpd-fz-", dir="/tmp")
    q = Qmpd(d, ["--max-clients", "1000"], None).wait_ready()
    yield q
    alive = q.proc.poll() is None
    q.stop()
    shutil.rmtree(d, ignore_errors=True)
    assert alive, "the daemon died of what a client sent"


def exchange(path: str, parts: list[bytes]) -> list[bytes]:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(path)
    try:
        for p in parts:
            if p:
                s.sendall(p)
        # EOF: the daemon answers what is complete, then closes.
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    finally:
        s.close()
    assert data.endswith(b"\r\n")
    return [line + b"\n" for line in data.split(b"\n")[:-1]]


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.function_scoped_fixture])
@given(wire_input, chunks)
def test_server_socket_survives_any_input(daemon_sock: Any, data: bytes, cuts: list[int]) -> None:
    data = data.replace(b"quit", b"qu1t")  # the daemon is shared between examples
    parts = split(data, cuts)
    count("protocol (socket)", len(parts))
    lines = exchange(daemon_sock.sock, parts)
    assert "QMP" in check_line(lines[0])
    for line in lines[1:]:
        check_line(line)
    # ... and the daemon still answers a fresh client.
    assert daemon_sock.proc.poll() is None
