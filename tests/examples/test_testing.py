"""qmpd.testing behaves like iotests' VM for the things scripts rely on."""

from __future__ import annotations

import os
import subprocess
import sys
import unittest

import pytest

from qmpd import testing as iotests


@pytest.fixture(scope="module")
def vm():
    with iotests.VM() as vm:
        vm.launch()
        yield vm


@pytest.fixture(autouse=True)
def _clean(vm):
    vm.reset()
    vm.get_qmp_events()   # drop events left by a previous test


def test_keyword_underscores_become_dashes(vm) -> None:
    assert vm.qmp("blockdev-add", driver="null-co", node_name="n0") == {"return": {}}
    nodes = vm.command("query-named-block-nodes", flat=True)
    assert [n["node-name"] for n in nodes] == ["n0"]
    # args_dict is sent as is, as in QEMUMachine.qmp.
    r = vm.qmp("blockdev-del", {"node_name": "n0"})
    iotests.assert_qmp(r, "error/desc", "Parameter 'node-name' is missing")


def test_assert_qmp_paths_and_failures(vm) -> None:
    r = vm.qmp("blockdev-del", node_name="nope")
    iotests.assert_qmp(r, "error/class", "GenericError")
    iotests.assert_qmp(r, "error/class", ["CommandNotFound", "GenericError"])
    iotests.assert_qmp_absent(r, "return")
    with pytest.raises(AssertionError, match='"error/class" is "GenericError", expected "X"'):
        iotests.assert_qmp(r, "error/class", "X")
    vm.command("blockdev-add", driver="null-co", node_name="n0")
    iotests.assert_qmp(vm.qmp("query-named-block-nodes"), "return[0]/drv", "null-co")
    with pytest.raises(iotests.QMPError, match="GenericError: Failed to find node"):
        vm.command("blockdev-del", node_name="nope")


def test_event_wait_keeps_other_events(vm) -> None:
    vm.qmp("stop")
    vm.qmp("cont")
    ev = vm.event_wait("RESUME", timeout=20)
    assert ev is not None and ev["event"] == "RESUME"
    assert [e["event"] for e in vm.get_qmp_events()] == ["STOP"]
    assert vm.event_wait("STOP", timeout=0) is None


def test_event_wait_times_out(vm) -> None:
    with pytest.raises(TimeoutError):
        vm.event_wait("BLOCK_JOB_COMPLETED", timeout=0.2)


def test_reset_restarts_auto_names(vm) -> None:
    vm.command("blockdev-add", driver="raw", node_name="r",
               file={"driver": "null-co"})
    vm.reset()
    assert vm.command("query-named-block-nodes") == []
    vm.command("blockdev-add", driver="raw", node_name="r",
               file={"driver": "null-co"})
    names = [n["node-name"] for n in vm.command("query-named-block-nodes")]
    # The auto-name counter starts again at 0, as in a fresh QEMU: #block0NN.
    assert names[0] == "r" and names[1].startswith("#block0")


def test_hmp_qemu_io_returns_the_output(vm) -> None:
    vm.command("blockdev-add", driver="null-co", node_name="n0", read_zeroes=True)
    r = vm.hmp_qemu_io("n0", "read -P 0 0 4k")
    assert r["return"].startswith("read 4096/4096 bytes at offset 0\n")


def test_image_helpers_and_block_path(vm) -> None:
    base, top = iotests.file_path("tb.qcow2", "tt.qcow2")
    iotests.qemu_img_create("-f", "qcow2", base, "1M")
    iotests.qemu_io("-f", "qcow2", base, "-c", "write -P 0x5a 0 4k")
    iotests.qemu_img_create("-f", "qcow2", "-b", base, "-F", "qcow2", top)
    vm.command("blockdev-add", driver="qcow2", node_name="top",
               file={"driver": "file", "filename": top})
    vm.assert_block_path("top", "/file", vm.qmp("query-named-block-nodes")["return"][-1]
                         ["node-name"])
    vm.assert_block_path("top", "/backing/backing", None)
    assert "read 4096/4096" in vm.hmp_qemu_io("top", "read -P 0x5a 0 4k")["return"]
    assert iotests.filter_testfiles(top) == "TEST_DIR/PID-tt.qcow2"
    bad = iotests.qemu_io("-f", "qcow2", base, "-c", "read -P 0x11 0 4k", check=False)
    assert "Pattern verification failed" in bad.stdout


def test_launch_failure_is_reported() -> None:
    vm = iotests.VM(args=["--no-such-option"])
    with pytest.raises(iotests.VMError, match="qmpd exited with status"):
        vm.launch()
    assert not os.path.exists(vm.sock_path)


def test_qmp_log_output(vm, capsys) -> None:
    vm.qmp_log("blockdev-add", driver="null-co", node_name="n0")
    assert capsys.readouterr().out == (
        '{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "n0"}}\n'
        '{"return": {}}\n')


