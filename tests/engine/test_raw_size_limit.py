"""raw's ``size`` option is a hard end for writers (block/raw-format.c
raw_adjust_offset): what would go past it fails with ENOSPC instead of
reaching the file (iotest 248 mirrors into a qcow2 image on such a window)."""

from __future__ import annotations

import os

from qmpd.commands.dispatch import Daemon, Dispatcher
from qmpd.img.cli import main as qmpd_img
from qmpd.jobs.clock import VirtualClock
from qmpd.profiles import select


def test_a_qcow2_image_cannot_grow_past_its_raw_window(tmp_path) -> None:
    img = str(tmp_path / "t.qcow2")
    assert qmpd_img(["create", "-q", "-f", "qcow2", img, "4M"]) == 0
    os.truncate(img, 4 << 20)    # the file is long enough for the 1 MiB window
    d = Dispatcher(Daemon(select("7.2.22"), job_time=VirtualClock()))
    d.execute("blockdev-add", {"driver": "qcow2", "node-name": "t", "file": {
        "driver": "raw", "size": 1 << 20, "file": {"driver": "file", "filename": img}}})

    def io(line: str) -> str:
        return d.execute("human-monitor-command", {"command-line": f'qemu-io t "{line}"'})

    # The first data clusters still fit below 1 MiB; a guest write whose
    # cluster would be allocated past it fails as QEMU's does.
    assert io("write 0 64k").startswith("wrote 65536/65536")
    assert io("write 2M 1M") == "write failed: No space left on device\n"
