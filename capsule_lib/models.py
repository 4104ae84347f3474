"""Models: the shipped sample models and the user's own, with cards, weights and tags.

The console's Models page as a folder per model::

    <models>/<name>/model.json           the ModelCard
    <models>/<name>/weights.safetensors  the weights (never pickle: loading runs no code)
    <models>/<name>/history.json         optional training history
    <models>/<name>/README.md, *.png, *.mid   optional notes, plots and samples

Sample models live in ``data/models`` (read-only; their user tags are kept in
the capsule home); custom models in ``$CAPSULE_HOME/models``.  Models move
between machines as ``.tar.gz`` archives; :meth:`ModelRegistry.import_archive`
treats an archive as untrusted and checks every member before anything lands
in the registry.

Every resource an archive or a card could make us spend is bounded: archive
headers (PAX and GNU long names at most ``MAX_HEADER_BYTES``), members (count,
total size, the card's size), the card's JSON and every field the code reads
(:mod:`capsule_lib.card_schema`, on import and on every load), and the network a
card asks for, which must fit its weights file before anything is allocated
(:func:`load_network`).
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

from .atomic import atomic_path, atomic_write_text, os_error
from .card_schema import MAX_CARD_BYTES, check_hyperparameters, check_json, parse_card_json
from .errors import CapsuleError
from .paths import capsule_home, ensure_dir, sample_models_dir
from .store import delete_folder, export_path, jsonable, locked, sweep_leftovers
from .tags import MAX_USER_TAGS, remove_tag, set_tag, system_tags, user_tags, validate_tag
from .technique_registry import TECHNIQUES, technique_names

__all__ = [
    "model_history",
    "model_card_text",
    "ModelCard",
    "ModelRegistry",
    "list_models",
    "TECHNIQUES",
    "STATUSES",
    "ALLOWED_EXTENSIONS",
    "MAX_ARCHIVE_BYTES",
]

STATUSES = ("training", "complete", "failed")
#: The only file types an imported archive may hold: none of them is ever unpickled.
ALLOWED_EXTENSIONS = (".json", ".safetensors", ".md", ".png", ".mid", ".midi", ".txt")
MAX_ARCHIVE_BYTES = 200 * 1024 * 1024
MAX_ARCHIVE_MEMBERS = 1000
#: Largest PAX / GNU long-name header: tarfile reads such a header whole into memory.
MAX_HEADER_BYTES = 64 * 1024
CARD_FILE = "model.json"
WEIGHTS_FILE = "weights.safetensors"
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_LOCK_NAME = ".lock"
_UPDATABLE = ("algorithm", "dataset", "hyperparameters", "status", "metrics", "training_time_s", "description")


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _check_technique(technique) -> str:
    names = technique_names()
    if technique not in names:
        raise CapsuleError(f"unknown technique {technique!r} (expected {', '.join(names[:-1])} or {names[-1]})")
    return technique


def _check_name(name) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name.startswith("."):
        raise CapsuleError(
            f"model name {name!r} is not valid: use 1-64 letters, digits, '-', '_' or '.', not starting with '.'"
        )
    return name


# -- the card ----------------------------------------------------------------------------
@dataclass
class ModelCard:
    """What the Models page shows about one model (``model.json``).

    Attributes
    ----------
    name : str
    technique : {"arcnn", "gan", "transformer"}
    algorithm : str
        E.g. ``"MuseGAN"``, ``"U-Net"``, ``"TransformerXL"``.
    dataset : str
        The training data (e.g. ``"jsb-chorales"``, ``"jazz"``).
    hyperparameters : dict
    status : {"training", "complete", "failed"}
    metrics : dict
        Final evaluation numbers (losses, empty bar rate, ...).
    tags : dict
        User tags plus system ``capsule:`` tags.
    created : str
        ISO-8601 UTC time.
    training_time_s : float
    description : str
    sample : bool
        True for the pretrained models shipped in ``data/models`` (read-only).
    path : Path or None
        The model's folder (not serialised).
    """

    name: str
    technique: str
    algorithm: str = ""
    dataset: str = ""
    hyperparameters: dict = field(default_factory=dict)
    status: str = "training"
    metrics: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    created: str = ""
    training_time_s: float = 0.0
    description: str = ""
    sample: bool = False
    path: Path | None = field(default=None, compare=False, repr=False)

    @property
    def weights_path(self) -> Path | None:
        return None if self.path is None else self.path / WEIGHTS_FILE

    def to_dict(self) -> dict:
        """The card as JSON data (``path`` is left out: it depends on the machine)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "path"}

    @classmethod
    def from_dict(cls, data: Mapping, path: Path | None = None) -> ModelCard:
        """Build and validate a card; raises CapsuleError naming the first problem."""
        if not isinstance(data, Mapping):
            raise CapsuleError("the model card is not a JSON object")
        known = {f.name for f in fields(cls)} - {"path"}
        kwargs = {k: v for k, v in data.items() if k in known}  # unknown keys: newer versions
        if "name" not in kwargs:
            raise CapsuleError("the model card has no name")
        if "technique" not in kwargs:
            raise CapsuleError("the model card has no technique")
        card = cls(**kwargs, path=path)
        card.validate()
        return card

    def validate(self) -> None:
        """Check every field's type and range."""
        _check_name(self.name)
        _check_technique(self.technique)
        if self.status not in STATUSES:
            raise CapsuleError(f"model status {self.status!r} is not one of {', '.join(STATUSES)}")
        for key in ("algorithm", "dataset", "created", "description"):
            if not isinstance(getattr(self, key), str):
                raise CapsuleError(f"model card field {key!r} must be text")
        for key in ("hyperparameters", "metrics", "tags"):
            if not isinstance(getattr(self, key), dict):
                raise CapsuleError(f"model card field {key!r} must be a dict")
        t = self.training_time_s
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not t >= 0:
            raise CapsuleError(f"model training time {t!r} must be a number of seconds >= 0")
        if not isinstance(self.sample, bool):
            raise CapsuleError("model card field 'sample' must be true or false")
        for key, value in self.tags.items():
            validate_tag(key, value, system=True)
        if len(user_tags(self.tags)) > MAX_USER_TAGS:
            raise CapsuleError(f"the model card has more than {MAX_USER_TAGS} user tags")
        check_json(self.to_dict(), "the model card")
        check_hyperparameters(self.technique, self.hyperparameters)


