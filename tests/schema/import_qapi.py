"""Regenerate the JSON Schema documents of one release's profile from that QEMU's QAPI.

Not a test (pytest does not collect it) and not run in CI: it needs a QEMU
source tree of the release (``apt-get source qemu`` on Debian bookworm gives
7.2, trixie 10.0).  It loads
``qapi/qapi-schema.json`` with QEMU's own ``scripts/qapi`` parser, keeps what the
Debian x86_64 build compiles in (the ``if:`` conditions are evaluated against
:data:`CONFIG`), and writes every command, event and type that qmpd describes
as JSON Schema (draft 2020-12) plus the ``x-qapi-*`` keywords that
``qmpd.schema`` reads (see ``schema/README.md``).

    python tests/schema/import_qapi.py /path/to/qemu-7.2.0 --out schema/7.2 --x-blockdev-reopen
    python tests/schema/import_qapi.py /path/to/qemu-10.0.13 --out schema/10.0
    python tests/schema/import_qapi.py /path/to/qemu-5.2.0 --out schema/5.2 --undefine CONFIG_ZSTD
    python tests/schema/import_qapi.py /path/to/qemu-7.2.0 --all OUTDIR

A command of :data:`FAMILIES` that the release's QAPI does not define (e.g.
``blockdev-set-active`` before 10.0) is left out, so the release answers
CommandNotFound for it.  ``--x-blockdev-reopen`` adds qmpd's compatibility
``x-blockdev-reopen`` (QEMU removed it in 6.1; the 7.2 profile keeps it for old
clients).  ``--all OUTDIR`` writes every command and event instead (used once to
check ``qmpd.schema.introspect`` against a live ``query-qmp-schema``).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

# What Debian's qemu-system-x86_64 build defines (7.2 and 10.0); checked by comparing
# the generated introspection with the live query-qmp-schema reply (7.2: 1051 entries).
CONFIG = {
    "CONFIG_SPICE", "TARGET_I386", "CONFIG_VNC", "CONFIG_LINUX", "CONFIG_TPM",
    "CONFIG_REPLICATION", "CONFIG_DBUS_DISPLAY", "CONFIG_SPICE_PROTOCOL", "CONFIG_TCG",
    "CONFIG_POSIX", "CONFIG_FUSE", "CONFIG_ZSTD", "CONFIG_VHOST_USER_BLK_SERVER",
    "CONFIG_VHOST_CRYPTO", "CONFIG_VDUSE_BLK_EXPORT", "CONFIG_SECRET_KEYRING", "CONFIG_SDL",
    "CONFIG_OPENGL", "CONFIG_GTK", "CONFIG_GBM", "CONFIG_CURSES", "CONFIG_LINUX_IO_URING",
    "CONFIG_LIBPMEM", "CONFIG_FDT", "CONFIG_SLIRP", "CONFIG_VIRTFS", "CONFIG_KVM",
    "HAVE_HOST_BLOCK_DEVICE", "HAVE_IPPROTO_MPTCP",
}

# Command family -> (file, commands, events).  Order inside a file follows QAPI.
FAMILIES: dict[str, tuple[list[str], list[str]]] = {
    "control": (["qmp_capabilities", "query-version", "query-commands", "query-qmp-schema",
                 "quit", "query-status", "stop", "cont", "query-name"],
                ["SHUTDOWN", "STOP", "RESUME"]),
    "block": (["blockdev-add", "blockdev-del", "blockdev-reopen", "x-blockdev-reopen",
               "query-named-block-nodes",
               "x-debug-query-block-graph", "query-block", "query-blockstats",
               "blockdev-set-active"], []),
    "jobs": (["block-stream", "block-commit", "block-job-set-speed", "block-job-cancel",
              "block-job-pause", "block-job-resume", "block-job-complete", "block-job-dismiss",
              "block-job-finalize", "job-pause", "job-resume", "job-cancel", "job-complete",
              "job-dismiss", "job-finalize", "query-jobs", "query-block-jobs", "block-job-change"],
             ["JOB_STATUS_CHANGE", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED",
              "BLOCK_JOB_READY", "BLOCK_JOB_PENDING", "BLOCK_JOB_ERROR"]),
    "objects": (["object-add", "object-del", "query-iothreads"], []),
    "misc": (["human-monitor-command"], []),
    "blockops": (["blockdev-snapshot", "blockdev-snapshot-sync", "transaction", "block-dirty-bitmap-add",
                  "block-dirty-bitmap-remove", "block-dirty-bitmap-clear",
                  "block-dirty-bitmap-enable", "block-dirty-bitmap-disable",
                  "block-dirty-bitmap-merge", "x-debug-block-dirty-bitmap-sha256",
                  "block_resize", "block-set-write-threshold", "blockdev-create",
                  "drive-mirror", "blockdev-mirror", "drive-backup", "blockdev-backup",
                  "nbd-server-start", "nbd-server-add", "nbd-server-remove",
                  "nbd-server-stop", "block-export-add",
                  "block-export-del", "query-block-exports"],
                 ["BLOCK_WRITE_THRESHOLD", "BLOCK_EXPORT_DELETED"]),
    "devices": (["x-blockdev-set-iothread", "device_add", "device_del"], ["DEVICE_DELETED"]),
}

# QAPI module -> shared definitions file.
BLOCK_MODULES = {"block-core", "block", "job", "block-export", "transaction"}
QOM_MODULES = {"qom", "authz", "crypto"}

INT_TYPES = {
    "int": (-(1 << 63), (1 << 63) - 1), "int8": (-(1 << 7), (1 << 7) - 1),
    "int16": (-(1 << 15), (1 << 15) - 1), "int32": (-(1 << 31), (1 << 31) - 1),
    "int64": (-(1 << 63), (1 << 63) - 1),
    # The QObject input visitor takes negative int64 values for uint64/size
    # ("for backward compatibility") and wraps them modulo 2^64, so they pass;
    # for the smaller unsigned types the wrapped value is out of range.
    "uint8": (0, (1 << 8) - 1), "uint16": (0, (1 << 16) - 1),
    "uint32": (0, (1 << 32) - 1), "uint64": (-(1 << 63), (1 << 64) - 1),
    "size": (-(1 << 63), (1 << 64) - 1),
}


# Defaults the QAPI doc text does not state as one word, checked against 7.2
# (reference section 3.2 and query-named-block-nodes output).
CURATED_DEFAULTS: dict[tuple[str, str], Any] = {
    ("BlockdevOptionsNull", "size"): 1073741824,
    ("BlockdevOptionsNull", "latency-ns"): 0,
    ("BlockdevOptionsQuorum", "read-pattern"): "quorum",
    ("BlockdevOptionsQuorum", "blkverify"): False,
    ("BlockdevOptionsQuorum", "rewrite-corrupted"): False,
}


def cond_true(ifcond: Any) -> bool:
    if ifcond is None:
        return True
    if isinstance(ifcond, list):  # QAPI before 6.2 (5.2): every C condition must hold
        return all(cond_true(c) for c in ifcond)
    if isinstance(ifcond, str) and "defined(" in ifcond:
        expr = re.sub(r"defined\((\w+)\)", lambda m: str(m.group(1) in CONFIG), ifcond)
        expr = expr.replace("&&", " and ").replace("||", " or ").replace("!", " not ")
        if not re.fullmatch(r"[\sTrueFalsandort()]*", expr):
            raise ValueError(ifcond)
        return bool(eval(expr))  # only True/False/and/or/not/parentheses, checked above
    if isinstance(ifcond, str):
        return ifcond in CONFIG
    if "all" in ifcond:
        return all(cond_true(c) for c in ifcond["all"])
    if "any" in ifcond:
        return any(cond_true(c) for c in ifcond["any"])
    if "not" in ifcond:
        return not cond_true(ifcond["not"])
    raise ValueError(ifcond)


def present(x: Any) -> bool:
    # 7.2+: a QAPISchemaIfCond wrapping the condition; 5.2: a list of C conditions
    return cond_true(getattr(x.ifcond, "ifcond", x.ifcond))


def feats(x: Any) -> list[str]:
    # 5.2's enum members have no features
    return [f.name for f in (getattr(x, "features", None) or []) if present(f)]


def variants_of(typ: Any) -> Any:
    """A union's branches or an alternate's alternatives (QAPI renamed ``variants`` in 9.1)."""
    for attr in ("variants", "branches", "alternatives"):
        v = getattr(typ, attr, None)
        if v is not None:
            return v
    return None


def squash(text: str) -> str:
    return " ".join(text.split())


def visit_order(schema: Any) -> dict[str, int]:
    """Commands and events in the order QEMU's generators visit them (module by module)."""
    from qapi.schema import QAPISchemaVisitor  # type: ignore[import-not-found]

    order: dict[str, int] = {}

    class V(QAPISchemaVisitor):  # type: ignore[misc]
        def visit_command(self, name: str, *a: Any) -> None:
            order[name] = len(order)

        def visit_event(self, name: str, *a: Any) -> None:
            order[name] = len(order)

    schema.visit(V())
    return order


