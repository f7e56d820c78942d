"""Seeded generator of block-graph scenarios (tests/data/recorded/scenarios/gen-*.json).

The scenarios use the same step kinds and setup lines as the public
/work/shared/scenarios/fuzz-10*.json (qemu-img create only; blockdev-add,
blockdev-reopen, blockdev-del, object-add/-del, the block queries and raw JSON
lines), but unlike a blind fuzzer most steps are meant to *succeed* and to do
something interesting: nodes are built on nodes that exist, chains are stacked,
reopens are small variations of a node's current options, and deletions target
existing nodes.

To know what exists, the generator drives a live QEMU 7.2 while it builds each
scenario (tests/tools/qmpprobe.py): every step is sent, and the real graph is
read back with query-named-block-nodes and x-debug-query-block-graph.  The output
therefore depends only on the seed and on QEMU's (deterministic) behaviour;
auto-generated node names are referenced through "$NODE[drv:file]" placeholders
that qmpreplay.py resolves the same way.

    python3 tests/tools/gen_scenarios.py --first 2001 --count 150 \
        --outdir tests/data/recorded/scenarios
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmpprobe import AUTO_NODE_NAME, Qemu  # noqa: E402

Json = Any
CHILD_KEYS = ("file", "backing", "image", "test", "raw", "children")
QCOW2_SIZES = [65536, 524288, 1048576, 2097152]
RAW_SIZES = [0, 4096, 65536, 1048576]
NULL_SIZES = [0, 512, 4096, 65536, 1048576, 3145728, 1073741824]
TG_LIMITS: list[dict[str, int]] = [
    {}, {"bps-total": 4096}, {"iops-total": 1000}, {"bps-total": 1048576, "iops-total": 50},
    {"iops-read": 1000, "iops-write": 1000}, {"iops-total": 1000, "iops-size": 4096},
    {"iops-total": 100, "iops-total-max": 200}, {"bps-read": 4096},
]


def name_key(name: str) -> tuple[int, int, str]:
    """Deterministic order: auto-named nodes by counter (their 2 last digits are random)."""
    m = AUTO_NODE_NAME.fullmatch(name)
    return (0, int(m.group(1)), "") if m else (1, 0, name)


def is_auto(name: str) -> bool:
    return name.startswith("#block")


class Gen:
    def __init__(self, seed: int, nsteps: int, qemu: str, mutate: float = 0.0) -> None:
        self.seed = seed
        self.mutate = mutate
        self.rng = random.Random(seed)
        self.nsteps = nsteps
        self.setup, self.images = self.make_setup()
        self.qemu = qemu
        self.q = Qemu(self.setup, qemu)
        self.steps: list[Json] = []
        self.intent: list[str] = []
        self.counter = 0
        # stored (non-child) options per real node name, as last given at add/reopen
        self.opts: dict[str, dict[str, Json]] = {}
        # (parent, edge) -> True when the child was opened by that parent (inherited)
        self.inherited: dict[tuple[str, str], bool] = {}
        self.owned: set[str] = set()
        self.groups: set[str] = set()
        self.iothreads: set[str] = set()
        self.nodes: dict[str, Json] = {}
        self.children: dict[str, dict[str, str]] = {}
        self.parents: dict[str, list[tuple[str, str]]] = {}
        self.crashed: list[Json] = []
        self.refresh()

    # ------------------------------------------------------------------ setup
    def make_setup(self) -> tuple[list[str], dict[str, dict[str, Json]]]:
        r = self.rng
        lines: list[str] = []
        images: dict[str, dict[str, Json]] = {}

        def qcow2(name: str, size: int, backing: str | None = None, bfmt: str = "qcow2",
                  unsafe: bool = False) -> None:
            opt = ""
            if backing is None and r.random() < 0.25:
                opt = f"-o cluster_size={r.choice([4096, 524288])} "
            b = ""
            if backing is not None:
                ref = f"$DIR/{backing}" if r.random() < 0.75 else backing
                b = f"{'-u ' if unsafe else ''}-b {ref} -F {bfmt} "
            lines.append(f"qemu-img create -q -f qcow2 {opt}{b}$DIR/{name} {size}")
            images[name] = {"fmt": "qcow2", "size": size, "backing": backing}

        def raw(name: str, size: int) -> None:
            lines.append(f"qemu-img create -q -f raw $DIR/{name} {size}")
            images[name] = {"fmt": "raw", "size": size, "backing": None}

        qcow2("base.qcow2", r.choice(QCOW2_SIZES))
        raw("disk.img", r.choice(RAW_SIZES[1:]) if r.random() < 0.9 else 0)
        if r.random() < 0.7:
            qcow2("top.qcow2", r.choice(QCOW2_SIZES), "base.qcow2")
            if r.random() < 0.5:
                qcow2("top2.qcow2", r.choice(QCOW2_SIZES), "top.qcow2")
        if r.random() < 0.5:
            qcow2("spare.qcow2", r.choice(QCOW2_SIZES))
        if r.random() < 0.4:
            raw("spare.img", r.choice(RAW_SIZES[1:]))
        if r.random() < 0.3:
            qcow2("over-raw.qcow2", r.choice([512, 4096, 65536, 1048576]), "disk.img", "raw")
        if r.random() < 0.15:
            qcow2("orphan.qcow2", r.choice(QCOW2_SIZES), "gone.qcow2", unsafe=True)
        return lines, images

    # ------------------------------------------------------------------ live state
    def refresh(self) -> None:
        before = set(self.nodes)
        old_edges = {(p, e): c for p, ch in self.children.items() for e, c in ch.items()}
        nodes = self.q.cmd("query-named-block-nodes", {"flat": True})["return"]
        graph = self.q.cmd("x-debug-query-block-graph")["return"]
        self.nodes = {n["node-name"]: n for n in nodes}
        ids = {n["id"]: n["name"] for n in graph["nodes"] if n["type"] == "block-driver"}
        self.children = {n: {} for n in self.nodes}
        self.parents = {n: [] for n in self.nodes}
        for e in graph["edges"]:
            p, c = ids.get(e["parent"]), ids.get(e["child"])
            if p is None or c is None:
                continue
            self.children[p][e["name"]] = c
            self.parents[c].append((p, e["name"]))
        new_inh: dict[tuple[str, str], bool] = {}
        for p, ch in self.children.items():
            for e, c in ch.items():
                if old_edges.get((p, e)) == c and (p, e) in self.inherited:
                    new_inh[(p, e)] = self.inherited[(p, e)]
                else:
                    new_inh[(p, e)] = c not in before
        self.inherited = new_inh
        for gone in set(self.opts) - set(self.nodes):
            del self.opts[gone]
        self.owned &= set(self.nodes)
        for n, info in self.nodes.items():
            if n not in self.opts:  # opened from an image header: default options
                drv = info["drv"]
                self.opts[n] = ({"driver": "file", "filename": self.dirpath(info["file"])}
                                if drv == "file" else {"driver": drv})

    def dirpath(self, path: str) -> str:
        return path.replace(self.q.dir, "$DIR")

    def label(self, name: str, spec: dict[str, Json]) -> None:
        """Record the options of `name` and of its inline children from an add/reopen dict."""
        self.opts[name] = {k: copy.deepcopy(v) for k, v in spec.items()
                           if k not in CHILD_KEYS and k != "node-name"}
        for key, val in spec.items():
            if key == "children" and isinstance(val, list):
                for i, v in enumerate(val):
                    c = self.children.get(name, {}).get(f"children.{i}")
                    if isinstance(v, dict) and c:
                        self.label(c, v)
            elif key in CHILD_KEYS and isinstance(val, dict):
                c = self.children.get(name, {}).get(key)
                if c:
                    self.label(c, val)

    # ------------------------------------------------------------------ helpers
    def new_name(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def ref(self, name: str) -> str | None:
        """How a scenario can name node `name` (placeholder for auto-named nodes)."""
        if not is_auto(name):
            return name
        return self.q.placeholder_for(name)

    def sorted_nodes(self, pred: Any = None) -> list[str]:
        return sorted((n for n in self.nodes if pred is None or pred(n)), key=name_key)

    def free_nodes(self, pred: Any = None) -> list[str]:
        return [n for n in self.sorted_nodes(pred) if not self.parents.get(n)]

    def ancestors(self, name: str) -> set[str]:
        out: set[str] = set()
        todo = [name]
        while todo:
            n = todo.pop()
            for p, _ in self.parents.get(n, []):
                if p not in out:
                    out.add(p)
                    todo.append(p)
        return out

    def image_of(self, name: str) -> str | None:
        """Image file name ("base.qcow2") under a node, following file children."""
        n = name
        for _ in range(8):
            info = self.nodes.get(n)
            if info is None:
                return None
            if info["drv"] == "file":
                return os.path.basename(info["file"])
            c = self.children.get(n, {}).get("file")
            if c is None:
                return None
            n = c
        return None

    def images_in_use(self) -> set[str]:
        return {os.path.basename(i["file"]) for i in self.nodes.values() if i["drv"] == "file"}

    def pick_image(self, fmt: str | None = None) -> str:
        r = self.rng
        cands = sorted(n for n, i in self.images.items() if fmt is None or i["fmt"] == fmt)
        if not cands:
            cands = sorted(self.images)
        unused = [c for c in cands if c not in self.images_in_use()]
        if unused and r.random() < 0.75:
            return r.choice(unused)
        return r.choice(cands)

    def common_opts(self, d: dict[str, Json], p_ro: float = 0.2) -> None:
        r = self.rng
        if r.random() < p_ro:
            d["read-only"] = True
        if r.random() < 0.2:
            d["discard"] = r.choice(["unmap", "ignore"])
        if r.random() < 0.2:
            dz = r.choice(["off", "on", "unmap"])
            if dz == "unmap" and d.get("discard") != "unmap" and r.random() < 0.8:
                d["discard"] = "unmap"
            d["detect-zeroes"] = dz
        if r.random() < 0.15:
            d["cache"] = {"no-flush": r.random() < 0.5}
            if r.random() < 0.3:
                d["cache"]["direct"] = r.random() < 0.5

    # ------------------------------------------------------------------ node specs
    def spec_null(self, named: bool) -> dict[str, Json]:
        r = self.rng
        drv = r.choice(["null-co", "null-co", "null-aio"])
        d: dict[str, Json] = {"driver": drv}
        if named:
            d["node-name"] = self.new_name("null" if drv == "null-co" else "naio")
        if r.random() < 0.5:
            d["size"] = r.choice(NULL_SIZES)
        if r.random() < 0.3:
            d["read-zeroes"] = r.random() < 0.6
        if r.random() < 0.15:
            d["latency-ns"] = r.choice([0, 1000])
        self.common_opts(d)
        return d

    def spec_file(self, named: bool, image: str | None = None) -> dict[str, Json]:
        r = self.rng
        image = image or self.pick_image()
        d: dict[str, Json] = {"driver": "file"}
        if named:
            d["node-name"] = self.new_name("file")
        d["filename"] = f"$DIR/{image}"
        if r.random() < 0.2:
            d["aio"] = "threads"
        elif r.random() < 0.08:
            d["aio"] = "native"
            d["cache"] = {"direct": True}
        if r.random() < 0.15:
            d["locking"] = r.choice(["auto", "on", "off"])
        if r.random() < 0.07:
            d["drop-cache"] = r.random() < 0.5
        self.common_opts(d, p_ro=0.1)
        return d

    def child_ref_or_inline(self, want: str, allow_ref: bool = True) -> Json:
        """A `file` child: a reference to a free node, or an inline dict.
        want: "qcow2-file" (file node on a qcow2 image), "any"."""
        r = self.rng
        if allow_ref and r.random() < 0.4:
            if want == "qcow2-file":
                cands = self.free_nodes(lambda n: self.nodes[n]["drv"] == "file"
                                        and self.images.get(self.image_of(n) or "", {}).get("fmt") == "qcow2")
            else:
                cands = self.free_nodes()
            refs = [x for x in (self.ref(c) for c in cands) if x]
            if refs:
                return r.choice(refs)
        named = r.random() < 0.4
        if want == "qcow2-file":
            return self.spec_file(named, self.pick_image("qcow2"))
        k = r.random()
        if k < 0.45:
            return self.spec_file(named)
        if k < 0.8:
            return self.spec_null(named)
        if k < 0.9:
            return self.spec_qcow2(named, depth=1)
        return self.spec_raw(named, depth=1)

    def spec_raw(self, named: bool, depth: int = 0) -> dict[str, Json]:
        r = self.rng
        d: dict[str, Json] = {"driver": "raw"}
        if named:
            d["node-name"] = self.new_name("raw")
        d["file"] = self.child_ref_or_inline("any", allow_ref=depth == 0)
        if r.random() < 0.3:
            d["offset"] = r.choice([0, 512, 4096, 65536])
        if r.random() < 0.3:
            d["size"] = r.choice([512, 4096, 65536])
        self.common_opts(d)
        return d

    def spec_backing(self, me_ancestors: set[str]) -> Json:
        r = self.rng
        k = r.random()
        if k < 0.35:
            return None
        if k < 0.7:
            cands = [n for n in self.sorted_nodes() if n not in me_ancestors
                     and self.nodes[n]["drv"] in ("qcow2", "raw", "null-co", "null-aio", "file")]
            refs = [x for x in (self.ref(c) for c in cands) if x]
            if refs:
                return r.choice(refs)
            return None
        b = self.spec_qcow2(r.random() < 0.4, depth=1)
        return b

    def spec_qcow2(self, named: bool, depth: int = 0) -> dict[str, Json]:
        r = self.rng
        d: dict[str, Json] = {"driver": "qcow2"}
        if named:
            d["node-name"] = self.new_name("qc")
        d["file"] = self.child_ref_or_inline("qcow2-file", allow_ref=depth == 0)
        if r.random() < (0.5 if depth == 0 else 0.3):
            if depth >= 2:
                d["backing"] = None
            else:
                d["backing"] = self.spec_backing(set())
        self.qcow2_opts(d)
        self.common_opts(d)
        return d

    def qcow2_opts(self, d: dict[str, Json]) -> None:
        r = self.rng
        k = r.random()
        if k < 0.1:
            d["cache-size"] = r.choice([0, 262144, 1048576])
        elif k < 0.18:
            d["l2-cache-size"] = r.choice([65536, 262144])
        elif k < 0.25:
            d["l2-cache-entry-size"] = r.choice([512, 4096, 65536])
        elif k < 0.32:
            d["lazy-refcounts"] = r.random() < 0.5
        elif k < 0.4:
            d["pass-discard-request"] = r.random() < 0.5
        elif k < 0.43:
            d["cache-clean-interval"] = r.choice([0, 600])

    def spec_filter(self, drv: str) -> dict[str, Json]:
        r = self.rng
        d: dict[str, Json] = {"driver": drv, "node-name": self.new_name("thr" if drv == "throttle" else "cor")}
        if drv == "throttle":
            if not self.groups and r.random() < 0.85:
                self.do_object(want="throttle-group")
            groups = sorted(self.groups)
            d["throttle-group"] = r.choice(groups) if groups and r.random() < 0.9 else "nogroup"
        d["file"] = self.child_ref_or_inline("any")
        self.common_opts(d, p_ro=0.1)
        return d

    def spec_blkdebug(self) -> dict[str, Json]:
        r = self.rng
        d: dict[str, Json] = {"driver": "blkdebug", "node-name": self.new_name("dbg")}
        d["image"] = self.child_ref_or_inline("any")
        if r.random() < 0.3:
            d["align"] = 512
        return d

    def spec_quorum(self) -> dict[str, Json]:
        r = self.rng
        n = r.choice([2, 3])
        # quorum needs children of one size ("Could not refresh total sector count" otherwise)
        size = r.choice([512, 4096, 65536, 1048576])
        kids: list[Json] = []
        free = [x for x in (self.ref(c) for c in self.free_nodes(
            lambda n: self.nodes[n]["drv"] in ("null-co", "null-aio", "raw")
            and self.nodes[n]["image"]["virtual-size"] == size)) if x]
        for _ in range(n):
            if free and r.random() < 0.5:
                kids.append(free.pop(0))
            else:
                kid = self.spec_null(r.random() < 0.5)
                kid["size"] = size if r.random() < 0.93 else 0
                kids.append(kid)
        return {"driver": "quorum", "node-name": self.new_name("quorum"), "children": kids,
                "vote-threshold": r.randint(1, n)}

    def spec_blkverify(self) -> dict[str, Json]:
        return {"driver": "blkverify", "node-name": self.new_name("verify"),
                "test": self.spec_qcow2(False, depth=1) if self.rng.random() < 0.5 else self.spec_null(False),
                "raw": self.spec_null(False)}

    def spec_root(self) -> dict[str, Json]:
        r = self.rng
        k = r.random()
        if k < 0.18:
            return self.spec_null(True)
        if k < 0.32:
            return self.spec_file(True)
        if k < 0.47:
            return self.spec_raw(True)
        if k < 0.72:
            return self.spec_qcow2(True)
        if k < 0.82:
            return self.spec_filter("throttle")
        if k < 0.89:
            return self.spec_filter("copy-on-read")
        if k < 0.94:
            return self.spec_blkdebug()
        if k < 0.97:
            return self.spec_quorum()
        return self.spec_blkverify()

    def break_name(self, d: dict[str, Json]) -> None:
        """Occasionally exercise the node-name rules (§4.2)."""
        r = self.rng
        k = r.random()
        if k < 0.25:
            d["node-name"] = r.choice(["a b", "1abc", "_x", "n!", "#block1", "a,b", "", "a/b"])
        elif k < 0.45:
            d["node-name"] = d["node-name"][:1] + "x" * 30      # 31 chars: ok
        elif k < 0.6:
            d["node-name"] = d["node-name"][:1] + "x" * 31      # 32 chars: too long
        elif k < 0.85 and self.nodes:
            d["node-name"] = self.rng.choice(self.sorted_nodes(lambda n: not is_auto(n)) or ["x"])
        else:
            del d["node-name"]

    # ------------------------------------------------------------------ steps
    def run(self, step: Json, label: Any = None) -> str:
        """Send a step to QEMU, record it, refresh the live graph; returns ok/error/raw/query."""
        self.steps.append(step)
        if "raw" in step:
            self.q.send_raw(self.q.resolve(step["raw"]))
            self.intent.append("raw")
            self.refresh()
            return "raw"
        try:
            reply = self.q.send_obj(self.q.resolve({k: v for k, v in step.items()}))
        except (EOFError, OSError):
            # QEMU died on this step (assertion, segfault): leave the step out and
            # rebuild the state in a fresh QEMU by replaying the steps kept so far
            self.steps.pop()
            self.crashed.append(step)
            self.restart()
            return "crash"
        name = step["execute"]
        if name.startswith("query") or name.startswith("x-debug"):
            self.intent.append("query")
            return "query"
        ok = "return" in reply
        self.intent.append("ok" if ok else "error")
        self.refresh()
        if ok and label is not None:
            label()
        return "ok" if ok else "error"

    def restart(self) -> None:
        self.q.close()
        self.q = Qemu(self.setup, self.qemu)
        for st in self.steps:
            if "raw" in st:
                self.q.send_raw(self.q.resolve(st["raw"]))
            else:
                self.q.send_obj(self.q.resolve(st))
        self.refresh()

    def do_add(self) -> None:
        d = self.spec_root()
        if self.rng.random() < 0.08:
            self.break_name(d)
        self.maybe_mutate(d)
        root = d.get("node-name")

        def lab() -> None:
            if isinstance(root, str) and root in self.nodes:
                self.owned.add(root)
                self.label(root, d)
        self.run({"execute": "blockdev-add", "arguments": d}, lab)

    def child_entry(self, parent: str, edge: str, as_dict: bool) -> Json:
        c = self.children[parent][edge]
        if as_dict and self.inherited.get((parent, edge)):
            return self.entry(c, with_name=not is_auto(c), depth=1)
        return self.ref(c)

    def header_backing(self, name: str) -> bool:
        img = self.image_of(name)
        return bool(img and self.images.get(img, {}).get("backing"))

    def entry(self, name: str, with_name: bool = True, depth: int = 0) -> dict[str, Json]:
        """The node's current options as a reopen entry (children by reference or dict)."""
        d: dict[str, Json] = {}
        o = self.opts.get(name, {"driver": self.nodes[name]["drv"]})
        d["driver"] = o.get("driver", self.nodes[name]["drv"])
        if with_name:
            d["node-name"] = name
        for k, v in o.items():
            if k != "driver":
                d[k] = copy.deepcopy(v)
        kids = self.children.get(name, {})
        for edge in sorted(kids):
            if edge.startswith("children."):
                continue  # quorum cannot be reopened anyway
            ce = self.child_entry(name, edge, self.rng.random() < (0.35 if depth == 0 else 0.2))
            if ce is None:
                ce = self.entry(kids[edge], with_name=False, depth=depth + 1)
            d[edge] = ce
        if d["driver"] == "qcow2" and "backing" not in kids and (
                self.header_backing(name) or "backing" in o or self.rng.random() < 0.2):
            d["backing"] = None
        return d

    def vary(self, name: str, d: dict[str, Json]) -> None:
        """Small changes of a reopen entry (§5.3, §5.4, §5.6)."""
        r = self.rng
        drv = d["driver"]
        for _ in range(r.choice([1, 1, 1, 2])):
            k = r.random()
            if k < 0.2:
                if d.get("read-only"):
                    del d["read-only"]
                    if r.random() < 0.5:
                        d["read-only"] = False
                else:
                    d["read-only"] = True
            elif k < 0.3:
                d["cache"] = {"no-flush": r.random() < 0.5}
                if r.random() < 0.5 or d.get("aio") == "native":
                    d["cache"]["direct"] = d.get("aio") == "native" or r.random() < 0.5
            elif k < 0.4:
                choice = r.choice(["unmap", "ignore", None])
                if choice is None:
                    d.pop("discard", None)
                else:
                    d["discard"] = choice
            elif k < 0.5:
                dz = r.choice(["off", "on", "unmap", None])
                if dz is None:
                    d.pop("detect-zeroes", None)
                else:
                    d["detect-zeroes"] = dz
            elif k < 0.8:
                self.vary_driver(name, d, drv)
            elif k < 0.9:
                self.vary_child(name, d, drv)
            else:
                self.vary_bad(name, d, drv)

    def vary_driver(self, name: str, d: dict[str, Json], drv: str) -> None:
        r = self.rng
        if drv == "qcow2":
            keys = ["cache-size", "l2-cache-size", "l2-cache-entry-size", "lazy-refcounts",
                    "pass-discard-request", "pass-discard-other", "cache-clean-interval",
                    "refcount-cache-size", "overlap-check"]
            present = [k for k in keys if k in d]
            if present and r.random() < 0.4:
                del d[r.choice(present)]
                return
            k = r.choice(keys)
            d[k] = {"cache-size": r.choice([0, 262144, 1048576]), "l2-cache-size": r.choice([65536, 262144]),
                    "l2-cache-entry-size": r.choice([512, 4096, 65536, 1000]),
                    "lazy-refcounts": r.random() < 0.5, "pass-discard-request": r.random() < 0.5,
                    "pass-discard-other": r.random() < 0.5, "cache-clean-interval": r.choice([0, 60, -1]),
                    "refcount-cache-size": r.choice([65536, 262144]),
                    "overlap-check": r.choice(["none", "cached", "all"])}[k]
        elif drv == "raw":
            c = self.children.get(name, {}).get("file")
            csize = self.nodes.get(c, {}).get("image", {}).get("virtual-size", 0) if c else 0
            k = r.random()
            if k < 0.3:
                d.pop("offset", None)
                d.pop("size", None)
            else:
                off = r.choice([x for x in (0, 512, 4096) if x <= csize] or [0])
                d["offset"] = off
                room = (csize - off) // 512 * 512
                if room >= 512 and r.random() < 0.7:
                    d["size"] = r.choice(sorted({512, room}))
                elif r.random() < 0.2:
                    d["size"] = room + 512
        elif drv == "throttle":
            others = sorted(self.groups - {d.get("throttle-group")})
            d["throttle-group"] = r.choice(others) if others and r.random() < 0.85 else "nogroup"
        elif drv == "file":
            if r.random() < 0.5:
                d["drop-cache"] = r.random() < 0.5
            elif "drop-cache" in d:
                del d["drop-cache"]
            else:
                d["x-check-cache-dropped"] = False
        else:
            self.vary_child(name, d, drv)

    def vary_child(self, name: str, d: dict[str, Json], drv: str) -> None:
        r = self.rng
        anc = self.ancestors(name) | {name}
        if drv == "qcow2" and r.random() < 0.6:
            k = r.random()
            if k < 0.35:
                d["backing"] = None
            else:
                cands = [n for n in self.sorted_nodes() if (n not in anc or r.random() < 0.1)
                         and self.nodes[n]["drv"] in ("qcow2", "raw", "null-co", "null-aio", "throttle")]
                refs = [x for x in (self.ref(c) for c in cands) if x]
                if refs:
                    d["backing"] = r.choice(refs)
            return
        if "file" in d:
            def qcow2_file(n: str) -> bool:
                return self.nodes[n]["drv"] == "file" and \
                    self.images.get(self.image_of(n) or "", {}).get("fmt") == "qcow2"
            cands = [n for n in self.free_nodes(qcow2_file if drv == "qcow2" else None)
                     if n not in anc]
            if r.random() < 0.08:
                cands = [name]  # a cycle
            refs = [x for x in (self.ref(c) for c in cands) if x]
            if refs:
                d["file"] = r.choice(refs)

    def vary_bad(self, name: str, d: dict[str, Json], drv: str) -> None:
        r = self.rng
        k = r.random()
        stored = [x for x in d if x not in ("driver", "node-name", "read-only", "discard",
                                              "detect-zeroes", "cache", "file", "backing", "image")]
        if k < 0.3 and stored:
            del d[r.choice(stored)]
        elif k < 0.45:
            d["driver"] = r.choice(["raw", "null-co", "qcow2"])
        elif k < 0.6 and drv in ("null-co", "null-aio"):
            d["size"] = r.choice(NULL_SIZES)
        elif k < 0.7 and drv == "file":
            d["filename"] = f"$DIR/{self.pick_image()}"
        elif k < 0.8:
            d["force-share"] = True
            d["read-only"] = True
        elif k < 0.9 and "backing" in d:
            del d["backing"]
        else:
            d["detect-zeroes"] = "unmap"
            d["discard"] = "ignore"

    def maybe_mutate(self, d: dict[str, Json], obj: bool = False) -> None:
        """Fuzz-style damage (as in the public fuzz-10*.json), only with --mutate > 0:
        the QAPI visitor's check order and texts are part of what the corpus pins down.
        (The rng is not touched at all when mutate is 0, so old seeds stay the same.)"""
        if not self.mutate:
            return
        r = self.rng
        if r.random() >= self.mutate:
            return
        if obj:
            k = r.random()
            if k < 0.3:
                d["qom-type"] = r.choice(["", "nope", "iothread"])
            elif k < 0.5:
                d["id"] = r.choice(["", "a b", "1g", "x" * 40])
            elif k < 0.7:
                d["bogus"] = 1
            else:
                d["limits"] = r.choice([{"iops-total": -1}, {"bps-total": "1M"}, {"x": 1}, 5,
                                        {"iops-total-max": 100}, {"bps-read-max": 10, "bps-read": 100}])
            return
        targets = [d] + [v for v in d.values() if isinstance(v, dict)]
        t = r.choice(targets)
        k = r.random()
        if k < 0.2:
            t["driver"] = r.choice(["", "qcow3", "Qcow2", "null", "nope", "raw ", "file"])
        elif k < 0.35:
            t[r.choice(["x-foo", "bogus", "id"])] = r.choice([1, "x", True, {"driver": "null-co"}])
        elif k < 0.55:
            key = r.choice(["aio", "detect-zeroes", "cache", "discard", "read-only", "size",
                            "offset", "locking", "filename", "node-name"])
            t[key] = r.choice([1, [], "bogus", None, {"a": 1}, -1, True, "1M", 1e3])
            if key == "size" and t[key] == -1 and str(t.get("driver", "")).startswith("null"):
                t[key] = "1M"  # a negative null size aborts QEMU 7.2 (reference §5.11)
        elif k < 0.7:
            t["node-name"] = r.choice(["abc\tdef", "a,b", "#x", "node-" + "a" * 30, "N.x-1_y", "é"])
        elif k < 0.85 and len(t) > 1:
            del t[r.choice(sorted(t))]
        else:
            t["file"] = r.choice(["", "nosuch", 0, None, [], {"driver": "null-co", "bogus": 1}])

    def do_reopen(self) -> None:
        r = self.rng
        cands = self.sorted_nodes(lambda n: not is_auto(n))
        if not cands:
            self.do_add()
            return
        # prefer nodes that can be reopened (COR/quorum/blkverify cannot)
        good = [n for n in cands if self.nodes[n]["drv"] not in ("copy-on-read", "quorum", "blkverify")]
        pool = good if good and r.random() < 0.9 else cands
        count = 1 if r.random() < 0.75 else min(len(pool), r.choice([2, 3]))
        chosen = r.sample(pool, count)
        entries = []
        for n in chosen:
            e = self.entry(n)
            if r.random() < 0.85:
                self.vary(n, e)
            self.maybe_mutate(e)
            entries.append(e)
        if count > 1 and r.random() < 0.3 and "driver" in entries[-1]:
            # (a mutation may have dropped the driver: the entry fails anyway)
            self.vary_bad(chosen[-1], entries[-1], entries[-1]["driver"])  # fails half-way
        if self.mutate and r.random() < 0.2:
            # an auto-named node as an entry of its own, as the public fuzz scenarios do
            autos = [a for a in self.sorted_nodes(is_auto) if self.ref(a)]
            if autos:
                a = r.choice(autos)
                e = self.entry(a, with_name=False)
                e["node-name"] = self.ref(a)
                chosen.append(a)
                entries.append(e)

        def lab() -> None:
            for n, e in zip(chosen, entries):
                if n in self.nodes:
                    self.label(n, e)
        self.run({"execute": "blockdev-reopen", "arguments": {"options": entries}}, lab)

    def do_del(self) -> None:
        r = self.rng
        owned = [n for n in self.sorted_nodes() if n in self.owned]
        free = [n for n in owned if not self.parents.get(n)]
        k = r.random()
        if free and k < 0.75:
            n = r.choice(free)
        elif owned and k < 0.88:
            n = r.choice(owned)
        elif self.nodes and k < 0.97:
            n = self.ref(r.choice(self.sorted_nodes())) or "nosuch"
        else:
            n = r.choice(["nosuch", ""])
        self.run({"execute": "blockdev-del", "arguments": {"node-name": n}})

    def do_object(self, want: str | None = None) -> None:
        r = self.rng
        k = r.random()
        if want == "throttle-group":
            k = 0.0
        elif not (self.groups | self.iothreads) and k >= 0.6 and r.random() < 0.8:
            k = 0.0
        if k < 0.45:
            gid = f"tg{len(self.groups) + r.randint(0, 2)}"
            args: dict[str, Json] = {"qom-type": "throttle-group", "id": gid}
            if want or r.random() < 0.8:
                args["limits"] = dict(r.choice(TG_LIMITS))
            self.maybe_mutate(args, obj=True)
            if self.run({"execute": "object-add", "arguments": args}) == "ok":
                self.groups.add(gid)
        elif k < 0.6:
            iid = f"io{len(self.iothreads) + 1}"
            if self.run({"execute": "object-add", "arguments": {"qom-type": "iothread", "id": iid}}) == "ok":
                self.iothreads.add(iid)
        else:
            objs = sorted(self.groups | self.iothreads)
            oid = r.choice(objs) if objs and r.random() < 0.9 else "nosuch"
            if self.run({"execute": "object-del", "arguments": {"id": oid}}) == "ok":
                self.groups.discard(oid)
                self.iothreads.discard(oid)

    def do_raw(self) -> None:
        r = self.rng
        named = self.sorted_nodes(lambda n: not is_auto(n))
        n = r.choice(named) if named else "nosuch"
        c = str(self.counter)
        choices = [
            "{'execute': 'query-named-block-nodes', 'arguments': {'flat': true}}",
            '{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "dupkey' + c + '", "driver": "null-aio"}}',
            '{"execute": "blockdev-del", "arguments": {"node-name": "' + n + '"}, "id": 7}',
            '{"execute": "blockdev-del", "arguments": {"node-name": "' + n + '"}, "bogus": 1}',
            '{"execute": "blockdev-reopen", "arguments": {"options": {}}}',
            '{"execute": "blockdev-reopen", "arguments": {"options": [{"driver": "null-co", "node-name": "' + n + '", "size": "1M"}]}}',
            '{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "rawn' + c + '", "size": 1e3}}',
            '{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "rawq' + c + '", "size": 4096}}',
            '{"execute": "x-debug-query-block-graph", "id": {"a": [1, null]}}',
            '{"execute": }',
            "[]",
        ]
        self.run({"raw": r.choice(choices)})

    def do_query(self, final: bool = False) -> None:
        r = self.rng
        if final:
            self.run({"execute": "query-named-block-nodes", "arguments": {"flat": True}})
            self.run({"execute": "x-debug-query-block-graph"})
            return
        k = r.random()
        if k < 0.5:
            self.run({"execute": "query-named-block-nodes", "arguments": {"flat": True}})
        elif k < 0.78:
            self.run({"execute": "x-debug-query-block-graph"})
        elif k < 0.88:
            self.run({"execute": "query-named-block-nodes"})
        elif k < 0.93:
            self.run({"execute": "query-named-block-nodes", "arguments": {"flat": False}})
        else:
            self.run({"execute": "query-block"})

    def generate(self) -> dict[str, Json]:
        r = self.rng
        try:
            while len(self.steps) < self.nsteps - 2:
                if not self.q.alive():
                    break
                k = r.random()
                nn = len(self.nodes)
                if nn < 2 or k < 0.34:
                    self.do_add()
                elif k < 0.64:
                    self.do_reopen()
                elif k < 0.74:
                    self.do_del()
                elif k < 0.84:
                    self.do_object()
                elif k < 0.9:
                    self.do_raw()
                else:
                    self.do_query()
                    continue
                if self.intent and self.intent[-1] in ("ok", "raw") and r.random() < 0.55 \
                        and len(self.steps) < self.nsteps - 2:
                    self.do_query()
            self.do_query(final=True)
        except (EOFError, OSError):
            pass
        finally:
            self.q.close()
        return {
            "name": f"gen-{self.seed}",
            "description": f"biased block-graph generator, seed {self.seed}, {len(self.steps)} steps "
                           + (f"(mutate {self.mutate}) " if self.mutate else "")
                           + "(tests/tools/gen_scenarios.py v1)",
            "source": f"generated, seed {self.seed}",
            "setup": self.setup,
            "steps": self.steps,
            "intent": self.intent,
            "notes": ["intent: what QEMU 7.2 answered while the scenario was generated "
                      "(ok/error/query/raw)"]
            + [f"left out, QEMU 7.2 crashed on it: {json.dumps(c)}" for c in self.crashed],
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--first", type=int, default=2001)
    ap.add_argument("--count", type=int, default=150)
    ap.add_argument("--outdir", default="tests/data/recorded/scenarios")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--mutate", type=float, default=0.0,
                    help="probability of fuzz-style damage per add/reopen entry/object-add")
    args = ap.parse_args(argv)
    os.makedirs(args.outdir, exist_ok=True)
    for seed in range(args.first, args.first + args.count):
        rng = random.Random(seed * 7919)
        g = Gen(seed, rng.randint(30, 40), args.qemu, args.mutate)
        sc = g.generate()
        with open(os.path.join(args.outdir, sc["name"] + ".json"), "w") as f:
            json.dump(sc, f, indent=1)
            f.write("\n")
        c = {k: sc["intent"].count(k) for k in ("ok", "error", "query", "raw")}
        print(f"{sc['name']}: {len(sc['steps'])} steps {c}"
              + (f" CRASH {g.crashed}" if g.crashed else ""), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
