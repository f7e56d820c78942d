"""An iotests-style harness for scripts and tests that drive qmpd.

QEMU's block tests (tests/qemu-iotests/iotests.py, on top of
python/qemu/machine/machine.py) start QEMU with a ``VM`` object and talk
QMP through it.  This module gives the same shape over qmpd, so an iotests
script ports with few changes::

    from qmpd import testing as iotests
    from qmpd.testing import log

    base, top = iotests.file_path("base.qcow2", "top.qcow2")
    iotests.qemu_img_create("-f", "qcow2", base, "1M")
    iotests.qemu_io("-f", "qcow2", base, "-c", "write -P 0x11 0 64k")
    iotests.qemu_img_create("-f", "qcow2", "-b", base, "-F", "qcow2", top)

    with iotests.VM() as vm:
        vm.launch()
        vm.qmp_log("blockdev-add", driver="qcow2", node_name="top",
                   file={"driver": "file", "filename": top})
        iotests.assert_qmp(vm.qmp("blockdev-del", node_name="nope"),
                           "error/class", "GenericError")
        log(vm.hmp_qemu_io("top", "read -P 0x11 0 64k"))

What is the same as iotests / QEMUMachine:

* ``VM.qmp(cmd, args_dict=None, conv_keys=None, **args)`` returns the whole
  reply (``{"return": ...}`` or ``{"error": ...}``); keyword names have
  ``_`` turned into ``-`` (top level only, as QEMU's ``_qmp_args``);
  ``VM.command()`` returns the value or raises :class:`QMPError`.
* ``qmp_log``, ``hmp``, ``hmp_qemu_io``, ``get_qmp_event``,
  ``get_qmp_events``, ``get_qmp_events_filtered``, ``event_wait``,
  ``events_wait`` (with QEMUMachine's ``event_match`` sub-dict matching),
  ``get_log`` (qmpd's stdout and stderr, after shutdown),
  ``run_job``, ``blockdev_create``, ``node_info``, ``assert_block_path``,
  ``launch``/``shutdown`` and use as a context manager.
* Module functions ``log``, ``filter_qmp``, ``filter_qmp_event``,
  ``filter_generated_node_ids``, ``filter_qmp_generated_node_ids``,
  ``filter_testfiles``, ``filter_qmp_testfiles``, ``filter_qemu_io``
  (and ``filter_qmp_qemu_io`` for replies),
  ``qemu_img``, ``qemu_img_create``, ``qemu_io``, ``qemu_io_log``,
  ``file_path``, ``imgfmt``; ``QMPTestCase`` with ``dictpath``,
  ``assert_qmp``, ``assert_qmp_absent``, ``assert_no_active_block_jobs``,
  ``assert_has_block_node``.  ``assert_qmp`` and ``assert_qmp_absent`` also
  exist as plain functions, for pytest.

What differs:

* ``VM()`` starts ``python -m qmpd --socket SOCK`` (or ``$QMPD_PROG``),
  with ``--extensions`` on by default; there is no guest, so
  ``add_drive``/``add_device``/``-drive`` and friends do not exist: build
  the graph with ``blockdev-add``.  ``add_blockdev`` and ``add_object``
  exist, and send ``blockdev-add``/``object-add`` right after launch
  (``qmp_to_opts`` strings carry their dict, so nothing is lost).  Extra qmpd options go in
  ``VM(args=[...])``.  The socket lives in a short directory under /tmp
  (AF_UNIX paths stop at 107 bytes), not in ``$SOCK_DIR``.
* The QMP client is a small blocking one built in (no qemu.qmp needed);
  timeouts raise :class:`TimeoutError` (asyncio.TimeoutError is the same
  class on Python 3.11).
* ``hmp_qemu_io`` returns the qemu-io output in the reply's ``return``:
  QEMU prints it on its own stdout and returns ``""``.  qmpd does the same
  only when started with ``VM(args=["--hmp-output", "stdout"])``.  With
  ``use_log=True`` the logged reply goes through ``filter_qmp_qemu_io`` so
  that qemu-io's timings do not make the log vary.
* Image tools are ``qmpd-img create`` and ``qmpd-img io`` (``$QMPD_IMG_PROG``),
  which produce QEMU 7.2's images and output but know only qcow2 and raw,
  and only the ``create`` subcommand of qemu-img (no info/check/map/
  convert/measure).  ``qemu_img``/``qemu_io`` return a
  ``subprocess.CompletedProcess`` and raise on a non-zero status unless
  ``check=False``, as iotests does.  ``imgfmt`` is ``$IMGFMT`` or qcow2.
* ``file_path`` puts files in ``$TEST_DIR`` or a private temporary
  directory removed at exit; ``filter_testfiles`` turns that directory into
  ``TEST_DIR``.
* ``main``, ``script_main``, ``script_initialize`` and ``notrun`` check
  ``supported_fmts``/``supported_protocols`` (qcow2 or raw, on ``file``)
  and run the test, but there is no ``.out`` comparison: run the script and
  compare its output yourself.  ``test_dir`` is a module attribute as in
  iotests.
* Extras for qmpd: ``VM.reset()`` (``x-qmpd-reset``: an empty graph without
  restarting) and ``VM.clock_step(ns)`` (``x-qmpd-clock-step``, which makes
  job progress deterministic where the daemon implements it).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

QMPMessage = dict[str, Any]

#: Image format used when a helper is not given ``-f`` (iotests' ``imgfmt``).
imgfmt: str = os.environ.get("IMGFMT", "qcow2")

_own_test_dir: str | None = None


def _test_dir() -> str:
    global _own_test_dir
    env = os.environ.get("TEST_DIR")
    if env:
        return env
    if _own_test_dir is None:
        _own_test_dir = tempfile.mkdtemp(prefix="qmpd-test-")
        atexit.register(shutil.rmtree, _own_test_dir, True)
    return _own_test_dir


def __getattr__(name: str) -> Any:
    # iotests.test_dir / sock_dir are module variables there; here the
    # directory is made on first use (PEP 562).
    if name in ("test_dir", "sock_dir"):
        return _test_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _child_env() -> dict[str, str]:
    # Children run ``python -m qmpd`` with our interpreter; make sure they
    # import this very copy of qmpd even when it is not installed (a clone
    # used from its own directory).
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _prog(var: str, module: str) -> list[str]:
    override = os.environ.get(var)
    if override:
        return override.split()
    return [sys.executable, "-m", module]


# ----------------------------------------------------------------------
# logging and filters (iotests.log and the filter_* family)

def log(msg: Any, filters: Iterable[Callable[[Any], Any]] = (),
        indent: int | None = None) -> None:
    """Print a string, or a QMP message as JSON (keys sorted unless ordered)."""
    for flt in filters:
        msg = flt(msg)
    if isinstance(msg, (dict, list)):
        do_sort = not isinstance(msg, OrderedDict)
        print(json.dumps(msg, sort_keys=do_sort, indent=indent), flush=True)
    else:
        print(msg, flush=True)


def ordered_qmp(qmsg: Any, conv_keys: bool = True) -> Any:
    """Keys sorted (and, at the top level, ``_`` as ``-``), as iotests logs them."""
    if isinstance(qmsg, list):
        return [ordered_qmp(atom) for atom in qmsg]
    if isinstance(qmsg, dict):
        od: OrderedDict[str, Any] = OrderedDict()
        for k, v in sorted(qmsg.items()):
            if conv_keys:
                k = k.replace("_", "-")
            od[k] = ordered_qmp(v, conv_keys=False)
        return od
    return qmsg


def filter_qmp(qmsg: Any, filter_fn: Callable[[Any, Any], Any]) -> Any:
    """Apply ``filter_fn(key, value)`` to every leaf of a QMP object, in place."""
    if isinstance(qmsg, list):
        items: Iterable[tuple[Any, Any]] = list(enumerate(qmsg))
    elif isinstance(qmsg, dict):
        items = list(qmsg.items())
    else:
        return filter_fn(None, qmsg)
    for k, v in items:
        if isinstance(v, (dict, list)):
            qmsg[k] = filter_qmp(v, filter_fn)
        else:
            qmsg[k] = filter_fn(k, v)
    return qmsg


def filter_qmp_event(event: QMPMessage) -> QMPMessage:
    """Replace an event's timestamp with SECS/USECS."""
    event = dict(event)
    if "timestamp" in event:
        event["timestamp"] = {"seconds": "SECS", "microseconds": "USECS"}
    return event


