"""User-created QOM objects the block layer uses: throttle groups and iothreads
(QEMU 7.2 block/throttle-groups.c, util/throttle.c, iothread.c).

The objects live on the :class:`~qmpd.engine.graph.BlockGraph`
(``throttle_groups``, ``iothreads``); :func:`add` and :func:`delete` are
``object-add`` and ``object-del`` in QEMU's order of checks: the id must be an
identifier, then the properties are set (throttle limits are validated as
they are set), then the id must be free among all user-created objects, then
the object completes.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from qmpd.engine.errors import BlockError
from qmpd.engine.node import id_wellformed

if TYPE_CHECKING:
    from qmpd.engine.graph import BlockGraph

THROTTLE_VALUE_MAX = 1000000000000000
UINT_MAX = 0xFFFFFFFF
U64 = (1 << 64) - 1

# ThrottleLimits member -> (bucket, field); buckets in QEMU's BucketType order.
_BUCKETS = ("bps-total", "bps-read", "bps-write", "iops-total", "iops-read", "iops-write")
IOTHREAD_DEFAULTS = {"poll-max-ns": 32768, "poll-grow": 0, "poll-shrink": 0, "aio-max-batch": 0}


class ThrottleGroup:
    """A throttle-group object; ``users`` counts the throttle nodes in it."""

    def __init__(self, gid: str, limits: dict) -> None:
        self.id = gid
        self.limits = limits
        self.users = 0


class IOThread:
    """An iothread object: an AioContext nodes and devices can move to."""

    def __init__(self, oid: str, props: dict) -> None:
        self.id = oid
        self.props = props


def _limits_to_config(limits: dict, cfg: dict) -> None:
    for key, value in limits.items():
        if key == "iops-size":
            cfg["op_size"] = value & U64
            continue
        for b in _BUCKETS:
            if key == b:
                cfg[b]["avg"] = value & U64
            elif key == b + "-max":
                cfg[b]["max"] = value & U64
            elif key == b + "-max-length":
                if value & U64 > UINT_MAX:
                    raise BlockError.of("object.burst-length-out-of-range", key=key, max=UINT_MAX)
                cfg[b]["burst"] = value & U64
    _throttle_is_valid(cfg)


def _throttle_is_valid(cfg: dict) -> None:
    """throttle_is_valid."""
    def avg(b: str) -> int:
        return cfg[b]["avg"]

    def mx(b: str) -> int:
        return cfg[b]["max"]

    if (avg("bps-total") and (avg("bps-read") or avg("bps-write"))) or \
            (avg("iops-total") and (avg("iops-read") or avg("iops-write"))) or \
            (mx("bps-total") and (mx("bps-read") or mx("bps-write"))) or \
            (mx("iops-total") and (mx("iops-read") or mx("iops-write"))):
        raise BlockError.of("object.bps-iops-max-total-values")
    if cfg["op_size"] and not (avg("iops-total") or avg("iops-read") or avg("iops-write")):
        raise BlockError.of("object.iops-size-requires-iops-value")
    for b in _BUCKETS:
        bk = cfg[b]
        if bk["avg"] > THROTTLE_VALUE_MAX or bk["max"] > THROTTLE_VALUE_MAX:
            raise BlockError.of("object.bps-iops-max-values-must",
                                max=THROTTLE_VALUE_MAX)
        if not bk["burst"]:
            raise BlockError.of("object.burst-length-cannot-0")
        if bk["burst"] > 1 and not bk["max"]:
            raise BlockError.of("object.burst-length-set-without-burst")
        if bk["max"] and bk["burst"] > THROTTLE_VALUE_MAX // bk["max"]:
            raise BlockError.of("object.burst-length-too-high-burst")
        if bk["max"] and not bk["avg"]:
            raise BlockError.of("object.bps-max-iops-max-require")
        if bk["max"] and bk["max"] < bk["avg"]:
            raise BlockError.of("object.bps-max-iops-max-cannot")


def _new_config() -> dict:
    cfg: dict[str, Any] = {b: {"avg": 0, "max": 0, "burst": 1} for b in _BUCKETS}
    cfg["op_size"] = 0
    return cfg


def _check_free(g: BlockGraph, oid: str) -> None:
    if oid in g.throttle_groups or oid in g.iothreads:
        raise BlockError.of("object.attempt-add-duplicate-property-object", oid=oid)


# QOM properties of the two object types, for releases whose object-add is
# untyped ('gen': false before 6.0) and sets them one by one.
_THROTTLE_PROPS = ("limits", *(f"x-{b}{s}" for b in _BUCKETS for s in ("", "-max", "-max-length")),
                   "x-iops-size")
_IOTHREAD_PROPS = ("poll-max-ns", "poll-grow", "poll-shrink")


def qom_properties(args: dict) -> dict:
    """object-add's arguments as QEMU before 6.0 checks them (qmp_object_add,
    user_creatable_add_dict/add_type): ``props`` joins the top level, qom-type
    and id must be strings, the type must exist, and each remaining key is set
    as a property in order.  Returns the arguments in :func:`add`'s shape."""
    args = dict(args)
    if "props" in args:
        props = args.pop("props")
        if not isinstance(props, dict):
            raise BlockError("Invalid parameter type for 'props', expected: dict")
        if any(k in args for k in props):
            raise BlockError("Option in 'props' conflicts with top level")
        args.update(props)
    qom_type, oid = args.pop("qom-type", None), args.pop("id", None)
    for key, value in (("qom-type", qom_type), ("id", oid)):
        if not isinstance(value, str):
            raise BlockError(f"Parameter '{key}' is missing")
    table = {"throttle-group": _THROTTLE_PROPS, "iothread": _IOTHREAD_PROPS}.get(str(qom_type))
    if table is None:
        raise BlockError(f"invalid object type: {qom_type}")
    for key, value in args.items():
        if key not in table:
            raise BlockError(f"Property '{qom_type}.{key}' not found")
        if key == "limits":
            if not isinstance(value, dict):
                raise BlockError("Invalid parameter type for 'limits', expected: object")
            # ThrottleLimits through the QAPI visitor: the members first, then
            # the leftovers
            for k, v in value.items():
                if f"x-{k}" in _THROTTLE_PROPS and (isinstance(v, bool) or not isinstance(v, int)):
                    raise BlockError(f"Invalid parameter type for 'limits.{k}', expected: integer")
            for k in value:
                if f"x-{k}" not in _THROTTLE_PROPS:
                    raise BlockError(f"Parameter 'limits.{k}' is unexpected")
        elif isinstance(value, bool) or not isinstance(value, int):
            raise BlockError(f"Invalid parameter type for '{key}', expected: integer")
        elif key.startswith("x-") and value < 0:
            raise BlockError("Property values cannot be negative")
    return {"qom-type": qom_type, "id": oid, **args}


