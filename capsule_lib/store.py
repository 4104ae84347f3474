"""Compositions: every saved score, with the technique, model, parameters and parent that made it.

The console's Compositions page as a folder per composition::

    $CAPSULE_HOME/compositions/<id>/score.mid   the music
    $CAPSULE_HOME/compositions/<id>/meta.json   a Composition record

Crash safety: a composition is written into a hidden temporary folder and
renamed into place in one step, so a crash leaves either nothing or a whole
composition and never touches saved ones.  Meta updates hold an exclusive
lock per composition and replace ``meta.json`` atomically, so two processes
tagging at once lose nothing.  Names starting with ``.`` (temporary and trash
folders) are never listed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes, atomic_write_text, os_error
from .errors import CapsuleError
from .paths import capsule_home, ensure_dir
from .score import DEFAULT_RESOLUTION, Score
from .tags import remove_tag, set_tag, system_tags

__all__ = [
    "Composition",
    "CompositionStore",
    "save_composition",
    "list_compositions",
    "load_composition",
    "capsule_home",
    "jsonable",
    "locked",
    "sweep_leftovers",
]

# Hidden names (temporary, trash) start with "."; real ids never do.
_ID_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,127}")  # ids are 33 characters; 128 stays within any file system
_LOCK_NAME = ".lock"
_STALE_SECONDS = 3600  # leftovers of a killed process older than this are swept
MAX_TITLE = 256


# -- shared helpers (also used by capsule_lib.models) -------------------------------
def jsonable(value: Any, where: str = "parameters", _depth: int = 0) -> Any:
    """Return ``value`` as plain JSON data (numpy/torch scalars and arrays become numbers/lists).

    Raises
    ------
    CapsuleError
        For values JSON cannot hold (objects, non-finite floats, non-text keys).
    """
    if _depth > 64:
        raise CapsuleError(f"{where} is nested too deeply to save (a cycle?)")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CapsuleError(f"{where} is {value}; only finite numbers can be saved")
        return float(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise CapsuleError(f"{where} has the key {k!r}; keys must be text")
            out[k] = jsonable(v, f"{where}[{k!r}]", _depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [jsonable(v, f"{where}[{i}]", _depth + 1) for i, v in enumerate(value)]
    module = type(value).__module__.split(".")[0]
    if module == "numpy":
        import numpy as np

        if isinstance(value, np.generic):
            return jsonable(value.item(), where, _depth + 1)
        if isinstance(value, np.ndarray) and value.dtype != object:
            return jsonable(value.tolist(), where, _depth + 1)
    if module == "torch" and hasattr(value, "tolist"):
        return jsonable(value.tolist(), where, _depth + 1)
    raise CapsuleError(
        f"{where} holds a {type(value).__name__}, which cannot be saved as JSON "
        "(use numbers, text, booleans, lists and dicts)"
    )


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created if needed) for the ``with`` block.

    Raises ``FileNotFoundError`` when the folder holding the lock is gone, and a
    CapsuleError when the lock cannot be created (a read-only store).
    """
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(errno.ENOENT, "no such folder", str(lock_path.parent)) from None
    except OSError as exc:
        raise os_error(exc, "change", lock_path.parent) from None
    try:
        try:
            import fcntl
        except ImportError:  # Windows: lock the first byte instead
            import msvcrt

            while True:
                try:
                    msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    time.sleep(0.05)
        else:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def sweep_leftovers(root: Path, prefixes: tuple[str, ...] = (".tmp-", ".trash-")) -> None:
    """Remove the hidden folders (names starting with ``prefixes``) a killed process left behind long ago.

    "Long ago" is an hour without change: a folder still being written (a big model import)
    keeps changing, so only true leftovers go.
    """
    cutoff = time.time() - _STALE_SECONDS
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(prefixes):
            try:
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    shutil.rmtree(entry.path, ignore_errors=True)
            except OSError:
                pass


def export_path(path: str | os.PathLike, file_name: str) -> Path:
    """Where an export goes: ``path``, or ``path / file_name`` when ``path`` is an existing folder."""
    path = Path(path).expanduser()
    try:
        if path.is_dir():
            return path / file_name
    except OSError as exc:
        raise os_error(exc, "write", path) from None
    return path


