"""A codemod: inline error texts become errors raised by key (issue 18).

``python -m tests.tools.keyed_errors CLASS GROUP FILE...`` (from the repository
root) rewrites every ``CLASS("text")`` / ``CLASS(f"... {expr} ...")`` and every
``err.prefixed("text")`` in the FILEs into ``CLASS.of("group.slug", name=expr)``
/ ``err.prefixed(Message(...))``, and prints the new entries of the baseline
message table (:data:`qmpd.profiles.messages.BASE`) on stdout, grouped by
key prefix, to be pasted into it.  CLASS is ``BlockError`` or
``QMPError``; GROUP is the key prefix, or ``auto`` for one per file name.

A text that is already in the table (the same words, whatever the field
names) reuses its key.  Keys are slugs of the text's words and parameters are
named after the expressions: both are worth a look afterwards
(``tests/test_messages.py`` checks that keys and parameters match the table).
Texts computed at run time (a variable, a caught error's text) are left alone.
"""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

STOP = {"a", "an", "the", "is", "be", "to", "of", "for", "with", "and", "in", "on", "at",
        "as", "by", "has", "have", "are", "was", "it", "its", "this", "that", "can", "s",
        "t", "only", "there", "which", "been", "so", "or", "but", "from", "than"}


def load_base() -> dict[str, str]:
    ns: dict = {}
    exec(Path("qmpd/profiles/messages.py").read_text(), ns)
    return dict(ns["BASE"])


BASE = load_base()
TEMPLATE_TO_KEY = {}
for k, v in BASE.items():
    TEMPLATE_TO_KEY.setdefault(v, k)
NEW: dict[str, list[tuple[str, str]]] = {}


FIELD = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)([^{}]*)\}")


def field_names(template: str) -> list[str]:
    out: list[str] = []
    for m in FIELD.finditer(template.replace("{{", "\0\0").replace("}}", "\1\1")):
        if m.group(1) not in out:
            out.append(m.group(1))
    return out


def canon(template: str) -> str:
    """Template with fields renamed in order, for sharing keys across names."""
    names = field_names(template)
    t = template.replace("{{", "\0\0").replace("}}", "\1\1")
    t = FIELD.sub(lambda m: "{" + str(names.index(m.group(1))) + m.group(2) + "}", t)
    return t


CANON_TO_KEY: dict[str, str] = {}


def pname(expr: ast.expr, src: str) -> str:
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        if expr.attr in ("name", "desc", "id", "type") and not isinstance(expr.value, ast.Call):
            base = pname(expr.value, src)
            if base in ("self", "e", "n", "b", "bm", "dev", "g", "st", "j", "job", "o", "it", "x"):
                return {"j": "job", "n": "node", "b": "bitmap", "bm": "bitmap", "e": "edge",
                        "dev": "device", "o": "other", "st": "state", "x": "value",
                        "it": "node", "self": expr.attr, "g": "graph", "job": "job"}[base] \
                    + ("" if expr.attr == "name" else "_" + expr.attr)
            return base if expr.attr == "name" else f"{base}_{expr.attr}"
        return expr.attr
    if isinstance(expr, ast.Call):
        f = expr.func
        n = f.attr if isinstance(f, ast.Attribute) else (f.id if isinstance(f, ast.Name) else "value")
        if n in ("strerror",):
            return "error"
        if n in ("names",):
            return "perms"
        if n in ("user_desc",):
            return pname(f.value, src) + "_desc" if isinstance(f, ast.Attribute) else "desc"
        if n in ("len", "str", "hex", "repr", "int"):
            return pname(expr.args[0], src) if expr.args else n
        return n
    if isinstance(expr, ast.Subscript):
        if isinstance(expr.slice, ast.Constant) and isinstance(expr.slice.value, str):
            return re.sub(r"\W", "_", expr.slice.value)
        return pname(expr.value, src).lower()
    if isinstance(expr, ast.BinOp):
        return "value"
    if isinstance(expr, ast.IfExp):
        return pname(expr.body, src)
    return "value"


def ident(s: str) -> str:
    s = re.sub(r"\W", "_", s).strip("_").lower() or "value"
    if s[0].isdigit():
        s = "v" + s
    return s


