"""Random sequences of blockdev-add / blockdev-reopen / blockdev-del against
the engine.  After every step: the graph is acyclic, every link resolves,
nothing is left over that nobody holds, the permissions every parent holds
are compatible, and a command that failed changed nothing a query shows.

Two machines: one on the graph API with in-memory drivers, one through the
command dispatcher with qcow2/file nodes on real image files (made by
``python -m qmpd.img.cli create``), throttle groups, guest writes and reopens
that change backing links; the image files are never modified.  Example
counts follow the hypothesis profile (``make fuzz`` runs many more)."""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

from hardening.counts import count
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from qmpd.commands.dispatch import Daemon, Dispatcher
from qmpd.commands.errors import QMPError
from qmpd.engine import perms, queries
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph
from qmpd.engine.reopen import reopen
from qmpd.jobs.clock import VirtualClock
from qmpd.profiles import select
from qmpd.protocol.encode import dumps

# What these tests expect is QEMU 7.2's (their cases were recorded on it).
QEMU_7_2 = select("7.2.22")

NAMES = [f"n{i}" for i in range(6)]


def leaf() -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {"driver": st.sampled_from(["null-co", "null-aio"])},
        optional={"size": st.sampled_from([4096, 65536, 1 << 20]),
                  "read-zeroes": st.booleans(), "read-only": st.booleans()})


def child_ref() -> st.SearchStrategy:
    return st.one_of(st.sampled_from(NAMES), leaf())


def options() -> st.SearchStrategy[dict]:
    filt = st.fixed_dictionaries(
        {"driver": st.sampled_from(["raw", "copy-on-read", "blkdebug"]), "file": child_ref()},
        optional={"read-only": st.booleans()})
    quorum = st.fixed_dictionaries(
        {"driver": st.just("quorum"), "children": st.lists(child_ref(), min_size=1, max_size=3),
         "vote-threshold": st.integers(1, 2)})
    return st.one_of(leaf(), filt, quorum)


class GraphMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.g = BlockGraph()

    def snapshot(self) -> str:
        return dumps([queries.named_block_nodes(self.g, False), queries.block_graph(self.g)])

    def attempt(self, fn, *args) -> None:
        count("engine (graph)")
        before = self.snapshot()
        try:
            fn(*args)
        except BlockError:
            assert self.snapshot() == before

    @rule(name=st.sampled_from(NAMES), opts=options())
    def add(self, name: str, opts: dict) -> None:
        opts = dict(opts, **{"node-name": name})
        if opts["driver"] == "blkdebug":
            opts["image"] = opts.pop("file")
        self.attempt(self.g.add, opts)

    @rule(name=st.sampled_from(NAMES))
    def delete(self, name: str) -> None:
        self.attempt(self.g.delete, name)

    @rule(name=st.sampled_from(NAMES), ro=st.booleans(), swap=st.sampled_from(NAMES))
    def reopen_node(self, name: str, ro: bool, swap: str) -> None:
        node = self.g.nodes.get(name)
        if node is None:
            self.attempt(reopen, self.g, [{"driver": "null-co", "node-name": name}])
            return
        entry = {k: v for k, v in node.explicit.items() if "." not in k}
        entry["node-name"] = name
        entry["driver"] = node.driver.name
        entry["read-only"] = ro
        f = node.child("file")
        if f is not None:
            entry["file"] = swap if swap in self.g.nodes else f.child.name
        self.attempt(reopen, self.g, [entry])

    @invariant()
    def consistent(self) -> None:
        check_graph(self.g)


def check_graph(g: BlockGraph) -> None:
    """The structural invariants of a block graph."""
    alive = {id(n) for n in g.nodes.values()}
    for n in g.nodes.values():
        assert n.alive
        for e in n.children:
            assert id(e.child) in alive, "a link points at a deleted node"
            assert e in e.child.parents
        if not n.monitor_owned:
            assert n.parents, f"{n.name} is held by nobody"
        for a in n.parents:
            for b in n.parents:
                if a is not b:
                    assert b.perm & a.shared == b.perm, "incompatible permissions"
        cp, _ = g.cumulative(n)
        if n.read_only:
            assert not cp & (perms.WRITE | perms.WRITE_UNCHANGED)
        assert not any(g.reaches(e.child, n) for e in n.children), "cycle"


# CI: 60 runs; under `make fuzz` (profile max_examples 5000) 20 times more.
_SCALE = max(1, settings.default.max_examples // 250)
GraphMachine.TestCase.settings = settings(max_examples=60 * _SCALE, stateful_step_count=25,
                                          deadline=None)
TestGraphMachine = GraphMachine.TestCase


def _make_images() -> tuple[str, dict[str, str]]:
    d = tempfile.mkdtemp(prefix="qmpd-sm-")
    atexit.register(shutil.rmtree, d, ignore_errors=True)

    def img(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "qmpd.img.cli", "create", "-q", *args],
                       check=True, stdout=subprocess.DEVNULL)

    img("-f", "qcow2", f"{d}/base.qcow2", "1M")
    img("-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", f"{d}/top.qcow2", "1M")
    img("-f", "qcow2", f"{d}/other.qcow2", "1M")
    img("-f", "raw", f"{d}/disk.img", "64k")
    return d, {n: f"{d}/{n}" for n in os.listdir(d)}


