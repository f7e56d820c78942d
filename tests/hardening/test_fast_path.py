"""The sequential fast path (a lone client's next command is awaited in
poll() rather than through trio's scheduler) never locks others out: a
client connecting while another sends commands back to back is greeted and
served, and a signal still ends the daemon cleanly."""

from __future__ import annotations

import signal
import threading
from typing import Any


def hammer(conn: Any, stop: threading.Event, errors: list, served: list | None = None) -> None:
    """query-status back to back until ``stop``; each answer must be its own
    (same id) and consistent (``running`` exactly when the status is
    "running", while another client stops and continues the VM)."""
    i = 0
    try:
        while not stop.is_set():
            conn.send(b'{"execute": "query-status", "id": %d}\n' % i)
            r = conn.reply()
            assert r["id"] == i, r
            status = r["return"]
            assert status["status"] in ("running", "paused"), status
            assert status["running"] is (status["status"] == "running"), status
            i += 1
            if served is not None:
                served[0] = i
    except (EOFError, ConnectionResetError, BrokenPipeError):
        pass  # the daemon went away (signal test) with our command unread
    except Exception as e:
        errors.append(e)


def test_newcomer_is_served_while_a_client_sends_back_to_back(qmpd: Any) -> None:
    busy = qmpd.connect(negotiate=True)
    stop, errors, served = threading.Event(), [], [0]
    t = threading.Thread(target=hammer, args=(busy, stop, errors, served), daemon=True)
    t.start()
    try:
        for _ in range(20):
            other = qmpd.connect(negotiate=True)
            assert other.cmd("query-name") == {"return": {}}
            # Events of the newcomer reach the busy client too.
            assert other.cmd("stop") == {"return": {}}
            assert other.cmd("cont") == {"return": {}}
            other.close()
    finally:
        stop.set()
        t.join(20)
    assert not errors
    # The busy client was served all along, not only the newcomers.
    assert served[0] > 0
    assert [e["event"] for e in busy.events][:2] == ["STOP", "RESUME"]


def test_signal_during_back_to_back_commands_shuts_down(qmpd: Any) -> None:
    busy = qmpd.connect(negotiate=True)
    stop, errors = threading.Event(), []
    t = threading.Thread(target=hammer, args=(busy, stop, errors), daemon=True)
    t.start()
    # Let it get going, then ask the daemon to stop.
    watcher = qmpd.connect(negotiate=True)
    assert watcher.cmd("query-name") == {"return": {}}
    qmpd.proc.send_signal(signal.SIGTERM)
    assert qmpd.wait() == 0
    t.join(20)
    stop.set()
    assert not errors
    # The idle client got the SHUTDOWN event (host-signal) before the end.
    assert watcher.read()["data"] == {"guest": False, "reason": "host-signal"}
