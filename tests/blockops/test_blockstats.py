"""query-blockstats and the legacy NBD export commands, through the command
layer, as a client sees them.

QEMU's own answers are in the recordings tests/data/recorded/*/bs-*.json and
nbd-server-add*.json (checked by the conformance suite, timing members
masked); these tests pin down what those cannot: failed requests (QEMU
prints them asynchronously), the 1 ms a request takes under a virtual
clock, and each release's differences side by side.
"""

from __future__ import annotations

from typing import Any

import pytest

from qmpd.commands.dispatch import Daemon, Dispatcher
from qmpd.commands.errors import QMPError
from qmpd.jobs.clock import VirtualClock
from qmpd.profiles import select


class Env:
    """A dispatcher on a daemon with a virtual clock, and the events it emitted."""

    def __init__(self, version: str = "7.2.22") -> None:
        self.clock = VirtualClock()
        self.daemon = Daemon(select(version), job_time=self.clock)
        self.events: list[tuple[str, Any]] = []
        self.daemon.event_sink = lambda name, data, ts: self.events.append((name, data))
        self.d = Dispatcher(self.daemon)

    def __call__(self, cmd: str, **args: Any) -> Any:
        return self.d.execute(cmd, {k.replace("_", "-"): v for k, v in args.items()})

    def io(self, dev: str, line: str) -> str:
        return self("human-monitor-command", command_line=f'qemu-io {dev} "{line}"')

    def error(self, cmd: str, **args: Any) -> str:
        with pytest.raises(QMPError) as ei:
            self(cmd, **args)
        return ei.value.desc


def disk(env: Env, node: str = "hd0", **kw: Any) -> None:
    """A scsi-hd ``sd0`` on a 1 MiB null-co node (reads zeroes)."""
    env("blockdev-add", driver="null-co", node_name=node, size=1 << 20, read_zeroes=True, **kw)
    env("device_add", driver="virtio-scsi-pci", id="scsi0")
    env("device_add", driver="scsi-hd", drive=node, id="sd0")


def stats(env: Env) -> dict[str, Any]:
    [entry] = env("query-blockstats")
    return entry["stats"]


def test_only_the_devices_asynchronous_requests_are_accounted() -> None:
    env = Env()
    disk(env)
    env.clock.step(5000)
    env.io("-d sd0", "aio_write -q 0 64k")
    env.io("-d sd0", "aio_write -q 128k 4k 4k")
    env.io("-d sd0", "aio_read -q 0 16k")
    env.io("-d sd0", "aio_flush")
    # qemu-io's plain requests, and requests through a temporary
    # BlockBackend on the node, are not the device's.
    env.io("-d sd0", "write 0 4k")
    env.io("-d sd0", "read 0 4k")
    env.io("hd0", "aio_write -q 0 4k")
    s = stats(env)
    assert (s["wr_operations"], s["wr_bytes"]) == (2, 64 * 1024 + 8192)
    assert (s["rd_operations"], s["rd_bytes"]) == (1, 16 * 1024)
    assert s["flush_operations"] == 1
    # Under a virtual clock each request takes 1 ms, as under qtest, and the
    # device has been idle for as long as the clock moved since.
    assert (s["wr_total_time_ns"], s["rd_total_time_ns"]) == (2_000_000, 1_000_000)
    env.clock.step(3000)
    assert stats(env)["idle_time_ns"] == 3000
    # Writes reached the node: its furthest one ends at 136k.
    assert s["wr_highest_offset"] == 128 * 1024 + 8192


def test_invalid_and_failed_requests_are_counted_apart() -> None:
    env = Env()
    env("blockdev-add", driver="null-co", node_name="null0", size=1 << 20)
    env("blockdev-add", driver="blkdebug", node_name="dbg", image="null0",
        inject_error=[{"event": "read_aio", "errno": 5, "once": True}])
    # raw reads its file with the read_aio event blkdebug fails once.
    env("blockdev-add", driver="raw", node_name="fmt", file="dbg")
    env("device_add", driver="virtio-scsi-pci", id="scsi0")
    env("device_add", driver="scsi-hd", drive="fmt", id="sd0")
    assert env.io("-d sd0", "aio_read -i 0 4k") == "injecting invalid read request\n"
    out = env.io("-d sd0", "aio_read -q 0 4k")
    assert "readv failed: Input/output error" in out
    env.io("-d sd0", "aio_read -q 0 4k")
    s = stats(env)
    assert s["invalid_rd_operations"] == 1
    assert s["failed_rd_operations"] == 1
    # Only the read that succeeded brought bytes.
    assert (s["rd_operations"], s["rd_bytes"]) == (1, 4096)
    # A failed request's time counts (account_failed), an invalid one's not.
    assert s["rd_total_time_ns"] == 2_000_000


