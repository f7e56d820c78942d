"""``introspect()``: the query-qmp-schema reply a client reads.

Checks that the SchemaInfo list is well formed (every referenced type is
listed, masked names, defaults, features), and that for every QEMU command and
event qmpd describes, the full type tree behind ``arg-type`` / ``ret-type`` is
the one real QEMU 7.2 reports (``qemu-7.2-query-qmp-schema.json``, a live reply).
"""

from __future__ import annotations

import re

import pytest
from schema_testlib import assert_same_entity, load

from qmpd.schema import load as load_schema

# QEMU 7.2's schema, compared with a live 7.2 query-qmp-schema.
command_names = load_schema("7.2").command_names
event_names = load_schema("7.2").event_names
introspect = load_schema("7.2").introspect

LIVE = load("qemu-7.2-query-qmp-schema.json")
ALL = introspect(command_names(), event_names())
META = {"builtin", "enum", "array", "object", "alternate", "command", "event"}


def _referenced(e: dict) -> list[str]:
    out = [e[k] for k in ("arg-type", "ret-type", "element-type") if k in e]
    out += [m["type"] for m in e.get("members", []) if "type" in m]
    out += [v["type"] for v in e.get("variants", [])]
    return out


def test_well_formed() -> None:
    names = [e["name"] for e in ALL]
    assert len(names) == len(set(names))
    index = set(names)
    for e in ALL:
        assert e["meta-type"] in META
        for t in _referenced(e):
            assert t in index, (e["name"], t)
        if e["meta-type"] == "enum":
            assert [m["name"] for m in e["members"]] == e["values"]
        if e["meta-type"] in ("object", "enum", "alternate"):
            assert re.fullmatch(r"\d+", e["name"])
        if e["meta-type"] == "array":
            assert e["name"] == "[" + e["element-type"] + "]"
        for m in e.get("members", []):
            if "default" in m:
                assert m["default"] is None


def test_masked_names_count_up_in_first_use_order() -> None:
    seen: list[str] = []
    for e in ALL:
        # Command and event names are not masked (x-debug-...-sha256 has digits).
        own = [] if e["meta-type"] in ("command", "event") else [e["name"]]
        for t in own + _referenced(e):
            for n in re.findall(r"\d+", t):
                if n not in seen:
                    seen.append(n)
    assert seen == [str(i) for i in range(len(seen))]


def test_lists_exactly_the_given_commands_and_events() -> None:
    out = introspect(["query-status", "blockdev-add", "no-such"], ["STOP"])
    assert [e["name"] for e in out if e["meta-type"] in ("command", "event")] == [
        "query-status", "STOP", "blockdev-add"]
    assert out[0] == {"arg-type": "0", "ret-type": "1", "name": "query-status",
                      "meta-type": "command"}
    assert out[1] == {"arg-type": "0", "name": "STOP", "meta-type": "event"}
    names = {e["name"] for e in out}
    assert all(t in names for e in out for t in _referenced(e))
    assert {"name": "0", "members": [], "meta-type": "object"} in out


def test_blockdev_add_arg_type_is_the_driver_union() -> None:
    out = {e["name"]: e for e in introspect(["blockdev-add"], [])}
    arg = out[out["blockdev-add"]["arg-type"]]
    assert arg["tag"] == "driver"
    assert [m["name"] for m in arg["members"]][:2] == ["driver", "node-name"]
    assert "default" not in arg["members"][0] and arg["members"][1]["default"] is None
    assert len(arg["variants"]) == 42
    enum = out[arg["members"][0]["type"]]
    assert enum["values"][:3] == ["blkdebug", "blklogwrites", "blkreplay"]
    qcow2 = out[next(v["type"] for v in arg["variants"] if v["case"] == "qcow2")]
    file_ref = out[next(m["type"] for m in qcow2["members"] if m["name"] == "file")]
    assert file_ref["meta-type"] == "alternate"
    assert [out[m["type"]]["meta-type"] for m in file_ref["members"]] == ["object", "builtin"]
    assert file_ref["members"][1]["type"] == "str"


def test_features() -> None:
    out = {e["name"]: e for e in ALL}
    assert out["x-debug-query-block-graph"]["features"] == ["unstable"]
    assert out["x-blockdev-reopen"]["arg-type"] == out["blockdev-add"]["arg-type"]
    assert "features" not in out["blockdev-add"]


QEMU_NAMES = {e["name"] for e in LIVE if e["meta-type"] in ("command", "event")}
SHARED = [n for n in command_names() + event_names() if n in QEMU_NAMES]


def test_qemu_commands_are_covered() -> None:
    # with drive-mirror, drive-backup, blockdev-snapshot-sync, query-blockstats,
    # nbd-server-add and nbd-server-remove
    assert len(SHARED) == 76


@pytest.mark.parametrize("name", SHARED)
def test_type_tree_matches_qemu_7_2(name: str) -> None:
    assert_same_entity(ALL, LIVE, name)
