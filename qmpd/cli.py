"""Command line of ``qmpd`` (and ``python -m qmpd``).

Two spellings of "where to serve" are accepted so that scripts written for
QEMU can start qmpd unchanged:

* qmpd's own: ``--socket PATH`` (repeatable);
* QEMU's: ``-qmp unix:PATH,server=on,wait=off`` (or the legacy ``server,nowait``),
  ``-qmp stdio``, and libvirt's ``-chardev socket,id=X,path=P,server=on,wait=off
  -mon chardev=X,mode=control``.

QEMU options that mean nothing to a QMP-only daemon (``-machine``/``-M``,
``-nodefaults``, ``-display none``, ``-nographic``, ``-accel``) are accepted
and ignored; ``-S`` starts with status ``prelaunch`` and ``-name`` sets what
``query-name`` reports, as in QEMU.  Anything else is refused with a message
saying so, before any socket is created.

Parsing is kept light (no trio import) so that errors and ``--help`` are fast.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
from typing import Any

from qmpd import __version__, launch
from qmpd.launch import UsageError, split_qemu_opts  # noqa: E402  (QEMU's option syntax)
from qmpd.profiles.registry import DEFAULT_VERSION, SERIES, UnknownRelease, parse_release
from qmpd.server import run  # light: trio and the engine come once run() has the sockets
from qmpd.server.config import (
    DEFAULT_MAX_CLIENTS,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_SOCKET_MODE,
    Endpoint,
    ServerConfig,
)

_ON = {"on", "yes", "true", "y"}
_OFF = {"off", "no", "false", "n"}


def _flag(key: str, value: str, where: str) -> bool:
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise UsageError(f"{where}: {key}={value}: expected on or off")


def _socket_endpoint(path: str, opts: list[str], where: str,
                     allowed: tuple[str, ...] = (), fd_ok: bool = False) -> Endpoint:
    """QEMU's socket chardev options: a server qmpd listens on, or (without
    ``server=on``) a client socket qmpd connects out to, as QEMU does."""
    server = False
    fd = ""
    for opt in opts:
        key, eq, value = opt.partition("=")
        if key in allowed:
            continue
        if key == "fd" and fd_ok:
            fd = value
        elif key == "server":
            server = _flag(key, value, where) if eq else True
        elif key == "nowait" and not eq:
            pass
        elif key == "wait":
            _flag(key, value, where)  # qmpd has nothing to wait for: either is fine
        else:
            raise UsageError(f"{where}: option '{opt}' is not supported by qmpd")
    if fd:
        # an inherited socket (QEMU 9.1+ iotests pass a socketpair end)
        if path or server or not fd.isdigit():
            raise UsageError(f"{where}: fd= takes a connected socket's number, "
                             "without path= or server=on")
        return Endpoint("fd", fd)
    if not path:
        raise UsageError(f"{where}: missing socket path")
    return Endpoint("unix" if server else "connect", path)


def parse_qmp_spec(spec: str) -> Endpoint:
    """``-qmp`` argument: ``unix:PATH,server=on,wait=off`` or ``stdio``."""
    where = f"-qmp {spec}"
    if spec == "stdio":
        return Endpoint("stdio")
    if spec.startswith("unix:"):
        path, rest = _unix_path(spec[5:])
        return _socket_endpoint(path, rest, where)
    raise UsageError(f"{where}: qmpd serves only 'unix:PATH,server=on,wait=off' or 'stdio'")


def _unix_path(text: str) -> tuple[str, list[str]]:
    """``PATH,opts`` or ``path=PATH,opts`` (qemu_chr_parse_compat's implied key)."""
    parts = split_qemu_opts(text)
    path, rest = parts[0], parts[1:]
    if path.startswith("path="):
        path = path[5:]
    else:
        for opt in list(rest):
            if opt.startswith("path="):
                rest.remove(opt)
                path = opt[5:]
    return path, rest


def parse_qtest_spec(spec: str, chardevs: list[str] | None = None) -> Endpoint:
    """``-qtest unix:path=P``: the qtest protocol on a socket qmpd connects to
    (or listens on, with server=on); ``-qtest chardev:ID`` on a -chardev's socket."""
    where = f"-qtest {spec}"
    if spec.startswith("chardev:"):
        for dev_spec in chardevs or ():
            dev_id, ep = _chardev(dev_spec)
            if dev_id == spec[len("chardev:"):]:
                if ep.kind not in ("connect", "unix", "fd"):
                    raise UsageError(f"{where}: qmpd speaks qtest only on socket chardevs")
                return ep
        raise UsageError(f"{where}: no -chardev with id={spec[len('chardev:'):]}")
    if not spec.startswith("unix:"):
        raise UsageError(f"{where}: qmpd speaks qtest only on 'unix:PATH' sockets")
    path, rest = _unix_path(spec[5:])
    return _socket_endpoint(path, rest, where)


def _chardev(spec: str) -> tuple[str, Endpoint]:
    """One ``-chardev``: its id and where it leads."""
    where = f"-chardev {spec}"
    parts = split_qemu_opts(spec)
    backend, rest = parts[0], parts[1:]
    kv = dict(p.partition("=")[::2] for p in rest)
    dev_id = kv.get("id")
    if not dev_id:
        raise UsageError(f"{where}: missing id=")
    if backend == "socket":
        path = kv.get("path", "")
        return dev_id, _socket_endpoint(path, rest, where, allowed=("id", "path"), fd_ok=True)
    if backend == "stdio":
        if set(kv) - {"id", "signal"}:
            raise UsageError(f"{where}: only id= is supported for stdio")
        return dev_id, Endpoint("stdio")
    if backend == "null":
        return dev_id, Endpoint("null")
    raise UsageError(f"{where}: qmpd supports only socket, stdio and null chardevs")


def parse_chardevs(chardevs: list[str], mons: list[str],
                   serial_ids: tuple[str, ...] = ()) -> list[Endpoint]:
    """libvirt's ``-chardev socket,id=X,path=P,server=on,wait=off -mon chardev=X,mode=control``."""
    devs: dict[str, Endpoint] = {}
    for spec in chardevs:
        dev_id, ep = _chardev(spec)
        devs[dev_id] = ep
    endpoints: list[Endpoint] = []
    used: set[str] = set()
    for spec in mons:
        where = f"-mon {spec}"
        kv = dict(p.partition("=")[::2] for p in split_qemu_opts(spec))
        unknown = set(kv) - {"chardev", "mode", "pretty", "id"}
        if unknown:
            raise UsageError(f"{where}: option '{sorted(unknown)[0]}' is not supported by qmpd")
        if kv.get("mode", "readline") != "control":
            raise UsageError(f"{where}: qmpd has only QMP monitors; use mode=control")
        if kv.get("pretty", "off") not in _OFF:
            raise UsageError(f"{where}: pretty=on is not supported by qmpd")
        dev = kv.get("chardev", "")
        if dev not in devs:
            raise UsageError(f"{where}: no -chardev with id={dev}")
        used.add(dev)
        endpoints.append(devs[dev])
    unused = sorted(set(devs) - used - set(serial_ids))
    if unused:
        raise UsageError(f"-chardev id={unused[0]}: not used by any -mon (qmpd serves only monitors)")
    return endpoints


def parse_version(text: str) -> tuple[int, int, int]:
    """The exact version of ``--qemu-version``, whose series must have a profile."""
    try:
        return parse_release(text)[1]
    except UnknownRelease as e:
        raise UsageError(str(e)) from None


def _positive_int(text: str) -> int:
    value = int(text, 0)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text}: must be positive")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qmpd", allow_abbrev=False,
        description="A QMP daemon that answers like a QEMU release's block layer, in memory. "
                    "Image files are read, never written (unless --host-writes): the graph, "
                    "objects, jobs and every write are kept in memory and are gone when "
                    "qmpd exits.",
        epilog="QEMU spellings accepted: -qmp unix:PATH,server=on,wait=off | -qmp stdio, "
               "-chardev socket,id=X,path=P,server=on,wait=off -mon chardev=X,mode=control; "
               "ignored: -machine/-M, -nodefaults, -display none, -nographic, -accel; "
               "-S (start paused, status prelaunch), -name NAME, -pidfile FILE.")
    p.add_argument("--version", action="version", version=f"qmpd {__version__}")
    p.add_argument("--socket", action="append", default=[], metavar="PATH",
                   help="listen for QMP clients on this UNIX socket (repeatable)")
    p.add_argument("--qemu-version", default=DEFAULT_VERSION, metavar="X.Y.Z",
                   help="answer as this QEMU release: its commands, schema, texts and "
                        "semantics, and this exact version in the greeting and "
                        f"query-version (default %(default)s; releases: {', '.join(SERIES)})")
    p.add_argument("--pidfile", "-pidfile", metavar="FILE", help="write the process id here")
    p.add_argument("--extensions", action="store_true",
                   help="enable qmpd's own commands: x-qmpd-reset (back to an empty "
                        "graph, as a restarted QEMU) and x-qmpd-clock-step (advance the "
                        "virtual job clock)")
    p.add_argument("--clock", choices=("real", "virtual"), default="real",
                   help="block-job clock; 'virtual' stands still until x-qmpd-clock-step "
                        "(default %(default)s)")
    p.add_argument("--socket-mode", default=f"{DEFAULT_SOCKET_MODE:04o}", metavar="OCTAL",
                   help="permissions of the socket file (default %(default)s)")
    p.add_argument("--hmp-output", choices=("reply", "stdout"), default=None,
                   help="where qemu-io output of human-monitor-command goes: in the reply, "
                        "or on qmpd's stdout with an empty reply as QEMU (default: reply; "
                        "stdout with QEMU's test launch, -qtest or -accel qtest)")
    p.add_argument("--trace", metavar="FILE",
                   help="append every message in and out to FILE as JSON lines with "
                        "timestamps")
    p.add_argument("--host-writes", action="store_true",
                   help="write to the host's image files as QEMU does (on flush and at "
                        "exit) instead of keeping writes in memory; implied by QEMU's "
                        "test launch (-qtest or -accel qtest)")
    p.add_argument("--max-clients", type=_positive_int, default=DEFAULT_MAX_CLIENTS,
                   metavar="N", help="refuse connections beyond N clients (default %(default)s)")
    p.add_argument("--max-output", type=_positive_int, default=DEFAULT_MAX_OUTPUT,
                   metavar="BYTES",
                   help="disconnect a client with more than BYTES of unread output "
                        "(default %(default)s)")
    q = p.add_argument_group("QEMU compatibility")

    def qemu_option(name: str, *more: str, **kwargs: Any) -> None:
        # QEMU takes each of its options with one dash or two.
        q.add_argument(f"-{name}", f"--{name}", *more, **kwargs)

    def qemu_list(name: str, *more: str, metavar: str, help: str = argparse.SUPPRESS) -> None:
        # An option that may be given several times; argparse collects the values.
        qemu_option(name, *more, action="append", default=[], metavar=metavar, help=help)

    qemu_list("qmp", metavar="SPEC",
              help="unix:PATH,server=on,wait=off (or server,nowait), or stdio")
    qemu_list("chardev", metavar="SPEC",
              help="socket,id=X,path=P,server=on,wait=off (or stdio,id=X)")
    qemu_list("mon", metavar="SPEC", help="chardev=X,mode=control")
    qemu_list("monitor", metavar="none", help=argparse.SUPPRESS)
    qemu_list("machine", "-M", metavar="X")
    qemu_list("accel", metavar="X")
    qemu_option("display", metavar="none", help=argparse.SUPPRESS)
    qemu_option("nodefaults", action="store_true", help=argparse.SUPPRESS)
    qemu_option("nographic", action="store_true", help=argparse.SUPPRESS)
    q.add_argument("-S", dest="start_paused", action="store_true", help=argparse.SUPPRESS)
    qemu_option("vga", metavar="none", help=argparse.SUPPRESS)
    qemu_list("serial", metavar="DEV")
    qemu_option("qtest", metavar="SPEC",
                help="unix:path=P: the qtest protocol (clock_step, clock_set) on a "
                     "socket qmpd connects to")
    qemu_list("blockdev", metavar="OPTS",
              help="a block node, as blockdev-add (JSON or key=value,...)")
    qemu_list("drive", metavar="OPTS",
              help="a legacy drive: file=,format=,if=none|virtio,id=,node-name=,cache=...")
    qemu_list("device", metavar="OPTS",
              help="a device, as device_add (virtio-blk, virtio-scsi, scsi-hd)")
    qemu_list("object", metavar="OPTS",
              help="an object, as object-add (iothread, throttle-group, ...)")
    qemu_option("incoming", metavar="URI", help=argparse.SUPPRESS)
    qemu_option("name", metavar="NAME", help=argparse.SUPPRESS)
    return p


