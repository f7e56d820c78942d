"""Image locking cases: qemu-img / qemu-io run while a QEMU holds the images.

``python -m tests.img.lock_cases record QEMU_BINDIR`` starts the real QEMU
7.2 (``-machine none``) with the block nodes of :data:`HOLDER_ARGS` over
images made by qmpd-img, runs each case with the real qemu-img / qemu-io
and writes tests/img/data/locks_qemu72.json (exit status and output).
tests/img/test_img_locks.py runs the same with qmpd ``--host-writes`` as the
holder and qmpd-img as the tools: the OFD locks both take must give the
same refusals (``Failed to get "write" lock``) and the same successes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "locks_qemu72.json"

SETUP = [
    ["create", "-q", "-f", "raw", "b.raw", "1M"],
    ["create", "-q", "-f", "qcow2", "-b", "b.raw", "-F", "raw", "l.qcow2"],
    ["create", "-q", "-f", "raw", "r.raw", "1M"],
    ["create", "-q", "-f", "qcow2", "free.qcow2", "1M"],
]

# The holder's nodes: a qcow2 image over its file, and a raw one (DIR: the folder).
HOLDER_ARGS = [
    "-blockdev", "driver=file,filename=DIR/l.qcow2,node-name=f",
    "-blockdev", "driver=qcow2,file=f,node-name=q",
    "-blockdev", "driver=file,filename=DIR/r.raw,node-name=rf",
    "-blockdev", "driver=raw,file=rf,node-name=r",
]

CASES = [
    "IO -c 'read 0 512' l.qcow2",
    "IO -r -c 'read 0 512' l.qcow2",
    "IO -U -r -c 'read 0 512' l.qcow2",
    "IO -U -c 'read 0 512' l.qcow2",
    "IO -f raw -r -c 'read 0 512' l.qcow2",
    "IO -f raw -c 'read 0 512' l.qcow2",
    "IO -f raw -c 'write 0 512' b.raw",
    "IO -f raw -c 'write 0 512' r.raw",
    "IO -f raw -r -c 'read 0 512' r.raw",
    "IO -c 'write 0 512' free.qcow2",
    "IMG info l.qcow2",
    "IMG info -U l.qcow2",
    "IMG check l.qcow2",
    "IMG check -U l.qcow2",
    "IMG map --output=json l.qcow2",
    "IMG map -U --output=json l.qcow2",
    "IMG compare l.qcow2 b.raw",
    "IMG compare -U l.qcow2 b.raw",
    "IMG rebase -u -b '' l.qcow2",
    "IMG resize l.qcow2 2M",
    "IMG resize -f raw r.raw 2M",
    "IMG info free.qcow2",
]

_TIMING = re.compile(r"^(\S+ \S+, \d+ ops; ).*$", re.M)
_DISK_SIZE = re.compile(r"^disk size: .*$", re.M)


def qmpd_img() -> str:
    return shlex.join([sys.executable, "-c",
                       "import sys; from qmpd.img.cli import main; sys.exit(main())"])


def make_images(folder: str) -> None:
    for args in SETUP:
        subprocess.run([*shlex.split(qmpd_img()), *args], cwd=folder, check=True,
                       capture_output=True)


def start_holder(argv: list[str], folder: str) -> subprocess.Popen:
    """Start a holder with a QMP socket in ``folder`` and wait until its
    nodes exist (so its images are open and locked)."""
    sock = os.path.join(folder, "holder.sock")
    args = [a.replace("DIR", folder) for a in HOLDER_ARGS]
    proc = subprocess.Popen([*argv, "-machine", "none", "-nodefaults", "-display", "none",
                             "-qmp", f"unix:{sock},server=on,wait=off", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        if os.path.exists(sock):
            with socket.socket(socket.AF_UNIX) as s:
                try:
                    s.connect(sock)
                    if _has_nodes(s.makefile("rw")):
                        return proc
                except OSError:
                    pass
        if proc.poll() is not None:
            raise RuntimeError(f"holder exited with {proc.returncode}")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("holder did not start")


def _has_nodes(f: object) -> bool:
    """Negotiate, then ask for the named nodes until the holder's last one is there."""
    f.readline()    # type: ignore[attr-defined]  # the greeting
    for request in ('{"execute": "qmp_capabilities"}',
                    '{"execute": "query-named-block-nodes"}'):
        f.write(request + "\n")    # type: ignore[attr-defined]
        f.flush()    # type: ignore[attr-defined]
        while True:
            reply = json.loads(f.readline())    # type: ignore[attr-defined]
            if "return" in reply or "error" in reply:
                break
    return any(n.get("node-name") == "r" for n in reply.get("return", []))


def run_cases(img: str, io: str, folder: str) -> list[dict]:
    out = []
    for case in CASES:
        cmd = re.sub(r"^IMG\b", img, re.sub(r"^IO\b", io, case))
        p = subprocess.run(["sh", "-c", cmd], cwd=folder, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        text = _DISK_SIZE.sub("disk size: MASKED", _TIMING.sub(r"\1TIME", p.stdout))
        out.append({"case": case, "status": p.returncode, "output": text})
    return out


def record(bindir: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        make_images(d)
        holder = start_holder([os.path.join(bindir, "qemu-system-x86_64")], d)
        try:
            cases = run_cases(os.path.join(bindir, "qemu-img"),
                              os.path.join(bindir, "qemu-io"), d)
        finally:
            holder.terminate()
            holder.wait()
    version = subprocess.run([os.path.join(bindir, "qemu-img"), "--version"],
                             capture_output=True, text=True).stdout.splitlines()[0]
    DATA.write_text(json.dumps({"qemu-img": version, "cases": cases}, indent=1) + "\n")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "record":
        record(sys.argv[2])
    else:
        sys.exit("usage: python -m tests.img.lock_cases record QEMU_BINDIR")
