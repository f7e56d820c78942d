"""iotests' ``log`` and its filters, for output that is the same on every run.

``log`` prints strings and QMP messages (as sorted JSON); the ``filter_*``
functions replace what varies between runs (timestamps, generated node
names, scratch file names, qemu-io timings, the image format) with fixed
words, as iotests' filters of the same names do.
"""

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from qmpd.testing.paths import imgfmt, scratch_dir
from qmpd.testing.qmp import QMPMessage


def log(msg: Any, filters: Iterable[Callable[[Any], Any]] = (),
        indent: int | None = None) -> None:
    """Print a string, or a QMP message as JSON (keys sorted unless ordered)."""
    for flt in filters:
        msg = flt(msg)
    if isinstance(msg, (dict, list)):
        do_sort = not isinstance(msg, OrderedDict)
        print(json.dumps(msg, sort_keys=do_sort, indent=indent), flush=True)
    else:
        print(msg, flush=True)


def ordered_qmp(qmsg: Any, conv_keys: bool = True) -> Any:
    """Keys sorted (and, at the top level, ``_`` as ``-``), as iotests logs them."""
    if isinstance(qmsg, list):
        return [ordered_qmp(atom) for atom in qmsg]
    if isinstance(qmsg, dict):
        od: OrderedDict[str, Any] = OrderedDict()
        for k, v in sorted(qmsg.items()):
            if conv_keys:
                k = k.replace("_", "-")
            od[k] = ordered_qmp(v, conv_keys=False)
        return od
    return qmsg


def filter_qmp(qmsg: Any, filter_fn: Callable[[Any, Any], Any]) -> Any:
    """Apply ``filter_fn(key, value)`` to every leaf of a QMP object, in place."""
    if isinstance(qmsg, list):
        items: Iterable[tuple[Any, Any]] = list(enumerate(qmsg))
    elif isinstance(qmsg, dict):
        items = list(qmsg.items())
    else:
        return filter_fn(None, qmsg)
    for k, v in items:
        if isinstance(v, (dict, list)):
            qmsg[k] = filter_qmp(v, filter_fn)
        else:
            qmsg[k] = filter_fn(k, v)
    return qmsg


def filter_qmp_event(event: QMPMessage) -> QMPMessage:
    """Replace an event's timestamp with SECS/USECS."""
    event = dict(event)
    if "timestamp" in event:
        event["timestamp"] = {"seconds": "SECS", "microseconds": "USECS"}
    return event


def filter_generated_node_ids(msg: str) -> str:
    return re.sub("#block[0-9]+", "NODE_NAME", msg)


def _string_filter(fn: Callable[[str], str]) -> Callable[[Any], Any]:
    def qmp_filter(qmsg: Any) -> Any:
        return filter_qmp(qmsg, lambda _k, v: fn(v) if isinstance(v, str) else v)
    return qmp_filter


filter_qmp_generated_node_ids = _string_filter(filter_generated_node_ids)


def filter_testfiles(msg: str) -> str:
    """file_path() names become ``TEST_DIR/PID-NAME``, as in iotests."""
    pref = os.path.join(scratch_dir(), f"{os.getpid()}-")
    return msg.replace(pref, "TEST_DIR/PID-").replace(scratch_dir() + "/", "TEST_DIR/")


filter_qmp_testfiles = _string_filter(filter_testfiles)

_qemu_io_re = re.compile(r"[0-9]* ops; [0-9\/:. sec]* "
                         r"\([0-9\/.inf]* [EPTGMKiBbytes]*\/sec "
                         r"and [0-9\/.inf]* ops\/sec\)")


def filter_qemu_io(msg: str) -> str:
    """qemu-io's timing line, as iotests filters it."""
    return _qemu_io_re.sub("X ops; XX:XX:XX.X (XXX YYY/sec and XXX ops/sec)", msg)


#: qemu-io's timing line inside a reply (qmpd returns qemu-io output there).
filter_qmp_qemu_io = _string_filter(filter_qemu_io)

filter_qmp_imgfmt = _string_filter(lambda s: s.replace(imgfmt, "IMGFMT"))
