"""Record QEMU 7.2's argument-validation replies as test data for ``qmpd.schema``.

Not collected by pytest and not run in CI (it needs ``qemu-system-x86_64``).

    python tests/schema/record_validation.py cases [--n 600] [--seed 7]
        -> tests/data/schema/recorded_cases.json
    python tests/schema/record_validation.py scenarios [DIR]
        -> tests/data/schema/scenario_steps.json

``cases`` starts from valid arguments for a handful of commands (blockdev-add
for many drivers, blockdev-reopen, object-add, jobs, queries), applies 1-5
random faults (dropped members, wrong JSON types, unknown keys, bad enum
values, shuffled key order, nested inline children) and records QEMU's reply.
Each case stores the arguments in the order sent and QEMU's ``desc`` (or
``null`` if the command returned).  The replay test compares only replies
that come from the QAPI visitor; for the others it checks that ``validate``
lets the arguments through.

``scenarios`` pulls every ``execute`` step with object arguments out of the
shared QEMU transcripts (``/work/shared/scenarios-qemu``).
"""

from __future__ import annotations

import copy
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data" / "schema"

# Valid starting points: (command, arguments).  File names point nowhere so a
# case that passes validation fails harmlessly when QEMU opens it.
BASES: list[tuple[str, dict]] = [
    ("blockdev-add", {"driver": "null-co", "node-name": "n0", "size": 1048576,
                      "read-zeroes": True, "latency-ns": 0}),
    ("blockdev-add", {"driver": "null-aio", "node-name": "na", "read-only": True,
                      "cache": {"direct": False, "no-flush": True}}),
    ("blockdev-add", {"driver": "file", "node-name": "f0", "filename": "/nonexistent/x.img",
                      "aio": "threads", "locking": "off", "discard": "unmap",
                      "detect-zeroes": "off"}),
    ("blockdev-add", {"driver": "qcow2", "node-name": "q0",
                      "file": {"driver": "file", "filename": "/nonexistent/a.qcow2"},
                      "backing": None, "lazy-refcounts": True,
                      "overlap-check": {"template": "all", "main-header": True},
                      "cache-size": 1024, "encrypt": {"format": "luks", "key-secret": "s0"}}),
    ("blockdev-add", {"driver": "qcow2", "node-name": "q1", "file": "f0",
                      "backing": {"driver": "raw", "file": {"driver": "null-co"}},
                      "overlap-check": "cached", "data-file": "f1"}),
    ("blockdev-add", {"driver": "raw", "node-name": "r0", "file": "f0", "offset": 0, "size": 512}),
    ("blockdev-add", {"driver": "throttle", "node-name": "t0", "throttle-group": "g0",
                      "file": {"driver": "null-co"}}),
    ("blockdev-add", {"driver": "copy-on-read", "node-name": "c0", "file": "n0", "bottom": "x"}),
    ("blockdev-add", {"driver": "blkdebug", "node-name": "d0", "image": {"driver": "null-co"},
                      "inject-error": [{"event": "read_aio", "errno": 5, "once": True}],
                      "set-state": [{"event": "write_aio", "new_state": 2}],
                      "take-child-perms": ["write"], "align": 512}),
    ("blockdev-add", {"driver": "blkverify", "node-name": "v0", "test": "n0",
                      "raw": {"driver": "null-co"}}),
    ("blockdev-add", {"driver": "quorum", "node-name": "qu",
                      "children": ["n0", {"driver": "null-co"}], "vote-threshold": 1,
                      "read-pattern": "fifo"}),
    ("blockdev-add", {"driver": "preallocate", "node-name": "p0", "file": "n0",
                      "prealloc-align": 4096, "prealloc-size": 1024}),
    ("blockdev-add", {"driver": "compress", "node-name": "cz", "file": "n0"}),
    ("blockdev-add", {"driver": "nbd", "node-name": "nb",
                      "server": {"type": "inet", "host": "127.0.0.1", "port": "1"},
                      "export": "x"}),
    ("blockdev-add", {"driver": "ssh", "node-name": "sh",
                      "server": {"host": "127.0.0.1", "port": "1"}, "path": "/x"}),
    ("blockdev-add", {"driver": "luks", "node-name": "lk", "file": "f0", "key-secret": "s"}),
    ("blockdev-reopen", {"options": [{"driver": "null-co", "node-name": "n0"},
                                     {"driver": "qcow2", "node-name": "q0", "file": "f0"}]}),
    ("blockdev-del", {"node-name": "zz"}),
    ("query-named-block-nodes", {"flat": True}),
    ("object-add", {"qom-type": "iothread", "id": "io0", "poll-max-ns": 0, "aio-max-batch": 0}),
    ("object-add", {"qom-type": "throttle-group", "id": "tg0",
                    "limits": {"bps-total": 100, "iops-read": 5}, "x-bps-total": 1}),
    ("object-add", {"qom-type": "secret", "id": "s0", "data": "x", "format": "raw"}),
    ("object-del", {"id": "nosuch"}),
    ("block-stream", {"job-id": "j", "device": "nosuch", "speed": 0, "on-error": "report",
                      "auto-finalize": True}),
    ("block-commit", {"job-id": "j", "device": "nosuch", "top-node": "a", "base-node": "b",
                      "speed": 0, "on-error": "stop"}),
    ("block-job-set-speed", {"device": "nosuch", "speed": 1}),
    ("block-job-cancel", {"device": "nosuch", "force": True}),
    ("job-pause", {"id": "nosuch"}),
    ("job-dismiss", {"id": "nosuch"}),
    ("query-name", {}),
    ("query-status", {}),
    ("x-debug-query-block-graph", {}),
    ("human-monitor-command", {"command-line": "info version", "cpu-index": 0}),
]