def test_block_backend_level_skips_a_mirrors_implicit_filter() -> None:
    """iotests 040/041 test_implicit_node: the device shows its own node."""
    env = Env()
    env("blockdev-add", driver="null-co", node_name="base", size=1 << 20)
    env("blockdev-add", driver="null-co", node_name="target", size=1 << 20)
    env("blockdev-add", driver="copy-on-read", node_name="top", file="base")
    env("device_add", driver="virtio-scsi-pci", id="scsi0")
    env("device_add", driver="scsi-hd", drive="top", id="sd0")
    env("blockdev-mirror", job_id="m0", device="top", target="target", sync="full",
        speed=1)
    [entry] = env("query-blockstats")
    assert (entry["device"], entry["qdev"], entry["node-name"]) == ("", "sd0", "top")
    # copy-on-read filters its file: the filtered child is both the parent
    # (data) and the backing (filtered or COW child) of the entry.
    assert entry["backing"]["node-name"] == "base"
    assert entry["parent"]["node-name"] == "base"
    # query-nodes lists every node as it is, the filter too, with no backing.
    names = [e.get("node-name") for e in env("query-blockstats", query_nodes=True)]
    assert names[:3] == ["base", "target", "top"] and len(names) == 4
    assert all("backing" not in e for e in env("query-blockstats", query_nodes=True))


def test_nodes_report_their_own_furthest_write_and_file_discards(tmp_path) -> None:
    env = Env()
    img = tmp_path / "disk.img"
    img.write_bytes(bytes(1 << 20))
    env("blockdev-add", driver="raw", node_name="disk", discard="unmap",
        file={"driver": "file", "filename": str(img), "node-name": "disk-file",
              "discard": "unmap"})
    env.io("disk", "write 512k 4k")
    env.io("disk", "discard 0 64k")
    by_name = {e["node-name"]: e for e in env("query-blockstats", query_nodes=True)}
    assert by_name["disk"]["stats"]["wr_highest_offset"] == 512 * 1024 + 4096
    assert by_name["disk"]["parent"]["node-name"] == "disk-file"
    assert by_name["disk-file"]["driver-specific"] == {
        "driver": "file", "discard-nb-ok": 1, "discard-nb-failed": 0,
        "discard-bytes-ok": 65536}
    assert "driver-specific" not in by_name["disk"]
    # Without BlockBackends that have a name or a device, nothing is listed.
    assert env("query-blockstats") == []


@pytest.mark.parametrize("version, zone_append, device_accounts", [
    ("5.2.0", False, False), ("7.2.22", False, True), ("10.0.2", True, True)])
def test_each_release_reports_its_own_members(version, zone_append, device_accounts) -> None:
    env = Env(version)
    disk(env)
    s = stats(env)
    assert ("zone_append_operations" in s) is zone_append
    assert (s["account_invalid"], s["account_failed"]) == (device_accounts, device_accounts)
    assert "query-blockstats" in [c["name"] for c in env("query-commands")]


def test_nbd_server_add_exports_by_name_and_downgrades_read_only_nodes() -> None:
    env = Env()
    env("blockdev-add", driver="null-co", node_name="ro", read_only=True)
    env("blockdev-add", driver="null-co", node_name="rw")
    assert env.error("nbd-server-add", device="rw") == "NBD server not running"
    env("nbd-server-start", addr={"type": "unix", "data": {"path": "/nonexistent/nbd.sock"}})
    env("nbd-server-add", device="ro", writable=True)    # block-export-add would refuse
    env("nbd-server-add", device="rw", name="disk", writable=True)
    assert [(e["id"], e["node-name"]) for e in env("query-block-exports")] == \
        [("disk", "rw"), ("ro", "ro")]
    assert env.error("nbd-server-add", device="rw", name="disk") == \
        "Block export id 'disk' is already in use"
    assert env.error("nbd-server-add", device="gone") == \
        "Cannot find device='gone' nor node-name='gone'"
    assert env.error("blockdev-del", node_name="rw") == "Node rw is in use"
    env("nbd-server-remove", name="disk")
    assert env.events[-1] == ("BLOCK_EXPORT_DELETED", {"id": "disk"})
    assert env.error("nbd-server-remove", name="disk") == "Export 'disk' is not found"
    env("blockdev-del", node_name="rw")


@pytest.mark.parametrize("version, order", [
    ("7.2.22", ["first", "second"]), ("10.0.2", ["second", "first"])])
def test_nbd_server_stop_deletes_exports_in_the_releases_order(version, order) -> None:
    env = Env(version)
    env("blockdev-add", driver="null-co", node_name="n0")
    env("nbd-server-start", addr={"type": "unix", "data": {"path": "/nonexistent/nbd.sock"}})
    env("nbd-server-add", device="n0", name="first")
    env("nbd-server-add", device="n0", name="second")
    env.events.clear()
    env("nbd-server-stop")
    assert [data["id"] for _, data in env.events] == order