def filter_generated_node_ids(msg: str) -> str:
    return re.sub("#block[0-9]+", "NODE_NAME", msg)


def _string_filter(fn: Callable[[str], str]) -> Callable[[Any], Any]:
    def qmp_filter(qmsg: Any) -> Any:
        return filter_qmp(qmsg, lambda _k, v: fn(v) if isinstance(v, str) else v)
    return qmp_filter


filter_qmp_generated_node_ids = _string_filter(filter_generated_node_ids)


def filter_testfiles(msg: str) -> str:
    """file_path() names become ``TEST_DIR/PID-NAME``, as in iotests."""
    pref = os.path.join(_test_dir(), f"{os.getpid()}-")
    return msg.replace(pref, "TEST_DIR/PID-").replace(_test_dir() + "/", "TEST_DIR/")


filter_qmp_testfiles = _string_filter(filter_testfiles)

_qemu_io_re = re.compile(r"[0-9]* ops; [0-9\/:. sec]* "
                         r"\([0-9\/.inf]* [EPTGMKiBbytes]*\/sec "
                         r"and [0-9\/.inf]* ops\/sec\)")


def filter_qemu_io(msg: str) -> str:
    """qemu-io's timing line, as iotests filters it."""
    return _qemu_io_re.sub("X ops; XX:XX:XX.X (XXX YYY/sec and XXX ops/sec)", msg)


#: qemu-io's timing line inside a reply (qmpd returns qemu-io output there).
filter_qmp_qemu_io = _string_filter(filter_qemu_io)

filter_qmp_imgfmt = _string_filter(lambda s: s.replace(imgfmt, "IMGFMT"))


# ----------------------------------------------------------------------
# image tools (qmpd-img standing in for qemu-img and qemu-io)

def _tool(argv: list[str], check: bool, combine_stdio: bool) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(argv, env=_child_env(), text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT if combine_stdio else subprocess.PIPE)
    if check and res.returncode != 0:
        raise subprocess.CalledProcessError(res.returncode, argv, res.stdout, res.stderr)
    return res


def qemu_img(*args: str, check: bool = True, combine_stdio: bool = True
             ) -> subprocess.CompletedProcess[str]:
    """``qmpd-img ARGS``; ``create`` without ``-f`` gets ``-f imgfmt``."""
    argv = list(args)
    if argv and argv[0] == "create" and "-f" not in argv:
        argv[1:1] = ["-f", imgfmt]
    return _tool(_prog("QMPD_IMG_PROG", "qmpd.img.cli") + argv, check, combine_stdio)


def qemu_img_create(*args: str) -> subprocess.CompletedProcess[str]:
    return qemu_img("create", *args)