def parse_args(argv: list[str] | None = None) -> ServerConfig:
    """Command line -> :class:`ServerConfig`; raises :class:`UsageError`."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        raise UsageError(f"{unknown[0]}: not supported by qmpd "
                         "(it emulates only QEMU's QMP monitor; see qmpd --help)")
    if args.display is not None and split_qemu_opts(args.display)[0] != "none":
        raise UsageError(f"-display {args.display}: qmpd has no display; use -display none")
    if args.vga is not None and args.vga != "none":
        raise UsageError(f"-vga {args.vga}: qmpd has no display; use -vga none")
    for mon in args.monitor:
        # -monitor DEV is an HMP monitor on DEV; qmpd serves HMP only through
        # human-monitor-command.  "none" (iotests' common.qemu) asks for none.
        if mon != "none":
            raise UsageError(f"-monitor {mon}: qmpd has no HMP monitor (use "
                             "human-monitor-command over QMP); only -monitor none")
    if args.incoming is not None:
        raise UsageError(f"-incoming {args.incoming}: qmpd cannot receive a migration "
                         "(it emulates no guest)")
    serial_ids = []
    for dev in args.serial:
        if dev.startswith("chardev:"):
            serial_ids.append(dev[len("chardev:"):])
        elif dev not in ("null", "none"):
            raise UsageError(f"-serial {dev}: qmpd has no guest serial port; "
                             "use -serial null")
    endpoints = [Endpoint("unix", path) for path in args.socket]
    endpoints += [parse_qmp_spec(spec) for spec in args.qmp]
    if args.qtest and args.qtest.startswith("chardev:"):
        serial_ids.append(args.qtest[len("chardev:"):])    # used by -qtest, not a -mon
    endpoints += parse_chardevs(args.chardev, args.mon, tuple(serial_ids))
    qtest = parse_qtest_spec(args.qtest, args.chardev) if args.qtest else None
    qtest_accel = any("qtest" in split_qemu_opts(a)[0].split(":") for a in args.accel) or any(
        "accel=qtest" in m for m in args.machine)
    startup = [launch.object_item(t) for t in args.object]
    startup += [launch.blockdev_item(t) for t in args.blockdev]
    startup += [launch.drive_item(t) for t in args.drive]
    startup += [launch.device_item(t) for t in args.device]
    if not endpoints:
        raise UsageError("nowhere to serve: give --socket PATH "
                         "(or -qmp unix:PATH,server=on,wait=off, or -qmp stdio)")
    if sum(1 for e in endpoints if e.kind == "stdio") > 1:
        raise UsageError("stdio can serve only one monitor")
    paths = [e.path for e in endpoints if e.kind == "unix"]
    if qtest is not None and qtest.kind == "unix":
        paths.append(qtest.path)
    if len(set(paths)) != len(paths):
        raise UsageError("the same socket path is given twice")
    try:
        mode = int(args.socket_mode, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777:
        raise UsageError(f"--socket-mode {args.socket_mode}: expected octal permissions like 0600")
    vm_name = split_qemu_opts(args.name)[0] if args.name else None
    if vm_name and vm_name.startswith("guest="):
        vm_name = vm_name[len("guest="):]
    return ServerConfig(
        endpoints=endpoints,
        qemu_version=parse_version(args.qemu_version),
        extensions=args.extensions,
        socket_mode=mode,
        pidfile=args.pidfile,
        hmp_output=args.hmp_output or ("stdout" if qtest is not None or qtest_accel
                                       else "reply"),
        trace=args.trace,
        max_clients=args.max_clients,
        max_output=args.max_output,
        start_paused=args.start_paused,
        vm_name=vm_name,
        clock=args.clock,
        startup=startup,
        qtest=qtest,
        host_writes=args.host_writes or qtest is not None or qtest_accel,
    )


def _early_signal(signum: int, frame: object) -> None:
    # Until the server installs its own handlers, a signal still exits
    # through the cleanup code (which removes the socket file).
    raise KeyboardInterrupt


def _release_waiting_peers(argv: list[str]) -> None:
    """Connect to every client-mode socket of the command line and hang up.

    A harness that launched qmpd with ``-chardev socket,path=P`` (no server)
    listens on P and waits for qmpd to connect; if the command line is
    refused, it would wait out its timeout.  An immediate hang-up tells it at
    once that qmpd is gone (QEMU's own test harness then reports the log).
    """
    for i, arg in enumerate(argv[:-1]):
        if arg.lstrip("-") not in ("chardev", "qtest", "qmp"):
            continue
        spec = argv[i + 1]
        parts = split_qemu_opts(spec.split(":", 1)[1] if spec.startswith("unix:") else spec)
        opts = dict(p.partition("=")[::2] for p in parts[1:])
        if opts.get("server", "off") not in _OFF or "nowait" in parts:
            continue
        path = opts.get("path") or (parts[0][5:] if parts[0].startswith("path=") else
                                    parts[0] if spec.startswith("unix:") else "")
        if not path:
            continue
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(1.0)
            sock.connect(path)
        except OSError:
            pass
        finally:
            sock.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # The help probes answer as the release being emulated (the default one
    # unless --qemu-version says otherwise): iotests read the default machine
    # type from -machine help.
    version = parse_version(DEFAULT_VERSION)
    for i, a in enumerate(args[:-1]):
        if a == "--qemu-version":
            try:
                version = parse_version(args[i + 1])
            except UsageError:
                pass
    text = launch.help_probe(args, version)
    if text is not None:
        sys.stdout.write(text)
        return 0
    try:
        config = parse_args(args)
    except UsageError as e:
        print(f"qmpd: {e}", file=sys.stderr)
        _release_waiting_peers(args)
        return 1
    signal.signal(signal.SIGTERM, _early_signal)
    return run(config)
