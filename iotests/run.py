"""Run QEMU's own iotests against qmpd (``make iotests``).

Fetches nothing: ``QEMU_IOTESTS=DIR`` names a folder holding a release's
``qemu-iotests`` and ``python`` (as /work/shared/oracle/get-iotests.sh or a
QEMU source tree's ``tests/`` and ``python/`` give them).  The folder is
copied to a scratch directory first, so that ``./check`` writes its outputs
and scratch images there and never into DIR.  ``QEMU_PROG`` is qmpd (with
``--qemu-version`` from ``QMPD_PROFILE``); ``QEMU_IMG_PROG`` and
``QEMU_IO_PROG`` default to ``qmpd-img`` / ``qmpd-io`` wrappers unless real
ones are given.  Prints one line per test: pass, fail or not run (with
the reason ./check gives), then a summary; the exit status is 1 if any failed.

    make iotests QEMU_IOTESTS=DIR [QEMU_IMG_PROG=...] [QEMU_IO_PROG=...] [IOTESTS="245 030"]
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

# The guest-free block tests qmpd aims at (QEMU 7.2 numbering), most valuable first.
# TEST@FMT runs TEST with another image format than IOTESTS_FORMAT (mirror-top-perms
# supports only raw).
DEFAULT_TESTS = ("245", "reopen-file", "mirror-top-perms@raw", "030", "040", "041",
                 "056", "124", "155", "257",
                 # bash tests (common.qemu's -qmp stdio) and more jobs, all passing
                 "095", "132", "141", "144", "152", "156", "218", "224", "229", "235",
                 "247", "248", "249", "255", "258", "312", "313")

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def _wrapper(path: Path, argv: list[str]) -> str:
    path.write_text("#!/bin/sh\nexec " + " ".join(f"'{a}'" for a in argv) + ' "$@"\n')
    path.chmod(0o755)
    return str(path)


def main(argv: list[str]) -> int:
    src = os.environ.get("QEMU_IOTESTS")
    if not src or not Path(src, "qemu-iotests", "check").exists():
        print("make iotests: set QEMU_IOTESTS to a folder with qemu-iotests/ and python/ "
              "(e.g. from /work/shared/oracle/get-iotests.sh 7.2 DIR)", file=sys.stderr)
        return 2
    tests = argv or os.environ.get("IOTESTS", "").split() or list(DEFAULT_TESTS)
    fmt = os.environ.get("IOTESTS_FORMAT", "qcow2")
    profile = os.environ.get("QMPD_PROFILE", "7.2.22")
    work = Path(tempfile.mkdtemp(prefix="qmpd-iotests-"))
    try:
        shutil.copytree(Path(src, "qemu-iotests"), work / "qemu-iotests", symlinks=True)
        shutil.copytree(Path(src, "python"), work / "python", symlinks=True)
        bindir = work / "bin"
        bindir.mkdir()
        env = dict(os.environ)
        env["QEMU_PROG"] = _wrapper(bindir / "qemu-system-x86_64",
                                    [str(BIN / "qmpd"), "--qemu-version", profile])
        env.setdefault("QEMU_IMG_PROG", _wrapper(bindir / "qemu-img", [str(BIN / "qmpd-img")]))
        env.setdefault("QEMU_IO_PROG", _wrapper(bindir / "qemu-io",
                                                [str(BIN / "qmpd-img"), "io"]))
        # ./check insists that these exist; no test run here uses them.
        absent = _wrapper(bindir / "absent", ["false"])
        env.setdefault("QEMU_NBD_PROG", absent)
        env.setdefault("QSD_PROG", absent)
        env["TEST_DIR"] = str(work / "scratch")
        env["SOCK_DIR"] = str(work / "sock")
        env["PYTHONPATH"] = str(work / "python")
        limit = float(os.environ.get("IOTESTS_TIMEOUT", "900"))
        output = []
        for spec in tests:
            test, _, tfmt = spec.partition("@")
            # One ./check per test, in its own session: a test that hangs is
            # stopped (with every qmpd it started) after IOTESTS_TIMEOUT seconds.
            proc = subprocess.Popen(["./check", f"-{tfmt or fmt}", test],
                                    cwd=work / "qemu-iotests",
                                    env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)
            try:
                out, _ = proc.communicate(timeout=limit)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, _ = proc.communicate()
                out += f"\n{test} fail (timed out after {limit:.0f} s)\n"
            print(_summary_line(out, test), flush=True)
            output.append(out)
        return _report("\n".join(output), [t.partition("@")[0] for t in tests], work)
    finally:
        if os.environ.get("IOTESTS_KEEP"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


_LINE = re.compile(r"^(\S+)\s+(pass|fail|not run)\b(.*)$")


def _summary_line(output: str, test: str) -> str:
    for line in reversed(output.splitlines()):
        m = _LINE.match(line.strip())
        if m and m.group(1) == test:
            return f"  {test}: {m.group(2)}{m.group(3).rstrip()}"
    return f"  {test}: no result"


def _report(output: str, tests: list[str], work: Path) -> int:
    results: dict[str, str] = {}
    for line in output.splitlines():
        m = _LINE.match(line.strip())
        if m:
            results[m.group(1)] = (m.group(2) + m.group(3)).rstrip()
    failed = 0
    for t in tests:
        res = results.get(t, "fail (no result; see the output above)")
        if res.startswith("fail"):
            failed += 1
        print(f"{t:28} {res}")
    if os.environ.get("IOTESTS_VERBOSE") or failed:
        print("---- ./check output ----")
        print(output)
    counts = {k: sum(1 for t in tests if results.get(t, "fail").startswith(k))
              for k in ("pass", "fail", "not run")}
    print(f"iotests: {counts['pass']} passed, {counts['fail']} failed, "
          f"{counts['not run']} not run of {len(tests)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
