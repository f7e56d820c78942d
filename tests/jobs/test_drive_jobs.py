"""drive-mirror and drive-backup: the target image is made from a filename.

Run with host writes, as QEMU's iotests run them, so that the images the
jobs produce can be read back from the files with qmpd-img.
"""

from __future__ import annotations

import os

import pytest

from qmpd import testing as iotests


@pytest.fixture(params=["7.2.22", "10.0.2"])
def release(request: pytest.FixtureRequest) -> list[str]:
    """Both releases iotests run against have drive-mirror and drive-backup."""
    return ["--qemu-version", request.param]


def _reads(img: str, cmd: str) -> bool:
    out = iotests.qemu_io("-f", "qcow2", "-c", cmd, img, check=False).stdout
    return "Pattern verification failed" not in out and "read " in out


@pytest.fixture
def images():
    base, top = iotests.file_path("dj-base.qcow2", "dj-top.qcow2")
    iotests.qemu_img_create("-f", "qcow2", base, "1M")
    iotests.qemu_io("-f", "qcow2", "-c", "write -P 0x11 0 64k", base)
    iotests.qemu_img_create("-f", "qcow2", "-b", base, "-F", "qcow2", top)
    iotests.qemu_io("-f", "qcow2", "-c", "write -P 0x22 64k 64k", top)
    return base, top


def test_drive_mirror_full_pivots_to_a_new_image(images, release):
    _, top = images
    target = iotests.file_path("dj-mirror.qcow2")
    vm = iotests.VM(args=release + ["--host-writes"]).add_drive(top)
    vm.launch()
    try:
        assert vm.qmp("drive-mirror", device="drive0", target=target, sync="full") == \
            {"return": {}}
        vm.event_wait("BLOCK_JOB_READY", match={"data": {"device": "drive0"}})
        vm.command("block-job-complete", device="drive0")
        vm.event_wait("BLOCK_JOB_COMPLETED", match={"data": {"device": "drive0"}})
        block = vm.command("query-block")[0]
        assert (block["device"], block["inserted"]["file"]) == ("drive0", target)
        assert block["inserted"]["backing_file_depth"] == 0
    finally:
        vm.shutdown()
    assert _reads(target, "read -P 0x11 0 64k") and _reads(target, "read -P 0x22 64k 64k")


def test_drive_mirror_top_keeps_the_source_backing_chain(images, release):
    base, top = images
    target = iotests.file_path("dj-mirror-top.qcow2")
    vm = iotests.VM(args=release + ["--host-writes"]).add_drive(top)
    vm.launch()
    try:
        vm.command("drive-mirror", device="drive0", target=target, sync="top")
        vm.event_wait("BLOCK_JOB_READY")
        vm.command("block-job-complete", device="drive0")
        vm.event_wait("BLOCK_JOB_COMPLETED")
        ins = vm.command("query-block")[0]["inserted"]
        assert (ins["file"], ins["backing_file"], ins["backing_file_depth"]) == \
            (target, base, 1)
    finally:
        vm.shutdown()
    # Only the top's own data was copied; the rest comes from the backing file.
    assert _reads(target, "read -P 0x22 64k 64k") and _reads(target, "read -P 0x11 0 64k")


def test_drive_backup_copies_a_point_in_time_image(images, release):
    _, top = images
    target = iotests.file_path("dj-backup.qcow2")
    vm = iotests.VM(args=release + ["--host-writes"]).add_drive(top)
    vm.launch()
    try:
        assert vm.qmp("drive-backup", device="drive0", target=target, sync="full") == \
            {"return": {}}
        ev = vm.event_wait("BLOCK_JOB_COMPLETED")
        assert ev is not None and ev["data"]["type"] == "backup"
        # The drive is still on its own image, written by the guest as before.
        assert vm.command("query-block")[0]["inserted"]["file"] == top
    finally:
        vm.shutdown()
    assert _reads(target, "read -P 0x11 0 64k") and _reads(target, "read -P 0x22 64k 64k")


def test_drive_mirror_existing_mode_needs_the_file(images, release):
    vm = iotests.VM(args=release).add_drive(images[1])
    vm.launch()
    try:
        missing = os.path.join(iotests.test_dir, "dj-nonexistent.qcow2")
        r = vm.qmp("drive-mirror", device="drive0", target=missing, sync="full",
                   mode="existing")
        assert r["error"]["desc"] == f"Could not open '{missing}': No such file or directory"
        assert vm.command("query-block-jobs") == []
    finally:
        vm.shutdown()


def test_stream_into_a_read_only_backing_node_of_a_drive(images, release):
    base, top = images
    vm = iotests.VM(args=release + ["--host-writes"]).add_drive(top, "backing.node-name=mid")
    vm.launch()
    try:
        # "mid" (the base image) was opened read-only as a backing file; the
        # job reopens it read-write, and back when done.
        assert vm.qmp("block-stream", device="mid", job_id="s0") == {"return": {}}
        vm.event_wait("BLOCK_JOB_COMPLETED", match={"data": {"device": "s0"}})
        assert vm.node_info("mid")["ro"] is True
    finally:
        vm.shutdown()


def test_a_blkdebug_breakpoint_holds_a_job_until_removed(images, release):
    _, top = images
    target = iotests.file_path("dj-bp.qcow2")
    vm = iotests.VM(args=release + ["--host-writes"]).add_drive("blkdebug::" + top)
    vm.launch()
    try:
        vm.pause_drive("drive0")          # qemu-io "break read_aio/write_aio bp_drive0"
        vm.command("drive-mirror", device="drive0", target=target, sync="full")
        job = vm.command("query-block-jobs")[0]
        assert (job["status"], job["offset"]) == ("running", 0)
        assert vm.hmp_qemu_io("drive0", "remove_break nothere")["return"] == \
            "Could not remove breakpoint nothere: No such file or directory\n"
        vm.resume_drive("drive0")
        assert vm.event_wait("BLOCK_JOB_READY") is not None
    finally:
        vm.shutdown()


def test_drive_mirror_into_larger_clusters_copies_whole_clusters(images, release):
    """041 TestReadErrors.test_large_cluster: a target opened without the
    backing file its image names, with clusters larger than the mirror's
    granularity, gets whole clusters -- the part of a cluster the source's
    own image does not hold is copied from below it too."""
    base, top = images
    target = iotests.file_path("dj-mirror-128k.qcow2")
    iotests.qemu_img_create("-f", "qcow2", "-o", f"cluster_size=131072,backing_file={base}",
                            "-F", "qcow2", target, "1M")
    vm = iotests.VM(args=release + ["--host-writes"]).add_drive(top)
    vm.launch()
    try:
        vm.command("drive-mirror", device="drive0", target=target, sync="top", mode="existing")
        vm.event_wait("BLOCK_JOB_READY")
        vm.command("block-job-cancel", device="drive0")
        vm.event_wait("BLOCK_JOB_COMPLETED")
    finally:
        vm.shutdown()
    # The top holds only 64k-128k, yet the target's cluster 0-128k is its own.
    own = [(e["start"], e["length"]) for e in iotests.qemu_img_map("-f", "qcow2", target)
           if e["depth"] == 0 and e["data"]]
    assert own == [(0, 131072)]
    assert _reads(target, "read -P 0x11 0 64k") and _reads(target, "read -P 0x22 64k 64k")
