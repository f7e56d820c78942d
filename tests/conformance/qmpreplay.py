#!/usr/bin/env python3
# ruff: noqa
# Vendored unchanged from the project's oracle tool (../shared/oracle/qmpreplay.py,
# stdlib only) so that CI, which has neither ../shared nor QEMU, replays and
# compares scenarios with exactly the oracle's normalizations.  Re-copy it
# rather than editing it here; project-specific logic lives in replay.py.
"""qmpreplay - replay QMP scenario files against a QMP server and compare transcripts.

Stdlib only (Python 3.11).  Two sub-commands:

  record   launch a server (real QEMU or an arbitrary command), replay one or more
           scenario files over its QMP UNIX socket, write a transcript per scenario
  compare  compare two transcripts (or two directories of transcripts) step by step

See README.md beside this file for the scenario and transcript formats.  Additions (backward compatible):

  * scenario "qemu_args": extra arguments appended to the QEMU command line
    (--target qemu only; e.g. ["-M", "pc", "-accel", "tcg"])
  * standalone step {"wait_event": NAME, "data": {...}} (no execute): waits for an
    event NAME whose data contains the given subset; events received during earlier
    steps count unless an earlier standalone wait consumed them.  The matching event
    (without timestamp) is recorded as the step's "reply" ({"timeout": true} if none)
  * "$NODE[<drv>:<file>]" in a step: before the step, query-named-block-nodes is sent
    and the placeholder becomes the node-name of the node with that drv and file
    (implicit/auto-named nodes first, then the lowest #block counter); the step is
    recorded unresolved, the choice under "node_subst"
  * top-level "expect", "post_shell", "notes", "intent", "source" are ignored
  * compare: block-job events are compared per job over the whole transcript, with
    drain-induced paused/running and standby/ready pairs removed (timing-dependent),
    instead of per step; "actual-size" values within one 4 KiB file-system block are
    equal (host extent-tree blocks, see FS_NOISE_KEYS)
"""

from __future__ import annotations

import argparse
import codecs
import json
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

DEFAULT_QEMU = os.environ.get("QMPREPLAY_QEMU", "qemu-system-x86_64")
DEFAULT_TIMEOUT = 5.0          # seconds to wait for the reply of one step
DEFAULT_QUIET = 0.3            # raw steps: stop reading after this long without a message
DEFAULT_STARTUP_TIMEOUT = 10.0  # seconds to wait for the socket + greeting
SERVER_LOG = "qmpreplay-server.log"
SOCK_NAME = "qmp.sock"

# Return values of these commands are compared after sorting lists of objects.
QUERY_COMMANDS = {
    "query-named-block-nodes",
    "query-block",
    "x-debug-query-block-graph",
    "query-block-jobs",
}
SORT_KEYS = ("node-name", "name", "id", "device", "qdev")

# qemu-io prints "<size>, <n> ops; 00.00 sec (1.2 GiB/sec and 1234.5678 ops/sec)"
QEMU_IO_TIMING = re.compile(
    r"(, \d+ ops; )[^\n]*?\([^()\n]*/sec and [0-9.]+ ops/sec\)")

# QEMU names implicit nodes "#block<counter><2 random digits>" (util/id.c id_generate);
# the random digits are replaced by "??" so that recordings are deterministic.
AUTO_NODE_NAME = re.compile(r"#block(\d+)(\d\d)(?!\d)")

TIERS = ("exact", "class", "kind", "mismatch")


# --------------------------------------------------------------------------
# helpers

def canon(v) -> str:
    """Canonical JSON text: strict deep equality (true != 1, 1 != 1.0)."""
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def subst(obj, old: str, new: str):
    """Replace substring `old` with `new` in every string (values and keys)."""
    if isinstance(obj, str):
        return obj.replace(old, new)
    if isinstance(obj, list):
        return [subst(x, old, new) for x in obj]
    if isinstance(obj, dict):
        return {subst(k, old, new): subst(v, old, new) for k, v in obj.items()}
    return obj


class Normalizer:
    """Makes recorded data independent of the temp dir and of timing noise."""

    def __init__(self, tmpdir: str, mask_keys=()):
        paths = {tmpdir, os.path.realpath(tmpdir)}
        self.paths = sorted(paths, key=len, reverse=True)
        self.mask_keys = set(mask_keys)

    def text(self, s: str) -> str:
        for p in self.paths:
            s = s.replace(p, "$DIR")
        s = QEMU_IO_TIMING.sub(r"\1<timing>", s)
        if "#block" in s:
            s = AUTO_NODE_NAME.sub(r"#block\1??", s)
        return s

    def __call__(self, obj):
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, list):
            return [self(x) for x in obj]
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                k2 = self.text(k)
                out[k2] = "<masked>" if k in self.mask_keys else self(v)
            return out
        return obj

    def event(self, ev: dict) -> dict:
        return self({k: v for k, v in ev.items() if k != "timestamp"})


# --------------------------------------------------------------------------
# QMP connection (newline-delimited JSON, tolerant of odd framing)

