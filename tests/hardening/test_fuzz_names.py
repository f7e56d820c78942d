"""Fuzzing every string argument that names a file, a node, an object, a
job, a bitmap or a qemu-io operand with NUL bytes, control characters and
other odd text: whatever the string, the command answers a QMP error or
succeeds, never an internal error, and a failed command leaves the graph
as it was.

In process, against the real dispatcher (the wire never carries lone
surrogates, but the engine must not care).  ``make fuzz`` runs many more
examples than CI.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmpd.commands.dispatch import Daemon, Dispatcher
from qmpd.commands.errors import QMPError
from qmpd.img.create import img_create
from qmpd.jobs.clock import VirtualClock
from qmpd.profiles import select

from .counts import count

# What these tests expect is QEMU 7.2's (their cases were recorded on it).
QEMU_7_2 = select("7.2.22")

D = "$DIR"
SETUP: list[tuple[str, dict]] = [
    ("blockdev-add", {"driver": "file", "node-name": "f0", "filename": f"{D}/raw.img"}),
    ("blockdev-add", {"driver": "raw", "node-name": "r0", "file": "f0"}),
    ("blockdev-add", {"driver": "null-co", "node-name": "n0", "size": 1 << 20}),
    ("blockdev-add", {"driver": "null-co", "node-name": "n1", "size": 1 << 20}),
    ("object-add", {"qom-type": "throttle-group", "id": "tg0"}),
    ("object-add", {"qom-type": "iothread", "id": "io0"}),
    ("block-dirty-bitmap-add", {"node": "n0", "name": "b0"}),
]
# Valid commands whose string leaves (but driver/type enums) are replaced.
TEMPLATES: list[tuple[str, dict]] = [
    ("blockdev-add", {"driver": "file", "node-name": "x", "filename": f"{D}/raw.img"}),
    ("blockdev-add", {"driver": "qcow2", "node-name": "x", "backing": "n0",
                      "file": {"driver": "file", "filename": f"{D}/base.qcow2"}}),
    ("blockdev-add", {"driver": "qcow2", "node-name": "x",
                      "file": {"driver": "file", "filename": f"{D}/base.qcow2"},
                      "data-file": {"driver": "file", "filename": f"{D}/raw.img"}}),
    ("blockdev-add", {"driver": "raw", "node-name": "x", "file": "n1"}),
    ("blockdev-add", {"driver": "blkdebug", "node-name": "x", "config": f"{D}/raw.img",
                      "image": "n1"}),
    ("blockdev-add", {"driver": "blkverify", "node-name": "x", "test": "n1", "raw": "n0"}),
    ("blockdev-add", {"driver": "throttle", "node-name": "x", "throttle-group": "tg0",
                      "file": "n1"}),
    ("blockdev-add", {"driver": "quorum", "node-name": "x", "vote-threshold": 1,
                      "children": ["n1"]}),
    ("blockdev-add", {"driver": "copy-on-read", "node-name": "x", "file": "n1", "bottom": "n1"}),
    ("blockdev-create", {"job-id": "c0", "options": {"driver": "file",
                                                     "filename": f"{D}/new.img", "size": 65536}}),
    ("blockdev-create", {"job-id": "c0", "options": {
        "driver": "qcow2", "file": "f0", "size": 65536, "backing-file": f"{D}/base.qcow2",
        "backing-fmt": "qcow2", "data-file": "n1"}}),
    ("blockdev-snapshot", {"node": "n0", "overlay": "n1"}),
    ("blockdev-backup", {"job-id": "j0", "device": "n0", "target": "n1", "sync": "full",
                         "bitmap": "b0"}),
    ("blockdev-mirror", {"job-id": "j0", "device": "n0", "target": "n1", "sync": "full",
                         "replaces": "n0"}),
    ("block-stream", {"job-id": "j0", "device": "n0", "backing-file": "x", "base-node": "n1"}),
    ("block-commit", {"job-id": "j0", "device": "n0", "top": "n0", "base": "n1",
                      "backing-file": "x"}),
    ("block-dirty-bitmap-merge", {"node": "n0", "target": "b0",
                                  "bitmaps": ["b0", {"node": "n0", "name": "b0"}]}),
    ("block-dirty-bitmap-remove", {"node": "n0", "name": "b0"}),
    ("block_resize", {"node-name": "n0", "size": 65536}),
    ("block-set-write-threshold", {"node-name": "n0", "write-threshold": 1}),
    ("object-add", {"qom-type": "throttle-group", "id": "tgx"}),
    ("object-add", {"qom-type": "iothread", "id": "iox"}),
    ("object-del", {"id": "tg0"}),
    ("device_add", {"driver": "virtio-blk-pci", "id": "d0", "drive": "n0"}),
    ("device_del", {"id": "d0"}),
    ("x-blockdev-set-iothread", {"node-name": "n0", "iothread": "io0"}),
    ("nbd-server-start", {"addr": {"type": "unix", "path": f"{D}/nbd.sock"}}),
    ("block-export-add", {"type": "nbd", "id": "e0", "node-name": "n0", "name": "e0",
                          "description": "d", "bitmaps": ["b0"]}),
    ("blockdev-reopen", {"options": [{"driver": "raw", "node-name": "r0", "file": "f0"}]}),
    ("x-blockdev-reopen", {"driver": "raw", "node-name": "r0", "file": "f0"}),
    ("blockdev-del", {"node-name": "n1"}),
    ("job-cancel", {"id": "j0"}),
    ("block-job-cancel", {"device": "j0"}),
    ("transaction", {"actions": [
        {"type": "block-dirty-bitmap-add", "data": {"node": "n0", "name": "t"}},
        {"type": "blockdev-snapshot", "data": {"node": "n0", "overlay": "n1"}}]}),
    ("human-monitor-command", {"command-line": 'qemu-io n0 "read -P 0 0 512"'}),
    ("human-monitor-command", {"command-line": 'qemu-io r0 "write -P 1 0 512"'}),
    ("human-monitor-command", {"command-line": 'qemu-io -d d0 "readv -v 0 16 16"'}),
]
ENUMS = {"driver", "qom-type", "type", "sync"}

ODD = st.one_of(
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=6),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.text(alphabet=st.characters(), max_size=6),          # lone surrogates too
    st.sampled_from(["\0", "a\0", "/\0/", "json:{\0", 'json:{"driver": "file", "filename": "\\u0000"}',
                     "json:[1]", "nbd://\0", "x" * 4096, "/" * 2048, "..", "/dev/zero",
                     "/proc/self/mem", "%s%n", "\\", '"', "'", "\u00e9\0", "\uffff"]),
)


def _leaves(obj: Any, path: tuple = ()) -> list[tuple]:
    if isinstance(obj, str):
        return [path]
    if isinstance(obj, dict):
        return [p for k, v in obj.items() if k not in ENUMS for p in _leaves(v, path + (k,))]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _leaves(v, path + (i,))]
    return []


def _subst(obj: Any, d: str) -> Any:
    if isinstance(obj, str):
        return obj.replace(D, d)
    if isinstance(obj, dict):
        return {k: _subst(v, d) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_subst(v, d) for v in obj]
    return obj


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> str:
    d = str(tmp_path_factory.mktemp("names"))
    with open(f"{d}/raw.img", "wb") as f:
        f.truncate(1 << 20)
    img_create(f"{d}/base.qcow2", "qcow2", str(1 << 20), quiet=True)
    return d


@pytest.fixture(scope="module")
def engine() -> tuple[Daemon, Dispatcher]:
    daemon = Daemon(QEMU_7_2, job_time=VirtualClock(), extensions=True)
    return daemon, Dispatcher(daemon)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.function_scoped_fixture])
@given(st.data())
def test_odd_strings_in_names_and_paths_are_never_an_internal_error(
        engine: tuple[Daemon, Dispatcher], images: str, data: Any) -> None:
    name, template = data.draw(st.sampled_from(TEMPLATES))
    template = _subst(template, images)
    path = data.draw(st.sampled_from(_leaves(template)))
    odd = data.draw(ODD)
    if name == "human-monitor-command" and data.draw(st.booleans()):
        # Inside the qemu-io command as well as in place of it.
        odd = template["command-line"].replace("0 512", f"0 {odd}").replace("n0", odd, 1)
    daemon, dispatcher = engine
    dispatcher.execute("x-qmpd-reset", {})   # a fresh block layer, cheaply
    for sname, sargs in SETUP:
        dispatcher.execute(sname, _subst(sargs, images))
    args = copy.deepcopy(template)
    target = args
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = odd
    before = sorted(daemon.graph.nodes)
    count("names (engine)")
    try:
        dispatcher.execute(name, args)
    except QMPError as e:
        assert e.desc and "internal" not in e.desc
        if name == "blockdev-add":
            assert sorted(daemon.graph.nodes) == before
