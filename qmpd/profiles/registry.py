"""Which QEMU releases qmpd can answer as, and choosing one from a version text.

Kept free of imports beyond the standard library's: the CLI checks
``--qemu-version`` before anything heavy is loaded, so a profile module is
imported only when the daemon is built (:func:`select`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qmpd.profiles.base import Profile

# Release series -> the module whose PROFILE class describes it.
SERIES: dict[str, str] = {
    "5.2": "qmpd.profiles.qemu_5_2",
    "7.2": "qmpd.profiles.qemu_7_2",
    "10.0": "qmpd.profiles.qemu_10_0",
}

# What `qmpd` answers as without --qemu-version.
DEFAULT_VERSION = "10.0.2"


class UnknownRelease(ValueError):
    """A ``--qemu-version`` qmpd has no profile for (the text says which it has)."""


def parse_release(text: str) -> tuple[str, tuple[int, int, int]]:
    """``"7.2.22"`` -> ``("7.2", (7, 2, 22))``; ``"7.2"`` means micro 0.

    >>> parse_release("7.2")
    ('7.2', (7, 2, 0))
    >>> parse_release("6.0.0")
    Traceback (most recent call last):
    ...
    qmpd.profiles.registry.UnknownRelease: --qemu-version 6.0.0: qmpd has no profile for QEMU 6.0 (it has: 5.2, 7.2, 10.0)
    """
    parts = text.split(".")
    try:
        nums = [int(p) for p in parts]
    except ValueError:
        nums = []
    if len(nums) not in (2, 3) or any(n < 0 for n in nums):
        raise UnknownRelease(f"--qemu-version {text}: expected MAJOR.MINOR.MICRO, "
                             f"e.g. {DEFAULT_VERSION}")
    if len(nums) == 2:
        nums.append(0)
    series = f"{nums[0]}.{nums[1]}"
    if series not in SERIES:
        known = ", ".join(sorted(SERIES, key=lambda s: tuple(int(x) for x in s.split("."))))
        raise UnknownRelease(f"--qemu-version {text}: qmpd has no profile for QEMU {series} "
                             f"(it has: {known})")
    return series, (nums[0], nums[1], nums[2])


def select(text: str = DEFAULT_VERSION) -> Profile:
    """The profile of release ``text`` (a version like ``"7.2.22"``), reporting
    exactly that version in the greeting and ``query-version``."""
    return load(*parse_release(text))


def load(series: str, version: tuple[int, int, int]) -> Profile:
    """The profile of ``series`` (a key of :data:`SERIES`) reporting ``version``."""
    module = importlib.import_module(SERIES[series])
    return module.PROFILE(version)