class Conn:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.text = ""
        # invalid UTF-8 from the server survives as lone surrogates (\udcXX)
        self.decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.jd = json.JSONDecoder()
        self.eof = False

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _try_parse(self):
        s = self.text
        i = 0
        n = len(s)
        while i < n and s[i] in " \t\r\n":
            i += 1
        if i:
            s = self.text = s[i:]
        if not s:
            return None
        nl = s.find("\n")
        if nl < 0 and not self.eof:
            return None  # wait for a complete line
        try:
            obj, end = self.jd.raw_decode(s)
        except json.JSONDecodeError as e:
            if nl >= 0 and e.pos > nl and not self.eof:
                return None  # maybe a multi-line message still arriving
            cut = nl if nl >= 0 else len(s)
            self.text = s[cut + 1:] if nl >= 0 else ""
            return {"unparseable": s[:cut].rstrip("\r")}
        self.text = s[end:]
        return obj

    def read_msg(self, deadline: float):
        """Next message, None on timeout; raises EOFError when the peer closed."""
        while True:
            m = self._try_parse()
            if m is not None:
                return m
            if self.eof:
                raise EOFError
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], remaining)
            if not r:
                continue
            try:
                data = self.sock.recv(1 << 16)
            except (ConnectionResetError, OSError):
                data = b""
            if not data:
                self.eof = True
                self.text += self.decoder.decode(b"", final=True)
            else:
                self.text += self.decoder.decode(data)


# --------------------------------------------------------------------------
# server process

class ServerError(Exception):
    pass


class Server:
    """A QMP server process listening on a UNIX socket in `tmpdir`."""

    def __init__(self, target: str, tmpdir: str, qemu: str = DEFAULT_QEMU,
                 env=None, log_path=None, qemu_args=()):
        self.tmpdir = tmpdir
        self.sock_path = os.path.join(tmpdir, SOCK_NAME)
        self.log_path = log_path or os.path.join(tmpdir, SERVER_LOG)
        if target == "qemu":
            argv = [qemu, "-machine", "none", "-nodefaults", "-display", "none",
                    "-qmp", f"unix:{self.sock_path},server=on,wait=off"]
            # scenario "qemu_args" (e.g. -M pc): for the qemu target only
            argv += [str(a) for a in qemu_args]
            shell = False
        elif target.startswith("cmd:"):
            cmd = target[4:]
            cmd = cmd.replace("{sock}", shlex.quote(self.sock_path))
            cmd = cmd.replace("{dir}", shlex.quote(tmpdir))
            argv = cmd
            shell = True
        else:
            raise ServerError(f"unknown target {target!r} (use 'qemu' or 'cmd:COMMAND')")
        self.argv = argv
        self.logf = open(self.log_path, "wb")
        self.log_reader = open(self.log_path, "rb")
        self.t_launch = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, shell=shell, stdin=subprocess.DEVNULL, stdout=self.logf,
            stderr=subprocess.STDOUT, start_new_session=True, env=env)
        self.sock = None

    def connect(self, timeout: float = DEFAULT_STARTUP_TIMEOUT, poll: float = 0.005):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise ServerError(f"server exited with {self.proc.returncode} before "
                                  "its socket accepted a connection")
            if os.path.exists(self.sock_path):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(self.sock_path)
                    self.sock = s
                    return s
                except OSError:
                    s.close()
            if time.monotonic() > deadline:
                raise ServerError("timed out waiting for the server socket")
            time.sleep(poll)

    def new_output(self) -> str:
        data = self.log_reader.read()
        return data.decode("utf-8", "surrogateescape") if data else ""

    def wait_exit(self, timeout: float):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _signal(self, sig):
        try:
            os.killpg(self.proc.pid, sig)   # the process group we created
        except (ProcessLookupError, PermissionError):
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass

    def stop(self, conn=None, quit_timeout: float = 3.0):
        """Ask politely with quit, then SIGTERM, then SIGKILL.  Returns (how, rc)."""
        how = "exited"
        if self.proc.poll() is None:
            how = "quit"
            if conn is not None:
                try:
                    # qmp_capabilities first, in case the scenario never negotiated
                    # (an error reply when it did; harmless)
                    conn.send(b'{"execute": "qmp_capabilities", "id": "qmpreplay-caps2"}\n'
                              b'{"execute": "quit", "id": "qmpreplay-quit"}\n')
                except OSError:
                    pass
            if conn is None or self.wait_exit(quit_timeout) is None:
                how = "terminated"
                self._signal(signal.SIGTERM)
                if self.wait_exit(2.0) is None:
                    how = "killed"
                    self._signal(signal.SIGKILL)
                    self.proc.wait()
        else:
            # make sure nothing of its process group lingers
            self._signal(signal.SIGKILL)
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.logf.close()
        return how, self.proc.returncode

    def close_files(self):
        self.log_reader.close()


# --------------------------------------------------------------------------
# recording

STEP_ACTIONS = ("execute", "exec-oob", "hmp", "raw", "raw_hex", "sleep")
# A step with "wait_event" but none of STEP_ACTIONS is a standalone wait: it sends
# nothing and waits for an event NAME whose "data" contains the step's "data"
# (subset); events received in earlier steps count unless an earlier standalone
# wait consumed them.
WAIT_STEP = "wait_event"

# "$NODE[<drv>:<file>]" stands for the node-name of the node that
# query-named-block-nodes reports with that drv and file (e.g. an implicitly
# opened backing node with an auto-generated name).
NODE_PLACEHOLDER = re.compile(r"\$NODE\[([^:\]]+):([^\]]+)\]")


