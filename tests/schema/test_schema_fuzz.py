"""Property tests: mutated arguments only ever produce QEMU-shaped errors.

Starting from valid argument sets (the recorder's bases), hypothesis drops
members, gives them wrong JSON types, adds unknown keys, writes bad enum
values and nests inline block nodes deeply.  ``validate`` must then either
accept the arguments or raise :class:`ArgumentError` whose text has one of
the QAPI visitor's shapes -- and where the text names a path, the path must
point at the place in the arguments that is really at fault.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from record_validation import BASES, dicts_in
from schema_testlib import is_visitor_text

from qmpd.schema import ArgumentError
from qmpd.schema import load as load_schema

# QEMU 7.2's schema: the recorded cases here are 7.2's.
validate = load_schema("7.2").validate

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70),
                         st.floats(allow_nan=False), st.text(max_size=6))
JSON = st.recursive(JSON_SCALARS, lambda c: st.one_of(st.lists(c, max_size=3),
                                                      st.dictionaries(st.text(max_size=4), c,
                                                                      max_size=3)),
                    max_leaves=6)
KEYS = st.one_of(st.sampled_from(["bogus", "file", "backing", "size", "driver", "node-name",
                                  "cache", "children", "filename", "image", "options", "é"]),
                 st.text(min_size=1, max_size=8))
INLINE = [{"driver": "null-co"}, {"driver": "file", "filename": "/x"},
          {"driver": "qcow2", "file": {"driver": "null-co"}, "backing": None}]


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, dict]:
    command, base = draw(st.sampled_from(BASES))
    args = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 6))):
        targets = dicts_in(args)
        d = targets[draw(st.integers(0, len(targets) - 1))]
        op = draw(st.sampled_from(["drop", "retype", "add", "enum", "nest", "shuffle"]))
        keys = list(d)
        if op == "drop" and keys:
            del d[draw(st.sampled_from(keys))]
        elif op == "retype" and keys:
            d[draw(st.sampled_from(keys))] = draw(JSON)
        elif op == "add":
            for k in draw(st.lists(KEYS, min_size=1, max_size=6)):
                d[k] = draw(JSON)
        elif op == "enum" and keys:
            d[draw(st.sampled_from(keys))] = draw(st.sampled_from(["bogus", "", "FILE"]))
        elif op == "nest":
            # Deep nesting: hang an inline node under every child slot.
            for k in ("file", "backing", "image", "test", "raw"):
                if k in d:
                    d[k] = copy.deepcopy(draw(st.sampled_from(INLINE)))
            if isinstance(d.get("options"), list):
                d["options"].append(copy.deepcopy(draw(st.sampled_from(INLINE))))
        elif op == "shuffle":
            items = draw(st.permutations(list(d.items())))
            d.clear()
            d.update(items)
    return command, args


_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _resolve(args: Any, path: str) -> tuple[bool, Any, Any]:
    """Follow ``a.b[0].c``: (found, parent container, value)."""
    parent, cur = None, args
    for m in _TOKEN.finditer(path):
        parent = cur
        if m.group(1) is not None:
            if not isinstance(cur, dict) or m.group(1) not in cur:
                return False, parent, None
            cur = cur[m.group(1)]
        else:
            i = int(m.group(2))
            if not isinstance(cur, list) or i >= len(cur):
                return False, parent, None
            cur = cur[i]
    return True, parent, cur


def _plain_keys(o: Any) -> bool:
    if isinstance(o, dict):
        return all(re.fullmatch(r"[^.\[\]']+", k) and _plain_keys(v) for k, v in o.items())
    if isinstance(o, list):
        return all(_plain_keys(v) for v in o)
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_only_qemu_shaped_errors(case: tuple[str, dict]) -> None:
    command, args = case
    before = repr(args)
    try:
        validate(command, args)
        desc = None
    except ArgumentError as e:
        desc = e.desc
    assert repr(args) == before
    if desc is None:
        return
    assert is_visitor_text(desc), desc
    if not _plain_keys(args):
        return
    m = re.fullmatch(r"Parameter '(.*)' is (missing|unexpected)", desc, re.S)
    if m:
        found, parent, _ = _resolve(args, m.group(1))
        assert found == (m.group(2) == "unexpected"), desc
        if m.group(2) == "missing":
            assert isinstance(parent, dict), desc
        return
    m = re.fullmatch(r"Invalid parameter type for '(.*)', expected: "
                     r"(string|integer|number|boolean|object|array|null)", desc, re.S)
    if m:
        found, _, value = _resolve(args, m.group(1))
        assert found, desc
        py = {"string": str, "boolean": bool, "object": dict, "array": list}.get(m.group(2))
        if py is not None:
            assert type(value) is not py, desc


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(BASES), st.lists(st.from_regex(r"zz-[a-z0-9]{1,6}", fullmatch=True),
                                        min_size=1, max_size=12, unique=True))
def test_unknown_keys_on_valid_arguments_name_one_of_them(base: tuple[str, dict],
                                                          extra: list[str]) -> None:
    command, args = base
    validate(command, args)
    bad = dict(copy.deepcopy(args), **{k: 1 for k in extra})
    try:
        validate(command, bad)
    except ArgumentError as e:
        m = re.fullmatch(r"Parameter '(.*)' is unexpected", e.desc)
        assert m is not None and m.group(1) in extra
    else:
        raise AssertionError("unknown keys were accepted")
