"""The package's wings import one way only, and no two modules import each other (directly or round a loop).

The graph is computed from the source with :mod:`ast` (every ``import``, also those inside functions),
so a function-local import that hides a cycle counts as one. The wings, in data-flow order:

    facts → kernel → workloads → analysis → pages → book → (the command line at the root)

A module may import from its own wing or from a wing to its left, never to its right.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "lib" / "allocsim"
WINGS = ("facts", "kernel", "workloads", "analysis", "pages", "book")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PKG.rglob("*.py")}


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` (a dotted import target) names or lies inside."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(mod: str, path: Path, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            targets = [f"{stem}.{a.name}" for a in node.names] + [stem]
        for t in targets:
            if not t.startswith("allocsim"):
                continue
            r = _resolve(t, known)
            if r and r != mod and not mod.startswith(r + "."):
                out.add(r)
    # `from allocsim.pages import charts` resolves to allocsim.pages.charts; the bare package
    # `allocsim.pages` it also names is its __init__, which imports nothing of note: drop packages
    # that are only parents of something imported.
    return {m for m in out if not any(o.startswith(m + ".") for o in out) or known[m].name != "__init__.py"}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {m: imports_of(m, p, known) for m, p in known.items()}


def rank(mod: str) -> int:
    parts = mod.split(".")
    if len(parts) > 1 and parts[1] in WINGS:
        return WINGS.index(parts[1])
    return len(WINGS)  # the root: cli, __main__, __init__


def test_the_graph_is_read_from_the_source():
    g = graph()
    assert len(g) > 30
    assert "allocsim.facts.errors" in g["allocsim.kernel.slub"]


def test_imports_point_only_down_the_data_flow():
    upward = sorted(
        f"{a} (wing {rank(a)}) imports {b} (wing {rank(b)})"
        for a, deps in graph().items()
        for b in deps
        if rank(b) > rank(a)
    )
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    g = graph()
    seen: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def visit(m: str):
        seen[m] = 1
        stack.append(m)
        for d in sorted(g.get(m, ())):
            if seen.get(d) == 1:
                cycles.append(" → ".join(stack[stack.index(d):] + [d]))
            elif d not in seen:
                visit(d)
        stack.pop()
        seen[m] = 2

    for m in sorted(g):
        if m not in seen:
            visit(m)
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("wing", WINGS)
def test_every_wing_is_a_package(wing):
    assert (PKG / wing / "__init__.py").exists()
