"""The client half of the conformance fork server (see ``forkserver.py``).

Run as ``python -S -I forkclient.py SOCKET qmpd|img ARGS...``: it asks the
server to fork ``qmpd`` (or ``qmpd-img``) with ARGS and this process's cwd,
environment and standard streams, then stands in for that child -- signals
sent to this process go to the child, and this process exits as the child
did.  Standard library only, so that it starts fast without site-packages.
"""

import json
import os
import signal
import socket
import struct
import sys


def _recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def main():
    path, prog, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.connect(path)
    body = json.dumps({"prog": prog, "argv": argv, "cwd": os.getcwd(),
                       "env": dict(os.environ)}).encode("utf-8", "surrogateescape")
    socket.send_fds(conn, [struct.pack(">I", len(body))], [0, 1, 2])
    conn.sendall(body)
    (pid,) = struct.unpack(">i", _recv_exact(conn, 4))

    def forward(sig, _frame):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, forward)
    try:
        (status,) = struct.unpack(">i", _recv_exact(conn, 4))
    except (EOFError, OSError):
        return 1
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
