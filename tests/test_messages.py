"""Every error raised by key names a message the table has, with the parameters
its text uses: a typo in a key or a parameter would otherwise surface only as a
KeyError (an internal error to the client) on the one path that raises it.
"""

from __future__ import annotations

import ast
import string
from pathlib import Path

from qmpd.profiles import SERIES, select
from qmpd.profiles.messages import BASE

REPO = Path(__file__).resolve().parent.parent


def _keyed_calls() -> list[tuple[str, str, set[str]]]:
    """(where, key, keyword names) of every ``X.of("key", ...)`` and ``Message("key", ...)``."""
    out = []
    for path in sorted((REPO / "qmpd").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            f = node.func
            keyed = (isinstance(f, ast.Attribute) and f.attr == "of") or \
                (isinstance(f, ast.Name) and f.id == "Message")
            first = node.args[0]
            if keyed and isinstance(first, ast.Constant) and isinstance(first.value, str):
                where = f"{path.relative_to(REPO)}:{node.lineno}"
                out.append((where, first.value, {k.arg for k in node.keywords if k.arg}))
    return out


CALLS = _keyed_calls()


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_the_code_raises_errors_by_key() -> None:
    assert len(CALLS) > 100


# Every release's table: a release may word a situation with parameters the
# baseline text leaves out (10.0 names the node a resize is blocked on).
TABLES = [select(f"{s}.0").messages for s in SERIES]


def _release_fields(key: str) -> set[str]:
    return set().union(*(_fields(t[key]) for t in TABLES if key in t))


def test_keyed_errors_name_a_message_with_its_parameters() -> None:
    bad = [f"{where}: no message {key!r}" if key not in BASE else
           f"{where}: {key!r} takes {sorted(_release_fields(key))}, given {sorted(params)}"
           for where, key, params in CALLS
           if key not in BASE or params != _release_fields(key)]
    assert bad == []


def test_a_release_words_only_keys_the_baseline_has() -> None:
    assert [sorted(set(t) - set(BASE)) for t in TABLES] == [[] for _ in TABLES]


def test_every_message_is_raised_somewhere() -> None:
    """A message nothing raises is dead text in every profile."""
    used = {key for _, key, _ in CALLS}
    assert sorted(set(BASE) - used) == []
