"""An iotests-style script on qmpd.testing: a backing chain, blockdev-reopen,
its error paths, qemu-io through the monitor, events, and x-qmpd-reset.

    .venv/bin/python examples/iotests_reopen.py

It is written as a QEMU iotests Python script would be (``iotests.VM``,
``qmp_log``, ``hmp_qemu_io``, filters, ``log``) and prints a log that is
compared with ``examples/iotests_reopen.out``, as iotests compares a test's
output with its reference file.  Against QEMU's own iotests.py the changes
are the import line and ``vm.add_drive`` (qmpd has no guest devices, so every
node comes from ``blockdev-add``).
"""

from __future__ import annotations

from qmpd import testing as iotests
from qmpd.testing import log

iotests_filters = [iotests.filter_qmp_testfiles]

base, mid, top = iotests.file_path("base.qcow2", "mid.qcow2", "top.qcow2")

log("=== Creating the chain ===")
iotests.qemu_img_create("-f", "qcow2", base, "1M")
iotests.qemu_io_log("-f", "qcow2", base, "-c", "write -P 0xaa 0 64k")
iotests.qemu_img_create("-f", "qcow2", "-b", base, "-F", "qcow2", mid)
iotests.qemu_io_log("-f", "qcow2", mid, "-c", "write -P 0xbb 64k 64k")
iotests.qemu_img_create("-f", "qcow2", "-b", mid, "-F", "qcow2", top)


def qcow2(name: str, path: str, backing: str | None, read_only: bool = False) -> dict:
    return {"driver": "qcow2", "node-name": name, "backing": backing, "read-only": read_only,
            "file": {"driver": "file", "node-name": f"{name}-file", "filename": path}}


with iotests.VM() as vm:
    vm.launch()

    log("")
    log("=== Opening it ===")
    vm.qmp_log("blockdev-add", filters=iotests_filters, **qcow2("base", base, None, True))
    vm.qmp_log("blockdev-add", filters=iotests_filters, **qcow2("mid", mid, "base", True))
    vm.qmp_log("blockdev-add", filters=iotests_filters, **qcow2("top", top, "mid"))
    vm.assert_block_path("top", "/backing/backing", "base")
    vm.hmp_qemu_io("top", "read -P 0xbb 64k 64k", use_log=True)

    log("")
    log("=== Error paths ===")
    # Leaving out 'file' would drop it: blockdev-reopen wants all options.
    result = vm.qmp_log("blockdev-reopen", options=[{"driver": "qcow2", "node-name": "top"}])
    iotests.assert_qmp(result, "error/class", "GenericError")
    result = vm.qmp_log("blockdev-reopen", options=[
        {"driver": "qcow2", "node-name": "top", "file": "top-file", "backing": "nope"}])
    iotests.assert_qmp(result, "error/class", "GenericError")
    # base cannot take mid as its backing: that would be a loop.
    vm.qmp_log("blockdev-reopen", options=[
        {"driver": "qcow2", "node-name": "base", "file": "base-file", "backing": "mid",
         "read-only": True}])

    log("")
    log("=== Swapping the backing file ===")
    vm.qmp_log("blockdev-reopen", options=[
        {"driver": "qcow2", "node-name": "top", "file": "top-file", "backing": "base"}])
    vm.assert_block_path("top", "/backing", "base")
    vm.hmp_qemu_io("top", "read -P 0 64k 64k", use_log=True)
    vm.hmp_qemu_io("top", "read -P 0xaa 0 64k", use_log=True)
    # Writes land in memory only; the image files stay as they were.
    vm.hmp_qemu_io("top", "write -P 0xcc 128k 4k", use_log=True)
    vm.hmp_qemu_io("top", "read -P 0xcc 128k 4k", use_log=True)
    vm.qmp_log("blockdev-del", node_name="mid")

    log("")
    log("=== Events ===")
    vm.qmp_log("stop")
    log(iotests.filter_qmp_event(vm.event_wait("STOP", timeout=10)))
    vm.qmp_log("cont")
    log(iotests.filter_qmp_event(vm.event_wait("RESUME", timeout=10)))

    log("")
    log("=== x-qmpd-reset (qmpd only) ===")
    vm.qmp_log("x-qmpd-reset")
    vm.qmp_log("query-named-block-nodes")

log("")
log("=== The files were not written ===")
iotests.qemu_io_log("-f", "qcow2", top, "-c", "read -P 0 128k 4k")
