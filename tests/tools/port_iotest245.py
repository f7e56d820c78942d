"""Ports QEMU's own iotest 245 (x-blockdev-reopen / blockdev-reopen) to recorded scenarios.

QEMU's test is a Python unittest that drives a live QEMU through ``iotests.VM``.
This tool loads that file unchanged with a stand-in ``iotests`` module whose VM
talks to a real QEMU (the release the test belongs to) and writes down, per test
method, every QMP command, HMP qemu-io line and awaited event as scenario steps,
and every ``qemu-img`` / ``qemu-io`` call as a setup line.  The test's own
assertions still run against the real QEMU, so a method that fails there is
reported rather than written.  Automatic node names that the test read from a
query become ``$NODE[drv:file]`` placeholders, as in the generated corpus.

    PATH=/work/oracles/qemu-5.2/bin:$PATH python3 tests/tools/port_iotest245.py \\
        --iotests /work/oracles/iotests-5.2/qemu-iotests \\
        --qemu /work/oracles/qemu-5.2/bin/qemu-system-x86_64 --prefix iot245

writes ``tests/data/recorded/scenarios/iot245-<method>.json``.  Record them
afterwards with ``tests/tools/record_corpus.py``.  Needs QEMU; CI never runs this.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types
import unittest
from typing import Any

Json = Any
AUTO_NODE_NAME = re.compile(r"#block\d+")
# The device tests need a machine with a PCI bus, as the dev-* corpus scenarios.
PC_ARGS = ["-M", "pc", "-accel", "tcg"]


class Recorder:
    """What one test method did, in scenario form."""

    def __init__(self, test_dir: str) -> None:
        self.test_dir = test_dir
        self.setup: list[str] = []
        self.steps: list[dict[str, Json]] = []
        self.last_nodes: list[dict[str, Json]] = []

    def path(self, obj: Json) -> Json:
        if isinstance(obj, str):
            return obj.replace(self.test_dir, "$DIR")
        if isinstance(obj, list):
            return [self.path(x) for x in obj]
        if isinstance(obj, dict):
            return {self.path(k): self.path(v) for k, v in obj.items()}
        return obj

    def placeholders(self, obj: Json) -> Json:
        """Auto-generated node names the test took from a query: the corpus' placeholder."""
        if isinstance(obj, str) and AUTO_NODE_NAME.fullmatch(obj):
            for n in self.last_nodes:
                if n.get("node-name") == obj:
                    return f"$NODE[{n['drv']}:{self.path(n['file'])}]"
            raise RuntimeError(f"auto node name {obj} not seen in a query")
        if isinstance(obj, list):
            return [self.placeholders(x) for x in obj]
        if isinstance(obj, dict):
            return {k: self.placeholders(v) for k, v in obj.items()}
        return obj

    def shell(self, tool: str, args: tuple[str, ...]) -> str:
        words = [tool]
        for a in args:
            if self.test_dir in a:
                words.append('"' + a.replace(self.test_dir, "$DIR") + '"')
            else:
                words.append(shlex.quote(a))
        return " ".join(words)