def _node_rank(name: str):
    m = AUTO_NODE_NAME.fullmatch(name)
    if m:
        return (0, int(m.group(1)), name)
    return (1, 0, name)


def is_wait_step(step: dict) -> bool:
    return WAIT_STEP in step and not any(k in step for k in STEP_ACTIONS)


def data_subset(small, big) -> bool:
    if isinstance(small, dict):
        return isinstance(big, dict) and all(
            k in big and data_subset(v, big[k]) for k, v in small.items())
    return canon(small) == canon(big)


def find_placeholders(obj, acc=None):
    acc = [] if acc is None else acc
    if isinstance(obj, str):
        for m in NODE_PLACEHOLDER.finditer(obj):
            if m.group(0) not in acc:
                acc.append(m.group(0))
    elif isinstance(obj, list):
        for x in obj:
            find_placeholders(x, acc)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            find_placeholders(k, acc)
            find_placeholders(v, acc)
    return acc


def load_scenario(path: str) -> dict:
    with open(path) as f:
        sc = json.load(f)
    if not isinstance(sc, dict) or not isinstance(sc.get("steps", []), list):
        raise ValueError(f"{path}: scenario must be an object with a 'steps' list")
    sc.setdefault("name", os.path.splitext(os.path.basename(path))[0])
    for i, st in enumerate(sc.get("steps", [])):
        if not isinstance(st, dict) or not (any(k in st for k in STEP_ACTIONS)
                                            or WAIT_STEP in st):
            raise ValueError(f"{path}: step {i} needs one of "
                             f"{', '.join(STEP_ACTIONS + (WAIT_STEP,))}")
    return sc


def step_message(step: dict, msg_id):
    """The QMP object to send for an execute/exec-oob/hmp step."""
    if "hmp" in step:
        args = {"command-line": step["hmp"]}
        if "cpu-index" in step:
            args["cpu-index"] = step["cpu-index"]
        return {"execute": "human-monitor-command", "arguments": args, "id": msg_id}
    key = "exec-oob" if "exec-oob" in step else "execute"
    msg = {key: step[key]}
    if "arguments" in step:
        msg["arguments"] = step["arguments"]
    msg["id"] = msg_id
    return msg


def step_command(step: dict):
    if "hmp" in step:
        return "human-monitor-command"
    return step.get("execute", step.get("exec-oob"))


