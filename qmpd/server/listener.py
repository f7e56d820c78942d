"""Creating and removing the listening UNIX socket (plain blocking code, run
before the event loop starts).

The socket file appears only once it accepts connections: the socket is
bound under a temporary name in the same directory, given its mode, put in
listening state and only then renamed to the requested path.  A script may
therefore connect as soon as it sees the file.  A file left behind by a dead
server is replaced; one that a live server answers on is refused.
"""

from __future__ import annotations

import errno
import os
import socket
import stat

# sun_path holds 108 bytes including the terminating NUL.
MAX_UNIX_PATH = 107


class ListenError(Exception):
    """The socket cannot be created; the message is meant for the user."""


def _is_live(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2.0)
    try:
        probe.connect(path)
    except OSError:
        return False
    else:
        return True
    finally:
        probe.close()


def _check_existing(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise ListenError(f"{path} exists and is not a socket; refusing to replace it")
    if _is_live(path):
        raise ListenError(f"{path}: another server is already listening on this socket")


class UnixListener:
    """A bound, listening AF_UNIX socket and the file it owns."""

    def __init__(self, path: str, mode: int, backlog: int = 128) -> None:
        self.path = path
        if len(os.fsencode(path)) > MAX_UNIX_PATH:
            raise ListenError(f"{path}: UNIX socket paths are limited to {MAX_UNIX_PATH} bytes")
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            raise ListenError(f"{path}: directory {directory} does not exist")
        _check_existing(path)
        tmp = os.path.join(directory, f".qmpd-{os.getpid()}.sock")
        if len(os.fsencode(tmp)) > MAX_UNIX_PATH:
            # No room for a temporary name: bind in place; the file then exists
            # for the few microseconds between bind() and listen().
            tmp = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if tmp != path and os.path.lexists(tmp):
                os.unlink(tmp)
            if tmp == path and os.path.lexists(path):
                os.unlink(path)
            self.sock.bind(tmp)
            os.chmod(tmp, mode)
            self.sock.listen(backlog)
            if tmp != path:
                # Atomically replaces a stale socket file left by a dead server.
                os.rename(tmp, path)
        except OSError as e:
            self.sock.close()
            if tmp != path:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            msg = os.strerror(e.errno) if e.errno else str(e)
            if e.errno == errno.EACCES:
                msg = "permission denied"
            raise ListenError(f"{path}: cannot create socket: {msg}") from None
        st = os.stat(path)
        self._identity = (st.st_dev, st.st_ino)

    def remove(self) -> None:
        """Close the socket and remove its file, unless someone replaced it."""
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self._identity:
                os.unlink(self.path)
        except OSError:
            pass
