"""Bach chorales from music21's bundled corpus, as note lists split by chorale and cut into windows.

Source
    ``music21.corpus.chorales.Iterator()`` lists 371 chorales; 350 corpus paths are
    unique (the iterator repeats some BWV numbers).  Each is parsed, its repeats are
    expanded (when music21 cannot expand them the chorale is kept *unexpanded* and
    counted in ``repeats_not_expanded``), and all its parts -- voices and any
    instrumental parts -- are merged into one set of notes at 4 steps per beat
    (:func:`capsule_lib.m21.from_music21` with ``resolution=4``).  Chorales that fail
    to parse are skipped and counted in ``skipped``; chorales whose notes are
    identical to an earlier one (a second copy under another path) are dropped and
    counted in ``duplicates``, so no music can sit in two splits.

Pitch range
    The corpus spans MIDI 36 (C2) to 88 (E6).  The AR-CNN uses the 64 pitches
    ``PITCH_LOW`` = 30 .. ``PITCH_HIGH`` = 93 (F#1 .. A6): every chorale fits, with
    room to transpose the whole corpus by -6 .. +5 semitones (all twelve keys).

Split (fixed, by chorale)
    ``sha256(corpus path) mod 10``: 0 -> ``"test"``, 1 -> ``"validation"``, anything
    else -> ``"train"``.  The rule depends only on the path (e.g. ``"bach/bwv269"``),
    so it never changes between runs or machines; on the full corpus it puts 39
    chorales (11 %) in test and 31 in validation.  Windows are cut *after* splitting,
    so no window of a test chorale can appear in training.

Windows
    8 bars of 4/4 = 128 steps, sliding by 4 bars = 64 steps; the last window may run
    past the chorale's end (the rest is silence).  A window is an ``(n, 3)`` int array
    of ``(start, pitch, duration)`` rows, times relative to the window, notes clipped
    to it.

Cache
    Parsing the corpus takes one to three minutes, so every chorale's parse result ships in
    ``data/datasets/bach-v1.*`` (see :func:`._corpus.parse_with_shipped`; only chorales it lacks
    are parsed), and a built data set is stored in ``$CAPSULE_HOME/cache/bach/`` (a compressed
    ``.npz`` of all notes plus a ``.json`` of per-chorale metadata); a second call loads it in
    well under a second.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CapsuleError
from ..m21 import parse_corpus
from ._corpus import (
    SPLITS,
    CorpusParse,
    SplitByPiece,
    cached_dataset,
    check_limit,
    check_split,
    dropped_meta,
    read_dropped,
    read_packed,
    split_of,
    write_packed,
)

__all__ = [
    "Chorale",
    "BachDataset",
    "PITCH_LOW",
    "PITCH_HIGH",
    "N_PITCHES",
    "RESOLUTION",
    "WINDOW_STEPS",
    "HOP_STEPS",
    "SPLITS",
    "chorale_paths",
    "split_of",
    "build_bach_dataset",
    "load_bach_windows",
    "window_starts",
    "cut_window",
]

PITCH_LOW = 30
PITCH_HIGH = 93
N_PITCHES = PITCH_HIGH - PITCH_LOW + 1
RESOLUTION = 4
WINDOW_STEPS = 128
HOP_STEPS = 64

# Bump when the parsed content changes (parsing rules, fields): old caches are rebuilt.
CACHE_VERSION = 1


@dataclass(frozen=True)
class Chorale:
    """One parsed chorale.

    Attributes
    ----------
    path : str
        music21 corpus path, e.g. ``"bach/bwv269"``.
    title : str
    split : {"train", "validation", "test"}
    notes : numpy.ndarray
        ``(n, 3)`` int32 rows ``(start, pitch, duration)`` at 4 steps per beat, sorted.
    time_signature : (int, int)
    repeats_expanded : bool
    """

    path: str
    title: str
    split: str
    notes: np.ndarray
    time_signature: tuple[int, int]
    repeats_expanded: bool = True

    @property
    def n_steps(self) -> int:
        return int((self.notes[:, 0] + self.notes[:, 2]).max()) if len(self.notes) else 0


@dataclass
class BachDataset(SplitByPiece):
    """The parsed chorales plus what happened while parsing.

    Attributes
    ----------
    chorales : list of Chorale
    skipped : list of (path, reason)
        Chorales that could not be parsed.
    duplicates : list of (path, kept_path)
        Chorales dropped because their notes equal an earlier chorale's.
    repeats_not_expanded : list of str
        Chorales kept with their repeats unexpanded (music21 could not expand them).
    cache_path : Path or None
    """

    chorales: list
    skipped: list
    duplicates: list
    repeats_not_expanded: list
    cache_path: Path | None = None

    _items = "chorales"  # what split() filters

    def windows(self, split: str) -> list[np.ndarray]:
        """Every 8-bar window (hop 4 bars) of every chorale in ``split``."""
        out = []
        for c in self.split(split):
            out.extend(cut_window(c.notes, s) for s in window_starts(c.n_steps))
        return out

    def summary(self) -> dict:
        """Counts per split (chorales, windows, notes) and of skipped/duplicate chorales."""
        out = {
            "chorales": len(self.chorales),
            "skipped": len(self.skipped),
            "duplicates": len(self.duplicates),
            "repeats_not_expanded": len(self.repeats_not_expanded),
            "pitch_range": [PITCH_LOW, PITCH_HIGH],
            "window_steps": WINDOW_STEPS,
            "hop_steps": HOP_STEPS,
            "split_rule": "sha256(corpus path) mod 10: 0 test, 1 validation, else train",
        }
        for name in SPLITS:
            chorales = self.split(name)
            out[name] = {
                "chorales": len(chorales),
                "windows": sum(len(window_starts(c.n_steps)) for c in chorales),
                "notes": int(sum(len(c.notes) for c in chorales)),
            }
        return out


# --------------------------------------------------------------------------- split and windows


def window_starts(n_steps: int, window: int = WINDOW_STEPS, hop: int = HOP_STEPS) -> list[int]:
    """Start steps of the windows covering ``n_steps`` steps (at least one window)."""
    over = max(int(n_steps) - window, 0)
    last = -(-over // hop) * hop
    return list(range(0, last + 1, hop))


def cut_window(notes: np.ndarray, start: int, window: int = WINDOW_STEPS) -> np.ndarray:
    """The notes sounding in ``[start, start + window)``, clipped and shifted to start at 0."""
    notes = np.asarray(notes, dtype=np.int32).reshape(-1, 3)
    ends = notes[:, 0] + notes[:, 2]
    keep = (notes[:, 0] < start + window) & (ends > start)
    sel = notes[keep]
    s = np.maximum(sel[:, 0], start)
    e = np.minimum(sel[:, 0] + sel[:, 2], start + window)
    return np.stack([s - start, sel[:, 1], e - s], axis=1).astype(np.int32) if len(sel) else np.zeros((0, 3), np.int32)


# --------------------------------------------------------------------------- parsing


def chorale_paths() -> list[str]:
    """The unique corpus paths of music21's chorale iterator, in its order."""
    try:
        from music21 import corpus
    except ImportError:  # pragma: no cover - music21 is a dependency
        raise CapsuleError("music21 is not installed; it provides the Bach chorales") from None
    return list(dict.fromkeys(corpus.chorales.Iterator(returnType="filename")))