def builtins_doc() -> dict:
    defs: dict[str, Any] = {
        "str": {"type": "string"},
        "number": {"type": "number"},
        "bool": {"type": "boolean"},
        "null": {"type": "null"},
        "any": {"x-qapi-json-type": "value"},
        "q_empty": {"type": "object", "properties": {},
                    "x-qapi-comment": "the empty object: no arguments / empty union branch"},
    }
    for name, (lo, hi) in INT_TYPES.items():
        # x-qapi-json-type "int": QEMU also rejects integral floats like 2.0,
        # which JSON Schema's "integer" would take.
        defs[name] = {"type": "integer", "minimum": lo, "maximum": hi, "x-qapi-json-type": "int"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "builtins.json",
        "title": "QAPI built-in types",
        "$defs": defs,
    }


class Gen:
    def __init__(self, schema: Any) -> None:
        from qapi.schema import (  # type: ignore[import-not-found]
            QAPISchemaAlternateType,
            QAPISchemaArrayType,
            QAPISchemaBuiltinType,
            QAPISchemaEnumType,
            QAPISchemaObjectType,
        )
        self.S = schema
        self.Alt, self.Arr, self.Builtin = QAPISchemaAlternateType, QAPISchemaArrayType, QAPISchemaBuiltinType
        self.Enum, self.Obj = QAPISchemaEnumType, QAPISchemaObjectType
        self.order = visit_order(schema)
        self.defs: dict[str, dict[str, dict]] = {}  # file -> name -> schema
        self.branch_only: dict[str, bool] = {}
        self.todo: list[Any] = []
        self.done: set[str] = set()
        # Doc comments: member -> text, entity name -> text.
        self.member_doc: dict[int, str] = {}
        self.entity_doc: dict[str, str] = {}
        for doc in schema.docs:
            if doc.symbol and doc.body is not None:
                self.entity_doc[doc.symbol] = squash(doc.body.text)
            for sec in doc.args.values():
                if getattr(sec, "member", None) is not None and sec.text:
                    self.member_doc[id(sec.member)] = squash(sec.text)

    def file_of(self, typ: Any) -> str:
        mod = Path(typ.info.fname).stem if typ.info else "builtins"
        if mod in BLOCK_MODULES:
            return "types-block.json"
        if mod in QOM_MODULES:
            return "types-qom.json"
        return "types-common.json"

    def ref(self, typ: Any, *, as_branch: bool = False) -> dict:
        if isinstance(typ, self.Builtin):
            return {"$ref": f"builtins.json#/$defs/{typ.name}"}
        if isinstance(typ, self.Arr):
            return {"type": "array", "items": self.ref(typ.element_type)}
        if typ.name == "q_empty":
            return {"$ref": "builtins.json#/$defs/q_empty"}
        # 5.2's simple unions (ImageInfoSpecific, TransactionAction, ...) have an
        # implicit tag enum and implicit {"data": ...} branch wrappers: named
        # definitions here, masked like every other type in introspection.
        assert not typ.is_implicit() or isinstance(typ, self.Enum) or \
            typ.name.endswith("-wrapper"), typ.name
        if isinstance(typ, self.Obj) and not variants_of(typ):
            prev = self.branch_only.get(typ.name, True)
            self.branch_only[typ.name] = prev and as_branch
        if typ.name not in self.done:
            self.done.add(typ.name)
            self.todo.append(typ)
        return {"$ref": f"{self.file_of(typ)}#/$defs/{typ.name}"}

    def member(self, m: Any) -> dict:
        out = dict(self.ref(m.type))
        f = feats(m)
        if f:
            out["x-qapi-features"] = f
        text = self.member_doc.get(id(m))
        curated = (m.defined_in, m.name)
        if curated in CURATED_DEFAULTS:
            out["default"] = CURATED_DEFAULTS[curated]
        if text:
            out["description"] = text
            if m.optional and "default" not in out:
                d = self.default_of(m.type, text)
                if d is not None:
                    out["default"] = d
        return out

    def default_of(self, typ: Any, text: str) -> Any:
        """A machine-readable default from the doc text, when it is unambiguous."""
        # Only a single word closed by ")", ".", ",", ";" or the end: "256 kB)"
        # or "65534 on Windows" are left to the description.
        mo = re.search(r"\bdefaults?(?: is|:| to)\s*'?([\w-]+)'?\s*(?:[).,;]|$)", text, re.I)
        if not mo:
            return None
        word = mo.group(1)
        if isinstance(typ, self.Builtin):
            if typ.name == "bool":
                return {"on": True, "true": True, "off": False, "false": False}.get(word.lower())
            if typ.name in INT_TYPES and re.fullmatch(r"-?\d+", word):
                return int(word)
            return None
        if isinstance(typ, self.Enum) and word in [m.name for m in typ.members]:
            return word
        return None

    def object_body(self, members: list, *, closed: bool) -> dict:
        props: dict[str, Any] = {}
        req: list[str] = []
        for m in members:
            if not present(m):
                continue
            props[m.name] = self.member(m)
            if not m.optional:
                req.append(m.name)
        out: dict[str, Any] = {"type": "object", "properties": props}
        if req:
            out["required"] = req
        if closed:
            out["additionalProperties"] = False
        return out

    def typedef(self, typ: Any) -> dict:
        if isinstance(typ, self.Enum):
            vals = [m for m in typ.members if present(m)]
            out: dict[str, Any] = {"type": "string", "enum": [m.name for m in vals]}
            vf = {m.name: feats(m) for m in vals if feats(m)}
            if vf:
                out["x-qapi-value-features"] = vf
        elif isinstance(typ, self.Alt):
            out = {"x-qapi-alternate": True,
                   "oneOf": [self.ref(v.type) for v in variants_of(typ).variants if present(v)]}
        elif variants_of(typ):
            tag = variants_of(typ).tag_member.name
            out = self.object_body(typ.members, closed=False)
            out["x-qapi-discriminator"] = tag
            out["allOf"] = [
                {"if": {"properties": {tag: {"const": v.name}}, "required": [tag]},
                 "then": self.ref(v.type, as_branch=True)}
                for v in variants_of(typ).variants if present(v)
            ]
            out["unevaluatedProperties"] = False
        else:
            out = self.object_body(typ.members, closed=True)
        f = feats(typ)
        if f:
            out["x-qapi-features"] = f
        if self.entity_doc.get(typ.name):
            out["description"] = self.entity_doc[typ.name]
        return out

    def drain(self) -> None:
        while self.todo:
            typ = self.todo.pop(0)
            self.defs.setdefault(self.file_of(typ), {})[typ.name] = self.typedef(typ)

    def args(self, arg_type: Any, boxed: bool) -> dict | None:
        if arg_type is None or arg_type.name == "q_empty":
            return None
        if boxed or not arg_type.is_implicit():
            return self.ref(arg_type)
        return self.object_body(arg_type.members, closed=True)

    def command(self, name: str) -> dict:
        c = self.S.lookup_entity(name)
        out: dict[str, Any] = {"x-qapi-order": self.order[name]}
        a = self.args(c.arg_type, c.boxed)
        if a is not None:
            out["arguments"] = a
        if c.boxed:
            out["x-qapi-boxed"] = True
        if c.ret_type is not None:
            out["returns"] = self.ref(c.ret_type)
        if c.allow_oob:
            out["x-qapi-allow-oob"] = True
        if not c.gen:
            out["x-qapi-gen"] = False
            out["x-qmpd-comment"] = ("'gen': false in QEMU: the arguments are not checked against "
                                     "this shape; the command checks them itself")
        f = feats(c)
        if f:
            out["x-qapi-features"] = f
        if self.entity_doc.get(name):
            out["description"] = self.entity_doc[name]
        return out

    def event(self, name: str) -> dict:
        e = self.S.lookup_entity(name)
        out: dict[str, Any] = {"x-qapi-order": self.order[name]}
        a = self.args(e.arg_type, e.boxed)
        if a is not None:
            out["data"] = a
        if e.boxed:
            out["x-qapi-boxed"] = True
        f = feats(e)
        if f:
            out["x-qapi-features"] = f
        return out

    def fix_branch_closure(self) -> None:
        # A struct used only as a union branch stays open: the union closes the
        # whole object (unevaluatedProperties) after base + branch members.
        for defs in self.defs.values():
            for name, d in defs.items():
                if self.branch_only.get(name) and "additionalProperties" in d:
                    del d["additionalProperties"]
                    d["x-qapi-branch"] = True