class Vm:
    """iotests.VM stand-in: a real QEMU whose QMP traffic is written down."""

    def __init__(self, rec: Recorder, qemu: str, extra: list[str]) -> None:
        self.rec = rec
        self.qemu = qemu
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.events: list[dict[str, Json]] = []
        self.n = 0
        self.stopped = False

    def launch(self) -> None:
        self.sock_dir = tempfile.mkdtemp(prefix="iot245-sock-")
        path = os.path.join(self.sock_dir, "qmp.sock")
        self.log_path = os.path.join(self.sock_dir, "log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [self.qemu, "-machine", "none", "-nodefaults", "-display", "none",
             "-qmp", f"unix:{path},server=on,wait=off", *self.extra],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            self.sock = socket.socket(socket.AF_UNIX)
            try:
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self.buf = b""
        self._read()
        self._send({"execute": "qmp_capabilities"})
        if self.extra:
            # as the dev-* scenarios: let the firmware finish before devices are used
            self.rec.steps.append({"sleep": 1.5})
            time.sleep(1.5)

    def _read(self, timeout: float = 60.0) -> dict[str, Json] | None:
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                raise EOFError("QEMU closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def _send(self, msg: dict[str, Json]) -> dict[str, Json]:
        self.n += 1
        mid = f"p{self.n}"
        self.sock.sendall(json.dumps(dict(msg, id=mid)).encode() + b"\n")
        while True:
            m = self._read()
            if m is None:
                raise TimeoutError(f"no reply to {msg}")
            if "event" in m:
                self.events.append(m)
            elif m.get("id") == mid:
                del m["id"]
                return m

    def qmp(self, cmd: str, conv_keys: bool = True, **args: Json) -> dict[str, Json]:
        if conv_keys:
            args = {k.replace("_", "-"): v for k, v in args.items()}
        step: dict[str, Json] = {"execute": cmd}
        if args:
            step["arguments"] = self.rec.placeholders(self.rec.path(args))
        self.rec.steps.append(step)
        msg: dict[str, Json] = {"execute": cmd}
        if args:
            msg["arguments"] = args
        reply = self._send(msg)
        if cmd == "query-named-block-nodes" and isinstance(reply.get("return"), list):
            self.rec.last_nodes = reply["return"]
        return reply

    def hmp_qemu_io(self, drive: str, cmd: str, use_log: bool = False) -> dict[str, Json]:
        line = f'qemu-io {drive} "{cmd}"'
        self.rec.steps.append({"hmp": self.rec.path(line)})
        return self._send({"execute": "human-monitor-command", "arguments": {"command-line": line}})

    def _take(self, name: str, data: dict[str, Json] | None, timeout: float = 60.0) -> dict[str, Json]:
        def match(ev: dict[str, Json]) -> bool:
            return ev["event"] == name and all(ev.get("data", {}).get(k) == v
                                               for k, v in (data or {}).items())
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if match(ev):
                    del self.events[:i + 1]
                    step: dict[str, Json] = {"wait_event": name}
                    if data:
                        step["data"] = data
                    self.rec.steps.append(step)
                    return ev
            m = self._read(max(0.0, deadline - time.monotonic()))
            if m is None:
                raise TimeoutError(f"no event {name} {data}")
            if "event" in m:
                self.events.append(m)

    def event_wait(self, name: str, timeout: float = 60.0,
                   match: dict[str, Json] | None = None) -> dict[str, Json]:
        return self._take(name, (match or {}).get("data"), timeout)

    def run_job(self, job: str, auto_finalize: bool = True, auto_dismiss: bool = False,
                pre_finalize: Any = None, cancel: bool = False, wait: float = 60.0) -> None:
        """iotests.VM.run_job, with only the status changes it acts on written as waits."""
        while True:
            deadline = time.monotonic() + wait
            ev = None
            while ev is None:
                for i, e in enumerate(self.events):
                    if e["event"] == "JOB_STATUS_CHANGE" and e["data"]["id"] == job:
                        ev = e
                        del self.events[:i + 1]
                        break
                else:
                    m = self._read(max(0.0, deadline - time.monotonic()))
                    if m is None:
                        raise TimeoutError(f"job {job} stuck")
                    if "event" in m:
                        self.events.append(m)
            status = ev["data"]["status"]
            act = {"ready": "job-complete",
                   "pending": None if auto_finalize else ("job-cancel" if cancel else "job-finalize"),
                   "concluded": None if auto_dismiss else "job-dismiss"}.get(status)
            if act or status == "null":
                self.rec.steps.append({"wait_event": "JOB_STATUS_CHANGE",
                                       "data": {"id": job, "status": status}})
            if act:
                self.qmp(act, id=job)
            if status == "null":
                return

    def get_qmp_events(self, wait: float = 0.0) -> list[dict[str, Json]]:
        if not self.events:
            m = self._read(wait or 60.0)
            if m is not None and "event" in m:
                self.events.append(m)
        out, self.events = self.events, []
        return out

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def shutdown(self) -> None:
        self.stopped = True
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self._send({"execute": "quit"})
        except (EOFError, OSError):
            pass
        self.proc.wait(10)
        self.log.close()
        self.sock.close()

    def get_log(self) -> str:
        with open(self.log_path, errors="replace") as f:
            return f.read()


def make_iotests(state: dict[str, Any], test_dir: str, qemu: str) -> types.ModuleType:
    """The stand-in ``iotests`` module 245 imports."""
    mod = types.ModuleType("iotests")
    mod.test_dir = test_dir  # type: ignore[attr-defined]
    mod.imgfmt = "qcow2"  # type: ignore[attr-defined]

    class Output(str):
        """5.2's helpers return the output; 7.2's a CompletedProcess (``.stdout``)."""
        stdout: str
        returncode: int

    def tool(name: str) -> Any:
        def run(*args: str, check: bool = True, combine_stdio: bool = True) -> Output:
            rec: Recorder = state["rec"]
            r = subprocess.run([name, *args], capture_output=True, text=True, cwd=test_dir)
            vm = state.get("vm")
            # a failing probe (the O_DIRECT check) and the checks made on the
            # images after the VM has gone have no place in the setup lines
            probe = "quit" in args   # test_reopen's O_DIRECT probe: it changes no image
            if r.returncode == 0 and not probe and not (vm is not None and vm.stopped):
                rec.setup.append(rec.shell(name, args))
            out = Output(r.stdout + r.stderr)
            out.stdout, out.returncode = str(out), r.returncode
            if r.returncode and check and state["raise_on_failure"]:
                raise subprocess.CalledProcessError(r.returncode, [name, *args], output=str(out))
            return out
        return run

    mod.qemu_img = tool("qemu-img")  # type: ignore[attr-defined]
    mod.qemu_io = tool("qemu-io")  # type: ignore[attr-defined]
    mod.qemu_io_log = tool("qemu-io")  # type: ignore[attr-defined]

    def make_vm(*_a: Any, **_k: Any) -> Vm:
        vm = Vm(state["rec"], qemu, state["qemu_args"])
        state["vm"] = vm
        return vm

    mod.VM = make_vm  # type: ignore[attr-defined]
    mod.skip_if_unsupported = lambda _drivers: (lambda f: f)  # type: ignore[attr-defined]

    class QMPTestCase(unittest.TestCase):
        def dictpath(self, d: Json, path: str) -> Json:
            for part in path.split("/"):
                m = re.fullmatch(r"(\w+)\[(\d+)\]", part)
                if m:
                    d = d[m.group(1)][int(m.group(2))]
                elif isinstance(d, dict) and part in d:
                    d = d[part]
                else:
                    raise AssertionError(f"no {path}")
            return d

        def assert_qmp_absent(self, d: Json, path: str) -> None:
            try:
                r = self.dictpath(d, path)
            except (AssertionError, TypeError, KeyError):
                return
            self.fail(f'path "{path}" has value "{r}"')

        def assert_qmp(self, d: Json, path: str, value: Json) -> None:
            r = self.dictpath(d, path)
            if isinstance(value, list) and value != []:
                self.assertIn(r, value)
            else:
                self.assertEqual(r, value)

        def assert_no_active_block_jobs(self) -> None:
            self.assert_qmp(self.vm.qmp("query-block-jobs"), "return", [])  # type: ignore[attr-defined]

        def wait_until_completed(self, drive: str = "drive0", check_offset: bool = True,
                                 wait: float = 60.0, error: Any = None) -> Json:
            ev = self.vm._take("BLOCK_JOB_COMPLETED", {"device": drive}, wait)  # type: ignore[attr-defined]
            self.assertNotIn("error", ev["data"])
            self.assert_no_active_block_jobs()
            return ev

    mod.QMPTestCase = QMPTestCase  # type: ignore[attr-defined]
    mod.activate_logging = lambda: None  # type: ignore[attr-defined]
    return mod


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--iotests", required=True, help="the release's tests/qemu-iotests")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--prefix", default="iot245")
    ap.add_argument("--release", default="5.2")
    ap.add_argument("--raise-on-failure", action="store_true",
                    help="qemu_img/qemu_io raise CalledProcessError (iotests.py of 6.0 and later)")
    ap.add_argument("--outdir", default="tests/data/recorded/scenarios")
    ap.add_argument("methods", nargs="*", help="test methods (default: all)")
    args = ap.parse_args(argv)

    test_dir = tempfile.mkdtemp(prefix="iot245-")
    state: dict[str, Any] = {"raise_on_failure": args.raise_on_failure}
    sys.modules["iotests"] = make_iotests(state, test_dir, args.qemu)
    src = os.path.join(args.iotests, "245")
    loader = importlib.machinery.SourceFileLoader("iotest245", src)
    spec = importlib.util.spec_from_loader("iotest245", loader)
    assert spec is not None
    test = importlib.util.module_from_spec(spec)
    loader.exec_module(test)
    cls = test.TestBlockdevReopen
    methods = args.methods or sorted(m for m in dir(cls) if m.startswith("test_"))
    failed = []
    for m in methods:
        state["rec"] = Recorder(test_dir)
        state.pop("vm", None)
        state["qemu_args"] = PC_ARGS if "iothread" in m else []
        result = unittest.TestResult()
        cls(m).run(result)
        vm = state.get("vm")
        if vm is not None:
            vm.shutdown()
        if result.errors or result.failures:
            failed.append(m)
            for _, tb in result.errors + result.failures:
                print(f"{m}: FAILED on QEMU\n{tb}", file=sys.stderr)
            continue
        rec: Recorder = state["rec"]
        name = f"{args.prefix}-{m.removeprefix('test_').replace('_', '-')}"
        sc: dict[str, Json] = {
            "name": name,
            "description": f"QEMU {args.release}'s iotest 245 TestBlockdevReopen.{m}, "
                           "ported by tests/tools/port_iotest245.py",
        }
        if state["qemu_args"]:
            sc["qemu_args"] = state["qemu_args"]
        sc["setup"] = rec.setup
        sc["steps"] = rec.steps
        with open(os.path.join(args.outdir, name + ".json"), "w") as f:
            json.dump(sc, f, indent=1)
            f.write("\n")
        print(f"{name}: {len(rec.steps)} steps")
    shutil.rmtree(test_dir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
