"""Release profiles: choosing one, and what a profile decides.

What a user notices: ``--qemu-version`` of a release qmpd has no profile for
is refused at start with the list of those it has; the release's schema
decides the command set and ``query-qmp-schema``; an error raised by key is
worded by the profile the daemon answers as.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from qmpd.commands.dispatch import Daemon, Dispatcher
from qmpd.commands.errors import QMPError
from qmpd.jobs.clock import VirtualClock
from qmpd.profiles import SERIES, Profile, select
from qmpd.profiles.messages import BASE

REPO = Path(__file__).resolve().parent.parent


def test_unknown_release_is_refused_at_start_listing_the_profiles(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "qmpd", "--socket", str(tmp_path / "s"),
                           "--qemu-version", "6.1.0"],
                          cwd=REPO, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    assert "no profile for QEMU 6.1" in proc.stderr
    for series in SERIES:
        assert series in proc.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("series", sorted(SERIES))
def test_every_profile_loads_its_schema_and_offers_only_its_commands(series: str) -> None:
    major, minor = (int(x) for x in series.split("."))
    profile = select(f"{major}.{minor}.0")
    assert profile.series == series
    d = Dispatcher(Daemon(profile, job_time=VirtualClock()))
    offered = set(d.command_names())
    described = set(d.daemon.schema.command_names())
    # Everything the release's schema describes works; qmpd's own commands
    # are there only with --extensions.
    assert offered == {n for n in described if not n.startswith("x-qmpd-")}
    with_ext = set(Dispatcher(Daemon(profile, job_time=VirtualClock(), extensions=True)).command_names())
    assert with_ext == described


def _sent_events() -> set[str]:
    # Every event name the code passes to emit()/emit_event().
    pat = re.compile(r'emit(?:_event)?\(\s*"([A-Z_]+)"')
    return {m for f in (REPO / "qmpd").rglob("*.py") for m in pat.findall(f.read_text())}


@pytest.mark.parametrize("series", sorted(SERIES))
def test_query_qmp_schema_lists_every_event_qmpd_sends(series: str) -> None:
    major, minor = (int(x) for x in series.split("."))
    d = Dispatcher(Daemon(select(f"{major}.{minor}.0"), job_time=VirtualClock()))
    described = {e["name"] for e in d.execute("query-qmp-schema", {})
                 if e["meta-type"] == "event"}
    sent = _sent_events()
    assert {"SHUTDOWN", "JOB_STATUS_CHANGE", "DEVICE_DELETED"} <= sent
    assert sent <= described


class _Reworded(Profile):
    # A release that words one message differently (as 10.0 words some).
    series = "7.2"
    schema_dir = "7.2"
    messages = {**BASE, "job.id-invalid": "Job id '{id}' is not valid"}


def test_an_error_by_key_is_worded_by_the_daemons_profile() -> None:
    args = {"job-id": "1bad", "options": {"driver": "file", "filename": "/nonexistent",
                                          "size": 0}}
    base = Dispatcher(Daemon(select("7.2.22"), job_time=VirtualClock()))
    other = Dispatcher(Daemon(_Reworded((7, 2, 22)), job_time=VirtualClock()))
    with pytest.raises(QMPError) as e1:
        base.execute("blockdev-create", args)
    with pytest.raises(QMPError) as e2:
        other.execute("blockdev-create", args)
    assert e1.value.desc == "Invalid job ID '1bad'"
    assert e2.value.desc == "Job id '1bad' is not valid"


def test_the_documented_examples_hold() -> None:
    import doctest

    import qmpd.engine.errors
    import qmpd.profiles
    import qmpd.profiles.base
    import qmpd.profiles.registry

    for mod in (qmpd.profiles, qmpd.profiles.base, qmpd.profiles.registry, qmpd.engine.errors):
        assert doctest.testmod(mod).failed == 0, mod.__name__


def test_without_qemu_version_qmpd_answers_as_qemu_10_0_2(tmp_path: Path) -> None:
    import socket
    import time

    sock = str(tmp_path / "q.sock")
    proc = subprocess.Popen([sys.executable, "-m", "qmpd", "--socket", sock], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not Path(sock).exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(sock)
            f = s.makefile("rwb")
            greeting = f.readline()
            f.write(b'{"execute": "qmp_capabilities"}\n{"execute": "blockdev-set-active",'
                    b' "arguments": {"active": true}}\n')
            f.flush()
            assert f.readline() == b'{"return": {}}\r\n'
            # 10.0's own command exists (7.2 answers CommandNotFound).
            assert f.readline() == b'{"return": {}}\r\n'
        assert b'"qemu": {"micro": 2, "minor": 0, "major": 10}' in greeting
    finally:
        proc.terminate()
        proc.wait(30)
