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

from qmpd.schema import ArgumentError, command_names, validate

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