class _BoundedTarInfo(tarfile.TarInfo):
    """Archive headers that refuse to be big: tarfile reads a PAX or GNU long-name header
    whole into memory, so a 3 MB archive could claim a 1 GB name."""

    def _proc_member(self, tarfile_):  # the hook tarfile documents for subclasses
        long_header = (
            tarfile.GNUTYPE_LONGNAME,
            tarfile.GNUTYPE_LONGLINK,
            tarfile.XHDTYPE,
            tarfile.XGLTYPE,
            tarfile.SOLARIS_XHDTYPE,
        )
        if self.type in long_header and self.size > MAX_HEADER_BYTES:
            raise _HeaderTooBig(f"an extended header of {self.size} bytes (at most {MAX_HEADER_BYTES})")
        return super()._proc_member(tarfile_)


class _HeaderTooBig(CapsuleError):
    pass


# -- the registry ---------------------------------------------------------------------------
class ModelRegistry:
    """Sample models (``data/models``) and custom models (``<home>/models``).

    Parameters
    ----------
    home : path, optional
        The capsule home (default :func:`capsule_home`).
    sample_dir : path, optional
        The sample models folder (default :func:`capsule_lib.paths.sample_models_dir`).
    """

    def __init__(self, home: str | os.PathLike | None = None, sample_dir: str | os.PathLike | None = None):
        self.home = Path(home).expanduser() if home is not None else capsule_home()
        self.root = self.home / "models"
        self.sample_dir = Path(sample_dir).expanduser() if sample_dir is not None else sample_models_dir()

    def __repr__(self) -> str:
        return f"ModelRegistry(home={str(self.home)!r}, sample_dir={str(self.sample_dir)!r})"

    # -- internals ------------------------------------------------------------------------
    def _ensure_root(self) -> Path:
        return ensure_dir(self.root)

    def _overlay(self, name: str) -> Path:
        # Sample folders are read-only (they ship with the project), so their user tags live here.
        return self.root / ".sample-tags" / f"{name}.json"

    def _read_card(self, folder: Path, sample: bool) -> ModelCard:
        path = folder / CARD_FILE
        try:
            with open(path, "rb") as fh:
                raw = fh.read(MAX_CARD_BYTES + 1)  # never more than a card may hold
        except FileNotFoundError:
            raise CapsuleError(f"no model {folder.name}") from None
        except OSError as exc:
            raise CapsuleError(f"model {folder.name} is damaged: {CARD_FILE} cannot be read ({exc})") from None
        try:
            data = parse_card_json(raw, CARD_FILE)
        except CapsuleError as exc:
            raise CapsuleError(f"model {folder.name} is damaged: {exc}") from None
        if isinstance(data, dict):
            data = {**data, "name": folder.name, "sample": sample}  # location is the authority
        try:
            card = ModelCard.from_dict(data, path=folder)
        except CapsuleError as exc:
            raise CapsuleError(f"model {folder.name} is damaged: {exc}") from None
        if sample:
            try:
                extra = json.loads(self._overlay(folder.name).read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError):
                extra = None
            if isinstance(extra, dict):
                card.tags = {
                    **{k: v for k, v in card.tags.items() if k not in user_tags(card.tags)},
                    **user_tags(extra),
                }
        return card

    def _scan(self, folder: Path, sample: bool) -> dict[str, ModelCard]:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            return {}
        out = {}
        for entry in entries:
            if entry.name.startswith(".") or not _NAME_RE.fullmatch(entry.name) or not entry.is_dir():
                continue
            try:
                out[entry.name] = self._read_card(Path(entry.path), sample)
            except CapsuleError:
                continue  # half-written or damaged: the Models page skips it
        return out

    def _is_sample(self, name: str) -> bool:
        return (self.sample_dir / name / CARD_FILE).is_file()

    def _custom_folder(self, name: str, action: str) -> Path:
        """The folder of custom model ``name``; refuses sample models."""
        _check_name(name)
        if self._is_sample(name):
            raise CapsuleError(f"{name} is a sample model; sample models cannot be {action}")
        folder = self.root / name
        if not (folder / CARD_FILE).is_file():
            raise CapsuleError(f"no model {name}")
        return folder

    def _write_card(self, folder: Path, card: ModelCard) -> None:
        atomic_write_text(folder / CARD_FILE, json.dumps(card.to_dict(), indent=2, ensure_ascii=False) + "\n")

    def _update_card(self, name: str, change, action: str) -> ModelCard:
        folder = self._custom_folder(name, action)
        try:
            with locked(folder / _LOCK_NAME):
                if not (folder / CARD_FILE).is_file():  # deleted while we waited for the lock
                    raise CapsuleError(f"no model {name}")
                card = change(self._read_card(folder, sample=False))
                card.validate()
                self._write_card(folder, card)
        except FileNotFoundError:
            raise CapsuleError(f"no model {name}") from None
        return card

    def _exists(self, name: str) -> bool:
        return self._is_sample(name) or (self.root / name / CARD_FILE).is_file()

    # -- browsing -------------------------------------------------------------------------
    def list(self, technique: str | None = None) -> list[ModelCard]:
        """Sample models (by name) then custom models (oldest first), optionally of one technique."""
        if technique is not None:
            _check_technique(technique)
        samples = self._scan(self.sample_dir, sample=True)
        custom = [c for n, c in self._scan(self.root, sample=False).items() if n not in samples]
        cards = list(samples.values()) + sorted(custom, key=lambda c: (c.created, c.name))
        return [c for c in cards if technique is None or c.technique == technique]

    def get(self, name: str) -> ModelCard:
        """The card of model ``name`` (sample models first: a custom one cannot shadow them)."""
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name.startswith("."):
            raise CapsuleError(f"no model {name}")
        for folder, sample in ((self.sample_dir / name, True), (self.root / name, False)):
            if (folder / CARD_FILE).is_file():
                return self._read_card(folder, sample)
        raise CapsuleError(f"no model {name}")

    # -- lifecycle --------------------------------------------------------------------------
    def create(
        self,
        name: str,
        technique: str,
        *,
        algorithm: str = "",
        dataset: str = "",
        hyperparameters: Mapping | None = None,
        description: str = "",
    ) -> ModelCard:
        """Register a new custom model (status ``"training"``, no weights yet).

        Raises
        ------
        CapsuleError
            For an invalid or taken name, an unknown technique or non-JSON hyperparameters.
        """
        _check_name(name)
        _check_technique(technique)
        if self._exists(name):
            raise CapsuleError(f"a model named {name} already exists; choose another name")
        card = ModelCard(
            name=name,
            technique=technique,
            algorithm=str(algorithm),
            dataset=str(dataset),
            hyperparameters=jsonable(dict(hyperparameters or {}), "hyperparameters"),
            status="training",
            tags=system_tags(technique=technique),
            created=_now_iso(),
            description=str(description),
        )
        card.validate()
        tmp: Path | None = self._temporary_folder(".tmp-")
        try:
            self._write_card(tmp, card)
            self._publish(tmp, name)
            tmp = None
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        return self.get(name)

    def _temporary_folder(self, prefix: str) -> Path:
        """A new hidden folder in the registry, where a model is put together before it is published."""
        root = self._ensure_root()
        sweep_leftovers(root, (".tmp-", ".trash-", ".import-"))  # what killed imports and deletes left
        try:
            return Path(tempfile.mkdtemp(prefix=prefix, dir=root))
        except OSError as exc:
            raise os_error(exc, "add a model to", root) from None

    def _publish(self, tmp: Path, name: str) -> None:
        """Rename a finished temporary folder into place (fails if the name got taken)."""
        try:
            os.rename(tmp, self.root / name)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise CapsuleError(f"a model named {name} already exists; choose another name") from None
            raise CapsuleError(f"cannot save model {name}: {exc.strerror or exc}") from None

    def update(self, name: str, /, **changes) -> ModelCard:
        """Change card fields (``status``, ``metrics``, ``training_time_s``, ...) atomically."""
        bad = sorted(set(changes) - set(_UPDATABLE))
        if bad:
            raise CapsuleError(f"cannot update model field {bad[0]!r} (updatable: {', '.join(_UPDATABLE)})")
        clean = {}
        for key, value in changes.items():
            clean[key] = jsonable(value, key) if key in ("hyperparameters", "metrics", "training_time_s") else value

        def change(card: ModelCard) -> ModelCard:
            for key, value in clean.items():
                setattr(card, key, value)
            return card

        return self._update_card(name, change, "changed")

    def delete(self, name: str) -> None:
        """Delete a custom model (sample models are refused)."""
        delete_folder(self._custom_folder(name, "deleted"), "model")

    # -- weights ------------------------------------------------------------------------------
    def save_weights(self, name: str, state_dict: Mapping, metadata: Mapping | None = None) -> Path:
        """Write ``state_dict`` (name -> torch tensor) as the model's ``weights.safetensors``, atomically.

        ``metadata`` values that are not text are stored as JSON text.
        """
        import torch
        from safetensors.torch import save_file

        folder = self._custom_folder(name, "changed")
        if not isinstance(state_dict, Mapping) or not state_dict:
            raise CapsuleError("state_dict must be a non-empty dict of name -> tensor")
        tensors = {}
        for key, value in state_dict.items():
            if not isinstance(key, str) or not isinstance(value, torch.Tensor):
                raise CapsuleError(f"state_dict entry {key!r} is not a named tensor")
            # A private contiguous CPU copy: safetensors refuses views and shared storage.
            tensors[key] = value.detach().to("cpu").contiguous().clone()
        meta = None
        if metadata:
            meta = {
                str(k): v if isinstance(v, str) else json.dumps(jsonable(v, f"metadata[{k!r}]"))
                for k, v in metadata.items()
            }
        with atomic_path(folder / WEIGHTS_FILE) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
        return folder / WEIGHTS_FILE

    def _weights_file(self, name: str) -> Path:
        card = self.get(name)
        path = card.weights_path
        if path is None or not path.is_file():
            raise CapsuleError(f"model {name} has no weights ({WEIGHTS_FILE} is missing)")
        return path

    def load_weights(self, name: str, device: str = "cpu") -> dict:
        """The model's state dict (safetensors only: loading never runs code)."""
        from safetensors.torch import load_file

        path = self._weights_file(name)
        try:
            return load_file(path, device=device)
        except Exception as exc:  # safetensors raises several types for bad files
            raise CapsuleError(f"the weights of model {name} are corrupt or unreadable: {exc}") from None

    def weights_metadata(self, name: str) -> dict:
        """The text metadata stored beside the weights (may be empty)."""
        from safetensors import safe_open

        path = self._weights_file(name)
        try:
            with safe_open(str(path), framework="pt") as fh:
                return dict(fh.metadata() or {})
        except Exception as exc:
            raise CapsuleError(f"the weights of model {name} are corrupt or unreadable: {exc}") from None

    # -- tags ------------------------------------------------------------------------------------
    def _retag(self, name: str, change) -> ModelCard:
        if not self._is_sample(name):

            def retag(card: ModelCard) -> ModelCard:
                card.tags = change(card.tags)
                return card

            return self._update_card(name, retag, "tagged")
        overlay = self._overlay(name)
        try:
            overlay.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error(exc, "tag", name) from None
        with locked(overlay.with_suffix(".lock")):
            tags = change(self.get(name).tags)
            atomic_write_text(overlay, json.dumps(user_tags(tags), indent=2, ensure_ascii=False) + "\n")
        return self.get(name)

    def tag(self, name: str, key: str, value: str = "") -> ModelCard:
        """Set the user tag ``key`` on a model (sample or custom)."""
        _check_name(name)
        self.get(name)
        return self._retag(name, lambda tags: set_tag(tags, key, value))

    def untag(self, name: str, key: str) -> ModelCard:
        """Remove the user tag ``key`` from a model."""
        _check_name(name)
        self.get(name)
        return self._retag(name, lambda tags: remove_tag(tags, key))

    # -- moving models between machines ---------------------------------------------------------
    def export(self, name: str, path: str | os.PathLike) -> Path:
        """Write the model as a ``.tar.gz`` holding its files under ``<name>/``.

        ``path`` may be an existing folder: the archive is then ``<name>.tar.gz`` in it.
        """
        card = self.get(name)
        path = export_path(path, f"{name}.tar.gz")
        if not path.name.lower().endswith((".tar.gz", ".tgz")):
            raise CapsuleError(f"cannot export to {path.name}: the archive name must end in .tar.gz or .tgz")
        exported = ModelCard(**{**card.to_dict(), "sample": False})
        card_bytes = (json.dumps(exported.to_dict(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        files = sorted(
            p
            for p in card.path.iterdir()
            if p.is_file()
            and not p.is_symlink()
            and not p.name.startswith(".")
            and p.suffix.lower() in ALLOWED_EXTENSIONS
            and p.name != CARD_FILE
        )

        def info(member: str, size: int) -> tarfile.TarInfo:
            # Neutral owner and modes: the archive carries no trace of this machine's users.
            ti = tarfile.TarInfo(f"{name}/{member}")
            ti.size, ti.mode, ti.mtime, ti.type = size, 0o644, int(time.time()), tarfile.REGTYPE
            return ti

        with atomic_path(path) as tmp, tarfile.open(tmp, "w:gz") as tar:
            tar.addfile(info(CARD_FILE, len(card_bytes)), io.BytesIO(card_bytes))
            for p in files:
                with open(p, "rb") as fh:
                    tar.addfile(info(p.name, os.fstat(fh.fileno()).st_size), fh)
        return path

    def _check_members(self, tar: tarfile.TarFile, label: str) -> list[tuple[tarfile.TarInfo, str]]:
        """Validate every member header; return the regular files with their plain names."""
        files: list[tuple[tarfile.TarInfo, str]] = []
        tops: set[str] = set()
        depths: set[int] = set()
        seen: set[str] = set()
        total = 0
        for count, m in enumerate(tar, start=1):
            if count > MAX_ARCHIVE_MEMBERS:
                raise CapsuleError(f"{label} holds more than {MAX_ARCHIVE_MEMBERS} entries; refusing to import")
            raw = m.name
            if raw.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", raw):
                raise CapsuleError(f"{label}: entry {raw!r} has an absolute path; refusing to import")
            if "\\" in raw or "\x00" in raw:
                raise CapsuleError(f"{label}: entry {raw!r} has an unsafe name; refusing to import")
            parts = [p for p in raw.split("/") if p not in ("", ".")]
            if ".." in parts:
                raise CapsuleError(f"{label}: entry {raw!r} contains '..'; refusing to import")
            if m.issym() or m.islnk():
                kind = "a symbolic link" if m.issym() else "a hard link"
                raise CapsuleError(f"{label}: entry {raw!r} is {kind}; archives may hold only plain files")
            if m.isdev() or m.isfifo():
                raise CapsuleError(f"{label}: entry {raw!r} is a device or pipe; archives may hold only plain files")
            if m.isdir():
                if len(parts) > 1:
                    raise CapsuleError(f"{label}: entry {raw!r} is a nested folder; a model folder is flat")
                tops.update(parts)
                continue
            if not m.isreg() or m.issparse():
                raise CapsuleError(f"{label}: entry {raw!r} is not a plain file; refusing to import")
            if not parts or len(parts) > 2:
                raise CapsuleError(f"{label}: entry {raw!r} is not inside one model folder")
            base = parts[-1]
            suffix = Path(base).suffix.lower()
            if suffix not in ALLOWED_EXTENSIONS:
                raise CapsuleError(
                    f"{label}: {base} is not allowed in a model archive (only {' '.join(ALLOWED_EXTENSIONS)} files; "
                    "formats like .pt or .pkl could run code when loaded)"
                )
            if base in seen:
                raise CapsuleError(f"{label}: {base} appears twice; refusing to import")
            if suffix == ".json" and m.size > MAX_CARD_BYTES:
                raise CapsuleError(
                    f"{label}: {base} is {m.size / 2**20:.1f} MB; a model's JSON files hold at most "
                    f"{MAX_CARD_BYTES // 2**20} MB"
                )
            seen.add(base)
            total += m.size
            if total > MAX_ARCHIVE_BYTES:
                raise CapsuleError(
                    f"{label} unpacks to more than {MAX_ARCHIVE_BYTES // (1024 * 1024)} MB; refusing to import"
                )
            depths.add(len(parts))
            if len(parts) == 2:
                tops.add(parts[0])
            files.append((m, base))
        if len(depths) > 1 or len(tops) > 1:
            raise CapsuleError(f"{label} must hold exactly one model folder")
        for required in (CARD_FILE, WEIGHTS_FILE):
            if required not in seen:
                raise CapsuleError(f"{label} has no {required}; it is not a model archive")
        return files

    def import_archive(self, path: str | os.PathLike, name: str | None = None) -> ModelCard:
        """Import a model archive (as written by :meth:`export`) as a custom model.

        The archive is untrusted: members with absolute paths, ``..``, links,
        devices or file types that could run code, oversize content, a
        missing or invalid card, unreadable weights or a taken name are all
        refused, and a refused import leaves nothing in the registry.

        Parameters
        ----------
        path : path
            The ``.tar.gz`` file.
        name : str, optional
            Import under this name instead of the card's.
        """
        src = Path(path).expanduser()
        label = src.name
        try:
            if not src.is_file():
                raise CapsuleError(f"{src} does not exist or is not a file")
        except OSError as exc:
            raise os_error(exc, "read", src) from None
        if name is not None:
            _check_name(name)
        tmp: Path | None = self._temporary_folder(".import-")
        try:
            try:
                with tarfile.open(src, "r:gz", tarinfo=_BoundedTarInfo) as tar:
                    for member, base in self._check_members(tar, label):
                        # Written by plain name into our own folder: nothing in the archive picks the path.
                        with tar.extractfile(member) as fh, open(tmp / base, "xb") as out:
                            shutil.copyfileobj(fh, out, 1 << 20)
            except _HeaderTooBig as exc:
                raise CapsuleError(f"{label} holds {exc}; refusing to import") from None
            except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise CapsuleError(f"{label} is not a valid .tar.gz archive ({exc or type(exc).__name__})") from None
            except OSError as exc:
                raise CapsuleError(f"cannot import {label}: {exc.strerror or exc}") from None
            try:
                data = parse_card_json((tmp / CARD_FILE).read_bytes(), CARD_FILE)
                for other in sorted(tmp.glob("*.json")):  # history.json and the like: views parse them later
                    if other.name != CARD_FILE:
                        parse_card_json(other.read_bytes(), other.name)
            except CapsuleError as exc:
                raise CapsuleError(f"{label}: {exc}") from None
            final = name if name is not None else (data.get("name") if isinstance(data, dict) else None)
            if isinstance(data, dict) and final is not None:
                data = {**data, "name": final, "sample": False}
            try:
                card = ModelCard.from_dict(data)
            except CapsuleError as exc:
                raise CapsuleError(f"{label}: {exc}") from None
            if not card.created:
                card.created = _now_iso()  # hand-made archives may leave it out; order needs it
            if self._exists(card.name):
                raise CapsuleError(f"a model named {card.name} already exists; import under another name with name=...")
            from safetensors.torch import load_file

            try:
                load_file(tmp / WEIGHTS_FILE)
            except Exception as exc:
                raise CapsuleError(f"{label}: {WEIGHTS_FILE} is corrupt or unreadable ({exc})") from None
            self._write_card(tmp, card)
            self._publish(tmp, card.name)
            tmp = None
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        return self.get(card.name)


def list_models(technique: str | None = None) -> list[ModelCard]:
    """All models (sample, then custom) in the default registry, optionally of one technique."""
    return ModelRegistry().list(technique)


# -- loading trained networks ------------------------------------------------------------
# One loaded network per technique stays in memory (keyed by its weights file and mtime):
# a notebook calls enhance/extend again and again, and switching models should not pile
# them up.
_NETWORKS: dict[str, tuple[tuple, object]] = {}


def _check_fit(name: str, build, config, weights: Path) -> None:
    """Refuse a config whose network would not fit the weights file, without allocating it.

    The network is built on torch's "meta" device (shapes, no memory) and its tensor
    shapes are compared with those in the safetensors header.
    """
    import torch
    from safetensors import safe_open

    with torch.device("meta"):
        shell = build(config)
    wanted = {k: tuple(v.shape) for k, v in shell.state_dict().items()}
    try:
        with safe_open(str(weights), framework="pt") as fh:
            found = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    except Exception as exc:  # safetensors raises several types for bad files
        raise CapsuleError(f"the weights of model {name} are corrupt or unreadable: {exc}") from None
    if wanted != found:
        missing = sorted(set(wanted) - set(found))
        odd = sorted(k for k in set(wanted) & set(found) if wanted[k] != found[k])
        detail = (
            f"{odd[0]} is {list(found[odd[0]])} in the weights but {list(wanted[odd[0]])} in the config"
            if odd
            else f"{missing[0]} is missing"
            if missing
            else f"{sorted(set(found) - set(wanted))[0]} is unexpected"
        )
        raise CapsuleError(
            f"the weights of model {name} do not fit its config {json.dumps(config.to_dict())}: {detail}"
        )


def load_network(name: str, technique: str, label: str, build, config_from_dict, registry=None):
    """A registered, finished model of ``technique`` as a network in eval mode.

    ``build(config)`` makes the network and ``config_from_dict(card.hyperparameters["model"])``
    its config; the weights are read from safetensors (nothing is unpickled) with a strict
    fit.  The result is cached until the weights file changes.

    Raises
    ------
    CapsuleError
        If the model does not exist, is of another technique (``label`` names the wanted
        one, e.g. "an AR-CNN"), has not finished training, has no weights, or its
        weights do not fit its config.
    """
    registry = registry if registry is not None else ModelRegistry()
    card = registry.get(name)
    if card.technique != technique:
        raise CapsuleError(f"model {name} is a {card.technique} model, not {label}")
    if card.status != "complete":
        raise CapsuleError(f"model {name} is not ready (status {card.status})")
    path = card.weights_path
    if path is None or not path.is_file():
        raise CapsuleError(f"model {name} has no weights")
    key = (str(path), path.stat().st_mtime_ns)
    cached = _NETWORKS.get(technique)
    if cached is not None and cached[0] == key:
        return cached[1]
    config = config_from_dict((card.hyperparameters or {}).get("model", {}))
    _check_fit(name, build, config, path)  # before allocating: the card alone could ask for gigabytes
    model = build(config)
    try:
        model.load_state_dict(registry.load_weights(name), strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "mismatch"
        raise CapsuleError(
            f"the weights of model {name} do not fit its config {json.dumps(config.to_dict())}: {first}"
        ) from None
    model.eval()
    model.name = name
    _NETWORKS[technique] = (key, model)
    return model


def model_history(name: str, registry: ModelRegistry | None = None) -> list[dict]:
    """The per-epoch training history saved with a model of any technique (its ``history.json``)."""
    card = (registry or ModelRegistry()).get(name)
    path = card.path / "history.json" if card.path is not None else None
    if path is None or not path.is_file():
        raise CapsuleError(f"model {name} has no training history")
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CapsuleError(f"the training history of model {name} is unreadable ({exc})") from None
    if not isinstance(history, list):
        raise CapsuleError(f"the training history of model {name} is not a list of epochs")
    return history


def model_card_text(name: str, registry: ModelRegistry | None = None) -> str:
    """The model card (``README.md``) of a model of any technique, as Markdown text (image links dropped)."""
    card = (registry or ModelRegistry()).get(name)
    path = card.path / "README.md" if card.path is not None else None
    if path is None or not path.is_file():
        raise CapsuleError(f"model {name} has no model card")
    return "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("!["))
