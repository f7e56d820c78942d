"""The engine's one error type.

A :class:`BlockError` carries *what* went wrong as one or more parts, each a
:class:`~qmpd.profiles.base.Message` (a key and its parameters, worded by the
release's profile) or a plain text that no release words differently.
``cls`` is the QMP error class the command layer should use (almost always
``GenericError``).  The dispatcher renders the parts with the daemon's
profile; :attr:`BlockError.desc` renders them in the baseline (QEMU 7.2's)
words, for code and tests that run without a daemon.

>>> e = BlockError.of("job.id-in-use", id="j0")
>>> e.desc
"Job ID 'j0' already in use"
>>> e.prefixed("Could not create job: ").desc
"Could not create job: Job ID 'j0' already in use"
"""

from __future__ import annotations

from typing import Any

from qmpd.profiles.base import Message, Text


class BlockError(Exception):
    # error_append_hint: a second line QEMU prints for command-line errors
    # only (QMP replies drop it).
    hint: str | None = None

    def __init__(self, desc: Text, cls: str = "GenericError") -> None:
        self.parts: tuple[Text, ...] = (desc,)
        self.cls = cls
        super().__init__(desc)

    @classmethod
    def of(cls, key: str, error_class: str = "GenericError", /, **params: Any) -> BlockError:
        """The error of message ``key`` with ``params``."""
        return cls(Message(key, **params), error_class)

    @property
    def desc(self) -> str:
        return "".join(p if isinstance(p, str) else p.text() for p in self.parts)

    def __str__(self) -> str:
        return self.desc

    def prefixed(self, prefix: Text) -> BlockError:
        """The same error with QEMU's ``error_prepend`` text in front."""
        err = BlockError(prefix, self.cls)
        err.parts = (prefix, *self.parts)
        err.hint = self.hint
        return err