def close_mixed_structs(gen: Gen, docs: list[dict]) -> None:
    """A struct used both as a union branch and on its own must stay open (the
    union closes it); its stand-alone uses close it at the use site instead."""
    branch: set[str] = set()
    plain: list[dict] = []

    def walk(o: Any) -> None:
        if isinstance(o, dict):
            for k, v in o.items():
                if k == "then" and isinstance(v, dict) and "$ref" in v:
                    branch.add(v["$ref"].rsplit("/", 1)[1])
                elif isinstance(v, dict) and "$ref" in v:
                    plain.append(v)
                    walk(v)
                else:
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    all_docs = docs + list({"$defs": d} for d in gen.defs.values())
    for d in all_docs:
        walk(d)
    types = {n: t for d in gen.defs.values() for n, t in d.items()}
    mixed = {n for n in branch if n in types and types[n].get("additionalProperties") is False}
    for n in mixed:
        del types[n]["additionalProperties"]
    for site in plain:
        if site["$ref"].rsplit("/", 1)[1] in mixed:
            site["unevaluatedProperties"] = False


def family_doc(name: str, commands: dict, events: dict) -> dict:
    doc: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{name}.json",
        "title": f"qmpd commands: {name}",
        "x-qapi-commands": commands,
    }
    if events:
        doc["x-qapi-events"] = events
    return doc


