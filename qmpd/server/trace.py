"""``--trace FILE``: every message in and out, as JSON lines with timestamps.

One line per received chunk (input is not split into messages before the
protocol core sees it) and one per message sent.  Only instantiated when the
option is given, so it costs nothing otherwise.
"""

from __future__ import annotations

import json
import time
from typing import TextIO


class Tracer:
    def __init__(self, path: str) -> None:
        self._f: TextIO = open(path, "a", encoding="utf-8")

    def log(self, client: int, direction: str, data: bytes) -> None:
        """``direction`` is "in", "out", "connect" or "disconnect"."""
        self._f.write(json.dumps({
            "time": round(time.time(), 6),
            "client": client,
            "dir": direction,
            # Input may be anything a client sent: keep undecodable bytes visible.
            "data": data.decode("utf-8", "backslashreplace"),
        }) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()
