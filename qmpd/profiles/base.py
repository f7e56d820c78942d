"""The shape of a profile, and of a message raised by key.

A :class:`Message` is what a layer below the commands raises instead of a
finished text: a key naming the situation and the parameters that go into
the text.  A :class:`Profile` renders it in its release's words.  The
baseline words (:data:`qmpd.profiles.messages.BASE`, QEMU 7.2's) are what a
release uses unless its profile says otherwise.

>>> from qmpd.profiles.messages import BASE
>>> m = Message("job.id-in-use", id="j0")
>>> m.text()
"Job ID 'j0' already in use"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from qmpd.profiles import messages as _messages


class Message:
    """An error text to be rendered by the release's profile: ``key`` + ``params``."""

    __slots__ = ("key", "params")

    def __init__(self, key: str, /, **params: Any) -> None:
        self.key = key
        self.params = params

    def text(self, table: Mapping[str, str] = _messages.BASE) -> str:
        """This message in ``table``'s words (the baseline's by default)."""
        return table[self.key].format(**self.params)

    def __repr__(self) -> str:
        return f"Message({self.key!r}, **{self.params!r})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Message)
                and (self.key, self.params) == (other.key, other.params))

    __hash__ = None  # type: ignore[assignment]


# Something a layer says to the client: a message by key, or a text that no
# release words differently (a qmpd-only text, or one QEMU builds from user input).
Text = Message | str


