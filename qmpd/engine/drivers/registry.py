"""The block drivers qmpd has, by name: the one list of them.

A driver is added by writing its module in this package and listing it here;
nothing registers itself on import.  :func:`get_driver` hands out one shared
instance per name (drivers keep no per-node state: that lives on the node).

``commit_top`` and ``mirror_top`` are the filters jobs insert by name (QEMU's
``bdrv_new_open_driver``); the schema's BlockdevDriver enum keeps clients from
naming them in ``blockdev-add``.  ``copy-before-write`` and a plain mirror's
``mirror_top`` are not listed: their jobs create them directly, and
``blockdev-add`` of ``copy-before-write`` is refused as not supported.
"""

from __future__ import annotations

from collections.abc import Callable

from qmpd.engine.drivers.base import Driver
from qmpd.engine.drivers.blkdebug import BlkdebugDriver
from qmpd.engine.drivers.blkverify import BlkverifyDriver
from qmpd.engine.drivers.commit_top import CommitTopDriver
from qmpd.engine.drivers.compress import CompressDriver
from qmpd.engine.drivers.copy_on_read import CopyOnReadDriver
from qmpd.engine.drivers.file import FileDriver
from qmpd.engine.drivers.mirror_top import MirrorTopDriver
from qmpd.engine.drivers.null import NullDriver
from qmpd.engine.drivers.preallocate import PreallocateDriver
from qmpd.engine.drivers.qcow2 import Qcow2Driver
from qmpd.engine.drivers.quorum import QuorumDriver
from qmpd.engine.drivers.raw import RawDriver
from qmpd.engine.drivers.throttle import ThrottleDriver

FACTORIES: dict[str, Callable[[], Driver]] = {
    "file": FileDriver,
    "null-co": lambda: NullDriver("null-co"),
    "null-aio": lambda: NullDriver("null-aio"),
    "raw": RawDriver,
    "throttle": ThrottleDriver,
    "copy-on-read": CopyOnReadDriver,
    "blkdebug": BlkdebugDriver,
    "blkverify": BlkverifyDriver,
    "quorum": QuorumDriver,
    "compress": CompressDriver,
    "preallocate": PreallocateDriver,
    "qcow2": Qcow2Driver,
    # the jobs' filters
    "commit_top": CommitTopDriver,
    "mirror_top": MirrorTopDriver,
}
_INSTANCES: dict[str, Driver] = {}


def get_driver(name: str) -> Driver | None:
    """The driver called ``name``, or None when qmpd has no such driver."""
    drv = _INSTANCES.get(name)
    if drv is None:
        factory = FACTORIES.get(name)
        if factory is None:
            return None
        drv = _INSTANCES[name] = factory()
    return drv
