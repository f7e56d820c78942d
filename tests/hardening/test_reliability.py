"""What a shared daemon owes every client (issue 17): strings a client
sends never become an internal error, one client's long data-path command
holds nobody else up, no reply grows past ``--max-output``, and a signal
leaves every client with whole lines and a ``SHUTDOWN`` event.

Real daemons on real sockets.  Nothing here asserts a duration: "held up"
is checked by the order in which replies arrive (another client's reply
comes while the long command's reply has not), and the long commands are
sized so that they run for seconds while a query takes milliseconds.
"""

from __future__ import annotations

import json
import select
import signal
import time
from typing import Any

# A node whose reads cost no I/O, big enough for long reads.
BIG_NULL = {"driver": "raw", "node-name": "r0",
            "file": {"driver": "null-co", "size": 1 << 30, "read-zeroes": True}}


def hmp(conn: Any, line: str) -> None:
    """Send a human-monitor-command without waiting for its reply."""
    conn.send(json.dumps({"execute": "human-monitor-command",
                          "arguments": {"command-line": line}}) + "\n")


def has_data(conn: Any) -> bool:
    """Whether anything from the daemon is waiting on ``conn`` right now."""
    if conn._pending:
        return True
    return bool(select.select([conn.sock], [], [], 0)[0])


def wait_readable(conn: Any, timeout: float = 20.0) -> None:
    assert select.select([conn.sock], [], [], timeout)[0], "nothing arrived"


def whole_lines(data: bytes) -> list[dict]:
    """Every line of ``data`` as a QMP message; fails on a cut-off line."""
    assert data.endswith(b"\r\n"), f"cut-off line at the end: ...{data[-120:]!r}"
    return [json.loads(line) for line in data.split(b"\r\n")[:-1]]


# -- 1. client strings that reach the OS -----------------------------------------
def test_nul_and_control_characters_in_a_filename_are_a_missing_file(qmpd: Any) -> None:
    c = qmpd.connect(negotiate=True)
    # QEMU 7.2 (and 5.2, 10.0) keep U+0000 as the bytes C0 80: no such file.
    for name in ("\u0000x", "a\u0000", "/tmp/\u0001\u001f\u007f\n"):
        r = c.cmd("blockdev-add", {"driver": "file", "node-name": "fz", "filename": name})
        assert r == {"error": {"class": "GenericError",
                               "desc": f"Could not open '{name}': No such file or directory"}}
    r = c.cmd("blockdev-add", {"driver": "blkdebug", "node-name": "fz", "config": "\u0000",
                               "image": {"driver": "null-co"}})
    assert r["error"]["desc"] == "Could not read blkdebug config file: No such file or directory"
    # Nothing was left behind by the failures: the name is free.
    assert c.cmd("blockdev-add", {"driver": "null-co", "node-name": "fz"}) == {"return": {}}
    assert "Traceback" not in qmpd.stderr()


def test_a_nul_in_a_new_image_name_is_kept_as_qemu_keeps_it(start_qmpd: Any) -> None:
    q = start_qmpd()
    c = q.connect(negotiate=True)
    path = f"{q.workdir}/new\u0000.img"
    r = c.cmd("blockdev-create", {"job-id": "c0", "options": {
        "driver": "file", "filename": path, "size": 65536}})
    assert r == {"return": {}}
    while c.cmd("query-jobs")["return"][0]["status"] != "concluded":
        pass
    # The file made by the job opens under the same name, and shows it.
    assert c.cmd("blockdev-add", {"driver": "file", "node-name": "f0",
                                  "filename": path}) == {"return": {}}
    [node] = c.cmd("query-named-block-nodes", {"flat": True})["return"]
    assert node["image"]["filename"] == path


def test_an_oversized_preallocation_is_a_job_error_not_a_crash(qmpd: Any) -> None:
    c = qmpd.connect(negotiate=True)
    r = c.cmd("blockdev-create", {"job-id": "c0", "options": {
        "driver": "file", "filename": f"{qmpd.workdir}/huge.img", "size": 1 << 50,
        "preallocation": "falloc"}})
    assert r == {"return": {}}
    while (job := c.cmd("query-jobs")["return"][0])["status"] != "concluded":
        pass
    assert job["error"] == "Could not preallocate new data: No space left on device"


# -- 2. one client's long command holds nobody up --------------------------------
def test_another_client_is_answered_while_a_long_read_runs(qmpd: Any) -> None:
    a = qmpd.connect(negotiate=True)
    b = qmpd.connect(negotiate=True)
    assert a.cmd("blockdev-add", BIG_NULL) == {"return": {}}
    # About 40 MB of dump: seconds of work, against milliseconds for a query.
    hmp(a, 'qemu-io r0 "read -v 0 8M"')
    time.sleep(0.3)     # let the daemon start on it (no assert depends on how long)
    for _ in range(3):
        assert b.cmd("query-status") == {"return": {"status": "running", "singlestep": False,
                                                    "running": True}}
        # ... while a's reply is still being made.
        assert not has_data(a), "the long command finished before the other client was served"
    text = a.reply()["return"]
    assert "\n007ffff0:  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................\n" \
           "read 8388608/8388608 bytes at offset 0\n" in text
    assert text.count("\n") == 8388608 // 16 + 2