class Recorder:
    def __init__(self, target: str, qemu: str = DEFAULT_QEMU, timeout: float = DEFAULT_TIMEOUT,
                 quiet: float = DEFAULT_QUIET, startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
                 mask_keys=(), keep: bool = False, tmpbase=None, log=None):
        self.target = target
        self.qemu = qemu
        self.timeout = timeout
        self.quiet = quiet
        self.startup_timeout = startup_timeout
        self.mask_keys = list(mask_keys)
        self.keep = keep
        self.tmpbase = tmpbase
        self.log = log or (lambda *a: None)

    def record(self, sc: dict) -> dict:
        tmpdir = tempfile.mkdtemp(prefix="qmpreplay-", dir=self.tmpbase)
        try:
            return self._record(sc, tmpdir)
        finally:
            if self.keep:
                self.log(f"  kept temp dir {tmpdir}")
            else:
                shutil.rmtree(tmpdir, ignore_errors=True)

    def _record(self, sc: dict, tmpdir: str) -> dict:
        norm = Normalizer(tmpdir, list(sc.get("mask_keys", [])) + self.mask_keys)
        tr = {"scenario": sc["name"]}
        if "description" in sc:
            tr["description"] = sc["description"]
        env = dict(os.environ, DIR=tmpdir)

        for cmd in sc.get("setup", []):
            r = subprocess.run(cmd, shell=True, env=env, cwd=tmpdir,
                               stdin=subprocess.DEVNULL, capture_output=True)
            if r.returncode != 0:
                tr["setup_error"] = {
                    "command": cmd, "returncode": r.returncode,
                    "output": norm.text((r.stdout + r.stderr).decode("utf-8", "replace"))}
                tr["steps"] = []
                return tr

        timeout = float(sc.get("timeout", self.timeout))
        quiet = float(sc.get("quiet", self.quiet))
        qemu_args = sc.get("qemu_args", [])
        if not isinstance(qemu_args, list):
            qemu_args = shlex.split(str(qemu_args))
        qemu_args = [subst(subst(str(a), "${DIR}", tmpdir), "$DIR", tmpdir) for a in qemu_args]
        self._evq = []      # events not yet consumed by a standalone wait_event step
        server = Server(self.target, tmpdir, self.qemu, env=env, qemu_args=qemu_args)
        conn = None
        died = None
        try:
            try:
                conn = Conn(server.connect(self.startup_timeout))
                greeting = conn.read_msg(time.monotonic() + self.startup_timeout)
            except (ServerError, EOFError) as e:
                server.wait_exit(1.0)
                tr["startup_error"] = {"error": str(e) or "connection closed",
                                       "returncode": server.proc.poll(),
                                       "output": norm.text(server.new_output())}
                tr["steps"] = []
                return tr
            tr["greeting"] = norm(greeting) if greeting is not None else {"timeout": True}
            out = server.new_output()
            if out:
                tr["startup_output"] = norm.text(out)

            if sc.get("negotiate", True):
                caps = {"execute": "qmp_capabilities", "id": "qmpreplay-caps"}
                if "capabilities" in sc:
                    caps["arguments"] = {"enable": sc["capabilities"]}
                try:
                    conn.send((json.dumps(caps) + "\n").encode())
                    rec = self._wait_reply(conn, "qmpreplay-caps", timeout, norm)
                except (EOFError, OSError):
                    rec = {"reply": None, "server_died": True}
                tr["negotiation"] = rec.get("reply")
                if rec.get("server_died"):
                    died = -1

            steps = []
            tr["steps"] = steps
            for idx, raw_step in enumerate(sc.get("steps", [])):
                if died is not None:
                    break
                step = subst(subst(raw_step, "${DIR}", tmpdir), "$DIR", tmpdir)
                rec = {"index": idx, "step": norm(step)}
                steps.append(rec)
                try:
                    self._run_step(conn, server, step, idx, rec, timeout, quiet, norm)
                except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
                    rc = server.wait_exit(2.0)
                    rec["server_died"] = {"returncode": rc}
                    if "reply" not in rec and "replies" not in rec:
                        rec["reply"] = None
                    died = idx
                out = server.new_output()
                if out:
                    rec["output"] = norm.text(out)
        finally:
            how, rc = server.stop(conn)
            tail = server.new_output()
            server.close_files()
        if died is not None:
            tr["exit"] = {"how": "died", "step": died, "returncode": rc}
        else:
            tr["exit"] = {"how": how, "returncode": rc}
        if tail:
            tr["exit"]["output"] = norm.text(tail)
        return tr

    def _collect(self, conn, deadline, rec, norm, until=None):
        """Read until `until(msg)` is true (returns msg) or the deadline (returns None).
        Events go to rec['events'], other messages to rec['stray']."""
        while True:
            m = conn.read_msg(deadline)
            if m is None:
                return None
            if until is not None and until(m):
                return m
            if isinstance(m, dict) and "event" in m:
                rec.setdefault("events", []).append(norm.event(m))
                self._evq.append(m)
            else:
                rec.setdefault("stray", []).append(norm(m))

    def _wait_reply(self, conn, msg_id, timeout, norm, rec=None):
        rec = rec if rec is not None else {}

        def is_reply(m):
            # any non-event message carrying our id counts as the reply, even a
            # malformed one (classified later)
            return isinstance(m, dict) and "event" not in m and m.get("id") == msg_id

        m = self._collect(conn, time.monotonic() + timeout, rec, norm, is_reply)
        if m is None:
            rec["reply"] = {"timeout": True}
        else:
            rec["reply"] = norm({k: v for k, v in m.items() if k != "id"})
        return rec

    def _run_step(self, conn, server, step, idx, rec, timeout, quiet, norm):
        rec["events"] = []
        timeout = float(step.get("timeout", timeout))
        if is_wait_step(step):
            self._wait_step(conn, step, rec, timeout, norm)
            return
        placeholders = find_placeholders(step)
        if placeholders:
            step = self._resolve_nodes(conn, step, idx, placeholders, rec, timeout, norm)
        if "sleep" in step and not any(k in step for k in STEP_ACTIONS[:-1]):
            self._collect(conn, time.monotonic() + float(step["sleep"]), rec, norm,
                          lambda m: False)
            return
        if "raw" in step or "raw_hex" in step:
            if "raw" in step:
                data = step["raw"].encode("utf-8", "surrogatepass") + b"\n"
            else:
                data = bytes.fromhex(step["raw_hex"])
            conn.send(data)
            q = float(step.get("quiet", quiet))
            replies = []
            rec["replies"] = replies
            hard = time.monotonic() + timeout
            while True:
                m = conn.read_msg(min(hard, time.monotonic() + q))
                if m is None:
                    break
                if isinstance(m, dict) and "event" in m:
                    rec["events"].append(norm.event(m))
                    self._evq.append(m)
                else:
                    replies.append(norm(m))
        else:
            msg_id = step.get("id", f"qmpreplay-{idx}")
            conn.send((json.dumps(step_message(step, msg_id)) + "\n").encode())
            self._wait_reply(conn, msg_id, timeout, norm, rec)
        # optional: keep collecting events after the reply
        if "wait_event" in step and not any(
                e.get("event") == step["wait_event"] for e in rec["events"]):
            name = step["wait_event"]
            got = self._collect(conn, time.monotonic() + timeout, rec, norm,
                                lambda m: isinstance(m, dict) and m.get("event") == name)
            if got is None:
                rec["wait_event_timeout"] = True
            else:
                rec["events"].append(norm.event(got))
                self._evq.append(got)
        if "settle" in step:
            self._collect(conn, time.monotonic() + float(step["settle"]), rec, norm,
                          lambda m: False)

    def _wait_step(self, conn, step, rec, timeout, norm):
        """Standalone {"wait_event": NAME, "data": {...}}: the matching event (without
        timestamp) becomes the step's reply, {"timeout": true} when none came."""
        name = step[WAIT_STEP]
        want = step.get("data", {})

        def match(m):
            return isinstance(m, dict) and m.get("event") == name and \
                data_subset(want, m.get("data", {}))

        def take():
            for i, m in enumerate(self._evq):
                if match(m):
                    del self._evq[:i + 1]
                    return m
            return None

        got = take()
        if got is None:
            deadline = time.monotonic() + timeout
            while got is None:
                m = self._collect(conn, deadline, rec, norm,
                                  lambda m: isinstance(m, dict) and "event" in m)
                if m is None:
                    break
                rec["events"].append(norm.event(m))
                self._evq.append(m)
                got = take()
        rec["reply"] = norm.event(got) if got is not None else {"timeout": True}

    def _resolve_nodes(self, conn, step, idx, placeholders, rec, timeout, norm):
        """Replace $NODE[drv:file] placeholders (any target): query-named-block-nodes
        is sent first (id qmpreplay-<idx>-nodes, not recorded as a step) and the
        node with that drv and file is picked.  Unresolved placeholders stay as
        they are.  rec["node_subst"] records the (normalized) choice."""
        qid = f"qmpreplay-{idx}-nodes"
        conn.send((json.dumps({"execute": "query-named-block-nodes", "id": qid})
                   + "\n").encode())
        reply = self._collect(conn, time.monotonic() + timeout, rec, norm,
                              lambda m: isinstance(m, dict) and "event" not in m
                              and m.get("id") == qid)
        nodes = reply.get("return") if isinstance(reply, dict) else None
        nodes = nodes if isinstance(nodes, list) else []
        chosen = {}
        for ph in placeholders:
            m = NODE_PLACEHOLDER.fullmatch(ph)
            drv, fname = m.group(1), m.group(2)
            cands = [n.get("node-name") for n in nodes
                     if isinstance(n, dict) and n.get("drv") == drv
                     and isinstance(n.get("file"), str)
                     and isinstance(n.get("node-name"), str)
                     and (n["file"] == fname or norm.text(n["file"]) == norm.text(fname))]
            # several matches: independent of the reply's order, prefer implicit
            # (auto-named) nodes, the oldest first (lowest #block counter)
            chosen[ph] = min(cands, key=_node_rank) if cands else None
        rec["node_subst"] = {norm.text(k): (norm.text(v) if isinstance(v, str) else None)
                             for k, v in chosen.items()}

        def repl(mo):
            v = chosen.get(mo.group(0))
            return v if isinstance(v, str) else mo.group(0)

        def walk(o):
            if isinstance(o, str):
                return NODE_PLACEHOLDER.sub(repl, o)
            if isinstance(o, list):
                return [walk(x) for x in o]
            if isinstance(o, dict):
                return {walk(k): walk(v) for k, v in o.items()}
            return o
        return walk(step)


