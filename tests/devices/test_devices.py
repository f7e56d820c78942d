"""Devices, their BlockBackends and AioContexts, through the command layer.

The QEMU 7.2 transcripts under tests/data/recorded/*/dev-*.json are the
oracle for exact replies (checked by the conformance suite); these tests pin
down behaviour a user relies on, including the one case QEMU 7.2 cannot
record because it aborts there.
"""

from __future__ import annotations

from typing import Any

import pytest

from qmpd.commands.dispatch import Daemon, Dispatcher
from qmpd.commands.errors import QMPError
from qmpd.jobs.clock import VirtualClock
from qmpd.profiles import select

# What these tests expect is QEMU 7.2's (their cases were recorded on it).
QEMU_7_2 = select("7.2.22")

ACTIVE_BB = "Cannot change iothread of active block backend"


class Env:
    """A dispatcher plus the events its daemon emitted."""

    def __init__(self) -> None:
        self.daemon = Daemon(QEMU_7_2, job_time=VirtualClock())
        self.events: list[tuple[str, Any]] = []
        self.daemon.event_sink = lambda name, data, ts: self.events.append((name, data))
        self.d = Dispatcher(self.daemon)

    def __call__(self, cmd: str, **args: Any) -> Any:
        return self.d.execute(cmd, args)

    def error(self, cmd: str, **args: Any) -> tuple[str, str]:
        with pytest.raises(QMPError) as ei:
            self.d.execute(cmd, args)
        return ei.value.cls, ei.value.desc

    def root_edges(self) -> list[dict]:
        return [e for e in self("x-debug-query-block-graph")["edges"] if e["name"] == "root"]


@pytest.fixture
def env() -> Env:
    return Env()


def null(env: Env, name: str, **kw: Any) -> None:
    env("blockdev-add", driver="null-co", **{"node-name": name}, **kw)


def test_scsi_disk_takes_write_and_blocks_blockdev_del(env: Env) -> None:
    null(env, "hd0")
    env("device_add", driver="virtio-scsi-pci", id="s0")
    env("device_add", driver="scsi-hd", drive="hd0", id="d0")
    [edge] = env.root_edges()
    assert edge["perm"] == ["write", "consistent-read"]
    assert edge["shared-perm"] == ["resize", "write-unchanged", "consistent-read"]
    assert env.error("blockdev-del", **{"node-name": "hd0"}) == ("GenericError",
                                                                 "Node hd0 is in use")
    [info] = env("query-block")
    assert info["qdev"] == "d0" and info["inserted"]["node-name"] == "hd0"


def test_read_only_node_gives_a_read_only_device_and_share_rw_shares_write(env: Env) -> None:
    null(env, "ro", **{"read-only": True})
    null(env, "rw")
    env("device_add", driver="virtio-blk-pci", drive="ro")
    env("device_add", driver="virtio-blk-pci", drive="rw", **{"share-rw": "on"})
    perms = {e["child"]: (e["perm"], e["shared-perm"]) for e in env.root_edges()}
    assert sorted(perms.values()) == [
        (["consistent-read"], ["resize", "write-unchanged", "consistent-read"]),
        (["write", "consistent-read"], ["resize", "write-unchanged", "write",
                                        "consistent-read"]),
    ]
    # A second writer is fine with share-rw on both sides, not without.
    env("device_add", driver="virtio-blk-pci", drive="rw", id="v2", **{"share-rw": True})
    cls, desc = env.error("device_add", driver="virtio-blk-pci", drive="rw", id="v3")
    assert desc == ("Permission conflict on node 'rw': permissions 'write' are both required "
                    "by block device '/machine/peripheral/v2/virtio-backend' (uses node 'rw' as "
                    "'root' child) and unshared by block device '/machine/peripheral/v3/"
                    "virtio-backend' (uses node 'rw' as 'root' child).")


