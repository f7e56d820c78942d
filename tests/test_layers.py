"""qmpd's module structure keeps its house rules (issue 18): no import circle,
a one-way engine, few imports inside engine functions, no huge module.

Each rule is one test.  Where a rule is not met yet, the test is marked
``xfail(strict=True)`` with the offenders it still has: once they are fixed
the test passes, strict xfail turns that into a failure, and the marker has to
go, so that the rule holds from then on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tools.check_layers import MAX_ENGINE_FUNCTION_IMPORTS, MAX_LINES, Report, check

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report() -> Report:
    return check(ROOT)


def test_checker_sees_the_package(report: Report) -> None:
    """The checker reads qmpd's modules and their imports (else every rule passes)."""
    assert "qmpd.engine.graph" in report.modules
    assert any(i.source == "qmpd.engine.graph" and i.target == "qmpd.engine.node"
               for i in report.imports)


def test_engine_has_no_import_circle(report: Report) -> None:
    engine = [c for c in report.cycles if any(m.startswith("qmpd.engine") for m in c)]
    assert engine == []


def test_qmpd_has_no_import_circle(report: Report) -> None:
    assert report.cycles == []


def test_engine_and_protocol_import_nothing_above_them(report: Report) -> None:
    assert report.upward == []


def test_few_imports_inside_engine_functions(report: Report) -> None:
    assert len(report.engine_function_imports) <= MAX_ENGINE_FUNCTION_IMPORTS, \
        report.engine_function_imports


def test_no_module_over_the_limit(report: Report) -> None:
    assert report.big_modules == [], f"over {MAX_LINES} lines: {report.big_modules}"


def test_the_block_layer_modules_are_within_the_limit(report: Report) -> None:
    """The modules split so far stay split: graph, drivers, devices, exports,
    jobs and graph surgery."""
    mine = {m: n for m, n in report.lines.items()
            if m.startswith(("qmpd.engine.graph", "qmpd.engine.drivers", "qmpd.engine.devices",
                             "qmpd.engine.exports", "qmpd.engine.objects", "qmpd.qobject",
                             "qmpd.qcow2", "qmpd.engine.jobs", "qmpd.engine.surgery",
                             "qmpd.jobs"))}
    assert mine and max(mine.values()) <= MAX_LINES


def test_every_driver_is_listed_in_the_registry() -> None:
    """A driver module nobody lists would be dead code: the registry names each
    blockdev-add driver's module (the job filters are created by their jobs)."""
    from qmpd.engine.drivers import registry

    listed = {type(factory()).__module__ for factory in registry.FACTORIES.values()}
    modules = {f"qmpd.engine.drivers.{p.stem}" for p in
               (ROOT / "qmpd" / "engine" / "drivers").glob("*.py")
               if p.stem not in ("__init__", "base", "registry", "copy_before_write")}
    assert modules - listed == set()
