"""The package reads top-down: every module imports only from its own layer or the layers above it."""

from __future__ import annotations

import ast
from pathlib import Path

import impasto

PACKAGE = Path(impasto.__file__).resolve().parent

# Lower number = closer to the data; a module may import its own rank or lower, never higher.
RANKS = {
    "errors": 0, "units": 0,
    "regions": 1, "losses": 1, "io": 1,
    "config": 2, "vgg": 2,
    "objective": 3, "optim": 3, "inputs": 3, "presets": 3, "tiling": 3,
    "engine": 4,
    "checkpoint": 5,
    "jobs": 6, "viz": 6, "bench": 6,
    "cli": 7, "studio": 7, "batch": 7, "video": 7,
}
FRONT_ENDS = ("cli", "studio", "batch", "video")
"""Each runs jobs through impasto.jobs and imports nothing of another (the command line's dispatcher
starts the others by module name, at run time)."""


def _layer(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def _imports(path: Path) -> list[str]:
    return [module for module, _ in _imported_names(path)]


def _imported_names(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from impasto.X import name`` and (module, "") of ``import impasto.X``,
    at any depth (imports inside functions count)."""
    found: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("impasto."):
            found += [(node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.startswith("impasto.")]
    return found


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.parts[-1] == "__init__" else rel.parts
        out[".".join(parts)] = path
    return out


def test_imports_point_one_way() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts)
        own = _layer(module)
        if own in ("", "__init__", "__main__"):  # the package's public surface re-exports the engine
            continue
        assert own in RANKS, f"{module}: add its layer to RANKS"
        for imported in _imports(path):
            layer = _layer(imported)
            if RANKS.get(layer, 0) > RANKS[own]:
                wrong.append(f"{module} imports {imported}")
    assert wrong == []


def test_the_ranks_cover_every_top_level_module() -> None:
    names = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())) and not p.name.startswith("__")}
    assert names <= set(RANKS), names - set(RANKS)


def test_no_front_end_imports_another_front_end_or_a_private_name() -> None:
    wrong = []
    for module, path in _modules().items():
        own = _layer(module)
        for imported, name in _imported_names(path):
            layer = _layer(imported)
            if own in FRONT_ENDS and layer in FRONT_ENDS and layer != own:
                wrong.append(f"{module} imports {imported}")
            if name.startswith("_") and layer != own:
                wrong.append(f"{module} imports the private {imported}.{name}")
    assert wrong == []


def test_no_import_cycle() -> None:
    """Between modules, counting imports inside functions too: a cycle is two modules that each need
    the other, which is one module in two files."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        for imported, name in _imported_names(path):
            target = f"{imported}.{name}" if f"{imported}.{name}" in modules else imported
            if target in modules and target != module and not module.startswith(target + "."):
                graph[module].add(target)
    # Packages' __init__ re-export their own modules: an edge into a package means its __init__.
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append([*trail[trail.index(n):], n] if n in trail else [m, n])
            elif n not in state:
                visit(n, [*trail, n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []
