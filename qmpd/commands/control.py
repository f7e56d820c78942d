"""Front-end commands: negotiation, version, the command list and schema,
quit, and the run-state commands clients send as soon as they connect.

Results are built as dicts in QAPI schema member order; the encoder turns
that into QEMU's hash-table key order on the wire (reference section 0.2).
Events are emitted through ``daemon.emit`` *before* returning, so that they
reach the client before the reply, as in QEMU.
"""

from __future__ import annotations

from typing import Any

from qmpd.commands.registry import command


@command("qmp_capabilities", blockless=True)
def qmp_capabilities(daemon: Any, args: dict) -> dict:
    # The session tracks negotiation and OOB itself (when this reply is
    # encoded); the argument shape ({"enable": [QMPCapability]}) is checked
    # by the schema before we get here.
    return {}


@command("query-version", blockless=True)
def query_version(daemon: Any, args: dict) -> dict:
    major, minor, micro = daemon.qemu_version
    return {"qemu": {"major": major, "minor": minor, "micro": micro},
            "package": daemon.package}


def _command_names(daemon: Any) -> list[str]:
    # The server links the dispatcher to the daemon it runs against.
    return list(daemon.dispatcher.command_names())


@command("query-commands", blockless=True)
def query_commands(daemon: Any, args: dict) -> list[dict]:
    return [{"name": name} for name in _command_names(daemon)]


@command("query-qmp-schema", blockless=True)
def query_qmp_schema(daemon: Any, args: dict) -> list[dict]:
    # The events are those of the release's schema: every event qmpd sends
    # is described there (a test checks it), so no list is kept by hand.
    schema = daemon.schema
    return schema.introspect(_command_names(daemon), schema.event_names(),
                             daemon.profile.introspect_enum_members)


@command("quit")
def quit_(daemon: Any, args: dict) -> dict:
    # QEMU sends SHUTDOWN before the reply on a socket monitor, after it on
    # stdio (quit_reply_first), then closes the connection and exits; the
    # server does the closing when it sees quit_requested.
    daemon.quit_requested = True
    data = {"guest": False, "reason": "host-qmp-quit"}
    if daemon.quit_reply_first:
        daemon.after_reply(lambda: daemon.emit("SHUTDOWN", data))
    else:
        daemon.emit("SHUTDOWN", data)
    return {}


def _run_state(daemon: Any) -> str:
    # "prelaunch" with -S until the first cont, "paused" after stop.
    return "running" if daemon.running else daemon.run_state


@command("query-status", blockless=True)
def query_status(daemon: Any, args: dict) -> dict:
    # StatusInfo's members as the release's schema has them, in its order
    # (7.2: running, singlestep, status; 10.0 dropped the deprecated singlestep).
    values = {"running": daemon.running, "singlestep": False, "status": _run_state(daemon)}
    return {k: values[k] for k in daemon.schema.set.types["StatusInfo"]["properties"]}


def _set_running(daemon: Any, running: bool) -> dict:
    """Pause or resume the (imaginary) guest.  QEMU emits STOP or RESUME
    only on a real transition: a second stop, or cont while running,
    succeeds silently (verified on 7.2)."""
    if daemon.running != running:
        daemon.running = running
        daemon.run_state = "running" if running else "paused"
        daemon.emit("RESUME" if running else "STOP")
    return {}


@command("stop")
def stop(daemon: Any, args: dict) -> dict:
    return _set_running(daemon, False)


@command("cont")
def cont(daemon: Any, args: dict) -> dict:
    return _set_running(daemon, True)


@command("query-name", blockless=True)
def query_name(daemon: Any, args: dict) -> dict:
    name = daemon.vm_name
    return {"name": name} if name else {}


@command("x-qmpd-reset", extension=True)
def x_qmpd_reset(daemon: Any, args: dict) -> dict:
    """qmpd extension: back to the block layer of a freshly started daemon.

    Nodes, objects (throttle groups, iothreads), jobs, backends, the
    in-memory layers over host files and the auto-name counter all go, as
    if QEMU had been restarted, so a CI suite can reuse one daemon between
    tests.  Nothing is emitted: no job events, no DEVICE_DELETED.  The run
    state (stop/cont) and the clients' sessions are left as they are.
    """
    # A new graph, and the job manager with it: the old graph's jobs go
    # without a word and a virtual job clock starts at 0 again.
    daemon.new_graph()
    # Cached query replies belong to the old graph: let go of it.
    cache = getattr(getattr(daemon, "dispatcher", None), "_cache", None)
    if cache is not None:
        cache.clear()
    # Other subsystems that keep per-daemon state register a callable here
    # to be reset with the graph.
    for hook in daemon.reset_hooks:
        hook()
    return {}
