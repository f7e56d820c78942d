"""Reopen transactions (placeholder until the reopen engine lands)."""

from __future__ import annotations

from qmpd.engine.errors import BlockError


def reopen(graph, entries):  # type: ignore[no-untyped-def]
    raise BlockError("blockdev-reopen is not implemented yet")
