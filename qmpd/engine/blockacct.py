"""I/O accounting of a BlockBackend (QEMU block/accounting.c).

Only the BlockBackend's user accounts: in qmpd, HMP ``qemu-io`` on a
``-drive`` or a device (``aio_read``, ``aio_write``, ``aio_flush`` and their
``-i``).  Block jobs, exports and qemu-io's plain ``read``/``write`` do not
count, as in QEMU.  Times come from the caller's clock (``now`` in
nanoseconds): the engine keeps no clock of its own.  query-blockstats
(:mod:`qmpd.engine.blockstats`) reports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# enum BlockAcctType, by the prefix BlockDeviceStats gives each type.
READ, WRITE, FLUSH, UNMAP, ZONE_APPEND = "rd", "wr", "flush", "unmap", "zone_append"
TYPES = (READ, WRITE, ZONE_APPEND, FLUSH, UNMAP)
# Under qtest QEMU accounts every request as taking 1 ms (qtest_latency_ns):
# qmpd does the same when its clock is virtual, where no time passes.
VIRTUAL_LATENCY_NS = 1_000_000


@dataclass
class Cookie:
    """BlockAcctCookie: one request under way."""

    type: str
    bytes: int
    start_ns: int


def _zeros() -> dict[str, int]:
    return dict.fromkeys(TYPES, 0)


@dataclass
class BlockAcctStats:
    """BlockAcctStats of one BlockBackend."""

    nr_bytes: dict[str, int] = field(default_factory=_zeros)
    nr_ops: dict[str, int] = field(default_factory=_zeros)
    failed_ops: dict[str, int] = field(default_factory=_zeros)
    invalid_ops: dict[str, int] = field(default_factory=_zeros)
    merged: dict[str, int] = field(default_factory=_zeros)
    total_time_ns: dict[str, int] = field(default_factory=_zeros)
    last_access_ns: int = 0
    # block_acct_init: both on; -drive's stats-account-* / a device's account-*.
    account_invalid: bool = True
    account_failed: bool = True

    def start(self, kind: str, nbytes: int, now: int) -> Cookie:
        return Cookie(kind, nbytes, now)

    def done(self, cookie: Cookie, now: int, virtual: bool) -> None:
        self._account(cookie, now, virtual, failed=False)

    def failed(self, cookie: Cookie, now: int, virtual: bool) -> None:
        self._account(cookie, now, virtual, failed=True)

    def _account(self, cookie: Cookie, now: int, virtual: bool, failed: bool) -> None:
        """block_account_one_io."""
        kind = cookie.type
        latency = VIRTUAL_LATENCY_NS if virtual else max(now - cookie.start_ns, 0)
        if failed:
            self.failed_ops[kind] += 1
        else:
            self.nr_bytes[kind] += cookie.bytes
            self.nr_ops[kind] += 1
        if not failed or self.account_failed:
            self.total_time_ns[kind] += latency
            self.last_access_ns = now

    def invalid(self, kind: str, now: int) -> None:
        """block_acct_invalid: counted at submission, no time spent."""
        self.invalid_ops[kind] += 1
        if self.account_invalid:
            self.last_access_ns = now
