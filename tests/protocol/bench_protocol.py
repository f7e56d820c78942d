#!/usr/bin/env python3
"""Throughput of the protocol core (not collected by pytest).

Prints messages/s and MB/s for: encoding typical replies, encoding a large
query-named-block-nodes-like reply, parsing pipelined commands (whole chunks,
and byte-sliced so the exact lexer runs), and Session.feed+reply end to end;
with the stdlib json module as a yardstick.

    .venv/bin/python tests/protocol/bench_protocol.py
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from qmpd.protocol import Session
from qmpd.protocol.encode import dumps, encode_message
from qmpd.protocol.splitter import JSONStreamParser

VERSION = {"qemu": {"major": 7, "minor": 2, "micro": 22}, "package": "bench"}


def node(i: int) -> dict:
    # shaped like a BlockDeviceInfo in schema member order
    return {"file": f"json:{{\"driver\": \"null-co\", \"node-name\": \"n{i}\"}}",
            "node-name": f"n{i}", "ro": False, "drv": "null-co", "backing_file_depth": 0,
            "encrypted": False, "detect_zeroes": "off", "bps": 0, "bps_rd": 0, "bps_wr": 0,
            "iops": 0, "iops_rd": 0, "iops_wr": 0,
            "image": {"filename": f"null-co://n{i}", "format": "null-co", "dirty-flag": False,
                      "actual-size": 0, "virtual-size": 1073741824},
            "cache": {"writeback": True, "direct": False, "no-flush": False},
            "write_threshold": 0}


def bench(label: str, fn: Callable[[], int], seconds: float = 1.0) -> None:
    n = 0
    units = 0
    t0 = time.perf_counter()
    while True:
        units += fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            break
    print(f"{label:48s} {units / dt:12,.0f} /s")


def main() -> None:
    small = {"return": {}, "id": 1}
    version = {"return": VERSION, "id": "abc"}
    error = {"error": {"class": "GenericError", "desc": "Parameter 'x' is unexpected"}, "id": 7}
    big = {"return": [node(i) for i in range(100)], "id": 1}
    big_bytes = len(encode_message(big))

    print("encode (messages/s)")
    bench("  dumps small return", lambda: (dumps(small), 1)[1])
    bench("  dumps query-version reply", lambda: (dumps(version), 1)[1])
    bench("  dumps error reply", lambda: (dumps(error), 1)[1])
    bench(f"  dumps 100-node reply ({big_bytes} B)", lambda: (dumps(big), 1)[1])
    bench("  json.dumps 100-node reply (yardstick)", lambda: (json.dumps(big), 1)[1])

    cmds = [json.dumps({"execute": "query-version", "id": i}).encode() + b"\n" for i in range(1000)]
    cmds += [json.dumps({"execute": "blockdev-add", "arguments": {
        "driver": "qcow2", "node-name": f"n{i}", "file": {"driver": "file", "filename": "/tmp/x"}},
        "id": i}).encode() + b"\n" for i in range(1000)]
    stream = b"".join(cmds)
    chunks = [stream[i:i + 4096] for i in range(0, len(stream), 4096)]

    def parse_chunks() -> int:
        p = JSONStreamParser()
        return sum(len(p.feed(c)) for c in chunks)

    def parse_lines() -> int:
        p = JSONStreamParser()
        return sum(len(p.feed(c)) for c in cmds)

    sliced = [stream[i:i + 7] for i in range(0, 70000, 7)]

    def parse_sliced() -> int:
        p = JSONStreamParser()
        return sum(len(p.feed(c)) for c in sliced)

    def json_lines() -> int:
        for c in cmds:
            json.loads(c)
        return len(cmds)

    print("parse (messages/s)")
    bench("  one command per feed", parse_lines)
    bench("  4 KiB chunks (messages cut at edges)", parse_chunks)
    bench("  7-byte slices (exact lexer)", parse_sliced)
    bench("  json.loads per line (yardstick)", json_lines)

    def session_round() -> int:
        s = Session(VERSION)
        r = s.feed(b'{"execute":"qmp_capabilities"}')
        s.reply(r[0], {})
        n = 0
        for c in cmds[:1000]:
            for item in s.feed(c):
                s.reply(item, VERSION)
                n += 1
        return n

    print("session (commands/s)")
    bench("  feed + reply(query-version)", session_round)


if __name__ == "__main__":
    main()
