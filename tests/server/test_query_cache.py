"""The block queries' reply cache, seen from a client on the socket.

qmpd keeps the encoded reply of ``query-named-block-nodes`` and
``x-debug-query-block-graph`` until something changes (see
``qmpd.commands.dispatch``).  What a user would notice if that went wrong: a
query that still shows the graph as it was before a command, a write or a
job step.  Each test asks the same query twice (the second answer comes from
the cache), changes something, and asks again.
"""

from __future__ import annotations

import json
from typing import Any

from tests.jobs.test_job_server import FIRST, VIRTUAL, add_chain, next_messages


def nodes(conn: Any, flat: bool = True) -> dict[str, dict]:
    first = conn.cmd("query-named-block-nodes", {"flat": flat})["return"]
    again = conn.cmd("query-named-block-nodes", {"flat": flat})["return"]
    assert again == first
    return {n["node-name"]: n for n in first}


def graph_names(conn: Any) -> set[str]:
    first = conn.cmd("x-debug-query-block-graph")["return"]
    assert conn.cmd("x-debug-query-block-graph")["return"] == first
    return {n["name"] for n in first["nodes"]}


def test_commands_show_in_the_next_query(qmpd) -> None:
    conn = qmpd.connect(negotiate=True)
    assert nodes(conn) == {}
    assert conn.cmd("blockdev-add", {"driver": "null-co", "node-name": "n0"}) == {"return": {}}
    assert set(nodes(conn)) == {"n0"}
    assert graph_names(conn) == {"n0"}
    conn.cmd("block-set-write-threshold", {"node-name": "n0", "write-threshold": 4096})
    assert nodes(conn)["n0"]["write_threshold"] == 4096
    conn.cmd("blockdev-reopen", {"options": [{"driver": "null-co", "node-name": "n0",
                                              "read-only": True}]})
    assert nodes(conn, flat=False)["n0"]["ro"] is True
    conn.cmd("blockdev-del", {"node-name": "n0"})
    assert nodes(conn) == {} and graph_names(conn) == set()


def test_a_failed_command_leaves_the_same_answer(qmpd) -> None:
    conn = qmpd.connect(negotiate=True)
    conn.cmd("blockdev-add", {"driver": "null-co", "node-name": "n0"})
    before = nodes(conn)
    r = conn.cmd("blockdev-add", {"driver": "null-co", "node-name": "n0"})
    assert r["error"]["desc"] == "Duplicate nodes with node-name='n0'"
    assert nodes(conn) == before


def test_writes_and_bitmaps_show_in_the_next_query(qmpd, short_tmp) -> None:
    conn = qmpd.connect(negotiate=True)
    add_chain(conn, short_tmp)
    conn.cmd("block-dirty-bitmap-add", {"node": "top", "name": "b0"})
    before = nodes(conn)["top"]
    assert before["dirty-bitmaps"][0]["count"] == 0
    r = conn.cmd("human-monitor-command",
                 {"command-line": 'qemu-io top "write -P 0x5a 0 64k"'})
    assert r["return"].startswith("wrote 65536/65536 bytes at offset 0")
    after = nodes(conn)["top"]
    assert after["dirty-bitmaps"][0]["count"] == 65536
    assert after["image"]["actual-size"] > before["image"]["actual-size"]


def test_job_steps_show_in_the_next_query(start_qmpd, short_tmp) -> None:
    q = start_qmpd(*VIRTUAL)
    conn = q.connect(negotiate=True)
    add_chain(conn, short_tmp)
    assert "mid" in nodes(conn)
    conn.send('{"execute": "block-stream", "arguments": {"job-id": "s0", "device": "top", '
              '"speed": 65536}, "id": 1}\n')
    next_messages(conn)
    assert "s0" in graph_names(conn)
    # Only the virtual clock moves the job on: the queries must follow it.
    conn.send(json.dumps({"execute": "block-job-set-speed",
                          "arguments": {"device": "s0", "speed": 0}}) + "\n")
    next_messages(conn)
    assert "s0" not in graph_names(conn)
    chain = nodes(conn, flat=False)
    assert "backing-image" not in chain["top"]["image"]
    assert chain["top"]["backing_file_depth"] == 0


def test_reset_starts_from_an_empty_answer(start_qmpd) -> None:
    q = start_qmpd("--extensions")
    conn = q.connect(negotiate=True)
    conn.cmd("blockdev-add", {"driver": "null-co", "node-name": "n0"})
    assert set(nodes(conn)) == {"n0"}
    assert conn.cmd("x-qmpd-reset") == {"return": {}}
    assert nodes(conn) == {}
    conn.cmd("blockdev-add", {"driver": "null-co", "node-name": "n1"})
    assert set(nodes(conn)) == {"n1"}


def test_clock_step_alone_moves_a_job_and_the_queries(start_qmpd, short_tmp) -> None:
    q = start_qmpd(*VIRTUAL)
    conn = q.connect(negotiate=True)
    add_chain(conn, short_tmp)
    conn.send('{"execute": "block-stream", "arguments": {"job-id": "s0", "device": "top", '
              '"speed": 65536}, "id": 1}\n')
    next_messages(conn)
    before = nodes(conn)["top"]["image"]["actual-size"]
    conn.send(json.dumps({"execute": "x-qmpd-clock-step", "arguments": {"ns": FIRST}}) + "\n")
    next_messages(conn)
    # The job copied its second chunk into top: top's file grew.
    assert nodes(conn)["top"]["image"]["actual-size"] > before


def test_a_job_running_on_its_own_shows_in_the_next_query(start_qmpd, short_tmp) -> None:
    q = start_qmpd()
    conn = q.connect(negotiate=True)
    add_chain(conn, short_tmp)
    # 8 MiB/s: the job's later chunks are copied by the job runner between
    # commands, while this client only asks queries.
    assert conn.cmd("block-stream", {"job-id": "s0", "device": "top",
                                     "speed": 8 * 1024 * 1024}) == {"return": {}}
    assert "s0" in graph_names(conn)
    seen = [m.get("event") for m in conn.events]
    while "BLOCK_JOB_COMPLETED" not in seen:
        seen.append(conn.read().get("event"))
    assert "s0" not in graph_names(conn)
    assert nodes(conn, flat=False)["top"]["backing_file_depth"] == 0
