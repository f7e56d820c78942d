"""The baseline message table: each message key's text in QEMU 7.2's words.

A release whose words differ overrides single keys in its profile's
``messages`` (``{**BASE, "key": "its text"}``); everything it does not
override reads as here.  Templates use ``str.format`` fields named like the
:class:`~qmpd.profiles.base.Message` parameters.

Keys are grouped by the part of QEMU that says them (``job.``, ``reopen.``,
``node.`` ...), so a reader can find a release's wording of one situation in
one place.
"""

from __future__ import annotations

BASE: dict[str, str] = {
    # job.c / blockjob.c
    "job.id-in-use": "Job ID '{id}' already in use",
    "job.id-invalid": "Invalid job ID '{id}'",
    # blockjob.c block_job_change_locked (block-job-change is 10.0's; 7.2 has
    # no such command, so 7.2 never says it)
    "job.change-unsupported": "Job type does not support change",
    "job.copy-mode-change-unimplemented": "Change to copy mode '{mode}' is not implemented",
    "job.verb-not-allowed": "Job '{id}' in state '{status}' cannot accept command verb '{verb}'",
    "job.not-found": "Job not found",
    "job.block-job-not-found": "Block job '{jid}' not found",
    "job.speed-negative": "Parameter 'speed' expects a non-negative value",
    "job.already-paused": "Job is already paused",
    "job.resume-not-paused": "Can't resume a job that was not paused",
    "job.cannot-complete": "The active block job '{id}' cannot be completed",
    "job.device-job-paused": "The block job for device '{device}' is currently paused",
    "job.clock-not-virtual": "The job clock is not virtual (start qmpd with --clock virtual)",
    "job.ns-negative": "Parameter 'ns' expects a non-negative value",
    # block.c: opening, naming, linking and deleting nodes, permissions
    "node.node-name-conflicting-device-id": "node-name={name} is conflicting with a device id",
    "node.duplicate-nodes-node-name": "Duplicate nodes with node-name='{name}'",
    "node.node-name-too-long": "Node name too long",
    "node.node-name-must-specified-root": "'node-name' must be specified for the root node",
    "node.force-share-used-read-images": "force-share=on can only be used with read-only images",
    "node.setting-detect-zeroes-unmap-not": "setting detect-zeroes to unmap is not allowed "
        "without setting discard operation to unmap",
    "node.block-device-must-specified-file": 'A block device must be specified for "file"',
    "node.cannot-use-relative-backing-file": "Cannot use relative backing file names for "
        "'{backed}'",
    "node.making-child-would-create-cycle": "Making '{child}' a {name} child of '{parent}' "
        "would create a cycle",
    "node.failed-find-node-node-name": "Failed to find node with node-name='{name}'",
    # ... the same situation in blockdev-del and x-blockdev-reopen, which
    # releases before 6.0 worded differently
    "del.node-not-found": "Failed to find node with node-name='{name}'",
    "reopen.node-not-found": "Failed to find node with node-name='{name}'",
    "node.node-not-owned-monitor": "Node {name} is not owned by the monitor",
    "node.block-device-in-use": "Block device {name} is in use",
    "node.invalid-node-name": "Invalid node-name: '{name}'",
    "node.cannot-reference-existing-block-device": "Cannot reference an existing block "
        "device with additional options or a new filename",
    "node.cannot-find-device-nor-node": "Cannot find device='{reference}' nor "
        "node-name='{reference}'",
    "node.driver-not-supported-qmpd": "Driver '{drvname}' is not supported by qmpd",
    "node.specify-file-filename-options-same": "Can't specify 'file' and 'filename' options "
        "at the same time",
    "node.block-device-must-specified": 'A block device must be specified for "{key}"',
    "node.backing-open-failed-prefix": "Could not open backing file: ",
    "node.read-block-node-cannot-support": "Read-only block node '{node}' cannot support "
        "read-write users",
    "node.in-use": "Node {name} is in use",
    "node.node-busy-block-device-use": "Node '{name}' is busy: block device is in use by "
        "block job: {job}",
    "node.node-busy-node-used-backing": "Node '{name}' is busy: node is used as backing hd "
        "of '{parent}'",
    "node.allowed-filename-driver": "The only allowed filename for this driver is '{drv}://'",
    "node.read-only": "Block node is read-only",
    "node.permission-conflict": "Permission conflict on node '{node}': permissions '{bad}' "
        "are both required by {required_by} (uses node '{node}' as '{required_as}' child) and "
        "unshared by {unshared_by} (uses node '{node}' as '{unshared_as}' child).",
    # ... as a release before 6.0 finds and tells it (perm_conflicts "newcomer"):
    # the user already there, and the permissions the newcomer wants or it holds.
    # 7.2 never raises them: they keep 7.2's table complete.
    "node.conflicts-with-use-denied": "Conflicts with use by {user} as '{role}', which does "
        "not allow '{perms}' on {name}",
    "node.conflicts-with-use-used": "Conflicts with use by {user} as '{role}', which uses "
        "'{perms}' on {name}",
    "node.not-found": "Node '{name}' not found",
    "node.device-nor-node-not-found": "Cannot find device='{device}' nor node-name='{node}'",
    "node.cannot-change-link": "Cannot change '{edge}' link to '{old}'",
    "node.cannot-change-link-from": "Cannot change '{edge}' link from '{node}' to '{child}'",
    "node.cannot-freeze-link": "Cannot freeze '{edge}' link to '{child}'",
    "node.backing-child-would-create-cycle": "Making '{top}' a backing child of '{new}' would "
        "create a cycle",
    # block/file-posix.c
    "file.lock-failed": 'Failed to get "{perm}" lock',
    "file.shared-lock-failed": 'Failed to get shared "{perm}" lock',
    "file.aio-native-specified-requires-cache": "aio=native was specified, but it requires "
        "cache.direct=on, which was not specified.",
    "file.file-driver-requires-either-regular": "'file' driver requires '{path}' to be "
        "either a regular file or a block device",
    "file.could-not-open": "Could not open '{path}': {error}",
    # util/qemu-option.c: QemuOpts values of driver options
    "option.parameter-expects-non-negative-number": "Parameter '{name}' expects a "
        "non-negative number below 2^64",
    # block/blkdebug.c
    "blkdebug.cannot-meet-constraints-align": "Cannot meet constraints with align {align}",
    "blkdebug.cannot-meet-constraints": "Cannot meet constraints with {key} {v}",
    "blkdebug.could-not-read-blkdebug-config": "Could not read blkdebug config file: {error}",
    # block/filter-compress.c
    "compress.compression-not-supported-underlying-format": "Compression is not supported "
        "for underlying format: {driver}",
    # block/copy-on-read.c
    "copy-on-read.bottom-node-not-found": "Bottom node '{bottom}' not found",
    "copy-on-read.bottom-node-not-backing-chain": "Bottom node '{bottom}' is not in the "
        "backing chain starting from '{node}'",
    # block/null.c
    "null.latency-ns-invalid": "latency-ns is invalid",
    # block/preallocate.c
    "preallocate.prealloc-align-parameter-preallocate-filter": "prealloc-align parameter of "
        "preallocate filter is not aligned to 512",
    # block/qcow2.c
    "qcow2.image-not-qcow2-format": "Image is not in qcow2 format",
    "qcow2.data-file-set-images-external": "'data-file' can only be set for images with an "
        "external data file",
    "qcow2.l2-cache-entry-size-must": "L2 cache entry size must be a power of two between "
        "{min} and the cluster size ({cluster_size})",
    "qcow2.l2-cache-size-too-big": "L2 cache size too big",
    "qcow2.refcount-cache-size-too-big": "Refcount cache size too big",
    "qcow2.cache-clean-interval-too-big": "Cache clean interval too big",
    "qcow2.lazy-refcounts-require-qcow2-image": "Lazy refcounts require a qcow2 image with "
        "at least qemu 1.1 compatibility level",
    "qcow2.conflicting-values-qcow2-options-overlap": "Conflicting values for qcow2 options "
        "'overlap-check' ('{overlap}') and 'overlap-check.template' ('{template}')",
    "qcow2.no-encryption-image-header-options": "No encryption in image header, but options "
        "specified format '{fmt}'",
    "qcow2.cache-size-l2-cache-size": "cache-size, l2-cache-size and refcount-cache-size may "
        "not be set at the same time",
    "qcow2.l2-cache-size-may-not": "l2-cache-size may not exceed cache-size",
    "qcow2.refcount-cache-size-may-not": "refcount-cache-size may not exceed cache-size",
    "qcow2.header-reported-encryption-format-options": "Header reported '{hdr_fmt}' "
        "encryption format but options specify '{fmt}'",
    # block/quorum.c
    "quorum.option-children-not-valid-array": "Option children is not a valid array",
    "quorum.number-provided-children-must-1": "Number of provided children must be 1 or more",
    "quorum.parameter-vote-threshold-expects-value": "Parameter 'vote-threshold' expects a "
        "value >= 1",
    "quorum.threshold-may-not-exceed-children": "threshold may not exceed children count",
    "quorum.could-not-refresh-total-sector": "Could not refresh total sector count: "
        "Input/output error",
    "quorum.blkverify-set-if-exactly-two": "blkverify=on can only be set if there are "
        "exactly two files and vote-threshold is 2",
    "quorum.rewrite-corrupted-cannot-used-blkverify": "rewrite-corrupted=on cannot be used "
        "with blkverify=on",
    # block/raw-format.c
    "raw.offset-cannot-greater-size-containing": "Offset ({offset}) cannot be greater than "
        "size of the containing file ({real})",
    "raw.sum-offset-size-smaller-equal": "The sum of offset ({offset}) and size ({size}) has "
        "to be smaller or equal to the  actual size of the containing file ({real})",
    "raw.specified-size-not-multiple-512": "Specified size is not multiple of 512",
    # block/throttle.c
    "throttle.throttle-group-does-not-exist": "Throttle group '{group}' does not exist",
    "throttle.please-specify-throttle-group": "Please specify a throttle group",
    # block/dirty-bitmap.c, block/qcow2-bitmap.c, block/monitor/bitmap-qmp-cmds.c
    "bitmap.dirty-bitmap-not-found": "Dirty bitmap '{name}' not found",
    "bitmap.merge-different-sizes": "Bitmaps are of different sizes (destination size is "
        "{dst}, source size is {src}) and can't be merged",
    "bitmap.bitmap-currently-use-another-operation": "Bitmap '{bitmap}' is currently in use "
        "by another operation and cannot be used",
    "bitmap.bitmap-readonly-cannot-modified": "Bitmap '{bitmap}' is readonly and cannot be "
        "modified",
    "bitmap.bitmap-inconsistent-cannot-used": "Bitmap '{bitmap}' is inconsistent and cannot "
        "be used",
    "bitmap.store-persistent-bitmaps-operation-not": "Can't store persistent bitmaps to "
        "{node}: Operation not supported",
    "bitmap.bitmap-already-exists": "Bitmap already exists: {name}",
    "bitmap.cannot-store-dirty-bitmaps-qcow2": "Cannot store dirty bitmaps in qcow2 v2 files",
    "bitmap.granularity-exceeds-maximum-bytes": "Granularity exceeds maximum ({max} bytes)",
    "bitmap.granularity-under-minimum-512-bytes": "Granularity is under minimum (512 bytes)",
    "bitmap.too-much-space-will-occupied": "Too much space will be occupied by the bitmap. "
        "Use larger granularity",
    "bitmap.name-length-exceeds-maximum-characters": "Name length exceeds maximum ({max} "
        "characters)",
    "bitmap.maximum-number-persistent-bitmaps-already": "Maximum number of persistent "
        "bitmaps is already reached",
    "bitmap.not-enough-space-bitmap-directory": "Not enough space in the bitmap directory",
    "bitmap.bitmap-name-cannot-empty": "Bitmap name cannot be empty",
    "bitmap.bitmap-name-too-long": "Bitmap name too long: {name}",
    "bitmap.cannot-create-successor-bitmap-already": "Cannot create a successor for a bitmap "
        "that already has one",
    "bitmap.persistent-failed-prefix": "Can't make bitmap '{name}' persistent in '{node}': ",
    "bitmap.granularity-must-power-2-least": "Granularity must be power of 2 and at least 512",
    # block.c: bdrv_reopen_prepare and friends
    "reopen.block-format-used-node-does": "Block format '{drv}' used by node '{node}' does "
        "not support reopening files",
    "reopen.option-cannot-reset-default-value": "Option '{key}' cannot be reset to its "
        "default value",
    "reopen.backing-missing": "backing is missing for '{node}'",
    "reopen.filter-node-does-not-support": "'{node}' is a {driver} filter node that does not "
        "support a {name} child",
    "reopen.cannot-change-frozen-link": "Cannot change frozen '{name}' link from '{node}' to "
        "'{child}'",
    "reopen.driver-node-does-not-support": "Driver '{driver}' of node '{node}' does not "
        "support backing files",
    "reopen.cannot-change-option": "Cannot change the option '{key}'",
    "reopen.cannot-find-device-nor-node": "Cannot find device='' nor node-name='{value}'",
    "reopen.cannot-replace-implicit-child": "Cannot replace implicit {name} child of {node}",
    "reopen.node-name-not-specified": "node-name not specified",
    "reopen.ro-copy-on-read": "Can't set node '{name}' to r/o with copy-on-read enabled",
    "reopen.cannot-set-file-child-format": "Cannot set file child to format node without "
        "file child",
    # block.c / blockdev.c: bdrv_co_truncate, qmp_block_resize
    "resize.image-size-cannot-negative": "Image size cannot be negative",
    "resize.image-read-only": "Image is read-only",
    "resize.new-size-must-multiple-512": "The new size must be a multiple of 512",
    "resize.resize-v2-image-snapshots": "Can't resize a v2 image which has snapshots",
    "resize.preallocation-used-shrinking-image": "Preallocation can't be used for shrinking "
        "an image",
    "resize.cannot-use-preallocation-shrinking-files": "Cannot use preallocation for "
        "shrinking files",
    "resize.unsupported-preallocation-mode-metadata": "Unsupported preallocation mode: metadata",
    "resize.cannot-resize-fixed-size-raw": "Cannot resize fixed-size raw disks",
    "resize.image-format-driver-does-not": "Image format driver does not support resize",
    "resize.offset-exceeds-maximum": "offset({size}) exceeds maximum({max})",
    "resize.size-not-positive": "Parameter 'size' expects a >0 size",
    "resize.device-in-use": "Device '{device}' is in use",
    # softmmu/qdev-monitor.c, blockdev.c: devices by id
    "device.not-found": "Device '{id}' not found",
    "device.node-associated-blockbackend-could-use": "Node {name} is associated with a "
        "BlockBackend and could be in use (use force=true to override this check)",
    "device.cannot-find-iothread": "Cannot find iothread {it}",
    # block/create.c, file-posix.c and qcow2.c creation
    "create.qmpd-cannot-create-images-file": "qmpd cannot create '{drv}' images (only file "
        "and qcow2)",
    "create.extent-size-hint-too-large": "Extent size hint is too large",
    "create.could-not-create": "Could not create '{path}': {error}",
    "create.preallocation-mode-unsupported-storage": "Preallocation mode '{prealloc}' "
        "unsupported for this storage",
    "create.image-size-must-multiple-512": "Image size must be a multiple of 512 bytes",
    "create.data-file-raw-requires-data": "data-file-raw requires data-file",
    "create.qmpd-cannot-create-qcow2-images": "qmpd cannot create qcow2 images with '{key}'",
    "create.preallocate-failed": "Could not preallocate new data: {error}",
    "create.write-zeroes-failed": "Could not write zeros for preallocation: {error}",
    # qom/object_interfaces.c, util/throttle.c, iothread.c
    "object.bps-iops-max-total-values": "bps/iops/max total values and read/write values "
        "cannot be used at the same time",
    "object.iops-size-requires-iops-value": "iops size requires an iops value to be set",
    "object.attempt-add-duplicate-property-object": "attempt to add duplicate property "
        "'{oid}' to object (type 'container')",
    "object.parameter-id-expects-identifier": "Parameter 'id' expects an identifier",
    "object.bps-iops-max-values-must": "bps/iops/max values must be within [0, {max}]",
    "object.burst-length-cannot-0": "the burst length cannot be 0",
    "object.burst-length-set-without-burst": "burst length set without burst rate",
    "object.burst-length-too-high-burst": "burst length too high for this burst rate",
    "object.bps-max-iops-max-require": "bps_max/iops_max require corresponding bps/iops values",
    "object.bps-max-iops-max-cannot": "bps_max/iops_max cannot be lower than bps/iops",
    "object.object-type-not-supported-qmpd": "object type '{qom_type}' is not supported by qmpd",
    "object.object-use-not-deleted": "object '{oid}' is in use, can not be deleted",
    "object.object-not-found": "object '{oid}' not found",
    "object.iothread-value-out-of-range": "{key} value must be in range [0, {max}]",
    "object.burst-length-out-of-range": "{key} value must be in the range [0, {max}]",
    # blockdev-nbd.c, block/export/export.c, nbd/server.c
    "export.nbd-server-already-running": "NBD server already running",
    "export.nbd-server-not-running": "NBD server not running",
    "export.invalid-block-export-id": "Invalid block export id",
    "export.block-export-id-already-use": "Block export id '{eid}' is already in use",
    "export.qmpd-does-not-support-exports": "qmpd does not support '{etype}' exports",
    "export.cannot-export-read-node-writable": "Cannot export read-only node as writable",
    "export.iothread-not-found": 'iothread "{iothread}" not found',
    "export.export-name-too-long": "export name '{name}' too long",
    "export.description-too-long": "description '{desc}' too long",
    "export.nbd-server-already-export-named": "NBD server already has export named '{name}'",
    "export.export-not-found": "Export '{eid}' is not found",
    "export.bitmap-not-found": "Bitmap '{item}' is not found",
    "export.enabled-bitmap-incompatible-readonly-export": "Enabled bitmap '{item}' "
        "incompatible with readonly export",
    # hw/pci/pci.c
    "pci.addr-invalid": "Property '{driver}.{name}' doesn't take value '{v}'",
    "pci.pci-no-slot-function-available": "PCI: no slot/function available for {driver}, all "
        "in use or reserved",
    "pci.pci-slot-function-not-available": "PCI: slot {slot} function {function} not "
        "available for {driver}, in use by {name},id={oid}",
    # softmmu/qdev-monitor.c, hw/core/qdev-properties*.c, hw/block
    "qdev.parameter-expects-off": "Parameter '{name}' expects 'on' or 'off'",
    "qdev.parameter-expects-integer": "Parameter '{name}' expects integer",
    "qdev.parameter-expects-size": "Parameter '{name}' expects size",
    "qdev.parameter-expects": "Parameter '{name}' expects {qname}",
    "qdev.parameter-driver-missing": "Parameter 'driver' is missing",
    "qdev.not-valid-device-model-name": "'{driver}' is not a valid device model name",
    "qdev.bus-does-not-support-hotplugging": "Bus '{bus_name}' does not support hotplugging",
    "qdev.drive-property-not-set": "drive property not set",
    "qdev.logical-block-size-physical-block": "logical_block_size > physical_block_size not "
        "supported",
    "qdev.min-io-size-must-multiple": "min_io_size must be a multiple of logical_block_size",
    "qdev.opt-io-size-must-multiple": "opt_io_size must be a multiple of logical_block_size",
    "qdev.duplicate-device-id": "Duplicate device ID '{dev_id}'",
    "qdev.bus-not-found": "Bus '{bus_path}' not found",
    "qdev.device-go-bus": "Device '{typename}' can't go on {found} bus",
    "qdev.no-bus-found-device": "No '{bus_type}' bus found for device '{typename}'",
    "qdev.property-not-found": "Property '{driver}.{key}' not found",
    "qdev.num-queues-property-must-larger": "num-queues property must be larger than 0",
    "qdev.parameter-does-not-accept-value": "Parameter '{key}' does not accept value '{v}'",
    "qdev.blocksize-out-of-range": "Property {device}.{key} doesn't take value {n} (minimum: "
        "{min}, maximum: {max})",
    "qdev.blocksize-not-power-of-2": "Property {device}.{key} doesn't take value '{n}', it's "
        "not a power of 2",
    "qdev.invalid-parameter-type-expected-iothread": "Invalid parameter type for '{key}', "
        "expected: iothread",
    "qdev.property-drive-find-value": "Property '{inner}.drive' can't find value '{v}'",
    # hw/scsi/scsi-bus.c
    "scsi.bad-scsi-channel-id": "bad scsi channel id: {channel}",
    "scsi.bad-scsi-device-id": "bad scsi device id: {sid}",
    "scsi.bad-scsi-device-lun": "bad scsi device lun: {lun}",
    "scsi.no-free-target": "no free target",
    "scsi.no-free-lun": "no free lun",
    "scsi.lun-already-used": "lun already used by '{other}'",
    # blockdev.c: qmp_transaction
    "transaction.aborted": "Transaction aborted using Abort action",
    "transaction.completion-mode-unsupported": "Action '{kind}' does not support Transaction "
        "property completion-mode = {mode}",
    "transaction.action-not-supported": "Transaction action '{kind}' is not supported by qmpd",
    # monitor/hmp-cmds.c, monitor/qmp-cmds.c
    "hmp.cpu-index-invalid": "Parameter 'cpu-index' expects a CPU number",
    "hmp.reply-too-large": "Reply too large: the output of this qemu-io command would be "
        "more than {size} bytes, above qmpd's --max-output limit of {limit} bytes (ask for less "
        "at a time, or start qmpd with --hmp-output stdout)",
    # block/stream.c
    "stream.backing-file-specified-streaming-entire": "backing file specified, but streaming "
        "the entire chain",
    "stream.cannot-specified-same-time": "'{a}' and '{b}' cannot be specified at the same time",
    "stream.find-backing-chain": "Can't find '{base}' in the backing chain",
    "stream.node-not-backing-image": "Node '{base}' is not a backing image of '{bs}'",
    "stream.node-filter-use-non-filter": "Node '{bottom}' is a filter, use a non-filter node "
        "as 'bottom'",
    "stream.node-not-chain-starting": "Node '{bottom}' is not in a chain starting from '{bs}'",
    "stream.not-backing-chain": "'{base}' is not in the backing chain of '{bs}'",
    "stream.create-node-failed-prefix": "Could not create node: ",
    # block/commit.c
    "commit.need-root-block-node": "Need a root block node",
    "commit.cannot-commit-image-into-itself": "cannot commit an image into itself",
    "commit.mutually-exclusive": "'{node_key}' and '{file_key}' are mutually exclusive",
    "commit.not-backing-file-chain": "'{node}' is not in this backing file chain",
    "commit.backing-file-specified-top-writer": "'backing-file' specified, but 'top' has a "
        "writer on it",
    "commit.backing-file-specified-top-active": "'backing-file' specified, but 'top' is the "
        "active layer",
    "commit.top-image-file-not-found": "Top image file {top} not found",
    # blockdev.c / block/mirror.c
    "mirror.parameter-granularity-expects-value-range": "Parameter 'granularity' expects a "
        "value in range [512B, 64MB]",
    "mirror.parameter-granularity-expects-power-2": "Parameter 'granularity' expects a power of 2",
    "mirror.cannot-mirror-attached-block-device": "Cannot mirror to an attached block device",
    # block.c check_to_replace_node
    "mirror.replaces-node-not-found": "Failed to find node with node-name='{name}'",
    "mirror.sync-mode-not-supported": "Sync mode '{sync}' not supported",
    "mirror.invalid-parameter-buf-size": "Invalid parameter 'buf-size'",
    "mirror.mirror-node-into-itself": "Can't mirror node into itself",
    # blockdev.c qmp_drive_mirror / drive_backup_action, block.c bdrv_img_create
    "drive.replaces-needs-node-name": "a node-name must be provided when replacing a named "
        "node of the graph",
    "drive.unknown-file-format": "Unknown file format '{fmt}'",
    "drive.format-cannot-create": "Format driver '{fmt}' does not support image creation",
    "drive.backing-not-supported": "Backing file not supported for file format '{fmt}'",
    # blockdev.c / block/backup.c / block/copy-before-write.c
    "backup.must-provide-valid-bitmap-name": "must provide a valid bitmap name for '{sync}' "
        "sync mode",
    "backup.cannot-specify-bitmap-sync-mode": "Cannot specify bitmap sync mode without a bitmap",
    "backup.source-target-cannot-same": "Source and target cannot be the same",
    "backup.compression-not-supported-drive": "Compression is not supported for this drive "
        "{target}",
    "backup.max-workers-must-between-1": "max-workers must be between 1 and {max}",
    "backup.max-chunk-must-zero-means": "max-chunk must be zero (which means no limit) or positive",
    "backup.source-target-image-different-sizes": "Source and target image have different sizes",
    "backup.required-max-chunk-less-backup": "Required max-chunk ({chunk}) is less than "
        "backup cluster size ({cluster})",
    "backup.bitmap-sync-mode-must-success": "Bitmap sync mode must be 'on-success' when "
        "using sync mode 'incremental'",
    "backup.bitmap-could-not-found": "Bitmap '{bitmap}' could not be found",
    "backup.bitmap-sync-mode-must-given": "Bitmap sync mode must be given when providing a bitmap",
    "backup.sync-mode-none-does-not": "sync mode 'none' does not produce meaningful bitmap outputs",
    "backup.bitmap-sync-mode-never-no": "Bitmap sync mode 'never' has no meaningful effect "
        "when combined with sync mode '{sync}'",
    # blockdev.c: snapshots and bdrv_append
    "snapshot.overlay-already-use": "The overlay is already in use",
    "snapshot.filters-cannot-used-overlays": "Filters cannot be used as overlays",
    "snapshot.overlay-already-backing-image": "The overlay already has a backing image",
    "snapshot.overlay-does-not-support-backing": "The overlay does not support backing images",
    "snapshot.new-overlay-node-name-missing": "New overlay node-name missing",
    "snapshot.new-overlay-node-name-already": "New overlay node-name already in use",
    "snapshot.could-not-create-no-such": "Could not create '{path}': No such file or directory",
    "snapshot.backing-file-not-supported-file": "Backing file not supported for file format 'raw'",
    "snapshot.qmpd-cannot-create-images": "qmpd cannot create '{fmt}' images",
}