class Profile:
    """One QEMU release series: subclass per series, override what differs.

    Class attributes are the release's data; methods are its hooks.  An
    instance is one exact version of the series (what the greeting and
    ``query-version`` report).
    """

    #: "7.2": the series this profile answers as.
    series: ClassVar[str] = ""
    #: Folder under ``schema/`` with this release's QAPI as JSON Schema.
    schema_dir: ClassVar[str] = ""
    #: Message key -> text template (str.format fields named as the params).
    messages: ClassVar[Mapping[str, str]] = _messages.BASE

    # -- semantic switches (the baseline, 7.2's, here; a release overrides) --------
    #: Nodes have an activation state (``blockdev-set-active``, BDRV_O_INACTIVE)
    #: that BlockDeviceInfo reports as ``active``.
    node_activation: ClassVar[bool] = False
    #: ``format-specific`` of a ``file`` node's ImageInfo (file-posix's
    #: ``bdrv_get_specific_info``), or None where the driver has none.
    file_format_specific: ClassVar[dict[str, Any] | None] = None
    #: Drivers marked ``variable_length`` (raw, copy-on-read, ...) ask their
    #: child for the length on every bdrv_getlength; else every node keeps the
    #: length it had at open or at its own last resize (10.0: has_variable_length
    #: is a block limit only host devices set).
    driver_lengths_vary: ClassVar[bool] = True
    #: A reopened node asks its driver for its length again at commit.
    reopen_refreshes_length: ClassVar[bool] = False
    #: bdrv_is_allocated_above: a layer below the top that ends before the
    #: offset holds the zeroes read there (6.0+: allocated), or answers
    #: nothing (before: the layers further down decide).
    short_layer_allocated: ClassVar[bool] = True
    #: A mirror job's dirty bitmap sits on its mirror_top filter, disabled, and
    #: the filter marks the writes passing through it (else: an enabled bitmap
    #: on the source, which every write to the source marks).
    mirror_bitmap_on_filter: ClassVar[bool] = False
    #: block-copy's copy bitmap (backup) is created on the copy-before-write
    #: filter (else on the source node).
    block_copy_bitmap_on_filter: ClassVar[bool] = False
    #: copy-before-write takes consistent-read on its source whenever it has
    #: users (else only when they write).
    cbw_always_reads_source: ClassVar[bool] = False
    #: A mirror job's BlockJobInfo carries ``actively-synced``.
    mirror_reports_actively_synced: ClassVar[bool] = False
    #: ``device_add`` from JSON sets properties through the QObject input
    #: visitor (typed JSON values, ids unchecked) rather than QemuOpts strings.
    device_props_typed: ClassVar[bool] = False
    #: A ``-device`` option written as JSON is a typed device_add
    #: (qdev_device_add_from_qdict from JSON, since 6.2); else it is read as
    #: QemuOpts text like any other ``-device``.
    device_option_json: ClassVar[bool] = True
    #: QemuOpts warns about short-form booleans (``ro`` for ``ro=on``, 6.0's
    #: deprecation); 5.2 takes them silently.
    warns_short_form_booleans: ClassVar[bool] = True
    #: ``transaction`` runs its actions' commit (and then clean) callbacks
    #: newest action first (util/transactions.c: tran_add inserts at the head),
    #: rather than in the order of the actions (7.2's QTAILQ walk): two
    #: backups in one transaction start in the reverse order.
    transaction_commits_newest_first: ClassVar[bool] = False
    #: How many drained sections over the node HMP ``qemu-io``'s temporary
    #: BlockBackend makes before its command runs, and after it: 5.2's and
    #: 7.2's blk_insert_bs drains nothing, and the BlockBackend goes with two
    #: (blk_unref's blk_drain, then blk_remove_bs's), both after the write;
    #: 10.0 drains under the graph write lock too (bdrv_graph_wrlock), so a
    #: job there pauses and resumes twice on each side.
    qemu_io_drains_before: ClassVar[int] = 0
    qemu_io_drains_after: ClassVar[int] = 2
    #: The drained sections over a stream's top node (with its copy-on-read
    #: filter) that other jobs there see, as pause/resume pairs: when the
    #: filter goes in (block_stream: bdrv_insert_node), and when the job
    #: completes (measured on 7.2: the filter dropped, the backing link
    #: changed, the job's BlockBackend removed, one more in finalization; a
    #: read-only top reopened read-only again adds its own).  None: the
    #: release's are not modelled (10.0's graph write lock drains everything
    #: many times over), so the stream drains nothing.
    stream_drains: ClassVar[tuple[int, int] | None] = (1, 4)

    #: qemu-io's help rows the release adds or words differently from 7.2's
    #: table (qmpd.img.qemu_io_help): name -> (altname, args, summary, extended help).
    qemu_io_help: ClassVar[Mapping[str, tuple[str | None, str, str, str]]] = {}
    #: qemu-io ``info`` prints "Format specific information:" with qemu_printf
    #: (the monitor, under HMP) rather than on stdout.
    qemu_io_dump_prefix_on_monitor: ClassVar[bool] = False
    #: qemu-io's ``truncate`` takes ``-m prealloc_mode`` (5.1+); without it
    #: the offset is the only argument (its help row says so too).
    qemu_io_truncate_prealloc: ClassVar[bool] = True
    #: qemu_strtosz parses with strtod (before 6.0): a negative size is out
    #: of range (ERANGE) rather than not a number (qemu-io: "argument too large").
    strtosz_negative_erange: ClassVar[bool] = False

    # -- switches of releases before 6.0 (5.2) ---------------------------------
    #: query-qmp-schema's enums carry ``members`` (SchemaInfoEnumMember, with
    #: per-value features) beside ``values``; 5.2's have ``values`` only.
    introspect_enum_members: ClassVar[bool] = True
    #: BlockDirtyInfo still carries the deprecated ``status`` (active,
    #: disabled, frozen, locked, inconsistent), removed in 6.0.
    bitmap_status_member: ClassVar[bool] = False
    #: Fields of BlockDeviceInfo the release has and 7.2 dropped, with their
    #: constant values; they follow ``encrypted`` (query-named-block-nodes,
    #: query-block).
    block_device_info_extras: ClassVar[Mapping[str, Any]] = {}
    #: Whether a reopen may give a node a new ``file`` child by reference
    #: (6.0+).  Without it ``file`` must name the current child, or the
    #: option counts as changed ("Cannot change the option 'file'").
    reopen_replaces_file: ClassVar[bool] = True
    #: How a permission conflict among a node's parents is found and told:
    #: "pairwise" (6.0+: every pair of parents, "Permission conflict on
    #: node ...") or "newcomer" (before 6.0: the newest user against each
    #: other parent, "Conflicts with use by ...").
    perm_conflicts: ClassVar[str] = "pairwise"
    #: The release has BLK_PERM_GRAPH_MOD (before 6.1): users that change
    #: the graph take it, the others share it, and x-debug-query-block-graph
    #: lists it (qmpd.engine.perms computes it always; without it nobody
    #: takes it and no list shows it).
    graph_mod_perm: ClassVar[bool] = False
    #: Every block job holds a BlockBackend of its own on its main node with
    #: the job's permissions (block_job_create before 6.0: blk_new_with_bs,
    #: an unnamed block-backend parent), its "main node" link taking nothing
    #: and sharing everything; else (6.0+) that link carries the permissions.
    job_main_backend: ClassVar[bool] = False
    #: The mirror_top filter (mirror and active commit) takes from its child
    #: only the write its users need and shares everything (before 6.0), or
    #: passes permissions on as a filter does (an active commit's needing no
    #: consistent read and sharing write).
    mirror_top_forwards_writes_only: ClassVar[bool] = False
    #: bdrv_replace_node refreshes the permissions of the node it replaced
    #: (6.0+); before, only the new node's (and so of what is below it), and
    #: the old node keeps asking its children for what its old parents
    #: needed (a mirror's source after the pivot holds its image's write).
    replace_node_refreshes_old: ClassVar[bool] = True
    #: A backing child that bdrv_set_backing_hd lets go of has its
    #: permissions refreshed (bdrv_unref_child -> bdrv_replace_child, before
    #: 6.0); 6.0+'s bdrv_remove_child leaves them as they were.
    unref_child_refreshes_old: ClassVar[bool] = False
    #: job_complete refuses a job with pauses pending (job->pause_count:
    #: job-pause, a drained section), before 6.0: "cannot be completed".
    complete_refuses_paused: ClassVar[bool] = False
    #: Job verbs whose states (JobVerbTable) differ from 7.2's: verb -> the
    #: statuses that accept it.
    job_verbs: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: A backup's filter is ``backup-top`` with the source as its backing
    #: child and no bitmaps of its own (before 6.0), not ``copy-before-write``
    #: with a ``file`` child.
    backup_filter_is_backup_top: ClassVar[bool] = False
    #: A backup copies cluster by cluster, with a (rate-limit) sleep before
    #: each (backup_loop before 6.0), rather than block-copy's tasks of up
    #: to 1 MiB: its progress moves a cluster at a time.
    backup_copies_by_cluster: ClassVar[bool] = False
    #: BLOCK_JOB_COMPLETED's and query-block-jobs' error is strerror of the
    #: job's return value (before 6.0), not its message (query-jobs has that).
    block_job_error_strerror: ClassVar[bool] = False
    #: drive-backup's transaction action drains its source and ends the
    #: section in .clean only once state->bs is set, which 5.2's
    #: drive_backup_prepare did after the target was open: any error before
    #: (a busy source, the image not made or not opened) leaves the source
    #: drained for good -- a job there stays paused, I/O to it waits.  6.0+
    #: sets state->bs before it drains.
    drive_backup_leaks_drain: ClassVar[bool] = False
    #: A reopen that detaches a backing node closes the descriptor of every
    #: queued file node in that node's subtree (before 6.0: file-posix's
    #: perm_change_fd closed by the abort of the detached node's permission
    #: update, after the file node's commit had made it its own): fstat on
    #: the node fails from then on, so it shows no ``actual-size``.
    reopen_detach_closes_queued_fds: ClassVar[bool] = False
    #: Whether block-stream puts a copy-on-read filter node above the active
    #: node (6.0+, ``filter-node-name``), or turns copy-on-read on in the
    #: active node itself, under the job's own BlockBackend (before).
    stream_inserts_filter: ClassVar[bool] = True
    #: After a reopen, whether ``backing`` (and ``file``) leave the node's
    #: options even when no such child is left (6.0+).  Before, only the
    #: names of the children present and a link the reopen changed went: a
    #: ``"backing": null`` given again to a node without backing stayed, and
    #: a later reopen that leaves ``backing`` out fails with "Option 'backing'
    #: cannot be reset to its default value".
    reopen_forgets_absent_children: ClassVar[bool] = True
    #: Whether pausing a job (job-pause, a drained section) wakes it from a
    #: rate-limit sleep to pause at once (6.0+), or lets it pause when the
    #: sleep ends (before: its status stays "running", "paused" true).
    job_pause_wakes: ClassVar[bool] = True
    #: After a rate-limited step, whether the job sleeps again when woken
    #: early (a speed change, a pause, a drain) until the limit, computed
    #: anew at the current speed, allows more (block_job_ratelimit_sleep,
    #: 8.0+), or goes on at once (one job_sleep_ns of the delay, before).
    ratelimit_sleep_rechecks: ClassVar[bool] = False
    #: virtio_scsi_hotplug moves a new disk only into an iothread
    #: controller's context and ignores a failure (the disk then works from
    #: another context), rather than moving it into the controller's context,
    #: iothread or main, and failing the device_add when it cannot.
    scsi_hotplug_context_best_effort: ClassVar[bool] = False
    #: raw (with an offset or size: a data child) asks its child for WRITE
    #: and RESIZE only when a parent needs them (raw_child_perm, 6.0+), or
    #: takes the storage defaults (bdrv_default_perms: WRITE_UNCHANGED from a
    #: parent brings WRITE and RESIZE).
    raw_trims_child_perms: ClassVar[bool] = True
    #: A reopen refreshes permissions from its queued nodes (and their old
    #: children) taken newest first -- the list is built by prepending and
    #: only then sorted (bdrv_list_refresh_perms, 8.0+) -- or in queue order
    #: (7.2 sorts while it walks the queue).  With two independent nodes
    #: that both fail, this picks which one the error names.
    # BlockDeviceStats has the zone_append_* members (QEMU 8.0's zoned devices).
    blockstats_zone_append: ClassVar[bool] = False
    # A device's BlockBackend counts failed and invalid requests in its times
    # (block_acct_init sets both; before 7.1 only -drive's stats-account-* did).
    device_blk_accounting: ClassVar[bool] = True
    # Export deletion (block-export-del, nbd-server-remove) finishes after the
    # command's reply: BLOCK_EXPORT_DELETED follows it (5.2's bottom half).
    export_deleted_after_reply: ClassVar[bool] = False
    # nbd-server-stop removes its exports newest first (10.0), else oldest first.
    nbd_stop_newest_first: ClassVar[bool] = False
    reopen_refresh_list_prepended: ClassVar[bool] = False

    def __init__(self, version: tuple[int, int, int]) -> None:
        self.version = version

    def render(self, text: Text) -> str:
        """``text`` in this release's words."""
        if isinstance(text, str):
            return text
        return text.text(self.messages)

    def render_all(self, parts: tuple[Text, ...]) -> str:
        """Several parts joined, as QEMU's ``error_prepend`` builds one text."""
        return "".join(self.render(p) for p in parts)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} QEMU {'.'.join(map(str, self.version))}>"
