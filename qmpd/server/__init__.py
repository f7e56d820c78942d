"""The trio front end: UNIX-socket (and stdio) listeners, one task group per
client, event fan-out, signals and shutdown.

``ServerConfig`` (what the CLI parsed) and ``run(config) -> exit status`` are
the public entry points; the protocol itself lives in :mod:`qmpd.protocol`
and the commands behind :class:`qmpd.commands.dispatch.Dispatcher`.
"""

from qmpd.server.config import Endpoint, ServerConfig

# startup imports no trio: it imports the server (qmpd.server.app) in a
# thread once the sockets exist, so ``qmpd --help`` and argument errors
# never pay for it.
from qmpd.server.startup import run

__all__ = ["Endpoint", "ServerConfig", "run"]