def create_image(name: str, size: str | int, fmt: str | None = None) -> str:
    """Create image ``name`` (``fmt``, default imgfmt) of ``size``; returns ``name``."""
    qemu_img("create", "-q", "-f", fmt or imgfmt, name, str(size))
    return name


def qemu_io(*args: str, check: bool = True, combine_stdio: bool = True
            ) -> subprocess.CompletedProcess[str]:
    """``qmpd-img io ARGS`` (qemu-io); ``-f imgfmt`` is added unless ``-f`` is given."""
    argv = list(args)
    if "-f" not in argv:
        argv[0:0] = ["-f", imgfmt]
    return _tool(_prog("QMPD_IMG_PROG", "qmpd.img.cli") + ["io"] + argv, check, combine_stdio)


def qemu_io_log(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = qemu_io(*args, check=check)
    log(result.stdout, filters=[filter_testfiles, filter_qemu_io])
    return result


def file_path(*names: str) -> Any:
    """Paths ``TEST_DIR/PID-NAME`` removed at exit; one name gives a str, several a list."""
    paths = [os.path.join(_test_dir(), f"{os.getpid()}-{name}") for name in names]

    def remove() -> None:
        for p in paths:
            try:
                os.remove(p)
            except OSError:
                pass

    atexit.register(remove)
    return paths[0] if len(paths) == 1 else paths


def try_remove(img: str) -> None:
    try:
        os.remove(img)
    except OSError:
        pass


class FilePath:
    """``with FilePath('a.img', 'b.img') as (a, b):`` names in ``test_dir``
    (``PID-NAME``), removed when the block ends; one name gives a str."""

    def __init__(self, *names: str, base_dir: str | None = None) -> None:
        base = base_dir if base_dir is not None else _test_dir()
        self.paths = [os.path.join(base, f"{os.getpid()}-{name}") for name in names]

    def __enter__(self) -> Any:
        return self.paths[0] if len(self.paths) == 1 else self.paths

    def __exit__(self, *exc: object) -> bool:
        for path in self.paths:
            try_remove(path)
        return False


class Timeout:
    """``with Timeout(seconds, errmsg):`` raises ``Exception(errmsg)`` (SIGALRM)."""

    def __init__(self, seconds: float, errmsg: str = "Timeout") -> None:
        self.seconds = seconds
        self.errmsg = errmsg

    def __enter__(self) -> Timeout:
        signal.signal(signal.SIGALRM, self.timeout)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc: object) -> bool:
        signal.setitimer(signal.ITIMER_REAL, 0)
        return False

    def timeout(self, signum: int, frame: Any) -> None:
        raise Exception(self.errmsg)


def qemu_img_json(*args: str) -> Any:
    """The tool's JSON output (also when ``check`` reports errors with status 2/3)."""
    res = qemu_img(*args, check=False, combine_stdio=False)
    try:
        return json.loads(res.stdout)
    except json.JSONDecodeError:
        res.check_returncode()
        raise


def qemu_img_info(*args: str) -> Any:
    return qemu_img_json("info", "--output", "json", *args)


def qemu_img_map(*args: str) -> Any:
    return qemu_img_json("map", "--output", "json", *args)


def qemu_img_check(*args: str) -> Any:
    return qemu_img_json("check", "--output", "json", *args)


def image_size(img: str) -> int:
    """An image's virtual size (``qemu-img info``)."""
    value = qemu_img_info("-f", imgfmt, img)["virtual-size"]
    if not isinstance(value, int):
        raise TypeError(f"Expected 'int' for 'virtual-size', got {value!r}")
    return value


def compare_images(img1: str, img2: str, fmt1: str | None = None,
                   fmt2: str | None = None) -> bool:
    """``qemu-img compare``: True if identical (status 0), False if not (1)."""
    res = qemu_img("compare", "-f", fmt1 or imgfmt, "-F", fmt2 or imgfmt, img1, img2,
                   check=False)
    if res.returncode in (0, 1):
        return res.returncode == 0
    res.check_returncode()
    return False


def supported_formats(read_only: bool = False) -> list[str]:
    """The block drivers qmpd has (``-drive format=help``)."""
    from qmpd.launch import FORMATS

    return list(FORMATS)


def skip_if_unsupported(required_formats: Any = (), read_only: bool = False) -> Any:
    """Decorator: skip a test case whose formats qmpd lacks (iotests' own)."""
    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(test_case: Any, *args: Any, **kwargs: Any) -> Any:
            fmts = required_formats(test_case) if callable(required_formats) \
                else required_formats
            missing = sorted(set(fmts) - set(supported_formats(read_only)))
            if missing:
                test_case.skipTest(f"formats {missing} are not whitelisted")
            return func(test_case, *args, **kwargs)
        wrapper.__name__ = func.__name__
        wrapper.__doc__ = func.__doc__
        return wrapper
    return decorator


def verify_quorum() -> None:
    """qmpd has quorum: nothing to skip."""


# ----------------------------------------------------------------------
# path assertions on QMP messages

_index_re = re.compile(r"([^\[]+)\[([^\]]+)\]")


def dictpath(d: Any, path: str) -> Any:
    """Walk ``a/b[2]/c`` through nested dicts and lists; AssertionError if absent."""
    for component in path.split("/"):
        m = _index_re.match(component)
        idx = None
        if m:
            component, sidx = m.groups()
            idx = int(sidx)
        if not isinstance(d, dict) or component not in d:
            raise AssertionError(f'failed path traversal for "{path}" in "{d}"')
        d = d[component]
        if idx is not None:
            if not isinstance(d, list):
                raise AssertionError(f'path component "{component}" in "{path}" '
                                     f'is not a list in "{d}"')
            try:
                d = d[idx]
            except IndexError:
                raise AssertionError(f'invalid index "{idx}" in path "{path}" '
                                     f'in "{d}"') from None
    return d


