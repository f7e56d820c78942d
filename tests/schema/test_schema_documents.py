"""The schema/ files are real JSON Schema documents and the only source of shapes.

* each file is a valid draft 2020-12 schema and every ``$ref`` resolves;
* a generic JSON Schema validator accepts exactly the recorded argument sets
  that QEMU's visitor (and ``validate``) accepts -- the ``x-qapi-*`` keywords
  add error wording and order, not different shapes.  The one documented gap:
  JSON Schema's ``integer`` takes integral floats such as ``2.0``; QEMU does not;
* the BlockdevOptions and ObjectOptions unions have 7.2's enums and members.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from referencing import Registry, Resource
from schema_testlib import load

from qmpd.schema import ArgumentError
from qmpd.schema import load as load_schema

# QEMU 7.2's schema: the recorded cases here are 7.2's.
validate = load_schema("7.2").validate

SCHEMA_ROOT = Path(__file__).resolve().parents[2] / "schema"
# The recorded cases below are QEMU 7.2's; every release folder is checked for
# validity and resolvable refs (test_every_release_folder_is_consistent).
SCHEMA_DIR = SCHEMA_ROOT / "7.2"
DOCS = {p.name: json.loads(p.read_text()) for p in sorted(SCHEMA_DIR.glob("*.json"))}
REGISTRY = Registry().with_resources(
    [(name, Resource.from_contents(doc)) for name, doc in DOCS.items()])
TYPES = {n: d for doc in DOCS.values() for n, d in doc.get("$defs", {}).items()}


def _command(name: str) -> tuple[str, dict]:
    for fname, doc in DOCS.items():
        if name in doc.get("x-qapi-commands", {}):
            return fname, doc["x-qapi-commands"][name]
    raise KeyError(name)


@pytest.mark.parametrize("fname", sorted(DOCS))
def test_file_is_a_valid_json_schema(fname: str) -> None:
    jsonschema.Draft202012Validator.check_schema(DOCS[fname])


def _refs(o: Any) -> list[str]:
    if isinstance(o, dict):
        return ([o["$ref"]] if "$ref" in o else []) + [r for v in o.values() for r in _refs(v)]
    if isinstance(o, list):
        return [r for v in o for r in _refs(v)]
    return []


@pytest.mark.parametrize("folder", sorted(p.name for p in SCHEMA_ROOT.iterdir() if p.is_dir()))
def test_every_release_folder_is_consistent(folder: str) -> None:
    docs = {p.name: json.loads(p.read_text()) for p in sorted((SCHEMA_ROOT / folder).glob("*.json"))}
    for doc in docs.values():
        jsonschema.Draft202012Validator.check_schema(doc)
    refs = {r for doc in docs.values() for r in _refs(doc)}
    assert refs
    for r in refs:
        fname, _, pointer = r.partition("#/$defs/")
        assert pointer in docs[fname]["$defs"], r


def test_every_ref_resolves() -> None:
    refs = {r for doc in DOCS.values() for r in _refs(doc)}
    assert refs
    for r in refs:
        fname, _, pointer = r.partition("#/$defs/")
        assert pointer in DOCS[fname]["$defs"], r


def _has_float(o: Any) -> bool:
    if isinstance(o, float):
        return True
    if isinstance(o, dict):
        return any(_has_float(v) for v in o.values())
    if isinstance(o, list):
        return any(_has_float(v) for v in o)
    return False


@functools.cache
def _generic_validator(command: str) -> jsonschema.Draft202012Validator:
    fname, entry = _command(command)
    schema = entry.get("arguments", {"type": "object", "additionalProperties": False})
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": fname, **schema}
    return jsonschema.Draft202012Validator(root, registry=REGISTRY)


def _generic_ok(command: str, args: dict) -> bool:
    return _generic_validator(command).is_valid(args)


def test_generic_validator_agrees_on_recorded_cases() -> None:
    cases = [c for c in load("recorded_cases.json")["cases"] if not _has_float(c["arguments"])]
    assert len(cases) > 500
    disagree = []
    for c in cases:
        try:
            validate(c["command"], c["arguments"])
            ours = True
        except ArgumentError:
            ours = False
        if ours != _generic_ok(c["command"], c["arguments"]):
            disagree.append(c)
    assert disagree == []


def test_blockdev_driver_enum_is_7_2s() -> None:
    assert TYPES["BlockdevDriver"]["enum"] == [
        "blkdebug", "blklogwrites", "blkreplay", "blkverify", "bochs", "cloop", "compress",
        "copy-before-write", "copy-on-read", "dmg", "file", "snapshot-access", "ftp", "ftps",
        "gluster", "host_cdrom", "host_device", "http", "https", "iscsi", "luks", "nbd", "nfs",
        "null-aio", "null-co", "nvme", "parallels", "preallocate", "qcow", "qcow2", "qed",
        "quorum", "raw", "rbd", "replication", "ssh", "throttle", "vdi", "vhdx", "vmdk", "vpc",
        "vvfat"]


def _branch(union: str, case: str) -> dict:
    for arm in TYPES[union]["allOf"]:
        if arm["if"]["properties"][TYPES[union]["x-qapi-discriminator"]]["const"] == case:
            return TYPES[arm["then"]["$ref"].rsplit("/", 1)[1]]
    raise KeyError(case)


def test_blockdev_options_members_in_schema_order() -> None:
    bo = TYPES["BlockdevOptions"]
    assert list(bo["properties"]) == ["driver", "node-name", "discard", "cache", "read-only",
                                      "auto-read-only", "force-share", "detect-zeroes"]
    assert bo["required"] == ["driver"]
    assert list(_branch("BlockdevOptions", "file")["properties"]) == [
        "filename", "pr-manager", "locking", "aio", "aio-max-batch", "drop-cache",
        "x-check-cache-dropped"]
    assert list(_branch("BlockdevOptions", "null-co")["properties"]) == [
        "size", "latency-ns", "read-zeroes"]
    assert list(_branch("BlockdevOptions", "qcow2")["properties"]) == [
        "file", "backing", "lazy-refcounts", "pass-discard-request", "pass-discard-snapshot",
        "pass-discard-other", "overlap-check", "cache-size", "l2-cache-size",
        "l2-cache-entry-size", "refcount-cache-size", "cache-clean-interval", "encrypt",
        "data-file"]
    assert list(_branch("BlockdevOptions", "quorum")["properties"]) == [
        "blkverify", "children", "vote-threshold", "rewrite-corrupted", "read-pattern"]
    assert list(_branch("BlockdevOptions", "preallocate")["properties"]) == [
        "file", "prealloc-align", "prealloc-size"]


def test_object_options_union() -> None:
    oo = TYPES["ObjectOptions"]
    assert oo["x-qapi-discriminator"] == "qom-type"
    assert "throttle-group" in TYPES["ObjectType"]["enum"]
    # 7.2: the EventLoopBaseProperties base member comes first.
    assert list(_branch("ObjectOptions", "iothread")["properties"]) == [
        "aio-max-batch", "thread-pool-min", "thread-pool-max", "poll-max-ns", "poll-grow",
        "poll-shrink"]
    tg = list(_branch("ObjectOptions", "throttle-group")["properties"])
    assert tg[0] == "limits" and "x-bps-total" in tg and tg[-1] == "x-iops-size" and len(tg) == 20
