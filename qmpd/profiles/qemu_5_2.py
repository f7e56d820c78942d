"""QEMU 5.2 (Debian 11's 1:5.2+dfsg-11): the last release with ``x-blockdev-reopen``.

What 5.2 says and does differently from the baseline (7.2), measured against
the real 5.2 (corpus ``tests/data/*/qemu-5.2/``) and traced to its sources:

* schema ``schema/5.2/`` (its own QAPI): ``x-blockdev-reopen`` takes one
  BlockdevOptions; there is no ``blockdev-reopen`` (CommandNotFound: the
  dispatcher offers only the schema's commands); ``block-stream`` has no
  ``filter-node-name``; ``object-add`` is ``'gen': false``; ``drive-mirror``
  and ``drive-backup`` are there (not yet deprecated); qcow2 compression is
  zlib only (Debian 11 built without zstd); ``query-qmp-schema`` lists an
  enum's ``values`` only;
* its queries: BlockDeviceInfo's ``encryption_key_missing``, BlockDirtyInfo's
  ``status``, the ``graph-mod`` permission;
* its qemu-io: ``truncate`` takes only the offset, and sizes are parsed with
  strtod (a negative one is "argument too large");
* query-blockstats: a device's BlockBackend has ``account_invalid`` and
  ``account_failed`` off (block_acct_init left them unset; only -drive's
  ``stats-account-*`` set them); an export goes in a bottom half after the
  reply to block-export-del / nbd-server-remove, so BLOCK_EXPORT_DELETED
  follows the reply;
* its texts: :data:`MESSAGES` for situations the engine raises by key, and
  :data:`REWORDINGS` for the texts that reach the profile as finished strings
  (QAPI visitor and lookup texts that read the same everywhere they occur);
* its block jobs (blockjob.c, block/mirror.c, block/backup*.c, block/stream.c
  of 5.2): the ``graph-mod`` permission taken where 5.2 takes it; every job's
  own BlockBackend on its main node, kept until the job is freed (and with it
  mirror_top, put back under it); mirror_top passing on only writes;
  ``backup-top`` over a ``backing`` child, copying a cluster at a time;
  ``bdrv_replace_node`` leaving the replaced node's permissions as they were;
  ``complete`` only on a ready job with no pause pending; a resumed job left
  in its timed sleep; a block job's error told by its errno; a
  ``drive-backup`` that fails before its target is open leaving its source
  drained for good (drive_backup_prepare set state->bs too late);
* its file-posix reopen: a reopen that detaches a backing node closes the
  descriptor of the queued file nodes below it (their ``actual-size`` goes);
* its semantics, as the switches below that the engine and commands read.

Where 5.2 itself hangs or crashes (a ``backing`` reference to the node being
added, ``ops-snapshot``'s abort, iothread moves), qmpd answers as 7.2 does:
those steps stay in ``tests/conformance/known_differences-5.2.json``.
"""

from __future__ import annotations

import re

from qmpd.profiles.base import Profile, Text
from qmpd.profiles.messages import BASE

