"""``qemu-img bitmap`` cases: persistent bitmaps made, changed and written
through by qemu-img and qemu-io, compared byte for byte with QEMU 7.2.

    .venv/bin/python tests/img/bitmap_cases.py     # needs QEMU 7.2's tools in PATH

writes tests/data/img/bitmap_checksums.json; tests/img/test_img_bitmap.py replays
the cases through qmpd-img.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from img_cases import DATA, ensure_dir, fresh_dir, qemu_runner, qemu_version, run_case  # noqa: E402

BITMAP_DATA = DATA / "bitmap_checksums.json"
IMG = "$DIR/d.qcow2"


def _img(*args: str) -> list[str]:
    return ["qemu-img", *args]


def _io(*cmds: str, path: str = IMG, ro: bool = False) -> list[str]:
    out = ["qemu-io", "-f", "qcow2"] + (["-r"] if ro else [])
    for c in cmds:
        out += ["-c", c]
    return out + [path]


def _bm(*args: str, path: str = IMG, name: str = "b0") -> list[str]:
    return ["qemu-img", "bitmap", *args, path, name]


def bitmap_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []

    def add(case_id: str, *steps: list[str]) -> None:
        cases.append({"id": case_id, "steps": [list(s) for s in steps]})

    create = _img("create", "-q", "-f", "qcow2", IMG, "4M")
    add("lifecycle", create, _io("write -P 1 0 64k"),
        _bm("--add"), _bm("--add", "-g", "512k", name="big"),
        _bm("--add", "--disable", name="off"), _io("write -P 2 1M 64k"),
        _bm("--add", name="m"), _bm("--merge", "off", name="m"),
        _bm("--add", name="tmp"), _bm("--remove", name="tmp"),
        _bm("--add", name="c"), _bm("--clear", name="c"), _bm("--disable", name="c"),
        _bm("--enable", name="c"), _io("write -P 3 3M 4k", "write -z 2M 128k", "discard 0 64k"))
    add("granularities", create,
        _bm("--add", "-g", "512", name="g512"), _bm("--add", "-g", "4k", name="g4k"),
        _bm("--add", "-g", "2M", name="g2m"), _bm("--add", "-g", "1G", name="g1g"),
        _io("write -P 5 100 1", "write -P 6 4095k 2k", "write -P 7 1M 1M"),
        _bm("--add", "-g", "65536", name="g64k"), _io("write -P 8 3M 64k"))
    add("odd-size", _img("create", "-q", "-f", "qcow2", IMG, "1000448"),
        _bm("--add", "-g", "512"), _io("write -P 1 999k 1024"), _bm("--add", name="b1"),
        _io("write -P 2 0 512"))
    add("cluster-4k", _img("create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", IMG, "64M"),
        _bm("--add", "-g", "512"), _bm("--add", name="b1"), _io("write -P 1 0 20M"),
        _io("write -P 2 40M 1M", "write -P 3 63M 512"), _bm("--clear", name="b1"))
    add("cluster-512", _img("create", "-q", "-f", "qcow2", "-o", "cluster_size=512", IMG, "8M"),
        _bm("--add", "-g", "512"), _io("write -P 1 0 1M", "write -P 2 7M 4k"),
        _bm("--add", name="b1"))
    add("actions-in-order", create,
        _bm("--add", "--disable", "--clear", "--enable", name="x"),
        _bm("--add", "--remove", "--add", name="y"), _io("write -P 1 0 1M"),
        _bm("--remove", "--add", name="x"), _bm("--disable", name="y"))
    add("remove-all", create, _bm("--add"), _io("write -P 1 0 64k"), _bm("--add", name="b1"),
        _bm("--remove"), _bm("--remove", name="b1"), _io("write -P 2 0 64k"))
    add("merge-source-file", create, _img("create", "-q", "-f", "qcow2", "$DIR/s.qcow2", "4M"),
        _bm("--add", path="$DIR/s.qcow2", name="s0"),
        _bm("--add", "-g", "1M", path="$DIR/s.qcow2", name="s1"),
        _io("write -P 1 64k 64k", "write -P 2 2M 1", path="$DIR/s.qcow2"),
        _bm("--add", "--disable"), _bm("--merge", "s0", "-b", "$DIR/s.qcow2", "-F", "qcow2"),
        _bm("--merge", "s1", "-b", "$DIR/s.qcow2"), _bm("--add", "-g", "4k", name="fine"),
        _bm("--merge", "s1", "-b", "$DIR/s.qcow2", name="fine"),
        _bm("--merge", "b0", name="fine"))
    add("merge-sizes", create, _img("create", "-q", "-f", "qcow2", "$DIR/s.qcow2", "2M"),
        _bm("--add", path="$DIR/s.qcow2", name="s0"), _bm("--add"),
        _bm("--merge", "s0", "-b", "$DIR/s.qcow2"), _bm("--merge", "nosuch"))
    add("errors", create, _bm("--add"), _bm("--add"), _bm("--remove", name="nosuch"),
        _bm("--clear", name="nosuch"), _bm("--enable", name="nosuch"),
        _bm(), _bm("--clear", "-g", "64k"), _bm("--add", "-g", "100", name="x"),
        _bm("--add", "-g", "256", name="x"), _bm("--add", "-g", "4G", name="x"),
        _bm("-F", "qcow2", "--add", name="x"), _bm("--enable", "-b", "$DIR/d.qcow2", name="x"),
        _img("bitmap", "--add", IMG),
        # (an over-long name or a v2 image: QEMU's text names the random
        # node name qemu-img gave the image)
        _bm("--add", "--add", name="twice"), _bm("--add", name="z" * 1023))
    add("readonly-io", create, _bm("--add"), _io("write -P 1 0 64k"),
        _io("read -P 1 0 64k", ro=True), _io("write -P 1 64k 64k"))
    return cases


def qmpd_runner(inv: list[str]) -> tuple[int, str, str]:
    """qmpd-img in-process: qemu-img SUBCOMMAND ... / qemu-io ... -> io."""
    from qmpd.img.cli import main

    argv = inv[1:] if inv[0] == "qemu-img" else ["io"] + inv[1:]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def main() -> None:
    out = []
    with tempfile.TemporaryDirectory(prefix="qmpd-bitmap-gen-") as tmp:
        for case in bitmap_cases():
            result = run_case(case, fresh_dir(Path(tmp), case["id"]), qemu_runner)
            out.append({**case, **result})
    ensure_dir(BITMAP_DATA.parent)
    BITMAP_DATA.write_text(json.dumps({"qemu": qemu_version(), "cases": out}, indent=1) + "\n")
    print(f"{BITMAP_DATA}: {len(out)} cases")


if __name__ == "__main__":
    main()