IMGDIR, IMAGES = _make_images()
IMAGE_FILES = sorted(IMAGES)
QNAMES = ["q0", "q1", "q2", "f0", "f1", "t0"]
GROUPS = ["g0", "g1"]


def _digest() -> dict[str, tuple[str, int]]:
    out = {}
    for name, path in IMAGES.items():
        with open(path, "rb") as f:
            out[name] = (hashlib.sha256(f.read()).hexdigest(), os.stat(path).st_mtime_ns)
    return out


IMAGE_DIGEST = _digest()


def file_ref() -> st.SearchStrategy:
    return st.one_of(st.sampled_from(QNAMES),
                     st.builds(lambda f: {"driver": "file", "filename": IMAGES[f]},
                               st.sampled_from(IMAGE_FILES)))


class CommandMachine(RuleBasedStateMachine):
    """The same invariants, through the dispatcher, on real image files."""

    def __init__(self) -> None:
        super().__init__()
        self.d = Dispatcher(Daemon(QEMU_7_2, job_time=VirtualClock()))
        self.g = self.d.daemon.graph

    def snapshot(self) -> str:
        return dumps([queries.named_block_nodes(self.g, False),
                      queries.named_block_nodes(self.g, True), queries.block_graph(self.g),
                      sorted(self.g.throttle_groups)])

    def run(self, name: str, args: dict) -> None:
        count("engine (commands)")
        before = self.snapshot()
        try:
            self.d.execute(name, args)
        except QMPError:
            assert self.snapshot() == before, f"failed {name} changed the graph"

    @rule(name=st.sampled_from(QNAMES), f=file_ref(), ro=st.booleans(),
          backing=st.sampled_from([None, "keep"] + QNAMES))
    def add_qcow2(self, name: str, f, ro: bool, backing) -> None:
        args = {"driver": "qcow2", "node-name": name, "file": f, "read-only": ro}
        if backing != "keep":
            args["backing"] = backing
        self.run("blockdev-add", args)

    @rule(name=st.sampled_from(QNAMES), f=st.sampled_from(IMAGE_FILES), ro=st.booleans())
    def add_file(self, name: str, f: str, ro: bool) -> None:
        self.run("blockdev-add", {"driver": "file", "node-name": name, "filename": IMAGES[f],
                                  "read-only": ro})

    @rule(name=st.sampled_from(QNAMES), group=st.sampled_from(GROUPS),
          f=st.sampled_from(QNAMES))
    def add_throttle(self, name: str, group: str, f: str) -> None:
        self.run("blockdev-add", {"driver": "throttle", "node-name": name,
                                  "throttle-group": group, "file": f})

    @rule(group=st.sampled_from(GROUPS), iops=st.integers(0, 1000))
    def add_group(self, group: str, iops: int) -> None:
        self.run("object-add", {"qom-type": "throttle-group", "id": group,
                                "limits": {"iops-total": iops}})

    @rule(group=st.sampled_from(GROUPS))
    def del_group(self, group: str) -> None:
        self.run("object-del", {"id": group})

    @rule(name=st.sampled_from(QNAMES))
    def delete(self, name: str) -> None:
        self.run("blockdev-del", {"node-name": name})

    @rule(name=st.sampled_from(QNAMES), offset=st.integers(0, 15), pattern=st.integers(0, 255))
    def write(self, name: str, offset: int, pattern: int) -> None:
        self.run("human-monitor-command",
                 {"command-line": f'qemu-io {name} "write -P {pattern} {offset * 4096} 4k"'})

    @rule(name=st.sampled_from(QNAMES), ro=st.booleans(),
          backing=st.sampled_from([None, "keep"] + QNAMES), swap=st.sampled_from([None] + QNAMES))
    def reopen_node(self, name: str, ro: bool, backing, swap) -> None:
        node = self.g.nodes.get(name)
        if node is None:
            self.run("blockdev-reopen", {"options": [{"driver": "qcow2", "node-name": name}]})
            return
        entry = {k: v for k, v in node.explicit.items() if "." not in k}
        entry.update({"node-name": name, "driver": node.driver.name, "read-only": ro})
        f = node.child("file")
        if f is not None:
            entry["file"] = swap if swap is not None else f.child.name
        if node.driver.name == "qcow2":
            b = node.child("backing")
            if backing != "keep":
                entry["backing"] = backing
            elif b is not None:
                entry["backing"] = b.child.name
        self.run("blockdev-reopen", {"options": [entry]})

    @invariant()
    def consistent(self) -> None:
        check_graph(self.g)

    @invariant()
    def cached_queries_are_current(self) -> None:
        # The server gets these replies from the dispatcher's cache while the
        # graph has not changed: after any step they must be what a fresh
        # run gives.
        for name, args in (("query-named-block-nodes", {}),
                           ("query-named-block-nodes", {"flat": True}),
                           ("x-debug-query-block-graph", {})):
            cached = self.d.execute(name, args, preencoded=True)
            assert cached.text == dumps(self.d.execute(name, args)), f"stale {name}"

    def teardown(self) -> None:
        assert _digest() == IMAGE_DIGEST, "an image file on the host was modified"


CommandMachine.TestCase.settings = settings(
    max_examples=40 * _SCALE, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestCommandMachine = CommandMachine.TestCase
