"""The QMP error type: what every layer's failure becomes on the wire.

``QMPError(desc, cls)`` renders as ``{"error": {"class": cls, "desc": desc}}``.
``desc`` may be a :class:`~qmpd.profiles.base.Message` (a key and its
parameters): the dispatcher renders it in the words of the daemon's profile
before the error leaves it.  The engine and the schema validator raise their
own errors; the dispatcher translates them into this one.
"""

from __future__ import annotations

from typing import Any

from qmpd.profiles.base import Message, Text


class QMPError(Exception):
    """A command failed; ``cls`` is QEMU's QapiErrorClass name."""

    def __init__(self, desc: Text, cls: str = "GenericError") -> None:
        super().__init__(desc)
        self.message = desc
        self.cls = cls
        # error_append_hint's text, printed for command-line errors only.
        self.hint: str | None = None

    @classmethod
    def of(cls, key: str, error_class: str = "GenericError", /, **params: Any) -> QMPError:
        """The error of message ``key`` with ``params``."""
        return cls(Message(key, **params), error_class)

    @property
    def desc(self) -> str:
        """The text in the baseline words (the dispatcher renders by profile)."""
        m = self.message
        return m if isinstance(m, str) else m.text()

    def __str__(self) -> str:
        return self.desc


class CommandNotFound(QMPError):
    def __init__(self, desc: str) -> None:
        super().__init__(desc, "CommandNotFound")


def from_block_error(e: Any, profile: Any = None) -> QMPError:
    """A QMPError with a BlockError's text (in ``profile``'s words: the
    release's; else the baseline's), class and command-line hint."""
    err = QMPError(profile.render_all(e.parts) if profile is not None else e.desc, e.cls)
    err.hint = getattr(e, "hint", None)
    return err
