"""Schema-driven argument validation in QEMU 7.2's words, and ``query-qmp-schema``.

The argument shapes live only in the JSON Schema documents under ``schema/``
(installed as ``qmpd/_schema``; see ``schema/README.md`` for the ``x-qapi-*``
keywords).  This module reads them lazily and offers:

* :func:`validate` -- check a command's arguments exactly like QEMU's QAPI
  QObject input visitor does, raising :class:`ArgumentError` with the text of
  the first fault QEMU meets;
* :func:`introspect` -- the ``query-qmp-schema`` reply (SchemaInfo list) for a
  set of commands and events, numbered and masked the way QEMU's
  ``scripts/qapi/introspect.py`` does it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qmpd.schema._loader import SchemaSet

__all__ = ["ArgumentError", "validate", "introspect", "command_names", "event_names"]


class ArgumentError(Exception):
    """A command's arguments do not fit its schema; ``desc`` is QEMU's text."""

    def __init__(self, desc: str) -> None:
        super().__init__(desc)
        self.desc = desc


_SET: SchemaSet | None = None


def _schema_set() -> SchemaSet:
    # Loaded on first use so that importing qmpd stays cheap.
    global _SET
    if _SET is None:
        from qmpd.schema._loader import load_schema_set

        _SET = load_schema_set()
    return _SET


def validate(command: str, args: dict) -> None:
    """Raise :class:`ArgumentError` if ``args`` is not valid for ``command``.

    ``args`` must keep the client's key order (nested dicts too): QEMU's choice
    among several unexpected keys depends on it.  Commands the schema does not
    describe are not checked.
    """
    from qmpd.schema._visitor import VisitError

    checker = _schema_set().checker(command)
    if checker is None:
        return
    try:
        checker(args)
    except VisitError as e:
        raise ArgumentError(e.desc) from None


def introspect(commands: list[str], events: list[str]) -> list[dict[str, Any]]:
    """The ``query-qmp-schema`` return value describing ``commands`` and ``events``.

    Names the schema does not describe are left out.  Entities come in QAPI
    definition order, then the types they reach in first-use order, with
    non-command, non-event names masked as decimal strings like QEMU does.
    """
    from qmpd.schema._introspect import build

    return build(_schema_set(), commands, events)


def command_names() -> list[str]:
    """Every command the schema files describe, in QAPI order."""
    return _schema_set().command_names()


def event_names() -> list[str]:
    """Every event the schema files describe, in QAPI order."""
    return _schema_set().event_names()
