"""A long (stepwise) command's error reads in the words of the release qmpd
answers as, like the error of any other command.

qemu-io under ``human-monitor-command`` is the one command that runs in
steps: the server runs its later steps itself, outside the dispatcher, and
used to word their errors in the baseline (QEMU 7.2's) text whatever
``--qemu-version`` said.  No error a real qemu-io step can raise today reads
differently between the releases qmpd has profiles for (its I/O errors go
into qemu-io's output, and the reply-too-large error is qmpd's own), so the
step that fails here is injected: an engine error and a command error with a
message 5.2 words differently from 7.2.

Runs the server in-process (trio) so that the failing step can be injected.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator
from typing import Any

import pytest
import trio
from server_testlib import read_line

from qmpd.commands import hmp
from qmpd.commands.dispatch import Daemon, Dispatcher
from qmpd.commands.errors import QMPError
from qmpd.engine.errors import BlockError
from qmpd.jobs.clock import VirtualClock
from qmpd.profiles import select
from qmpd.server.app import Server
from qmpd.server.config import Endpoint, ServerConfig
from qmpd.server.listener import UnixListener

# 7.2: "Invalid node-name: 'n 1'"; 5.2 (bdrv_assign_node_name before 6.0): this.
WORDS_OF_5_2 = "Invalid node name"

ERRORS: dict[str, Callable[[], Exception]] = {
    "engine error": lambda: BlockError.of("node.invalid-node-name", name="n 1"),
    "command error": lambda: QMPError.of("node.invalid-node-name", name="n 1"),
}


def _failing_steps(make_error: Callable[[], Exception]) -> Callable[..., Generator[None]]:
    def steps(*_args: Any) -> Generator[None, None, str]:
        yield       # a first step that succeeds: the error comes from a later one
        raise make_error()
    return steps



@pytest.mark.parametrize("kind", ERRORS)
async def test_later_step_error_is_worded_by_the_profile(kind, short_tmp, monkeypatch):
    monkeypatch.setattr(hmp, "_qemu_io_steps", _failing_steps(ERRORS[kind]))
    path = f"{short_tmp}/steps.sock"
    server = Server(ServerConfig(endpoints=[Endpoint("unix", path)], qemu_version=(5, 2, 0)))
    listener = UnixListener(path, 0o600)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(server.main, [listener])
            stream = await trio.open_unix_socket(path)
            pending = bytearray()
            await read_line(stream, pending)  # greeting
            await stream.send_all(
                b'{"execute": "qmp_capabilities"}'
                b'{"execute": "blockdev-add", "arguments": '
                b'{"driver": "null-co", "node-name": "n0"}}'
                b'{"execute": "human-monitor-command", "id": 1, "arguments": '
                b'{"command-line": "qemu-io n0 \\"read 0 512\\""}}')
            assert json.loads(await read_line(stream, pending)) == {"return": {}}
            assert json.loads(await read_line(stream, pending)) == {"return": {}}
            reply = json.loads(await read_line(stream, pending))
            server.request_shutdown()
    finally:
        listener.remove()
    assert reply == {"id": 1, "error": {"class": "GenericError", "desc": WORDS_OF_5_2}}


@pytest.mark.parametrize("kind", ERRORS)
def test_in_process_stepwise_error_is_worded_by_the_profile(kind, monkeypatch):
    """In-process callers of the dispatcher get the steps run at once: the
    same words."""
    monkeypatch.setattr(hmp, "_qemu_io_steps", _failing_steps(ERRORS[kind]))
    daemon = Daemon(select("5.2.0"), job_time=VirtualClock())
    run = Dispatcher(daemon).execute
    run("blockdev-add", {"driver": "null-co", "node-name": "n0"})
    with pytest.raises(QMPError) as caught:
        run("human-monitor-command", {"command-line": 'qemu-io n0 "read 0 512"'})
    assert caught.value.desc == WORDS_OF_5_2
