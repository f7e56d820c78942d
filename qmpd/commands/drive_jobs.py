"""drive-mirror and drive-backup (QEMU 7.2; drive-backup is deprecated there
in favour of blockdev-backup, and so marked in the schema).

Both make their target image from a filename, then run as blockdev-mirror
and blockdev-backup do (:mod:`qmpd.engine.drive_jobs`).  drive-backup is
also a transaction action, as in QEMU.
"""

from __future__ import annotations

from typing import Any

from qmpd.commands.registry import command
from qmpd.commands.snapshot import Phases, action, cmd_transaction
from qmpd.engine.drive_jobs import drive_backup_target, start_drive_mirror
from qmpd.engine.graph import Transaction
from qmpd.engine.jobs.backup import create_backup
from qmpd.engine.surgery import lookup_bs


@command("drive-mirror")
def cmd_drive_mirror(daemon: Any, args: dict) -> dict:
    start_drive_mirror(daemon.jobs, args)
    return {}


@action("drive-backup")
def _drive_backup(daemon: Any, data: dict, tx: Transaction) -> Phases:
    mgr = daemon.jobs
    g = daemon.graph
    # drive_backup_action drains the source from its lookup until the action
    # is cleaned up (after every action committed): the job starts inside
    # that section, so it pauses and resumes (as blockdev-backup's does).
    source = lookup_bs(g, data["device"], data["device"])
    mgr.drained([source], True)
    tx.on_abort(lambda: mgr.drained([source], False))
    bargs, target = drive_backup_target(g, data, tx)
    job = create_backup(mgr, bargs, tx)
    # drive_backup_commit: job_start; drive_backup_clean: the drain ends
    return Phases(lambda: mgr.start(job, job.driver), lambda: mgr.drained([source], False))


@command("drive-backup")
def cmd_drive_backup(daemon: Any, args: dict) -> dict:
    # qmp_drive_backup runs the transaction action alone.
    return cmd_transaction(daemon, {"actions": [{"type": "drive-backup", "data": args}]})
