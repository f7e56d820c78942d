"""Limits over a real socket: QEMU's message limits with QEMU's errors, the
caps on clients and unread output with their own clear errors, and no
descriptor leak however many clients come and go."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from qmpd.server.config import DEFAULT_MAX_OUTPUT

from .conftest import open_fds

E = b'{"error": {"class": "GenericError", "desc": "%s"}}\r\n'


def test_nesting_limit_is_qemus(qmpd: Any) -> None:
    conn = qmpd.connect(negotiate=True)
    ok = b'{"execute": "query-name", "id": ' + b"[" * 1023 + b"]" * 1023 + b"}"
    conn.send(ok)
    assert conn.read_line() == b'{"return": {}, "id": ' + b"[" * 1023 + b"]" * 1023 + b"}\r\n"
    conn.send(b'{"execute": "query-name", "id": ' + b"[" * 1024 + b"]" * 1024 + b"}")
    assert conn.read_line() == E % b"JSON nesting depth limit exceeded"
    # Each stray closing bracket then gets its own error, as in QEMU.
    for _ in range(1024 + 1):
        assert conn.read_line() == E % b"JSON parse error, expecting value"
    assert conn.cmd("query-name") == {"return": {}}


def test_token_size_limit_is_qemus(qmpd: Any) -> None:
    conn = qmpd.connect(negotiate=True)
    big = b'{"execute": "query-name", "id": "' + b"a" * (64 << 20) + b'"}'
    conn.send(big + b"\n")
    assert conn.read_line() == E % b"JSON token size limit exceeded"
    # As in QEMU, the tail of the message is lexed as new input: an unfinished
    # string, which the newline (a control character) ends as a stray.
    assert conn.read_line() == E % b"JSON parse error, stray '\\\"}\\n'"
    assert conn.cmd("query-name") == {"return": {}}
    assert qmpd.proc.poll() is None


def test_client_cap_gives_a_clear_error(start_qmpd: Any) -> None:
    q = start_qmpd("--max-clients", "2")
    a = q.connect(negotiate=True)
    b = q.connect(negotiate=True)
    extra = socket.socket(socket.AF_UNIX)
    extra.settimeout(20)
    extra.connect(q.sock)
    data = b""
    while chunk := extra.recv(4096):
        data += chunk
    extra.close()
    # Not a greeting: a QMP error line that says which limit, then EOF.
    assert data == (b'{"error": {"class": "GenericError", "desc": "qmpd: too many clients '
                    b'(2 connected; see --max-clients)"}}\r\n')
    assert a.cmd("query-name") == b.cmd("query-name") == {"return": {}}
    b.close()
    # A slot is free again once a client leaves.
    deadline = time.monotonic() + 20
    while True:
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(20)
        c.connect(q.sock)
        first = c.recv(4096)
        c.close()
        if first.startswith(b'{"QMP"') or time.monotonic() > deadline:
            break
    assert first.startswith(b'{"QMP"')


def test_output_cap_default_is_above_qemus_message_limit() -> None:
    # A reply as large as QEMU accepts in a message never trips the cap first.
    assert DEFAULT_MAX_OUTPUT > 64 << 20


def test_no_descriptor_leak_after_many_connects(qmpd: Any) -> None:
    n = int(os.environ.get("QMPD_FD_CYCLES", "10000"))
    pid = qmpd.proc.pid
    c = qmpd.connect(negotiate=True)
    assert c.cmd("query-name") == {"return": {}}
    before = open_fds(pid)
    for i in range(n):
        s = socket.socket(socket.AF_UNIX)
        s.connect(qmpd.sock)
        if i % 3 == 0:
            s.settimeout(20)
            assert s.recv(4096).startswith(b'{"QMP"')
        if i % 3 == 1:
            # Gone in the middle of a message.
            s.send(b'{"execute": "query-')
        s.close()
    # Wait (not assert on time) for the daemon to notice the last disconnects.
    deadline = time.monotonic() + 30
    while open_fds(pid) != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_fds(pid) == before
    assert c.cmd("query-name") == {"return": {}}
