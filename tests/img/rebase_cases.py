"""Cases for qemu-img rebase / resize, create over protocol and json: backing
files, qemu-io over blkdebug and qemu-io's quit, recorded from the real QEMU
7.2 tools.

``python -m tests.img.rebase_cases record QEMU_IMG QEMU_IO`` makes the same
images with qmpd-img in a fresh folder per case, runs the case's command
lines with the real qemu-img (``IMG``) and qemu-io (``IO``) and writes
tests/img/data/rebase_qemu72.json: each command's exit status and combined
output, and the SHA-256 of every file in the folder afterwards (the images
must come out byte-identical).  tests/img/test_img_rebase.py replays them
with qmpd-img.  qemu-io's timings and
qemu-img info's disk size are masked.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "rebase_qemu72.json"

# qmpd-img argument lists that build the images each case starts from.
SETUP = [
    ["create", "-q", "-f", "raw", "base.img", "512k"],
    ["io", "-f", "raw", "base.img", "-c", "write -P 0x11 0 512k", "-c",
     "write -P 0x12 1536 1k"],
    ["create", "-q", "-f", "qcow2", "b2.qcow2", "2M"],
    ["io", "-f", "qcow2", "b2.qcow2", "-c", "write -P 0x11 0 64k", "-c",
     "write -P 0x22 100k 3k", "-c", "write -z 300k 64k"],
    ["create", "-q", "-f", "qcow2", "-b", "b2.qcow2", "-F", "qcow2", "mid.qcow2"],
    ["io", "-f", "qcow2", "mid.qcow2", "-c", "write -P 0x44 1M 64k"],
    ["create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "top.qcow2", "3M"],
    ["io", "-f", "qcow2", "top.qcow2", "-c", "write -P 0x33 512k 4k"],
    ["create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "b2.qcow2", "-F", "qcow2",
     "v2.qcow2"],
    ["create", "-q", "-f", "qcow2", "-u", "-b", "gone.qcow2", "-F", "qcow2", "orphan.qcow2",
     "1M"],
    ["create", "-q", "-f", "qcow2", "plain.qcow2", "1M"],
    ["io", "-f", "qcow2", "plain.qcow2", "-c", "write -P 1 0 1M"],
]

# Each case: command lines run one after the other in its own folder.
CASES: list[list[str]] = [
    # unsafe: only the header changes
    ["IMG rebase -u -b b2.qcow2 -F qcow2 top.qcow2", "IMG info top.qcow2"],
    ["IMG rebase -u -b gone2.qcow2 -F qcow2 orphan.qcow2", "IMG info orphan.qcow2"],
    ["IMG rebase -u orphan.qcow2", "IMG info orphan.qcow2"],
    ["IMG rebase -u -b '' top.qcow2"],
    ["IMG rebase -f qcow2 -u -b base.img -F raw top.qcow2", "IMG map --output=json top.qcow2"],
    # safe: what the guest saw is copied first
    ["IMG rebase -b base.img -F raw top.qcow2", "IMG map --output=json top.qcow2",
     "IMG map top.qcow2", "IO -c 'read -P 0x44 1M 64k' -c 'read -P 0x12 1536 1k' top.qcow2"],
    ["IMG rebase -b b2.qcow2 -F qcow2 top.qcow2", "IMG map --output=json top.qcow2"],
    ["IMG rebase -b '' top.qcow2", "IMG map --output=json top.qcow2"],
    ["IMG rebase -b base.img -F raw v2.qcow2", "IMG map --output=json v2.qcow2"],
    ["IMG rebase -b '' v2.qcow2", "IMG map --output=json v2.qcow2"],
    # errors
    ["IMG rebase -u -b b2.qcow2 top.qcow2"],
    ["IMG rebase -b b2.qcow2 top.qcow2"],
    ["IMG rebase -b nope.qcow2 -F qcow2 top.qcow2"],
    ["IMG rebase -u -b x -F nosuchfmt top.qcow2"],
    ["IMG rebase -u -b x -F qcow2 -f raw base.img"],
    ["IMG rebase top.qcow2"],
    ["IMG rebase -u -b x -F qcow2 top.qcow2 mid.qcow2"],
    ["IMG rebase -u -b x -F qcow2 nonexistent.qcow2"],
    ["IMG rebase -b b2.qcow2 -F qcow2 orphan.qcow2"],
    # resize
    ["IMG resize plain.qcow2 2M", "IMG info plain.qcow2"],
    ["IMG resize plain.qcow2 +1M"],
    ["IMG resize -q plain.qcow2 -- -512k"],
    ["IMG resize plain.qcow2 512k"],
    ["IMG resize --shrink plain.qcow2 512k", "IMG map --output=json plain.qcow2"],
    ["IMG resize plain.qcow2 1000"],
    ["IMG resize -f raw base.img 1M", "IMG info base.img"],
    ["IMG resize top.qcow2 4M", "IMG info top.qcow2"],
    ["IMG resize plain.qcow2"],
    ["IMG resize plain.qcow2 x"],
    # create over protocol backing files (iotests 155 and 030)
    ["IMG create -f qcow2 -b null-co:// -F raw n.qcow2 1440K", "IMG info n.qcow2"],
    ["IMG create -f qcow2 -b null-co:// -F raw n.qcow2"],
    ["printf '[inject-error]\\nevent = \"read_aio\"\\n' > bd.conf",
     "IMG create -f qcow2 -o backing_file=blkdebug:bd.conf:base.img,backing_fmt=raw n.qcow2",
     "IMG info n.qcow2"],
    # json: filenames (a format over a file, flat or nested; commas doubled
    # in the Formatting line)
    ["IMG create -f qcow2 -b 'json:{\"driver\":\"raw\",\"file\":{\"driver\":\"file\","
     "\"filename\":\"base.img\"}}' -F raw j.qcow2", "IMG info j.qcow2",
     "IO -c 'read -P 0x11 0 64k' j.qcow2",
     "IO -c 'read -P 1 0 64k' 'json:{\"driver\":\"qcow2\",\"file.driver\":\"file\","
     "\"file.filename\":\"plain.qcow2\"}'",
     "IMG info 'json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"file\","
     "\"filename\":\"plain.qcow2\"}}'"],
    # qemu-io over a blkdebug backing file (iotest 041's TestReadErrors): the
    # rules fire on the reads qcow2's copy-on-write makes, one event per read
    ["IMG create -f raw big.img 4M", "IO -f raw -c 'write -P 7 0 4M' big.img",
     "IMG create -f qcow2 -o backing_file=blkdebug:rw.conf:big.img,backing_fmt=raw t.qcow2",
     "IO -c 'write 1114112 512' t.qcow2", "IO -c 'read -P 7 1M 512' t.qcow2",
     "IO -c 'read -P 7 0 512' -c 'read -P 7 1M 512' -c 'read -P 7 1M 512' t.qcow2",
     "IO -c 'write 1048576 512' t.qcow2", "IO -c 'read 0 2M' -c 'read 0 2M' t.qcow2",
     "IO -c 'write 1040k 40k' t.qcow2",
     "IO -c 'write 1020k 8k' -c 'write 2M 1k' -c 'read 1M 4k' t.qcow2"],
    # qemu-io's quit ends the -c list (iotest 245's O_DIRECT probe)
    ["IO -f raw -t none -c quit -c 'read 0 512' base.img"],
    ["IO -f raw -c 'read -P 0x11 0 512' -c 'q' -c 'read 0 512' base.img"],
    ["IO -f raw -t bogus -c 'read 0 512' base.img"],
    ["IO -f raw -c 'help quit' -c 'help q' base.img"],
]

_TIMING = re.compile(r"^(\S+ \S+, \d+ ops; ).*$", re.M)
_DISK_SIZE = re.compile(r"^disk size: .*$", re.M)


# iotest 041's blkdebug config for TestReadErrors (one read error at 1 MiB,
# armed in state 1; every read_aio event flips the state).
READ_ERROR_CONF = """
[inject-error]
state = "1"
event = "read_aio"
errno = "5"
immediately = "off"
once = "on"
sector = "2048"

