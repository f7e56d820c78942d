"""object-add / object-del for throttle-group and iothread, and query-iothreads.

QEMU's order of checks is kept: the id must be an identifier, then the
properties are set (throttle limits are validated as they are set), then the
id must be free among all user-created objects, then the object completes.
"""

from __future__ import annotations

import os
from typing import Any

from qmpd.commands.errors import QMPError
from qmpd.commands.registry import command
from qmpd.engine.graph import IOThread, ThrottleGroup, id_wellformed

THROTTLE_VALUE_MAX = 1000000000000000
UINT_MAX = 0xFFFFFFFF
U64 = (1 << 64) - 1

# ThrottleLimits member -> (bucket, field); buckets in QEMU's BucketType order.
_BUCKETS = ("bps-total", "bps-read", "bps-write", "iops-total", "iops-read", "iops-write")


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
                    raise QMPError(f"{key} value must be in the range [0, {UINT_MAX}]")
                cfg[b]["burst"] = value & U64
    _throttle_is_valid(cfg)


def _throttle_is_valid(cfg: dict) -> None:
    def avg(b: str) -> int:
        return cfg[b]["avg"]

    def mx(b: str) -> int:
        return cfg[b]["max"]

    if (avg("bps-total") and (avg("bps-read") or avg("bps-write"))) or \
            (avg("iops-total") and (avg("iops-read") or avg("iops-write"))) or \
            (mx("bps-total") and (mx("bps-read") or mx("bps-write"))) or \
            (mx("iops-total") and (mx("iops-read") or mx("iops-write"))):
        raise QMPError("bps/iops/max total values and read/write values cannot be used at the "
                       "same time")
    if cfg["op_size"] and not (avg("iops-total") or avg("iops-read") or avg("iops-write")):
        raise QMPError("iops size requires an iops value to be set")
    for b in _BUCKETS:
        bk = cfg[b]
        if bk["avg"] > THROTTLE_VALUE_MAX or bk["max"] > THROTTLE_VALUE_MAX:
            raise QMPError(f"bps/iops/max values must be within [0, {THROTTLE_VALUE_MAX}]")
        if not bk["burst"]:
            raise QMPError("the burst length cannot be 0")
        if bk["burst"] > 1 and not bk["max"]:
            raise QMPError("burst length set without burst rate")
        if bk["max"] and bk["burst"] > THROTTLE_VALUE_MAX // bk["max"]:
            raise QMPError("burst length too high for this burst rate")
        if bk["max"] and not bk["avg"]:
            raise QMPError("bps_max/iops_max require corresponding bps/iops values")
        if bk["max"] and bk["max"] < bk["avg"]:
            raise QMPError("bps_max/iops_max cannot be lower than bps/iops")


def _new_config() -> dict:
    cfg: dict[str, Any] = {b: {"avg": 0, "max": 0, "burst": 1} for b in _BUCKETS}
    cfg["op_size"] = 0
    return cfg


def _objects(daemon: Any) -> dict[str, Any]:
    g = daemon.graph
    return {**g.throttle_groups, **g.iothreads}


@command("object-add")
def object_add(daemon: Any, args: dict) -> dict:
    oid = args["id"]
    qom_type = args["qom-type"]
    if not id_wellformed(oid):
        raise QMPError("Parameter 'id' expects an identifier")
    g = daemon.graph
    if qom_type == "throttle-group":
        cfg = _new_config()
        for key, value in args.items():
            if key == "limits":
                _limits_to_config(value, cfg)
            elif key.startswith("x-"):
                _limits_to_config({key[2:]: value}, cfg)
        if oid in _objects(daemon):
            raise QMPError(f"attempt to add duplicate property '{oid}' to object "
                           "(type 'container')")
        g.throttle_groups[oid] = ThrottleGroup(oid, cfg)
    elif qom_type == "iothread":
        props: dict[str, int] = {"poll-max-ns": 32768, "poll-grow": 0, "poll-shrink": 0,
                                 "aio-max-batch": 0}
        for key in props:
            if key in args:
                if args[key] < 0:
                    raise QMPError(f"{key} value must be in range [0, {(1 << 63) - 1}]")
                props[key] = args[key]
        if oid in _objects(daemon):
            raise QMPError(f"attempt to add duplicate property '{oid}' to object "
                           "(type 'container')")
        g.iothreads[oid] = IOThread(oid, props)
        props["thread-id"] = os.getpid() + len(g.iothreads)
    else:
        raise QMPError(f"object type '{qom_type}' is not supported by qmpd")
    return {}


@command("object-del")
def object_del(daemon: Any, args: dict) -> dict:
    oid = args["id"]
    g = daemon.graph
    if oid in g.throttle_groups:
        if g.throttle_groups[oid].users:
            raise QMPError(f"object '{oid}' is in use, can not be deleted")
        del g.throttle_groups[oid]
    elif oid in g.iothreads:
        del g.iothreads[oid]
    else:
        raise QMPError(f"object '{oid}' not found")
    return {}


@command("query-iothreads")
def query_iothreads(daemon: Any, args: dict) -> list:
    out = []
    for t in daemon.graph.iothreads.values():
        p = t.props
        out.append({"id": t.id, "thread-id": p["thread-id"], "poll-max-ns": p["poll-max-ns"],
                    "poll-grow": p["poll-grow"], "poll-shrink": p["poll-shrink"],
                    "aio-max-batch": p["aio-max-batch"]})
    return out