MESSAGES: dict[str, str] = {
    **BASE,
    # qapi/string-input-visitor.c parse_type_size (qemu_strtosz's words before 6.0)
    "qdev.parameter-expects-size": "Parameter '{name}' expects a non-negative number below 2^64",
    # blockdev.c block-stream / block-commit
    "stream.find-backing-chain": "Base '{base}' not found",
    # block.c bdrv_assign_node_name
    "node.invalid-node-name": "Invalid node name",
    "node.duplicate-nodes-node-name": "Duplicate node name",
    # blockdev.c qmp_blockdev_del
    "del.node-not-found": "Cannot find node {name}",
    # blockdev.c qmp_x_blockdev_reopen
    "reopen.node-name-not-specified": "Node name not specified",
    "reopen.node-not-found": "Cannot find node named '{name}'",
    # block.c bdrv_reopen_parse_backing (only backing can change before 6.0)
    "node.making-child-would-create-cycle": "Making '{child}' a backing file of '{parent}' "
                                            "would create a cycle",
    "reopen.cannot-replace-implicit-child": "Cannot change backing link if '{node}' has an "
                                            "implicit backing file",
    # block.c bdrv_is_backing_chain_frozen
    "reopen.cannot-change-frozen-link": "Cannot change '{name}' link from '{node}' to "
                                        "'{child}'",
    # block.c bdrv_check_perm
    "node.read-block-node-cannot-support": "Cannot make block node read-only, there is a "
                                           "writer on it",
    # block/raw-format.c printed the fields of the state being filled in (a
    # fresh, zeroed one on open and on reopen), not the requested values
    "raw.offset-cannot-greater-size-containing": "Offset (0) cannot be greater than size of "
                                                 "the containing file ({real})",
    "raw.sum-offset-size-smaller-equal": "The sum of offset (0) and size (0) has to be smaller "
                                         "or equal to the  actual size of the containing file "
                                         "({real})",
    # block.c check_to_replace_node
    "mirror.replaces-node-not-found": "Node name '{name}' not found",
    # block/dirty-bitmap.c bdrv_merge_dirty_bitmap (hbitmap_can_merge)
    "bitmap.merge-different-sizes": "Bitmaps are incompatible and can't be merged",
    # blockdev.c qmp_x_blockdev_set_iothread
    "node.failed-find-node-node-name": "Cannot find node {name}",
    # hw/pci/pci.c do_pci_register_device: the device's name only
    "pci.pci-slot-function-not-available": "PCI: slot {slot} function {function} not "
                                           "available for {driver}, in use by {name}",
    # qapi/string-input-visitor.c parse_type_int64 / parse_type_uint64 (7.2
    # parses with qemu_strtoi64 / qemu_strtou64 and says "integer")
    "qdev.parameter-expects-integer": "Parameter '{name}' expects {visitor_type}",
    # util/qemu-option.c qemu_opts_create: device_add's options carry the id
    "qdev.duplicate-device-id": "Duplicate ID '{dev_id}' for device",
    # util/qemu-option.c parse_option_size
    "option.parameter-expects-non-negative-number": "Value '{value}' is out of range for "
                                                    "parameter '{name}'",
    # block.c bdrv_check_update_perm: the pre-6.0 texts ("newcomer" conflicts)
}

# (pattern, replacement): the 7.2 wording of a finished text and its 5.2 one.
# Only texts that read the same wherever they occur belong here.
REWORDINGS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p), r) for p, r in (
        # block.c bdrv_lookup_bs: 5.2 prints the names bare
        (r"Cannot find device='([^']*)' nor node-name='([^']*)'",
         r"Cannot find device=\1 nor node_name=\2"),
        # qapi/qobject-input-visitor.c: an enum value the type does not have
        (r"^Parameter '[^']*' does not accept value '(.*)'$", r"Invalid parameter '\1'"),
        # blockdev.c external snapshots
        (r"^New overlay node-name (missing|already in use)$", r"New overlay node name \1"),
        # block/mirror.c
        (r"^Parameter 'granularity' expects a power of 2$",
         "Parameter 'granularity' expects power of 2"),
    )
)


class Qemu52(Profile):
    series = "5.2"
    schema_dir = "5.2"
    messages = MESSAGES
    block_device_info_extras = {"encryption_key_missing": False}
    reopen_replaces_file = False
    perm_conflicts = "newcomer"
    graph_mod_perm = True
    job_main_backend = True
    mirror_top_forwards_writes_only = True
    replace_node_refreshes_old = False
    unref_child_refreshes_old = True
    short_layer_allocated = False
    complete_refuses_paused = True
    # job.c JobVerbTable: complete on a ready job only (6.1 allowed standby)
    job_verbs = {"complete": ("ready",)}
    backup_filter_is_backup_top = True
    backup_copies_by_cluster = True
    block_job_error_strerror = True
    stream_inserts_filter = False
    job_pause_wakes = False
    # 5.2 has no JSON -device: '{"driver":...' is the driver's name.
    device_option_json = False
    warns_short_form_booleans = False
    introspect_enum_members = False
    bitmap_status_member = True
    # qemu-io-cmds.c before 5.1: truncate_cmd has argmin = argmax = 1, no -m
    qemu_io_truncate_prealloc = False
    strtosz_negative_erange = True
    qemu_io_help = {"truncate": ("t", "off", "truncates the current file at the given offset",
                                 "")}
    reopen_forgets_absent_children = False
    raw_trims_child_perms = False
    device_blk_accounting = False
    export_deleted_after_reply = True
    drive_backup_leaks_drain = True
    reopen_detach_closes_queued_fds = True

    def render(self, text: Text) -> str:
        out = super().render(text)
        for pat, repl in REWORDINGS:
            out, n = pat.subn(repl, out, count=1)
            if n:
                break
        return out


PROFILE = Qemu52
