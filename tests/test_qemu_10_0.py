"""The 10.0 profile through a real socket, where 10.0 and 7.2 differ in
what a client can do: hand a node away with ``blockdev-set-active`` (and see
``active`` in the queries), switch a mirror to write-blocking with
``block-job-change``.  7.2 has neither command.
"""

from __future__ import annotations

from pathlib import Path

from qmpd import testing as iotests


def _vm(version: str) -> iotests.VM:
    return iotests.VM(args=["--qemu-version", version])


def _active(vm: iotests.VM) -> dict[str, bool]:
    return {n["node-name"]: n["active"]
            for n in vm.command("query-named-block-nodes", flat=True)}


def test_an_inactive_node_takes_no_writes_until_activated(tmp_path: Path) -> None:
    img = str(tmp_path / "d.qcow2")
    iotests.qemu_img_create("-f", "qcow2", img, "1M")
    with _vm("10.0.2") as vm:
        vm.launch()
        vm.command("blockdev-add", driver="qcow2", node_name="d",
                   file={"driver": "file", "node-name": "d-file", "filename": img})
        assert _active(vm) == {"d": True, "d-file": True}
        r = vm.qmp("blockdev-set-active", node_name="d-file", active=False)
        assert r["error"]["desc"] == "Node has active parent node"
        vm.command("blockdev-set-active", node_name="d", active=False)
        # The whole subtree goes: the image belongs to someone else now.
        assert _active(vm) == {"d": False, "d-file": False}
        # QEMU 10.0.2 itself aborts here; qmpd refuses the write instead.
        assert "Block node is read-only" in vm.hmp_qemu_io("d", "write 0 4k")["return"]
        r = vm.qmp("blockdev-add", driver="raw", node_name="r", file="d")
        assert r["error"]["desc"] == "Inactive 'd' can't be a file child of active 'r'"
        vm.command("blockdev-set-active", active=True)
        assert _active(vm) == {"d": True, "d-file": True}
        assert "wrote 4096/4096" in vm.hmp_qemu_io("d", "write 0 4k")["return"]


def test_7_2_has_no_set_active_and_no_active_field(tmp_path: Path) -> None:
    with _vm("7.2.22") as vm:
        vm.launch()
        r = vm.qmp("blockdev-set-active", active=False)
        assert r["error"] == {"class": "CommandNotFound",
                              "desc": "The command blockdev-set-active has not been found"}
        vm.command("blockdev-add", driver="null-co", node_name="n")
        assert "active" not in vm.command("query-named-block-nodes")[0]


def test_mirror_switches_to_write_blocking_and_reports_it(tmp_path: Path) -> None:
    src, tgt = str(tmp_path / "s.qcow2"), str(tmp_path / "t.qcow2")
    for p in (src, tgt):
        iotests.qemu_img_create("-f", "qcow2", p, "1M")
    with _vm("10.0.2") as vm:
        vm.launch()
        for name, p in (("src", src), ("tgt", tgt)):
            vm.command("blockdev-add", driver="qcow2", node_name=name,
                       file={"driver": "file", "filename": p})
        vm.command("blockdev-mirror", job_id="m0", device="src", target="tgt", sync="full",
                   filter_node_name="mt")
        vm.event_wait("BLOCK_JOB_READY")
        [job] = vm.command("query-block-jobs")
        assert job["actively-synced"] is False
        vm.command("block-job-change", id="m0", type="mirror", copy_mode="write-blocking")
        r = vm.qmp("block-job-change", id="m0", type="mirror", copy_mode="background")
        assert r["error"]["desc"] == "Change to copy mode 'background' is not implemented"
        # A write through the mirror's filter lands on the target as it happens;
        # one straight to the source node bypasses the filter and is not mirrored.
        vm.hmp_qemu_io("mt", "write -P 0x5a 0 64k")
        vm.hmp_qemu_io("src", "write -P 0x77 64k 64k")
        [job] = vm.command("query-block-jobs")
        assert job["actively-synced"] is True
        assert "read 65536/65536" in vm.hmp_qemu_io("tgt", "read -P 0x5a 0 64k")["return"]
        vm.command("block-job-cancel", device="m0")   # a ready mirror completes, no pivot
        vm.event_wait("BLOCK_JOB_COMPLETED")
    out = iotests.qemu_io("-f", "qcow2", tgt, "-c", "read -P 0 64k 64k").stdout
    assert "read 65536/65536" in out and "verification failed" not in out
