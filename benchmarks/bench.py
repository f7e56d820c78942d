"""``make bench``: how fast qmpd answers, and how that compares with QEMU 7.2 and 10.0.

Measures, for qmpd (``python -m qmpd``) and, when ``qemu-system-x86_64`` is
installed, for QEMU:

* time to greeting: process launch until the greeting is received (median);
* sequential ``query-version``: one command, wait for its reply, repeat;
* pipelined ``query-version``: batches written while a reader collects replies;
* ``blockdev-add`` + ``blockdev-del`` pairs of a null-co node, sequentially;
* the flood phase (qmpd only: QEMU's ``-qmp`` socket serves one client at a
  time): one client's ``query-version`` round trips while another sends a
  message of ``--flood-mb`` MB of tiny tokens;
* the graph phase: 2 x ``--graph`` nodes added and reopened one command at a
  time, then ``query-named-block-nodes`` asked repeatedly (flat and not), and
  asked just after a change to the graph (qmpd keeps a query's encoded reply
  until something changes, so the two differ there).

and, in-process for qmpd only, the same add/del pair through the dispatcher
(argument validation included) versus straight to the handlers (validation
skipped), to show what validation costs.

With ``QMPD_BENCH_QEMU=/path/to/qemu-system-x86_64`` (a QEMU 10.0, e.g. from
``../shared/oracle/get-qemu.sh 10.0``) the same phases run once more for qmpd
answering as 10.0 (``--qemu-version 10.0.2``) and for that QEMU, in the same run.

Then the ratios qmpd / QEMU and the project's targets (sequential >= 2.5x
QEMU, pipelined >= 10x, greeting <= 250 ms).  Adapted from the oracle's
qmpbench.py; the client is the same minimal newline-delimited one.  Numbers
from a small shared machine are noisy: compare figures from one run only.

    python -m benchmarks.bench [--seq N] [--pipe N] [--pairs N] [--rounds N] [--no-qemu]
                               [--json FILE]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

from tests.conformance.qmpreplay import Server

perf = time.perf_counter


class Client:
    """Minimal, fast newline-delimited JSON client (from qmpbench.py)."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.lines: collections.deque[bytes] = collections.deque()
        self.partial = b""

    def _fill(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("server closed the connection")
        if b"\n" not in data:
            self.partial += data
            return
        parts = (self.partial + data).split(b"\n")
        self.partial = parts.pop()
        self.lines.extend(p for p in parts if p.strip())

    def reply(self) -> dict:
        while True:
            while not self.lines:
                self._fill()
            m = json.loads(self.lines.popleft())
            if "event" not in m:
                return m

    def cmd(self, execute: str, arguments: dict | None = None, id_: Any = None) -> dict:
        msg: dict[str, Any] = {"execute": execute}
        if arguments is not None:
            msg["arguments"] = arguments
        if id_ is not None:
            msg["id"] = id_
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        return self.reply()


def connect(sock_path: str) -> Client:
    """Another client of a running server, greeted and negotiated."""
    import socket

    c = Client(socket.socket(socket.AF_UNIX))
    c.sock.connect(sock_path)
    while not c.lines:
        c._fill()
    c.lines.popleft()
    c.cmd("qmp_capabilities")
    return c


class Launch:
    """One server process with a negotiated connection, in its own temp dir."""

    def __init__(self, target: str, qemu: str | None = None) -> None:
        self.tmpdir = tempfile.mkdtemp(prefix="qmpd-bench-")
        t0 = perf()
        self.server = Server(target, self.tmpdir, qemu) if qemu else Server(target, self.tmpdir)
        self.client = Client(self.server.connect(poll=0.001))
        while not self.client.lines:
            self.client._fill()
        self.greeting = json.loads(self.client.lines.popleft())
        self.startup_s = perf() - t0
        r = self.client.cmd("qmp_capabilities", id_="caps")
        if "return" not in r:
            raise RuntimeError(f"qmp_capabilities failed: {r}")

    def close(self) -> None:
        class Sender:
            def __init__(self, sock: Any) -> None:
                self.sock = sock

            def send(self, data: bytes) -> None:
                self.sock.sendall(data)

        try:
            self.server.stop(Sender(self.client.sock))
        finally:
            self.server.close_files()
            shutil.rmtree(self.tmpdir, ignore_errors=True)


def bench_startup(target: str, runs: int, qemu: str | None = None) -> float:
    times = []
    for _ in range(runs):
        launch = Launch(target, qemu)
        times.append(launch.startup_s)
        launch.close()
    return statistics.median(times)


def bench_seq(client: Client, n: int) -> float:
    for i in range(100):  # warm-up: the first command loads the command modules
        client.cmd("query-version", id_=i)
    sendall = client.sock.sendall
    t0 = perf()
    for i in range(n):
        sendall(b'{"execute": "query-version", "id": %d}\n' % i)
        r = client.reply()
        if r.get("id") != i:
            raise RuntimeError(f"unexpected reply {r}")
    return n / (perf() - t0)


def bench_pipe(client: Client, n: int, batch: int) -> float:
    msgs = [b'{"execute": "query-version", "id": %d}\n' % i for i in range(n)]
    batches = [b"".join(msgs[i:i + batch]) for i in range(0, n, batch)]
    sock = client.sock

    def writer() -> None:
        for b in batches:
            sock.sendall(b)

    # A thread writes while this one reads, so neither side's buffers fill up.
    th = threading.Thread(target=writer, daemon=True)
    t0 = perf()
    th.start()
    for _ in range(n):
        if "return" not in client.reply():
            raise RuntimeError("pipelined command failed")
    elapsed = perf() - t0
    th.join()
    return n / elapsed


def bench_pairs(client: Client, n: int) -> float:
    t0 = perf()
    for i in range(n):
        a = client.cmd("blockdev-add", {"driver": "null-co", "node-name": "bench0"}, i)
        d = client.cmd("blockdev-del", {"node-name": "bench0"}, i)
        if "return" not in a or "return" not in d:
            raise RuntimeError(f"blockdev-add/del failed: {a} {d}")
    return n / (perf() - t0)


def bench_inprocess_pairs(n: int) -> dict[str, float]:
    """Pairs per second through Dispatcher.execute and straight to the handlers."""
    from qmpd.commands.dispatch import Daemon, Dispatcher
    from qmpd.jobs.clock import VirtualClock

    dispatcher = Dispatcher(Daemon(job_time=VirtualClock()))
    execute = dispatcher.execute
    add = dispatcher.table["blockdev-add"].handler
    delete = dispatcher.table["blockdev-del"].handler
    daemon = dispatcher.daemon
    out = {}
    t0 = perf()
    for i in range(n):
        execute("blockdev-add", {"driver": "null-co", "node-name": f"v{i}"})
        execute("blockdev-del", {"node-name": f"v{i}"})
    out["validated"] = n / (perf() - t0)
    t0 = perf()
    for i in range(n):
        add(daemon, {"driver": "null-co", "node-name": f"h{i}"})
        delete(daemon, {"node-name": f"h{i}"})
    out["unvalidated"] = n / (perf() - t0)
    return out


def run_cmds(client: Client, cmds: list[tuple[str, dict]]) -> tuple[float, int]:
    """(commands per second, errors) for commands sent one at a time."""
    errors = 0
    t0 = perf()
    for i, (ex, a) in enumerate(cmds):
        if "return" not in client.cmd(ex, a, i):
            errors += 1
    return len(cmds) / (perf() - t0), errors


def time_query(client: Client, execute: str, arguments: dict | None, reps: int) -> float:
    """Best time for one query, from sending it to its whole reply parsed."""
    best = float("inf")
    msg: dict[str, Any] = {"execute": execute, "id": "q"}
    if arguments is not None:
        msg["arguments"] = arguments
    data = json.dumps(msg).encode() + b"\n"
    for _ in range(reps):
        t0 = perf()
        client.sock.sendall(data)
        r = client.reply()
        best = min(best, perf() - t0)
        if "return" not in r:
            raise RuntimeError(f"{execute} failed: {r}")
    return best


def bench_graph(client: Client, g: int, reps: int) -> dict[str, float]:
    """The oracle's graph phase: g null-co nodes nI, g raw nodes rI over them
    (2g nodes in all), reopen of every rI read-only, the 2g-node queries."""
    out: dict[str, float] = {}
    out["add_per_s"], e1 = run_cmds(client, [("blockdev-add", {
        "driver": "null-co", "node-name": f"n{i}"}) for i in range(g)])
    rate, e2 = run_cmds(client, [("blockdev-add", {
        "driver": "raw", "node-name": f"r{i}", "file": f"n{i}"}) for i in range(g)])
    out["add_per_s"] = min(out["add_per_s"], rate)
    out["reopen_per_s"], e3 = run_cmds(client, [("blockdev-reopen", {"options": [{
        "driver": "raw", "node-name": f"r{i}", "file": f"n{i}", "read-only": True}]})
        for i in range(g)])
    # Right after a change (a write threshold set on one node) the reply is
    # built anew; asked again with nothing changed, qmpd sends the reply it
    # encoded last time.  Both are timed, against the same on QEMU.
    best = float("inf")
    for i in range(reps):
        r = client.cmd("block-set-write-threshold",
                       {"node-name": "n0", "write-threshold": i + 1}, "t")
        if "return" not in r:
            raise RuntimeError(f"block-set-write-threshold failed: {r}")
        best = min(best, time_query(client, "query-named-block-nodes", None, 1))
    out["qnbn_changed_s"] = best
    out["qnbn_s"] = time_query(client, "query-named-block-nodes", None, reps)
    out["qnbn_flat_s"] = time_query(client, "query-named-block-nodes", {"flat": True}, reps)
    _, e4 = run_cmds(client, [("blockdev-del", {"node-name": f"r{i}"}) for i in range(g)]
                     + [("blockdev-del", {"node-name": f"n{i}"}) for i in range(g)])
    if e1 or e2 or e3 or e4:
        raise RuntimeError(f"graph phase: {e1 + e2 + e3 + e4} commands failed")
    return out


def _rss_kib(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def bench_reopen_scaling(big: int, reps: int) -> dict[str, float]:
    """A reopen on a ``big``-node graph against the same reopen on a 10-node
    graph (in process: the engine alone), and memory per node."""
    import gc

    from qmpd.engine.graph import BlockGraph
    from qmpd.engine.reopen import reopen

    out: dict[str, float] = {}
    graphs = []
    for n in (10, big):
        gc.collect()
        rss0 = _rss_kib()
        g = BlockGraph()
        for i in range(n):
            g.add({"driver": "null-co", "node-name": f"n{i}"})
        g.add({"driver": "raw", "node-name": "r", "file": {"driver": "null-co"}})
        if n == big:
            out["kib_per_node"] = (_rss_kib() - rss0) / n
        graphs.append(g)
    entry = [{"driver": "raw", "node-name": "r", "file": {"driver": "null-co"}}]
    times = []
    for g in graphs:
        # Interleaved rounds, best of each: both graphs see the same load.
        best = float("inf")
        for _ in range(reps):
            g.visits = 0
            t0 = perf()
            reopen(g, [dict(entry[0], **{"read-only": True})])
            reopen(g, entry)
            best = min(best, perf() - t0)
        times.append(best / 2)
        out[f"visits_{len(g.nodes)}"] = g.visits
    out["reopen_small_us"] = times[0] * 1e6
    out["reopen_big_us"] = times[1] * 1e6
    out["reopen_big_over_small"] = times[1] / times[0]
    return out


def bench_load_memory(server: Any, clients: int, commands: int) -> dict[str, float]:
    """Daemon RSS before and after ``clients`` x ``commands`` mixed commands
    (the load test's script), after a warm-up of a tenth of that."""
    from tests.hardening.test_load import script

    sock_path = server.sock_path

    def one(cid: int, n: int) -> None:
        c = connect(sock_path)
        s = c.sock
        steps = script(cid, n)
        for b in range(0, len(steps), 10):
            batch = steps[b:b + 10]
            s.sendall(b"".join(m for m, _ in batch))
            for _ in batch:
                c.reply()
        s.close()

    def round_(n: int) -> None:
        ths = [threading.Thread(target=one, args=(cid, n)) for cid in range(clients)]
        for t in ths:
            t.start()
        for t in ths:
            t.join()

    pid = server.proc.pid
    # The target may run under a shell: measure the process that serves.
    while True:
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                kids = f.read().split()
        except OSError:
            kids = []
        if not kids:
            break
        pid = int(kids[0])
    round_(max(20, commands // 10))
    time.sleep(0.2)  # the daemon notices the disconnects
    before = _rss_kib(pid)
    t0 = perf()
    round_(commands)
    elapsed = perf() - t0
    time.sleep(0.2)
    after = _rss_kib(pid)
    return {"load_rss_before_kib": before, "load_rss_after_kib": after,
            "load_rss_growth_pct": 100.0 * (after - before) / before,
            "load_cmds_per_s": clients * commands / elapsed}


def bench_flood(server: Any, megabytes: float) -> dict[str, float]:
    """Latency of one client's query-version while another client sends one
    message of ``megabytes`` MB of tiny tokens (``[1,1,1,...]`` in a
    command's arguments), median and worst."""
    flooder, other = connect(server.sock_path), connect(server.sock_path)
    n = int(megabytes * 1e6 / 2)
    msg = (b'{"execute": "query-version", "arguments": {"x": [' + b"1," * n + b'1]}}\n')
    answered = threading.Event()

    def send() -> None:
        flooder.sock.sendall(msg)

    def receive() -> None:
        flooder.reply()
        answered.set()

    threads = [threading.Thread(target=send, daemon=True),
               threading.Thread(target=receive, daemon=True)]
    for t in threads:
        t.start()
    lat = []
    while not answered.is_set():
        t0 = perf()
        other.cmd("query-version")
        lat.append(perf() - t0)
    for t in threads:
        t.join()
    flooder.sock.close()
    other.sock.close()
    return {"flood_other_median_ms": statistics.median(lat) * 1e3,
            "flood_other_max_ms": max(lat) * 1e3}


def measure(target: str, args: argparse.Namespace, qemu: str | None = None) -> dict[str, float]:
    """The phases against ``target`` ("qemu": the QEMU binary ``qemu``, else PATH's)."""
    res = {"greeting_ms": bench_startup(target, args.startup_runs, qemu) * 1000}
    launch = Launch(target, qemu)
    # Best of several rounds: on a small shared machine the other load only
    # ever makes a round slower, so the best round is the least noisy figure.
    rounds = range(args.rounds)
    try:
        res["seq_per_s"] = max(bench_seq(launch.client, args.seq) for _ in rounds)
        res["pipe_per_s"] = max(bench_pipe(launch.client, args.pipe, args.batch)
                                for _ in rounds)
        res["pairs_per_s"] = max(bench_pairs(launch.client, args.pairs) for _ in rounds)
        if args.graph:
            graph = [bench_graph(launch.client, args.graph, args.rounds) for _ in rounds]
            res.update({k: max(r[k] for r in graph) for k in ("add_per_s", "reopen_per_s")})
            res.update({k: min(r[k] for r in graph)
                        for k in ("qnbn_s", "qnbn_flat_s", "qnbn_changed_s")})
        if target != "qemu" and args.load_clients:
            res.update(bench_load_memory(launch.server, args.load_clients, args.load_commands))
        # Last: the flood's 2M tokens would weigh on the memory figures.
        # QEMU's -qmp socket takes one client at a time: qmpd only.
        if target != "qemu" and args.flood_mb:
            res.update(bench_flood(launch.server, args.flood_mb))
    finally:
        launch.close()
    return res


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--seq", type=int, default=3000)
    ap.add_argument("--pipe", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--pairs", type=int, default=500)
    ap.add_argument("--graph", type=int, default=2000,
                    help="null-co nodes (and as many raw nodes) in the graph phase; 0: skip")
    ap.add_argument("--big", type=int, default=100_000,
                    help="nodes in the big graph of the reopen-scaling measurement")
    ap.add_argument("--load-clients", type=int, default=64)
    ap.add_argument("--load-commands", type=int, default=200)
    ap.add_argument("--flood-mb", type=float, default=2.0,
                    help="size of the tiny-token message in the flood phase; 0: skip")
    ap.add_argument("--rounds", type=int, default=3, help="report the best of this many rounds")
    ap.add_argument("--startup-runs", type=int, default=5)
    ap.add_argument("--no-qemu", action="store_true", help="measure qmpd only")
    ap.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = ap.parse_args(argv)

    def qmpd(version: str) -> str:
        return (f"cmd:{shlex.quote(sys.executable)} -m qmpd --socket {{sock}} "
                f"--qemu-version {version}")

    results: dict[str, Any] = {"load_avg_1m": os.getloadavg()[0]}
    results["qmpd"] = measure(qmpd("7.2.22"), args)
    results["qmpd"].update({f"inprocess_pairs_{k}_per_s": v
                            for k, v in bench_inprocess_pairs(args.pairs).items()})
    results["qmpd"].update(bench_reopen_scaling(args.big, max(args.rounds, 5)))
    have_qemu = shutil.which("qemu-system-x86_64") is not None and not args.no_qemu
    if have_qemu:
        results["qemu"] = measure("qemu", args)
    # A QEMU 10.0 to compare the 10.0 profile with (same run, same machine).
    qemu10 = os.environ.get("QMPD_BENCH_QEMU") if not args.no_qemu else None
    if qemu10:
        results["qmpd-10.0"] = measure(qmpd("10.0.2"), args)
        results["qemu-10.0"] = measure("qemu", args, qemu10)

    rows = [("time to greeting (ms)", "greeting_ms", "{:.1f}"),
            ("sequential query-version (cmd/s)", "seq_per_s", "{:.0f}"),
            ("pipelined query-version (cmd/s)", "pipe_per_s", "{:.0f}"),
            ("blockdev-add+del pairs (pair/s)", "pairs_per_s", "{:.0f}")]
    if args.graph:
        rows += [("blockdev-add (cmd/s)", "add_per_s", "{:.0f}"),
                 ("blockdev-reopen (cmd/s)", "reopen_per_s", "{:.0f}"),
                 (f"query-named-block-nodes, {2 * args.graph} nodes (s)", "qnbn_s", "{:.4f}"),
                 ("  the same, flat (s)", "qnbn_flat_s", "{:.4f}"),
                 ("  the same, just after a change (s)", "qnbn_changed_s", "{:.4f}")]
    if args.flood_mb:
        rows += [(f"{args.flood_mb:g} MB flood: other client, median (ms)",
                  "flood_other_median_ms", "{:.1f}"),
                 ("  and worst (ms)", "flood_other_max_ms", "{:.1f}")]

    def table(title: str, q: dict[str, float], e: dict[str, float] | None) -> None:
        # ratio = qmpd / QEMU: above 1 is better for rates, worse for the greeting time.
        print(f"{title:36} {'qmpd':>10}" + (f" {'QEMU':>10} {'qmpd/QEMU':>10}" if e else ""))
        for label, key, fmt in rows:
            line = f"{label:36} {fmt.format(q[key]):>10}"
            if e and key in e:
                line += f" {fmt.format(e[key]):>10} {q[key] / e[key]:>9.2f}x"
            print(line)

    q = results["qmpd"]
    table("QEMU 7.2 (--qemu-version 7.2.22)", q, results.get("qemu"))
    if qemu10:
        print()
        table("QEMU 10.0 (--qemu-version 10.0.2)", results["qmpd-10.0"], results["qemu-10.0"])
    print(f"{'in-process add+del, validated':36} {q['inprocess_pairs_validated_per_s']:>10.0f}")
    print(f"{'in-process add+del, no validation':36} {q['inprocess_pairs_unvalidated_per_s']:>10.0f}")
    print(f"{'reopen, 10-node graph (us)':36} {q['reopen_small_us']:>10.1f}")
    print(f"{f'reopen, {args.big}-node graph (us)':36} {q['reopen_big_us']:>10.1f}"
          f"   {q['reopen_big_over_small']:.2f}x the 10-node time (target <= 1.2x)")
    print(f"{'memory per node (KiB)':36} {q['kib_per_node']:>10.2f}")
    if "load_rss_growth_pct" in q:
        print(f"{'daemon RSS before/after load (KiB)':36} {q['load_rss_before_kib']:>10}"
              f" {q['load_rss_after_kib']:>10} {q['load_rss_growth_pct']:>+9.1f}%"
              f"  ({args.load_clients} clients x {args.load_commands} commands; target <= 10%)")
    print(f"machine: {os.cpu_count()} CPUs, {_cpu_model()}, "
          f"load average {os.getloadavg()[0]:.2f} (at start {results['load_avg_1m']:.2f})")
    print("targets: greeting <= 250 ms" + (
        ", sequential >= 2.5x QEMU, pipelined >= 10x QEMU, blockdev-add and -reopen"
        " >= 3x QEMU, query-named-block-nodes <= 0.5x QEMU's time" if have_qemu else
        " (qemu-system-x86_64 not installed: no ratios)"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
