"""HMP ``commit DEVICE``: the drive's own layer written into its backing
file (grown to the drive's length, zeroes where the longer file below must
not show through), then emptied; read back from the files with qmpd-img."""

from __future__ import annotations

from qmpd import testing as iotests


def _reads(img: str, cmd: str) -> bool:
    out = iotests.qemu_io("-f", "qcow2", "-c", cmd, img, check=False).stdout
    return "Pattern verification failed" not in out and "read " in out


def test_commit_moves_the_layer_down_and_empties_it() -> None:
    base, mid, top = iotests.file_path("hc-base.qcow2", "hc-mid.qcow2", "hc-top.qcow2")
    iotests.qemu_img_create("-f", "qcow2", base, "2M")
    iotests.qemu_io("-f", "qcow2", "-c", "write -P 0x11 0 2M", base)
    iotests.qemu_img_create("-f", "qcow2", "-b", base, "-F", "qcow2", mid, "1M")
    iotests.qemu_img_create("-f", "qcow2", "-b", mid, "-F", "qcow2", top, "2M")
    iotests.qemu_io("-f", "qcow2", "-c", "write -P 0x22 64k 64k", top)
    vm = iotests.VM(args=["--host-writes"]).add_drive(top)
    vm.launch()
    try:
        assert vm.command("human-monitor-command", command_line="commit drive0") == ""
        assert vm.command("human-monitor-command", command_line="commit nosuch") == \
            "Device 'nosuch' not found\r\n"
    finally:
        vm.shutdown()
    # mid now has top's data and top's length; past mid's old end it reads
    # zeroes, not base's 0x11.
    assert _reads(mid, "read -P 0x22 64k 64k")
    assert _reads(mid, "read -P 0 1M 1M")
    alloc = iotests.qemu_io("-f", "qcow2", "-c", "alloc 0 2M", top).stdout
    assert alloc.startswith("0/2097152 bytes allocated")
    assert _reads(top, "read -P 0x22 64k 64k")
