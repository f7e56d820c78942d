"""What the server needs to know, as parsed by :mod:`qmpd.cli`.

Kept free of heavy imports: the CLI builds it before trio is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# A client whose unsent output grows beyond this many bytes is disconnected.
# Replies never get there on their own (a client's commands are paused while
# its output is above HIGH_WATER); only events pile up for a client that
# stopped reading.
DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024
DEFAULT_MAX_CLIENTS = 64
DEFAULT_SOCKET_MODE = 0o600


@dataclass(frozen=True)
class Endpoint:
    """One place to serve QMP: a UNIX socket path, or stdin/stdout."""

    kind: str  # "unix" or "stdio"
    path: str = ""


@dataclass
class ServerConfig:
    endpoints: list[Endpoint] = field(default_factory=list)
    qemu_version: tuple[int, int, int] = (7, 2, 22)
    extensions: bool = False
    socket_mode: int = DEFAULT_SOCKET_MODE
    pidfile: str | None = None
    hmp_output: str = "reply"
    trace: str | None = None
    max_clients: int = DEFAULT_MAX_CLIENTS
    max_output: int = DEFAULT_MAX_OUTPUT
    # -S: start with the (imaginary) guest paused, status "prelaunch".
    start_paused: bool = False
    # -name: what query-name reports.
    vm_name: str | None = None
    # --clock: "real" or "virtual" (block jobs advance only on x-qmpd-clock-step).
    clock: str = "real"
