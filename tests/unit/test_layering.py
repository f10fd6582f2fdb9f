"""The import graph of ``src/lakeforge`` is a DAG that points down one declared layering.

Every module is parsed with :mod:`ast` (nothing is imported). An import counts wherever it
is written: at module level or inside a function (a function-level import still makes the
importer depend on the imported room). Imports under ``if TYPE_CHECKING:`` are exempt:
they exist for annotations only and never run. ``from pkg import name`` counts as an
import of ``pkg.name`` when that is a module, else of ``pkg``.

Checked: (i) no cycle among all imports, module-level or function-level (a deferred
import hides a cycle from the interpreter, not from the design); (ii) no import, at any
level, from a room to a room above it in :data:`LAYERS`.
README "Architecture" describes the same rooms in the same order.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

# Rooms, lowest first: a room may import rooms listed before it, never after it. A room is
# a top-level module or package of lakeforge ("lakeforge" itself is the package __init__).
LAYERS: tuple[str, ...] = (
    "errors",
    "version",
    "redaction",
    "results",
    "faults",
    "config",
    "io",
    "lineage",
    "runtime",
    "timetravel",
    "sql",
    "quality",
    "plan",
    "write",
    "steps",
    "training",
    "pipeline",
    "api",
    "lakeforge",
    "cli",
    "__main__",
)

# Known upward imports still to remove (importer module, imported module), each with why.
# None left: keep the set (and the test below) so a new exception is declared, with why.
ALLOWED_UP: frozenset[tuple[str, str]] = frozenset()


def module_files(src: Path, package: str = "lakeforge") -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``src/<package>``."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(
    body: Iterable[ast.stmt], top: bool
) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement under ``body`` with whether it runs at module level."""
    for node in body:
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from _imports(node.orelse, top)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, top
            continue
        inner = top and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                yield from _imports([child], inner)
            elif isinstance(child, ast.ExceptHandler | ast.match_case):
                yield from _imports(child.body, inner)  # `except ImportError:` and `case`


def import_graph(src: Path, package: str = "lakeforge") -> dict[str, dict[str, bool]]:
    """importer -> {imported module: True if imported at module level}, internal only."""
    modules = module_files(src, package)

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, bool]] = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        here = name if is_pkg else name.rpartition(".")[0]
        edges: dict[str, bool] = {}
        for node, top in _imports(ast.parse(path.read_text(), str(path)).body, True):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.append(sub if sub in modules else base)
            for target in targets:
                if target.split(".")[0] != package:
                    continue
                resolved = known(target)
                if resolved is not None and resolved != name:
                    edges[resolved] = edges.get(resolved, False) or top
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, bool]]) -> list[list[str]]:
    """Strongly connected components (size > 1) of the import graph, at every level."""
    edges = {m: list(out) for m, out in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def upward(
    graph: dict[str, dict[str, bool]],
    layers: tuple[str, ...] = LAYERS,
    allowed: frozenset[tuple[str, str]] = ALLOWED_UP,
) -> list[str]:
    """Imports that go up the layering, and modules in no declared room."""
    rank = {name: i for i, name in enumerate(layers)}
    problems = []
    for importer, targets in sorted(graph.items()):
        if room(importer) not in rank:
            problems.append(f"{importer}: room '{room(importer)}' is not in LAYERS")
            continue
        for target in sorted(targets):
            a, b = room(importer), room(target)
            if a != b and rank.get(b, len(rank)) > rank[a] and (importer, target) not in allowed:
                problems.append(f"{importer} ({a}) imports {target} ({b}), a higher room")
    return problems


def test_no_import_cycle() -> None:
    assert cycles(import_graph(SRC)) == []


def test_no_import_goes_up_the_layering() -> None:
    assert upward(import_graph(SRC)) == []


def test_allowed_exceptions_still_exist() -> None:
    # An exception that no longer happens must be deleted from ALLOWED_UP.
    graph = import_graph(SRC)
    assert [pair for pair in ALLOWED_UP if pair[1] not in graph.get(pair[0], {})] == []


def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / "lakeforge" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_checker_finds_a_planted_cycle(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "config/__init__.py": "",
            "config/a.py": "from lakeforge.plan.b import x\n",
            "plan/__init__.py": "",
            "plan/b.py": "from lakeforge.config import a\nx = 1\n",
            "plan/c.py": "from . import b\n",
        },
    )
    graph = import_graph(src)
    assert graph["lakeforge.plan.c"] == {"lakeforge.plan.b": True}
    assert cycles(graph) == [["lakeforge.config.a", "lakeforge.plan.b"]]
    assert upward(graph, ("config", "plan", "lakeforge"), frozenset()) == [
        "lakeforge.config.a (config) imports lakeforge.plan.b (plan), a higher room"
    ]


def test_function_level_and_type_checking_imports(tmp_path: Path) -> None:
    src = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "low.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from lakeforge.high import H\n"
                "def f():\n    import lakeforge.high\n"
            ),
            "high.py": "import lakeforge.low\n",
        },
    )
    graph = import_graph(src)
    # The function-level import is an edge (not a module-level one), TYPE_CHECKING is none;
    # with high -> low it closes a cycle all the same.
    assert graph["lakeforge.low"] == {"lakeforge.high": False}
    assert cycles(graph) == [["lakeforge.high", "lakeforge.low"]]
    assert upward(graph, ("low", "high", "lakeforge"), frozenset()) == [
        "lakeforge.low (low) imports lakeforge.high (high), a higher room"
    ]
