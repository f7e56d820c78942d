"""Which unexpected key QEMU names: QDict order fed through a simulated GLib GHashTable.

QEMU's input visitor copies an object's keys (in QDict iteration order) into a
``GHashTable``, removes each member as it is visited, and reports the first
key left in hash-table iteration order.  This is a faithful model of GLib
>= 2.60's open-addressing table (quadratic probing, tombstones, resizing),
verified against QEMU 7.2 (reference section 2.3).
"""

from __future__ import annotations

_PRIME_MOD = [1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381,
              32749, 65521, 131071, 262139, 524287, 1048573, 2097143, 4194301,
              8388593, 16777213, 33554393, 67108859, 134217689, 268435399, 536870909,
              1073741789, 2147483647]


def _tdb_hash(key: str) -> int:
    b = key.encode("utf-8", "surrogatepass")
    v = (0x238F13AF * len(b)) & 0xFFFFFFFF
    for i, c in enumerate(b):
        v = (v + (c << (i * 5 % 24))) & 0xFFFFFFFF
    return (1103515243 * v + 12345) & 0xFFFFFFFF


def qdict_key_order(keys: list[str]) -> list[str]:
    """Iteration order of a QDict whose keys were inserted in ``keys`` order."""
    pos = {k: i for i, k in enumerate(keys)}
    return sorted(keys, key=lambda k: (_tdb_hash(k) % 512, -pos[k]))


def _g_str_hash(s: str) -> int:
    h = 5381
    for c in s.encode("utf-8", "surrogatepass"):
        # g_str_hash works on (signed) char.
        h = (h * 33 + (c - 256 if c >= 128 else c)) & 0xFFFFFFFF
    return h


class _GHash:
    """Keys-only model of GHashTable (g_hash_table_new(g_str_hash, g_str_equal))."""

    def __init__(self) -> None:
        self._shift(3)
        self.h = [0] * self.size
        self.k: list[str | None] = [None] * self.size
        self.nn = 0
        self.nocc = 0

    def _shift(self, sh: int) -> None:
        self.size = 1 << sh
        self.mod = _PRIME_MOD[sh]
        self.mask = self.size - 1

    def _idx(self, hv: int) -> int:
        return ((hv * 11) & 0xFFFFFFFF) % self.mod

    def _look(self, key: str) -> tuple[int, int]:
        hv = max(_g_str_hash(key), 2)
        i = self._idx(hv)
        step = 0
        tomb = None
        while self.h[i]:
            if self.h[i] == hv and self.k[i] == key:
                return i, hv
            if self.h[i] == 1 and tomb is None:
                tomb = i
            step += 1
            i = (i + step) & self.mask
        return (i if tomb is None else tomb), hv

    def insert(self, key: str) -> None:
        i, hv = self._look(key)
        old = self.h[i]
        if old >= 2:
            return
        self.h[i], self.k[i] = hv, key
        self.nn += 1
        if old == 0:
            self.nocc += 1
            self._maybe_resize()

    def remove(self, key: str) -> None:
        i, _ = self._look(key)
        if self.h[i] < 2:
            return
        self.h[i], self.k[i] = 1, None
        self.nn -= 1
        self._maybe_resize()

    def _maybe_resize(self) -> None:
        if (self.size > self.nn * 4 and self.size > 8) or self.size <= self.nocc + self.nocc // 16:
            self._resize()

    def _resize(self) -> None:
        old = self.size
        n = int(self.nn * 1.333)
        sh = 0
        while n:
            n >>= 1
            sh += 1
        self._shift(max(sh, 3))
        if self.size > old:
            self.h += [0] * (self.size - old)
            self.k += [None] * (self.size - old)
        done = [False] * max(self.size, old)
        for i in range(old):
            nh = self.h[i]
            if nh < 2:
                self.h[i] = 0
                continue
            if done[i]:
                continue
            self.h[i] = 0
            key = self.k[i]
            self.k[i] = None
            while True:
                j = self._idx(nh)
                step = 0
                while done[j]:
                    step += 1
                    j = (j + step) & self.mask
                done[j] = True
                rh, rk = self.h[j], self.k[j]
                self.h[j], self.k[j] = nh, key
                if rh < 2:
                    break
                nh, key = rh, rk
        if self.size < old:
            self.h, self.k = self.h[: self.size], self.k[: self.size]
        self.nocc = self.nn

    def first(self) -> str | None:
        for i in range(self.size):
            if self.h[i] >= 2:
                return self.k[i]
        return None


def first_unexpected(input_keys: list[str], visited: list[str]) -> str:
    """The unexpected key QEMU reports for an object.

    ``input_keys``: the object's keys in the order the client sent them;
    ``visited``: the members present in it, in schema (visit) order.
    """
    seen = set(visited)
    extra = [k for k in input_keys if k not in seen]
    if len(extra) == 1:
        return extra[0]
    t = _GHash()
    for k in qdict_key_order(input_keys):
        t.insert(k)
    for k in visited:
        t.remove(k)
    key = t.first()
    assert key is not None
    return key