def write_json(obj, path=None):
    text = json.dumps(obj, indent=2) + "\n"
    if path is None or path == "-":
        sys.stdout.write(text)
    else:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)


def cmd_record(args) -> int:
    def log(*a):
        print(*a, file=sys.stderr, flush=True)

    if args.out and len(args.scenarios) > 1:
        log("--out takes one scenario; use --outdir for several")
        return 2
    rec = Recorder(args.target, qemu=args.qemu, timeout=args.timeout, quiet=args.quiet,
                   startup_timeout=args.startup_timeout, mask_keys=args.mask_key,
                   keep=args.keep, tmpbase=args.tmpdir, log=log)
    if args.outdir:
        os.makedirs(args.outdir, exist_ok=True)
    status = 0
    seen = {}
    for path in args.scenarios:
        try:
            sc = load_scenario(path)
        except (OSError, ValueError) as e:
            log(f"{path}: cannot load: {e}")
            status = 1
            continue
        if sc["name"] in seen:
            log(f"{path}: duplicate scenario name {sc['name']!r} (also {seen[sc['name']]})")
            status = 1
            continue
        seen[sc["name"]] = path
        t0 = time.monotonic()
        tr = rec.record(sc)
        dt = time.monotonic() - t0
        notes = []
        for key in ("setup_error", "startup_error"):
            if key in tr:
                notes.append(key)
                status = 1
        ex = tr.get("exit", {})
        if ex.get("how") == "died":
            notes.append(f"server died at step {ex.get('step')} (rc {ex.get('returncode')})")
        nto = sum(1 for s in tr["steps"] if s.get("reply") == {"timeout": True})
        if nto:
            notes.append(f"{nto} timeout(s)")
        if args.outdir:
            dest = os.path.join(args.outdir, sc["name"] + ".json")
        else:
            dest = args.out
        write_json(tr, dest)
        log(f"{sc['name']}: {len(tr['steps'])} steps in {dt:.2f}s"
            + (f" -> {dest}" if dest else "") + ("; " + "; ".join(notes) if notes else ""))
    return status


# --------------------------------------------------------------------------
# comparing

def _sort_lists(v):
    if isinstance(v, dict):
        return {k: _sort_lists(x) for k, x in v.items()}
    if isinstance(v, list):
        items = [_sort_lists(x) for x in v]
        if items and all(isinstance(x, dict) for x in items) and \
                any(k in x for x in items for k in SORT_KEYS):
            items.sort(key=lambda x: (tuple(canon(x.get(k)) for k in SORT_KEYS), canon(x)))
        return items
    return v


