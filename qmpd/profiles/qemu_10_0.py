"""QEMU 10.0 (Debian 13's 1:10.0.2+ds, and what current distributions ship).

Its schema is ``schema/10.0/`` (imported from 10.0's QAPI), and it differs
from 7.2 in these mechanisms, each found in 10.0's sources:

* every node has an activation state (``blockdev-set-active``, block.c's
  ``BDRV_O_INACTIVE``), which ``query-named-block-nodes`` / ``query-block``
  report as ``active`` (block/qapi.c ``bdrv_block_device_info``);
* the ``file`` protocol driver reports ``format-specific`` (file-posix.c's
  ``raw_get_specific_info``: ``{"type": "file", "data": {}}`` where the file
  system gives no extent size hint);
* a negative size option (QemuOpts ``QEMU_OPT_SIZE``) fails in ``parse_uint``
  with ERANGE, so ``parse_option_size`` says "Value '-1' is out of range ..."
  instead of 7.2's "expects a non-negative number below 2^64";
* a node's length is cached (``bs->total_sectors``) unless a host device
  below it has variable length (block/io.c ``bdrv_refresh_limits``): raw and
  the filters no longer follow a child resized under them, and a reopen
  refreshes the reopened node's length at commit (block.c ``bdrv_reopen_commit``);
* ``transaction``'s group-completion error says "transaction property";
* ``device_add`` visits a JSON command's properties with the QObject input
  visitor (qdev_device_add_from_qdict with from_json): a property's JSON type
  must match its QAPI type, and ``id`` is not checked as an identifier;
* ``block_resize`` checks the node's users through ``bdrv_op_is_blocked``
  with BLOCK_OP_TYPE_RESIZE ("Node 'X' is busy: ...");
* backup's copy-before-write filter holds block-copy's bitmap itself
  (cbw_open passes its own node to block_copy_state_new) and always takes
  consistent-read on its source while it has users (cbw_child_perm);
* qemu-io's help lists ``-r`` on the buffer commands and the ``zone_*``
  commands, and ``info`` prints its "Format specific information:" line
  through ``bdrv_image_info_specific_dump`` (the monitor, under HMP);
* HMP ``qemu-io``'s temporary BlockBackend drains its node twice when it
  is inserted and twice when it goes (the graph write lock drains too);
* ``transaction`` runs its actions' commit and clean callbacks newest first
  (util/transactions.c ``tran_add`` inserts at the head): backups of one
  transaction start in the reverse order;
* query-blockstats' BlockDeviceStats has the ``zone_append_*`` members;
* nbd-server-stop deletes its exports newest first (BLOCK_EXPORT_DELETED in
  that order; 7.2 deleted them oldest first);
* mirror's job info has ``actively-synced``, and its dirty bitmap lives on
  the mirror_top filter, disabled: only writes through the filter are mirrored
  (block/mirror.c ``bdrv_mirror_top_do_write``);
"""

from __future__ import annotations

from qmpd.profiles.base import Profile
from qmpd.profiles.messages import BASE
from qmpd.profiles.qemu_10_0_io import QEMU_IO_HELP


class Qemu100(Profile):
    series = "10.0"
    schema_dir = "10.0"
    node_activation = True
    file_format_specific = {"type": "file", "data": {}}
    mirror_reports_actively_synced = True
    mirror_bitmap_on_filter = True
    ratelimit_sleep_rechecks = True
    scsi_hotplug_context_best_effort = True
    driver_lengths_vary = False
    block_copy_bitmap_on_filter = True
    cbw_always_reads_source = True
    reopen_refreshes_length = True
    blockstats_zone_append = True
    nbd_stop_newest_first = True
    reopen_refresh_list_prepended = True
    qemu_io_help = QEMU_IO_HELP
    qemu_io_dump_prefix_on_monitor = True
    device_props_typed = True
    transaction_commits_newest_first = True
    qemu_io_drains_before = 2
    stream_drains = None
    messages = {
        **BASE,
        # 8.0's parse_uint rejects a leading '-' with ERANGE, which
        # parse_option_size reports as out of range.
        "option.parameter-expects-non-negative-number":
            "Value '{value}' is out of range for parameter '{name}'",
        # qmp_block_resize hands bdrv_op_is_blocked its errp since 8.2.
        "resize.device-in-use": "Node '{node}' is busy: node is used as backing hd of '{parent}'",
        "transaction.completion-mode-unsupported":
            "Action '{kind}' does not support transaction property completion-mode = {mode}",
    }


PROFILE = Qemu100
