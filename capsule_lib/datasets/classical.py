"""Classical pieces from music21's bundled corpus, rendered as performance token sequences.

Used to train the Transformer (the tokens: :mod:`capsule_lib.performance`).

Composers (all offline, in ``music21.corpus``)
    ``COMPOSERS`` lists the corpus folders used: Renaissance to early 20th century art
    music.  Folk-song collections (essenFolksong, ryansMammoth, oneills1850, airdsAirs,
    miscFolk, nottingham-dataset), ragtime and songs (joplin, johnson_j_r, liliuokalani),
    lead sheets, demos and theory exercises are left out.  Roman-numeral analyses
    (``.rntxt``: chord labels, not music) are left out too.

Cap per composer
    At most ``MAX_PER_COMPOSER`` = 100 pieces per composer, so the 400-odd Bach pieces
    (mostly chorales) and the 1,318 Palestrina mass movements do not dominate.  Which
    pieces are kept is fixed: the first 100 in ``sha256(corpus path)`` order.  The piece
    list interleaves composers round-robin (each in that hash order), so ``limit=30``
    gives a mix rather than 30 chorales.

Rendering
    Each piece is parsed (an ABC ``Opus`` of one score per voice is merged into one
    score; repeats expanded when music21 can; else kept as written), all
    non-percussion parts are merged into one Score by :func:`capsule_lib.m21.from_music21`
    at 24 steps per beat, and encoded by :func:`capsule_lib.performance.encode` at the piece's tempo: its
    music21 metronome marks when it has any (the first mark, wherever it is, sets the
    opening tempo; later marks are tempo changes), else ``DEFAULT_TEMPO`` = 100 bpm.
    Velocities come from the score (dynamics) or music21's default.

Skipping
    A piece is skipped and counted (``skipped``, with the reason) when it fails to parse,
    has no notes in range, is larger than ``MAX_FILE_BYTES`` or takes longer than
    ``PIECE_TIMEOUT_S`` seconds (Unix).  Pieces whose token sequence equals an earlier
    piece's are dropped as ``duplicates`` so no music sits in two splits.

Split (fixed, by piece)
    ``sha256(corpus path) mod 10``: 0 -> ``"test"``, 1 -> ``"validation"``, anything else
    -> ``"train"`` (the rule of :mod:`capsule_lib.datasets.bach`); the corpus path is
    relative to the corpus folder, e.g. ``"bach/bwv269.mxl"``.

Cache
    ``$CAPSULE_HOME/cache/classical/<key>.npz`` (one flat int16 token array plus
    offsets) and ``<key>.json`` (per-piece metadata), keyed by a hash of the piece list
    and ``CACHE_VERSION``; a second call loads it in well under a second.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import performance as T
from ..errors import CapsuleError
from ..m21 import expand_repeats, from_music21
from ._corpus import (
    SPLITS,
    CorpusParse,
    SplitByPiece,
    cached_dataset,
    check_limit,
    dropped_meta,
    read_dropped,
    read_packed,
    split_of,
    write_packed,
)

__all__ = [
    "COMPOSERS",
    "MAX_PER_COMPOSER",
    "DEFAULT_TEMPO",
    "SPLITS",
    "Piece",
    "ClassicalDataset",
    "corpus_root",
    "classical_paths",
    "split_of",
    "build_classical_dataset",
    "transpose_tokens",
    "stretch_tokens",
    "augment",
]

COMPOSERS = (
    "bach",
    "beach",
    "beethoven",
    "chopin",
    "ciconia",
    "corelli",
    "cpebach",
    "handel",
    "haydn",
    "josquin",
    "luca",
    "lusitano",
    "monteverdi",
    "mozart",
    "palestrina",
    "schoenberg",
    "schubert",
    "schumann_clara",
    "schumann_robert",
    "trecento",
    "verdi",
    "weber",
    "webern",
)
MAX_PER_COMPOSER = 100
DEFAULT_TEMPO = 100.0
RESOLUTION = 24
MAX_FILE_BYTES = 4_000_000
PIECE_TIMEOUT_S = 120
_EXTENSIONS = (".mxl", ".xml", ".musicxml", ".krn", ".abc", ".mid", ".midi")

# Bump when the rendering changes: old caches are rebuilt.
CACHE_VERSION = 1


@dataclass(frozen=True)
class Piece:
    """One rendered piece: corpus ``path``, ``composer``, ``split``, ``tokens`` (int16, with START), ``seconds``."""

    path: str
    composer: str
    split: str
    tokens: np.ndarray
    seconds: float
    tempo: float = DEFAULT_TEMPO
    title: str = ""


@dataclass
class ClassicalDataset(SplitByPiece):
    """The rendered pieces plus what happened while parsing.

    ``skipped`` holds ``(path, reason)``; ``duplicates`` holds ``(path, kept_path)``.
    """

    pieces: list
    skipped: list
    duplicates: list
    cache_path: Path | None = None

    def tokens(self, split: str) -> list[np.ndarray]:
        """The token arrays of one split."""
        return [p.tokens for p in self.split(split)]

    def summary(self) -> dict:
        out: dict = {
            "pieces": len(self.pieces),
            "tokens": int(sum(len(p.tokens) for p in self.pieces)),
            "seconds": round(float(sum(p.seconds for p in self.pieces)), 2),
            "skipped": len(self.skipped),
            "duplicates": len(self.duplicates),
            "composers": dict(sorted(_count(p.composer for p in self.pieces).items())),
            "split_rule": "sha256(corpus path) mod 10: 0 test, 1 validation, else train",
        }
        for name in SPLITS:
            ps = self.split(name)
            out[name] = {
                "pieces": len(ps),
                "tokens": int(sum(len(p.tokens) for p in ps)),
                "seconds": round(float(sum(p.seconds for p in ps)), 2),
            }
        return out


def _count(items) -> dict:
    out: dict = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out


# --------------------------------------------------------------------------- piece list


def corpus_root() -> Path:
    try:
        from music21 import common
    except ImportError:  # pragma: no cover - music21 is a dependency
        raise CapsuleError("music21 is not installed; it provides the classical corpus") from None
    return Path(common.getCorpusFilePath())


def _hash_key(path: str) -> str:
    return hashlib.sha256(path.encode("utf-8")).hexdigest()


def classical_paths(
    composers: Iterable[str] | None = None, *, per_composer: int | None = MAX_PER_COMPOSER
) -> list[str]:
    """Corpus paths (relative, ``/``-separated) of the chosen composers, capped and interleaved."""
    from music21 import corpus

    if composers is None:
        composers = COMPOSERS
    elif isinstance(composers, str):
        composers = [composers]
    root = corpus_root()
    lists = []
    for name in composers:
        try:
            found = corpus.getComposer(str(name))
        except Exception:
            found = []
        rel = sorted(
            {
                Path(p).resolve().relative_to(root.resolve()).as_posix()
                for p in found
                if str(p).lower().endswith(_EXTENSIONS)
            },
            key=_hash_key,
        )
        if not rel:
            raise CapsuleError(f"composer {name!r} has no pieces in music21's corpus")
        lists.append(rel[:per_composer] if per_composer else rel)
    out = []
    for i in range(max((len(x) for x in lists), default=0)):
        out.extend(x[i] for x in lists if i < len(x))
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------- parsing


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):  # pragma: no cover - only on slow pieces
    raise _Timeout()


def render_piece(path: str) -> dict:
    """Parse and render one corpus piece; never raises (errors come back as ``error``)."""
    import signal

    alarm = hasattr(signal, "SIGALRM")
    try:
        if alarm:
            old = signal.signal(signal.SIGALRM, _on_alarm)
            signal.alarm(PIECE_TIMEOUT_S)
    except ValueError:  # not the main thread
        alarm = False
    try:
        full = corpus_root() / path
        if full.stat().st_size > MAX_FILE_BYTES:
            return {"path": path, "error": f"file larger than {MAX_FILE_BYTES} bytes"}
        from music21 import converter, tempo
        from music21 import stream as m21stream

        stream = converter.parse(str(full))
        if isinstance(stream, m21stream.Opus):  # ABC files: one score per voice
            stream = stream.mergeScores() if len(stream.scores) > 1 else stream.scores[0]
        stream, _ = expand_repeats(stream)  # malformed repeats: kept as written
        score = from_music21(stream, resolution=RESOLUTION)
        marks = [m for m in stream.flatten().getElementsByClass(tempo.MetronomeMark) if m.getQuarterBPM()]
        if not marks:
            score = score.replace(tempo=DEFAULT_TEMPO, tempo_changes=())
        elif not any(m.offset == 0 for m in marks):
            first = min(marks, key=lambda m: m.offset)
            score = score.replace(tempo=float(first.getQuarterBPM()))
        stats: dict = {}
        toks = T.encode(score, stats=stats)
        if stats["notes"] == 0:
            return {"path": path, "error": "no notes in range 21-108"}
        return {
            "path": path,
            "title": score.title or path,
            "tempo": float(score.tempo),
            "tokens": np.asarray(toks, dtype=np.int16),
            "seconds": T.total_seconds(toks),
            "dropped": stats["dropped"],
        }
    except _Timeout:
        return {"path": path, "error": f"took longer than {PIECE_TIMEOUT_S} s"}
    except Exception as exc:  # any failure: skipped and counted, never fatal
        return {"path": path, "error": f"{type(exc).__name__}: {exc}"[:200]}
    finally:
        if alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------- cache


def _cache_dir() -> Path:
    from ..paths import capsule_home

    return capsule_home() / "cache" / "classical"


def _cache_key(paths: Sequence[str]) -> str:
    digest = hashlib.sha256("\n".join(paths).encode("utf-8")).hexdigest()[:16]
    return f"classical-v{CACHE_VERSION}-{digest}"


def _load_cache(stem: Path) -> ClassicalDataset | None:
    packed = read_packed(stem, "tokens", version=CACHE_VERSION, items="pieces")
    if packed is None:
        return None  # missing, damaged or outdated: rebuild
    meta, tokens = packed
    pieces = [
        Piece(
            path=p["path"],
            composer=p["composer"],
            split=split_of(p["path"]),
            tokens=t,
            seconds=float(p["seconds"]),
            tempo=float(p["tempo"]),
            title=p["title"],
        )
        for p, t in zip(meta["pieces"], tokens)
    ]
    return ClassicalDataset(pieces, *read_dropped(meta), cache_path=stem.with_suffix(".npz"))


def _write_cache(stem: Path, ds: ClassicalDataset) -> None:
    meta = {
        "version": CACHE_VERSION,
        "pieces": [
            {
                "path": p.path,
                "composer": p.composer,
                "split": p.split,
                "seconds": p.seconds,
                "tempo": p.tempo,
                "title": p.title,
                "n_tokens": len(p.tokens),
            }
            for p in ds.pieces
        ],
        **dropped_meta(ds),
    }
    write_packed(stem, "tokens", [p.tokens for p in ds.pieces], meta, dtype=np.int16, indent=1)


def build_classical_dataset(
    force: bool = False,
    progress: bool = True,
    *,
    limit: int | None = None,
    composers: Iterable[str] | None = None,
    workers: int | None = None,
) -> ClassicalDataset:
    """Render the classical corpus as token sequences (or load them from the cache).

    ``force`` renders again even when a cache exists and ``progress`` shows a progress bar.
    ``limit`` keeps only the first pieces of the (interleaved) piece list, ``composers`` the
    given corpus composer folders (default ``COMPOSERS``).  ``workers`` rendering processes
    run in parallel (default one per CPU core, at most 8, for more than 8 pieces, else 1).

    Raises :class:`CapsuleError` for a bad ``limit``, an unknown composer, or when no piece
    could be rendered.
    """
    check_limit(limit)
    chosen = classical_paths(composers)
    if limit is not None:
        chosen = chosen[:limit]

    def render() -> ClassicalDataset:
        # rendering a piece is slower than parsing a chorale: up to eight processes
        rendering = CorpusParse(
            "classical", CACHE_VERSION, render_piece, "tokens", "rendering classical pieces", max_workers=8
        )
        kept, skipped, duplicates = rendering.unique(chosen, force=force, workers=workers, progress=progress)
        pieces = [
            Piece(
                path=r["path"],
                composer=r["path"].split("/", 1)[0],
                split=split_of(r["path"]),
                tokens=r["tokens"],
                seconds=r["seconds"],
                tempo=r["tempo"],
                title=r["title"],
            )
            for r in kept
        ]
        if not pieces:
            raise CapsuleError(f"none of the {len(chosen)} pieces could be rendered (first error: {skipped[0][1]})")
        return ClassicalDataset(pieces, skipped, duplicates)

    return cached_dataset(
        _cache_dir() / _cache_key(chosen), force=force, load=_load_cache, save=_write_cache, build=render
    )


# --------------------------------------------------------------------------- augmentation


def _as_out(values: list[int], like) -> np.ndarray:
    dtype = like.dtype if isinstance(like, np.ndarray) else np.int64
    return np.asarray(values, dtype=dtype)


def transpose_tokens(tokens, semitones: int) -> np.ndarray:
    """Shift every NOTE_ON/NOTE_OFF by ``semitones``; notes leaving 21..108 are dropped (on and off).

    Returns an array of the input's dtype (int64 for a list).
    """
    s = int(semitones)
    out = []
    for t in T.check_tokens(tokens):
        p = T.token_pitch(t)
        if p is None:
            out.append(t)
        elif T.PITCH_LOW <= p + s <= T.PITCH_HIGH:
            out.append(t + s)
    return _as_out(out, tokens)


def stretch_tokens(tokens, factor: float) -> np.ndarray:
    """Tempo stretch: every event time ``t`` moves to ``round(t * factor)`` on the 10 ms grid.

    Times are rescaled as absolute times (no drift) and the shifts between events are
    re-written greedily; event order is kept.  A note of one tick may shrink to zero
    ticks, which the decoder turns back into a 10 ms note.
    """
    if not factor > 0:
        raise CapsuleError(f"stretch factor {factor} must be positive")
    out: list[int] = []
    now = new_now = 0
    pending = False
    for t in T.check_tokens(tokens):
        if T.is_shift(t):
            now += T.shift_ticks(t)
            pending = True
            continue
        if pending:
            target = int(round(now * factor))
            out.extend(T.shift_tokens(target - new_now))
            new_now = target
            pending = False
        out.append(t)
    if pending:
        target = int(round(now * factor))
        out.extend(T.shift_tokens(target - new_now))
    return _as_out(out, tokens)


def augment(tokens, rng: np.random.Generator | None = None) -> np.ndarray:
    """Random training augmentation: transpose by -3..+3 semitones and stretch by 0.95..1.05."""
    rng = np.random.default_rng() if rng is None else rng
    semitones = int(rng.integers(-3, 4))
    factor = float(rng.uniform(0.95, 1.05))
    return stretch_tokens(transpose_tokens(tokens, semitones), factor)
