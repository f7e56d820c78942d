"""``query-qmp-schema``: SchemaInfo entries built from the schema documents.

A port of QEMU 7.2's ``scripts/qapi/introspect.py`` (masked mode) working on
the JSON Schema documents: commands and events in QAPI definition order, then
every type they reach in first-use order; type names other than builtins and
arrays are replaced by decimal strings in the order they are first named;
every integer type shows as ``int`` (arrays of them as ``[int]``); optional
members carry ``"default": null``.  An enum lists its ``members`` (name and
features) beside ``values`` unless the release predates SchemaInfoEnumMember
(5.2: ``values`` only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qmpd.schema._loader import ref_name

if TYPE_CHECKING:
    from qmpd.schema._loader import SchemaSet

_INT_BUILTINS = {"int", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                 "uint64", "size"}
_JSON_TYPE = {"str": "string", "int": "int", "number": "number", "bool": "boolean",
              "null": "null", "any": "value"}

# A used type: ("builtin", name) | ("named", name) | ("array", element-key) |
# ("implicit", name, fragment).
TypeKey = tuple


class _Builder:
    def __init__(self, ss: SchemaSet, enum_members: bool) -> None:
        self.ss = ss
        self.enum_members = enum_members
        self.used: list[TypeKey] = []
        self.used_set: set[TypeKey] = set()
        self.frags: dict[TypeKey, dict] = {}
        self.names: dict[str, str] = {}
        self.trees: list[dict[str, Any]] = []

    def mask(self, name: str) -> str:
        m = self.names.get(name)
        if m is None:
            m = self.names[name] = str(len(self.names))
        return m

    def key_of(self, frag: dict, implicit_name: str) -> TypeKey:
        ref = frag.get("$ref")
        if ref is not None:
            name = ref_name(ref)
            if name in self.ss.builtins and name != "q_empty":
                return ("builtin", "int" if name in _INT_BUILTINS else name)
            return ("named", name)
        if frag.get("type") == "array":
            return ("array", self.key_of(frag["items"], implicit_name + "List"))
        key = ("implicit", implicit_name)
        self.frags[key] = frag
        return key

    def use(self, frag: dict | None, implicit_name: str = "") -> str:
        if frag is None:
            frag = {"$ref": "builtins.json#/$defs/q_empty"}
        return self.use_key(self.key_of(frag, implicit_name))

    def use_key(self, key: TypeKey) -> str:
        if key not in self.used_set:
            self.used_set.add(key)
            self.used.append(key)
        kind = key[0]
        if kind == "builtin":
            return key[1]
        if kind == "array":
            return "[" + self.use_key(key[1]) + "]"
        return self.mask(key[1])

    @staticmethod
    def features(d: dict) -> list[str]:
        return list(d.get("x-qapi-features", ()))

    def tree(self, name: str, mtype: str, obj: dict[str, Any], feats: list[str]) -> None:
        if mtype not in ("command", "event", "builtin", "array"):
            name = self.mask(name)
        obj["name"] = name
        obj["meta-type"] = mtype
        if feats:
            obj["features"] = feats
        self.trees.append(obj)

    def command(self, name: str, c: dict) -> None:
        obj: dict[str, Any] = {
            "arg-type": self.use(c.get("arguments"), f"q_obj_{name}-arg"),
            "ret-type": self.use(c.get("returns"), f"q_obj_{name}-ret"),
        }
        if c.get("x-qapi-allow-oob"):
            obj["allow-oob"] = True
        self.tree(name, "command", obj, self.features(c))

    def event(self, name: str, e: dict) -> None:
        obj: dict[str, Any] = {"arg-type": self.use(e.get("data"), f"q_obj_{name}-arg")}
        self.tree(name, "event", obj, self.features(e))

    def members(self, d: dict, owner: str) -> list[dict[str, Any]]:
        req = set(d.get("required", ()))
        out = []
        for mname, frag in d.get("properties", {}).items():
            m: dict[str, Any] = {"name": mname,
                                 "type": self.use(frag, f"{owner}.{mname}")}
            if mname not in req:
                m["default"] = None
            f = self.features(frag)
            if f:
                m["features"] = f
            out.append(m)
        return out

    def type_tree(self, key: TypeKey) -> None:
        kind = key[0]
        if kind == "builtin":
            self.tree(key[1], "builtin", {"json-type": _JSON_TYPE[key[1]]}, [])
            return
        if kind == "array":
            elem = self.use_key(key[1])
            self.tree("[" + elem + "]", "array", {"element-type": elem}, [])
            return
        name = key[1]
        d = self.frags[key] if kind == "implicit" else self.ss.types[name]
        if name == "q_empty":
            d = {}
        if "enum" in d:
            vf = d.get("x-qapi-value-features", {})
            mems: list[dict[str, Any]] = []
            for v in d["enum"]:
                em: dict[str, Any] = {"name": v}
                if vf.get(v):
                    em["features"] = list(vf[v])
                mems.append(em)
            enum: dict[str, Any] = {"values": list(d["enum"])}
            if self.enum_members:
                enum = {"members": mems, **enum}
            self.tree(name, "enum", enum, self.features(d))
        elif d.get("x-qapi-alternate"):
            alts = [{"type": self.use(b, f"{name}.alt")} for b in d["oneOf"]]
            self.tree(name, "alternate", {"members": alts}, self.features(d))
        else:
            obj: dict[str, Any] = {"members": self.members(d, name)}
            tag = d.get("x-qapi-discriminator")
            if tag is not None:
                obj["tag"] = tag
                obj["variants"] = [
                    {"case": arm["if"]["properties"][tag]["const"],
                     "type": self.use(arm["then"], f"{name}.branch")}
                    for arm in d.get("allOf", ())
                ]
            self.tree(name, "object", obj, self.features(d))


def build(ss: SchemaSet, commands: list[str], events: list[str],
          enum_members: bool = True) -> list[dict[str, Any]]:
    b = _Builder(ss, enum_members)
    ents: list[tuple[float, str, str]] = []
    for c in dict.fromkeys(commands):
        if c in ss.commands:
            ents.append((ss.commands[c]["x-qapi-order"], "command", c))
    for e in dict.fromkeys(events):
        if e in ss.events:
            ents.append((ss.events[e]["x-qapi-order"], "event", e))
    ents.sort()
    for _, kind, name in ents:
        if kind == "command":
            b.command(name, ss.commands[name])
        else:
            b.event(name, ss.events[name])
    i = 0
    while i < len(b.used):  # the list grows while types are visited
        b.type_tree(b.used[i])
        i += 1
    return b.trees
