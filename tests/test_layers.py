"""The import graph of drbfast/ and bench/: no cycle, and each layered package's modules
import only their own layer or lower ones.

Every import counts: module level, inside functions, and under ``if TYPE_CHECKING:``
(a type-only import is still a dependency a reader has to follow). Modules are read
with :mod:`ast` (``.pyx`` files, which ast cannot parse, by their import lines), never
imported, so a cycle that Python would tolerate at run time is still found.

To hold another package to its layers, add its table to :data:`LAYER_TABLES`: a
sequence of ``(layer name, module names)`` pairs, lowest layer first, naming every
module of the package (``__init__`` included) once. A subpackage may be named as one
module of its parent's table (its modules then share its layer; its inside is for a
table of its own), so ``"drbfast"`` can get a table naming ``"emulator"`` and
``"websockets"`` beside ``"client"`` and ``"session"``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pytest

import drbfast.emulator

ROOT = Path(__file__).resolve().parents[1]

#: The trees whose modules make up the graph.
TREES = ("drbfast", "bench")

#: package -> its layer table, lowest first (see the module docstring).
LAYER_TABLES: dict[str, Sequence[tuple[str, Sequence[str]]]] = {
    "drbfast.emulator": drbfast.emulator.LAYERS,
    # docs/ARCHITECTURE.md draws these layers.
    "drbfast": (
        ("base", ("errors", "frames", "_kinds", "kinds", "urls", "backoff", "stats", "book", "bookgen",
                  "_build_info")),
        ("sans-I/O protocol", ("oracle", "_classify", "_book", "book_reference", "cdp", "auth", "ratelimit",
                               "orders", "protocol", "queue")),
        ("hot path", ("_listener",)),
        ("session", ("session", "trading")),
        ("transport", ("transport",)),
        ("emulator", ("emulator",)),
        ("drivers", ("client", "websockets")),
        ("front-ends", ("gateway", "_compat")),
        ("applications", ("demo", "stream", "cli", "__main__", "__init__")),
    ),
}

#: Modules a build writes (absent from a plain checkout): a table may name them.
GENERATED = {"_build_info"}

#: Cycles outside these prefixes are reported by the xfail test below, not failed.
NO_CYCLE = ("drbfast.emulator", "bench")

Graph = dict[str, set[str]]

_PYX_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+c?import\s+(.+)|c?import\s+([\w.,\s]+))\s*$")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path, trees: Iterable[str]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py and .pyx under ``trees``."""
    found: dict[str, Path] = {}
    for tree in trees:
        for path in sorted((root / tree).rglob("*")):
            if path.suffix not in (".py", ".pyx") or any(p.startswith(".") for p in path.relative_to(root).parts):
                continue
            found.setdefault(module_name(path, root), path)
    return found


def _resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name of ``from <level dots><module> import ...`` in ``importer``."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    if level > 1:
        base = base[:-(level - 1)]
    return ".".join(base + ([module] if module else []))


def imports_of(name: str, path: Path, known: Mapping[str, Path]) -> set[str]:
    """The modules of ``known`` that ``name`` imports, wherever the import statement is."""
    is_package = path.stem == "__init__"
    targets: set[str] = set()

    def add_from(base: str, names: Iterable[str]) -> None:
        for n in names:
            sub = f"{base}.{n}" if base else n
            if sub in known:  # ``from pkg import module``: the module is what is used
                targets.add(sub)
            elif base in known:
                targets.add(base)

    def add_import(dotted: str) -> None:
        # ``import a.b.c`` binds ``a`` but depends on a.b.c: the longest known prefix.
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in known:
                targets.add(".".join(parts[:i]))
                return

    if path.suffix == ".pyx":
        for line in path.read_text(encoding="utf-8").splitlines():
            m = _PYX_IMPORT.match(line)
            if m is None:
                continue
            if m.group(1):
                dots = len(m.group(1)) - len(m.group(1).lstrip("."))
                base = _resolve(name, is_package, dots, m.group(1).lstrip(".") or None)
                add_from(base, [n.strip().split(" ")[0] for n in m.group(2).strip("()\\ ").split(",") if n.strip()])
            else:
                for dotted in m.group(3).split(","):
                    add_import(dotted.strip().split(" ")[0])
    else:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):  # every statement, function bodies and if-blocks included
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add_import(alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node.level, node.module)
                add_from(base, [a.name for a in node.names])
    targets.discard(name)
    return targets


def import_graph(root: Path = ROOT, trees: Iterable[str] = TREES) -> Graph:
    known = find_modules(root, trees)
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each
    sorted, in a stable order: every import cycle is inside one of them."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        # Iterative DFS (a recursive one could pass Python's recursion limit).
        work: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in graph:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp: list[str] = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    comp.append(m)
                    if m == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return sorted(out)


def one_cycle(graph: Graph, component: Sequence[str]) -> list[str]:
    """A concrete path a -> ... -> a inside ``component`` (for the failure message)."""
    members = set(component)
    start = component[0]
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for node in frontier:
            for t in sorted(graph[node] & members):
                if t == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if t not in parent:
                    parent[t] = node
                    nxt.append(t)
        frontier = nxt
    return list(component)