def _parse_one(path: str) -> dict:
    """Parse one chorale in a worker; never raises (errors come back as ``error``)."""
    try:
        score, expanded = parse_corpus(path, resolution=RESOLUTION)
        notes = sorted({(n.start, n.pitch, n.duration) for t in score.tracks if not t.is_drum for n in t.notes})
        if not notes:
            return {"path": path, "error": "no notes"}
        return {
            "path": path,
            "title": score.title or path,
            "time_signature": list(score.time_signature),
            "expanded": expanded,
            "notes": np.asarray(notes, dtype=np.int32),
        }
    except Exception as exc:  # any parse failure: skipped and counted, never fatal
        return {"path": path, "error": f"{type(exc).__name__}: {exc}"[:200]}


def _cache_dir() -> Path:
    from ..paths import capsule_home

    return capsule_home() / "cache" / "bach"


def _cache_key(paths: Sequence[str], full: bool) -> str:
    if full:
        return f"chorales-v{CACHE_VERSION}-all"
    digest = hashlib.sha256("\n".join(paths).encode("utf-8")).hexdigest()[:12]
    return f"chorales-v{CACHE_VERSION}-{digest}"


def _resolve_paths(paths: Iterable[str] | None, limit: int | None) -> tuple[list[str], bool]:
    if paths is None:
        chosen = chorale_paths()
        full = limit is None
    else:
        if isinstance(paths, str):
            raise CapsuleError("paths must be a list of corpus paths such as ['bach/bwv269']")
        chosen = list(dict.fromkeys(str(p) for p in paths))
        full = False
    check_limit(limit)
    if limit is not None:
        chosen = chosen[:limit]
    if not chosen:
        raise CapsuleError("no chorales to load (the path list is empty)")
    return chosen, full


