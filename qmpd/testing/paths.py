"""Where qmpd.testing puts scratch files and how it starts its children.

iotests' environment knobs (``$IMGFMT``, ``$TEST_DIR``, ``$CACHEMODE``,
``$AIOMODE``), the scratch directory that ``file_path``/``FilePath`` name
files in, and the command line and environment of the processes the
harness starts (qmpd itself and qmpd-img).
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from typing import Any

#: Image format used when a helper is not given ``-f`` (iotests' ``imgfmt``).
imgfmt: str = os.environ.get("IMGFMT", "qcow2")

# iotests' cache and aio modes (``./check -c``, ``-aio``), used by add_drive.
cachemode: str = os.environ.get("CACHEMODE", "writeback")
aiomode: str = os.environ.get("AIOMODE", "threads")

_own_test_dir: str | None = None


def scratch_dir() -> str:
    """``$TEST_DIR``, or a private temporary directory made on first use and removed at exit."""
    global _own_test_dir
    env = os.environ.get("TEST_DIR")
    if env:
        return env
    if _own_test_dir is None:
        _own_test_dir = tempfile.mkdtemp(prefix="qmpd-test-")
        atexit.register(shutil.rmtree, _own_test_dir, True)
    return _own_test_dir


def child_env() -> dict[str, str]:
    """The environment of a child process (qmpd, qmpd-img)."""
    # Children run ``python -m qmpd`` with our interpreter; make sure they
    # import this very copy of qmpd even when it is not installed (a clone
    # used from its own directory): the directory above the qmpd package.
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def program(var: str, module: str) -> list[str]:
    """The command that runs ``module`` (``python -m``), unless ``$var`` names another."""
    override = os.environ.get(var)
    if override:
        return override.split()
    return [sys.executable, "-m", module]


def file_path(*names: str) -> Any:
    """Paths ``TEST_DIR/PID-NAME`` removed at exit; one name gives a str, several a list."""
    paths = [os.path.join(scratch_dir(), f"{os.getpid()}-{name}") for name in names]

    def remove() -> None:
        for p in paths:
            try_remove(p)

    atexit.register(remove)
    return paths[0] if len(paths) == 1 else paths


def try_remove(img: str) -> None:
    """Remove a file if it is there."""
    try:
        os.remove(img)
    except OSError:
        pass


class FilePath:
    """``with FilePath('a.img', 'b.img') as (a, b):`` names in ``test_dir``
    (``PID-NAME``), removed when the block ends; one name gives a str."""

    def __init__(self, *names: str, base_dir: str | None = None) -> None:
        base = base_dir if base_dir is not None else scratch_dir()
        self.paths = [os.path.join(base, f"{os.getpid()}-{name}") for name in names]

    def __enter__(self) -> Any:
        return self.paths[0] if len(self.paths) == 1 else self.paths

    def __exit__(self, *exc: object) -> bool:
        for path in self.paths:
            try_remove(path)
        return False
