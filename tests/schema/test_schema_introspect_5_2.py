"""The 5.2 profile's ``query-qmp-schema``: the type tree behind every QEMU
command and event of ``schema/5.2/`` is the one a live QEMU 5.2.0 reports
(``qemu-5.2-query-qmp-schema.json``), and the release's own command set
(``x-blockdev-reopen``, ``drive-mirror`` and ``drive-backup``; no
``blockdev-reopen``) is what a client is offered.
"""

from __future__ import annotations

import pytest
from schema_testlib import assert_same_entity, load

from qmpd.profiles import select
from qmpd.schema import load as load_schema

LIVE = load("qemu-5.2-query-qmp-schema.json")
SCHEMA = load_schema("5.2")
ALL = SCHEMA.introspect(SCHEMA.command_names(), SCHEMA.event_names(),
                       select("5.2.0").introspect_enum_members)
QEMU_NAMES = {e["name"] for e in LIVE if e["meta-type"] in ("command", "event")}
SHARED = [n for n in SCHEMA.command_names() + SCHEMA.event_names() if n in QEMU_NAMES]


def test_release_command_set() -> None:
    names = set(SCHEMA.command_names())
    assert {"x-blockdev-reopen", "drive-mirror", "drive-backup"} <= names
    assert "blockdev-reopen" not in names
    # Every command but qmpd's own x-qmpd-* extensions is a QEMU 5.2 command.
    assert sorted(n for n in names - QEMU_NAMES) == ["x-qmpd-clock-step", "x-qmpd-reset"]


@pytest.mark.parametrize("name", SHARED)
def test_type_tree_matches_qemu_5_2(name: str) -> None:
    assert_same_entity(ALL, LIVE, name)