def test_failed_device_add_leaves_nothing_but_uses_an_anonymous_number(env: Env) -> None:
    null(env, "hd0")
    env("device_add", driver="virtio-scsi-pci", id="s0")
    env("device_add", driver="scsi-hd", drive="hd0", id="d0")
    env.error("device_add", driver="scsi-hd", drive="hd0")
    assert len(env("query-block")) == 1
    assert len(env.root_edges()) == 1
    cls, desc = env.error("device_add", driver="scsi-hd", drive="hd0", id=7)
    assert "'/machine/peripheral-anon/device[1]'" in desc


@pytest.mark.parametrize(("args", "desc"), [
    ({}, "Parameter 'driver' is missing"),
    ({"driver": {"x": 1}}, "Parameter 'driver' is missing"),
    ({"driver": 1}, "'1' is not a valid device model name"),
    ({"driver": True}, "'on' is not a valid device model name"),
    ({"driver": "virtio-blk-pci"}, "drive property not set"),
    ({"driver": "virtio-blk-pci", "drive": "nosuch"},
     "Property 'virtio-blk-device.drive' can't find value 'nosuch'"),
    ({"driver": "virtio-blk-pci", "drive": "hd0", "id": "1x"},
     "Parameter 'id' expects an identifier"),
    ({"driver": "virtio-blk-pci", "drive": "hd0", "share-rw": "maybe"},
     "Parameter 'share-rw' expects 'on' or 'off'"),
    ({"driver": "virtio-blk-pci", "drive": "hd0", "read-only": True},
     "Property 'virtio-blk-pci.read-only' not found"),
    ({"driver": "scsi-hd", "drive": "hd0"}, "No 'SCSI' bus found for device 'scsi-hd'"),
    ({"driver": "ide-hd", "drive": "hd0"}, "Bus 'ide.1' does not support hotplugging"),
    ({"driver": "virtio-blk-pci", "drive": "hd0", "bus": "ide.0"},
     "Device 'virtio-blk-pci' can't go on IDE bus"),
    ({"driver": "virtio-blk-pci", "drive": "hd0", "bus": "nosuch"}, "Bus 'nosuch' not found"),
])
def test_device_add_errors_are_qemus(env: Env, args: dict, desc: str) -> None:
    null(env, "hd0")
    assert env.error("device_add", **args) == ("GenericError", desc)
    assert env("query-block") == []


def test_unknown_iothread_is_device_not_found(env: Env) -> None:
    null(env, "hd0")
    assert env.error("device_add", driver="virtio-blk-pci", drive="hd0", iothread="io9") == (
        "DeviceNotFound", "Device 'io9' not found")


def test_duplicate_device_id(env: Env) -> None:
    env("device_add", driver="virtio-scsi-pci", id="s0")
    assert env.error("device_add", driver="virtio-scsi-pci", id="s0")[1] == \
        "Duplicate device ID 's0'"


def test_scsi_disk_unplug_sends_device_deleted_and_frees_the_node(env: Env) -> None:
    null(env, "hd0")
    env("device_add", driver="virtio-scsi-pci")
    env("device_add", driver="scsi-hd", drive="hd0", **{"share-rw": True})
    env("device_add", driver="scsi-hd", drive="hd0", id="d1", **{"share-rw": True})
    env("device_del", id="/machine/peripheral-anon/device[1]")
    env("device_del", id="d1")
    assert env.events == [
        ("DEVICE_DELETED", {"path": "/machine/peripheral-anon/device[1]"}),
        ("DEVICE_DELETED", {"device": "d1", "path": "/machine/peripheral/d1"}),
    ]
    assert env("query-block") == []
    env("blockdev-del", **{"node-name": "hd0"})
    assert env.error("device_del", id="d1") == ("DeviceNotFound", "Device 'd1' not found")


def test_pci_unplug_waits_for_a_guest_that_never_answers(env: Env) -> None:
    null(env, "hd0")
    env("device_add", driver="virtio-blk-pci", drive="hd0", id="v0")
    assert env("device_del", id="v0") == {}
    assert env("device_del", id="v0") == {}
    assert env.events == []
    assert len(env("query-block")) == 1


