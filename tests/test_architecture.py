"""The package's shape, enforced: imports go down the layers of ARCHITECTURE.md and never in a circle.

(The GAN's own module order is checked by tests/test_gan_imports.py.)

Every import statement counts, the ones inside functions too (a function-level import is fine for
a heavy optional dependency, never to reach a module above its own layer).  The test reads the
source with :mod:`ast`; it imports nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "capsule_lib"

#: The layers of ARCHITECTURE.md, bottom first: a module may import its own layer and those below.
#: A module's layer is that of the longest prefix listed (``datasets.bach`` -> ``datasets``).
LAYERS = (
    (
        "foundation",
        ("errors", "_lazy", "_workers", "threads", "atomic", "paths", "tags", "card_schema", "technique_registry"),
    ),
    (
        "music",
        (
            "score",
            "keys",
            "performance",
            "edit",
            "midi",
            "roll",
            "m21",
            "metrics",
            "samples",
            "audio",
            "plot",
            "views",
            "recording",
        ),
    ),
    ("storage and training", ("store", "models", "cards", "train")),
    ("data", ("datasets",)),
    ("techniques", ("techniques",)),
    ("interfaces", ("widgets", "cli", "doctor", "")),  # "" is the package itself: its lazy facade
)


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its source (names relative to the package)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
            targets = [t.removeprefix("capsule_lib").lstrip(".") for t in targets if t.split(".")[0] == "capsule_lib"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join([*base, node.module] if node.module else base)
            elif (node.module or "").split(".")[0] == "capsule_lib":
                mod = node.module.removeprefix("capsule_lib").lstrip(".")
            else:
                continue
            # ``from . import edit`` imports the submodule ``edit``; ``from .score import Note`` the module.
            targets = [
                f"{mod}.{a.name}".lstrip(".") if f"{mod}.{a.name}".lstrip(".") in known else mod for a in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t != name)
    return found


def layer_of(name: str) -> int:
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            hit = name == prefix or (prefix and name.startswith(prefix + ".")) or (prefix == "" and name == "")
            if hit and len(prefix) > best_len:
                best, best_len = i, len(prefix)
    if best is None:
        raise AssertionError(f"capsule_lib.{name} has no layer in ARCHITECTURE.md (add it to LAYERS)")
    return best


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) & known for name, path in mods.items()}


GRAPH = graph()


def test_every_module_has_a_layer():
    for name in GRAPH:
        layer_of(name)


@pytest.mark.parametrize("name", sorted(GRAPH))
def test_imports_go_down_the_layers(name):
    mine = layer_of(name)
    above = sorted(t for t in GRAPH[name] if layer_of(t) > mine and t != "")
    assert not above, (
        f"capsule_lib.{name} ({LAYERS[mine][0]}) imports {above} from a layer above it "
        "(ARCHITECTURE.md: move the shared code down, or the module up)"
    )


def test_no_module_imports_the_package_facade():
    """``capsule_lib/__init__.py`` is the students' front door; the library itself imports modules by name."""
    users = sorted(n for n, targets in GRAPH.items() if "" in targets and n)
    assert not users, f"{users} import the package facade instead of the module they need"


def test_techniques_do_not_import_each_other():
    for name, targets in GRAPH.items():
        parts = name.split(".")
        if parts[0] != "techniques" or len(parts) < 2 or parts[1].startswith("_") or parts[1] == "spec":
            continue
        others = sorted(
            t
            for t in targets
            if t.startswith("techniques.")
            and not t.startswith(f"techniques.{parts[1]}")
            and t.split(".")[1] not in ("_common", "spec", "registry")
        )
        assert not others, f"capsule_lib.{name} imports another technique: {others}"


def test_no_import_circles():
    """No two modules import each other, directly or through others (function-level imports included)."""
    index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not circles, f"import circles: {circles}"
