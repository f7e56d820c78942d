"""Random sequences of blockdev-add / blockdev-reopen / blockdev-del against
the engine.  After every step: the graph is acyclic, every link resolves,
nothing is left over that nobody holds, the permissions every parent holds
are compatible, and a command that failed changed nothing a query shows."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from qmpd.engine import perms, queries
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph
from qmpd.engine.reopen import reopen
from qmpd.protocol.encode import dumps

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
        g = self.g
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

GraphMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=25,
                                          deadline=None)
TestGraphMachine = GraphMachine.TestCase
