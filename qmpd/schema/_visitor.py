"""A direct walk over the schema documents that mimics QEMU 7.2's QObject input visitor.

The JSON Schema documents are compiled (lazily, per command) into a small tree
of nodes.  Checking visits members in schema order and stops at the first
fault, with the message and member-name rendering of
``qapi/qobject-input-visitor.c`` and ``qapi/qapi-visit-core.c``:

* missing / type errors / unexpected keys name the *full path*
  (``options[0].file.filename``);
* enum value errors, alternate type errors and the small-int range errors of
  ``visit_type_intN`` name only the *last member* (``null`` for list items);
* an object's unexpected-key check runs after all its members; with several
  unexpected keys QEMU names the first one left in a GLib hash table, which
  :mod:`qmpd.schema._ghash` simulates.

A direct walk is used instead of a generic JSON Schema validator because QEMU
reports only the first fault, in visit order, which generic validators do not
model, and because it is several times faster.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qmpd.schema._ghash import first_unexpected
from qmpd.schema._loader import ref_name

if TYPE_CHECKING:
    from qmpd.schema._loader import Checker, SchemaSet

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1


class VisitError(Exception):
    def __init__(self, desc: str) -> None:
        super().__init__(desc)
        self.desc = desc


def _type_error(full: str, expected: str) -> VisitError:
    return VisitError(f"Invalid parameter type for '{full}', expected: {expected}")


class Node:
    """One QAPI type; ``check`` visits a present value."""

    __slots__ = ()
    # QTYPE class for alternates: which JSON kind selects this branch.
    qtype = ""

    def check(self, v: Any, full: str, bare: str | None) -> None:
        raise NotImplementedError


class Str(Node):
    __slots__ = ()
    qtype = "string"

    def check(self, v: Any, full: str, bare: str | None) -> None:
        if type(v) is not str:
            raise _type_error(full, "string")


class Int(Node):
    """int / int64: anything but an int64 integer is a type error."""

    __slots__ = ()
    qtype = "number"

    def check(self, v: Any, full: str, bare: str | None) -> None:
        if type(v) is not int or not INT64_MIN <= v <= INT64_MAX:
            raise _type_error(full, "integer")


class IntN(Node):
    """int8/16/32: visit_type_intN reads an int64, then range-checks by bare name."""

    __slots__ = ("lo", "hi", "ctype")
    qtype = "number"

    def __init__(self, lo: int, hi: int, ctype: str) -> None:
        self.lo, self.hi, self.ctype = lo, hi, ctype

    def check(self, v: Any, full: str, bare: str | None) -> None:
        if type(v) is not int or not INT64_MIN <= v <= INT64_MAX:
            raise _type_error(full, "integer")
        if not self.lo <= v <= self.hi:
            raise VisitError(f"Parameter '{bare or 'null'}' expects {self.ctype}")


class UInt(Node):
    """uint64 / size: QNum that fits uint64, or (for compatibility) any int64."""

    __slots__ = ("hi", "ctype")
    qtype = "number"

    def __init__(self, hi: int = UINT64_MAX, ctype: str = "") -> None:
        self.hi, self.ctype = hi, ctype

    def check(self, v: Any, full: str, bare: str | None) -> None:
        if type(v) is not int or not INT64_MIN <= v <= UINT64_MAX:
            raise VisitError(f"Parameter '{full}' expects uint64")
        if self.ctype and (v & UINT64_MAX) > self.hi:
            raise VisitError(f"Parameter '{bare or 'null'}' expects {self.ctype}")


class Number(Node):
    __slots__ = ()
    qtype = "number"

    def check(self, v: Any, full: str, bare: str | None) -> None:
        t = type(v)
        if t is not int and t is not float:
            raise _type_error(full, "number")


class Bool(Node):
    __slots__ = ()
    qtype = "boolean"

    def check(self, v: Any, full: str, bare: str | None) -> None:
        if type(v) is not bool:
            raise _type_error(full, "boolean")


class Null(Node):
    __slots__ = ()
    qtype = "null"

    def check(self, v: Any, full: str, bare: str | None) -> None:
        if v is not None:
            raise _type_error(full, "null")


class AnyValue(Node):
    __slots__ = ()
    qtype = "any"

    def check(self, v: Any, full: str, bare: str | None) -> None:
        return None


class Enum(Node):
    __slots__ = ("values",)
    qtype = "string"

    def __init__(self, values: list[str]) -> None:
        self.values = frozenset(values)

    def check(self, v: Any, full: str, bare: str | None) -> None:
        if type(v) is not str:
            raise _type_error(full, "string")
        if v not in self.values:
            raise VisitError(f"Parameter '{bare or 'null'}' does not accept value '{v}'")


class Array(Node):
    __slots__ = ("elem",)
    qtype = "array"

    def __init__(self) -> None:
        self.elem: Node = AnyValue()

    def check(self, v: Any, full: str, bare: str | None) -> None:
        if type(v) is not list:
            raise _type_error(full, "array")
        elem = self.elem
        for i, item in enumerate(v):
            elem.check(item, f"{full}[{i}]", None)


class Obj(Node):
    """A struct or flat union.  Unions keep branch member lists per tag value."""

    __slots__ = ("members", "tag", "branches")
    qtype = "object"

    def __init__(self) -> None:
        self.members: list[tuple[str, Node, bool]] = []
        self.tag: str | None = None
        self.branches: dict[str, list[tuple[str, Node, bool]]] = {}

    def check(self, v: Any, full: str, bare: str | None) -> None:
        if type(v) is not dict:
            raise _type_error(full, "object")
        self.check_dict(v, f"{full}." if full else "")

    def check_dict(self, v: dict, prefix: str) -> None:
        seen: list[str] = []
        self._visit(self.members, v, prefix, seen)
        if self.tag is not None:
            # The tag is a mandatory enum member, already checked above.
            self._visit(self.branches.get(v[self.tag], ()), v, prefix, seen)
        if len(seen) != len(v):
            key = first_unexpected(list(v), seen)
            raise VisitError(f"Parameter '{prefix}{key}' is unexpected")

    @staticmethod
    def _visit(members: Any, v: dict, prefix: str, seen: list[str]) -> None:
        for name, node, required in members:
            if name in v:
                node.check(v[name], prefix + name, name)
                seen.append(name)
            elif required:
                raise VisitError(f"Parameter '{prefix}{name}' is missing")


class Alternate(Node):
    __slots__ = ("name", "by_qtype")
    qtype = ""

    def __init__(self, name: str) -> None:
        self.name = name
        self.by_qtype: dict[str, Node] = {}

    def check(self, v: Any, full: str, bare: str | None) -> None:
        t = type(v)
        if t is dict:
            q = "object"
        elif t is str:
            q = "string"
        elif t is bool:
            q = "boolean"
        elif t is int or t is float:
            q = "number"
        elif v is None:
            q = "null"
        else:
            q = "array"
        node = self.by_qtype.get(q)
        if node is None:
            raise _type_error(bare or "null", self.name)
        node.check(v, full, bare)


_INTN = {
    "int8": (-(1 << 7), (1 << 7) - 1, "int8_t"),
    "int16": (-(1 << 15), (1 << 15) - 1, "int16_t"),
    "int32": (-(1 << 31), (1 << 31) - 1, "int32_t"),
}
_UINTN = {"uint8": (0xFF, "uint8_t"), "uint16": (0xFFFF, "uint16_t"),
          "uint32": (0xFFFFFFFF, "uint32_t")}


class Compiler:
    """Turns schema fragments into :class:`Node` trees, one node per named type."""

    def __init__(self, ss: SchemaSet) -> None:
        self.ss = ss
        self.named: dict[str, Node] = {}

    def builtin(self, name: str) -> Node:
        if name in ("int", "int64"):
            return Int()
        if name in _INTN:
            return IntN(*_INTN[name])
        if name in ("uint64", "size"):
            return UInt()
        if name in _UINTN:
            return UInt(*_UINTN[name])
        return {"str": Str, "number": Number, "bool": Bool, "null": Null,
                "any": AnyValue}[name]()

    def fragment(self, frag: dict) -> Node:
        ref = frag.get("$ref")
        if ref is not None:
            return self.named_node(ref_name(ref))
        if frag.get("type") == "array":
            arr = Array()
            arr.elem = self.fragment(frag["items"])
            return arr
        if frag.get("type") == "object":
            obj = Obj()
            self.fill_object(obj, frag)
            return obj
        raise ValueError(f"unsupported schema fragment {frag!r}")

    def named_node(self, name: str) -> Node:
        node = self.named.get(name)
        if node is not None:
            return node
        d = self.ss.types[name]
        if name in self.ss.builtins and name != "q_empty":
            node = self.builtin(name)
            self.named[name] = node
        elif "enum" in d:
            node = Enum(d["enum"])
            self.named[name] = node
        elif d.get("x-qapi-alternate"):
            alt = Alternate(name)
            self.named[name] = alt
            for b in d["oneOf"]:
                bn = self.fragment(b)
                alt.by_qtype[bn.qtype] = bn
            node = alt
        else:
            obj = Obj()
            # Registered before filling: types recurse (BlockdevOptions ->
            # BlockdevRef -> BlockdevOptions).
            self.named[name] = obj
            self.fill_object(obj, d)
            node = obj
        return node

    def members(self, d: dict) -> list[tuple[str, Node, bool]]:
        req = set(d.get("required", ()))
        return [(n, self.fragment(f), n in req) for n, f in d.get("properties", {}).items()]

    def fill_object(self, obj: Obj, d: dict) -> None:
        obj.members = self.members(d)
        tag = d.get("x-qapi-discriminator")
        if tag is not None:
            obj.tag = tag
            for arm in d.get("allOf", ()):
                case = arm["if"]["properties"][tag]["const"]
                obj.branches[case] = self.members(self.resolve(arm["then"]))

    def resolve(self, frag: dict) -> dict:
        ref = frag.get("$ref")
        return self.ss.types[ref_name(ref)] if ref is not None else frag

    def command_checker(self, name: str, entry: dict) -> Checker:
        if entry.get("x-qapi-gen") is False:
            # QAPI 'gen': false (device_add): the handler checks its own arguments.
            return lambda a: None
        args = entry.get("arguments")
        if args is None:
            obj = Obj()
        else:
            node = self.fragment(args)
            if not isinstance(node, Obj):
                raise ValueError(f"{name}: arguments must be an object type")
            obj = node
        return lambda a: obj.check_dict(a, "")
