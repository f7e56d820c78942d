"""Block permissions as QEMU's block layer computes them.

Permissions are bit sets over ``consistent-read, write, write-unchanged,
resize`` (QEMU 7.2's BlockPermission) and ``graph-mod``, which releases
before 6.0 had: the functions here compute it as QEMU 5.2 did, and a
release without it never takes it (its profile's ``graph_mod_perm`` is 0)
nor shows it (:func:`names_reversed`'s mask).  The functions here are QEMU's
``bdrv_default_perms`` family: given the role of a child edge and the
cumulative permissions of the parent, they say what the parent needs from
the child and what it lets others do.
"""

from __future__ import annotations

CONSISTENT_READ = 1
WRITE = 2
WRITE_UNCHANGED = 4
RESIZE = 8
# BLK_PERM_GRAPH_MOD (removed in 6.1): only users that change the graph take it.
GRAPH_MOD = 16
ALL = 31
# DEFAULT_PERM_PASSTHROUGH: what a filter passes on; the rest (graph-mod) it
# always shares (DEFAULT_PERM_UNCHANGED).
PASSTHROUGH = 15
NAMES = ("consistent-read", "write", "write-unchanged", "resize", "graph-mod")

# Child roles (BdrvChildRole bits).
ROLE_DATA = 1
ROLE_METADATA = 2
ROLE_FILTERED = 4
ROLE_COW = 8
ROLE_PRIMARY = 16
ROLE_IMAGE = ROLE_DATA | ROLE_METADATA | ROLE_PRIMARY


# bdrv_perm_names: error texts spell the permissions with spaces.
TEXT_NAMES = ("consistent read", "write", "write unchanged", "resize", "change children")


def names(perm: int) -> str:
    """``'write, resize'``: names in enum order, as error texts print them."""
    return ", ".join(n for i, n in enumerate(TEXT_NAMES) if perm & (1 << i))


def names_reversed(perm: int, mask: int = ALL) -> list[str]:
    """The list x-debug-query-block-graph shows (reverse enum order), of
    the permissions in ``mask`` (the release's)."""
    return [n for i, n in reversed(list(enumerate(NAMES))) if perm & mask & (1 << i)]


def filter_default(perm: int, shared: int) -> tuple[int, int]:
    """bdrv_filter_default_perms."""
    return perm & PASSTHROUGH, (shared & PASSTHROUGH) | (ALL & ~PASSTHROUGH)


def for_storage(role: int, writable: bool, perm: int, shared: int) -> tuple[int, int]:
    perm, shared = filter_default(perm, shared)
    if role & ROLE_METADATA:
        if writable:
            perm |= WRITE | RESIZE
        perm |= CONSISTENT_READ
        shared &= ~(WRITE | RESIZE)
    if role & ROLE_DATA:
        shared &= ~RESIZE
        if perm & WRITE_UNCHANGED:
            perm |= WRITE
        if perm & WRITE:
            perm |= RESIZE
    return perm, shared


def for_cow(perm: int, shared: int) -> tuple[int, int]:
    perm &= CONSISTENT_READ
    shared = (WRITE | RESIZE) if shared & WRITE else 0
    shared |= CONSISTENT_READ | WRITE_UNCHANGED | GRAPH_MOD
    return perm, shared


def default(role: int, writable: bool, perm: int, shared: int) -> tuple[int, int]:
    """QEMU's ``bdrv_default_perms``."""
    if role & ROLE_FILTERED:
        return filter_default(perm, shared)
    if role & ROLE_COW:
        return for_cow(perm, shared)
    if role & (ROLE_METADATA | ROLE_DATA):
        return for_storage(role, writable, perm, shared)
    return perm, shared