def test_add_blockdev_before_launch() -> None:
    vm = iotests.VM()
    opts = vm.qmp_to_opts({"driver": "raw", "node-name": "fmt",
                           "file": {"driver": "null-co", "node-name": "proto", "size": 4096}})
    assert opts == "driver=raw,node-name=fmt,file.driver=null-co,file.node-name=proto,file.size=4096"
    vm.add_blockdev(opts)
    vm.add_blockdev("driver=null-co,node-name=n1,read-zeroes=on,size=8192")
    vm.add_object("iothread,id=io0")
    vm.launch()
    try:
        nodes = {n["node-name"]: n for n in vm.command("query-named-block-nodes")}
        assert nodes["proto"]["image"]["virtual-size"] == 4096
        assert nodes["n1"]["image"]["virtual-size"] == 8192
        assert [t["id"] for t in vm.command("query-iothreads")] == ["io0"]
    finally:
        vm.shutdown()


def test_add_blockdev_failure_stops_launch() -> None:
    vm = iotests.VM().add_blockdev({"driver": "raw", "node-name": "x", "file": "nope"})
    # qmpd refuses the -blockdev as QEMU does; the message is qmpd's log.
    with pytest.raises(iotests.VMError, match="-blockdev .*Cannot find device='nope'"):
        vm.launch()
    assert not vm.is_running()


def test_a_setup_failing_after_launch_leaves_no_daemon() -> None:
    pids: list[int] = []

    class Case(iotests.QMPTestCase):
        def setUp(self) -> None:
            self.vm = iotests.VM()
            self.vm.launch()
            pids.append(self.vm.get_pid() or 0)
            raise RuntimeError("setUp failed after launch")

        def tearDown(self) -> None:       # never reached, as in unittest
            self.vm.shutdown()

        def test_x(self) -> None:
            pass

    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(Case).run(result)
    assert len(result.errors) == 1 and pids
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)


def test_drives_and_devices_go_on_the_command_line() -> None:
    img = iotests.file_path("drv.qcow2")
    iotests.qemu_img_create("-f", "qcow2", img, "1M")
    vm = iotests.VM().add_object("iothread,id=io0").add_device("virtio-scsi,id=scsi0") \
        .add_drive(img, "node-name=top", interface="none") \
        .add_device("scsi-hd,id=sd0,drive=drive0")
    vm.launch()
    try:
        blocks = vm.command("query-block")
        assert [(b["device"], b["qdev"], b["inserted"]["node-name"]) for b in blocks] == \
            [("drive0", "sd0", "top")]
    finally:
        vm.shutdown()


def test_file_path_context_removes_its_files() -> None:
    with iotests.FilePath("a.img", "b.img") as (a, b):
        open(a, "w").close()
        open(b, "w").close()
    assert not os.path.exists(a) and not os.path.exists(b)


def test_test_dir_is_where_scripts_files_live(vm) -> None:
    # iotests scripts build paths as os.path.join(iotests.test_dir, NAME);
    # file_path() names land there too, and filters show them as TEST_DIR.
    path = os.path.join(iotests.test_dir, "td.qcow2")
    iotests.qemu_img_create("-f", "qcow2", path, "1M")
    vm.command("blockdev-add", driver="qcow2", node_name="td",
               file={"driver": "file", "filename": path})
    assert iotests.filter_testfiles(vm.node_info("td")["file"]) == "TEST_DIR/td.qcow2"
    assert os.path.dirname(iotests.file_path("td2.img")) == iotests.test_dir


def test_test_dir_follows_the_environment(tmp_path) -> None:
    # As in iotests, TEST_DIR (set by the test runner) decides the directory.
    out = subprocess.run(
        [sys.executable, "-c", "from qmpd import testing; print(testing.test_dir)"],
        env={**os.environ, "TEST_DIR": str(tmp_path)}, capture_output=True, text=True,
        check=True).stdout
    assert out.strip() == str(tmp_path)


def test_blockdev_create_runs_the_job_to_its_end(vm, capsys) -> None:
    path = iotests.file_path("bc.qcow2")
    assert vm.blockdev_create({"driver": "file", "filename": path, "size": 0}) is None
    vm.command("blockdev-add", driver="file", node_name="proto", filename=path)
    assert vm.blockdev_create({"driver": "qcow2", "file": "proto", "size": 1 << 20},
                              job_id="job1") is None
    vm.command("blockdev-add", driver="qcow2", node_name="fmt", file="proto")
    assert vm.node_info("fmt")["image"]["virtual-size"] == 1 << 20
    assert vm.command("query-jobs") == []
    assert '{"execute": "job-dismiss", "arguments": {"id": "job1"}}' in capsys.readouterr().out
