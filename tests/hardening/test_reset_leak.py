"""x-qmpd-reset after block jobs gives all their memory back.

A CI suite shares one daemon and resets it between tests; each job it
starts must not leave anything behind once the daemon is reset, whatever
the job's kind and however far it got.  ``QMPD_RESET_CYCLES`` (default
1000, which ``make load`` also runs) sets the number of job + reset cycles.
"""

from __future__ import annotations

import os
from typing import Any

from qmpd.img.create import img_create

from .conftest import rss_kib

CYCLES = int(os.environ.get("QMPD_RESET_CYCLES", "1000"))
KINDS = ("create", "backup", "mirror", "stream", "commit", "backup-done")


def _one_cycle(c: Any, kind: str, base: str, top: str) -> None:
    def add(**args: Any) -> None:
        assert c.cmd("blockdev-add", args) == {"return": {}}

    if kind == "create":
        add(**{"node-name": "f", "driver": "null-co", "size": 1 << 20})
        r = c.cmd("blockdev-create", {"job-id": "j", "options": {
            "driver": "qcow2", "file": "f", "size": 1 << 20}})
    elif kind in ("backup", "mirror", "backup-done"):
        add(**{"node-name": "a", "driver": "null-co", "size": 1 << 20})
        add(**{"node-name": "b", "driver": "null-co", "size": 1 << 20})
        r = c.cmd("blockdev-mirror" if kind == "mirror" else "blockdev-backup",
                  {"job-id": "j", "device": "a", "target": "b", "sync": "full"})
    else:
        add(**{"node-name": "base", "driver": "qcow2",
               "file": {"driver": "file", "filename": base}})
        add(**{"node-name": "top", "driver": "qcow2", "backing": "base",
               "file": {"driver": "file", "filename": top}})
        r = c.cmd("block-stream" if kind == "stream" else "block-commit",
                  {"job-id": "j", "device": "top"})
    assert r == {"return": {}}, (kind, r)
    if kind == "backup-done":
        # This one runs to its end (and is dismissed) before the reset.
        while c.cmd("query-jobs")["return"]:
            pass
    else:
        # Reset while it runs, or once it is over (the small ones end fast).
        assert all(j["id"] == "j" for j in c.cmd("query-jobs")["return"])
    assert c.cmd("x-qmpd-reset") == {"return": {}}


def test_job_and_reset_cycles_of_every_kind_keep_memory_flat(start_qmpd: Any,
                                                              short_tmp: str) -> None:
    base, top = f"{short_tmp}/base.qcow2", f"{short_tmp}/top.qcow2"
    img_create(base, "qcow2", str(1 << 20), quiet=True)
    img_create(top, "qcow2", str(1 << 20), backing=base, backing_fmt="qcow2", quiet=True)
    q = start_qmpd("--extensions")
    c = q.connect(negotiate=True)
    # Warm-up: every kind once and a few rounds more (modules, caches, pools).
    for kind in KINDS * 10:
        _one_cycle(c, kind, base, top)
    before = rss_kib(q.proc.pid)
    for i in range(CYCLES):
        _one_cycle(c, KINDS[i % len(KINDS)], base, top)
        c.events.clear()
    grown = rss_kib(q.proc.pid) - before
    # Before the fix each cycle kept its whole graph: 8-50 KiB a cycle.
    assert grown < 3 * 1024 * CYCLES // 1000, f"+{grown} KiB after {CYCLES} cycles"
