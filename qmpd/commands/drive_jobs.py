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
from qmpd.engine.surgery import check_not_busy, lookup_bs


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

    def end_drain() -> None:
        mgr.drained([source], False)

    # Before 6.0 .clean ended the section only once the target was open
    # (Profile.drive_backup_leaks_drain): an error before that leaves the
    # source drained for good.
    leaks = g.profile.drive_backup_leaks_drain
    if not leaks:
        tx.on_abort(end_drain)
    # "Early check to avoid creating target": a busy source fails before
    # its image is made.
    check_not_busy(g, source)
    bargs, target = drive_backup_target(g, data, tx)
    if leaks:
        tx.on_abort(end_drain)
    job = create_backup(mgr, bargs, tx)
    # drive_backup_commit: job_start; drive_backup_clean: the drain ends
    return Phases(lambda: mgr.start(job, job.driver), end_drain)


@command("drive-backup")
def cmd_drive_backup(daemon: Any, args: dict) -> dict:
    # qmp_drive_backup runs the transaction action alone.
    return cmd_transaction(daemon, {"actions": [{"type": "drive-backup", "data": args}]})
