"""nbd-server-start/stop, nbd-server-add/remove (the legacy forms of
block-export-add/del), block-export-add/del and query-block-exports.

The export rules and state live in :mod:`qmpd.engine.exports`; these handlers
hand the arguments on and send ``BLOCK_EXPORT_DELETED`` for each export gone.
"""

from __future__ import annotations

from typing import Any

from qmpd.commands.registry import command
from qmpd.engine import exports, surgery


@command("nbd-server-start")
def nbd_server_start(daemon: Any, args: dict) -> dict:
    exports.nbd_server_start(daemon.graph)
    return {}


@command("nbd-server-stop")
def nbd_server_stop(daemon: Any, args: dict) -> dict:
    for eid in exports.nbd_server_stop(daemon.graph):
        daemon.emit("BLOCK_EXPORT_DELETED", {"id": eid})
    return {}


@command("nbd-server-add")
def nbd_server_add(daemon: Any, args: dict) -> dict:
    g = daemon.graph
    exports.nbd_server_add(g, args, surgery.lookup_bs(g, args["device"], args["device"]))
    return {}


@command("nbd-server-remove")
def nbd_server_remove(daemon: Any, args: dict) -> dict:
    _deleted(daemon, exports.nbd_server_remove(daemon.graph, args["name"]))
    return {}


def _deleted(daemon: Any, eid: str) -> None:
    """BLOCK_EXPORT_DELETED for an export removed by request: now, or after
    the reply where the release deletes it in a bottom half."""
    data = {"id": eid}
    if daemon.profile.export_deleted_after_reply:
        daemon.after_reply(lambda: daemon.emit("BLOCK_EXPORT_DELETED", data))
    else:
        daemon.emit("BLOCK_EXPORT_DELETED", data)


@command("block-export-add")
def block_export_add(daemon: Any, args: dict) -> dict:
    exports.export_add(daemon.graph, args)
    return {}


@command("block-export-del")
def block_export_del(daemon: Any, args: dict) -> dict:
    _deleted(daemon, exports.export_del(daemon.graph, args["id"]))
    return {}


@command("query-block-exports")
def query_block_exports(daemon: Any, args: dict) -> list:
    return exports.query_block_exports(daemon.graph)