def _graph_norm(g):
    """x-debug-query-block-graph: replace the internal numeric ids by node names."""
    if not isinstance(g, dict) or not isinstance(g.get("nodes"), list):
        return g
    names = {}
    nodes = []
    for n in g["nodes"]:
        if not isinstance(n, dict):
            return g
        nm = n.get("name") or f"<{n.get('type', '?')}>"
        names[canon(n.get("id"))] = nm
        nodes.append({k: v for k, v in n.items() if k != "id"})
    edges = []
    for e in g.get("edges", []):
        if not isinstance(e, dict):
            return g
        e = dict(e)
        for k in ("parent", "child"):
            if k in e:
                e[k] = names.get(canon(e[k]), e[k])
        for k in ("perm", "shared-perm"):
            if isinstance(e.get(k), list):
                e[k] = sorted(e[k], key=canon)
        edges.append(e)
    nodes.sort(key=canon)
    edges.sort(key=lambda e: (canon(e.get("parent")), canon(e.get("name")),
                              canon(e.get("child")), canon(e)))
    out = dict(g)
    out["nodes"] = nodes
    out["edges"] = edges
    return out


# "actual-size" (image info in query-named-block-nodes / query-block) is the host
# file's st_blocks * 512.  It includes file-system metadata: on ext4 a file with more
# than 4 physical extents gets one 4 KiB extent-tree block, so the value changes with
# the host's free-space fragmentation (seen on QEMU itself: a qcow2 image written by a
# block job reports 2363392 or 2367488 bytes between runs with identical data maps).
# Pairs of actual-size values that differ by at most one such block are treated as
# equal when comparing; every other member is compared strictly.
FS_NOISE_KEYS = {"actual-size": 4096}


def absorb_fs_noise(e, a):
    """`a` with FS_NOISE_KEYS members set to `e`'s value where they are within the
    tolerance (structure-preserving walk of two normalized return values)."""
    if isinstance(e, dict) and isinstance(a, dict):
        out = {}
        for k, av in a.items():
            if k in e:
                ev = e[k]
                tol = FS_NOISE_KEYS.get(k)
                if tol is not None and type(ev) is int and type(av) is int \
                        and abs(ev - av) <= tol:
                    out[k] = ev
                else:
                    out[k] = absorb_fs_noise(ev, av)
            else:
                out[k] = av
        return out
    if isinstance(e, list) and isinstance(a, list) and len(e) == len(a):
        return [absorb_fs_noise(x, y) for x, y in zip(e, a)]
    return a


def normalize_return(cmd, value):
    if cmd not in QUERY_COMMANDS:
        return value
    if cmd == "x-debug-query-block-graph":
        value = _graph_norm(value)
    return _sort_lists(value)


def classify_msg(e, a, cmd=None, e_out="", a_out="", merge_hmp=True):
    """Tier for one pair of messages (reply objects)."""
    if isinstance(e, dict) and isinstance(a, dict):
        if "return" in e and "return" in a and "error" not in e and "error" not in a:
            ev, av = e["return"], a["return"]
            if merge_hmp and cmd == "human-monitor-command" and isinstance(ev, str) \
                    and isinstance(av, str):
                # qemu-io output goes to QEMU's stdout, not into the return string
                ev = (ev + (e_out or "")).replace("\r\n", "\n")
                av = (av + (a_out or "")).replace("\r\n", "\n")
            ev, av = normalize_return(cmd, ev), normalize_return(cmd, av)
            if cmd in QUERY_COMMANDS and canon(ev) != canon(av):
                av = absorb_fs_noise(ev, av)
            return "exact" if canon(ev) == canon(av) else "kind"
        if "error" in e and "error" in a:
            ee, ae = e["error"], a["error"]
            if not isinstance(ee, dict) or not isinstance(ae, dict):
                return "exact" if canon(ee) == canon(ae) else "kind"
            if ee.get("class") == ae.get("class"):
                return "exact" if ee.get("desc") == ae.get("desc") else "class"
            return "kind"
    return "exact" if canon(e) == canon(a) else "mismatch"


def worst(tiers):
    return max(tiers, key=TIERS.index) if tiers else "exact"


def is_comparable(step_rec) -> bool:
    return step_rec is not None and (
        "reply" in step_rec or "replies" in step_rec or "server_died" in step_rec)


def classify_step(es, as_, merge_hmp=True):
    """Returns (tier, reason) for one step; es/as_ may be None (missing)."""
    if es is None or as_ is None:
        return "mismatch", "step missing in " + ("expected" if es is None else "actual")
    ed, ad = es.get("server_died"), as_.get("server_died")
    if ed is not None or ad is not None:
        if ed is not None and ad is not None:
            if ed.get("returncode") == ad.get("returncode"):
                return "exact", "both died"
            return "kind", "both died, different exit status"
        return "mismatch", "server died in " + ("expected" if ed is not None else "actual")
    if "replies" in es or "replies" in as_:
        el, al = es.get("replies"), as_.get("replies")
        if not isinstance(el, list) or not isinstance(al, list):
            return "mismatch", "raw/non-raw step"
        if len(el) != len(al):
            return "mismatch", f"{len(el)} vs {len(al)} replies"
        return worst([classify_msg(x, y) for x, y in zip(el, al)]), ""
    e, a = es.get("reply"), as_.get("reply")
    et = isinstance(e, dict) and e.get("timeout") is True and len(e) == 1
    at = isinstance(a, dict) and a.get("timeout") is True and len(a) == 1
    if et or at:
        return ("exact", "both timed out") if et and at else ("mismatch", "timeout")
    cmd = step_command(es.get("step", {})) or step_command(as_.get("step", {}))
    return classify_msg(e, a, cmd, es.get("output", ""), as_.get("output", ""), merge_hmp), ""


