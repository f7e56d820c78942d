"""Every committed scenario, replayed against a fresh qmpd, answers as QEMU
7.2 did -- except for the steps listed in known_differences.json.

A difference that is not listed fails (a regression, or a new scenario that
needs a look); a listed step that now matches is reported as a warning so
that the list can shrink.  Scenarios whose setup cannot run (qmpd-img
missing or failing) are skipped with the reason.
"""

from __future__ import annotations

import warnings

import pytest

from tests.conformance import replay

NAMES = replay.scenario_names()
# The slowest part of the suite (one qmpd per scenario): `pytest -m "not conformance"` skips it.
pytestmark = pytest.mark.conformance


@pytest.fixture(scope="session")
def conformance_results(request: pytest.FixtureRequest) -> dict[str, replay.Result]:
    # Record only the scenarios selected in this session, all in one parallel batch.
    wanted = [item.callspec.params["name"] for item in request.session.items
              if getattr(item, "originalname", "") == "test_scenario_matches_qemu"]
    return replay.record(wanted or NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_scenario_matches_qemu(conformance_results, name):
    result = conformance_results[name]
    if result.setup_error:
        err = result.setup_error
        pytest.skip(f"setup failed ({err['command']}): {err['output'].strip()[:200]}")
    known = replay.load_known().get(name, [])
    differ = result.differences()
    fixed = [d for d in known if d not in differ]
    if fixed:
        warnings.warn(f"{name}: listed in known_differences.json but now as QEMU: {fixed}",
                      stacklevel=1)
    new = [d for d in differ if d not in known]
    assert not new, (f"{name}: differs from QEMU 7.2 at {new} (not in "
                     f"known_differences.json):\n" + replay.describe(result, new))
