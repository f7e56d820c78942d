"""iotests' ``QMPTestCase`` and the entry points that run a test script.

:class:`QMPTestCase` has iotests' assertions and block-job helpers over
``self.vm`` (and kills the daemons a case left running); ``main``,
``script_main``, ``script_initialize`` and ``notrun`` check a script's
``supported_fmts``/``supported_protocols`` against what qmpd-img makes and
run it, as iotests' do.  ``Timeout`` is iotests' SIGALRM guard.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import unittest
from collections.abc import Callable, Sequence
from typing import Any

from qmpd.testing.asserts import assert_qmp, assert_qmp_absent, dictpath
from qmpd.testing.paths import imgfmt
from qmpd.testing.vm import LIVE_VMS, VM


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


class QMPTestCase(unittest.TestCase):
    """iotests' QMPTestCase: path assertions and job helpers over ``self.vm``.

    Every VM a test case launched and did not shut down is killed once the
    case has run (a setUp that fails after ``launch()`` never reaches
    tearDown)."""

    vm: VM

    def run(self, result: Any = None) -> Any:
        before = set(LIVE_VMS)
        try:
            return super().run(result)
        finally:
            for vm in list(LIVE_VMS - before):
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
