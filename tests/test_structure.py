"""The package's structure: modules import in one direction, never in a circle.

Every ``import``/``from ... import`` of an ``nprnn`` module, at module level or inside a
function, is an arrow; the test fails on any cycle and on any arrow against the layering
kernels <- layers <- models <- (saving, interop, sklearn, plotting).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "nprnn"


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path):
    """The nprnn modules a file imports (``from nprnn.a import b`` counts ``nprnn.a.b`` when
    that is a module, else ``nprnn.a``)."""
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(
        ".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("nprnn"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            if not base.startswith("nprnn"):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in modules else base)
    return {name for name in found if name in modules}


GRAPH = {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}


def reachable(start):
    seen, todo = set(), [start]
    while todo:
        for target in GRAPH.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_module_imports_itself_back(module):
    # A package's __init__ imports its submodules, which import the package's parent
    # name only through their own full paths: only cycles between two real modules count.
    cycle = [other for other in GRAPH[module] if module in reachable(other)
             and not (other.startswith(module + ".") and module.count(".") < other.count("."))]
    assert not cycle, f"{module} imports {cycle}, which import {module} back"


LOWER = {"nprnn.kernels": 0, "nprnn.layers": 1, "nprnn.models": 2, "nprnn._fused": 2,
         "nprnn.saving": 3, "nprnn.interop": 3, "nprnn.sklearn": 4, "nprnn.plotting": 4}


def level(module):
    for prefix, value in LOWER.items():
        if module == prefix or module.startswith(prefix + "."):
            return value
    return None


@pytest.mark.parametrize("module", sorted(m for m in GRAPH if level(m) is not None))
def test_arrows_point_down_the_layers(module):
    upward = [target for target in GRAPH[module]
              if level(target) is not None and level(target) > level(module)]
    assert not upward, f"{module} (level {level(module)}) imports {upward}"
