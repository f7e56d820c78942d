"""Every committed recording, replayed against a fresh qmpd answering as the
QEMU release that made it, answers as that QEMU did -- except for the steps
listed in that release's known differences (known_differences.json for 7.2,
known_differences-<series>.json for the others).

A difference that is not listed fails (a regression, or a new scenario that
needs a look); a listed step that now matches is reported as a warning so
that the list can shrink.  A scenario whose setup cannot run (qmpd-img
failing) fails with the reason: a skip would hide the regression.
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
    failure = result.setup_failure()
    if failure:
        pytest.fail(failure)
    known = replay.load_known(result.series).get(result.scenario, [])
    differ = result.differences()
    fixed = [d for d in known if d not in differ]
    if fixed:
        warnings.warn(f"{name}: listed in {replay.known_file(result.series).name} but now "
                      f"as QEMU: {fixed}", stacklevel=1)
    new = [d for d in differ if d not in known]
    assert not new, (f"{name}: differs from QEMU {result.series} at {new} (not in "
                     f"{replay.known_file(result.series).name}):\n"
                     + replay.describe(result, new))