[set-state]
state = "1"
event = "read_aio"
new_state = "2"

[set-state]
state = "2"
event = "read_aio"
new_state = "1"
"""


def make_images(folder: str, img: list[str]) -> None:
    with open(os.path.join(folder, "rw.conf"), "w") as f:
        f.write(READ_ERROR_CONF)
    for args in SETUP:
        subprocess.run([*img, *args], cwd=folder, check=True, capture_output=True)


def _digests(folder: str) -> dict[str, str]:
    out = {}
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as f:
            out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def run_case(img: str, io: str, lines: list[str], folder: str) -> dict:
    """Run a case's lines with IMG / IO standing for the two tools (shell words)."""
    steps = []
    for line in lines:
        cmd = re.sub(r"^IMG\b", img, re.sub(r"^IO\b", io, line))
        p = subprocess.run(["sh", "-c", cmd], cwd=folder, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        text = _DISK_SIZE.sub("disk size: MASKED", _TIMING.sub(r"\1TIME", p.stdout))
        steps.append({"status": p.returncode, "output": text})
    return {"lines": lines, "steps": steps, "files": _digests(folder)}


def qmpd_tools() -> tuple[str, str]:
    prog = shlex.join([sys.executable, "-c",
                       "import sys; from qmpd.img.cli import main; sys.exit(main())"])
    return prog, prog + " io"


def record(qemu_img: str, qemu_io: str) -> None:
    img, _ = qmpd_tools()
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, lines in enumerate(CASES):
            d = os.path.join(tmp, str(n))
            os.mkdir(d)
            make_images(d, shlex.split(img))
            out.append(run_case(qemu_img, qemu_io, lines, d))
    version = subprocess.run([qemu_img, "--version"], capture_output=True,
                             text=True).stdout.splitlines()[0]
    DATA.write_text(json.dumps({"qemu-img": version, "cases": out}, indent=1) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "record":
        record(sys.argv[2], sys.argv[3])
    else:
        sys.exit("usage: python -m tests.img.rebase_cases record QEMU_IMG QEMU_IO")
