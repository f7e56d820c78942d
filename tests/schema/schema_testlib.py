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
