"""Multi-track genre data sets for the GAN: a melody track first, then accompaniment tracks.

Genres from music21's bundled corpus (offline)
    ``chorale``      Bach chorales (``corpus.chorales.Iterator()``): soprano melody + alto,
                     tenor, bass.
    ``quartet``      Haydn, Mozart and Beethoven string quartet movements: first violin
                     melody + second violin, viola, cello.  Where the corpus holds a
                     movement as both ``.mxl`` and ``.krn`` only the ``.mxl`` is used.
    ``renaissance``  Monteverdi madrigals (``.mxl``) and Palestrina mass movements: top
                     voice + the three lowest voices.  Palestrina's 1318 files are thinned
                     to those with ``sha256(path) mod 3 == 0`` (about 440) so that building
                     the set takes minutes, not a quarter of an hour.

Tracks
    Each piece's pitched parts are ordered by mean pitch, highest first; the melody is the
    highest part and the accompaniment the three lowest (for four parts: all of them).
    Pieces with fewer than four pitched parts are skipped and counted.  Repeats are
    expanded where music21 can (else the piece is kept unexpanded).

Grid, samples
    4 steps per beat.  A sample is ``N_BARS`` = 4 bars of ``STEPS_PER_BAR`` = 16 steps
    (16 beats; pieces in 3/4 or 6/8 are cut in 4-beat groups all the same), pitches MIDI
    ``PITCH_LOW`` = 24 .. ``PITCH_HIGH`` = 107 (84, as MuseGAN).  Training samples start at
    every bar (hop 16 steps), validation and test samples do not overlap (hop 64); a
    sample whose melody is silent is dropped.

Split (fixed, by piece)
    ``sha256(corpus path) mod 10``: 0 test, 1 validation, else train -- so no bar of a
    test piece is ever trained on.

Cache
    Every piece's parse result ships in ``data/datasets/gan-NAME-vN.*`` (only pieces it lacks
    are parsed), and a built data set is stored in
    ``$CAPSULE_HOME/cache/gan/NAME-vN.npz`` (notes) + ``.json`` (pieces); a second build
    loads in well under a second.  Other sources (the Lakh Pianoroll Dataset, a folder of
    MIDI files) make the same :class:`MultitrackDataset` (see :mod:`.external`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import CapsuleError
from ..m21 import parse_corpus
from ._corpus import (
    SPLITS,
    CorpusParse,
    SplitByPiece,
    cached_dataset,
    check_fold,
    check_limit,
    dropped_meta,
    read_dropped,
    read_packed,
    split_of,
    split_rule,
    write_packed,
)

__all__ = [
    "GenreSpec",
    "GENRES",
    "Piece",
    "MultitrackDataset",
    "build_genre_dataset",
    "genre_paths",
    "split_of",
    "PITCH_LOW",
    "PITCH_HIGH",
    "N_PITCHES",
    "N_BARS",
    "STEPS_PER_BAR",
    "SAMPLE_STEPS",
    "RESOLUTION",
]

PITCH_LOW = 24
PITCH_HIGH = 107
N_PITCHES = PITCH_HIGH - PITCH_LOW + 1
RESOLUTION = 4
N_BARS = 4
STEPS_PER_BAR = 16
SAMPLE_STEPS = N_BARS * STEPS_PER_BAR
CACHE_VERSION = 1


@dataclass(frozen=True)
class GenreSpec:
    """What a genre data set holds: track names, default General MIDI programs, drum flags."""

    name: str
    description: str
    tracks: tuple[str, ...]
    programs: tuple[int, ...]
    is_drum: tuple[bool, ...] = ()

    def __post_init__(self):
        if not self.is_drum:
            object.__setattr__(self, "is_drum", (False,) * len(self.tracks))
        if not len(self.tracks) == len(self.programs) == len(self.is_drum) or len(self.tracks) < 2:
            raise CapsuleError(f"genre {self.name}: tracks, programs and drum flags must match (>= 2 tracks)")
        if self.is_drum[0]:
            raise CapsuleError(f"genre {self.name}: the first track is the melody and cannot be drums")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "tracks": list(self.tracks),
            "programs": list(self.programs),
            "is_drum": list(self.is_drum),
        }

    @classmethod
    def from_dict(cls, d: dict) -> GenreSpec:
        return cls(
            d["name"],
            d.get("description", ""),
            tuple(d["tracks"]),
            tuple(int(p) for p in d["programs"]),
            tuple(bool(x) for x in d.get("is_drum", [False] * len(d["tracks"]))),
        )


GENRES: dict[str, GenreSpec] = {
    "chorale": GenreSpec(
        "chorale", "Bach chorales (music21 corpus)", ("soprano", "alto", "tenor", "bass"), (52, 52, 52, 52)
    ),  # choir aahs
    "quartet": GenreSpec(
        "quartet",
        "Haydn, Mozart and Beethoven string quartets (music21 corpus)",
        ("violin 1", "violin 2", "viola", "cello"),
        (40, 40, 41, 42),
    ),
    "renaissance": GenreSpec(
        "renaissance",
        "Palestrina and Monteverdi vocal polyphony (music21 corpus)",
        ("cantus", "altus", "tenor", "bassus"),
        (52, 19, 19, 19),
    ),  # choir, church organ
}


@dataclass(frozen=True)
class Piece:
    """One parsed piece: ``notes`` is an ``(n, 4)`` int32 array of ``(track, start, pitch, duration)``."""

    path: str
    title: str
    split: str
    notes: np.ndarray
    expanded: bool = True
    #: What the split rule hashes (default: ``path``; a Lakh song's id for LPD-5 files).
    key: str = ""

    @property
    def split_key(self) -> str:
        return self.key or self.path

    @property
    def n_steps(self) -> int:
        return int((self.notes[:, 1] + self.notes[:, 3]).max()) if len(self.notes) else 0

    def roll(self, n_tracks: int, length: int | None = None) -> np.ndarray:
        """``(length, n_tracks, N_PITCHES)`` bool: which pitch of the model range sounds."""
        length = self.n_steps if length is None else length
        out = np.zeros((length, n_tracks, N_PITCHES), bool)
        for t, s, p, d in self.notes:
            if PITCH_LOW <= p <= PITCH_HIGH and s < length:
                out[s : min(s + d, length), t, p - PITCH_LOW] = True
        return out


@dataclass
class MultitrackDataset(SplitByPiece):
    """Pieces of one genre, split by piece, cut into 4-bar multi-track samples."""

    spec: GenreSpec
    pieces: list
    skipped: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)
    source: str = ""
    cache_path: Path | None = None
    fold: int = 0

    @property
    def n_tracks(self) -> int:
        return len(self.spec.tracks)

    def with_fold(self, fold: int) -> MultitrackDataset:
        """The same pieces split as fold ``fold`` of a 10-fold cross-validation.

        Bucket ``fold`` of ``sha256(split key) mod 10`` is the test split and the next bucket
        the validation split (see :func:`~capsule_lib.datasets._corpus.split_of`); fold 0 is
        the fixed split every data set starts with.
        """
        fold = check_fold(fold)
        pieces = [replace(p, split=split_of(p.split_key, fold)) for p in self.pieces]
        return replace(self, pieces=pieces, fold=fold)

    def samples(self, split: str, hop: int | None = None, *, with_pieces: bool = False):
        """``(n, n_tracks, SAMPLE_STEPS, N_PITCHES)`` bool samples of one split.

        ``hop`` defaults to one bar for ``"train"`` and a whole sample otherwise; samples
        with a silent melody are dropped.  With ``with_pieces`` also returns, per sample,
        the index of its piece in :meth:`split` (``(n,)`` int).
        """
        hop = (STEPS_PER_BAR if split == "train" else SAMPLE_STEPS) if hop is None else int(hop)
        if hop < 1:
            raise CapsuleError(f"hop must be at least 1 step, got {hop}")
        out, owner = [], []
        for k, piece in enumerate(self.split(split)):
            n = piece.n_steps
            if n == 0:
                continue
            length = max(SAMPLE_STEPS, -(-n // STEPS_PER_BAR) * STEPS_PER_BAR)
            roll = piece.roll(self.n_tracks, length)
            for s in range(0, length - SAMPLE_STEPS + 1, hop):
                window = roll[s : s + SAMPLE_STEPS]
                if window[:, 0].any():
                    out.append(window.transpose(1, 0, 2))
                    owner.append(k)
        stacked = np.stack(out) if out else np.zeros((0, self.n_tracks, SAMPLE_STEPS, N_PITCHES), bool)
        return (stacked, np.asarray(owner, np.int64)) if with_pieces else stacked

    def summary(self) -> dict:
        out = {
            "genre": self.spec.name,
            "source": self.source or self.spec.description,
            "tracks": list(self.spec.tracks),
            "pieces": len(self.pieces),
            "skipped": len(self.skipped),
            "duplicates": len(self.duplicates),
            "pitch_range": [PITCH_LOW, PITCH_HIGH],
            "sample": f"{N_BARS} bars x {STEPS_PER_BAR} steps (4 per beat)",
            "split_rule": split_rule(self.fold),
            "fold": self.fold,
        }
        for name in SPLITS:
            pieces = self.split(name)
            out[name] = {"pieces": len(pieces), "notes": int(sum(len(p.notes) for p in pieces))}
        return out


# --------------------------------------------------------------------------- sources


def genre_paths(name: str) -> list[str]:
    """The corpus paths of a music21 genre, in a fixed order."""
    if name not in GENRES:
        raise CapsuleError(f"unknown genre {name!r} (expected {', '.join(GENRES)})")
    from music21 import corpus

    def rel(p) -> str:
        s = str(p).replace("\\", "/")
        return s.split("/corpus/", 1)[-1]

    if name == "chorale":
        return list(dict.fromkeys(corpus.chorales.Iterator(returnType="filename")))
    if name == "quartet":
        paths = [rel(p) for c in ("haydn", "mozart", "beethoven") for p in corpus.getComposer(c)]
        mxl = {p.rsplit(".", 1)[0] for p in paths if p.endswith(".mxl")}
        return sorted(p for p in paths if p.endswith(".mxl") or (p.endswith(".krn") and p.rsplit(".", 1)[0] not in mxl))
    paths = [rel(p) for p in corpus.getComposer("monteverdi") if str(p).endswith(".mxl")]
    paths += [
        rel(p)
        for p in corpus.getComposer("palestrina")
        if int(hashlib.sha256(rel(p).encode("utf-8")).hexdigest(), 16) % 3 == 0
    ]
    return sorted(paths)


def score_to_notes(score, min_parts: int = 4) -> np.ndarray:
    """``(track, start, pitch, duration)`` rows: highest part as track 0, then the three lowest.

    Parts are ordered by mean pitch; drum parts and empty parts are ignored.  Raises
    :class:`CapsuleError` if fewer than ``min_parts`` pitched parts have notes.
    """
    parts = [t for t in score.tracks if not t.is_drum and t.notes]
    if len(parts) < min_parts:
        raise CapsuleError(f"{len(parts)} pitched parts (need {min_parts})")
    parts.sort(key=lambda t: -float(np.mean([n.pitch for n in t.notes])))
    chosen = [parts[0]] + parts[-(min_parts - 1) :]
    rows = [(i, n.start, n.pitch, n.duration) for i, t in enumerate(chosen) for n in t.notes]
    return np.asarray(sorted(set(rows)), dtype=np.int32)


def _parse_one(path: str) -> dict:
    try:
        score, expanded = parse_corpus(path, resolution=RESOLUTION)
        notes = score_to_notes(score)
        return {"path": path, "title": score.title or path, "expanded": expanded, "notes": notes}
    except Exception as exc:
        return {"path": path, "error": f"{type(exc).__name__}: {exc}"[:200]}


# --------------------------------------------------------------------------- cache


def _cache_stem(name: str, paths: Sequence[str], full: bool) -> Path:
    from ..paths import capsule_home

    key = "all" if full else hashlib.sha256("\n".join(paths).encode("utf-8")).hexdigest()[:12]
    return capsule_home() / "cache" / "gan" / f"{name}-v{CACHE_VERSION}-{key}"


def save_dataset(stem: Path, ds: MultitrackDataset) -> None:
    """Write ``stem.npz`` (notes) then ``stem.json`` (pieces; marks the cache complete)."""
    meta = {
        "version": CACHE_VERSION,
        "spec": ds.spec.to_dict(),
        "source": ds.source,
        "pieces": [
            {
                "path": p.path,
                "title": p.title,
                "split": p.split,
                "expanded": p.expanded,
                **({"key": p.key} if p.key else {}),
            }
            for p in ds.pieces
        ],
        **dropped_meta(ds),
    }
    write_packed(stem, "notes", [p.notes for p in ds.pieces], meta, dtype=np.int32, row_shape=(4,), indent=1)


def load_dataset(stem: Path) -> MultitrackDataset | None:
    """The dataset cached at ``stem``, or None if missing, damaged or of another version."""
    packed = read_packed(stem, "notes", version=CACHE_VERSION, items="pieces")
    if packed is None:
        return None
    meta, notes = packed
    try:
        pieces = [
            Piece(p["path"], p["title"], p["split"], n.astype(np.int32), p.get("expanded", True), p.get("key", ""))
            for p, n in zip(meta["pieces"], notes)
        ]
        return MultitrackDataset(
            GenreSpec.from_dict(meta["spec"]),
            pieces,
            *read_dropped(meta),
            meta.get("source", ""),
            stem.with_suffix(".npz"),
        )
    except (ValueError, KeyError, TypeError):
        return None


def build_genre_dataset(
    name: str,
    force: bool = False,
    progress: bool = True,
    *,
    limit: int | None = None,
    paths: Sequence[str] | None = None,
    workers: int | None = None,
) -> MultitrackDataset:
    """Parse one genre of music21's corpus (or load it from the cache), split by piece.

    ``limit`` parses only the first paths (quick runs, tests); ``paths`` chooses them.
    """
    if name not in GENRES:
        raise CapsuleError(f"unknown genre {name!r} (expected {', '.join(GENRES)})")
    check_limit(limit)
    chosen = list(dict.fromkeys(paths)) if paths is not None else genre_paths(name)
    full = paths is None and limit is None
    if limit is not None:
        chosen = chosen[:limit]
    if not chosen:
        raise CapsuleError(f"no {name} pieces to load")

    def parse() -> MultitrackDataset:
        parsing = CorpusParse(f"gan-{name}", CACHE_VERSION, _parse_one, "notes", f"parsing {name} pieces")
        kept, skipped, duplicates = parsing.unique(chosen, force=force, workers=workers, progress=progress)
        if not kept:
            raise CapsuleError(
                f"none of the {len(chosen)} {name} pieces could be used (first problem: {skipped[0][1]})"
            )
        pieces = [Piece(r["path"], r["title"], split_of(r["path"]), r["notes"], r["expanded"]) for r in kept]
        return MultitrackDataset(GENRES[name], pieces, skipped, duplicates, GENRES[name].description)

    return cached_dataset(
        _cache_stem(name, chosen, full), force=force, load=load_dataset, save=save_dataset, build=parse
    )
