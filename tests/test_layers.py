"""Imports flow one way: data → text → models → retrieval / store / feedback → tracking →
evaluation / serving → reports → client → cli. A module may import its own package and the
layers below it, never a layer above or a neighbour on its own layer, so each layer can be read
(and tested) without those above."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "driftrec"

# lowest first; the top-level helper modules are the floor. The package's own __init__ is its
# public face (it re-exports from the layers) and its __version__ may be read from anywhere.
LAYERS: list[set[str]] = [
    {"errors"},
    {"params", "paths", "progress", "distributed"},  # distributed: process groups (torch)
    {"data"},
    {"text"},
    {"models"},
    {"retrieval", "store", "feedback"},
    {"tracking"},
    {"evaluation", "serving"},
    {"reports"},
    {"client"},  # the HTTP client: the CLI drives services with it (simulate)
    {"cli"},
    {"train"},  # `python -m driftrec.train` for torchrun: the train command alone
]
LEVEL = {name: n for n, layer in enumerate(LAYERS) for name in layer}


def _imported(tree: ast.Module) -> set[str]:
    """The driftrec parts a module imports: ``driftrec.models.base`` → "models"."""
    names = set()
    for node in ast.walk(tree):  # imports inside functions count too
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "driftrec":
                names.add(parts[1] if len(parts) > 1 else "")
    return names


def test_imports_flow_one_way() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative == Path("__init__.py"):
            continue
        own = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        assert own in LEVEL, f"{relative}: add its package to LAYERS"
        for name in _imported(ast.parse(path.read_text())) - {own, ""}:
            assert name in LEVEL, f"{relative} imports driftrec.{name}, which is in no layer"
            if LEVEL[name] >= LEVEL[own]:
                wrong.append(f"{relative} imports driftrec.{name}")
    assert not wrong, "imports that reach up or sideways:\n" + "\n".join(wrong)
