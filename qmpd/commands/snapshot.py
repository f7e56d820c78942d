"""blockdev-snapshot and transaction (QEMU 7.2 blockdev.c qmp_transaction).

A transaction prepares its actions in order; the first failure aborts every
prepared action in reverse order, so the graph and the bitmaps are exactly as
before.  Only when all prepared does each action commit.  Actions that do not
form a job group refuse ``completion-mode: grouped`` with QEMU's text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qmpd.commands.registry import command
from qmpd.engine import bitmaps as bm
from qmpd.engine.errors import BlockError
from qmpd.engine.graph import BlockGraph, Transaction
from qmpd.engine.jobs.backup import create_backup
from qmpd.engine.jobs.create import start_create
from qmpd.engine.jobs.mirror import start_mirror
from qmpd.engine.jobs.txn import JobTxn
from qmpd.engine.snapshot import SnapshotAction, SnapshotSyncAction, blockdev_snapshot


@dataclass
class Phases:
    """An action's commit, and its clean, which qmp_transaction runs only
    after every action has committed (a backup's drained section ends there)."""

    commit: Callable[[], None]
    clean: Callable[[], None]


# Action kind -> prepare(daemon, data, tx) returning a commit callback, its
# Phases, or None.
Prepare = Callable[[Any, dict, Transaction], "Callable[[], None] | Phases | None"]
ACTIONS: dict[str, Prepare] = {}


def action(kind: str) -> Callable[[Prepare], Prepare]:
    """Register a transaction action; the jobs family adds blockdev-backup here."""
    def reg(fn: Prepare) -> Prepare:
        ACTIONS[kind] = fn
        return fn
    return reg


@command("blockdev-snapshot")
def cmd_blockdev_snapshot(daemon: Any, args: dict) -> dict:
    blockdev_snapshot(daemon.graph, args["node"], args["overlay"])
    return {}


@action("blockdev-snapshot")
def _snap(daemon: Any, data: dict, tx: Transaction) -> Callable[[], None]:
    g: BlockGraph = daemon.graph
    act = SnapshotAction(data["node"], data["overlay"])
    act.prepare(g, tx)
    return lambda: act.commit(g)


@command("blockdev-snapshot-sync")
def cmd_blockdev_snapshot_sync(daemon: Any, args: dict) -> dict:
    # qmp_blockdev_snapshot_sync runs the transaction action alone.
    return cmd_transaction(daemon, {"actions": [{"type": "blockdev-snapshot-sync",
                                                 "data": args}]})


@action("blockdev-snapshot-sync")
def _snap_sync(daemon: Any, data: dict, tx: Transaction) -> Callable[[], None]:
    g: BlockGraph = daemon.graph
    act = SnapshotSyncAction(data)
    act.prepare(g, tx)
    return lambda: act.commit(g)


@action("block-dirty-bitmap-add")
def _bm_add(daemon: Any, data: dict, tx: Transaction) -> None:
    bm.add(daemon.graph, data["node"], data["name"], data.get("granularity"),
           data.get("persistent", False), data.get("disabled", False), tx)


@action("block-dirty-bitmap-remove")
def _bm_remove(daemon: Any, data: dict, tx: Transaction) -> None:
    bm.remove(daemon.graph, data["node"], data["name"], tx)


@action("block-dirty-bitmap-clear")
def _bm_clear(daemon: Any, data: dict, tx: Transaction) -> None:
    bm.clear(daemon.graph, data["node"], data["name"], tx)


@action("block-dirty-bitmap-enable")
def _bm_enable(daemon: Any, data: dict, tx: Transaction) -> None:
    bm.set_enabled(daemon.graph, data["node"], data["name"], True, tx)


@action("block-dirty-bitmap-disable")
def _bm_disable(daemon: Any, data: dict, tx: Transaction) -> None:
    bm.set_enabled(daemon.graph, data["node"], data["name"], False, tx)


@action("block-dirty-bitmap-merge")
def _bm_merge(daemon: Any, data: dict, tx: Transaction) -> None:
    bm.merge(daemon.graph, data["node"], data["target"], data["bitmaps"], tx)


@action("blockdev-backup")
def _backup(daemon: Any, data: dict, tx: Transaction) -> Phases:
    mgr = daemon.jobs
    # blockdev_backup_prepare drains the source until the action is cleaned
    # up: the job starts inside that section, so it pauses and resumes.
    source = daemon.graph.nodes.get(data.get("device", ""))
    drained = [source] if source is not None else []
    mgr.drained(drained, True)
    tx.on_abort(lambda: mgr.drained(drained, False))
    job = create_backup(mgr, data, tx)

    return Phases(lambda: mgr.start(job, job.driver),       # blockdev_backup_commit: job_start
                  lambda: mgr.drained(drained, False))      # blockdev_backup_clean


@command("blockdev-backup")
def cmd_blockdev_backup(daemon: Any, args: dict) -> dict:
    # qmp_blockdev_backup runs the transaction action alone.
    return cmd_transaction(daemon, {"actions": [{"type": "blockdev-backup", "data": args}]})


@command("blockdev-create")
def cmd_blockdev_create(daemon: Any, args: dict) -> dict:
    start_create(daemon.jobs, args["job-id"], args["options"])
    return {}


@command("blockdev-mirror")
def cmd_blockdev_mirror(daemon: Any, args: dict) -> dict:
    start_mirror(daemon.jobs, args)
    return {}


@action("abort")
def _abort(daemon: Any, data: dict, tx: Transaction) -> None:
    raise BlockError.of("transaction.aborted")


# Actions whose prepare refuses completion-mode=grouped (action_check_completion_mode).
INDIVIDUAL_ONLY = {"blockdev-snapshot", "blockdev-snapshot-sync", "blockdev-snapshot-internal-sync",
                   "block-dirty-bitmap-add", "block-dirty-bitmap-remove",
                   "block-dirty-bitmap-clear", "block-dirty-bitmap-enable",
                   "block-dirty-bitmap-disable", "block-dirty-bitmap-merge"}


@command("transaction")
def cmd_transaction(daemon: Any, args: dict) -> dict:
    mode = args.get("properties", {}).get("completion-mode", "individual")
    daemon.jobs.drain_all()     # qmp_transaction: "drain all i/o before any operations"
    tx = Transaction()
    commits: list[Callable[[], None]] = []
    cleans: list[Callable[[], None]] = []
    # The job helper's actions see the group through this attribute.
    daemon.transaction_mode = mode
    # qmp_transaction: with completion-mode grouped, the jobs the actions
    # create share one JobTxn (they finalize, or are cancelled, together).
    daemon.jobs.group = JobTxn() if mode == "grouped" else None
    try:
        for act in args["actions"]:
            kind = act["type"]
            if kind in INDIVIDUAL_ONLY and mode != "individual":
                raise BlockError.of("transaction.completion-mode-unsupported", kind=kind,
                                    mode=mode)
            prep = ACTIONS.get(kind)
            if prep is None:
                raise BlockError.of("transaction.action-not-supported", kind=kind)
            c = prep(daemon, act["data"], tx)
            if isinstance(c, Phases):
                commits.append(c.commit)
                cleans.append(c.clean)
            elif c is not None:
                commits.append(c)
    except BaseException:
        tx.abort()
        raise
    finally:
        daemon.transaction_mode = None
        daemon.jobs.group = None
    tx.commit()
    # qmp_transaction: every action's commit, then every action's clean.
    if daemon.profile.transaction_commits_newest_first:
        commits.reverse()
        cleans.reverse()
    for c in commits + cleans:
        c()
    return {}