def delete_folder(folder: Path, what: str) -> None:
    """Delete ``folder`` (a composition's, a model's) so that no reader ever sees it half removed.

    Under the folder's lock (no writer is inside it) it is renamed in one step to a hidden
    ``.trash-`` name beside it, then removed; a process killed in between leaves a trash
    folder that :func:`sweep_leftovers` removes later.  ``what`` names the thing in errors.
    """
    trash = folder.parent / f".trash-{folder.name}-{secrets.token_hex(4)}"
    try:
        with locked(folder / _LOCK_NAME):
            os.rename(folder, trash)
    except FileNotFoundError:
        raise CapsuleError(f"no {what} {folder.name}") from None
    except OSError as exc:
        raise os_error(exc, f"delete {what}", folder.name) from None
    shutil.rmtree(trash, ignore_errors=True)


# -- the record ----------------------------------------------------------------------
@dataclass
class Composition:
    """One saved composition (the ``meta.json`` record).

    Attributes
    ----------
    id : str
        Unique, time-sortable id such as ``"20261125T031500-123456-1a2b3c4d"``.
    title : str
    technique : str
        What made it: ``"import"``, ``"recording"``, ``"arcnn"``, ``"gan"``, ``"transformer"``, ...
    model : str or None
        Name of the model used, if any.
    parameters : dict
        The inference parameters, as JSON data.
    parent : str or None
        Id of the composition this one was made from.
    created : str
        ISO-8601 UTC time.
    tags : dict
        User tags plus system ``capsule:`` tags (technique, model, parent).
    n_tracks, n_notes : int
    duration_seconds : float
    resolution : int
        Steps per beat of the saved score, so it loads back on the same grid.
    """

    id: str
    title: str
    technique: str
    model: str | None = None
    parameters: dict = field(default_factory=dict)
    parent: str | None = None
    created: str = ""
    tags: dict = field(default_factory=dict)
    n_tracks: int = 0
    n_notes: int = 0
    duration_seconds: float = 0.0
    resolution: int = DEFAULT_RESOLUTION

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> Composition:
        """Build from a ``meta.json`` dict; raises CapsuleError if it is malformed."""
        if not isinstance(data, Mapping):
            raise CapsuleError("composition record is not a JSON object")
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        for key in ("id", "title", "technique", "created"):
            if not isinstance(kwargs.get(key), str):
                raise CapsuleError(f"composition record has no valid {key!r}")
        for key in ("parameters", "tags"):
            if not isinstance(kwargs.get(key, {}), dict):
                raise CapsuleError(f"composition record field {key!r} is not a dict")
        res = kwargs.get("resolution", DEFAULT_RESOLUTION)
        if not isinstance(res, int) or res < 1:
            raise CapsuleError("composition record has an invalid resolution")
        return cls(**kwargs)


