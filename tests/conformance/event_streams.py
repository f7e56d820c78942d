"""Whole event streams: where QEMU's own stream of a scenario is the same run
after run, qmpd's must be that stream.

The step-by-step comparison (:mod:`tests.conformance.replay`) checks the
events of each step and each job's events with drain pauses left out, because
in general QEMU's timing decides in which step an event lands and whether a
drain catches a job running.  For the scenarios listed in
``tests/data/recorded/deterministic_events.json`` (per release: two QEMU
recordings had the same whole stream), the whole stream -- every event's name
and data, in order, timestamps dropped, whichever step it arrived in -- must be
QEMU's, as ``/work/shared/oracle/events.py`` compares them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

LISTING = Path(__file__).resolve().parents[2] / "tests/data/recorded/deterministic_events.json"


def stream(transcript: dict) -> list[str]:
    """The scenario's events in arrival order, canonical JSON without timestamps."""
    out = []
    for step in transcript.get("steps", []):
        for ev in step.get("events") or []:
            d = {k: v for k, v in ev.items() if k != "timestamp"}
            out.append(json.dumps(d, sort_keys=True))
    return out


@cache
def deterministic() -> dict[str, frozenset[str]]:
    """Release series -> the scenarios whose QEMU event stream is deterministic."""
    if not LISTING.exists():
        return {}
    with open(LISTING) as f:
        data = json.load(f)
    return {series: frozenset(names) for series, names in data.items()
            if not series.startswith("_")}


def differs(series: str, scenario: str, expected: dict, actual: dict) -> bool:
    """True when ``scenario``'s stream is deterministic in QEMU ``series`` and
    qmpd's differs from it."""
    if scenario not in deterministic().get(series, frozenset()):
        return False
    return stream(expected) != stream(actual)
