"""object-add / object-del for throttle-group and iothread, and query-iothreads.

The rules (QEMU's order of checks, throttle limit validation) live in
:mod:`qmpd.engine.objects`; these handlers only hand the arguments on.
"""

from __future__ import annotations

from typing import Any

from qmpd.commands.registry import command
from qmpd.engine import objects


def _untyped(daemon: Any) -> bool:
    """object-add is 'gen': false in the release's schema (before 6.0): QOM
    checks the arguments property by property instead of the QAPI visitor."""
    entry = daemon.schema.set.commands.get("object-add") or {}
    return entry.get("x-qapi-gen") is False


@command("object-add")
def object_add(daemon: Any, args: dict) -> dict:
    if _untyped(daemon):
        objects.add(daemon.graph, objects.qom_properties(args), id_rule=False)
    else:
        objects.add(daemon.graph, args)
    return {}


@command("object-del")
def object_del(daemon: Any, args: dict) -> dict:
    objects.delete(daemon.graph, args["id"])
    return {}


@command("query-iothreads")
def query_iothreads(daemon: Any, args: dict) -> list:
    return objects.query_iothreads(daemon.graph)