def test_device_deleted_comes_after_the_reply_on_the_wire(start_qmpd: Any) -> None:
    """QEMU removes a SCSI disk after its reply: the client reads the reply
    to device_del first, then DEVICE_DELETED (the server defers the unplug)."""
    conn = start_qmpd().connect(negotiate=True)
    assert conn.cmd("blockdev-add", {"driver": "null-co", "node-name": "hd0"}) == {"return": {}}
    assert conn.cmd("device_add", {"driver": "virtio-scsi-pci", "id": "s0"}) == {"return": {}}
    assert conn.cmd("device_add", {"driver": "scsi-hd", "drive": "hd0", "id": "d0"}) == \
        {"return": {}}
    conn.send('{"execute": "device_del", "arguments": {"id": "d0"}}\n')
    assert conn.read() == {"return": {}}
    event = conn.read()
    assert (event["event"], event["data"]) == \
        ("DEVICE_DELETED", {"device": "d0", "path": "/machine/peripheral/d0"})
    assert conn.cmd("query-block") == {"return": []}


def test_reopen_read_only_under_a_device_writer_fails_and_changes_nothing(env: Env) -> None:
    env("blockdev-add", driver="raw", **{"node-name": "r"},
        file={"driver": "null-co", "node-name": "r-file"})
    env("device_add", driver="virtio-scsi-pci", id="s0")
    env("device_add", driver="scsi-hd", drive="r", id="d0")
    entry = {"driver": "raw", "node-name": "r", "file": "r-file", "read-only": True}
    assert env.error("blockdev-reopen", options=[entry])[1] == \
        "Read-only block node 'r' cannot support read-write users"
    assert [n["ro"] for n in env("query-named-block-nodes")] == [False, False]


def test_both_sides_pinned_in_different_iothreads(env: Env) -> None:
    for i in ("io0", "io1"):
        env("object-add", **{"qom-type": "iothread", "id": i})
    env("blockdev-add", driver="raw", **{"node-name": "top"},
        file={"driver": "null-co", "node-name": "top-file"})
    null(env, "bk")
    env("device_add", driver="virtio-scsi-pci", id="s0", iothread="io0")
    env("device_add", driver="virtio-scsi-pci", id="s1", iothread="io1")
    env("device_add", driver="scsi-hd", drive="top", bus="s0.0")
    env("device_add", driver="scsi-hd", drive="bk", bus="s1.0")
    # raw has no backing; attach bk as a new file child instead.
    entry = {"driver": "raw", "node-name": "top", "file": "bk"}
    assert env.error("blockdev-reopen", options=[entry])[1] == ACTIVE_BB
    assert env.error("x-blockdev-set-iothread", **{"node-name": "top-file"},
                     iothread="io1")[1] == ACTIVE_BB


def test_new_child_in_another_iothread_follows_when_free(env: Env) -> None:
    """QEMU 7.2 aborts here (a free node moved by x-blockdev-set-iothread, then
    attached as a new child of a node in another context): qmpd lets the
    free node follow, as QEMU's rules intend."""
    env("object-add", **{"qom-type": "iothread", "id": "io0"})
    env("blockdev-add", driver="raw", **{"node-name": "top"},
        file={"driver": "null-co", "node-name": "top-file"})
    null(env, "new")
    env("x-blockdev-set-iothread", **{"node-name": "new"}, iothread="io0")
    env("blockdev-reopen", options=[{"driver": "raw", "node-name": "top", "file": "new"}])
    g = env.daemon.graph
    assert g.nodes["new"].aio_context == g.nodes["top"].aio_context == "main"
    # Now 'new' cannot be moved on its own while a device pins its component.
    env("device_add", driver="virtio-blk-pci", drive="top")
    assert env.error("x-blockdev-set-iothread", **{"node-name": "new"},
                     iothread="io0")[1] == ACTIVE_BB


def test_parent_follows_a_pinned_child(env: Env) -> None:
    env("object-add", **{"qom-type": "iothread", "id": "io0"})
    null(env, "pinned")
    env("device_add", driver="virtio-scsi-pci", id="s0", iothread="io0")
    env("device_add", driver="scsi-hd", drive="pinned", **{"share-rw": True})
    env("blockdev-add", driver="raw", **{"node-name": "r"}, file="pinned")
    assert env.daemon.graph.nodes["r"].aio_context == "io0"
    # A device without iothread needs the main context: impossible now.
    assert env.error("device_add", driver="virtio-blk-pci", drive="r",
                     **{"share-rw": True})[1] == ACTIVE_BB


