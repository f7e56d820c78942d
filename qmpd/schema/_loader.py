"""Loading one release's JSON Schema documents and indexing them by QAPI name.

Each release has its folder ``schema/<series>/`` (see :mod:`qmpd.profiles`);
every file in it is read once.  Named types live in ``$defs`` of
the ``types-*.json`` and ``builtins.json`` files; QAPI type names are unique,
so a ``$ref`` such as ``types-block.json#/$defs/BlockdevRef`` resolves to
the name ``BlockdevRef``.  Commands and events are in the family files under
``x-qapi-commands`` / ``x-qapi-events``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

Checker = Callable[[dict], None]


def _schema_files(folder: str) -> Iterator[tuple[str, str]]:
    # Installed wheel: qmpd/_schema (pyproject force-include).  Editable or
    # source checkout: the repository's top-level schema/ directory.
    try:
        pkg = resources.files("qmpd") / "_schema" / folder
        if pkg.is_dir():
            entries = sorted((e for e in pkg.iterdir() if e.name.endswith(".json")),
                             key=lambda e: e.name)
            if entries:
                for e in entries:
                    yield e.name, e.read_text(encoding="utf-8")
                return
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    repo = Path(__file__).resolve().parents[2] / "schema" / folder
    if not repo.is_dir():
        raise FileNotFoundError(f"no schema folder {folder!r} (looked in {repo})")
    for p in sorted(repo.glob("*.json")):
        yield p.name, p.read_text(encoding="utf-8")


def ref_name(ref: str) -> str:
    """``types-block.json#/$defs/BlockdevRef`` -> ``BlockdevRef``."""
    return ref.rsplit("/", 1)[-1]


class SchemaSet:
    """All schema documents, indexed by QAPI name."""

    def __init__(self, docs: dict[str, dict]) -> None:
        self.docs = docs
        self.types: dict[str, dict] = {}
        self.builtins: set[str] = set()
        self.commands: dict[str, dict] = {}
        self.events: dict[str, dict] = {}
        for fname, doc in docs.items():
            for name, d in doc.get("$defs", {}).items():
                if name in self.types:
                    raise ValueError(f"type {name} defined twice ({fname})")
                self.types[name] = d
                if fname == "builtins.json":
                    self.builtins.add(name)
            for name, c in doc.get("x-qapi-commands", {}).items():
                self.commands[name] = c
            for name, e in doc.get("x-qapi-events", {}).items():
                self.events[name] = e

    def command_names(self) -> list[str]:
        return sorted(self.commands, key=lambda n: self.commands[n]["x-qapi-order"])

    def event_names(self) -> list[str]:
        return sorted(self.events, key=lambda n: self.events[n]["x-qapi-order"])



def load_schema_set(folder: str) -> SchemaSet:
    """The documents of ``schema/<folder>/``."""
    return SchemaSet({name: json.loads(text) for name, text in _schema_files(folder)})
