"""Conformance runner: replay the committed scenarios against a fresh
``python -m qmpd`` each and compare with QEMU 7.2's recordings of them.

Data: ``tests/data/scenarios/scenarios/*.json`` (the shared scenarios and
the project's own) with ``tests/data/scenarios/qemu/*.json`` (what QEMU 7.2
answered, recorded with ``--mask-key package``), and the block-graph corpus
``tests/data/recorded/{scenarios,qemu}/`` in the same format.  Recording and comparing use the vendored oracle tool
(:mod:`tests.conformance.qmpreplay`), so the normalizations are the oracle's.

Scenario setup lines call ``qemu-img`` / ``qemu-io``; they always run against
qmpd's own ``qmpd-img`` through a PATH shim (CI has no QEMU), and a scenario
whose setup fails is a failure (qmpd-img broke), reported with the reason.
Both qmpd and qmpd-img are forked from a server that has imported them
(:mod:`tests.conformance.forkserver`): fresh interpreters made import time
most of the suite's CPU.  ``QMPD_CONFORMANCE_FORK=0`` starts fresh ones.

``known_differences.json`` maps a scenario name to the steps (indexes, or
"negotiation", "greeting", "job-events", "event-stream", "exit") that currently differ from
QEMU; the pytest wrapper fails on any difference not listed there.

Command line (also ``make conformance``)::

    python -m tests.conformance.replay [--verbose] [--update-known] [NAME ...]

prints the oracle's table and its summary line
``steps: N exact: A class: B kind: C mismatch: D``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qmpd.profiles.registry import SERIES
from tests.conformance import event_streams, forkserver, qmpreplay

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# Scenario folders, each beside its recordings: one folder per QEMU release
# the scenarios were recorded on -- ``qemu`` (7.2, the first) and
# ``qemu-<series>`` (``qemu-10.0``, ``qemu-5.2``).  Every recording is
# replayed against qmpd answering as the release that made it.
SUITES = [REPO / "tests/data/scenarios", REPO / "tests/data/recorded"]
FIRST_SERIES = "7.2"

Diff = int | str


@dataclass(frozen=True)
class Case:
    """One recording to replay: ``id`` is ``<series>/<scenario name>``."""

    id: str
    series: str
    scenario: Path
    transcript: Path

    @property
    def name(self) -> str:
        return self.scenario.stem


def _series_of(folder: Path) -> str | None:
    if folder.name == "qemu":
        return FIRST_SERIES
    if folder.name.startswith("qemu-"):
        return folder.name[len("qemu-"):]
    return None


def _index() -> dict[str, Case]:
    out = {}
    for suite in SUITES:
        scenarios = suite / "scenarios"
        for folder in sorted(suite.iterdir()):
            series = _series_of(folder)
            # Recordings of a release qmpd has no profile for yet are not replayed.
            if series is None or series not in SERIES or not folder.is_dir():
                continue
            for transcript in sorted(folder.glob("*.json")):
                scenario = scenarios / transcript.name
                if scenario.exists():
                    cid = f"{series}/{transcript.stem}"
                    out[cid] = Case(cid, series, scenario, transcript)
    return out


def scenario_names() -> list[str]:
    """Every case id (``<series>/<name>``), 7.2's first."""
    return sorted(_index(), key=lambda c: (c.split("/")[0] != FIRST_SERIES, c))


def known_file(series: str) -> Path:
    """Where the steps that differ from QEMU ``series`` are listed."""
    return HERE / ("known_differences.json" if series == FIRST_SERIES
                   else f"known_differences-{series}.json")


def load_known(series: str = FIRST_SERIES) -> dict[str, list[Diff]]:
    path = known_file(series)
    if not path.exists():
        return {}
    with open(path) as f:
        return json.load(f)


def recorded_version(transcript: dict) -> str:
    """The exact QEMU version a transcript was recorded on (its greeting)."""
    v = transcript["greeting"]["QMP"]["version"]["qemu"]
    return f"{v['major']}.{v['minor']}.{v['micro']}"


