#!/usr/bin/env python3
"""Record how real QEMU 7.2 answers raw QMP byte streams (not a test module).

Each case is a list of byte chunks sent on a fresh connection (optionally
after negotiating, optionally with OOB).  Every reply line is recorded as the
exact text QEMU sent.  The result is committed as
tests/data/protocol/qemu_cases.json and replayed by test_qemu_cases.py, so CI
needs no QEMU.

    .venv/bin/python tests/protocol/qemu_oracle.py [--out FILE] [--only NAME...]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "data" / "protocol" / "qemu_cases.json"

CAPS = b'{"execute": "qmp_capabilities"}\n'
CAPS_OOB = b'{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}\n'

# name -> (mode, chunks, description); mode: "neg" negotiated, "oob" negotiated
# with OOB, "raw" not negotiated.
CASES: dict[str, tuple[str, list[bytes], str]] = {
    "zero-exponent": ("neg", [b'{"execute":"x","id":0e5}'],
                      "IN_ZERO takes no exponent: 0 then keyword e"),
    "zero-exponent-frac": ("neg", [b'{"execute":"x","id":0.5e1}'], "0.5e1 is one float"),
    "two-ff": ("neg", [b'\xff\xff{"execute":"x"}'], "each impossible byte is its own error"),
    "nul-top": ("neg", [b'\x00{"execute":"x"}'], "NUL at top level: stray '' (C string)"),
    "ctrl-top": ("neg", [b'\x01{"execute":"x"}'], "control byte at top level"),
    "recovery-skips-string": ("neg", [b'%"a}b"{"execute":"x"}'],
                              "recovery skips quotes but stops at }"),
    "recovery-ctrl": ("neg", [b'%\x01{"execute":"x"}'], "control byte during recovery"),
    "recovery-tab": ("neg", [b'%\t{"execute":"x"}'], "TAB during recovery is skipped"),
    "recovery-newline": ("neg", [b'%\n{"execute":"x"}'], "LF ends recovery"),
    "bracket-brace-typo": ("neg", [b'[}', b'{"execute":"x"}', b']'],
                           "a stray close ends the message at once"),
    "brace-bracket": ("neg", [b'{]'], "{] is parsed at once"),
    "list-sep": ("neg", [b'[1}]'], "expected separator in list"),
    "dict-sep": ("neg", [b'{"a":1]'], "expected separator in dict"),
    "long-keyword": ("neg", [b'{"execute":"x","id":' + b'a' * 1100 + b'}'],
                     "parse_error() cuts its message at 1023 bytes"),
    "short-uescape": ("neg", [b'{"execute":"x","id":"\\u12"}'], "cvt4hex runs past the quote"),
    "uescape-nonhex": ("neg", [b'{"execute":"x","id":"\\u12\xc3\xa9x"}'], "non-hex in \\u"),
    "surrogate-pair": ("neg", [b'{"execute":"x","id":"\\uD83D\\uDE00"}'], "valid pair"),
    "surrogate-bad-trail": ("neg", [b'{"execute":"x","id":"\\uD83D\\u0041"}'], "bad trail"),
    "noncharacter-escape": ("neg", [b'{"execute":"x","id":"\\uFFFE"}'], "noncharacter"),
    "noncharacter-pair": ("neg", [b'{"execute":"x","id":"\\uDBFF\\uDFFF"}'], "U+10FFFF"),
    "noncharacter-raw": ("neg", [b'{"execute":"x","id":"\xef\xbf\xbe"}'], "raw U+FFFE"),
    "overlong-raw": ("neg", [b'{"execute":"x","id":"\xe0\x80\xaf"}'], "overlong"),
    "nul-escape": ("neg", [b'{"execute":"x","id":"\\u0000"}'], "\\u0000 echoed"),
    "nul-key-modutf8": ("neg", [b'{"execute":"x","id":{"\xc0\x80":1,"b":2}}'], "C0 80 key"),
    "raw-utf8-echo": ("neg", [b'{"execute":"x","id":"\xc3\xa9\xf0\x9f\x98\x80\x7f"}'], "echo"),
    "sq-escape": ("neg", [b"{'execute':'x','id':'a\\'b\"c'}"], "\\' escape"),
    "dup-in-id": ("neg", [b'{"execute":"x","id":{"a":1,"a":[1,]}}'], "first error wins"),
    "dup-key": ("neg", [b'{"execute":"x","execute":"y"}'], "duplicate key"),
    "numbers": ("neg", [b'{"execute":"x","id":[18446744073709551615,18446744073709551616,'
                        b'-9223372036854775808,-9223372036854775809,1e400,-1e400,-0,-0.0,'
                        b'1E5,1e-400,12345678901234567890123]}'], "number conversions"),
    "id-object-order": ("neg", [b'{"execute":"x","id":{"b":1,"a":[],"status":1,"singlestep":2}}'],
                        "echoed id keys in hash order"),
    "escape-nonascii": ("neg", [b'{"execute":"x","id":"\\\xc3\xa9"}'], "backslash + UTF-8"),
    "bad-utf8-then-escape": ("neg", [b'{"execute":"x","id":"\xc3\\q"}'], "first error wins"),
    "caps-again-bad-args": ("neg", [b'{"execute":"qmp_capabilities","arguments":{"foo":1},"id":1}'],
                            "validation before 'already complete'"),
    "caps-again-enable": ("neg", [b'{"execute":"qmp_capabilities","arguments":{"enable":["oob"]},'
                                  b'"id":2}'], "already complete"),
    "caps-pipelined": ("raw", [b'{"execute":"qmp_capabilities","id":1}'
                               b'{"execute":"nosuch","id":2}'], "negotiation then command mode"),
    "caps-oob-twice": ("raw", [b'{"execute":"qmp_capabilities","arguments":{"enable":["oob","oob"]},'
                               b'"id":1}{"exec-oob":"nosuch","id":2}'], "oob enabled"),
    "exec-oob-no-oob": ("neg", [b'{"exec-oob":"nosuch","id":2}'], "unexpected without oob"),
    "exec-oob-bad-type": ("oob", [b'{"exec-oob":1,"id":2}'], "must be a string"),
    "exec-oob-inband": ("oob", [b'{"exec-oob":"query-version","id":2}'], "does not support OOB"),
    "exec-oob-caps": ("oob", [b'{"exec-oob":"qmp_capabilities","id":2}'], "does not support OOB"),
    "envelope-order": ("oob", [b'{"zzz":1,"execute":2,"exec-oob":3,"arguments":4,"id":5}'],
                       "exec-oob checked first"),
    "envelope-unexpected-first": ("neg", [b'{"aaa":1,"execute":2,"id":6}'], "bucket order"),
    "scalar-waits": ("neg", [b'42', b' '], "a number needs a terminator"),
    "keyword-true": ("neg", [b'true '], "top-level true"),
    "string-top": ("neg", [b"'x'"], "top-level single-quoted string"),
    "neg-sign-alone": ("neg", [b'- {"execute":"x"}'], "stray '- '"),
    "mantissa-bad": ("neg", [b'1.x {"execute":"x"}'], "stray '1.x'"),
    "exp-bad": ("neg", [b'1e+ {"execute":"x"}'], "stray '1e+ '"),
    "nesting-1024-id": ("neg", [b'{"execute":"x","id":' + b'[' * 1023 + b']' * 1023 + b'}'],
                        "depth 1024 in total accepted"),
    "nesting-1025-id": ("neg", [b'{"execute":"x","id":' + b'[' * 1024 + b']' * 1024 + b'}'],
                        "depth 1025: error then strays"),
    "token-count": ("neg", [b'[' + b'0,' * 1048575 + b'0]'], "2M token limit"),
    "token-size": ("neg", [b'"' + b'a' * (64 << 20) + b' {"execute":"x"}'], "64 MiB token"),
}


def _recv_until_quiet(s: socket.socket, quiet: float, limit: float) -> bytes:
    buf = b""
    deadline = time.time() + limit
    s.settimeout(quiet)
    while time.time() < deadline:
        try:
            d = s.recv(1 << 20)
        except TimeoutError:
            break
        if not d:
            break
        buf += d
    return buf


def run_case(sock_path: str, mode: str, chunks: list[bytes], big: bool) -> list[str]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    try:
        greeting = _recv_until_quiet(s, 0.5, 5)
        assert greeting.startswith(b'{"QMP"'), greeting
        if mode in ("neg", "oob"):
            s.sendall(CAPS_OOB if mode == "oob" else CAPS)
            r = _recv_until_quiet(s, 0.3, 5)
            assert r == b'{"return": {}}\r\n', r
        out = b""
        for c in chunks:
            s.settimeout(900)  # QEMU reads slowly; sendall must not time out
            s.sendall(c)
            out += _recv_until_quiet(s, 3.0 if big else 0.4, 300)
        lines = out.split(b"\r\n")
        assert lines[-1] == b"", out
        return [ln.decode("ascii") for ln in lines[:-1]]
    finally:
        s.close()
        time.sleep(0.1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="qmpd-proto-oracle-")
    sock = os.path.join(tmp, "qmp.sock")
    qemu = subprocess.Popen(["qemu-system-x86_64", "-machine", "none", "-nodefaults",
                             "-display", "none", "-qmp", f"unix:{sock},server=on,wait=off"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        existing = {}
        if os.path.exists(args.out):
            existing = {c["name"]: c for c in json.load(open(args.out))["cases"]}
        cases = []
        for name, (mode, chunks, desc) in CASES.items():
            if args.only and name not in args.only:
                if name in existing:
                    cases.append(existing[name])
                continue
            big = sum(map(len, chunks)) > 100000
            replies = run_case(sock, mode, chunks, big)
            print(name, len(replies), replies[:3], file=sys.stderr)
            case = {"name": name, "mode": mode, "description": desc, "replies": replies}
            if big:
                # store a recipe instead of megabytes of input
                case["chunks_recipe"] = name
            else:
                case["chunks_hex"] = [c.hex() for c in chunks]
            cases.append(case)
        qemu_version = "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"
        with open(args.out, "w") as f:
            json.dump({"qemu": qemu_version, "cases": cases}, f, indent=1)
            f.write("\n")
    finally:
        qemu.terminate()
        qemu.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