def qmpd_additions(block: dict, control: dict, gen: Gen, *, x_blockdev_reopen: bool) -> None:
    """Commands qmpd has that the release lacks (see schema/README.md)."""
    add = block["x-qapi-commands"]["blockdev-add"]
    if x_blockdev_reopen and "blockdev-reopen" in block["x-qapi-commands"]:
        reopen_order = block["x-qapi-commands"]["blockdev-reopen"]["x-qapi-order"]
        block["x-qapi-commands"]["x-blockdev-reopen"] = {
            "x-qapi-order": reopen_order + 0.5,
            "arguments": dict(add["arguments"]),
            "x-qapi-boxed": True,
            "x-qapi-features": ["unstable"],
            "x-qmpd-comment": "QEMU 4.0-6.0's one-node reopen, kept for old clients",
        }
    top = max(o["x-qapi-order"] for o in gen_all_orders(gen)) + 1
    control["x-qapi-commands"]["x-qmpd-reset"] = {
        "x-qapi-order": top, "x-qapi-features": ["unstable"],
        "x-qmpd-comment": "qmpd extension: drop all nodes, jobs and objects"}
    control["x-qapi-commands"]["x-qmpd-clock-step"] = {
        "x-qapi-order": top + 1,
        "arguments": {"type": "object",
                      "properties": {"ns": {"$ref": "builtins.json#/$defs/int"}},
                      "required": ["ns"], "additionalProperties": False},
        "x-qapi-features": ["unstable"],
        "x-qmpd-comment": "qmpd extension: advance the virtual job clock by ns nanoseconds"}


