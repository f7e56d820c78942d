"""The README does what it says: its command table is complete, its
qmpd.testing snippet runs, and its walkthrough works as written.

The walkthrough test runs the README's own shell blocks (with the chain
directory moved to a private one), so a newcomer following them gets the
data and the picture the README shows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from qmpd.commands.dispatch import Daemon, Dispatcher
from qmpd.jobs.clock import VirtualClock
from qmpd.profiles import SERIES, select

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
BIN = Path(sys.executable).parent


def section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 4)
    return README[start:end if end != -1 else None]


def test_support_table_lists_every_command() -> None:
    table = section("Supported commands")
    listed: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            listed.update(re.findall(r"`([^`]+)`", first))
    # Every release's commands: the table says which release has what.
    implemented = {name for series in SERIES
                   for name in Dispatcher(Daemon(select(f"{series}.0"), job_time=VirtualClock(),
                                                 extensions=True)).command_names()}
    assert sorted(implemented - listed) == [], \
        "commands missing from README.md's 'Supported commands' table: add a row for each"
    assert sorted(listed - implemented) == [], "README lists commands qmpd does not have"


def test_qmpd_testing_snippet_runs(capsys) -> None:
    code = re.search(r"```python\n(.*?)```", section("Testing with qmpd.testing"), re.S)
    assert code is not None
    exec(compile(code.group(1), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert '"return": "read 65536/65536 bytes at offset 0' in out


@pytest.mark.skipif(shutil.which("socat") is None or shutil.which("dot") is None,
                    reason="the README walkthrough needs socat and Graphviz's dot")
@pytest.mark.skipif(not (BIN / "qmpd-graph").exists(),
                    reason="console scripts not installed in this interpreter (run make install)")
def test_walkthrough_as_written() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", section("Walkthrough"), re.S)
    script = "\n".join(blocks)
    # `make install` and activating the venv are what got us here.
    script = script.replace("make install", "true").replace(". .venv/bin/activate", "true")
    work = tempfile.mkdtemp(prefix="qmpd-rd-", dir="/tmp")
    script = script.replace("/tmp/chain", work)
    # Whatever happens, the background qmpd goes (else its open stdout
    # would keep this test waiting).
    script = "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script + "\nkill %1\nwait\n"
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    try:
        res = subprocess.run(["bash", "-e", "-c", "set -m\n" + script], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        out = res.stdout
        # mid's 0xbb through top, then zeros after the swap, and base's 0xaa.
        reads = re.findall(r'"return": "(\w+):  (\w\w) ', out)
        assert reads == [("00010000", "bb"), ("00010000", "00"), ("00000000", "aa")]
        for pic in ("chain.svg", "chain-after.svg"):
            svg = Path(work, pic).read_text()
            assert "<svg" in svg and "top.qcow2" in svg
    finally:
        shutil.rmtree(work, ignore_errors=True)
