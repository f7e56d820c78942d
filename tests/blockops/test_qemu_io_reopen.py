"""HMP ``qemu-io NODE "reopen ..."``: bdrv_reopen with the node's other
options kept, QemuOpts strings after ``-o``, and reopen_f's own refusals."""

from __future__ import annotations

import pytest

from tests.blockops.test_blockstats import Env, disk


@pytest.fixture
def env(tmp_path) -> Env:
    e = Env()
    e("blockdev-add", driver="null-co", node_name="hd0", size=1 << 20, read_zeroes=True)
    return e


def node(env: Env, name: str) -> dict:
    return next(n for n in env("query-named-block-nodes") if n["node-name"] == name)


def test_read_only_and_back(env: Env) -> None:
    assert env.io("hd0", "reopen -r") == ""
    assert node(env, "hd0")["ro"] is True
    assert "Block node is read-only" in env.io("hd0", "write 0 512")
    assert env.io("hd0", "reopen -w") == ""
    assert node(env, "hd0")["ro"] is False
    assert "wrote 512/512 bytes at offset 0" in env.io("hd0", "write 0 512")


def test_options_not_named_keep_their_values(env: Env) -> None:
    env.io("hd0", "reopen -r")
    env.io("hd0", "reopen -o discard=unmap")
    # detect-zeroes=unmap needs discard=unmap: kept from the reopen before,
    # as is read-only.
    assert env.io("hd0", "reopen -o detect-zeroes=unmap") == ""
    n = node(env, "hd0")
    assert (n["detect_zeroes"], n["ro"]) == ("unmap", True)


def test_cache_mode_sets_the_cache_options(env: Env) -> None:
    env.io("hd0", "reopen -c unsafe")
    assert node(env, "hd0")["cache"] == {"writeback": True, "direct": False, "no-flush": True}


@pytest.mark.parametrize("line, text", [
    ("reopen -r -w", "Only one -r/-w option may be given"),
    ("reopen -r -o read-only=on", "Cannot set both -r/-w and 'read-only'"),
    ("reopen -c none -o cache.no-flush=on", "Cannot set both -c and the cache options"),
    ("reopen -c bogus", "Invalid cache option: bogus"),
    ("reopen -o read-only=maybe", "Parameter 'read-only' expects 'on' or 'off'"),
    ("reopen -o node-name=other", "Cannot change the option 'node-name'"),
    ("reopen -o detect-zeroes=unmap", "setting detect-zeroes to unmap is not allowed without "
                                       "setting discard operation to unmap"),
])
def test_refusals_leave_the_node_as_it_was(env: Env, line: str, text: str) -> None:
    before = node(env, "hd0")
    assert env.io("hd0", line).strip() == text
    assert node(env, "hd0") == before


def test_write_cache_of_a_device_cannot_change() -> None:
    env = Env()
    disk(env)
    assert env("human-monitor-command", command_line='qemu-io -d sd0 "reopen -c writethrough"'
               ).strip() == "Cannot change cache.writeback: Device attached"
