"""Helpers for the schema tests: loading recorded QEMU data, QEMU's visitor reply shapes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data" / "schema"

# The texts QEMU's QAPI input visitor produces (qobject-input-visitor.c,
# qapi-visit-core.c).
# Member names come from client keys and may hold any character, quotes too.
VISITOR_SHAPES = [
    re.compile(r"Parameter '.*' is missing", re.S),
    re.compile(r"Invalid parameter type for '.*', expected: [A-Za-z0-9]+", re.S),
    re.compile(r"Parameter '.*' is unexpected", re.S),
    re.compile(r"Parameter '.*' does not accept value '.*'", re.S),
    re.compile(r"Parameter '.*' expects (u?int(8|16|32)_t|uint64)", re.S),
]


def is_visitor_text(desc: str) -> bool:
    return any(p.fullmatch(desc) for p in VISITOR_SHAPES)


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def expand_type(index: dict[str, dict], t: str, stack: tuple[str, ...] = ()) -> Any:
    if t in stack:
        return ("recursion", len(stack) - stack.index(t))
    e = index[t]
    st = stack + (t,)
    mt = e["meta-type"]
    if mt == "builtin":
        return t
    if mt == "array":
        return ["array", expand_type(index, e["element-type"], st)]
    if mt == "enum":
        return ["enum", e["values"], e.get("features"), e.get("members")]
    if mt == "alternate":
        return ["alternate", [expand_type(index, m["type"], st) for m in e["members"]]]
    return ["object",
            [(m["name"], "default" in m, m.get("features"), expand_type(index, m["type"], st))
             for m in e["members"]],
            e.get("tag"),
            [(v["case"], expand_type(index, v["type"], st)) for v in e.get("variants", [])],
            e.get("features")]


def assert_same_entity(ours: list[dict], live: list[dict], name: str) -> None:
    """Command or event ``name`` has the same type tree, features and OOB flag in
    qmpd's query-qmp-schema (``ours``) as in a live QEMU's (``live``): masked
    type names differ, so the trees are compared expanded."""
    mine = {e["name"]: e for e in ours}
    real = {e["name"]: e for e in live}
    for key in ("arg-type", "ret-type"):
        if key in real[name]:
            assert expand_type(mine, mine[name][key]) == expand_type(real, real[name][key])
    assert mine[name].get("features") == real[name].get("features")
    assert mine[name].get("allow-oob") == real[name].get("allow-oob")