def qmpd_target(version: str, fork_server: str | None = None) -> str:
    """The oracle's target for qmpd answering as ``version``: a fresh
    ``python -m qmpd``, or a child of the fork server at ``fork_server``."""
    run = (forkserver.client_command("qmpd", fork_server) if fork_server
           else f"{shlex.quote(sys.executable)} -m qmpd")
    return f"cmd:{run} --socket {{sock}} --qemu-version {version}"


def use_fork_server() -> bool:
    # QMPD_CONFORMANCE_FORK=0 replays with a fresh interpreter per process
    # (slower; for checking that the fork server changes nothing).
    return os.environ.get("QMPD_CONFORMANCE_FORK", "1") != "0"


@contextlib.contextmanager
def image_tools_env() -> Iterator[str | None]:
    """PATH and PYTHONPATH for one batch of recordings: qemu-img and qemu-io
    resolve to qmpd-img, and ``-m qmpd`` finds this checkout.  Yields the
    fork server's socket (None without one)."""
    shim = tempfile.mkdtemp(prefix="qmpd-shim-")
    saved = {k: os.environ.get(k) for k in ("PATH", "PYTHONPATH")}
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), saved["PYTHONPATH"]) if p)
    try:
        with (forkserver.running(shim) if use_fork_server()
              else contextlib.nullcontext(None)) as server:
            _write_shims(shim, server)
            os.environ["PATH"] = shim + os.pathsep + (saved["PATH"] or "")
            yield server
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(shim, ignore_errors=True)


def _write_shims(shim: str, server: str | None) -> None:
    """``qemu-img`` and ``qemu-io`` in ``shim``, running qmpd-img."""
    run_img = (f"exec {forkserver.client_command('img', server)}" if server else
               f'exec {shlex.quote(sys.executable)} -c '
               '"import sys; from qmpd.img.cli import main; sys.exit(main())"')
    for name, extra in (("qemu-img", ""), ("qemu-io", " io")):
        path = os.path.join(shim, name)
        with open(path, "w") as f:
            f.write(f'#!/bin/sh\n{run_img}{extra} "$@"\n')
        os.chmod(path, 0o755)


