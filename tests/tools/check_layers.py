"""The house rules of qmpd's module structure, checked from the source text.

Run as ``python -m tests.tools.check_layers [ROOT]`` for a report, or use
:func:`check` (``tests/test_layers.py`` does) to get the violations per rule:

* ``cycles``: import circles among qmpd's modules (strongly connected
  components of the import graph).  Module-level and function-level imports
  count; imports under ``if TYPE_CHECKING:`` do not, since they are erased at
  run time and only name a type;
* ``engine_function_imports``: imports inside functions under ``qmpd/engine``
  (at most :data:`MAX_ENGINE_FUNCTION_IMPORTS`, each needing a comment);
* ``upward``: imports from the engine or the protocol layer into a layer
  above them (commands, server, schema, jobs runner, ...);
* ``big_modules``: modules over :data:`MAX_LINES` lines.

Only the source is read (``ast``); nothing is imported.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

MAX_LINES = 900
MAX_ENGINE_FUNCTION_IMPORTS = 5
# What the engine and the protocol layer may import from qmpd: themselves and
# the neutral modules every layer may use (QObject conventions, C strings, the
# release profiles, the qcow2 format).
NEUTRAL = ("qmpd.qobject", "qmpd.cstrings", "qmpd.profiles", "qmpd.qcow2", "qmpd.common")
ALLOWED_BELOW = {
    "qmpd.engine": ("qmpd.engine", *NEUTRAL),
    "qmpd.protocol": ("qmpd.protocol", *NEUTRAL),
}
# The package's own __init__ (version string) is below everything.
ALWAYS_ALLOWED = ("qmpd",)


@dataclass
class Import:
    source: str          # importing module
    target: str          # imported qmpd module
    line: int
    in_function: bool
    type_only: bool


@dataclass
class Report:
    modules: dict[str, Path] = field(default_factory=dict)
    imports: list[Import] = field(default_factory=list)
    cycles: list[list[str]] = field(default_factory=list)
    engine_function_imports: list[str] = field(default_factory=list)
    upward: list[str] = field(default_factory=list)
    big_modules: list[tuple[str, int]] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(modname: str, is_pkg: bool, level: int, target: str | None) -> str:
    if level == 0:
        return target or ""
    base = modname.split(".")
    if not is_pkg:
        base = base[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports_of(modname: str, path: Path, known: set[str]) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    out: list[Import] = []

    def add(target: str, node: ast.stmt, in_fn: bool, type_only: bool) -> None:
        if target in known:
            out.append(Import(modname, target, node.lineno, in_fn, type_only))

    def visit(nodes: list[ast.stmt], in_fn: bool, type_only: bool) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                for a in node.names:
                    # ``import a.b.c`` binds a and runs a.b.c: the deepest qmpd module counts.
                    name = a.name
                    while name and name not in known:
                        name = name.rpartition(".")[0]
                    add(name, node, in_fn, type_only)
                    if in_fn and modname.startswith("qmpd.engine"):
                        out.append(Import(modname, "<function>:" + a.name, node.lineno,
                                          True, type_only))
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(modname, is_pkg, node.level, node.module)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    add(sub if sub in known else base, node, in_fn, type_only)
                if in_fn and modname.startswith("qmpd.engine"):
                    out.append(Import(modname, "<function>:" + base, node.lineno,
                                      True, type_only))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(node.body, True, type_only)  # type: ignore[arg-type]
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                visit(node.body, in_fn, True)
                visit(node.orelse, in_fn, type_only)
            else:
                for name in ("body", "orelse", "finalbody", "handlers"):
                    sub = getattr(node, name, None)
                    if isinstance(sub, list):
                        visit([s for s in sub if isinstance(s, (ast.stmt, ast.excepthandler))],
                              in_fn, type_only)  # type: ignore[arg-type]
                if isinstance(node, ast.ClassDef):
                    pass

    visit(tree.body, False, False)
    return out


def _sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return sorted(out)


def check(root: Path) -> Report:
    """The report for the package ``qmpd`` under ``root`` (the repository)."""
    rep = Report()
    for path in sorted((root / "qmpd").rglob("*.py")):
        rep.modules[module_name(root, path)] = path
    known = set(rep.modules)
    for mod, path in rep.modules.items():
        rep.imports.extend(_imports_of(mod, path, known))
        n = len(path.read_text().splitlines())
        rep.lines[mod] = n
        if n > MAX_LINES:
            rep.big_modules.append((mod, n))
    graph: dict[str, set[str]] = {m: set() for m in known}
    for imp in rep.imports:
        if imp.target.startswith("<function>:"):
            if not imp.type_only:
                rep.engine_function_imports.append(
                    f"{imp.source}:{imp.line} {imp.target.split(':', 1)[1]}")
            continue
        if imp.type_only or imp.target == imp.source:
            continue
        graph[imp.source].add(imp.target)
        for layer, allowed in ALLOWED_BELOW.items():
            if (imp.source == layer or imp.source.startswith(layer + ".")) and not \
                    any(imp.target == a or imp.target.startswith(a + ".") for a in allowed) \
                    and imp.target not in ALWAYS_ALLOWED:
                rep.upward.append(f"{imp.source}:{imp.line} -> {imp.target}")
    rep.cycles = _sccs(graph)
    rep.big_modules.sort(key=lambda t: -t[1])
    return rep


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[2]
    rep = check(root)
    print(f"import circles: {len(rep.cycles)}")
    for c in rep.cycles:
        print("   ", " <-> ".join(c))
    fn_all = [i for i in rep.imports if i.in_function and not i.type_only
              and not i.target.startswith("<function>:")]
    print(f"function-level imports in engine: {len(rep.engine_function_imports)} "
          f"(qmpd modules imported inside functions, all of qmpd: {len(fn_all)})")
    for s in rep.engine_function_imports:
        print("   ", s)
    print(f"upward imports from engine/protocol: {len(rep.upward)}")
    for s in rep.upward:
        print("   ", s)
    print(f"modules over {MAX_LINES} lines: {len(rep.big_modules)}")
    for m, n in rep.big_modules:
        print(f"    {m} {n}")
    print("biggest modules:", ", ".join(f"{m} {n}" for m, n in
                                          sorted(rep.lines.items(), key=lambda t: -t[1])[:5]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