def add(g: BlockGraph, args: dict, id_rule: bool = True) -> None:
    """object-add of a throttle-group or an iothread.  ``id_rule``: the id
    must be an identifier (6.0's typed object-add; before, any string went)."""
    oid = args["id"]
    qom_type = args["qom-type"]
    if id_rule and not id_wellformed(oid):
        raise BlockError.of("object.parameter-id-expects-identifier")
    if qom_type == "throttle-group":
        cfg = _new_config()
        for key, value in args.items():
            if key == "limits":
                _limits_to_config(value, cfg)
            elif key.startswith("x-"):
                _limits_to_config({key[2:]: value}, cfg)
        _check_free(g, oid)
        g.throttle_groups[oid] = ThrottleGroup(oid, cfg)
    elif qom_type == "iothread":
        props = dict(IOTHREAD_DEFAULTS)
        for key in props:
            if key in args:
                if args[key] < 0:
                    raise BlockError.of("object.iothread-value-out-of-range", key=key,
                                        max=(1 << 63) - 1)
                props[key] = args[key]
        _check_free(g, oid)
        g.iothreads[oid] = IOThread(oid, props)
        props["thread-id"] = os.getpid() + len(g.iothreads)
    else:
        raise BlockError.of("object.object-type-not-supported-qmpd", qom_type=qom_type)


def delete(g: BlockGraph, oid: str) -> None:
    """object-del: a throttle group still used by a node stays."""
    if oid in g.throttle_groups:
        if g.throttle_groups[oid].users:
            raise BlockError.of("object.object-use-not-deleted", oid=oid)
        del g.throttle_groups[oid]
    elif oid in g.iothreads:
        del g.iothreads[oid]
    else:
        raise BlockError.of("object.object-not-found", oid=oid)


def query_iothreads(g: BlockGraph) -> list[dict[str, Any]]:
    """IOThreadInfo of every iothread, in QAPI member order."""
    out = []
    for t in g.iothreads.values():
        p = t.props
        out.append({"id": t.id, "thread-id": p["thread-id"], "poll-max-ns": p["poll-max-ns"],
                    "poll-grow": p["poll-grow"], "poll-shrink": p["poll-shrink"],
                    "aio-max-batch": p["aio-max-batch"]})
    return out