def gen_all_orders(gen: Gen) -> list[dict]:
    return [{"x-qapi-order": v} for v in gen.order.values()]


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="QEMU source tree of the release")
    ap.add_argument("--out", help="output folder (default: schema/)")
    ap.add_argument("--all", metavar="OUTDIR", help="every command and event, into OUTDIR")
    ap.add_argument("--x-blockdev-reopen", action="store_true",
                    help="add qmpd's compatibility x-blockdev-reopen")
    ap.add_argument("--undefine", action="append", default=[], metavar="CONFIG_X",
                    help="a condition the release's Debian build leaves out "
                         "(5.2: CONFIG_ZSTD, Debian 11 built it without libzstd)")
    args = ap.parse_args()
    CONFIG.difference_update(args.undefine)
    src = Path(args.src)
    sys.path.insert(0, str(src / "scripts"))
    from qapi.schema import QAPISchema  # type: ignore[import-not-found]

    schema = QAPISchema(str(src / "qapi" / "qapi-schema.json"))
    gen = Gen(schema)
    if args.all:
        out = Path(args.all)
        from qapi.schema import QAPISchemaCommand, QAPISchemaEvent  # type: ignore
        cmds = [e.name for e in schema._entity_list
                if isinstance(e, QAPISchemaCommand) and present(e)]
        evs = [e.name for e in schema._entity_list
               if isinstance(e, QAPISchemaEvent) and present(e)]
        families = {"all": (cmds, evs)}
    else:
        # The release's folder under schema/ (its profile names it).
        out = Path(args.out) if args.out else Path(__file__).resolve().parents[2] / "schema" / "7.2"
        # The release's own set: what its QAPI does not define does not exist there.
        families = {fam: ([c for c in cmds if c in gen.order], [e for e in evs if e in gen.order])
                    for fam, (cmds, evs) in FAMILIES.items()}
    docs = {}
    for fam, (cmds, evs) in families.items():
        docs[fam] = family_doc(fam, {c: gen.command(c) for c in cmds},
                               {e: gen.event(e) for e in evs})
        gen.drain()
    gen.fix_branch_closure()
    close_mixed_structs(gen, list(docs.values()))
    if "block" in docs:
        qmpd_additions(docs["block"], docs["control"], gen, x_blockdev_reopen=args.x_blockdev_reopen)
    out.mkdir(parents=True, exist_ok=True)
    for fam, doc in docs.items():
        write(out / f"{fam}.json", doc)
    write(out / "builtins.json", builtins_doc())
    for fname, defs in gen.defs.items():
        write(out / fname, {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": fname,
            "title": "Shared QAPI type definitions (" + fname[6:-5] + ")",
            "$defs": defs,
        })


def write(path: Path, doc: dict) -> None:
    path.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