BAD_VALUES: list[Any] = [5, 0, 1.5, "x", "", True, False, None, [], [1], ["a", 2], {},
                         {"a": 1}, 18446744073709551615, 1 << 64, -(1 << 63) - 1, 2.0]
UNKNOWN_KEYS = ["bogus", "x", "y", "zzz", "aaa", "file", "backing", "size", "filename",
                "node-name", "driver", "a", "b", "c", "cache", "image", "children",
                "limits", "qom-type", "id", "data", "k1", "k2", "k3", "Size", "_x", "x-y",
                "detect-zeroes", "read-only", "speed", "device", "options", "flat"]
BAD_ENUMS = ["bogus", "", "FILE", "Null-co", "on ", "none", "native", "all"]
ENUM_KEYS = {"driver", "discard", "detect-zeroes", "aio", "locking", "template", "format",
             "event", "iotype", "read-pattern", "on-error", "qom-type", "type", "overlap-check"}
INLINE = [{"driver": "null-co"}, {"driver": "file", "filename": "/nonexistent/y"},
          {"driver": "raw", "file": {"driver": "null-co", "size": 512}},
          {"driver": "qcow2", "file": {"driver": "null-co"}, "backing": None}]


def dicts_in(o: Any) -> list[dict]:
    out: list[dict] = []
    if isinstance(o, dict):
        out.append(o)
        for v in o.values():
            out += dicts_in(v)
    elif isinstance(o, list):
        for v in o:
            out += dicts_in(v)
    return out


def mutate(rng: random.Random, args: dict, command: str) -> None:
    """Apply one random fault somewhere in ``args`` (in place)."""
    d = rng.choice(dicts_in(args))
    op = rng.choice(["drop", "retype", "retype", "add", "add", "enum", "shuffle", "nest"])
    keys = list(d)
    if op == "drop" and keys:
        del d[rng.choice(keys)]
    elif op == "retype" and keys:
        k = rng.choice(keys)
        v = copy.deepcopy(rng.choice(BAD_VALUES))
        if isinstance(v, int) and not isinstance(v, bool) and v < 0 and k == "size":
            v = 7  # null-co size < 0 aborts QEMU 7.2
        if k == "options" and v == []:
            v = {}  # blockdev-reopen options:[] aborts QEMU 7.2
        d[k] = v
    elif op == "add":
        for _ in range(rng.randint(1, 5)):
            k = rng.choice(UNKNOWN_KEYS)
            if k not in d:
                d[k] = copy.deepcopy(rng.choice(BAD_VALUES[:8]))
    elif op == "enum":
        ks = [k for k in keys if k in ENUM_KEYS] or keys
        if ks:
            d[rng.choice(ks)] = rng.choice(BAD_ENUMS)
    elif op == "shuffle":
        items = list(d.items())
        rng.shuffle(items)
        d.clear()
        d.update(items)
    elif op == "nest":
        ks = [k for k in keys if k in ("file", "backing", "image", "test", "raw", "data-file")]
        if ks:
            d[rng.choice(ks)] = copy.deepcopy(rng.choice(INLINE))
        elif "children" in d and isinstance(d["children"], list):
            d["children"].append(copy.deepcopy(rng.choice(INLINE)))


