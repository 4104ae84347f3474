"""The GAN package's modules import in one direction: each only those below it, at module level."""

from __future__ import annotations

import ast
from pathlib import Path

import capsule_lib.techniques.gan as gan

ORDER = ("model", "data", "lines", "voicing", "decoder", "sample", "evaluate", "views", "card", "train")
FOLDER = Path(gan.__file__).parent


def _sibling_imports(path: Path) -> list[tuple[str, bool]]:
    """``(module, at module level)`` for every ``from .X import`` of a sibling module."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    return [
        (node.module.split(".")[0], id(node) in top)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module
    ]


def test_every_module_imports_only_modules_below_it_and_only_at_module_level():
    assert {p.stem for p in FOLDER.glob("*.py")} - {"__init__", "params", "technique"} == set(ORDER)
    for name in ORDER:
        for target, at_top in _sibling_imports(FOLDER / f"{name}.py"):
            assert at_top, f"{name} imports {target} inside a function"
            assert ORDER.index(target) < ORDER.index(name), f"{name} imports {target}, which sits above it"


def test_every_lazy_name_resolves_to_its_module():
    for name, module in gan._LAZY.items():
        assert getattr(gan, name).__module__ == f"capsule_lib.techniques.gan.{module}" or name == "model_history", name