# -- the store -------------------------------------------------------------------------
class CompositionStore:
    """The compositions saved under ``<home>/compositions``.

    Parameters
    ----------
    home : path, optional
        The capsule home; :func:`capsule_home` (``$CAPSULE_HOME`` or ``~/.capsule``) by default.
    """

    def __init__(self, home: str | os.PathLike | None = None):
        self.home = Path(home).expanduser() if home is not None else capsule_home()
        self.root = self.home / "compositions"

    def __repr__(self) -> str:
        return f"CompositionStore({str(self.home)!r})"

    # -- internals --------------------------------------------------------------------
    def _ensure_root(self) -> Path:
        return ensure_dir(self.root)

    @staticmethod
    def _read(folder: Path) -> Composition:
        try:
            data = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CapsuleError(f"no composition {folder.name}") from None
        except (OSError, ValueError, RecursionError) as exc:  # RecursionError: nested absurdly deep
            raise CapsuleError(f"composition {folder.name} is damaged: meta.json cannot be read ({exc})") from None
        comp = Composition.from_dict(data)
        comp.id = folder.name  # the folder name is the authority, even for a copied folder
        return comp

    def _resolve(self, ref) -> Path:
        """The folder of composition ``ref`` (an id, a unique id prefix, or a Composition)."""
        if isinstance(ref, Composition):
            ref = ref.id
        if not isinstance(ref, str) or not _ID_RE.fullmatch(ref):
            # Also keeps "../x" and hidden temp names from ever reaching the file system.
            raise CapsuleError(f"no composition {ref}")
        exact = self.root / ref
        try:
            if (exact / "meta.json").is_file():
                return exact
            names = os.listdir(self.root)
        except (FileNotFoundError, NotADirectoryError):
            names = []
        except OSError as exc:
            raise os_error(exc, "read the compositions in", self.root) from None
        matches = sorted(
            n for n in names if n.startswith(ref) and not n.startswith(".") and (self.root / n / "meta.json").is_file()
        )
        if len(matches) == 1:
            return self.root / matches[0]
        if not matches:
            raise CapsuleError(f"no composition {ref}")
        raise CapsuleError(f"composition id prefix {ref} matches {len(matches)} compositions; give more of the id")

    def _write_meta(self, folder: Path, comp: Composition) -> None:
        atomic_write_text(folder / "meta.json", json.dumps(comp.to_dict(), indent=2, ensure_ascii=False) + "\n")

    def _update(self, ref, change) -> Composition:
        folder = self._resolve(ref)
        try:
            with locked(folder / _LOCK_NAME):
                # Re-check under the lock: a delete may have moved the folder while we waited.
                if not (folder / "meta.json").is_file():
                    raise CapsuleError(f"no composition {folder.name}")
                comp = change(self._read(folder))
                self._write_meta(folder, comp)
        except FileNotFoundError:
            raise CapsuleError(f"no composition {folder.name}") from None
        return comp

    # -- public API ---------------------------------------------------------------------
    def add(
        self,
        score: Score,
        *,
        technique: str = "import",
        title: str | None = None,
        model=None,
        parameters: Mapping | None = None,
        parent=None,
        tags: Mapping[str, str] | None = None,
    ) -> Composition:
        """Save ``score`` as a new composition and return its record.

        Parameters
        ----------
        score : Score
            The music; it must hold at least one note.
        technique : str
            What made it (``"arcnn"``, ``"gan"``, ``"transformer"``, ``"import"``, ...).
        title : str, optional
            Defaults to the score's title, else ``"<technique> <date time>"``.
        model : str or ModelCard, optional
            The model used.
        parameters : dict, optional
            Inference parameters; must be JSON data (numpy scalars are converted).
        parent : str or Composition, optional
            The composition this one was made from (an id or unique id prefix).
        tags : dict, optional
            User tags (see :mod:`capsule_lib.tags`).

        Raises
        ------
        CapsuleError
            For an empty score, unknown parent, non-JSON parameters or bad tags.
        """
        if not isinstance(score, Score):
            raise CapsuleError(f"can only save a Score, not {type(score).__name__}")
        n_notes = sum(len(t.notes) for t in score.tracks)
        if n_notes == 0:
            raise CapsuleError("cannot save an empty composition: the score has no notes")
        if not isinstance(technique, str) or not technique:
            raise CapsuleError("technique must be a non-empty name such as 'arcnn'")
        model_name = getattr(model, "name", model)
        if model_name is not None and not isinstance(model_name, str):
            raise CapsuleError(f"model must be a model name, not {type(model_name).__name__}")
        if parameters is not None and not isinstance(parameters, Mapping):
            raise CapsuleError(f"parameters must be a dict of name -> value, not {type(parameters).__name__}")
        params = jsonable(dict(parameters or {}))
        parent_id = self._resolve(parent).name if parent is not None else None
        all_tags = system_tags(technique=technique, model=model_name, parent=parent_id)
        for key, value in (tags or {}).items():
            all_tags = set_tag(all_tags, key, value)

        from .midi import midi_bytes  # lazy: pulls in mido

        data = midi_bytes(score)
        moment = _now()
        if title is None:
            title = score.title or f"{technique} {moment:%Y-%m-%d %H:%M:%S}"
        root = self._ensure_root()
        sweep_leftovers(root)
        try:
            tmp: Path | None = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
        except OSError as exc:
            raise os_error(exc, "save the composition in", root) from None
        try:
            atomic_write_bytes(tmp / "score.mid", data)
            for _ in range(20):
                comp = Composition(
                    id=f"{moment:%Y%m%dT%H%M%S}-{moment.microsecond:06d}-{secrets.token_hex(4)}",
                    # Text that is not valid Unicode (an undecodable byte of a command-line
                    # argument) cannot be stored as UTF-8; such characters become "?".
                    title=str(title).encode("utf-8", "replace").decode("utf-8"),
                    technique=technique,
                    model=model_name,
                    parameters=params,
                    parent=parent_id,
                    created=_iso(moment),
                    tags=all_tags,
                    n_tracks=len(score.tracks),
                    n_notes=n_notes,
                    duration_seconds=round(score.duration_seconds, 6),
                    resolution=score.resolution,
                )
                self._write_meta(tmp, comp)
                try:
                    # One rename publishes the whole folder; it fails if the id is taken.
                    os.rename(tmp, root / comp.id)
                except OSError as exc:
                    if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                        continue
                    raise
                tmp = None
                return comp
            raise CapsuleError("could not find a free composition id; try again")
        except OSError as exc:
            raise os_error(exc, "save the composition in", root) from None
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)

    def list(self) -> list[Composition]:
        """All saved compositions, oldest first; damaged or half-written entries are skipped."""
        try:
            entries = list(os.scandir(self.root))
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = []
        for entry in entries:
            if entry.name.startswith(".") or not _ID_RE.fullmatch(entry.name) or not entry.is_dir():
                continue
            folder = Path(entry.path)
            if not (folder / "score.mid").is_file():
                continue
            try:
                out.append(self._read(folder))
            except (CapsuleError, TypeError):
                continue
        out.sort(key=lambda c: (c.created, c.id))
        return out

    def get(self, ref) -> Composition:
        """The record of composition ``ref`` (an id or a unique id prefix)."""
        try:
            return self._read(self._resolve(ref))
        except TypeError:
            raise CapsuleError(f"composition {ref} is damaged: meta.json has unexpected fields") from None

    def midi_path(self, ref) -> Path:
        """Path of the composition's ``score.mid`` (read it, do not edit it in place)."""
        path = self._resolve(ref) / "score.mid"
        if not path.is_file():
            raise CapsuleError(f"composition {path.parent.name} is damaged: score.mid is missing")
        return path

    def load(self, ref) -> Score:
        """The composition's music as a :class:`Score` (all tracks, on the grid it was saved with)."""
        from .midi import read_midi

        comp = self.get(ref)
        return read_midi(self.midi_path(comp.id), track="all", resolution=comp.resolution)

    def delete(self, ref) -> None:
        """Delete a composition (moved aside in one step, then removed)."""
        delete_folder(self._resolve(ref), "composition")

    def rename(self, ref, title: str) -> Composition:
        """Give composition ``ref`` a new title (1-256 characters, not only spaces); returns the record."""
        if not isinstance(title, str) or not title.strip():
            raise CapsuleError("a composition's title cannot be empty")
        title = " ".join(title.split())  # one line: titles show in lists and trees
        if len(title) > MAX_TITLE:
            raise CapsuleError(f"a composition's title is at most {MAX_TITLE} characters, not {len(title)}")

        def change(comp: Composition) -> Composition:
            comp.title = title
            return comp

        return self._update(ref, change)

    def tag(self, ref, key: str, value: str = "") -> Composition:
        """Set the user tag ``key`` to ``value``; returns the updated record."""

        def change(comp: Composition) -> Composition:
            comp.tags = set_tag(comp.tags, key, value)
            return comp

        return self._update(ref, change)

    def untag(self, ref, key: str) -> Composition:
        """Remove the user tag ``key``; returns the updated record."""

        def change(comp: Composition) -> Composition:
            comp.tags = remove_tag(comp.tags, key)
            return comp

        return self._update(ref, change)

    def export(self, ref, path: str | os.PathLike) -> Path:
        """Download a composition as ``.mid``/``.midi`` (a copy) or ``.wav``/``.mp3`` (rendered).

        ``path`` may be an existing folder: the file is then named after the id.
        """
        source = self.midi_path(ref)
        path = export_path(path, f"{source.parent.name}.mid")
        suffix = path.suffix.lower()
        if suffix in (".mid", ".midi"):
            try:
                data = source.read_bytes()
            except OSError as exc:
                raise os_error(exc, "read", source) from None
            return atomic_write_bytes(path, data)
        if suffix in (".wav", ".mp3"):
            from .audio import render_audio  # lazy: audio loads synthesis backends

            render_audio(self.load(source.parent.name), path)
            return path
        raise CapsuleError(f"cannot export to {path.name}: use a .mid, .midi, .wav or .mp3 file name")


# -- module-level shortcuts over the default store ---------------------------------------
def save_composition(score: Score, technique: str = "import", **kwargs) -> Composition:
    """Save ``score`` in the default store (see :meth:`CompositionStore.add`)."""
    return CompositionStore().add(score, technique=technique, **kwargs)


def list_compositions() -> list[Composition]:
    """All compositions in the default store, oldest first."""
    return CompositionStore().list()


def load_composition(ref) -> Score:
    """Load a composition's score from the default store by id or unique id prefix."""
    return CompositionStore().load(ref)
