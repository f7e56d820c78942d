"""Every script in examples/ runs and shows what its docs promise.

The scripts run as a user runs them, from the repository root with the
project's interpreter; their output is checked for what a reader of the
README would look at (the data read through the chain, the transcript).
QEMU 7.2 was asked the same things when these files were made: the DOT of
the chain under tests/examples/data/qemu72-chain-*.dot is qmpd-graph's
drawing of QEMU's own graph (same script, ``--socket`` on a real QEMU), and
qmp-shell-session.txt is also what QEMU 10.0.2 (qmpd's default release)
answers, byte for byte (checked with the same commands on the real 10.0.2).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from qmpd.profiles.registry import DEFAULT_VERSION

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
DATA = Path(__file__).resolve().parent / "data"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(argv, cwd=REPO, env=kw.pop("env", _env()), text=True,  # type: ignore[call-overload]
                         capture_output=True, timeout=120, **kw)
    assert res.returncode == 0, f"{argv} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res


@pytest.fixture
def short_dir() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="qmpd-ex-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(shutil.which("socat") is None,
                    reason="socat is not installed (.ci/run installs it with apt-get)")
def test_socat_session_script() -> None:
    env = _env()
    env["QMPD"] = f"{sys.executable} -m qmpd"
    out = run(["sh", "examples/socat-session.sh"], env=env).stdout
    lines = out.splitlines()
    # The greeting is the default release's, byte for byte as QEMU words it.
    major, minor, micro = (int(x) for x in DEFAULT_VERSION.split("."))
    assert lines[0].startswith('{"QMP": {"version": {"qemu": '
                               f'{{"micro": {micro}, "minor": {minor}, "major": {major}}}')
    assert '{"return": {}, "id": 2}' in lines
    assert any('"event": "STOP"' in line for line in lines)
    assert '"reason": "host-qmp-quit"' in lines[-2] and lines[-1] == '{"return": {}}'


def test_qemu_qmp_session_script() -> None:
    out = run([sys.executable, "examples/qemu_qmp_session.py"]).stdout
    assert "nodes: [('disk0', 'null-co', 1048576)]" in out
    assert "event: STOP" in out


def test_chain_reopen_swaps_the_backing_file(short_dir: str) -> None:
    graph = os.path.join(short_dir, "chain.dot")
    out = run([sys.executable, "examples/chain_reopen.py", "--graph", graph]).stdout
    before, after = out.split("after reopen:")
    # Through mid, 64k holds mid's 0xbb; with base as backing it reads zeros.
    assert "00010000:  bb bb bb bb" in before
    assert "00010000:  00 00 00 00" in after
    assert re.search(r"top's backing file is /tmp/qmpd-chain-\w+/base.qcow2", after)
    assert "read 65536/65536 bytes at offset 0" in after   # -P 0xaa verified
    # The picture is the one qmpd-graph draws for QEMU 7.2 doing the same.
    for tag in ("before", "after"):
        got = Path(short_dir, f"chain-{tag}.dot").read_text()
        assert got == (DATA / f"qemu72-chain-{tag}.dot").read_text(), tag


@pytest.mark.skipif(shutil.which("dot") is None,
                    reason="Graphviz 'dot' is not installed: SVG/PNG rendering not tested")
def test_chain_reopen_draws_svg(short_dir: str) -> None:
    run([sys.executable, "examples/chain_reopen.py", "--graph",
         os.path.join(short_dir, "chain.svg")])
    svg = Path(short_dir, "chain-after.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    # (Graphviz writes "-" as &#45; in SVG text.)
    assert "base.qcow2" in svg and "read&#45;only" in svg


def test_iotests_style_script_matches_its_reference_output() -> None:
    out = run([sys.executable, "examples/iotests_reopen.py"]).stdout
    assert out == (EXAMPLES / "iotests_reopen.out").read_text()


def test_qmp_shell_transcript() -> None:
    env = _env()
    env["PYTHON"] = sys.executable
    out = run(["sh", "examples/qmp-shell-session.sh"], env=env).stdout
    assert out == (EXAMPLES / "qmp-shell-session.txt").read_text()


def test_ported_qemu_iotest_passes() -> None:
    # QEMU 7.2's tests/reopen-file, three lines changed (see the file's header).
    res = run([sys.executable, "examples/iotests_reopen_file.py"])
    assert "test_reopen_file" in res.stderr and res.stderr.rstrip().endswith("OK")