def load_transcripts(path):
    if os.path.isdir(path):
        out = {}
        for fn in sorted(os.listdir(path)):
            if fn.endswith(".json"):
                with open(os.path.join(path, fn)) as f:
                    out[fn[:-5]] = json.load(f)
        return out
    with open(path) as f:
        return {os.path.splitext(os.path.basename(path))[0]: json.load(f)}


def first_diff(e, a, path="$"):
    """Path and values of the first difference between two JSON values, or None."""
    if isinstance(e, dict) and isinstance(a, dict):
        for k in list(e) + [k for k in a if k not in e]:
            if k not in a:
                return f"{path}.{k}", e[k], "<absent>"
            if k not in e:
                return f"{path}.{k}", "<absent>", a[k]
            d = first_diff(e[k], a[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(e, list) and isinstance(a, list):
        for i, (x, y) in enumerate(zip(e, a)):
            d = first_diff(x, y, f"{path}[{i}]")
            if d:
                return d
        if len(e) != len(a):
            return f"{path}.length", len(e), len(a)
        return None
    return None if canon(e) == canon(a) else (path, e, a)


def _short(v, limit=3000):
    s = json.dumps(v)
    return s if len(s) <= limit else s[:limit] + f"... ({len(s)} chars)"


# Block-job events arrive asynchronously: which step they land in, and how many
# drain-induced JOB_STATUS_CHANGE paused/running (standby/ready) pairs a job sees
# (a reopen or a query drains while the job runs), depend on timing.  They are
# therefore compared per job over the whole transcript, with those pairs removed,
# instead of per step.
JOB_EVENTS = {"JOB_STATUS_CHANGE", "BLOCK_JOB_READY", "BLOCK_JOB_COMPLETED",
              "BLOCK_JOB_CANCELLED", "BLOCK_JOB_PENDING", "BLOCK_JOB_ERROR"}
DRAIN_PAIRS = {("paused", "running"), ("standby", "ready")}


def _is_job_event(ev) -> bool:
    return isinstance(ev, dict) and ev.get("event") in JOB_EVENTS


def job_event_streams(tr) -> dict:
    """{job id: [events]} over all steps, drain pairs removed."""
    streams = {}
    for st in sorted((s for s in tr.get("steps", []) if isinstance(s, dict)),
                     key=lambda s: s.get("index", 0)):
        for ev in st.get("events", []) or []:
            if not _is_job_event(ev):
                continue
            data = ev.get("data") if isinstance(ev.get("data"), dict) else {}
            job = data.get("id", data.get("device"))
            out = streams.setdefault(canon(job), [])
            if ev.get("event") == "JOB_STATUS_CHANGE" and out and \
                    out[-1].get("event") == "JOB_STATUS_CHANGE" and \
                    (out[-1].get("data", {}).get("status"), data.get("status")) in DRAIN_PAIRS:
                out.pop()
                continue
            out.append(ev)
    return streams


def step_events(st) -> list:
    return [ev for ev in (st.get("events", []) or []) if not _is_job_event(ev)]


def compare_transcripts(exp, act, merge_hmp=True):
    """Returns (counts, notes, details) for one scenario."""
    counts = dict.fromkeys(TIERS, 0)
    notes = []
    details = []
    for key in ("setup_error", "startup_error"):
        for side, t in (("expected", exp), ("actual", act)):
            if key in t:
                notes.append(f"{key} in {side}")
    esteps = {s["index"]: s for s in exp.get("steps", []) if "index" in s}
    asteps = {s["index"]: s for s in act.get("steps", []) if "index" in s}
    ev_diff = 0
    def_diff = 0
    stray_diff = 0
    if "negotiation" in exp or "negotiation" in act:
        if classify_msg(exp.get("negotiation"), act.get("negotiation")) != "exact":
            notes.append("negotiation reply differs")
    for idx in sorted(set(esteps) | set(asteps)):
        es, as_ = esteps.get(idx), asteps.get(idx)
        if not is_comparable(es) and not is_comparable(as_):
            continue  # sleep steps
        if es is not None and as_ is not None:
            if canon(es.get("step")) != canon(as_.get("step")):
                def_diff += 1
            if canon(step_events(es)) != canon(step_events(as_)):
                ev_diff += 1
            if len(es.get("stray", [])) != len(as_.get("stray", [])):
                stray_diff += 1
        tier, why = classify_step(es, as_, merge_hmp)
        counts[tier] += 1
        if tier != "exact":
            details.append((idx, tier, why, es, as_))
    if ev_diff:
        notes.append(f"events differ in {ev_diff} step(s)")
    ejobs, ajobs = job_event_streams(exp), job_event_streams(act)
    job_diff = sum(1 for j in set(ejobs) | set(ajobs)
                   if canon(ejobs.get(j)) != canon(ajobs.get(j)))
    if job_diff:
        notes.append(f"block-job events differ for {job_diff} job(s)")
    if stray_diff:
        notes.append(f"unexpected (stray) messages differ in {stray_diff} step(s)")
    if def_diff:
        notes.append(f"step definitions differ in {def_diff} step(s)")
    eex, aex = exp.get("exit", {}), act.get("exit", {})
    if (eex.get("how") == "died") != (aex.get("how") == "died"):
        notes.append("server died in " + ("expected" if eex.get("how") == "died" else "actual"))
    return counts, notes, details


def cmd_compare(args) -> int:
    expd = load_transcripts(args.expected)
    actd = load_transcripts(args.actual)
    if not os.path.isdir(args.expected) and not os.path.isdir(args.actual):
        # two single files: compare them whatever their names
        (ek, ev), = expd.items()
        (_, av), = actd.items()
        expd, actd = {ek: ev}, {ek: av}
    totals = dict.fromkeys(TIERS, 0)
    rows = []
    for name in sorted(set(expd) | set(actd)):
        if name not in actd:
            n = sum(1 for s in expd[name].get("steps", []) if is_comparable(s))
            c = dict.fromkeys(TIERS, 0)
            c["mismatch"] = n
            rows.append((name, c, ["missing in actual"], []))
        elif name not in expd:
            rows.append((name, dict.fromkeys(TIERS, 0), ["only in actual (not counted)"], []))
            continue
        else:
            c, notes, details = compare_transcripts(expd[name], actd[name], not args.strict_hmp)
            rows.append((name, c, notes, details))
        for t in TIERS:
            totals[t] += rows[-1][1][t]

    w = max([len("scenario")] + [len(r[0]) for r in rows])
    print(f"{'scenario':<{w}}  {'steps':>5} {'exact':>5} {'class':>5} {'kind':>5} {'mism':>5}  notes")
    for name, c, notes, _ in rows:
        n = sum(c.values())
        print(f"{name:<{w}}  {n:>5} {c['exact']:>5} {c['class']:>5} {c['kind']:>5} "
              f"{c['mismatch']:>5}  {'; '.join(notes)}")
    if args.verbose:
        for name, c, notes, details in rows:
            for idx, tier, why, es, as_ in details:
                step = (es or as_ or {}).get("step")
                print(f"\n--- {name} step {idx}: {tier}" + (f" ({why})" if why else ""))
                print(f"  step:     {_short(step)}")
                for label, s in (("expected", es), ("actual", as_)):
                    if s is None:
                        print(f"  {label}: <missing>")
                        continue
                    body = {k: s[k] for k in ("reply", "replies", "server_died") if k in s}
                    print(f"  {label}: {_short(body)}")
                    if s.get("output"):
                        print(f"  {label} output: {_short(s['output'])}")
                if es is not None and as_ is not None and "reply" in es and "reply" in as_:
                    cmd = step_command(es.get("step", {}))
                    er, ar = es["reply"], as_["reply"]
                    if isinstance(er, dict) and isinstance(ar, dict) \
                            and "return" in er and "return" in ar:
                        er, ar = normalize_return(cmd, er["return"]), normalize_return(cmd, ar["return"])
                        if cmd in QUERY_COMMANDS:
                            ar = absorb_fs_noise(er, ar)
                    d = first_diff(er, ar)
                    if d:
                        print(f"  first difference at {d[0]}: {_short(d[1], 300)} vs {_short(d[2], 300)}")
        print()
    n = sum(totals.values())
    print(f"steps: {n} exact: {totals['exact']} class: {totals['class']} "
          f"kind: {totals['kind']} mismatch: {totals['mismatch']}")
    return 0


# --------------------------------------------------------------------------

def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="qmpreplay.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("record", help="replay scenarios and write transcripts")
    r.add_argument("scenarios", nargs="+", metavar="SCENARIO.json")
    r.add_argument("--target", default="qemu",
                   help="'qemu' (default) or 'cmd:COMMAND' with {sock} (and optionally {dir})")
    r.add_argument("--out", help="transcript file for a single scenario (default: stdout)")
    r.add_argument("--outdir", help="directory for one transcript per scenario (NAME.json)")
    r.add_argument("--qemu", default=DEFAULT_QEMU,
                   help="QEMU binary for --target qemu (default: $QMPREPLAY_QEMU or %(default)s)")
    r.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                   help="per-step reply timeout in seconds (default %(default)s)")
    r.add_argument("--quiet", type=float, default=DEFAULT_QUIET,
                   help="raw steps: quiet period that ends reading (default %(default)s)")
    r.add_argument("--startup-timeout", type=float, default=DEFAULT_STARTUP_TIMEOUT)
    r.add_argument("--mask-key", action="append", default=[],
                   help="replace the value of every object member with this name by '<masked>'")
    r.add_argument("--tmpdir", help="where to create per-scenario temp dirs (default: system)")
    r.add_argument("--keep", action="store_true", help="keep the per-scenario temp dirs")
    r.set_defaults(func=cmd_record)

    c = sub.add_parser("compare", help="compare transcripts (files or directories)")
    c.add_argument("expected")
    c.add_argument("actual")
    c.add_argument("--verbose", "-v", action="store_true",
                   help="print every non-exact step with both replies")
    c.add_argument("--strict-hmp", action="store_true",
                   help="compare human-monitor-command return strings alone, without "
                        "appending the server output captured during the step")
    c.set_defaults(func=cmd_compare)

    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
