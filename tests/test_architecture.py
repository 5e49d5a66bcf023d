"""The layout's promises, read from the source: which package may import which, no import
cycles (counting imports inside functions), torch only in `ml`, a docstring atop every module.

docs/concepts.md ("Concepts and architecture") draws the same layers.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "digitlab"

# Bottom to top. A package may import its own modules and those of lower layers only;
# packages in one layer do not import each other.
LAYERS: list[set[str]] = [
    {"config"},
    {"data", "store"},
    {"registry"},
    {"inference"},
    {"evaluation"},
    {"ml"},
    {"scoring", "experiments", "feedback"},
    {"api"},
    {"web"},
    {"app"},
    {"cli"},
    {"__main__"},
]
RANK = {unit: rank for rank, layer in enumerate(LAYERS) for unit in layer}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def unit(module: str) -> str:
    """`digitlab.registry.lifecycle` -> `registry`; the package itself has none."""
    return module.split(".")[1] if "." in module else ""


def imported(path: Path) -> Iterator[tuple[str, int]]:
    """Every module that `path` imports, at any depth of the file, with its line."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                yield (full if full in MODULES else node.module), node.lineno


def internal_imports(module: str) -> set[str]:
    return {
        name
        for name, _ in imported(MODULES[module])
        if name.startswith("digitlab.") and name != module and name in MODULES
    }


def test_every_top_level_package_and_module_has_a_layer() -> None:
    units = {unit(m) for m in MODULES} - {""}
    assert units == set(RANK), "a new package needs a place in LAYERS (and docs/concepts.md)"


def test_imports_point_down_the_layers_only() -> None:
    upward = []
    for module, path in MODULES.items():
        if not unit(module):
            continue
        for name, line in imported(path):
            target = unit(name) if name.startswith("digitlab.") else ""
            if target and target != unit(module) and RANK[target] >= RANK[unit(module)]:
                upward.append(f"{path.relative_to(SRC)}:{line} imports {name}")
    assert not upward, "\n".join(upward)


def test_there_are_no_import_cycles() -> None:
    graph = {m: internal_imports(m) for m in MODULES}
    done: set[str] = set()
    cycles = []

    def visit(module: str, trail: list[str]) -> None:
        if module in trail:
            cycles.append(" -> ".join([*trail[trail.index(module) :], module]))
            return
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*trail, module])
        done.add(module)

    for module in graph:
        visit(module, [])
    assert not cycles, "\n".join(cycles)


def test_only_ml_imports_torch() -> None:
    outside = [
        f"{path.relative_to(SRC)}:{line}"
        for module, path in MODULES.items()
        if unit(module) != "ml"
        for name, line in imported(path)
        if name == "torch" or name.startswith("torch.")
    ]
    assert not outside, outside


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_opens_with_what_it_is_for(module: str) -> None:
    docstring = ast.get_docstring(ast.parse(MODULES[module].read_text()))
    assert docstring and docstring.splitlines()[0].strip(), f"{module} has no opening line"


def test_the_checks_read_the_real_tree() -> None:
    # The rules above would pass on an empty tree; make sure they read this one.
    assert len(MODULES) > 60
    assert "digitlab.registry.versions" in internal_imports("digitlab.inference.runtime")
    assert RANK["cli"] > RANK["api"] > RANK["store"]
