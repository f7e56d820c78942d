"""What the server needs to know, as parsed by :mod:`qmpd.cli`.

Kept free of heavy imports: the CLI builds it before trio is loaded.
"""

from __future__ import annotations

from qmpd.profiles.registry import DEFAULT_VERSION, parse_release

# A client whose unsent output grows beyond this many bytes is disconnected.
# Replies never get there on their own (a client's commands are paused while
# its output is above HIGH_WATER); only events pile up for a client that
# stopped reading.  Above QEMU's 64 MiB message limit, so that anything QEMU
# itself would still handle is never cut short by qmpd.
DEFAULT_MAX_OUTPUT = 128 * 1024 * 1024
DEFAULT_MAX_CLIENTS = 64
DEFAULT_SOCKET_MODE = 0o600


class Endpoint:
    """One place to serve QMP: a UNIX socket path, or stdin/stdout."""

    # A plain class, not a dataclass: importing dataclasses costs several ms
    # of the time to greeting.
    __slots__ = ("kind", "path")

    def __init__(self, kind: str, path: str = "") -> None:
        # "unix" (qmpd listens), "connect" (qmpd connects out, as QEMU's client
        # chardevs), "fd" (an inherited connected socket; path is its number),
        # "stdio", or "null" (a null chardev)
        self.kind = kind
        self.path = path

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Endpoint)
                and (self.kind, self.path) == (other.kind, other.path))

    def __hash__(self) -> int:
        return hash((self.kind, self.path))

    def __repr__(self) -> str:
        return f"Endpoint({self.kind!r}, {self.path!r})"


class ServerConfig:
    """Everything the CLI parsed (keyword arguments, all optional)."""

    def __init__(self, *, endpoints: list[Endpoint] | None = None,
                 qemu_version: tuple[int, int, int] | None = None, extensions: bool = False,
                 socket_mode: int = DEFAULT_SOCKET_MODE, pidfile: str | None = None,
                 hmp_output: str = "reply", trace: str | None = None,
                 max_clients: int = DEFAULT_MAX_CLIENTS, max_output: int = DEFAULT_MAX_OUTPUT,
                 start_paused: bool = False, vm_name: str | None = None,
                 clock: str = "real", startup: list | None = None,
                 qtest: Endpoint | None = None, host_writes: bool = False) -> None:
        self.endpoints = endpoints if endpoints is not None else []
        # The release qmpd answers as (qmpd.profiles): its series picks the
        # profile, the exact version is what the greeting reports.
        if qemu_version is None:
            qemu_version = parse_release(DEFAULT_VERSION)[1]
        self.qemu_version = qemu_version
        self.qemu_series = f"{qemu_version[0]}.{qemu_version[1]}"
        self.extensions = extensions
        self.socket_mode = socket_mode
        self.pidfile = pidfile
        self.hmp_output = hmp_output
        self.trace = trace
        self.max_clients = max_clients
        self.max_output = max_output
        # -S: start with the (imaginary) guest paused, status "prelaunch".
        self.start_paused = start_paused
        # -name: what query-name reports.
        self.vm_name = vm_name
        # --clock: "real" or "virtual" (block jobs advance only on x-qmpd-clock-step).
        self.clock = clock
        # -blockdev, -drive, -device, -object: qmpd.launch.StartupItem, run in order
        # before any monitor is served.
        self.startup = startup if startup is not None else []
        # -qtest: where the qtest protocol is spoken (kind "connect" or "unix").
        self.qtest = qtest
        # --host-writes (or QEMU's test launch): writes reach the image files.
        self.host_writes = host_writes

    def __repr__(self) -> str:
        return f"ServerConfig({vars(self)!r})"