@dataclass
class Result:
    name: str           # the case id, <series>/<scenario name>
    expected: dict
    actual: dict

    @property
    def series(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def scenario(self) -> str:
        return self.name.split("/", 1)[1]

    @property
    def setup_error(self) -> dict | None:
        return self.actual.get("setup_error")

    def setup_failure(self) -> str | None:
        """Why the scenario could not be set up (a failure, never a skip)."""
        err = self.setup_error
        if not err:
            return None
        return f"{self.name}: setup failed: {err['command']}: {err['output'].strip()[:200]}"

    def differences(self) -> list[Diff]:
        """Steps (and scenario-level aspects) where qmpd differs from QEMU."""
        exp, act = self.expected, self.actual
        out: set[Diff] = set()
        _, _, details = qmpreplay.compare_transcripts(exp, act)
        out.update(idx for idx, *_ in details)
        esteps = {s["index"]: s for s in exp.get("steps", []) if "index" in s}
        asteps = {s["index"]: s for s in act.get("steps", []) if "index" in s}
        canon = qmpreplay.canon
        for idx in set(esteps) & set(asteps):
            es, as_ = esteps[idx], asteps[idx]
            if canon(qmpreplay.step_events(es)) != canon(qmpreplay.step_events(as_)) \
                    or len(es.get("stray", [])) != len(as_.get("stray", [])):
                out.add(idx)
        if canon(exp.get("greeting")) != canon(act.get("greeting")):
            out.add("greeting")
        if qmpreplay.classify_msg(exp.get("negotiation"), act.get("negotiation")) != "exact":
            out.add("negotiation")
        if canon(qmpreplay.job_event_streams(exp)) != canon(qmpreplay.job_event_streams(act)):
            out.add("job-events")
        if event_streams.differs(self.series, self.scenario, exp, act):
            out.add("event-stream")
        if (exp.get("exit", {}).get("how") == "died") != (act.get("exit", {}).get("how") == "died") \
                or "startup_error" in act:
            out.add("exit")
        return sorted(out, key=lambda d: (isinstance(d, str), str(d).zfill(6)))


def default_jobs() -> int:
    # Recording mostly waits (quiet periods after raw steps), so run a few
    # more scenarios at once than there are CPUs.
    return int(os.environ.get("QMPD_CONFORMANCE_JOBS", 0)) or 2 * (os.cpu_count() or 2)


def record(names: Iterable[str], jobs: int = 0) -> dict[str, Result]:
    """Replay the named scenarios (in parallel, one qmpd each)."""
    names = list(names)
    jobs = jobs or default_jobs()
    index = _index()

    def one(name: str) -> Result:
        case = index[name]
        with open(case.transcript) as f:
            expected = json.load(f)
        sc = qmpreplay.load_scenario(str(case.scenario))
        rec = qmpreplay.Recorder(qmpd_target(recorded_version(expected), server),
                                 mask_keys=["package"])
        actual = rec.record(sc)
        return Result(name, expected, actual)

    with image_tools_env() as server, ThreadPoolExecutor(max_workers=jobs) as pool:
        return {r.name: r for r in pool.map(one, names)}


def describe(result: Result, steps: Iterable[Diff]) -> str:
    """Expected and actual replies of some steps, for a failure message."""
    want = set(steps)
    lines = []
    esteps = {s["index"]: s for s in result.expected.get("steps", [])}
    asteps = {s["index"]: s for s in result.actual.get("steps", [])}
    for d in sorted(want, key=str):
        if isinstance(d, str):
            lines.append(f"  {d}: differs")
            continue
        es, as_ = esteps.get(d, {}), asteps.get(d, {})
        lines.append(f"  step {d}: {qmpreplay._short(es.get('step') or as_.get('step'), 300)}")
        for label, s in (("qemu", es), ("qmpd", as_)):
            body = {k: s[k] for k in ("reply", "replies", "events", "server_died") if k in s}
            lines.append(f"    {label}: {qmpreplay._short(body, 600)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.conformance.replay",
                                description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", help="scenario names (default: all)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="print every non-exact step with both replies")
    p.add_argument("--jobs", "-j", type=int, default=0,
                   help="scenarios replayed at once (default: $QMPD_CONFORMANCE_JOBS or 2 per CPU)")
    p.add_argument("--outdir", help="keep qmpd's transcripts here")
    p.add_argument("--update-known", action="store_true",
                   help="rewrite known_differences.json from this run")
    args = p.parse_args(argv)
    every = scenario_names()
    names = ([c for c in every if c in args.names or c.split("/", 1)[1] in args.names
              or c.split("/", 1)[0] in args.names] if args.names else every)
    results = record(names, args.jobs)
    outdir = args.outdir or tempfile.mkdtemp(prefix="qmpd-conformance-")
    os.makedirs(outdir, exist_ok=True)
    expdir = tempfile.mkdtemp(prefix="qmpd-expected-")
    setup_failures = [f for f in (r.setup_failure() for r in results.values()) if f]
    try:
        for name, r in results.items():
            flat = name.replace("/", "--")
            qmpreplay.write_json(r.actual, os.path.join(outdir, f"{flat}.json"))
            qmpreplay.write_json(r.expected, os.path.join(expdir, f"{flat}.json"))
        qmpreplay.cmd_compare(argparse.Namespace(
            expected=expdir, actual=outdir, verbose=args.verbose, strict_hmp=False))
    finally:
        shutil.rmtree(expdir, ignore_errors=True)
        if not args.outdir:
            shutil.rmtree(outdir, ignore_errors=True)
    if args.update_known:
        for series in sorted({r.series for r in results.values()}):
            update_known(series, [r for r in results.values() if r.series == series],
                         keep_others=bool(args.names))
    for failure in setup_failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if setup_failures else 0


def update_known(series: str, results: list[Result], keep_others: bool) -> None:
    """Rewrite ``series``'s known differences from ``results``."""
    path = known_file(series)
    known: dict[str, Any] = load_known(series) if keep_others else {}
    for r in results:
        known.pop(r.scenario, None)
        if not r.setup_error and r.differences():
            known[r.scenario] = r.differences()
    with open(path, "w") as f:
        # One scenario per line: reviewable diffs when steps come and go.
        rows = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in sorted(known.items())]
        f.write("{\n" + ",\n".join(rows) + ("\n" if rows else "") + "}\n")
    print(f"wrote {path.relative_to(REPO)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
