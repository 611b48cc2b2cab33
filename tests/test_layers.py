"""The library's layers (DESIGN.md): a module never imports from a layer above it, and the units of the
library import each other without cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "dplearn"

LAYERS = {
    "budget": 0, "seeding": 0, "viz": 0, "atomic": 0, "shipped": 0, "compute": 0, "distributed": 0, "validate": 0,
    "divergence": 1, "diffusion": 1, "envs": 1, "densities": 1, "sample_quality": 1,
    "nets": 2, "data": 2, "experts": 2, "objectives": 2,
    "policies": 3,
    "training": 4, "policy_protocol": 4, "evaluation": 4, "collection": 4, "teleop": 4, "policy_training": 4,
    "cli": 5, "exercises": 5, "__main__": 6,
}

MODULES = sorted(p for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC)


def _unit(path: Path) -> str:
    """The top-level unit a file belongs to: ``diffusion/samplers.py`` -> ``diffusion``."""
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imported_units(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    units = set()
    package = ".".join(("dplearn",) + path.relative_to(SRC).parent.parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this file's package
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "dplearn" and len(parts) > 1:
                units.add(parts[1])
    return units


def test_every_unit_has_a_layer():
    units = {_unit(p) for p in MODULES}
    unknown = sorted(units - set(LAYERS))
    assert not unknown, f"modules without a layer (add them to DESIGN.md and LAYERS): {unknown}"


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(SRC)) for p in MODULES])
def test_imports_only_from_lower_layers(path):
    unit = _unit(path)
    if unit not in LAYERS:
        pytest.skip("unknown unit is reported by test_every_unit_has_a_layer")
    bad = [u for u in _imported_units(path) if u != unit and LAYERS.get(u, 99) > LAYERS[unit]]
    assert not bad, (
        f"{path.relative_to(SRC)} (layer {LAYERS[unit]}) imports {bad} "
        f"(layers {[LAYERS.get(u) for u in bad]}): never import from a layer above"
    )


def test_no_import_cycles_between_units():
    graph: dict[str, set[str]] = {}
    for path in MODULES:
        unit = _unit(path)
        graph.setdefault(unit, set()).update(u for u in _imported_units(path) if u != unit)
    state: dict[str, int] = {}

    def visit(u: str, stack: list[str]) -> None:
        state[u] = 1
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(stack + [u, v])}")
            if v in graph and not state.get(v):
                visit(v, stack + [u])
        state[u] = 2

    for u in sorted(graph):
        if not state.get(u):
            visit(u, [])


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["dplearn", *parts])


def _imported_modules(path: Path, known: set[str]) -> set[str]:
    """The dplearn modules a file imports (anywhere in it, lazy imports included): ``from a.b import c``
    counts as ``a.b.c`` when that is a module, else ``a.b``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                if f"{module}.{alias.name}" in known:
                    out.add(f"{module}.{alias.name}")
                elif module in known:
                    out.add(module)
    return out


def test_no_import_cycles_between_modules_inside_a_package():
    """E.g. ``policies/base.py`` must not import ``policies/registry.py``, which imports it."""
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    known = set(paths)
    graph = {m: {d for d in _imported_modules(p, known) if d != m} for m, p in paths.items()}
    state: dict[str, int] = {}

    def visit(u: str, stack: list[str]) -> None:
        state[u] = 1
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                cycle = stack[stack.index(v):] + [u, v] if v in stack else stack + [u, v]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if not state.get(v):
                visit(v, stack + [u])
        state[u] = 2

    for u in sorted(graph):
        if not state.get(u):
            visit(u, [])
