"""The engine's one error type.

``BlockError.desc`` is QEMU 7.2's exact text; ``cls`` the QMP error class the
command layer should use (almost always ``GenericError``).
"""

from __future__ import annotations


class BlockError(Exception):
    def __init__(self, desc: str, cls: str = "GenericError") -> None:
        super().__init__(desc)
        self.desc = desc
        self.cls = cls

    def prefixed(self, prefix: str) -> BlockError:
        """The same error with QEMU's ``error_prepend`` text in front."""
        return BlockError(prefix + self.desc, self.cls)
