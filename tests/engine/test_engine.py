"""Engine tests without a socket or an event loop: the block graph as a
library.  What a user would notice: the texts QEMU gives, graphs left exactly
as they were after a failure, and reopen costs that do not grow with the
size of the graph."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from qmpd.commands.dispatch import Daemon, Dispatcher
from qmpd.commands.errors import QMPError
from qmpd.engine import queries
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph
from qmpd.engine.reopen import reopen
from qmpd.jobs.clock import VirtualClock
from qmpd.profiles import select
from qmpd.protocol.encode import dumps

# What these tests expect is QEMU 7.2's (their cases were recorded on it).
QEMU_7_2 = select("7.2.22")


def qmpd_img(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "qmpd.img.cli", *args], check=True,
                   stdout=subprocess.DEVNULL)


@pytest.fixture
def imgdir():
    with tempfile.TemporaryDirectory(prefix="qmpd-eng-") as d:
        qmpd_img("create", "-q", "-f", "qcow2", f"{d}/base.qcow2", "1M")
        qmpd_img("create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
                 f"{d}/mid.qcow2", "1M")
        qmpd_img("create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2",
                 f"{d}/top.qcow2", "1M")
        qmpd_img("create", "-q", "-f", "raw", f"{d}/disk.img", "64k")
        yield d


def snapshot(g: BlockGraph) -> str:
    return dumps([queries.named_block_nodes(g, False), queries.named_block_nodes(g, True),
                  queries.block_graph(g)])


def err(fn, *args) -> str:
    with pytest.raises(BlockError) as ei:
        fn(*args)
    return ei.value.desc


def test_header_chain_opens_with_auto_names(imgdir):
    g = BlockGraph()
    g.add({"driver": "qcow2", "node-name": "top",
           "file": {"driver": "file", "filename": f"{imgdir}/top.qcow2"}})
    names = list(g.nodes)
    # file subtree, the node, then the backing subtree: QEMU's naming order.
    assert names[0].startswith("#block0") and names[1] == "top"
    assert len(names) == 6
    info = queries.named_block_nodes(g, False)[names.index("top") * -1 - 1]
    assert info["node-name"] == "top"
    assert info["backing_file_depth"] == 2
    assert info["image"]["backing-filename"] == "mid.qcow2"


def test_failed_add_leaves_graph_and_consumes_counter(imgdir):
    g = BlockGraph()
    g.add({"driver": "null-co", "node-name": "n0"})
    before = snapshot(g)
    desc = err(g.add, {"driver": "throttle", "node-name": "t", "throttle-group": "nope",
                       "file": {"driver": "null-co"}})
    assert desc == "Throttle group 'nope' does not exist"
    assert snapshot(g) == before
    # The inline child was named before the failure: the counter moved on.
    assert g.name_counter == 1


def test_permission_conflict_text(imgdir):
    g = BlockGraph()
    g.add({"driver": "file", "node-name": "sf", "filename": f"{imgdir}/base.qcow2"})
    g.add({"driver": "qcow2", "node-name": "qa", "file": "sf"})
    desc = err(g.add, {"driver": "qcow2", "node-name": "qb", "file": "sf", "read-only": True})
    assert desc == ("Permission conflict on node 'sf': permissions 'write, resize' are both "
                    "required by node 'qa' (uses node 'sf' as 'file' child) and unshared by "
                    "node 'qb' (uses node 'sf' as 'file' child).")


def test_image_lock_between_nodes_on_one_file(imgdir):
    g = BlockGraph()
    g.add({"driver": "qcow2", "node-name": "a",
           "file": {"driver": "file", "filename": f"{imgdir}/base.qcow2"}})
    desc = err(g.add, {"driver": "qcow2", "node-name": "b",
                       "file": {"driver": "file", "filename": f"{imgdir}/base.qcow2"}})
    assert desc == 'Failed to get "write" lock'


def test_reopen_backing_rules(imgdir):
    g = BlockGraph()
    g.add({"driver": "qcow2", "node-name": "top",
           "file": {"driver": "file", "filename": f"{imgdir}/top.qcow2"}})
    file_ref = [n for n in g.nodes if n.startswith("#block0")][0]
    entry = {"driver": "qcow2", "node-name": "top", "file": file_ref}
    assert err(reopen, g, [entry]) == "backing is missing for 'top'"
    assert err(reopen, g, [{**entry, "backing": "top"}]) == \
        "Making 'top' a backing child of 'top' would create a cycle"
    assert err(reopen, g, [{**entry, "backing": "nosuch"}]) == \
        "Cannot find device='' nor node-name='nosuch'"
    before = len(g.nodes)
    reopen(g, [{**entry, "backing": None}])
    # The inherited chain below top went away with the link.
    assert len(g.nodes) == before - 4
    # The header still names a backing file.
    assert err(reopen, g, [entry]) == "backing is missing for 'top'"


def test_failed_multi_node_reopen_changes_nothing(imgdir):
    g = BlockGraph()
    g.add({"driver": "null-co", "node-name": "n0"})
    g.add({"driver": "null-co", "node-name": "n1", "size": 4096})
    before = snapshot(g)
    desc = err(reopen, g, [{"driver": "null-co", "node-name": "n0", "read-only": True},
                           {"driver": "null-co", "node-name": "n1"}])
    assert desc == "Option 'size' cannot be reset to its default value"
    assert snapshot(g) == before


def test_reopen_cost_does_not_grow_with_graph():
    small, big = BlockGraph(), BlockGraph()
    for g, n in ((small, 10), (big, 10_000)):
        for i in range(n):
            g.add({"driver": "null-co", "node-name": f"n{i}"})
        g.add({"driver": "raw", "node-name": "r", "file": {"driver": "null-co"}})
    for g in (small, big):
        reopen(g, [{"driver": "raw", "node-name": "r", "file": {"driver": "null-co"},
                    "read-only": True}])
    assert small.visits == big.visits == 2


def test_dispatcher_turns_engine_errors_into_qmp_errors():
    d = Dispatcher(Daemon(QEMU_7_2, job_time=VirtualClock()))
    with pytest.raises(QMPError) as ei:
        d.execute("blockdev-del", {"node-name": "x"})
    assert (ei.value.cls, ei.value.desc) == ("GenericError",
                                             "Failed to find node with node-name='x'")


def test_qemu_io_through_hmp_writes_only_memory(imgdir):
    d = Dispatcher(Daemon(QEMU_7_2, job_time=VirtualClock()))
    path = f"{imgdir}/top.qcow2"
    with open(path, "rb") as f:
        original = f.read()
    d.execute("blockdev-add", {"driver": "qcow2", "node-name": "top",
                               "file": {"driver": "file", "filename": path}})
    out = d.execute("human-monitor-command",
                    {"command-line": 'qemu-io top "write -P 0x5a 0 64k"'})
    assert out.startswith("wrote 65536/65536 bytes at offset 0\n")
    out = d.execute("human-monitor-command",
                    {"command-line": 'qemu-io top "read -P 0x5a 0 64k"'})
    assert "Pattern verification failed" not in out
    with open(path, "rb") as f:
        assert f.read() == original
    assert os.path.getsize(path) == len(original)
