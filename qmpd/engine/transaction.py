"""The undo log every change of the block graph runs under.

A command collects undo steps (``on_abort``) and steps to run once everything
succeeded (``on_commit``); a failing command aborts, which puts the graph back
exactly as it was (QEMU's ``Transaction`` of block/transactions.c).
"""

from __future__ import annotations

from collections.abc import Callable


class Transaction:
    """An undo log: ``abort()`` runs the undo steps in reverse."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []
        self._commit: list[Callable[[], None]] = []

    def on_abort(self, fn: Callable[[], None]) -> None:
        self._undo.append(fn)

    def on_commit(self, fn: Callable[[], None]) -> None:
        self._commit.append(fn)

    def absorb(self, other: Transaction) -> None:
        """Take over ``other``'s steps: a part that was tried on its own
        (and could have been aborted alone) now stands or falls with this one."""
        self._undo.extend(other._undo)
        self._commit.extend(other._commit)
        other._undo.clear()
        other._commit.clear()

    def abort(self) -> None:
        while self._undo:
            self._undo.pop()()
        self._commit.clear()

    def commit(self) -> None:
        for fn in self._commit:
            fn()
        self._commit.clear()
        self._undo.clear()
