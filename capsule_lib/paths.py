"""Where things live: the user's capsule home and the project's bundled data."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from .errors import CapsuleError

__all__ = ["capsule_home", "data_dir", "sample_models_dir", "ensure_dir"]


def capsule_home() -> Path:
    """The folder holding the user's compositions and custom models.

    ``$CAPSULE_HOME`` when set, otherwise ``~/.capsule``; created on demand so
    callers can write into it straight away.

    Raises
    ------
    CapsuleError
        If the folder cannot be created (e.g. a file of that name exists).
    """
    env = os.environ.get("CAPSULE_HOME")
    home = Path(env).expanduser() if env else Path.home() / ".capsule"
    try:
        home.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CapsuleError(f"capsule home {home} exists but is not a folder") from None
    except OSError as exc:
        raise CapsuleError(f"cannot create capsule home {home}: {exc.strerror or exc}") from None
    return home


def data_dir() -> Path:
    """The bundled data folder: sample melodies, sample models, prepared data sets.

    In this order:

    1. ``$CAPSULE_DATA`` when set;
    2. the copy an installed wheel carries inside the package, ``capsule_lib/_data``
       (the build maps the repository's ``data/`` there; see ``setup.py``), located
       with :mod:`importlib.resources`;
    3. ``data/`` beside the package in the repository (a checkout, ``make lab``'s
       editable install, Binder).
    """
    env = os.environ.get("CAPSULE_DATA")
    if env:
        return Path(env).expanduser()
    packaged = _packaged_data()
    if packaged is not None:
        return packaged
    return Path(__file__).resolve().parent.parent / "data"


def _packaged_data() -> Path | None:
    """``capsule_lib/_data`` of an installed wheel, or None (a checkout has none)."""
    try:
        folder = resources.files(__package__) / "_data"
    except (ModuleNotFoundError, TypeError):  # pragma: no cover - a package always has a spec
        return None
    # A wheel installs as plain files, so the resource is a real folder; callers need paths.
    return Path(folder) if isinstance(folder, Path) and folder.is_dir() else None


def sample_models_dir() -> Path:
    """The pretrained sample models shipped with the project (read-only)."""
    return data_dir() / "models"


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and its parents) if needed; a CapsuleError names it when that fails."""
    from .atomic import os_error

    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(exc, "create", path) from None
    return path
