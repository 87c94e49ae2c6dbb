"""The package reads top-down: every module imports only from its own layer or the layers above it."""

from __future__ import annotations

import ast
from pathlib import Path

import impasto

PACKAGE = Path(impasto.__file__).resolve().parent

# Lower number = closer to the data; a module may import its own rank or lower, never higher.
RANKS = {
    "errors": 0,
    "regions": 1, "losses": 1, "io": 1,
    "config": 2, "vgg": 2,
    "objective": 3, "optim": 3, "inputs": 3, "presets": 3,
    "engine": 4,
    "checkpoint": 5,
    "viz": 6, "bench": 6,
    "jobs": 6,
    "cli": 7, "studio": 7, "batch": 7, "video": 7,
}


def _layer(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def _imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("impasto."):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("impasto.")]
    return found


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
