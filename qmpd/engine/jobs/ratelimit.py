"""util/ratelimit.h as the block jobs use it (BlockJob's limit): a quota of
bytes per slice of BLOCK_JOB_SLICE_TIME, and the delay a job sleeps once a
request took it past the quota.  With an explicit clock."""

from __future__ import annotations

SLICE_NS = 100_000_000          # BLOCK_JOB_SLICE_TIME


class RateLimit:
    """util/ratelimit.h, with an explicit clock."""

    def __init__(self) -> None:
        self.slice_quota = 0
        self.slice_ns = SLICE_NS
        self.slice_start = 0
        self.slice_end = 0
        self.dispatched = 0

    def set_speed(self, speed: int) -> None:
        self.slice_quota = 0 if speed == 0 else max(int(speed * self.slice_ns / 1e9), 1)

    def delay(self, n: int, now: int) -> int:
        if not self.slice_quota:
            return 0
        if self.slice_end < now:
            self.slice_start = now
            self.slice_end = now + self.slice_ns
            self.dispatched = 0
        self.dispatched += n
        if self.dispatched < self.slice_quota:
            return 0
        slices = self.dispatched / self.slice_quota
        self.slice_end = self.slice_start + int(slices * self.slice_ns)
        return self.slice_end - now
