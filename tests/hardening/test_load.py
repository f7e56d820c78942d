"""Load: many concurrent clients sending mixed commands to one daemon.

Every reply is correct and arrives in order for its client, every event
reaches every negotiated client, a client that never reads neither blocks
the others nor makes the daemon's memory grow without bound (``--max-output``
disconnects it), and the daemon's memory is flat afterwards.  The same load
runs beside a client whose long qemu-io reads make replies just under and
just over ``--max-output``: they never hold the others up or pass the limit.

CI runs a small size; ``make load`` (QMPD_LOAD_CLIENTS=64,
QMPD_LOAD_COMMANDS=1000) the full one.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from .conftest import rss_kib

CLIENTS = int(os.environ.get("QMPD_LOAD_CLIENTS", "16"))
COMMANDS = int(os.environ.get("QMPD_LOAD_COMMANDS", "150"))
BATCH = 10  # commands written before their replies are read


def script(cid: int, n: int) -> list[tuple[bytes, Any]]:
    """(message, expected reply or a checker) for client ``cid``."""
    out: list[tuple[bytes, Any]] = []
    node = f"c{cid}"
    for i in range(n):
        k = i % 10
        ident = [cid, i]
        if k == 0:
            msg = {"execute": "blockdev-add",
                   "arguments": {"driver": "null-co", "node-name": node, "size": 4096 * (cid + 1)}}
            exp: Any = {"return": {}}
        elif k == 1:
            msg = {"execute": "query-named-block-nodes", "arguments": {"flat": True}}
            exp = lambda r, node=node, cid=cid: any(  # noqa: E731
                n["node-name"] == node and n["image"]["virtual-size"] == 4096 * (cid + 1)
                for n in r["return"])
        elif k == 2:
            msg = {"execute": "blockdev-reopen", "arguments": {"options": [
                {"driver": "null-co", "node-name": node, "size": 4096 * (cid + 1),
                 "read-only": True}]}}
            exp = {"return": {}}
        elif k == 3:
            msg = {"execute": "blockdev-del", "arguments": {"node-name": node}}
            exp = {"return": {}}
        elif k == 4:
            msg = {"execute": "blockdev-del", "arguments": {"node-name": node}}
            exp = {"error": {"class": "GenericError",
                             "desc": f"Failed to find node with node-name='{node}'"}}
        elif k == 5 and cid % 4 == 0:
            msg = {"execute": "stop" if i % 20 < 10 else "cont"}
            exp = {"return": {}}
        elif k == 6:
            msg = {"execute": "nosuch"}
            exp = {"error": {"class": "CommandNotFound",
                             "desc": "The command nosuch has not been found"}}
        elif k == 7:
            msg = {"execute": "query-status"}
            exp = lambda r: set(r["return"]) == {"status", "singlestep", "running"}  # noqa: E731
        else:
            msg = {"execute": "query-version"}
            exp = lambda r: r["return"]["qemu"]["major"] == 7  # noqa: E731
        msg["id"] = ident
        if isinstance(exp, dict):
            exp = dict(exp, id=ident)
        out.append((json.dumps(msg).encode() + b"\n", exp))
    return out


class Worker(threading.Thread):
    def __init__(self, qmpd: Any, cid: int, n: int, start: threading.Barrier,
                 done: threading.Barrier) -> None:
        super().__init__(daemon=True)
        self.conn = qmpd.connect(negotiate=True)
        self.cid, self.n, self.start_b, self.done_b = cid, n, start, done
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.start_b.wait()
            steps = script(self.cid, self.n)
            for b in range(0, len(steps), BATCH):
                batch = steps[b:b + BATCH]
                self.conn.send(b"".join(m for m, _ in batch))
                for _, exp in batch:
                    r = self.conn.reply()
                    if callable(exp):
                        assert exp(r), (self.cid, r)
                    else:
                        assert r == exp, (self.cid, r, exp)
            self.done_b.wait()
            # Every event of the run was queued before this reply.
            assert self.conn.cmd("query-name", id="last") == {"return": {}, "id": "last"}
        except BaseException as e:  # reported by the test
            self.error = e
            self.start_b.abort()
            self.done_b.abort()


def run_load(qmpd: Any, clients: int, n: int) -> list[Worker]:
    start = threading.Barrier(clients)
    done = threading.Barrier(clients)
    workers = [Worker(qmpd, cid, n, start, done) for cid in range(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(600)
    for w in workers:
        assert not w.is_alive(), "a client hung"
        if w.error is not None:
            raise w.error
    return workers


def test_many_clients_mixed_commands_events_and_flat_memory(start_qmpd: Any) -> None:
    q = start_qmpd("--max-clients", str(CLIENTS + 8), "--max-output", str(1 << 20))
    # A client that negotiates and then never reads a byte.
    sleeper = q.connect(negotiate=True)
    # Warm-up at a tenth of the size: modules loaded, pools and caches filled.
    for w in run_load(q, CLIENTS, max(20, n := COMMANDS // 10)):
        w.conn.close()
    before = rss_kib(q.proc.pid)
    workers = run_load(q, CLIENTS, COMMANDS)
    events = [[(e["event"], e["timestamp"]["seconds"], e["timestamp"]["microseconds"])
               for e in w.conn.events] for w in workers]
    # Every client saw the same events, in the same order.  A stop while
    # stopped (or cont while running) sends nothing, as in QEMU, so the run
    # state changes are what is counted: STOP and RESUME alternate.
    assert all(ev == events[0] for ev in events)
    names = [e[0] for e in events[0]]
    assert names and all(a != b for a, b in zip(names, names[1:]))
    for w in workers:
        w.conn.close()
    # Memory after the run: within 10 % (plus 2 MiB for allocator slack) of
    # before, although the run made COMMANDS/10 times more work than warm-up.
    after = rss_kib(q.proc.pid)
    assert after <= before * 1.10 + 2048, (before, after, n)
    # The sleeper was cut off once its unread events passed --max-output,
    # and the daemon is fine.
    if "more than 1048576 bytes of output unread" in q.stderr():
        assert sleeper.read_until_eof().startswith(b'{"timestamp": ')
    c = q.connect(negotiate=True)
    assert c.cmd("query-name") == {"return": {}}


def test_client_that_never_reads_does_not_block_others_or_grow_memory(start_qmpd: Any) -> None:
    q = start_qmpd("--max-output", str(256 << 10))
    sleeper = q.connect(negotiate=True)
    actor = q.connect(negotiate=True)
    batch = '{"execute": "stop"}{"execute": "cont"}' * 200
    peak = 0
    rounds = 0
    while "more than 262144 bytes of output unread" not in q.stderr():
        actor.send(batch)
        for _ in range(400):
            assert actor.reply() == {"return": {}}
        actor.events.clear()
        peak = max(peak, rss_kib(q.proc.pid))
        rounds += 1
        assert rounds < 500, "the sleeping client was never disconnected"
    base = rss_kib(q.proc.pid)
    # Keep going after the cut-off: memory no longer tracks the sleeper.
    for _ in range(rounds + 5):
        actor.send(batch)
        for _ in range(400):
            assert actor.reply() == {"return": {}}
        actor.events.clear()
    assert rss_kib(q.proc.pid) <= max(peak, base) * 1.10 + 2048
    assert sleeper.read_until_eof().startswith(b'{"timestamp": ')



class LongWorker(threading.Thread):
    """A client that keeps running long qemu-io reads whose replies are just
    under and just over --max-output, while the others run their load."""

    def __init__(self, qmpd: Any, limit: int) -> None:
        super().__init__(daemon=True)
        self.conn = qmpd.connect(negotiate=True)
        self.limit = limit
        self.stop = threading.Event()
        self.rounds = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            assert self.conn.cmd("blockdev-add", {
                "driver": "raw", "node-name": "long0",
                "file": {"driver": "null-co", "size": 1 << 30, "read-zeroes": True}}) == {
                "return": {}}
            # 78 bytes of reply per 16 bytes read: the largest dump under the limit.
            fits = (self.limit - 4096) // 78 * 16 // 512 * 512
            while not self.stop.is_set():
                for count, ok in ((fits, True), (fits * 2, False)):
                    self.conn.send(json.dumps({
                        "execute": "human-monitor-command", "arguments": {
                            "command-line": f'qemu-io long0 "read -v 0 {count}"'}}) + "\n")
                    while True:     # events of the other clients' stop/cont pass by
                        line = self.conn.read_line()
                        assert len(line) <= self.limit, len(line)
                        r = json.loads(line)
                        if "event" not in r:
                            break
                    if ok:
                        assert r["return"].count("\n") == count // 16 + 2, r["return"][-200:]
                    else:
                        assert r["error"]["desc"].startswith("Reply too large: "), r
                self.rounds += 1
        except BaseException as e:  # reported by the test
            self.error = e


def test_load_beside_long_qemu_io_with_replies_at_the_limit(start_qmpd: Any) -> None:
    limit = 2 << 20
    q = start_qmpd("--max-clients", str(CLIENTS + 8), "--max-output", str(limit))
    long = LongWorker(q, limit)
    long.start()
    try:
        workers = run_load(q, CLIENTS, max(20, COMMANDS // 2))
    finally:
        long.stop.set()
        long.join(600)
    assert not long.is_alive(), "the long client hung"
    if long.error is not None:
        raise long.error
    # The load ran beside the long reads, which went on the whole time.
    assert long.rounds >= 1
    for w in workers:
        w.conn.close()
    c = q.connect(negotiate=True)
    assert "internal error" not in q.stderr()
    assert c.cmd("query-name") == {"return": {}}
