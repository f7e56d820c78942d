"""Schema-driven argument validation in QEMU 7.2's words, and ``query-qmp-schema``.

The argument shapes live only in the JSON Schema documents under
``schema/<release>/`` (installed as ``qmpd/_schema``; see ``schema/README.md``
for the ``x-qapi-*`` keywords); each release's profile names its folder.
:func:`load` reads one folder lazily and gives a :class:`Schema` with:

* :meth:`Schema.validate` -- check a command's arguments exactly like QEMU's QAPI
  QObject input visitor does, raising :class:`ArgumentError` with the text of
  the first fault QEMU meets;
* :meth:`Schema.introspect` -- the ``query-qmp-schema`` reply (SchemaInfo list) for a
  set of commands and events, numbered and masked the way QEMU's
  ``scripts/qapi/introspect.py`` does it.
"""

from __future__ import annotations

from typing import Any

from qmpd.profiles import select
from qmpd.schema._introspect import build
from qmpd.schema._loader import Checker, SchemaSet, load_schema_set
from qmpd.schema._visitor import Compiler, VisitError

__all__ = ["ArgumentError", "Schema", "load", "validate", "introspect", "command_names",
           "event_names"]


class ArgumentError(Exception):
    """A command's arguments do not fit its schema; ``desc`` is QEMU's text."""

    def __init__(self, desc: str) -> None:
        super().__init__(desc)
        self.desc = desc


class Schema:
    """One release's schema (the folder its profile names): checks and introspection."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.set: SchemaSet = load_schema_set(folder)
        self._checkers: dict[str, Checker | None] = {}
        self._compiler: Any = None

    def _checker(self, command: str) -> Checker | None:
        try:
            return self._checkers[command]
        except KeyError:
            pass
        entry = self.set.commands.get(command)
        if entry is None:
            chk = None
        else:
            if self._compiler is None:
                self._compiler = Compiler(self.set)
            chk = self._compiler.command_checker(command, entry)
        self._checkers[command] = chk
        return chk

    def validate(self, command: str, args: dict) -> None:
        """Raise :class:`ArgumentError` if ``args`` is not valid for ``command``.

        ``args`` must keep the client's key order (nested dicts too): QEMU's
        choice among several unexpected keys depends on it.  Commands the
        schema does not describe are not checked.
        """
        checker = self._checker(command)
        if checker is None:
            return
        try:
            checker(args)
        except VisitError as e:
            raise ArgumentError(e.desc) from None

    def introspect(self, commands: list[str], events: list[str],
                   enum_members: bool = True) -> list[dict[str, Any]]:
        """The ``query-qmp-schema`` return value describing ``commands`` and ``events``.

        Names the schema does not describe are left out.  Entities come in QAPI
        definition order, then the types they reach in first-use order, with
        non-command, non-event names masked as decimal strings like QEMU does.
        ``enum_members``: enums list ``members`` beside ``values`` (the
        release's profile says whether its SchemaInfoEnum has them).
        """
        return build(self.set, commands, events, enum_members)

    def command_names(self) -> list[str]:
        """Every command the schema files describe, in QAPI order."""
        return self.set.command_names()

    def event_names(self) -> list[str]:
        """Every event the schema files describe, in QAPI order."""
        return self.set.event_names()


_LOADED: dict[str, Schema] = {}


def load(folder: str | None = None) -> Schema:
    """The schema of ``schema/<folder>/`` (the default release's when None),
    read once per process."""
    if folder is None:
        folder = select().schema_dir
    schema = _LOADED.get(folder)
    if schema is None:
        schema = _LOADED[folder] = Schema(folder)
    return schema


# The default release's schema, for code and tests that have no profile at hand.

def validate(command: str, args: dict) -> None:
    """:meth:`Schema.validate` with the default release's schema."""
    load().validate(command, args)


def introspect(commands: list[str], events: list[str]) -> list[dict[str, Any]]:
    """:meth:`Schema.introspect` with the default release's schema."""
    return load().introspect(commands, events)


def command_names() -> list[str]:
    return load().command_names()


def event_names() -> list[str]:
    return load().event_names()
