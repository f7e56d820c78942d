"""The 10.0 profile's ``query-qmp-schema``: the type tree behind every QEMU
command and event of ``schema/10.0/`` is the one a live QEMU 10.0.2 reports
(``qemu-10.0-query-qmp-schema.json``), and the release's own command set
(``blockdev-set-active`` and ``block-job-change`` there, ``x-blockdev-reopen``
gone) is what a client is offered.
"""

from __future__ import annotations

import pytest
from schema_testlib import assert_same_entity, load

from qmpd.schema import load as load_schema

LIVE = load("qemu-10.0-query-qmp-schema.json")
SCHEMA = load_schema("10.0")
ALL = SCHEMA.introspect(SCHEMA.command_names(), SCHEMA.event_names())
QEMU_NAMES = {e["name"] for e in LIVE if e["meta-type"] in ("command", "event")}
SHARED = [n for n in SCHEMA.command_names() + SCHEMA.event_names() if n in QEMU_NAMES]


def test_release_command_set() -> None:
    names = set(SCHEMA.command_names())
    assert {"blockdev-set-active", "block-job-change"} <= names
    # 10.0 still has the filename forms of mirror and backup (iotests use them).
    assert {"drive-mirror", "drive-backup"} <= names
    assert "x-blockdev-reopen" not in names
    # Every command but qmpd's own x-qmpd-* extensions is a QEMU 10.0 command.
    assert sorted(n for n in names - QEMU_NAMES) == ["x-qmpd-clock-step", "x-qmpd-reset"]


@pytest.mark.parametrize("name", SHARED)
def test_type_tree_matches_qemu_10_0(name: str) -> None:
    assert_same_entity(ALL, LIVE, name)