def assert_qmp(d: Any, path: str, value: Any) -> None:
    """The value at ``path`` equals ``value`` (or, given a non-empty list, one of them)."""
    result = dictpath(d, path)
    if isinstance(value, list) and value != []:
        if result not in value:
            raise AssertionError(f'no match for "{result}" in {value}')
    elif result != value:
        raise AssertionError(f'"{path}" is "{result}", expected "{value}"')


def assert_qmp_absent(d: Any, path: str) -> None:
    try:
        result = dictpath(d, path)
    except AssertionError:
        return
    raise AssertionError(f'path "{path}" has value "{result}"')


# ----------------------------------------------------------------------
# the VM

class _Opts(str):
    """A ``key=value`` string that remembers the dict it was made from."""

    qmp: dict[str, Any]

    def __new__(cls, text: str, qmp: dict[str, Any]) -> _Opts:
        self = super().__new__(cls, text)
        self.qmp = qmp
        return self


def _keyval(text: str) -> dict[str, Any]:
    """QEMU's ``a.b=v,c=w`` (``,,`` is a comma) as a nested dict, best effort."""
    out: dict[str, Any] = {}
    for part in re.split(r"(?<!,),(?!,)", text):
        if not part:
            continue
        key, _, raw = part.replace(",,", ",").partition("=")
        value: Any = raw
        if raw in ("on", "true"):
            value = True
        elif raw in ("off", "false"):
            value = False
        elif re.fullmatch(r"-?[0-9]+", raw):
            value = int(raw)
        node = out
        *path, last = key.split(".")
        for p in path:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def _opts_dict(opts: Any) -> dict[str, Any]:
    if isinstance(opts, _Opts):
        return opts.qmp
    if isinstance(opts, dict):
        return opts
    return _keyval(str(opts))


class QMPError(Exception):
    """A command answered with an error (``VM.command``)."""

    def __init__(self, reply: QMPMessage) -> None:
        self.reply = reply
        err = reply.get("error", {})
        self.error_class: str = err.get("class", "")
        self.desc: str = err.get("desc", "")
        super().__init__(f"{self.error_class}: {self.desc}")


class VMError(Exception):
    """qmpd did not start, or the connection broke."""


