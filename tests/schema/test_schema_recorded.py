"""Replay argument-validation replies recorded from real QEMU 7.2.

``recorded_cases.json`` holds hundreds of mutated argument sets (several faults
at once: unknown keys, missing and mistyped members, nested children, bad
enums) with QEMU's reply; ``scenario_steps.json`` holds every execute step of
the shared QEMU transcripts.  Where QEMU's reply came from its QAPI visitor,
``validate`` must give the same text; where QEMU got past validation (a return
or a command's own error), ``validate`` must accept the arguments.
"""

from __future__ import annotations

import pytest
from schema_testlib import is_visitor_text, load

from qmpd.schema import ArgumentError
from qmpd.schema import load as load_schema

# QEMU 7.2's schema: the recorded cases here are 7.2's.
validate = load_schema("7.2").validate
command_names = load_schema("7.2").command_names

CASES = load("recorded_cases.json")["cases"]
STEPS = [s for s in load("scenario_steps.json")["steps"] if s["command"] in set(command_names())]


def _outcome(command: str, args: dict) -> str | None:
    try:
        validate(command, args)
    except ArgumentError as e:
        return e.desc
    return None


def _expected(qemu: dict | None) -> str | None:
    if qemu is None or not is_visitor_text(qemu["desc"]):
        return None
    return qemu["desc"]


def test_enough_recorded_visitor_errors() -> None:
    n = sum(1 for c in CASES if _expected(c["qemu"]) is not None)
    assert n >= 200


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["command"])
def test_recorded_case(case: dict) -> None:
    assert _outcome(case["command"], case["arguments"]) == _expected(case["qemu"])


@pytest.mark.parametrize("step", STEPS, ids=lambda s: f"{s['scenario']}-{s['index']}")
def test_scenario_step(step: dict) -> None:
    assert _outcome(step["command"], step["arguments"]) == _expected(step["qemu"])


def _as_x_reopen(case: dict) -> tuple[dict, str | None] | None:
    """A recorded case turned into the x-blockdev-reopen call QEMU 4.0-6.0 took."""
    args, exp = case["arguments"], _expected(case["qemu"])
    if case["command"] == "blockdev-add":
        return args, exp
    opts = args.get("options")
    if (case["command"] == "blockdev-reopen" and list(args) == ["options"]
            and isinstance(opts, list) and len(opts) == 1 and isinstance(opts[0], dict)):
        return opts[0], None if exp is None else exp.replace("'options[0].", "'")
    return None


X_REOPEN = [x for x in map(_as_x_reopen, CASES) if x is not None]


def test_x_blockdev_reopen_cases_cover_both_sources() -> None:
    assert len(X_REOPEN) > 300


@pytest.mark.parametrize(("args", "desc"), X_REOPEN)
def test_x_blockdev_reopen_has_blockdev_add_shape_without_prefix(args: dict,
                                                                  desc: str | None) -> None:
    assert _outcome("x-blockdev-reopen", args) == desc
