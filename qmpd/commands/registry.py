"""The command table: name -> handler, plus the flags QEMU keeps per command.

Handlers are plain functions ``handler(ctx, args) -> result``.  Argument
shapes are not written here: they live in ``schema/`` and are checked by
:mod:`qmpd.schema` before the handler runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[Any, dict], Any]


@dataclass(frozen=True)
class CommandInfo:
    name: str
    handler: Handler
    allow_oob: bool = False
    # qmpd-only commands (x-qmpd-...) exist only with --extensions.
    extension: bool = False
    features: tuple[str, ...] = field(default_factory=tuple)


COMMANDS: dict[str, CommandInfo] = {}


def command(name: str, *, allow_oob: bool = False, extension: bool = False,
            features: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the handler of QMP command ``name``."""

    def register(fn: Handler) -> Handler:
        COMMANDS[name] = CommandInfo(name, fn, allow_oob, extension, features)
        return fn

    return register