def layer_violations(graph: Graph, package: str, table: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """Imports inside ``package`` from a module to one of a higher layer. A subpackage
    named in the table is one unit: its modules share its layer (imports inside it are
    left to its own table)."""
    rank: dict[str, tuple[int, str]] = {}
    for i, (layer, modules) in enumerate(table):
        for m in modules:
            rank[package if m == "__init__" else f"{package}.{m}"] = (i, layer)

    def unit(module: str) -> str | None:
        parts = module.split(".")
        for n in range(len(parts), 0, -1):
            if ".".join(parts[:n]) in rank:
                return ".".join(parts[:n])
        return None

    bad = []
    for importer, targets in sorted(graph.items()):
        src = unit(importer) if importer.startswith(package + ".") or importer == package else None
        if src is None:
            continue
        for t in sorted(targets):
            dst = unit(t) if t.startswith(package + ".") or t == package else None
            if dst is not None and dst != src and rank[dst][0] > rank[src][0]:
                bad.append(f"{importer} ({rank[src][1]}) imports {t} ({rank[dst][1]})")
    return bad


def _describe(graph: Graph, comps: list[list[str]]) -> str:
    return "\n".join(" -> ".join(one_cycle(graph, c)) + f"   (component of {len(c)}: {', '.join(c)})" for c in comps)


# ---------------------------------------------------------------- the walker itself


def _write(root: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_walker_sees_function_level_type_checking_and_relative_imports(tmp_path: Path) -> None:
    """The three ways today's emulator hid its cycle are each an edge."""
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/low.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .high import Thing\n",
        "pkg/mid.py": "def f():\n    from . import low\n    return low\n",
        "pkg/high.py": "import pkg.mid\nfrom pkg.sub.leaf import x\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/leaf.py": "from ..low import y\nx = 1\n",
        "pkg/ext.pyx": "from pkg.low cimport thing\nimport os\nfrom .mid import f\n",
    })
    g = import_graph(tmp_path, ["pkg"])
    assert g["pkg.low"] == {"pkg.high"}
    assert g["pkg.mid"] == {"pkg.low"}
    assert g["pkg.high"] == {"pkg.mid", "pkg.sub.leaf"}
    assert g["pkg.sub.leaf"] == {"pkg.low"}
    assert g["pkg.ext"] == {"pkg.low", "pkg.mid"}
    assert cycles(g) == [["pkg.high", "pkg.low", "pkg.mid", "pkg.sub.leaf"]]
    path = one_cycle(g, cycles(g)[0])
    assert path[0] == path[-1] and all(b in g[a] for a, b in zip(path, path[1:]))


def test_walker_finds_layer_violations(tmp_path: Path) -> None:
    _write(tmp_path, {"pkg/__init__.py": "from . import top\n", "pkg/base.py": "def f():\n    from .top import g\n",
                      "pkg/top.py": "from .base import f\n"})
    g = import_graph(tmp_path, ["pkg"])
    table = (("base", ("base",)), ("top", ("top", "__init__")))
    assert layer_violations(g, "pkg", table) == ["pkg.base (base) imports pkg.top (top)"]
    assert layer_violations({"pkg.base": set(), "pkg.top": {"pkg.base"}, "pkg": {"pkg.top"}}, "pkg", table) == []
    # A subpackage in the table is one unit: its modules have its layer.
    nested = {"pkg.base": {"pkg.top.deep"}, "pkg.top": set(), "pkg.top.deep": {"pkg.base", "pkg.top"}}
    assert layer_violations(nested, "pkg", table) == ["pkg.base (base) imports pkg.top.deep (top)"]


# ---------------------------------------------------------------- the project


GRAPH = import_graph()


def test_no_import_cycle_in_the_emulator_or_bench() -> None:
    comps = [c for c in cycles(GRAPH) if any(m.startswith(NO_CYCLE) for m in c)]
    assert not comps, "import cycles:\n" + _describe(GRAPH, comps)


def test_no_import_cycle_anywhere() -> None:
    comps = cycles(GRAPH)
    assert not comps, "import cycles:\n" + _describe(GRAPH, comps)


@pytest.mark.parametrize("package", sorted(LAYER_TABLES))
def test_layer_table_names_every_module_once(package: str) -> None:
    declared = [m for _, modules in LAYER_TABLES[package] for m in modules]
    assert len(declared) == len(set(declared)), "a module is in two layers"
    prefix = package + "."
    present = {"__init__"} | {m[len(prefix):] for m in GRAPH if m.startswith(prefix) and "." not in m[len(prefix):]}
    missing = set(declared) - present - GENERATED
    assert present <= set(declared) and not missing, (f"undeclared: {sorted(present - set(declared))}; "
                                                      f"declared but missing: {sorted(missing)}")


@pytest.mark.parametrize("package", sorted(LAYER_TABLES))
def test_modules_import_only_their_layer_or_lower(package: str) -> None:
    bad = layer_violations(GRAPH, package, LAYER_TABLES[package])
    assert not bad, "imports of a higher layer:\n" + "\n".join(bad)
