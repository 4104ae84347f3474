"""Module weights as plain files: safetensors for weights, an atomic ``torch.save`` for checkpoints."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_path, atomic_write_bytes
from ..errors import CapsuleError
from .distributed import unwrap_module


def check_module_names(modules: Mapping[str, Any]) -> None:
    """Refuse anything but a non-empty dict of dot-free names to modules (dots would break the file keys)."""
    if not isinstance(modules, Mapping) or not modules:
        raise CapsuleError("build() must return a non-empty dict of name -> torch.nn.Module")
    for name, module in modules.items():
        if not isinstance(name, str) or not name or "." in name:
            raise CapsuleError(f"module name {name!r} must be a non-empty string without dots")
        if not isinstance(module, torch.nn.Module):
            raise CapsuleError(f"module {name!r} is a {type(module).__name__}, not a torch.nn.Module")


def save_modules(
    path: str | os.PathLike, modules: Mapping[str, torch.nn.Module], metadata: Mapping[str, str] | None = None
) -> Path:
    """Write all modules' weights to one safetensors file, keys ``"<module>.<param>"``.

    Tensors are copied to CPU and un-shared first (safetensors refuses tied
    weights), so the file loads anywhere.
    """
    from safetensors.torch import save as st_save

    check_module_names(modules)
    tensors = {}
    for name, module in modules.items():
        for key, value in unwrap_module(module).state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
    meta = {"format": "pt", "modules": ",".join(modules)}
    meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
    return atomic_write_bytes(path, st_save(tensors, metadata=meta))


def load_modules(
    path: str | os.PathLike, modules: Mapping[str, torch.nn.Module], *, strict: bool = True
) -> dict[str, torch.nn.Module]:
    """Load a :func:`save_modules` file into ``modules``.

    Each module keeps its device; the file's tensors are moved to it.  With
    ``strict``, a module missing from the file or a key that does not match is an
    error.  Returns ``modules`` as a dict.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    check_module_names(modules)
    path = Path(path)
    if not path.is_file():
        raise CapsuleError(f"no weights file at {path}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CapsuleError(f"weights file {path} is unreadable: {exc}") from None
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        name, _, rest = key.partition(".")
        groups.setdefault(name, {})[rest] = value
    for name, module in modules.items():
        if name not in groups:
            if strict:
                raise CapsuleError(f"weights file {path} has no module {name!r} (it has {sorted(groups)})")
            continue
        try:
            unwrap_module(module).load_state_dict(groups[name], strict=strict)
        except RuntimeError as exc:
            raise CapsuleError(f"weights for module {name!r} in {path} do not fit: {exc}") from None
    return dict(modules)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` so that a reader sees the old file or the whole new one."""
    # Stream into a temp file beside the target rather than through bytes in memory:
    # checkpoints of the larger models are hundreds of MB.
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
