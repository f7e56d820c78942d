"""The harness's QMP client: a small blocking one, so scripts need no qemu.qmp.

One JSON message per line over qmpd's UNIX socket; events that arrive
while a command waits for its reply are queued for ``VM.get_qmp_event``
and friends.  Also the two errors a script sees: :class:`QMPError` (a
command failed, from ``VM.command``) and :class:`VMError` (qmpd did not
start, or the connection broke).
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any

QMPMessage = dict[str, Any]


class QMPError(Exception):
    """A command answered with an error (``VM.command``)."""

    def __init__(self, reply: QMPMessage) -> None:
        self.reply = reply
        err = reply.get("error", {})
        self.error_class: str = err.get("class", "")
        self.desc: str = err.get("desc", "")
        super().__init__(f"{self.error_class}: {self.desc}")


class VMError(Exception):
    """qmpd did not start, or the connection broke."""


class SyncQMP:
    """A minimal blocking QMP client: one JSON message per line, events queued."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.events: list[QMPMessage] = []
        self.greeting = self._recv(None)
        self.cmd("qmp_capabilities")

    def _recv(self, timeout: float | None) -> QMPMessage:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buf:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no QMP message in time")
                self.sock.settimeout(left)
            else:
                self.sock.settimeout(None)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise TimeoutError("no QMP message in time") from None
            if not chunk:
                raise VMError("qmpd closed the connection")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def cmd(self, name: str, args: dict[str, Any] | None = None) -> QMPMessage:
        msg: dict[str, Any] = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._recv(None)
            if "event" in reply:
                self.events.append(reply)
                continue
            return reply

    def pull_event(self, wait: bool | float = False) -> QMPMessage | None:
        """Next event: queued, or read now (``wait``: True forever, a number in seconds)."""
        if self.events:
            return self.events.pop(0)
        if wait is False:
            timeout = 0.0
            # Take whatever has already arrived without blocking.
            self.sock.setblocking(False)
            try:
                chunk = self.sock.recv(65536)
                self.buf += chunk
            except BlockingIOError:
                pass
            finally:
                self.sock.setblocking(True)
            if b"\n" not in self.buf:
                return None
        else:
            timeout = None if wait is True else float(wait)
        msg = self._recv(timeout)
        if "event" not in msg:
            raise VMError(f"unexpected message while waiting for an event: {msg}")
        return msg

    def close(self) -> None:
        self.sock.close()


# Every VM launched and not yet shut down: whatever fails (a setUp that
# raises after launch(), an exception in a test, an interrupted script), no
