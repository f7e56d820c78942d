"""How many fuzz inputs this pytest run fed, by fuzzer.

The fuzzers add to :data:`INPUTS`; ``tests/hardening/conftest.py`` prints the
totals at the end of the run, so ``make fuzz`` shows that it ran its 10^5
inputs.  An input is one message or chunk of bytes handed to the protocol
core, or one command run against the engine.
"""

from __future__ import annotations

import collections

INPUTS: collections.Counter[str] = collections.Counter()


def count(fuzzer: str, n: int = 1) -> None:
    INPUTS[fuzzer] += n
