"""Lazy public names for a package: ``name -> submodule`` loaded on first access (PEP 562)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, names: Mapping[str, str], namespace: dict) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for a package whose public ``names`` live in submodules.

    ``names`` maps a public name to the submodule (relative to ``package``) defining it;
    a loaded name is cached in ``namespace`` (the package's ``globals()``), so each
    submodule is imported once and only when needed.
    """

    def __getattr__(name: str):
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