def test_set_iothread_guards_backends_unless_forced(env: Env) -> None:
    env("object-add", **{"qom-type": "iothread", "id": "io0"})
    null(env, "hd0")
    env("device_add", driver="virtio-blk-pci", drive="hd0")
    assert env.error("x-blockdev-set-iothread", **{"node-name": "hd0"}, iothread="io0")[1] == (
        "Node hd0 is associated with a BlockBackend and could be in use "
        "(use force=true to override this check)")
    assert env.error("x-blockdev-set-iothread", **{"node-name": "hd0"}, iothread="io0",
                     force=True)[1] == ACTIVE_BB
    assert env.error("x-blockdev-set-iothread", **{"node-name": "hd0"}, iothread="nope",
                     force=True)[1] == "Cannot find iothread nope"


def test_qemu_io_on_a_device(env: Env) -> None:
    null(env, "hd0")
    env("device_add", driver="virtio-scsi-pci", id="s0")
    env("device_add", driver="scsi-hd", drive="hd0", id="d0", **{"share-rw": True})
    env("device_add", driver="virtio-blk-pci", drive="hd0", id="v0", **{"share-rw": True})
    out = env("human-monitor-command", **{"command-line": 'qemu-io -d d0 "read 0 512"'})
    assert out.startswith("read 512/512 bytes at offset 0\n")
    # virtio-blk-pci's BlockBackend belongs to its inner virtio-blk-device.
    assert env("human-monitor-command", **{"command-line": 'qemu-io -d v0 "read 0 512"'}) == \
        "Error: Device does not have a block device backend\r\n"
    info = env("human-monitor-command", **{"command-line": "info block"})
    assert info.startswith("hd0: null-co:// (null-co)\r\n    Attached to:      d0\r\n")


def test_pci_slots_run_out_and_unplug_requests_do_not_free_them(env: Env) -> None:
    # pci.0 has slots 2..31 free on a -nodefaults pc machine: 30 devices.
    for i in range(30):
        env("device_add", driver="virtio-scsi-pci", id=f"c{i}")
    env("device_del", id="c3")
    assert env.error("device_add", driver="virtio-scsi-pci", id="late")[1] == (
        "PCI: no slot/function available for virtio-scsi-pci, all in use or reserved")


def test_explicit_pci_address_conflicts(env: Env) -> None:
    env("device_add", driver="virtio-scsi-pci", id="s5", addr="5")
    assert env.error("device_add", driver="virtio-scsi-pci", addr="0x5")[1] == (
        "PCI: slot 5 function 0 not available for virtio-scsi-pci, in use by "
        "virtio-scsi-pci,id=s5")
    assert env.error("device_add", driver="virtio-scsi-pci", addr="1.1")[1] == (
        "PCI: slot 1 function 1 not available for virtio-scsi-pci, in use by "
        "piix3-ide,id=(null)")


def test_scsi_targets_and_luns(env: Env) -> None:
    null(env, "hd0")
    env("device_add", driver="virtio-scsi-pci", id="s0")
    disk = {"driver": "scsi-hd", "drive": "hd0", "share-rw": True}
    env("device_add", **disk, id="a", **{"scsi-id": 2})
    assert env.error("device_add", **disk, id="b", **{"scsi-id": 2, "lun": 0})[1] == \
        "lun already used by 'a'"
    env("device_add", **disk, id="b", **{"scsi-id": 2})          # takes LUN 1
    assert env.error("device_add", **disk, id="c", **{"scsi-id": "2", "lun": "1"})[1] == \
        "lun already used by 'b'"
    assert env.error("device_add", **disk, **{"scsi-id": 3000000000})[1] == \
        "bad scsi device id: -1294967296"
    assert env.error("device_add", **disk, lun=-1)[1] == "Parameter 'lun' expects uint32_t"
