"""Commands that run in steps: long data-path work that must not hold up
the daemon's other clients.

A handler may return a :class:`Stepwise` instead of its result.  The server
runs one step at a time and serves other clients in between (which of their
commands may run meanwhile is the server's rule, from :attr:`Stepwise.writes`);
in-process callers of the dispatcher get the finished result, as from any
other command.  An error raised by a step leaves as it is: whoever runs the
steps words it with :meth:`~qmpd.commands.dispatch.Dispatcher.qmp_error`, in
the daemon's profile, as the dispatcher words the errors of any command.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any


class Stepwise:
    """A command's remaining work: a generator that yields between steps and
    returns the command's result."""

    __slots__ = ("_steps", "writes", "result")

    def __init__(self, steps: Generator[None, None, Any], *, writes: bool) -> None:
        self._steps = steps
        # True when the work changes data or the graph on its way (a write,
        # a read through copy-on-read): nothing else that looks at the block
        # layer may run between its steps, or it would see a state half done.
        self.writes = writes
        self.result: Any = None

    def step(self) -> bool:
        """Run one step; True once the command has finished and ``result``
        is set.  Raises the command's error (QMPError, BlockError) when it fails."""
        try:
            next(self._steps)
        except StopIteration as done:
            self.result = done.value
            return True
        return False

    def run(self) -> Any:
        """All remaining steps at once; the result."""
        while not self.step():
            pass
        return self.result

    def close(self) -> None:
        """Abandon the command (its generator's cleanup runs now)."""
        self._steps.close()
