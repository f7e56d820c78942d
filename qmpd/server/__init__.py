"""The trio front end: UNIX-socket (and stdio) listeners, one task group per
client, event fan-out, signals and shutdown.

``ServerConfig`` (what the CLI parsed) and ``run(config) -> exit status`` are
the public entry points; the protocol itself lives in :mod:`qmpd.protocol`
and the commands behind :class:`qmpd.commands.dispatch.Dispatcher`.
"""

from qmpd.server.config import Endpoint, ServerConfig

__all__ = ["Endpoint", "ServerConfig", "run"]


def run(config: ServerConfig) -> int:
    """Serve until ``quit`` or a signal; returns the process exit status."""
    # Trio is imported only once the sockets exist (see qmpd.server.startup),
    # so ``qmpd --help`` and argument errors never pay for it.
    from qmpd.server.startup import run as _run

    return _run(config)
