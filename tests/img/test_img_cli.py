"""The qmpd-img command line itself: usage text and the io data path."""

from __future__ import annotations

from pathlib import Path

import pytest
from img_cases import qmpd_runner

from qmpd.img.cli import main


def test_no_args_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 1
    assert "qmpd-img create" in capsys.readouterr().out


def test_help_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "qmpd-img create" in out and "qmpd-img io" in out


def test_unknown_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 1
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


def test_written_data_reads_back_through_backing_chain(tmp_path: Path) -> None:
    base, top = str(tmp_path / "base.qcow2"), str(tmp_path / "top.qcow2")
    assert qmpd_runner(["qemu-img", "create", "-q", "-f", "qcow2", base, "1M"])[0] == 0
    assert qmpd_runner(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 1M", base])[0] == 0
    assert qmpd_runner(["qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2",
                        "-F", "qcow2", top])[0] == 0
    rc, out, _ = qmpd_runner(["qemu-io", "-f", "qcow2", "-c", "write -P 0x11 1000 10",
                              "-c", "read -P 0x5a 0 1000", "-c", "read -P 0x11 1000 10",
                              "-c", "read -P 0x5a 1010 1037566", top])
    assert rc == 0, out
    assert "Pattern verification failed" not in out
    # The base image is untouched (opened read-only as a backing file).
    rc, out, _ = qmpd_runner(["qemu-io", "-f", "qcow2", "-c", "read -P 0x5a 0 1M", base])
    assert rc == 0 and "Pattern verification failed" not in out


@pytest.mark.parametrize("size,message", [
    # QEMU 7.2's qemu-io (measured): cvtnum's limit, the block layer's, qcow2's L1.
    ("9223372036854775808", "Parsing error: argument too large -- 9223372036854775808\n"),
    ("9223372036854775807",
     "qemu-io: offset(9223372036854775807) exceeds maximum(9223372035781033984)\n"),
    ("4611686018427387904", "qemu-io: Failed to grow the L1 table: File too large\n"),
])
def test_truncate_too_large_is_refused(tmp_path: Path, size: str, message: str) -> None:
    img = str(tmp_path / "t.qcow2")
    assert qmpd_runner(["qemu-img", "create", "-q", "-f", "qcow2", img, "1M"])[0] == 0
    rc, out, err = qmpd_runner(["qemu-io", "-f", "qcow2", "-c", f"truncate {size}", img])
    assert rc == 1 and out + err == message


@pytest.mark.parametrize("command", ["read -P 0xab 512 2048", "readv -P 0xab 512 1024 1024"])
def test_pattern_mismatch_fails(tmp_path: Path, command: str) -> None:
    # read and readv alike: QEMU 7.2's qemu-io exits with 1 after the report.
    img = str(tmp_path / "d.img")
    assert qmpd_runner(["qemu-img", "create", "-q", "-f", "raw", img, "4k"])[0] == 0
    rc, out, _ = qmpd_runner(["qemu-io", "-f", "raw", "-c", command, img])
    assert rc == 1
    assert out.splitlines()[0] == "Pattern verification failed at offset 512, 2048 bytes"