class _SyncQMP:
    """A minimal blocking QMP client: one JSON message per line, events queued."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.events: list[QMPMessage] = []
        self.greeting = self._recv(None)
        self.cmd("qmp_capabilities")

    def _recv(self, timeout: float | None) -> QMPMessage:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buf:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no QMP message in time")
                self.sock.settimeout(left)
            else:
                self.sock.settimeout(None)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise TimeoutError("no QMP message in time") from None
            if not chunk:
                raise VMError("qmpd closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def cmd(self, name: str, args: dict[str, Any] | None = None) -> QMPMessage:
        msg: dict[str, Any] = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._recv(None)
            if "event" in reply:
                self.events.append(reply)
                continue
            return reply

    def pull_event(self, wait: bool | float = False) -> QMPMessage | None:
        """Next event: queued, or read now (``wait``: True forever, a number in seconds)."""
        if self.events:
            return self.events.pop(0)
        if wait is False:
            timeout = 0.0
            # Take whatever has already arrived without blocking.
            self.sock.setblocking(False)
            try:
                chunk = self.sock.recv(65536)
                self.buf += chunk
            except BlockingIOError:
                pass
            finally:
                self.sock.setblocking(True)
            if b"\n" not in self.buf:
                return None
        else:
            timeout = None if wait is True else float(wait)
        msg = self._recv(timeout)
        if "event" not in msg:
            raise VMError(f"unexpected message while waiting for an event: {msg}")
        return msg

    def close(self) -> None:
        self.sock.close()


# Every VM launched and not yet shut down: whatever fails (a setUp that
# raises after launch(), an exception in a test, an interrupted script), no
# daemon outlives the test that started it, nor the interpreter.
_LIVE: set[VM] = set()


def _kill_live_vms() -> None:
    for vm in list(_LIVE):
        vm.kill()


atexit.register(_kill_live_vms)

# iotests' cache and aio modes (``./check -c``, ``-aio``), used by add_drive.
cachemode: str = os.environ.get("CACHEMODE", "writeback")
aiomode: str = os.environ.get("AIOMODE", "threads")


class VM:
    """qmpd as a subprocess with a QMP connection, shaped like iotests' ``VM``."""

    def __init__(self, path_suffix: str = "", *, args: Sequence[str] = (),
                 extensions: bool = True) -> None:
        self.path_suffix = path_suffix
        self._extra = list(args)
        self._extensions = extensions
        self._proc: subprocess.Popen[bytes] | None = None
        self._qmp: _SyncQMP | None = None
        self._dir: str | None = None
        self._quit_issued = False
        self._log_path = ""
        self._log: str | None = None
        self.sock_path = ""
        self.exitcode: int | None = None
        # QEMU command-line options (-blockdev, -drive, -device, -object),
        # which qmpd takes as QEMU does.
        self._args: list[str] = []
        self._num_drives = 0

    # command line --------------------------------------------------------------
    def add_args(self, *args: str) -> VM:
        self._args.extend(args)
        return self

    def add_blockdev(self, opts: Any) -> VM:
        """``-blockdev``: a dict, the result of :meth:`qmp_to_opts`, or a
        ``key=value,...`` string (qmpd reads its values as the schema's types)."""
        if isinstance(opts, (list, tuple)):
            opts = ",".join(opts)
        if isinstance(opts, _Opts):
            opts = opts.qmp
        self._args += ["-blockdev", json.dumps(opts) if isinstance(opts, dict) else str(opts)]
        return self

    def add_object(self, opts: Any) -> VM:
        """``-object TYPE,id=...`` (or a dict, as JSON)."""
        if isinstance(opts, _Opts):
            opts = opts.qmp
        self._args += ["-object", json.dumps(opts) if isinstance(opts, dict) else str(opts)]
        return self

    def add_device(self, opts: str) -> VM:
        """``-device DRIVER,...``."""
        self._args += ["-device", opts]
        return self

    def add_drive_raw(self, opts: str) -> VM:
        self._args += ["-drive", opts]
        return self

    def add_drive(self, path: str | None, opts: str = "", interface: str = "virtio",
                  img_format: str | None = None) -> VM:
        """``-drive if=virtio,id=driveN,file=PATH,format=...``, as iotests."""
        options = [f"if={interface}", f"id=drive{self._num_drives}"]
        if path is not None:
            options += [f"file={path}", f"format={img_format or imgfmt}",
                        f"cache={cachemode}", f"aio={aiomode}"]
        if opts:
            options.append(opts)
        self._args += ["-drive", ",".join(options)]
        self._num_drives += 1
        return self

    def add_incoming(self, addr: str) -> VM:
        """``-incoming``: qmpd refuses it at launch (it emulates no guest)."""
        self._args += ["-incoming", addr]
        return self

    def pause_drive(self, drive: str, event: str | None = None) -> None:
        """Pause I/O on a blkdebug node at ``event`` (both reads and writes by default)."""
        if not event:
            self.pause_drive(drive, "read_aio")
            self.pause_drive(drive, "write_aio")
            return
        self.hmp(f'qemu-io {drive} "break {event} bp_{drive}"')

    def resume_drive(self, drive: str) -> None:
        self.hmp(f'qemu-io {drive} "remove_break bp_{drive}"')

    def query_bitmaps(self) -> dict[str, Any]:
        res = self.qmp("query-named-block-nodes")
        return {device["node-name"]: device["dirty-bitmaps"]
                for device in res["return"] if "dirty-bitmaps" in device}

    def get_bitmap(self, node_name: str, bitmap_name: str, recording: bool | None = None,
                   bitmaps: dict[str, Any] | None = None) -> dict[str, Any] | None:
        if bitmaps is None:
            bitmaps = self.query_bitmaps()
        for bitmap in bitmaps[node_name]:
            if bitmap.get("name", "") == bitmap_name:
                if recording is None or bitmap.get("recording") == recording:
                    return bitmap
        return None

    def flatten_qmp_object(self, obj: Any, output: dict[str, Any] | None = None,
                           basestr: str = "") -> dict[str, Any]:
        if output is None:
            output = {}
        if isinstance(obj, list):
            for i, item in enumerate(obj):
                self.flatten_qmp_object(item, output, basestr + str(i) + ".")
        elif isinstance(obj, dict):
            for key in obj:
                self.flatten_qmp_object(obj[key], output, basestr + key + ".")
        else:
            output[basestr[:-1]] = obj
        return output

    def qmp_to_opts(self, obj: dict[str, Any]) -> str:
        """``key=value,...`` as iotests makes it; :meth:`add_blockdev` gets the dict back."""
        flat = self.flatten_qmp_object(obj)
        return _Opts(",".join(f"{k}={v}" for k, v in flat.items()), obj)

    # life cycle ----------------------------------------------------------
    def launch(self, timeout: float = 30.0) -> None:
        """Start qmpd, wait for its socket, connect and negotiate."""
        # tempfile's default dir may be deep (pytest, $TMPDIR); a socket path
        # must fit in 107 bytes, so use /tmp when it exists.
        base = "/tmp" if os.path.isdir("/tmp") else None
        self._dir = tempfile.mkdtemp(prefix="qmpd-vm-", dir=base)
        self.sock_path = os.path.join(self._dir, f"qmp{self.path_suffix}.sock")
        argv = _prog("QMPD_PROG", "qmpd") + ["--socket", self.sock_path]
        if self._extensions:
            argv.append("--extensions")
        argv += self._extra + self._args
        # stderr goes to a file, not a pipe: a pipe nobody reads could fill
        # up and stall qmpd; get_log() returns it after shutdown.
        self._log_path = os.path.join(self._dir, "qmpd.log")
        with open(self._log_path, "wb") as logf:
            self._proc = subprocess.Popen(argv, env=_child_env(), stdin=subprocess.DEVNULL,
                                          stdout=logf, stderr=subprocess.STDOUT)
        _LIVE.add(self)
        deadline = time.monotonic() + timeout
        # qmpd creates the socket file only once it accepts connections.
        while not os.path.exists(self.sock_path):
            rc = self._proc.poll()
            if rc is not None:
                self._cleanup()
                raise VMError(f"qmpd exited with status {rc}: {self._log or ''}".rstrip())
            if time.monotonic() > deadline:
                self.kill()
                raise VMError("qmpd did not create its socket in time")
            time.sleep(0.01)
        try:
            self._qmp = _SyncQMP(self.sock_path)
        except (OSError, TimeoutError, VMError, ValueError) as e:
            # qmpd refused its command line after creating the socket (a
            # failing -blockdev, say): its log says why.
            self.kill()
            raise VMError(f"qmpd did not start: {e}: {self._log or ''}".rstrip()) from None
        self._quit_issued = False

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def get_pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def shutdown(self, timeout: float = 30.0) -> None:
        """``quit`` (unless already sent), wait for the exit, clean up."""
        if self._proc is None:
            return
        try:
            if self._qmp is not None and not self._quit_issued and self.is_running():
                self._qmp.cmd("quit")
            self._proc.wait(timeout)
        except (OSError, VMError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        self._cleanup()

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
        self._cleanup()

    def get_log(self) -> str | None:
        """What qmpd wrote on stdout and stderr (after shutdown), as QEMUMachine."""
        return self._log

    def _cleanup(self) -> None:
        if self._qmp is not None:
            self._qmp.close()
            self._qmp = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
            self.exitcode = self._proc.returncode
            self._proc = None
        _LIVE.discard(self)
        if self._log_path:
            try:
                with open(self._log_path, errors="replace") as f:
                    self._log = f.read()
            except OSError:
                pass
            self._log_path = ""
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> VM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    # QMP -----------------------------------------------------------------
    @property
    def _conn(self) -> _SyncQMP:
        if self._qmp is None:
            raise VMError("not connected: call launch() first")
        return self._qmp

    @staticmethod
    def _qmp_args(conv_keys: bool, args: dict[str, Any]) -> dict[str, Any]:
        if conv_keys:
            return {k.replace("_", "-"): v for k, v in args.items()}
        return args

    def qmp(self, cmd: str, args_dict: dict[str, Any] | None = None,
            conv_keys: bool | None = None, **args: Any) -> QMPMessage:
        """Run ``cmd``; returns the reply dict (``return`` or ``error``)."""
        if args_dict is not None:
            assert not args and conv_keys is None
            args, conv_keys = args_dict, False
        if conv_keys is None:
            conv_keys = True
        ret = self._conn.cmd(cmd, self._qmp_args(conv_keys, args))
        if cmd == "quit" and "return" in ret:
            self._quit_issued = True
        return ret

    def command(self, cmd: str, conv_keys: bool = True, **args: Any) -> Any:
        """Run ``cmd``; returns its value or raises :class:`QMPError`."""
        ret = self.qmp(cmd, conv_keys=conv_keys, **args)
        if "error" in ret:
            raise QMPError(ret)
        return ret["return"]

    def qmp_log(self, cmd: str, filters: Iterable[Callable[[Any], Any]] = (),
                indent: int | None = None, **kwargs: Any) -> QMPMessage:
        """Log the command and its reply as iotests does, return the reply."""
        filters = list(filters)
        full_cmd = OrderedDict((("execute", cmd), ("arguments", ordered_qmp(kwargs))))
        log(full_cmd, filters, indent=indent)
        result = self.qmp(cmd, **kwargs)
        log(result, filters, indent=indent)
        return result

    def hmp(self, command_line: str, use_log: bool = False) -> QMPMessage:
        kwargs: dict[str, Any] = {"command-line": command_line}
        if use_log:
            # qemu-io's output (with its timings) comes back in the reply.
            return self.qmp_log("human-monitor-command", filters=[filter_qmp_qemu_io],
                                **kwargs)
        return self.qmp("human-monitor-command", **kwargs)

    def hmp_qemu_io(self, drive: str, cmd: str, use_log: bool = False,
                    qdev: bool = False) -> QMPMessage:
        """qemu-io on a node (or, with ``qdev``, a device); output is in ``return``."""
        d = "-d " if qdev else ""
        return self.hmp(f'qemu-io {d}{drive} "{cmd}"', use_log=use_log)

    # events ----------------------------------------------------------------
    def get_qmp_event(self, wait: bool | float = False) -> QMPMessage | None:
        return self._conn.pull_event(wait)

    def get_qmp_events(self, wait: bool | float = False) -> list[QMPMessage]:
        """Every event received so far (waiting for a first one if ``wait``)."""
        events: list[QMPMessage] = []
        ev = self._conn.pull_event(wait)
        while ev is not None:
            events.append(ev)
            ev = self._conn.pull_event(False)
        return events

    def get_qmp_events_filtered(self, wait: bool | float = 60.0) -> list[QMPMessage]:
        return [filter_qmp_event(ev) for ev in self.get_qmp_events(wait=wait)]

    @staticmethod
    def event_match(event: Any, match: Any) -> bool:
        """``match`` is a sub-dict of ``event`` (None matches anything)."""
        if match is None:
            return True
        try:
            for key in match:
                if key not in event or not VM.event_match(event[key], match[key]):
                    return False
            return True
        except TypeError:
            return bool(match == event)

    def events_wait(self, events: Sequence[tuple[str, Any]],
                    timeout: float = 60.0) -> QMPMessage | None:
        """The first event matching one of ``(name, match)``; others stay queued."""
        def _match(event: QMPMessage) -> bool:
            return any(event["event"] == name and self.event_match(event, m)
                       for name, m in events)

        conn = self._conn
        for event in conn.events:
            if _match(event):
                conn.events.remove(event)
                return event
        deadline = time.monotonic() + timeout
        skipped: list[QMPMessage] = []
        try:
            while True:
                if timeout:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TimeoutError(f"no event matching {events} in {timeout} s")
                    event: QMPMessage | None = conn.pull_event(left)
                else:
                    # timeout 0: only what has arrived already (None if no match)
                    event = conn.pull_event(False)
                    if event is None:
                        return None
                assert event is not None
                if _match(event):
                    return event
                skipped.append(event)
        finally:
            # Non-matching events stay queued for later waits, in order.
            conn.events.extend(skipped)

    def event_wait(self, name: str, timeout: float = 60.0,
                   match: Any = None) -> QMPMessage | None:
        return self.events_wait([(name, match)], timeout)

    # jobs ------------------------------------------------------------------
    def run_job(self, job: str, auto_finalize: bool = True, auto_dismiss: bool = False,
                pre_finalize: Callable[[], None] | None = None, cancel: bool = False,
                wait: float = 60.0, filters: Iterable[Callable[[Any], Any]] = ()
                ) -> str | None:
        """Drive job ``job`` to its end as iotests does; None or the job's error."""
        filters = list(filters)
        match_device = {"data": {"device": job}}
        match_id = {"data": {"id": job}}
        events = [
            ("BLOCK_JOB_COMPLETED", match_device),
            ("BLOCK_JOB_CANCELLED", match_device),
            ("BLOCK_JOB_ERROR", match_device),
            ("BLOCK_JOB_READY", match_device),
            ("BLOCK_JOB_PENDING", match_id),
            ("JOB_STATUS_CHANGE", match_id),
        ]
        error = None
        while True:
            ev = self.events_wait(events, timeout=wait)
            assert ev is not None
            ev = filter_qmp_event(ev)
            if ev["event"] != "JOB_STATUS_CHANGE":
                log(ev, filters=filters)
                continue
            status = ev["data"]["status"]
            if status == "aborting":
                for j in self.qmp("query-jobs")["return"]:
                    if j["id"] == job:
                        error = j["error"]
                        log(f"Job failed: {j['error']}", filters=filters)
            elif status == "ready":
                self.qmp_log("job-complete", id=job, filters=filters)
            elif status == "pending" and not auto_finalize:
                if pre_finalize:
                    pre_finalize()
                if cancel:
                    self.qmp_log("job-cancel", id=job, filters=filters)
                else:
                    self.qmp_log("job-finalize", id=job, filters=filters)
            elif status == "concluded" and not auto_dismiss:
                self.qmp_log("job-dismiss", id=job, filters=filters)
            elif status == "null":
                return error

    def blockdev_create(self, options: dict[str, Any], job_id: str = "job0",
                        filters: Iterable[Callable[[Any], Any]] | None = None) -> Any:
        """As iotests; works only if the daemon implements ``blockdev-create``."""
        filters = [filter_qmp_testfiles] if filters is None else list(filters)
        result = self.qmp_log("blockdev-create", filters=filters, job_id=job_id,
                              options=options)
        job_result = self.run_job(job_id, filters=filters) if "return" in result \
            else result["error"]
        log("")
        return job_result

    # graph helpers -----------------------------------------------------------
    def node_info(self, node_name: str) -> dict[str, Any] | None:
        for x in self.qmp("query-named-block-nodes")["return"]:
            if x["node-name"] == node_name:
                return x
        return None

    def assert_block_path(self, root: str, path: str, expected_node: str | None,
                          graph: dict[str, Any] | None = None) -> None:
        """The node reached from ``root`` by ``/child/child...`` is ``expected_node``."""
        if graph is None:
            graph = self.qmp("x-debug-query-block-graph")["return"]
        parts = iter(path.split("/"))
        assert next(parts) == ""
        node = next((n for n in graph["nodes"] if n["name"] == root), None)
        assert node is not None, f"Root node {root} not found"
        for child_name in parts:
            assert node is not None, f"Cannot follow path {root}{path}"
            try:
                node_id = next(e["child"] for e in graph["edges"]
                               if e["parent"] == node["id"] and e["name"] == child_name)
                node = next(n for n in graph["nodes"] if n["id"] == node_id)
            except StopIteration:
                node = None
        if node is None:
            assert expected_node is None, \
                f"No node found under {path} (but expected {expected_node})"
        else:
            assert node["name"] == expected_node, \
                f"Found node {node['name']} under {path} (but expected {expected_node})"

    # qmpd extensions -----------------------------------------------------------
    def reset(self) -> None:
        """``x-qmpd-reset``: back to an empty graph without restarting qmpd."""
        self.command("x-qmpd-reset")

    def clock_step(self, ns: int) -> None:
        """``x-qmpd-clock-step``: advance qmpd's virtual job clock."""
        self.command("x-qmpd-clock-step", ns=ns)


class QMPTestCase(unittest.TestCase):
    """iotests' QMPTestCase: path assertions and job helpers over ``self.vm``.

    Every VM a test case launched and did not shut down is killed once the
    case has run (a setUp that fails after ``launch()`` never reaches
    tearDown)."""

    vm: VM

    def run(self, result: Any = None) -> Any:
        before = set(_LIVE)
        try:
            return super().run(result)
        finally:
            for vm in list(_LIVE - before):
                vm.kill()

    def assert_json_filename_equal(self, json_filename: str, reference: Any) -> None:
        self.assertEqual(json_filename[:5], "json:")
        self.assertEqual(self.vm.flatten_qmp_object(json.loads(json_filename[5:])),
                         self.vm.flatten_qmp_object(reference))

    def cancel_and_wait(self, drive: str = "drive0", force: bool = False,
                        resume: bool = False, wait: float = 60.0) -> Any:
        """Cancel a block job and wait for it to end; returns the event."""
        result = self.vm.qmp("block-job-cancel", device=drive, force=force)
        self.assert_qmp(result, "return", {})
        if resume:
            self.vm.resume_drive(drive)
        event = None
        while event is None:
            for ev in self.vm.get_qmp_events(wait=wait):
                if ev["event"] in ("BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"):
                    self.assert_qmp(ev, "data/device", drive)
                    event = ev
                elif ev["event"] == "JOB_STATUS_CHANGE":
                    self.assert_qmp(ev, "data/id", drive)
        self.assert_no_active_block_jobs()
        return event

    def wait_until_completed(self, drive: str = "drive0", check_offset: bool = True,
                             wait: float = 60.0, error: str | None = None) -> Any:
        """Wait for BLOCK_JOB_COMPLETED of ``drive``; returns the event."""
        while True:
            for ev in self.vm.get_qmp_events(wait=wait):
                if ev["event"] == "BLOCK_JOB_COMPLETED":
                    self.assert_qmp(ev, "data/device", drive)
                    if error is None:
                        self.assert_qmp_absent(ev, "data/error")
                        if check_offset:
                            self.assert_qmp(ev, "data/offset", ev["data"]["len"])
                    else:
                        self.assert_qmp(ev, "data/error", error)
                    self.assert_no_active_block_jobs()
                    return ev
                if ev["event"] == "JOB_STATUS_CHANGE":
                    self.assert_qmp(ev, "data/id", drive)

    def wait_ready(self, drive: str = "drive0") -> Any:
        return self.vm.events_wait([
            ("BLOCK_JOB_READY", {"data": {"type": "mirror", "device": drive}}),
            ("BLOCK_JOB_READY", {"data": {"type": "commit", "device": drive}})])

    def wait_ready_and_cancel(self, drive: str = "drive0") -> None:
        self.wait_ready(drive=drive)
        event = self.cancel_and_wait(drive=drive)
        self.assertEqual(event["event"], "BLOCK_JOB_COMPLETED")
        self.assert_qmp(event, "data/type", "mirror")
        self.assert_qmp(event, "data/offset", event["data"]["len"])

    def complete_and_wait(self, drive: str = "drive0", wait_ready: bool = True,
                          completion_error: str | None = None) -> None:
        if wait_ready:
            self.wait_ready(drive=drive)
        self.assert_qmp(self.vm.qmp("block-job-complete", device=drive), "return", {})
        event = self.wait_until_completed(drive=drive, error=completion_error)
        self.assertIn(event["data"]["type"], ["mirror", "commit"])

    def pause_wait(self, job_id: str = "job0") -> Any:
        with Timeout(3, "Timeout waiting for job to pause"):
            while True:
                found = False
                for job in self.vm.qmp("query-block-jobs")["return"]:
                    if job["device"] == job_id:
                        found = True
                        if job["paused"] and not job["busy"]:
                            return job
                        break
                assert found

    def pause_job(self, job_id: str = "job0", wait: bool = True) -> Any:
        result = self.vm.qmp("block-job-pause", device=job_id)
        self.assert_qmp(result, "return", {})
        return self.pause_wait(job_id) if wait else result

    def dictpath(self, d: Any, path: str) -> Any:
        try:
            return dictpath(d, path)
        except AssertionError as e:
            self.fail(str(e))

    def assert_qmp_absent(self, d: Any, path: str) -> None:
        try:
            assert_qmp_absent(d, path)
        except AssertionError as e:
            self.fail(str(e))

    def assert_qmp(self, d: Any, path: str, value: Any) -> None:
        try:
            assert_qmp(d, path, value)
        except AssertionError as e:
            self.fail(str(e))

    def assert_no_active_block_jobs(self) -> None:
        self.assert_qmp(self.vm.qmp("query-block-jobs"), "return", [])

    def assert_has_block_node(self, node_name: str | None = None,
                              file_name: str | None = None) -> None:
        def eq_or_none(a: Any, b: Any) -> bool:
            return a is None or b is None or a == b

        for x in self.vm.qmp("query-named-block-nodes")["return"]:
            if eq_or_none(x["node-name"], node_name) and eq_or_none(x["file"], file_name):
                return
        self.fail(f"Cannot find {node_name} {file_name}")


# ----------------------------------------------------------------------
# entry points (iotests.main / script_main / script_initialize / notrun)

def notrun(reason: str) -> None:
    """Skip the whole script (exit status 0), as iotests does."""
    print(f"{os.path.basename(sys.argv[0])} not run: {reason}", file=sys.stderr)
    sys.exit(0)


def _verify(supported_fmts: Sequence[str] = (), unsupported_fmts: Sequence[str] = (),
            supported_protocols: Sequence[str] = (),
            unsupported_protocols: Sequence[str] = (), **_ignored: Any) -> None:
    # qmpd-img makes qcow2 and raw images, all on the 'file' protocol; the
    # other iotests settings (platforms, cache and aio modes, imgopts) mean
    # nothing to qmpd.
    if imgfmt not in ("qcow2", "raw"):
        notrun(f"qmpd-img does not make {imgfmt} images")
    if (supported_fmts and imgfmt not in supported_fmts) or imgfmt in unsupported_fmts:
        notrun(f"not suitable for this image format: {imgfmt}")
    if (supported_protocols and "file" not in supported_protocols) \
            or "file" in unsupported_protocols:
        notrun("not suitable for this protocol: file")


def script_initialize(*args: Any, **kwargs: Any) -> None:
    """Check the script's requirements (skipping it if unmet) and return."""
    _verify(**kwargs)


def script_main(test_function: Callable[[], None], *args: Any, **kwargs: Any) -> None:
    """Check the requirements, then run a script-style test function."""
    _verify(**kwargs)
    test_function()


def main(*args: Any, **kwargs: Any) -> None:
    """Check the requirements, then run the QMPTestCase classes with unittest."""
    _verify(**kwargs)
    unittest.main(module="__main__", argv=sys.argv[:1], verbosity=2)


@contextmanager
def launched_vm(*args: str, extensions: bool = True) -> Iterator[VM]:
    """``with launched_vm() as vm:``: a started VM, shut down at the end."""
    vm = VM(args=args, extensions=extensions)
    vm.launch()
    try:
        yield vm
    finally:
        vm.shutdown()