def test_queries_wait_for_a_long_write_and_its_client_keeps_its_order(qmpd: Any,
                                                                      short_tmp: str) -> None:
    img = f"{short_tmp}/disk.img"
    with open(img, "wb") as f:
        f.truncate(1 << 30)
    a = qmpd.connect(negotiate=True)
    b = qmpd.connect(negotiate=True)
    assert a.cmd("blockdev-add", {"driver": "file", "node-name": "f0",
                                  "filename": img}) == {"return": {}}
    hmp(a, 'qemu-io f0 "write -P 0x5a 0 768M"')
    a.send('{"execute": "query-name", "id": "after"}\n')
    time.sleep(0.3)
    # A command that does not look at the block layer is answered beside the
    # write (whether the write is still running by then depends on the
    # machine's speed, so nothing is asserted about a here) ...
    assert b.cmd("query-version")["return"]["qemu"]["major"] == 7
    # ... a block query waits: it would see the write half done.
    b.send('{"execute": "query-named-block-nodes", "arguments": {"flat": true}}\n')
    nodes = b.reply()["return"]
    assert has_data(a), "a block query was answered in the middle of a write"
    assert nodes[0]["image"]["actual-size"] >= 768 << 20
    assert a.reply()["return"].startswith("wrote 805306368/805306368 bytes at offset 0\n")
    assert a.reply() == {"return": {}, "id": "after"}


# -- 3. replies never past --max-output ------------------------------------------
def test_a_dump_larger_than_max_output_is_refused_before_it_is_made(start_qmpd: Any) -> None:
    q = start_qmpd("--max-output", str(1 << 20))
    c = q.connect(negotiate=True)
    assert c.cmd("blockdev-add", BIG_NULL) == {"return": {}}
    # 128 KiB dump to about 650 KB: fits.
    line = c.cmd("human-monitor-command", {"command-line": 'qemu-io r0 "read -v 0 128k"'})
    assert len(json.dumps(line)) < 1 << 20
    # 256 KiB would be 1.28 MB (16384 lines of 78 bytes): refused, saying so.
    r = c.cmd("human-monitor-command", {"command-line": 'qemu-io r0 "read -v 0 256k"'})
    assert r["error"]["class"] == "GenericError"
    assert r["error"]["desc"].startswith("Reply too large: the output of this qemu-io command "
                                         "would be more than 1277952 bytes, above qmpd's "
                                         "--max-output limit of 1048576 bytes")
    # A reply too large for any other reason is refused too.
    q2 = start_qmpd("--max-output", "4096", sock=f"{q.workdir}/small.sock")
    c2 = q2.connect(negotiate=True)
    r = c2.cmd("query-qmp-schema")
    assert r["error"]["desc"].startswith("Reply too large: ")
    assert c2.cmd("query-status")["return"]["running"] is True


# -- 5. SIGTERM: whole lines and SHUTDOWN for everyone ---------------------------
def test_sigterm_during_a_long_command_acts_at_once(qmpd: Any) -> None:
    a = qmpd.connect(negotiate=True)
    b = qmpd.connect(negotiate=True)
    assert a.cmd("blockdev-add", BIG_NULL) == {"return": {}}
    hmp(a, 'qemu-io r0 "read -v 0 16M"')
    time.sleep(0.3)
    assert not has_data(a)
    qmpd.proc.send_signal(signal.SIGTERM)
    # The command is abandoned: SHUTDOWN comes next, not its reply.
    for conn in (a, b):
        msgs = whole_lines(conn.read_until_eof())
        assert [m.get("event") for m in msgs] == ["SHUTDOWN"], msgs[:2]
    assert qmpd.wait() == 0


def test_sigterm_while_a_large_reply_is_sent_keeps_lines_whole(qmpd: Any) -> None:
    a = qmpd.connect(negotiate=True)
    b = qmpd.connect(negotiate=True)
    assert a.cmd("blockdev-add", BIG_NULL) == {"return": {}}
    hmp(a, 'qemu-io r0 "read -v 0 8M"')
    wait_readable(a)            # its 40 MB reply is on its way
    qmpd.proc.send_signal(signal.SIGTERM)
    # A slow reader (longer than qmpd's no-progress limit in all, not per read).
    data = bytearray()
    a.sock.settimeout(20)
    while chunk := a.sock.recv(1 << 20):
        data += chunk
        time.sleep(0.05)
    msgs = whole_lines(bytes(data))
    assert msgs[0]["return"].endswith(" ops/sec)\n")
    assert [m.get("event") for m in msgs[1:]] == ["SHUTDOWN"]
    assert [m.get("event") for m in whole_lines(b.read_until_eof())] == ["SHUTDOWN"]
    assert qmpd.wait() == 0