def _load_cache(stem: Path) -> BachDataset | None:
    packed = read_packed(stem, "notes", version=CACHE_VERSION, items="chorales")
    if packed is None:
        return None  # missing, damaged or outdated: rebuild
    meta, notes = packed
    chorales = [
        Chorale(
            path=c["path"],
            title=c["title"],
            split=split_of(c["path"]),
            notes=n.astype(np.int32),
            time_signature=tuple(c["time_signature"]),
            repeats_expanded=c["expanded"],
        )
        for c, n in zip(meta["chorales"], notes)
    ]
    not_expanded = [c.path for c in chorales if not c.repeats_expanded]
    return BachDataset(chorales, *read_dropped(meta), not_expanded, cache_path=stem.with_suffix(".npz"))


def _write_cache(stem: Path, ds: BachDataset) -> None:
    meta = {
        "version": CACHE_VERSION,
        "chorales": [
            {
                "path": c.path,
                "title": c.title,
                "split": c.split,
                "time_signature": list(c.time_signature),
                "expanded": c.repeats_expanded,
                "n_notes": len(c.notes),
            }
            for c in ds.chorales
        ],
        **dropped_meta(ds),
    }
    write_packed(stem, "notes", [c.notes for c in ds.chorales], meta, dtype=np.int16, row_shape=(3,), indent=1)


def build_bach_dataset(
    force: bool = False,
    progress: bool = True,
    *,
    paths: Iterable[str] | None = None,
    limit: int | None = None,
    workers: int | None = None,
) -> BachDataset:
    """Parse the Bach chorales (or load them from the cache) and return them split.

    Parameters
    ----------
    force : bool
        Re-parse even if a cache exists.
    progress : bool
        Show a tqdm progress bar while parsing.
    paths : list of str, optional
        Parse only these corpus paths (e.g. ``["bach/bwv269"]``); default: all chorales.
    limit : int, optional
        Parse only the first ``limit`` paths (quick runs and tests).
    workers : int, optional
        Parallel parsing processes; default one per CPU core (max 4) for more than
        8 chorales, else 1.

    Returns
    -------
    BachDataset

    Raises
    ------
    CapsuleError
        For a bad ``limit``/``paths`` or when no chorale could be parsed.
    """
    chosen, full = _resolve_paths(paths, limit)

    def parse() -> BachDataset:
        parsing = CorpusParse(
            "bach", CACHE_VERSION, _parse_one, "notes", "parsing Bach chorales", "chorale", chunksize=4
        )
        kept, skipped, duplicates = parsing.unique(chosen, force=force, workers=workers, progress=progress)
        chorales = [
            Chorale(
                path=r["path"],
                title=r["title"],
                split=split_of(r["path"]),
                notes=r["notes"],
                time_signature=tuple(r["time_signature"]),
                repeats_expanded=r["expanded"],
            )
            for r in kept
        ]
        if not chorales:
            raise CapsuleError(f"none of the {len(chosen)} chorales could be parsed (first error: {skipped[0][1]})")
        return BachDataset(chorales, skipped, duplicates, [c.path for c in chorales if not c.repeats_expanded])

    return cached_dataset(
        _cache_dir() / _cache_key(chosen, full), force=force, load=_load_cache, save=_write_cache, build=parse
    )


def load_bach_windows(
    split: str | None = None,
    *,
    paths: Iterable[str] | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> dict[str, list[np.ndarray]] | list[np.ndarray]:
    """The 8-bar windows of the chorales: one split's list, or a dict of all three.

    Builds (or loads from the cache) with :func:`build_bach_dataset`.
    """
    if split is not None:
        check_split(split)
    ds = build_bach_dataset(progress=progress, paths=paths, limit=limit)
    if split is not None:
        return ds.windows(split)
    return {name: ds.windows(name) for name in SPLITS}
