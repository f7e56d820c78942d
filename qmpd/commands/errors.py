"""The QMP error type: what every layer's failure becomes on the wire.

``QMPError(desc, cls)`` renders as ``{"error": {"class": cls, "desc": desc}}``.
The engine and the schema validator raise their own errors; the dispatcher
translates them into this one.
"""

from __future__ import annotations


class QMPError(Exception):
    """A command failed; ``cls`` is QEMU's QapiErrorClass name."""

    def __init__(self, desc: str, cls: str = "GenericError") -> None:
        super().__init__(desc)
        self.desc = desc
        self.cls = cls


class CommandNotFound(QMPError):
    def __init__(self, desc: str) -> None:
        super().__init__(desc, "CommandNotFound")