def build(node: ast.expr, src: str) -> tuple[str, list[tuple[str, str]]] | None:
    """(template, [(param, expr source)]) of a str constant or f-string."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.replace("{", "{{").replace("}", "}}"), []
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a = build(node.left, src)
        b = build(node.right, src)
        if a is None or b is None:
            return None
        params = list(a[1])
        tb = b[0]
        for n, e in b[1]:
            hit = [p for p, x in params if x == e]
            if hit:
                tb = tb.replace("{" + n, "{" + hit[0])
            else:
                params.append((n, e))
        return a[0] + tb, params
    if not isinstance(node, ast.JoinedStr):
        return None
    out = []
    params: list[tuple[str, str]] = []
    for v in node.values:
        if isinstance(v, ast.Constant):
            out.append(str(v.value).replace("{", "{{").replace("}", "}}"))
            continue
        assert isinstance(v, ast.FormattedValue)
        esrc = ast.get_source_segment(src, v.value)
        assert esrc is not None
        hit = [p for p, e in params if e == esrc]
        if hit:
            name = hit[0]
        else:
            name = ident(pname(v.value, src))
            used = {p for p, _ in params}
            if name in used:
                i = 2
                while f"{name}{i}" in used:
                    i += 1
                name = f"{name}{i}"
            params.append((name, esrc))
        conv = {-1: "", 115: "!s", 114: "!r", 97: "!a"}[v.conversion]
        spec = ""
        if v.format_spec is not None:
            assert isinstance(v.format_spec, ast.JoinedStr)
            spec = ":" + "".join(str(c.value) for c in v.format_spec.values
                                 if isinstance(c, ast.Constant))
        out.append("{" + name + conv + spec + "}")
    return "".join(out), params


def slug(template: str) -> str:
    text = re.sub(r"\{[^{}]*\}", " ", template.replace("{{", "").replace("}}", ""))
    words = [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP]
    return "-".join(words[:5]) or "error"


def key_for(prefix: str, template: str) -> tuple[str, dict[str, str]]:
    """The key of ``template`` and how its field names map to the key's."""
    if not CANON_TO_KEY:
        for k, v in BASE.items():
            CANON_TO_KEY.setdefault(canon(v), k)
    c = canon(template)
    if c in CANON_TO_KEY:
        k = CANON_TO_KEY[c]
        return k, dict(zip(field_names(template), field_names(BASE[k]), strict=True))
    base = f"{prefix}.{slug(template)}"
    k = base
    i = 2
    while k in BASE:
        k = f"{base}-{i}"
        i += 1
    BASE[k] = template
    CANON_TO_KEY[c] = k
    NEW.setdefault(prefix, []).append((k, template))
    return k, {n: n for n in field_names(template)}


def convert(path: Path, cls_name: str, prefix: str) -> int:
    src = path.read_text()
    tree = ast.parse(src)
    edits = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        is_ctor = isinstance(f, ast.Name) and f.id == cls_name
        is_prefixed = isinstance(f, ast.Attribute) and f.attr == "prefixed"
        if not (is_ctor or is_prefixed) or not node.args:
            continue
        built = build(node.args[0], src)
        if built is None:
            continue
        template, params = built
        key, rename = key_for(prefix, template)
        params = [(rename[p], e) for p, e in params]
        args = [repr(key).replace("'", '"') if '"' not in key else repr(key)]
        if is_ctor:
            if len(node.args) > 1:
                args.append(ast.get_source_segment(src, node.args[1]))
            for kw in node.keywords:
                if kw.arg == "cls":
                    args.append(ast.get_source_segment(src, kw.value))
        args += [f"{p}={e}" for p, e in params]
        if is_ctor:
            head = f"{cls_name}.of("
        else:
            head = ast.get_source_segment(src, f) + "(Message("
        edits.append((node, head, args, is_prefixed))
    if not edits:
        return 0
    lines = src.splitlines(keepends=True)
    offs = [0]
    for ln in lines:
        offs.append(offs[-1] + len(ln))

    def pos(lineno: int, col: int) -> int:
        # col_offset is in UTF-8 bytes
        line = lines[lineno - 1]
        return offs[lineno - 1] + len(line.encode()[:col].decode())
    edits.sort(key=lambda t: (t[0].lineno, t[0].col_offset), reverse=True)
    out = src
    for node, head, args, is_prefixed in edits:
        a = pos(node.lineno, node.col_offset)
        b = pos(node.end_lineno, node.end_col_offset)
        line_start = out.rfind("\n", 0, a) + 1
        col = a - line_start
        tail = "))" if is_prefixed else ")"
        one = head + ", ".join(args) + tail
        # what follows the call on its last line
        rest_end = out.find("\n", b)
        rest = out[b:rest_end if rest_end != -1 else len(out)]
        if col + len(one) + len(rest) <= 99:
            new = one
        else:
            indent = " " * (col + len(head))
            parts = []
            cur = head
            for i, arg in enumerate(args):
                piece = arg + (", " if i < len(args) - 1 else tail)
                if cur.strip() and len(cur.rstrip()) + len(piece.rstrip()) + (col if cur is head or cur.startswith(head) else 0) > 99 \
                        and cur != head:
                    parts.append(cur.rstrip())
                    cur = indent + piece
                else:
                    cur += piece
            parts.append(cur)
            new = "\n".join(parts)
        out = out[:a] + new + out[b:]
    if any(t[3] for t in edits) and "from qmpd.profiles import Message" not in out:
        out = out.replace("from qmpd.engine.errors import BlockError\n",
                          "from qmpd.engine.errors import BlockError\n"
                          "from qmpd.profiles import Message\n", 1)
    path.write_text(out)
    return len(edits)


GROUPS = {
    "graph": "node", "reopen": "reopen", "bitmaps": "bitmap", "resize": "resize",
    "create": "create", "jobs": "job", "snapshot": "snapshot", "backup": "backup",
    "mirror": "mirror", "aio": "aio", "objects": "object", "exports": "export",
    "qdev": "qdev", "pci": "pci", "scsi": "scsi", "query": "device", "base": "option",
    "io": "io",
}


def lit(t: str) -> str:
    if '"' in t:
        return repr(t)
    return '"' + t.replace("\\", "\\\\") + '"'


def main() -> None:
    cls_name, prefix, *files = sys.argv[1:]
    total = 0
    for f in files:
        p = Path(f)
        pre = prefix
        if prefix == "auto":
            pre = GROUPS.get(p.stem, p.stem.replace("_", "-"))
        n = convert(p, cls_name, pre)
        total += n
        print(f"# {f}: {n}", file=sys.stderr)
    for pre, items in NEW.items():
        print(f"    # {pre}")
        for k, t in items:
            print(f"    {lit(k)}: {lit(t)},")
    print(f"# total {total}", file=sys.stderr)


if __name__ == "__main__":
    main()
