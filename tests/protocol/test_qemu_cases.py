"""Replay what real QEMU 7.2 answered, byte for byte, through the Session.

* tests/data/protocol/qemu_cases.json: raw byte streams recorded with
  qemu_oracle.py (exact reply lines);
* /work/shared/scenarios-qemu (copied where present): the shared scenarios
  caps-version, pre-negotiation and malformed-json, replayed the way
  qmpreplay.py sends them, compared as parsed JSON including key order.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from protocol_helpers import DATA, QEMU_VERSION, drive, load_json, negotiated_session

from qmpd.protocol import Session

CASES = load_json("qemu_cases.json")["cases"]


def case_chunks(case: dict) -> list[bytes]:
    if "chunks_hex" in case:
        return [bytes.fromhex(h) for h in case["chunks_hex"]]
    recipe = case["chunks_recipe"]
    if recipe == "token-count":
        return [b"[" + b"0," * 1048575 + b"0]"]
    if recipe == "token-size":
        return [b'"' + b"a" * (64 << 20) + b' {"execute":"x"}']
    raise AssertionError(recipe)


def session_for(mode: str) -> Session:
    if mode == "raw":
        return Session(QEMU_VERSION)
    return negotiated_session(oob=mode == "oob")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_recorded_case(case):
    chunks = case_chunks(case)
    got = drive(session_for(case["mode"]), chunks)
    assert [g.decode("ascii") for g in got] == [r + "\r\n" for r in case["replies"]]
    if len(chunks[0]) < 100000:
        # the same bytes one at a time give the same replies
        data = b"".join(chunks)
        split = drive(session_for(case["mode"]), [data[i:i + 1] for i in range(len(data))])
        if "chunks_hex" in case and len(case["chunks_hex"]) == 1:
            assert split == got


SHARED = Path("/work/shared/scenarios-qemu")
SCENARIOS = ["caps-version", "pre-negotiation", "malformed-json"]


def _scenario(name: str) -> dict:
    # committed copy first, so CI does not depend on the shared folder
    local = DATA / f"scenario-{name}.json"
    path = local if local.exists() else SHARED / f"{name}.json"
    with open(path) as f:
        return json.load(f)


def _mask(v):
    if isinstance(v, dict):
        return {k: ("<masked>" if k == "package" else _mask(x)) for k, x in v.items()}
    if isinstance(v, list):
        return [_mask(x) for x in v]
    return v


def _parse_line(line: bytes):
    return _mask(json.loads(line))


@pytest.mark.parametrize("name", SCENARIOS)
def test_shared_scenario(name):
    sc = _scenario(name)
    s = Session(QEMU_VERSION)
    greeting = _parse_line(s.greeting())
    assert json.dumps(greeting) == json.dumps(sc["greeting"])
    if sc.get("negotiation") is not None:
        [line] = drive(s, [b'{"execute": "qmp_capabilities", "id": "qmpreplay-caps"}\n'])
        reply = _parse_line(line)
        assert reply.pop("id") == "qmpreplay-caps"
        assert json.dumps(reply) == json.dumps(sc["negotiation"])
    for rec in sc["steps"]:
        step = rec["step"]
        if "raw" in step or "raw_hex" in step:
            data = (step["raw"].encode("utf-8", "surrogatepass") + b"\n" if "raw" in step
                    else bytes.fromhex(step["raw_hex"]))
            got = [_parse_line(x) for x in drive(s, [data])]
            assert json.dumps(got) == json.dumps(rec["replies"]), step
        else:
            msg_id = f"qmpreplay-{rec['index']}"
            msg = {"execute": step["execute"]}
            if "arguments" in step:
                msg["arguments"] = step["arguments"]
            msg["id"] = msg_id
            [line] = drive(s, [(json.dumps(msg) + "\n").encode()])
            reply = _parse_line(line)
            assert reply.pop("id") == msg_id
            assert json.dumps(reply) == json.dumps(rec["reply"]), step
