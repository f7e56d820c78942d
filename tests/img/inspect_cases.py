"""Images and qemu-img command lines for the info/map/compare/check recordings.

``python -m tests.img.inspect_cases record QEMU_IMG`` makes the images with
qmpd-img in a scratch folder, runs the real qemu-img 7.2 on each case and
writes tests/img/data/inspect_qemu72.json; tests/img/test_img_inspect.py
makes the same images and checks qmpd-img against it.  Disk usage depends on
the file system, so "disk size" / "actual-size" are masked in both.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "inspect_qemu72.json"

# (qmpd-img arguments) to build the images, in order.
SETUP = [
    ["create", "-q", "-f", "qcow2", "base.qcow2", "1M"],
    ["io", "-f", "qcow2", "base.qcow2", "-c", "write -P 0x11 0 64k", "-c",
     "write -z 128k 64k"],
    ["create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", "top.qcow2"],
    ["io", "-f", "qcow2", "top.qcow2", "-c", "write -P 0x22 64k 64k"],
    ["create", "-q", "-f", "raw", "r.raw", "1M"],
    ["io", "-f", "raw", "r.raw", "-c", "write -P 0x11 0 64k"],
    ["create", "-q", "-f", "qcow2", "big.qcow2", "2M"],
    ["io", "-f", "qcow2", "big.qcow2", "-c", "write -P 0x11 0 64k", "-c",
     "write -c -P 0x33 128k 64k"],
    ["create", "-q", "-f", "qcow2", "-o", "compat=0.10", "old.qcow2", "1M"],
    ["create", "-q", "-f", "qcow2", "-o", "cluster_size=32768,extended_l2=on", "sub.qcow2",
     "256k"],
    ["io", "-f", "qcow2", "sub.qcow2", "-c", "write -P 0x44 4k 2k", "-c", "write -z 64k 2k"],
    # check: a leak (the L1 table's refcount raised to 2) and a corruption
    # (a data cluster's refcount dropped to 0), written into the refcount
    # block (cluster 2) through the raw format
    ["create", "-q", "-f", "qcow2", "leak.qcow2", "1M"],
    ["io", "-f", "qcow2", "leak.qcow2", "-c", "write -P 0x11 0 64k"],
    ["io", "-f", "raw", "leak.qcow2", "-c", f"write -P 2 {131072 + 2 * 3 + 1} 1"],
    ["create", "-q", "-f", "qcow2", "bad.qcow2", "1M"],
    ["io", "-f", "qcow2", "bad.qcow2", "-c", "write -P 0x11 0 64k", "-c",
     "write -P 0x11 512k 64k"],
    ["io", "-f", "raw", "bad.qcow2", "-c", f"write -P 0 {131072 + 2 * 5 + 1} 1", "-c",
     f"write -P 3 {131072 + 2 * 6 + 1} 1"],
    ["create", "-q", "-f", "qcow2", "bm.qcow2", "1M"],
    ["bitmap", "--add", "-g", "65536", "bm.qcow2", "b0"],
]

CASES = [
    "info base.qcow2", "info --output=json top.qcow2", "info --backing-chain top.qcow2",
    "info --output=json --backing-chain top.qcow2", "info r.raw", "info --output=json r.raw",
    "info -f raw top.qcow2", "info old.qcow2", "info --output=json old.qcow2",
    "info sub.qcow2", "info --output=json sub.qcow2", "info nonexistent.qcow2",
    "map top.qcow2", "map --output=json top.qcow2", "map --output=json r.raw", "map r.raw",
    "map base.qcow2", "map --output=json base.qcow2", "map big.qcow2",
    "map --output=json big.qcow2", "map --output=json sub.qcow2", "map sub.qcow2",
    "map -f raw top.qcow2", "map --output=xml top.qcow2",
    "compare base.qcow2 top.qcow2", "compare -f qcow2 -F raw base.qcow2 r.raw",
    "compare top.qcow2 top.qcow2", "compare base.qcow2 big.qcow2",
    "compare -s base.qcow2 big.qcow2", "compare -q base.qcow2 top.qcow2",
    "compare nonexistent.qcow2 base.qcow2", "compare base.qcow2",
    "check base.qcow2", "check --output=json base.qcow2", "check top.qcow2",
    "check --output=json top.qcow2", "check big.qcow2", "check --output=json big.qcow2",
    "check old.qcow2", "check sub.qcow2", "check --output=json sub.qcow2", "check bm.qcow2",
    "check --output=json bm.qcow2", "check leak.qcow2", "check --output=json leak.qcow2",
    "check -q leak.qcow2", "check bad.qcow2", "check --output=json bad.qcow2",
    "check r.raw", "check -f raw base.qcow2", "check nonexistent.qcow2",
    "check --output=xml base.qcow2", "check", "check -r bogus base.qcow2",
]

_MASKS = [(re.compile(r"^disk size: .*$", re.M), "disk size: MASKED"),
          (re.compile(r'"actual-size": \d+'), '"actual-size": MASKED')]


def mask(text: str) -> str:
    for rx, repl in _MASKS:
        text = rx.sub(repl, text)
    return text


def make_images(folder: str, img: list[str]) -> None:
    for args in SETUP:
        subprocess.run([*img, *args], cwd=folder, check=True, capture_output=True)


def run_case(prog: list[str], case: str, folder: str) -> dict:
    p = subprocess.run([*prog, *case.split()], cwd=folder, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    return {"args": case, "status": p.returncode, "output": mask(p.stdout)}


def record(qemu_img: str) -> None:
    img = [sys.executable, "-c", "import sys; from qmpd.img.cli import main; sys.exit(main())"]
    with tempfile.TemporaryDirectory() as d:
        make_images(d, img)
        cases = [run_case([qemu_img], c, d) for c in CASES]
    version = subprocess.run([qemu_img, "--version"], capture_output=True,
                             text=True).stdout.splitlines()[0]
    DATA.write_text(json.dumps({"qemu-img": version, "cases": cases}, indent=1) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "record":
        record(sys.argv[2])
    else:
        sys.exit("usage: python -m tests.img.inspect_cases record QEMU_IMG")