def gen_cases(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    cases = []
    while len(cases) < n:
        command, base = rng.choice(BASES)
        args = copy.deepcopy(base)
        for _ in range(rng.randint(1, 5)):
            mutate(rng, args, command)
        if command == "blockdev-reopen" and args.get("options") == []:
            continue
        cases.append({"command": command, "arguments": args})
    return cases


def gen_targeted(seed: int) -> list[dict]:
    """Hand-picked corners: integer kinds, list paths, deep nesting, many unknown keys."""
    c: list[tuple[str, dict]] = []
    for v in ["x", 1.5, -1, 1 << 64, 18446744073709551615, None, True]:
        c.append(("blockdev-add", {"driver": "null-co", "node-name": "n", "latency-ns": v}))
        c.append(("blockdev-add", {"driver": "blkdebug", "image": "n", "max-transfer": v}))
        c.append(("blockdev-add", {"driver": "nbd", "server": {"type": "unix", "path": "/x"},
                                   "reconnect-delay": v}))
        c.append(("object-add", {"qom-type": "memory-backend-ram", "id": "m", "size": v}))
        c.append(("object-add", {"qom-type": "memory-backend-ram", "id": "m", "size": 4096,
                                 "host-nodes": [0, v]}))
        c.append(("object-add", {"qom-type": "iothread", "id": "io", "poll-grow": v}))
        c.append(("block-job-set-speed", {"device": "j", "speed": v}))
        c.append(("x-debug-query-block-graph", {"x": v}))
        c.append(("blockdev-add", {"driver": "ssh", "server": {"host": "h", "port": "1", "to": v},
                                   "path": "/x"}))
    for v in [1 << 31, -(1 << 31) - 1, 1 << 32, 65536, -1]:
        c.append(("blockdev-add", {"driver": "blkdebug", "image": "n", "opt-discard": v}))
        c.append(("object-add", {"qom-type": "thread-context", "id": "t", "cpu-affinity": [v]}))
        c.append(("blockdev-add", {"driver": "nbd", "server": {"type": "unix", "path": "/x"},
                                   "open-timeout": v}))
    deep: dict = {"driver": "null-co"}
    for i in range(6):
        deep = {"driver": "qcow2", "file": {"driver": "file", "filename": f"/nonexistent/{i}"},
                "backing": deep}
    for fault in [("size", "x"), ("bogus", 1), ("driver", "nosuch"), ("driver", None),
                  ("cache", {"direct": 1}), ("read-only", "yes")]:
        d = copy.deepcopy(deep)
        inner = d
        while "backing" in inner:
            inner = inner["backing"]
        inner[fault[0]] = fault[1]
        c.append(("blockdev-add", dict(d, **{"node-name": "deep"})))
        c.append(("blockdev-reopen", {"options": [{"driver": "null-co", "node-name": "a"},
                                                  dict(d, **{"node-name": "deep"})]}))
    rng = random.Random(seed)
    names = UNKNOWN_KEYS + ["\u00e9t\u00e9", "n\u00f8de", "x" * 40, "A", "B", "C", "k.y", "0"]
    for _ in range(120):
        keys = rng.sample(names, rng.randint(2, 12))
        base = copy.deepcopy(rng.choice(BASES[:6])[1])
        for k in keys:
            if k not in base:
                base[k] = rng.choice([1, "x", None])
        items = list(base.items())
        rng.shuffle(items)
        cmd = rng.choice(["blockdev-add", "blockdev-add", "query-name", "blockdev-reopen"])
        if cmd == "query-name":
            c.append((cmd, {k: 1 for k in keys}))
        elif cmd == "blockdev-reopen":
            c.append((cmd, {"options": [dict(items)]}))
        else:
            c.append((cmd, dict(items)))
    for opts in [[None], [5], ["n0"], [{"driver": "null-co", "node-name": "a"}, None],
                 [{"node-name": "a"}], [{"driver": ""}], [{"driver": 1}], [[]]]:
        c.append(("blockdev-reopen", {"options": opts}))
    for v in [["oob", "foo"], [None], "oob", [1], {}]:
        c.append(("query-block", {"enable": v}))
    return [{"command": cmd, "arguments": a} for cmd, a in c]


class Qemu:
    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="schema-rec-")
        self.sock_path = os.path.join(self.dir, "qmp.sock")
        self.proc = subprocess.Popen(
            ["qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none",
             "-qmp", f"unix:{self.sock_path},server=on,wait=off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(self.sock_path):
                break
            time.sleep(0.05)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.sock_path)
        self.sock.settimeout(5)
        self.f = self.sock.makefile("rwb")
        self.f.readline()
        self.call("qmp_capabilities", {})

    def call(self, command: str, args: dict) -> dict:
        msg = {"execute": command, "arguments": args}
        self.f.write(json.dumps(msg).encode() + b"\n")
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError
            r = json.loads(line)
            if "event" not in r:
                return r

    def close(self) -> None:
        try:
            self.sock.close()
        finally:
            self.proc.kill()
            self.proc.wait()


def record_cases(n: int, seed: int) -> None:
    cases = gen_cases(n, seed) + gen_targeted(seed)
    q = Qemu()
    out = []
    try:
        for c in cases:
            try:
                r = q.call(c["command"], c["arguments"])
            except (EOFError, OSError):
                # A hang (timeout) or a crash: skip the case, start afresh.
                print("QEMU died or hung on", json.dumps(c), file=sys.stderr)
                q.close()
                q = Qemu()
                continue
            if "error" in r:
                c["qemu"] = {"class": r["error"]["class"], "desc": r["error"]["desc"]}
            else:
                c["qemu"] = None
            out.append(c)
    finally:
        q.close()
    DATA.mkdir(parents=True, exist_ok=True)
    doc = {"comment": "QEMU 7.2.22 replies to mutated arguments; generated by "
                      "tests/schema/record_validation.py cases "
                      f"--n {n} --seed {seed}",
           "cases": out}
    (DATA / "recorded_cases.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(len(out), "cases recorded")


def extract_scenarios(src: Path) -> None:
    steps = []
    for p in sorted(src.glob("*.json")):
        t = json.loads(p.read_text())
        for s in t["steps"]:
            st = s.get("step", {})
            if "execute" not in st or not isinstance(st.get("arguments", {}), dict):
                continue
            reply = s.get("reply") or {}
            if "error" in reply and reply["error"]["class"] != "GenericError":
                continue  # CommandNotFound etc.: arguments never reached the visitor
            steps.append({"scenario": t["scenario"], "index": s["index"],
                          "command": st["execute"], "arguments": st.get("arguments", {}),
                          "qemu": reply.get("error")})
    DATA.mkdir(parents=True, exist_ok=True)
    (DATA / "scenario_steps.json").write_text(json.dumps(
        {"comment": "execute steps of the shared QEMU 7.2 transcripts (scenarios-qemu)",
         "steps": steps}, indent=1) + "\n")
    print(len(steps), "steps")


def main() -> None:
    if sys.argv[1:2] == ["cases"]:
        n = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else 600
        seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 7
        record_cases(n, seed)
    elif sys.argv[1:2] == ["scenarios"]:
        src = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/work/shared/scenarios-qemu")
        extract_scenarios(src)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
