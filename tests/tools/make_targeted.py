"""Writes the hand-written targeted scenarios tests/data/recorded/scenarios/t-*.json.

Each scenario exercises one group of rules of /work/shared/reference/qmp-block-reference.md
(section numbers in the descriptions), with a query after the interesting steps, so
that the recordings pin down both the replies and the resulting graph.  The steps
are written out by hand below; this script only saves typing and keeps the JSON
uniform.  Re-run it, then re-record (see tests/data/recorded/README.md).

    python3 tests/tools/make_targeted.py --outdir tests/data/recorded/scenarios
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

Json = Any
SCENARIOS: list[dict[str, Json]] = []

Q = {"execute": "query-named-block-nodes", "arguments": {"flat": True}}
QN = {"execute": "query-named-block-nodes"}
G = {"execute": "x-debug-query-block-graph"}
QB = {"execute": "query-block"}


def add(**args: Json) -> dict[str, Json]:
    return {"execute": "blockdev-add", "arguments": fix(args)}


def add_d(d: dict[str, Json]) -> dict[str, Json]:
    return {"execute": "blockdev-add", "arguments": d}


def reopen(*entries: dict[str, Json]) -> dict[str, Json]:
    return {"execute": "blockdev-reopen", "arguments": {"options": list(entries)}}


def dele(name: str) -> dict[str, Json]:
    return {"execute": "blockdev-del", "arguments": {"node-name": name}}


def obj(qom: str, oid: str, **extra: Json) -> dict[str, Json]:
    return {"execute": "object-add", "arguments": {"qom-type": qom, "id": oid, **extra}}


def objdel(oid: str) -> dict[str, Json]:
    return {"execute": "object-del", "arguments": {"id": oid}}


def raw(text: str) -> dict[str, Json]:
    return {"raw": text}


def fix(d: dict[str, Json]) -> dict[str, Json]:
    """Python keyword arguments use '_' where QAPI uses '-'."""
    return {k.replace("_", "-"): v for k, v in d.items()}


def n(**d: Json) -> dict[str, Json]:
    return fix(d)


def f(path: str, **d: Json) -> dict[str, Json]:
    """Inline/entry dict of a file node."""
    return {"driver": "file", **fix(d), "filename": f"$DIR/{path}"}


def sc(name: str, desc: str, setup: list[str], steps: list[dict[str, Json]]) -> None:
    SCENARIOS.append({"name": name, "description": desc, "source": "hand-written (tests/tools/make_targeted.py)",
                      "setup": setup, "steps": steps})


QC = "qemu-img create -q -f qcow2"
RAW = "qemu-img create -q -f raw"
CHAIN = [f"{QC} $DIR/base.qcow2 1048576", f"{QC} -b $DIR/base.qcow2 -F qcow2 $DIR/top.qcow2 1048576",
         f"{QC} -b $DIR/top.qcow2 -F qcow2 $DIR/top2.qcow2 1048576"]
RELCHAIN = [f"{QC} $DIR/base.qcow2 1048576", f"{QC} -b base.qcow2 -F qcow2 $DIR/mid.qcow2 1048576",
            f"{QC} -b mid.qcow2 -F qcow2 $DIR/top.qcow2 1048576"]

# --------------------------------------------------------------------------- 4.2 / 4.3
sc("t-node-names", "node-name rules (§4.2): invalid characters, length 31/32, duplicates, root without name, inline children",
   [], [
       add(driver="null-co", node_name=""), add(driver="null-co", node_name="1abc"),
       add(driver="null-co", node_name="_abc"), add(driver="null-co", node_name="-a"),
       add(driver="null-co", node_name="a b"), add(driver="null-co", node_name="a/b"),
       add(driver="null-co", node_name="a:b"), add(driver="null-co", node_name="a!"),
       add(driver="null-co", node_name="#block1"), add(driver="null-co", node_name="\u00e9"),
       add(driver="null-co", node_name="a" * 31), add(driver="null-co", node_name="b" * 32),
       add(driver="null-co", node_name="N.x-1_y"), add(driver="null-co", node_name="N.x-1_y"),
       add(driver="null-co"), Q,
       add(driver="raw", node_name="r1", file=n(driver="null-co", node_name="a b")),
       add(driver="raw", node_name="r2", file=n(driver="null-co", node_name="N.x-1_y")),
       add(driver="raw", node_name="r3", file=n(driver="null-co", node_name="c" * 32)),
       add(driver="raw", node_name="r4", file=n(driver="null-co", node_name="r4")),
       add(driver="raw", node_name="r5", file=n(driver="null-co", node_name="r5child")), Q, G,
       add(driver="null-co", node_name="r5child"), add(driver="null-aio", node_name="Z9"), Q,
   ])

sc("t-auto-names", "auto-generated #block names (§4.3): inline and header-opened nodes, counter advance on failed adds, referencing and reopening auto nodes",
   CHAIN, [
       add(driver="raw", node_name="r1", file=n(driver="null-co", size=65536)), Q, G,
       add(driver="raw", node_name="bad", file=n(driver="file", filename="$DIR/nope.img")),
       add(driver="qcow2", node_name="top", file=f("top2.qcow2")), Q, G,
       add(driver="raw", node_name="r2", file="$NODE[file:$DIR/base.qcow2]"),
       add(driver="qcow2", node_name="q2", file="$NODE[file:$DIR/base.qcow2]", backing=None),
       dele("$NODE[null-co:json:{\"driver\": \"null-co\", \"size\": 65536}]"),
       dele("$NODE[qcow2:$DIR/base.qcow2]"), dele("$NODE[file:$DIR/top2.qcow2]"),
       reopen(n(driver="qcow2", node_name="$NODE[qcow2:$DIR/top.qcow2]", file="$NODE[file:$DIR/top.qcow2]")),
       reopen(n(driver="qcow2", node_name="top", file="$NODE[file:$DIR/top2.qcow2]",
                backing="$NODE[qcow2:$DIR/top.qcow2]")), Q,
       reopen(n(driver="qcow2", node_name="top", file=n(driver="file", filename="$DIR/top2.qcow2"),
                backing="$NODE[qcow2:$DIR/top.qcow2]")), Q,
       reopen(n(driver="qcow2", node_name="top", file=n(driver="file", node_name="$NODE[file:$DIR/top2.qcow2]",
                                                        filename="$DIR/top2.qcow2"),
                backing="$NODE[qcow2:$DIR/top.qcow2]")),
       dele("top"), Q, G,
   ])

# --------------------------------------------------------------------------- 4.4
sc("t-inline-vs-ref", "inline vs referenced children (§4.4, §4.7): ownership, deletion, unknown references",
   [f"{QC} $DIR/a.qcow2 1048576", f"{RAW} $DIR/d.img 65536"], [
       add(driver="qcow2", node_name="qa", file=f("a.qcow2", node_name="qa-file")), Q, G,
       dele("qa-file"),
       add(driver="file", node_name="df", filename="$DIR/d.img"),
       add(driver="raw", node_name="rd", file="df"), Q, G,
       add(driver="raw", node_name="rx", file="nosuch"),
       add(driver="raw", node_name="rx", file=""),
       add(driver="raw", node_name="rx", file=5),
       add(driver="raw", node_name="rx", file=None),
       dele("df"), dele("rd"), Q, dele("df"), dele("qa"), Q, G,
       add(driver="raw", node_name="r3", file=n(driver="raw", node_name="r3in", file=n(driver="null-co"))),
       add(driver="raw", node_name="r4", file="r3in"), G,
       dele("r3"), dele("r4"), dele("r3"), Q,
   ])

sc("t-ro-inherit-add", "read-only / auto-read-only inheritance at blockdev-add (§4.4)",
   CHAIN + [f"{RAW} $DIR/d.img 65536"], [
       add(driver="qcow2", node_name="rq", read_only=True, file=f("base.qcow2")), Q,
       add(driver="raw", node_name="rr", auto_read_only=True, file=f("d.img", node_name="rrf")), Q,
       add(driver="file", node_name="wf", filename="$DIR/top.qcow2", read_only=False),
       add(driver="qcow2", node_name="rt", read_only=True, file="wf", backing=None), Q, G,
       add(driver="raw", node_name="rw2", read_only=True, file=n(driver="null-co", read_only=False)), Q, G,
       add(driver="copy-on-read", node_name="cor", read_only=True, file=n(driver="null-aio")), Q, G,
       add(driver="null-co", node_name="fs1", force_share=True),
       add(driver="null-co", node_name="fs2", force_share=True, read_only=True),
       add(driver="null-co", node_name="fs3", force_share=False), Q,
   ])

# --------------------------------------------------------------------------- 4.5 chains
sc("t-header-chain", "backing chain opened from image headers (§4.5, §6.1, §6.2): flat and non-flat queries",
   CHAIN, [
       add(driver="qcow2", node_name="top", file=f("top2.qcow2")), Q, QN, G, QB,
       {"execute": "query-named-block-nodes", "arguments": {"flat": False}},
       dele("$NODE[qcow2:$DIR/base.qcow2]"), dele("$NODE[qcow2:$DIR/top.qcow2]"),
       dele("top"), Q, G,
   ])

sc("t-header-relative", "relative backing file names in headers, backing-filename vs full-backing-filename (§4.5, §6.1.2)",
   RELCHAIN, [
       add(driver="qcow2", node_name="top", file=f("top.qcow2", node_name="top-file")), QN, G,
       add(driver="file", node_name="mf", filename="$DIR/mid.qcow2"),
       add(driver="qcow2", node_name="mid2", file="mf"), Q, G,
   ])

sc("t-backing-null", "backing: null on an image with a header backing; json: filename; reopen rules (§4.5, §5.2 step 7, §6.1.3)",
   CHAIN, [
       add(driver="qcow2", node_name="top", file=f("top.qcow2", node_name="tf"), backing=None), Q, QN, G,
       reopen(n(driver="qcow2", node_name="top", file="tf")),
       reopen(n(driver="qcow2", node_name="top", file="tf", backing=None)), Q,
       add(driver="qcow2", node_name="base", file=f("base.qcow2")),
       reopen(n(driver="qcow2", node_name="top", file="tf", backing="base")), Q, QN, G,
       reopen(n(driver="qcow2", node_name="top", file="tf")),
       reopen(n(driver="qcow2", node_name="top", file="tf", backing=None)), Q, G,
       add(driver="qcow2", node_name="b2", file=f("base.qcow2", node_name="bf2"), backing=None), Q,
       reopen(n(driver="qcow2", node_name="b2", file="bf2")), Q,
       {"execute": "blockdev-add", "arguments": {"driver": "qcow2", "node-name": "t3", "backing": "",
                                                 "file": {"driver": "file", "filename": "$DIR/top2.qcow2"}}}, Q,
   ])

sc("t-backing-ref", "backing given as a reference; busy backing node; swaps (§4.5, §4.7, §5.4)",
   CHAIN + [f"{QC} $DIR/other.qcow2 1048576"], [
       add(driver="qcow2", node_name="base", file=f("base.qcow2", node_name="base-file")),
       add(driver="qcow2", node_name="other", file=f("other.qcow2", node_name="other-file")),
       add(driver="qcow2", node_name="top", file=f("top.qcow2", node_name="top-file"), backing="base"), Q, G,
       dele("base"), dele("base-file"),
       reopen(n(driver="qcow2", node_name="top", file="top-file", backing="other")), Q, G,
       dele("base"), Q,
       reopen(n(driver="qcow2", node_name="top", file="top-file", backing="nosuch")),
       reopen(n(driver="qcow2", node_name="top", file="top-file", backing="")),
       reopen(n(driver="qcow2", node_name="other", file="other-file", backing="top")),
       reopen(n(driver="qcow2", node_name="top", file="top-file", backing="top")),
       reopen(n(driver="qcow2", node_name="top", file="top-file", backing="top-file")), Q, G,
       reopen(n(driver="qcow2", node_name="top", file="top-file", backing="other-file")), Q, G,
       add(driver="null-co", node_name="nb", size=1048576),
       reopen(n(driver="qcow2", node_name="top", file="top-file", backing="nb")), QN, G,
       dele("other"), dele("top"), dele("other"), dele("nb"), Q,
   ])

sc("t-backing-inline", "inline backing dicts, named and unnamed; json: filenames; reopening inherited backing via dict (§4.5, §5.4, §6.1.3)",
   CHAIN, [
       add(driver="qcow2", node_name="top", file=f("top2.qcow2"),
           backing=n(driver="qcow2", node_name="mid", file=f("top.qcow2"),
                     backing=n(driver="qcow2", file=f("base.qcow2")))), Q, QN, G,
       reopen(n(driver="qcow2", node_name="top", file=f("top2.qcow2"),
                backing=n(driver="qcow2", node_name="mid", file=f("top.qcow2"),
                          backing=n(driver="qcow2", file=f("base.qcow2"))))), Q,
       reopen(n(driver="qcow2", node_name="top", file=f("top2.qcow2"),
                backing=n(driver="qcow2", node_name="mid2", file=f("top.qcow2"),
                          backing=n(driver="qcow2", file=f("base.qcow2"))))),
       reopen(n(driver="qcow2", node_name="top", file=f("top2.qcow2"),
                backing=n(driver="qcow2", node_name="mid", file=f("top.qcow2"), read_only=False,
                          backing=n(driver="qcow2", file=f("base.qcow2"))))), Q, G,
       reopen(n(driver="qcow2", node_name="top", file=f("top2.qcow2"), backing="mid")), Q,
       reopen(n(driver="qcow2", node_name="mid", file=f("top.qcow2"), backing=None)), Q, G,
       reopen(n(driver="qcow2", node_name="top", file=f("top2.qcow2"),
                backing=n(driver="qcow2", file=f("top.qcow2")))),
       dele("mid"), dele("top"), Q,
       add(driver="qcow2", node_name="t2", file=f("top2.qcow2"),
           backing=n(driver="raw", file=n(driver="null-co", size=1048576))), Q, G,
       reopen(n(driver="qcow2", node_name="t2", file=f("top2.qcow2"),
                backing=n(driver="raw", file=n(driver="null-co", size=1048576)))), Q,
   ])

sc("t-missing-backing", "header backing that does not exist; over-raw backing format; unsafe header (§4.5, §4.6)",
   [f"{RAW} $DIR/disk.img 65536", f"{QC} -u -b $DIR/gone.qcow2 -F qcow2 $DIR/orphan.qcow2 1048576",
    f"{QC} -b $DIR/disk.img -F raw $DIR/over-raw.qcow2 65536"], [
       add(driver="qcow2", node_name="o1", file=f("orphan.qcow2")),
       add(driver="qcow2", node_name="o2", file=f("orphan.qcow2"), backing=None), QN, G,
       reopen(n(driver="qcow2", node_name="o2", file=f("orphan.qcow2"))),
       add(driver="qcow2", node_name="ov", file=f("over-raw.qcow2")), QN, G,
       reopen(n(driver="qcow2", node_name="ov", file=f("over-raw.qcow2"), backing="$NODE[raw:$DIR/disk.img]")),
       reopen(n(driver="qcow2", node_name="ov", file=f("over-raw.qcow2"),
                backing=n(driver="raw", file=f("disk.img")))), Q,
       reopen(n(driver="qcow2", node_name="ov", file=f("over-raw.qcow2"), backing=None)), Q, G,
       dele("ov"), dele("o2"), Q,
   ])

# --------------------------------------------------------------------------- 6.1.3
sc("t-json-filenames", "json: pseudo-filenames for every driver (§6.1.3)",
   [f"{QC} $DIR/base.qcow2 1048576", f"{RAW} $DIR/d.img 65536"], [
       add(driver="null-co", node_name="n1", size=1048576, read_zeroes=True, latency_ns=1000),
       add(driver="null-aio", node_name="n2", read_zeroes=False),
       add(driver="null-co", node_name="n3", latency_ns=5, detect_zeroes="on"),
       add(driver="raw", node_name="r1", offset=512, size=4096, file=n(driver="null-co", size=1048576, read_zeroes=True)),
       add(driver="raw", node_name="r2", file=f("d.img")),
       add(driver="raw", node_name="r3", file=n(driver="null-co")),
       add(driver="raw", node_name="r4", file=n(driver="qcow2", file=f("base.qcow2"))),
       add(driver="raw", node_name="r5", file=n(driver="raw", file=n(driver="null-co"))), Q, QN,
       obj("throttle-group", "tg", limits={"iops-total": 100}),
       add(driver="throttle", node_name="t1", throttle_group="tg", file=n(driver="null-co")),
       add(driver="copy-on-read", node_name="c1", file=n(driver="null-aio")),
       add(driver="copy-on-read", node_name="c2", file=f("d.img", read_only=True, locking="off", aio="threads")),
       add(driver="blkdebug", node_name="d1", image=n(driver="null-co", size=65536)),
       add(driver="blkdebug", node_name="d2", align=4096, image=f("d.img")),
       add(driver="quorum", node_name="qu", vote_threshold=1, children=[n(driver="null-co", size=65536), "n3"]),
       add(driver="blkverify", node_name="bv", test=n(driver="null-co", size=65536), raw=n(driver="null-co", size=65536)),
       Q, QN, G,
       add(driver="qcow2", node_name="qb", backing=None, file=f("base.qcow2", cache={"direct": True}, aio="native")),
       add(driver="raw", node_name="r6", file="qb"), Q,
   ])

# --------------------------------------------------------------------------- 5.3 reopen option rules
sc("t-reopen-null", "reopen rules for null-co/null-aio stored options (§5.3)",
   [], [
       add(driver="null-co", node_name="n0"),
       add(driver="null-co", node_name="n1", size=65536, read_zeroes=True),
       add(driver="null-aio", node_name="n2", latency_ns=1000),
       reopen(n(driver="null-co", node_name="n0")), Q,
       reopen(n(driver="null-co", node_name="n0", size=1073741824)),
       reopen(n(driver="null-co", node_name="n0", read_zeroes=False)),
       reopen(n(driver="null-co", node_name="n1")),
       reopen(n(driver="null-co", node_name="n1", size=65536)),
       reopen(n(driver="null-co", node_name="n1", size=65536, read_zeroes=True)), Q,
       reopen(n(driver="null-co", node_name="n1", size=4096, read_zeroes=True)),
       reopen(n(driver="null-co", node_name="n1", size=65536, read_zeroes=False)),
       reopen(n(driver="null-aio", node_name="n2", latency_ns=1000, read_only=True)), Q,
       reopen(n(driver="null-aio", node_name="n2", latency_ns=0)),
       reopen(n(driver="null-aio", node_name="n2")),
       reopen(n(driver="null-co", node_name="n2", latency_ns=1000)),
       reopen(n(driver="null-aio", node_name="n2", latency_ns=1000, size=512, read_zeroes=True)),
       reopen(n(driver="null-co", node_name="n0", file="n1")),
       reopen(n(driver="null-co", node_name="n0", bogus=1)), Q,
   ])

sc("t-reopen-file", "reopen rules for file nodes: locking, aio, drop-cache, filename, key order of the message (§5.3)",
   [f"{RAW} $DIR/a.img 65536", f"{RAW} $DIR/b.img 65536"], [
       add(driver="file", node_name="f0", filename="$DIR/a.img"),
       add(driver="file", node_name="f1", filename="$DIR/b.img", locking="off", aio="threads"),
       reopen(f("a.img", node_name="f0")), Q,
       reopen(f("a.img", node_name="f0", locking="auto")),
       reopen(f("a.img", node_name="f0", aio="threads")),
       reopen(f("b.img", node_name="f0")),
       reopen(f("b.img", node_name="f1")),
       reopen(f("b.img", node_name="f1", locking="off")),
       reopen(f("b.img", node_name="f1", locking="off", aio="threads")), Q,
       reopen(f("a.img", node_name="f1", locking="on", aio="native", cache={"direct": True})),
       reopen(f("b.img", node_name="f1", locking="on", aio="threads")),
       reopen(f("a.img", node_name="f0", drop_cache=False)), Q,
       reopen(f("a.img", node_name="f0")),
       reopen(f("a.img", node_name="f0", drop_cache=True)),
       reopen(f("a.img", node_name="f0", drop_cache=True, x_check_cache_dropped=True)), Q,
       reopen(f("a.img", node_name="f0", drop_cache=True)),
       reopen(n(driver="null-co", node_name="f0")),
       reopen(f("a.img", node_name="f0", drop_cache=True, aio_max_batch=0)),
       reopen(n(driver="file", node_name="f0", drop_cache=True)), Q,
   ])

sc("t-reopen-common", "generic options in reopen: read-only, cache, discard (kept when omitted), detect-zeroes (reset), §5.3",
   [f"{RAW} $DIR/a.img 65536"], [
       add(driver="file", node_name="f0", filename="$DIR/a.img", discard="unmap", detect_zeroes="unmap",
           cache={"no-flush": True}), Q,
       reopen(f("a.img", node_name="f0")), Q,
       reopen(f("a.img", node_name="f0", detect_zeroes="unmap")), Q,
       reopen(f("a.img", node_name="f0", discard="ignore", detect_zeroes="unmap")),
       reopen(f("a.img", node_name="f0", discard="ignore")), Q,
       reopen(f("a.img", node_name="f0", detect_zeroes="unmap")),
       reopen(f("a.img", node_name="f0", detect_zeroes="on", read_only=True, cache={"direct": True})), Q,
       reopen(f("a.img", node_name="f0", cache={"no-flush": True, "direct": False}, auto_read_only=True)), Q,
       reopen(f("a.img", node_name="f0", discard="bogus")),
       reopen(f("a.img", node_name="f0", detect_zeroes="maybe")),
       reopen(f("a.img", node_name="f0", cache={"writeback": False})), Q,
       add(driver="null-co", node_name="n0", detect_zeroes="unmap"),
       add(driver="null-co", node_name="n0", detect_zeroes="unmap", discard="unmap"),
       reopen(n(driver="null-co", node_name="n0", discard="ignore")),
       reopen(n(driver="null-co", node_name="n0", discard="unmap", detect_zeroes="unmap")), Q,
   ])

sc("t-reopen-force-share", "force-share at add and the type-sensitive reopen quirk (§3.1, §5.3)",
   [f"{QC} $DIR/a.qcow2 1048576"], [
       add(driver="null-co", node_name="n0", force_share=True),
       add(driver="null-co", node_name="n1", force_share=True, read_only=True),
       add(driver="null-co", node_name="n2", force_share=False), Q,
       reopen(n(driver="null-co", node_name="n1", force_share=True, read_only=True)),
       reopen(n(driver="null-co", node_name="n1", read_only=True)),
       reopen(n(driver="null-co", node_name="n2", force_share=False)),
       reopen(n(driver="null-co", node_name="n2")),
       add(driver="null-co", node_name="n3"),
       reopen(n(driver="null-co", node_name="n3", force_share=True, read_only=True)), Q,
       add(driver="qcow2", node_name="q0", read_only=True, force_share=True, file=f("a.qcow2")),
       add(driver="qcow2", node_name="q1", file=f("a.qcow2")), Q, G,
       dele("n1"), dele("q0"), Q,
   ])

sc("t-reopen-qcow2-cache", "qcow2 cache and discard options in reopen, driver errors (§5.2 step 6, §5.3)",
   [f"{QC} $DIR/a.qcow2 1048576", f"{QC} -o cluster_size=4096 $DIR/s.qcow2 1048576"], [
       add(driver="qcow2", node_name="q", file=f("a.qcow2", node_name="qf"), cache_size=1048576), Q,
       reopen(n(driver="qcow2", node_name="q", file="qf")), Q,
       reopen(n(driver="qcow2", node_name="q", file="qf", l2_cache_entry_size=1000)),
       reopen(n(driver="qcow2", node_name="q", file="qf", l2_cache_entry_size=131072)),
       reopen(n(driver="qcow2", node_name="q", file="qf", l2_cache_entry_size=4096)), Q,
       reopen(n(driver="qcow2", node_name="q", file="qf", cache_size=65536, l2_cache_size=262144)),
       reopen(n(driver="qcow2", node_name="q", file="qf", cache_size=1048576, l2_cache_size=262144,
                refcount_cache_size=65536)),
       reopen(n(driver="qcow2", node_name="q", file="qf", cache_size=65536, refcount_cache_size=262144)),
       reopen(n(driver="qcow2", node_name="q", file="qf", cache_clean_interval=-1)),
       reopen(n(driver="qcow2", node_name="q", file="qf", cache_clean_interval=600, lazy_refcounts=True)), Q,
       reopen(n(driver="qcow2", node_name="q", file="qf", pass_discard_request=False, pass_discard_other=True,
                pass_discard_snapshot=False, overlap_check="none")), Q,
       reopen(n(driver="qcow2", node_name="q", file="qf", overlap_check={"template": "all", "main-header": False})),
       reopen(n(driver="qcow2", node_name="q", file="qf", encrypt={"format": "luks", "key-secret": "x"})),
       reopen(n(driver="qcow2", node_name="q", file="qf", data_file="qf")),
       reopen(n(driver="qcow2", node_name="q", file="qf", backing=None)), Q,
       add(driver="qcow2", node_name="s", file=f("s.qcow2"), l2_cache_entry_size=8192),
       add(driver="qcow2", node_name="s", file=f("s.qcow2"), l2_cache_entry_size=4096, cache_clean_interval=-1),
       add(driver="qcow2", node_name="s", file=f("s.qcow2"), l2_cache_entry_size=4096), QN,
       reopen(n(driver="qcow2", node_name="s", file=f("s.qcow2"), l2_cache_entry_size=65536)), Q,
   ])

sc("t-reopen-raw", "raw offset/size in add and reopen: virtual-size, limits, reset by omission (§4.6, §5.3)",
   [f"{RAW} $DIR/k.img 1024", f"{RAW} $DIR/m.img 1048576"], [
       add(driver="raw", node_name="r", file=f("k.img", node_name="kf")), Q,
       reopen(n(driver="raw", node_name="r", file="kf", offset=512)), Q,
       reopen(n(driver="raw", node_name="r", file="kf")), Q,
       reopen(n(driver="raw", node_name="r", file="kf", offset=512, size=512)), Q,
       reopen(n(driver="raw", node_name="r", file="kf", offset=2048)),
       reopen(n(driver="raw", node_name="r", file="kf", size=4096)),
       reopen(n(driver="raw", node_name="r", file="kf", size=100)),
       reopen(n(driver="raw", node_name="r", file="kf", offset=-1)),
       reopen(n(driver="raw", node_name="r", file="kf", offset=1024)), Q,
       add(driver="raw", node_name="r2", offset=-1, file=f("m.img")),
       add(driver="raw", node_name="r2", offset=2097152, file=f("m.img")),
       add(driver="raw", node_name="r2", size=4194304, file=f("m.img")),
       add(driver="raw", node_name="r2", size=1000, file=f("m.img")),
       add(driver="raw", node_name="r2", offset=100, file=f("m.img")),
       add(driver="raw", node_name="r2", offset=65536, size=65536, file=f("m.img", node_name="mf")), Q, G,
       reopen(n(driver="raw", node_name="r2", file="mf")), Q, G,
   ])

sc("t-reopen-throttle", "throttle groups: add, switch, delete old group, unknown group, objects in use (§5.3)",
   [f"{QC} $DIR/a.qcow2 1048576"], [
       obj("throttle-group", "tg1", limits={"iops-total": 1000}),
       obj("throttle-group", "tg2", limits={"bps-total": 1048576}),
       add(driver="throttle", node_name="t0", throttle_group="tgx", file=n(driver="null-co")),
       add(driver="throttle", node_name="t0", file=n(driver="null-co")),
       add(driver="throttle", node_name="t0", throttle_group="tg1", file=n(driver="null-co", node_name="tn")), Q, G,
       objdel("tg1"),
       reopen(n(driver="throttle", node_name="t0", throttle_group="tg2", file="tn")), Q,
       objdel("tg1"),
       reopen(n(driver="throttle", node_name="t0", throttle_group="tg1", file="tn")),
       reopen(n(driver="throttle", node_name="t0", file="tn")),
       reopen(n(driver="throttle", node_name="t0", throttle_group="tg2", file=n(driver="null-co", node_name="tn"))),
       reopen(n(driver="throttle", node_name="t0", throttle_group="tg2", file="tn", read_only=True)), Q,
       add(driver="qcow2", node_name="q", file=f("a.qcow2")),
       add(driver="throttle", node_name="t1", throttle_group="tg2", file="q"), Q, G,
       add(driver="throttle", node_name="t2", throttle_group="tg2", file="t1"), G,
       objdel("tg2"), dele("t1"), dele("t2"), dele("t1"), dele("t0"), objdel("tg2"), Q,
   ])

# --------------------------------------------------------------------------- 5.4 children
sc("t-reopen-cycles", "cycle detection in reopen for backing and file children (§5.4)",
   [f"{QC} $DIR/a.qcow2 1048576", f"{QC} $DIR/b.qcow2 1048576", f"{QC} $DIR/c.qcow2 1048576"], [
       add(driver="qcow2", node_name="a", file=f("a.qcow2", node_name="af")),
       add(driver="qcow2", node_name="b", file=f("b.qcow2", node_name="bf"), backing="a"),
       add(driver="qcow2", node_name="c", file=f("c.qcow2", node_name="cf"), backing="b"), G,
       reopen(n(driver="qcow2", node_name="a", file="af", backing="c")),
       reopen(n(driver="qcow2", node_name="a", file="af", backing="a")),
       reopen(n(driver="qcow2", node_name="a", file="c", backing=None)),
       reopen(n(driver="qcow2", node_name="a", file="a", backing=None)),
       reopen(n(driver="qcow2", node_name="b", file="bf", backing="cf")),
       add(driver="raw", node_name="r", file="c"),
       reopen(n(driver="raw", node_name="r", file="r")),
       reopen(n(driver="qcow2", node_name="a", file="af", backing="r")), G,
       # not here: reopen a with backing null at this point (the diamond a->r->c->b->cf, c->cf)
       # aborts QEMU 7.2 in bdrv_parent_drained_end_single_no_poll (see README)
       reopen(n(driver="qcow2", node_name="c", file="cf", backing="a")), Q, G,
   ])

sc("t-reopen-file-swap", "replacing the file child of format and filter nodes (§5.4)",
   [f"{QC} $DIR/a.qcow2 1048576", f"{QC} $DIR/b.qcow2 1048576", f"{RAW} $DIR/d.img 65536"], [
       add(driver="qcow2", node_name="q", file=f("a.qcow2")),
       add(driver="file", node_name="xf", filename="$DIR/b.qcow2"), Q, G,
       reopen(n(driver="qcow2", node_name="q", file="xf")), Q, G,
       reopen(n(driver="qcow2", node_name="q", file=f("a.qcow2"))),
       reopen(n(driver="qcow2", node_name="q", file=None)),
       reopen(n(driver="qcow2", node_name="q", file="")),
       reopen(n(driver="qcow2", node_name="q", file="nosuch")),
       dele("xf"),
       add(driver="null-co", node_name="nn", size=65536),
       reopen(n(driver="qcow2", node_name="q", file="nn")),
       add(driver="raw", node_name="r", file=f("d.img", node_name="df")),
       reopen(n(driver="raw", node_name="r", file="nn")), Q, G,
       reopen(n(driver="raw", node_name="r", file="df")),
       add(driver="file", node_name="df2", filename="$DIR/d.img"),
       reopen(n(driver="raw", node_name="r", file="df2")), Q, G,
       add(driver="copy-on-read", node_name="cor", file=n(driver="null-co")),
       reopen(n(driver="copy-on-read", node_name="cor", file="df2")),
       add(driver="throttle", node_name="th", throttle_group="tg", file="nn"),
       obj("throttle-group", "tg"),
       add(driver="throttle", node_name="th", throttle_group="tg", file=n(driver="null-co", node_name="thn")),
       reopen(n(driver="throttle", node_name="th", throttle_group="tg", file="nn")), Q, G,
       dele("nn"), dele("th"), dele("nn"), Q,
   ])

sc("t-reopen-header-backing", "reopen of a node whose backing was opened from the header (§5.1, §5.4)",
   CHAIN, [
       add(driver="qcow2", node_name="top", file=f("top2.qcow2", node_name="tf")), Q, G,
       reopen(n(driver="qcow2", node_name="top", file="tf")),
       reopen(n(driver="qcow2", node_name="top", file="tf", backing="$NODE[qcow2:$DIR/top.qcow2]")), Q,
       reopen(n(driver="qcow2", node_name="top", file="tf", backing=n(driver="qcow2", file=f("top.qcow2")))), Q,
       reopen(n(driver="qcow2", node_name="top", file="tf",
                backing=n(driver="qcow2", node_name="$NODE[qcow2:$DIR/top.qcow2]", file=f("top.qcow2")))),
       reopen(n(driver="qcow2", node_name="top", file="tf",
                backing=n(driver="qcow2", file=f("top.qcow2"), backing=None))), Q, G,
       reopen(n(driver="qcow2", node_name="top", file="tf",
                backing=n(driver="qcow2", file=f("top.qcow2"), backing="$NODE[qcow2:$DIR/base.qcow2]"))),
       reopen(n(driver="qcow2", node_name="top", file="tf",
                backing=n(driver="qcow2", file=f("top.qcow2"), read_only=False, backing=None))), Q,
       reopen(n(driver="qcow2", node_name="top", file="tf", backing=None)), Q, G,
       reopen(n(driver="qcow2", node_name="top", file="tf")),
       add(driver="qcow2", node_name="b", file=f("base.qcow2")),
       reopen(n(driver="qcow2", node_name="top", file="tf", backing="b")), Q, G,
       reopen(n(driver="qcow2", node_name="top", file="tf", backing=n(driver="qcow2", file=f("base.qcow2")))),
       reopen(n(driver="qcow2", node_name="top", file="tf", backing="b", read_only=True)), Q,
   ])

# --------------------------------------------------------------------------- 5.6 read-only
sc("t-reopen-ro-inherited", "read-only transitions with inherited children (§5.6 table)",
   [f"{QC} $DIR/a.qcow2 1048576", f"{QC} $DIR/b.qcow2 1048576"], [
       add(driver="qcow2", node_name="top", file=f("a.qcow2", node_name="top-file")), Q,
       reopen(n(driver="qcow2", node_name="top", file="top-file", read_only=True)), Q, G,
       reopen(n(driver="qcow2", node_name="top", file="top-file")), Q,
       reopen(n(driver="qcow2", node_name="top", file="top-file", read_only=False)), Q, G,
       reopen(n(driver="qcow2", node_name="top", file="top-file", read_only=True)),
       reopen(n(driver="qcow2", node_name="top", file=f("a.qcow2", node_name="top-file"))), Q,
       reopen(n(driver="qcow2", node_name="top", file=f("a.qcow2", node_name="top-file", read_only=True),
                read_only=True)),
       reopen(n(driver="qcow2", node_name="top", file="top-file", read_only=False)), Q,
       reopen(n(driver="qcow2", node_name="top", file=f("a.qcow2", node_name="top-file"))), Q,
       add(driver="file", node_name="bf", filename="$DIR/b.qcow2", read_only=True),
       add(driver="qcow2", node_name="q2", file="bf"),
       add(driver="qcow2", node_name="q2", file="bf", read_only=True), Q,
       reopen(n(driver="qcow2", node_name="q2", file="bf", read_only=False)),
       reopen(n(driver="qcow2", node_name="q2", file="bf", read_only=False), f("b.qcow2", node_name="bf")), Q, G,
       reopen(f("b.qcow2", node_name="bf", read_only=True)),
       reopen(f("b.qcow2", node_name="top-file", read_only=True)), Q,
   ])

sc("t-reopen-ro-chain", "read-only with backing chains: rw backing under ro parent, inline backing defaults (§4.4, §5.6)",
   CHAIN, [
       add(driver="qcow2", node_name="top", read_only=True, file=f("top2.qcow2"),
           backing=n(driver="qcow2", node_name="mid", read_only=False, file=f("top.qcow2"), backing=None)), Q, G,
       reopen(n(driver="qcow2", node_name="mid", file=f("top.qcow2"), backing=None, read_only=True)), Q,
       reopen(n(driver="qcow2", node_name="top", file=f("top2.qcow2"), backing="mid")), Q, G,
       reopen(n(driver="qcow2", node_name="top", file=f("top2.qcow2"), backing="mid", read_only=True),
              n(driver="qcow2", node_name="mid", file=f("top.qcow2"), backing=None)), Q,
       add(driver="qcow2", node_name="b", read_only=True, file=f("base.qcow2")),
       reopen(n(driver="qcow2", node_name="mid", file=f("top.qcow2"), backing="b")), Q, G,
       reopen(n(driver="qcow2", node_name="b", file=f("base.qcow2"), read_only=False)), Q, G,
   ])

sc("t-reopen-ro-writer", "making a node read-only under a writer (§5.6): Read-only block node ... cannot support read-write users",
   [f"{QC} $DIR/a.qcow2 1048576", f"{RAW} $DIR/d.img 65536"], [
       add(driver="file", node_name="af", filename="$DIR/a.qcow2"),
       add(driver="qcow2", node_name="q", file="af"), G,
       reopen(f("a.qcow2", node_name="af", read_only=True)),
       reopen(f("a.qcow2", node_name="af", read_only=True), n(driver="qcow2", node_name="q", file="af", read_only=True)), Q, G,
       reopen(n(driver="qcow2", node_name="q", file="af")),
       reopen(n(driver="qcow2", node_name="q", file="af"), f("a.qcow2", node_name="af")), Q, G,
       add(driver="null-co", node_name="nn"),
       add(driver="copy-on-read", node_name="cor", file="nn"),
       reopen(n(driver="null-co", node_name="nn", read_only=True)), Q, G,
       add(driver="raw", node_name="r", file=f("d.img", node_name="df")),
       reopen(f("d.img", node_name="df", read_only=True)), Q,
   ])

# --------------------------------------------------------------------------- 5.8 atomicity
sc("t-reopen-atomic", "multi-node reopen transactions that fail half-way, lookups first, duplicates merged (§5.2, §5.8)",
   [f"{QC} $DIR/a.qcow2 1048576"], [
       add(driver="null-co", node_name="n0"), add(driver="null-co", node_name="n1", size=65536),
       add(driver="qcow2", node_name="q", file=f("a.qcow2", node_name="qf")),
       reopen(n(driver="null-co", node_name="n0", read_only=True), n(driver="null-co", node_name="n1")), Q,
       reopen(n(driver="null-co", node_name="n0", read_only=True), n(driver="null-co", node_name="nX")), Q,
       reopen(n(driver="null-co", node_name="n0", read_only=True), n(driver="null-co")),
       reopen(n(driver="null-co", node_name="n0", read_only=True), n(driver="null-co", node_name="n1", size=65536),
              n(driver="qcow2", node_name="q", file="qf", l2_cache_entry_size=3)), Q,
       reopen(n(driver="null-co", node_name="n0", read_only=False), n(driver="null-co", node_name="n0", read_only=True)), Q,
       reopen(n(driver="null-co", node_name="n0", read_only=True), n(driver="null-co", node_name="n0")), Q,
       reopen(n(driver="null-co", node_name="n0", detect_zeroes="on"), n(driver="null-co", node_name="n0", discard="unmap")), Q,
       reopen(n(driver="null-co", node_name="n1", size=65536, read_only=True),
              n(driver="qcow2", node_name="q", file="qf", backing="n1"),
              f("a.qcow2", node_name="qf", read_only=True)), Q, G,
       reopen(n(driver="qcow2", node_name="q", file="qf", backing="n1"),
              f("a.qcow2", node_name="qf", discard="unmap", detect_zeroes="unmap"),
              n(driver="null-co", node_name="n1", size=65536, read_only=True)), Q, G,
       reopen(n(driver="qcow2", node_name="q", file="qf", backing=None), "n1"),
       reopen(n(driver="qcow2", node_name="q", file="qf", backing=None), n(driver="null-co", node_name="n1", size=512)), Q, G,
   ])

sc("t-reopen-shape", "blockdev-reopen argument shapes and lookup errors (§5.1, §5.2, §5.9)",
   [], [
       add(driver="null-co", node_name="n0"),
       {"execute": "blockdev-reopen"}, {"execute": "blockdev-reopen", "arguments": {}},
       {"execute": "blockdev-reopen", "arguments": {"options": {}}},
       {"execute": "blockdev-reopen", "arguments": {"options": "n0"}},
       {"execute": "blockdev-reopen", "arguments": {"options": [None]}},
       {"execute": "blockdev-reopen", "arguments": {"options": ["n0"]}},
       {"execute": "blockdev-reopen", "arguments": {"options": [{}]}},
       reopen(n(driver="null-co")), reopen(n(driver="null-co", node_name="")),
       reopen(n(driver="null-co", node_name="nX")), reopen(n(driver="nope", node_name="n0")),
       reopen(n(node_name="n0")), reopen(n(driver="null-co", node_name=5)),
       reopen(n(driver="null-co", node_name="n0", size="1M")),
       {"execute": "blockdev-reopen", "arguments": {"options": [{"driver": "null-co", "node-name": "n0"}], "x": 1}},
       {"execute": "x-blockdev-reopen", "arguments": {"driver": "null-co", "node-name": "n0"}},
       reopen(n(driver="null-co", node_name="n0")), Q,
   ])

sc("t-reopen-unsupported", "drivers that cannot reopen: copy-on-read, quorum, blkverify; blkdebug can (§5.2 step 4)",
   [f"{RAW} $DIR/d.img 65536"], [
       add(driver="copy-on-read", node_name="cor", file=n(driver="null-co", node_name="cn")),
       reopen(n(driver="copy-on-read", node_name="cor", file="cn")),
       reopen(n(driver="raw", node_name="cor", file="cn")),
       reopen(n(driver="null-co", node_name="cn", read_only=True)), Q,
       add(driver="quorum", node_name="qu", vote_threshold=2,
           children=[n(driver="null-co", node_name="q0", size=65536), n(driver="null-co", node_name="q1", size=65536)]),
       reopen(n(driver="quorum", node_name="qu", vote_threshold=2, children=["q0", "q1"])),
       reopen(n(driver="null-co", node_name="q0", size=65536, read_only=True)), Q, G,
       add(driver="blkverify", node_name="bv", test=n(driver="null-co", size=65536), raw=n(driver="null-co", size=65536)),
       reopen(n(driver="blkverify", node_name="bv", test=n(driver="null-co", size=65536), raw=n(driver="null-co", size=65536))),
       add(driver="blkdebug", node_name="dbg", align=512, image=f("d.img", node_name="dimg")),
       reopen(n(driver="blkdebug", node_name="dbg", align=512, image="dimg")), Q,
       reopen(n(driver="blkdebug", node_name="dbg", align=4096, image="dimg")),
       reopen(n(driver="blkdebug", node_name="dbg", image="dimg")),
       reopen(n(driver="blkdebug", node_name="dbg", align=512, image="dimg", read_only=True)), Q, G,
   ])

# --------------------------------------------------------------------------- 4.4 / 4.6 permissions and locks
sc("t-perm-conflicts", "permission conflicts on shared children (§4.4)",
   [f"{QC} $DIR/a.qcow2 1048576", f"{RAW} $DIR/d.img 65536"], [
       add(driver="file", node_name="sf", filename="$DIR/a.qcow2"),
       add(driver="qcow2", node_name="qa", file="sf"),
       add(driver="qcow2", node_name="qb", file="sf"),
       add(driver="qcow2", node_name="qb", file="sf", read_only=True), Q, G,
       dele("qa"),
       add(driver="qcow2", node_name="qb", file="sf", read_only=True),
       add(driver="qcow2", node_name="qc", file="sf"), Q, G,
       add(driver="null-co", node_name="hd1", size=65536),
       add(driver="quorum", node_name="quorum0", vote_threshold=1,
           children=[n(driver="null-co", size=65536), "hd1"]),
       add(driver="raw", node_name="rw", file="hd1"),
       add(driver="copy-on-read", node_name="cw", file="hd1"), G,
       add(driver="file", node_name="df", filename="$DIR/d.img"),
       add(driver="raw", node_name="r1", file="df"), add(driver="raw", node_name="r2", file="df"),
       add(driver="throttle", node_name="t1", throttle_group="g", file="df"), G,
       add(driver="qcow2", node_name="qd", file="r1"),
   ])

sc("t-image-locks", "image file locks between nodes of the same file (§4.6)",
   [f"{QC} $DIR/a.qcow2 1048576", f"{QC} -b $DIR/a.qcow2 -F qcow2 $DIR/t.qcow2 1048576"], [
       add(driver="qcow2", node_name="q1", file=f("a.qcow2")),
       add(driver="qcow2", node_name="q2", file=f("a.qcow2")),
       add(driver="qcow2", node_name="q2", read_only=True, file=f("a.qcow2")),
       add(driver="qcow2", node_name="q2", read_only=True, force_share=True, file=f("a.qcow2", force_share=True, read_only=True)),
       add(driver="file", node_name="f2", filename="$DIR/a.qcow2"),
       add(driver="raw", node_name="r2", file=f("a.qcow2")),
       add(driver="qcow2", node_name="q3", file=f("a.qcow2", locking="off")), Q, G,
       add(driver="qcow2", node_name="top", file=f("t.qcow2")),
       add(driver="qcow2", node_name="top", file=f("t.qcow2"), backing=None), Q,
       dele("q1"), dele("q3"),
       add(driver="qcow2", node_name="top2", file=f("t.qcow2", node_name="t2f")), Q, G,
       reopen(n(driver="qcow2", node_name="top", file=f("t.qcow2"), backing=None, read_only=True)),
       add(driver="qcow2", node_name="q4", file=f("a.qcow2")), Q,
   ])

# --------------------------------------------------------------------------- 4.7 blockdev-del
sc("t-del-states", "blockdev-del in every state (§4.7): unknown, busy backing, not owned, in use, success",
   CHAIN, [
       dele("nosuch"), dele(""), {"execute": "blockdev-del"}, {"execute": "blockdev-del", "arguments": {"node-name": 1}},
       {"execute": "blockdev-del", "arguments": {"node-name": "x", "bogus": 1}},
       add(driver="qcow2", node_name="base", file=f("base.qcow2", node_name="base-file")),
       add(driver="qcow2", node_name="mid", file=f("top.qcow2", node_name="mid-file"), backing="base"),
       add(driver="qcow2", node_name="top", file=f("top2.qcow2", node_name="top-file"), backing="mid"), G,
       dele("base"), dele("mid"), dele("base-file"), dele("top-file"),
       add(driver="raw", node_name="user", file="top"), dele("top"), Q,
       dele("user"), dele("top"), Q, G, dele("mid"), dele("mid"), dele("base"), Q,
       add(driver="qcow2", node_name="hq", file=f("top2.qcow2")),
       dele("$NODE[qcow2:$DIR/base.qcow2]"), dele("$NODE[qcow2:$DIR/top.qcow2]"), dele("$NODE[file:$DIR/top2.qcow2]"),
       dele("hq"), Q,
   ])

sc("t-del-chain", "deleting filters, quorum children, nodes with several parents (§4.7)",
   [f"{QC} $DIR/a.qcow2 1048576"], [
       obj("throttle-group", "tg"),
       add(driver="qcow2", node_name="q", file=f("a.qcow2")),
       add(driver="throttle", node_name="t", throttle_group="tg", file="q"),
       add(driver="copy-on-read", node_name="c", file="t"), G,
       dele("q"), dele("t"), dele("c"), G, dele("t"), dele("q"), Q,
       add(driver="null-co", node_name="n1", size=512),
       add(driver="quorum", node_name="qu", vote_threshold=1, children=["n1", n(driver="null-co", node_name="n2", size=512)]),
       dele("n1"), dele("n2"), dele("qu"), dele("n1"), Q,
       add(driver="null-co", node_name="m"),
       add(driver="raw", node_name="p1", file="m"), add(driver="raw", node_name="p2", file="m"),
       dele("m"), dele("p1"), dele("m"), dele("p2"), dele("m"), Q, G,
   ])

# --------------------------------------------------------------------------- objects
sc("t-objects", "object-add/object-del for throttle-group and iothread (ids, limits, in-use groups)",
   [], [
       obj("throttle-group", "tg1"), obj("throttle-group", "tg1"),
       obj("throttle-group", "tg2", limits={"iops-total": 100, "iops-total-max": 200}),
       obj("throttle-group", "tg3", limits={"iops-total": -1}),
       obj("throttle-group", "tg4", limits={"bps-total": 100, "bps-read": 100}),
       obj("throttle-group", "tg5", limits={"iops-total-max": 200}),
       obj("throttle-group", "tg6", limits={"iops-size": 4096}),
       obj("throttle-group", "tg7", limits={"bogus": 1}),
       obj("throttle-group", "tg8", limits={"bps-total": 4096}, bogus=1),
       obj("throttle-group", "a b"), obj("throttle-group", ""), obj("throttle-group", "1g"),
       obj("iothread", "io1"), obj("iothread", "io1"), obj("iothread", "tg1"),
       obj("iothread", "io2", poll_max_ns=0),
       obj("nope", "x"), {"execute": "object-add", "arguments": {"id": "y"}},
       {"execute": "object-add", "arguments": {"qom-type": "throttle-group"}},
       add(driver="throttle", node_name="t", throttle_group="tg2", file=n(driver="null-co")),
       add(driver="throttle", node_name="t1", throttle_group="io1", file=n(driver="null-co")),
       objdel("tg2"), objdel("tg1"), objdel("tg1"), objdel("io1"), objdel("nosuch"), objdel(""),
       {"execute": "object-del", "arguments": {}}, Q,
       dele("t"), objdel("tg2"), Q,
   ])

# --------------------------------------------------------------------------- raw JSON
sc("t-raw-json", "raw JSON input around block commands: quoting, duplicates, number types, ids, envelope errors",
   [], [
       raw("{'execute': 'blockdev-add', 'arguments': {'driver': 'null-co', 'node-name': 'sq'}}"),
       raw('{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "dup", "driver": "null-aio"}}'),
       raw('{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "fl", "size": 1e3}}'),
       raw('{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "fl2", "size": 1024.0}}'),
       raw('{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "big", "size": 18446744073709551616}}'),
       raw('{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "i1", "size": 4096}, "id": "x1"}'),
       raw('{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "i2"}, "id": [1, {"a": null}]}'),
       raw('{"execute": "blockdev-del", "arguments": {"node-name": "i1"}, "bogus": 1}'),
       raw('{"execute": "blockdev-del", "arguments": {"node-name": "a\\u0000b"}}'),
       raw('{"execute": "blockdev-add", "arguments": [1, 2]}'),
       raw('{"execute": "blockdev-reopen", "arguments": {"options": {}}}'),
       raw('{"execute": "blockdev-reopen", "arguments": {"options": [{"driver": "null-co", "node-name": "sq", "size": "1M"}]}}'),
       raw('{"execute": "blockdev-remove"}'), raw('"blockdev-add"'), raw("[]"), raw("null"),
       raw('{"arguments": {"node-name": "sq"}}'), raw('{"execute": }'),
       raw('{"execute": "blockdev-del", "arguments": {"node-name": "nosuch"}, "id": 7} {"execute": "blockdev-del", "id": 8}'),
       raw('{"execute": "query-named-block-nodes", "arguments": {"flat": true}, "id": "q"}'),
       raw('{"execute": "x-debug-query-block-graph", "id": 3.5}'),
       raw('{"execute":"blockdev-add","arguments":{"driver":"null-co","node-name":"tab\\tx"}}'),
       raw('{"execute": "blockdev-add", "arguments": {"driver": "null-co", "node-name": "n\\u00e9"}}'),
       Q,
   ])

# --------------------------------------------------------------------------- driver errors
sc("t-add-errors", "verified blockdev-add errors (§4.6): formats, raw limits, throttle, missing files, qcow2 options",
   [f"{QC} $DIR/a.qcow2 1048576", f"{RAW} $DIR/k.img 1024"], [
       add(driver="file", node_name="x", filename="$DIR/nodir/x.img"),
       add(driver="file", node_name="x", filename="$DIR/missing.img"),
       add(driver="qcow2", node_name="x", file=f("k.img")),
       add(driver="qcow2", node_name="x", file=n(driver="null-co")),
       add(driver="qcow2", node_name="x", file=f("a.qcow2"), data_file=n(driver="null-co")),
       add(driver="qcow2", node_name="x", file=f("a.qcow2"), cache_clean_interval=-1),
       add(driver="qcow2", node_name="x", file=f("a.qcow2"), encrypt={"format": "luks", "key-secret": "s"}),
       add(driver="raw", node_name="x", offset=-1, file=f("k.img")),
       add(driver="raw", node_name="x", offset=2048, file=f("k.img")),
       add(driver="raw", node_name="x", size=4096, file=f("k.img")),
       add(driver="raw", node_name="x", size=100, file=f("k.img")),
       add(driver="throttle", node_name="x", throttle_group="nogroup", file=n(driver="null-co")),
       add(driver="null-co", node_name="x", latency_ns=-1),
       add(driver="file", node_name="x", filename="$DIR/k.img", aio="native"),
       add(driver="file", node_name="x", filename="$DIR/k.img", aio="bogus"),
       add(driver="nope", node_name="x"), add(driver="Qcow2", node_name="x"),
       add(driver="raw", node_name="x"), add(driver="qcow2", node_name="x", file=f("a.qcow2"), bogus=1),
       add(driver="raw", node_name="x", file=f("k.img"), backing=None),
       add(driver="null-co", node_name="x", size="1M"), add(driver="null-co", node_name="x", read_only="yes"),
       add(driver="qcow2", node_name="x", file=f("a.qcow2"), l2_cache_size=1048576, cache_size=65536),
       add(driver="qcow2", node_name="x", file=f("a.qcow2"), l2_cache_entry_size=100),
       add(driver="blkdebug", node_name="x", image=n(driver="null-co"), align=3),
       add(driver="quorum", node_name="x", vote_threshold=3, children=[n(driver="null-co"), n(driver="null-co")]),
       add(driver="quorum", node_name="x", vote_threshold=1, children=[]),
       add(driver="blkverify", node_name="x", test=n(driver="null-co")), Q,
   ])

sc("t-null-options", "null-co/null-aio options and queries (§3.2, §6.1)",
   [], [
       add(driver="null-co", node_name="a", size=0),
       add(driver="null-co", node_name="b", size=512, read_zeroes=True, latency_ns=0),
       add(driver="null-aio", node_name="c", size=3145728, read_only=True, discard="unmap", detect_zeroes="unmap"),
       add(driver="null-aio", node_name="d", cache={"direct": True, "no-flush": True}, auto_read_only=True),
       add(driver="null-co", node_name="e", size=1073742336, detect_zeroes="on"),
       add(driver="null-co", node_name="f", filename="x"), add(driver="null-co", node_name="f", detect_zeroes="unmap"),
       Q, QN, G,
       reopen(n(driver="null-aio", node_name="c", size=3145728, discard="unmap", detect_zeroes="unmap")),
       reopen(n(driver="null-aio", node_name="d")), Q,
   ])

sc("t-queries", "query argument handling and query-block with nodes only (§6)",
   [f"{QC} $DIR/a.qcow2 1048576"], [
       QB, Q, QN, G,
       {"execute": "query-named-block-nodes", "arguments": {"flat": "yes"}},
       {"execute": "query-named-block-nodes", "arguments": {"bogus": 1}},
       {"execute": "query-block", "arguments": {"flat": True}},
       {"execute": "x-debug-query-block-graph", "arguments": {}},
       add(driver="qcow2", node_name="q", file=f("a.qcow2"), detect_zeroes="on", cache={"no-flush": True}),
       QB, Q, QN, G, {"execute": "query-named-block-nodes", "arguments": {"flat": False}},
   ])

# --------------------------------------------------------------------------- composite graphs
sc("t-filter-stack", "filters over a header chain: throttle, copy-on-read, raw, blkdebug; non-flat depth (§6.1.2, §6.2)",
   CHAIN, [
       obj("throttle-group", "tg", limits={"bps-total": 1048576}),
       add(driver="qcow2", node_name="top", file=f("top2.qcow2")),
       add(driver="throttle", node_name="thr", throttle_group="tg", file="top"),
       add(driver="copy-on-read", node_name="cor", file="thr"),
       add(driver="raw", node_name="r", file="cor"),
       add(driver="blkdebug", node_name="dbg", image="r"), Q, QN, G,
       reopen(n(driver="throttle", node_name="thr", throttle_group="tg", file="top", read_only=True)),
       reopen(n(driver="raw", node_name="r", file="cor", read_only=True)), Q, G,
       dele("dbg"), dele("r"), dele("cor"), dele("thr"), dele("top"), Q, G,
   ])

sc("t-reopen-inherited-entry", "reopening a named inherited child directly, and node-name changes in child dicts (§5.1, §5.4)",
   [f"{QC} $DIR/a.qcow2 1048576"], [
       add(driver="qcow2", node_name="q", file=f("a.qcow2", node_name="qf", discard="unmap")),
       reopen(f("a.qcow2", node_name="qf", cache={"no-flush": True})), Q,
       reopen(n(driver="qcow2", node_name="q", file=f("a.qcow2", node_name="other"))),
       reopen(n(driver="qcow2", node_name="q", file=f("a.qcow2"))), Q,
       reopen(n(driver="qcow2", node_name="q", file=f("a.qcow2", node_name="qf", detect_zeroes="on"))), Q,
       reopen(n(driver="qcow2", node_name="q", file="qf", detect_zeroes="unmap")), Q,
       reopen(n(driver="qcow2", node_name="q", file=f("a.qcow2", node_name="qf", locking="on"))),
       reopen(n(driver="qcow2", node_name="q", file=n(driver="null-co", node_name="qf"))),
       reopen(n(driver="qcow2", node_name="q", file=f("a.qcow2", node_name="qf")),
              f("a.qcow2", node_name="qf", read_only=True)), Q, G,
   ])

sc("t-mixed-graph", "a larger graph with every driver, several deletions and a final reopen of everything",
   CHAIN + [f"{RAW} $DIR/d.img 65536"], [
       obj("throttle-group", "g1"), obj("throttle-group", "g2", limits={"iops-total": 1000}), obj("iothread", "io1"),
       add(driver="qcow2", node_name="top", file=f("top2.qcow2", node_name="top-f")),
       add(driver="raw", node_name="rd", offset=512, file=f("d.img", node_name="df")),
       add(driver="throttle", node_name="t1", throttle_group="g1", file="rd"),
       add(driver="null-aio", node_name="na", size=65536),
       add(driver="quorum", node_name="qu", vote_threshold=1, children=["na", n(driver="null-co", size=65536)]),
       add(driver="blkdebug", node_name="db", image=n(driver="null-co", node_name="dbn")),
       add(driver="copy-on-read", node_name="cr", file="top"), Q, G,
       reopen(n(driver="qcow2", node_name="top", file="top-f", backing="$NODE[qcow2:$DIR/top.qcow2]", read_only=True),
              n(driver="throttle", node_name="t1", throttle_group="g2", file="rd"),
              n(driver="raw", node_name="rd", offset=1024, file="df"),
              n(driver="blkdebug", node_name="db", image="dbn", discard="unmap")), Q, G,
       objdel("g1"), dele("cr"), dele("qu"), dele("na"), Q, G,
       reopen(n(driver="raw", node_name="rd", file="df"), n(driver="throttle", node_name="t1", throttle_group="g2", file="rd")), Q,
   ])

sc("t-json-filename-reopen", "filenames that change with reopen: backing swaps, raw offset/size, throttle group, inline backing (§6.1.3)",
   CHAIN + [f"{RAW} $DIR/d.img 65536"], [
       add(driver="qcow2", node_name="top", file=f("top.qcow2", node_name="tf")), Q,
       reopen(n(driver="qcow2", node_name="top", file="tf", backing=None)), Q,
       add(driver="null-co", node_name="nb", size=1048576, read_zeroes=True),
       reopen(n(driver="qcow2", node_name="top", file="tf", backing="nb")), Q,
       add(driver="qcow2", node_name="b", file=f("base.qcow2")),
       reopen(n(driver="qcow2", node_name="top", file="tf", backing="b")), Q, QN,
       add(driver="raw", node_name="r", file=f("d.img", node_name="df")), Q,
       reopen(n(driver="raw", node_name="r", file="df", offset=512)), Q,
       reopen(n(driver="raw", node_name="r", file="df", size=4096)), Q,
       reopen(n(driver="raw", node_name="r", file="df")), Q,
       obj("throttle-group", "g1"), obj("throttle-group", "g2"),
       add(driver="throttle", node_name="t", throttle_group="g1", file="r"), Q,
       reopen(n(driver="throttle", node_name="t", throttle_group="g2", file="r")), Q,
       add(driver="raw", node_name="rt", file="top"), Q,
       reopen(n(driver="qcow2", node_name="top", file="tf", backing=None)), Q,
   ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="write the targeted t-*.json scenarios")
    ap.add_argument("--outdir", default="tests/data/recorded/scenarios")
    args = ap.parse_args(argv)
    os.makedirs(args.outdir, exist_ok=True)
    names = set()
    for s in SCENARIOS:
        assert s["name"] not in names, s["name"]
        names.add(s["name"])
        with open(os.path.join(args.outdir, s["name"] + ".json"), "w") as fh:
            json.dump(s, fh, indent=1, ensure_ascii=False)
            fh.write("\n")
    print(f"{len(SCENARIOS)} scenarios")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
