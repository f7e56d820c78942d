"""iotests' ``VM`` over qmpd: the daemon as a child process with a QMP connection.

:class:`VM` builds qmpd's command line the way iotests builds QEMU's
(``add_blockdev``, ``add_drive``, ``add_object``...), starts
``python -m qmpd`` (or ``$QMPD_PROG``) on a socket in a short directory
under /tmp, and offers QEMUMachine's QMP, event and job helpers on top of
:class:`~qmpd.testing.qmp.SyncQMP`.  :data:`LIVE_VMS` keeps every daemon
started and not yet shut down, so that none outlives its test or the
interpreter.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from qmpd.testing.filters import (
    filter_qmp_event,
    filter_qmp_qemu_io,
    filter_qmp_testfiles,
    log,
    ordered_qmp,
)
from qmpd.testing.paths import aiomode, cachemode, child_env, imgfmt, program
from qmpd.testing.qmp import QMPError, QMPMessage, SyncQMP, VMError


class _Opts(str):
    """A ``key=value`` string that remembers the dict it was made from."""

    qmp: dict[str, Any]

    def __new__(cls, text: str, qmp: dict[str, Any]) -> _Opts:
        self = super().__new__(cls, text)
        self.qmp = qmp
        return self


# Every VM launched and not yet shut down: whatever fails (a setUp that
# raises after launch(), an exception in a test, an interrupted script), no
# daemon outlives the test that started it, nor the interpreter.
LIVE_VMS: set[VM] = set()


def _kill_live_vms() -> None:
    for vm in list(LIVE_VMS):
        vm.kill()


atexit.register(_kill_live_vms)


class VM:
    """qmpd as a subprocess with a QMP connection, shaped like iotests' ``VM``."""

    def __init__(self, path_suffix: str = "", *, args: Sequence[str] = (),
                 extensions: bool = True) -> None:
        self.path_suffix = path_suffix
        self._extra = list(args)
        self._extensions = extensions
        self._proc: subprocess.Popen[bytes] | None = None
        self._qmp: SyncQMP | None = None
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
        argv = program("QMPD_PROG", "qmpd") + ["--socket", self.sock_path]
        if self._extensions:
            argv.append("--extensions")
        argv += self._extra + self._args
        # stderr goes to a file, not a pipe: a pipe nobody reads could fill
        # up and stall qmpd; get_log() returns it after shutdown.
        self._log_path = os.path.join(self._dir, "qmpd.log")
        with open(self._log_path, "wb") as logf:
            self._proc = subprocess.Popen(argv, env=child_env(), stdin=subprocess.DEVNULL,
                                          stdout=logf, stderr=subprocess.STDOUT)
        LIVE_VMS.add(self)
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
            self._qmp = SyncQMP(self.sock_path)
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
        LIVE_VMS.discard(self)
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
    def _conn(self) -> SyncQMP:
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

@contextmanager
def launched_vm(*args: str, extensions: bool = True) -> Iterator[VM]:
    """``with launched_vm() as vm:``: a started VM, shut down at the end."""
    vm = VM(args=args, extensions=extensions)
    vm.launch()
    try:
        yield vm
    finally:
        vm.shutdown()
