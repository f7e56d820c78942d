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
    # Pure: only reads state (queries); every other command may change what
    # the queries show, so running one makes cached query results stale.
    pure: bool = False
    # Cached: a pure command whose encoded reply is kept until the state
    # changes (large block-graph queries that management software polls).
    cached: bool = False
    # Blockless: neither reads nor changes the block layer (negotiation,
    # version, run state), so it may run beside any long data-path command.
    blockless: bool = False


COMMANDS: dict[str, CommandInfo] = {}


def command(name: str, *, allow_oob: bool = False, extension: bool = False,
            features: tuple[str, ...] = (), pure: bool | None = None,
            cached: bool = False, blockless: bool = False) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the handler of QMP command ``name``.

    ``pure`` defaults to True for ``query-*`` commands, which only read.
    """
    if pure is None:
        pure = name.startswith("query-") or cached

    def register(fn: Handler) -> Handler:
        COMMANDS[name] = CommandInfo(name, fn, allow_oob, extension, features, pure, cached,
                                     blockless)
        return fn

    return register
