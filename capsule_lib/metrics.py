"""Evaluation metrics for generated music, per track, with documented (corrected) definitions.

The DeepComposer sample code took these from MuseGAN (Dong et al., 2018) but computed
several of them inconsistently (e.g. a "qualified note" threshold of three steps that is
a 16th note at its 12 steps per beat, not the 32nd the text claims; rates divided by
silent time steps; a fixed C-major scale for the in-scale ratio).  Here every metric is
defined on the notes of one :class:`~capsule_lib.score.Track` of a score, independent
of the score's resolution:

``empty_bar_rate``
    Bars (of the score's time signature, up to the last bar with any note in the
    *score*, or ``n_bars`` bars where the caller knows the length -- a fixed-size
    sample of 4 bars has 4 bars even when its last bar is silent) in which the track
    has no sounding note, divided by the number of bars.
``pitches_used``
    Distinct MIDI pitches sounding per bar, averaged over the track's non-empty bars.
``pitch_classes_used``
    The same with pitch classes (0-12).
``polyphonic_rate``
    Of the time steps where the track sounds at all, the fraction where at least
    ``threshold`` (default 2) pitches sound together: 0 for a pure melody, near 1 for
    a chorale.  (Silent steps are not counted -- that would mix in the empty bar rate.)
``in_scale_ratio``
    The fraction of the track's sounding note-time (steps x notes) whose pitch class
    lies in the best-fitting diatonic (major or its relative natural minor) scale,
    chosen over all 12 keys.  1.0 for any diatonic melody; chromatic notes lower it.
``qualified_note_rate``
    The fraction of notes at least a 32nd note long (``resolution / 8`` steps, at
    least one step).  Very short notes are the usual artefact of a generator.
``drum_in_pattern_rate``
    (drum tracks) the fraction of hits whose onset falls on the 16th-note grid
    (within a tolerance of a 64th note).
``tonal_distance``
    (between two tracks) the mean over bars where both sound of the Euclidean
    distance between their tonal centroids (Harte, Sandler & Gasser, 2006: each
    bar's duration-weighted chroma, L1-normalised, projected on the circles of
    fifths, minor thirds and major thirds with radii 1, 1, 0.5).

Every function returns ``nan`` where a metric is undefined (e.g. pitches used of a
silent track), never raises for an empty track.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from .errors import CapsuleError
from .score import Score, Track

__all__ = [
    "METRICS",
    "empty_bar_rate",
    "pitches_used",
    "pitch_classes_used",
    "polyphonic_rate",
    "in_scale_ratio",
    "qualified_note_rate",
    "drum_in_pattern_rate",
    "tonal_distance",
    "track_metrics",
    "score_metrics",
    "mean_metrics",
]

#: The per-track metric keys (pitched tracks) in the order tables show them.
METRICS = ("empty_bar_rate", "pitches_used", "pitch_classes_used", "polyphonic_rate", "in_scale_ratio",
           "qualified_note_rate")

_MAJOR = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)
_SCALES = np.stack([np.roll(_MAJOR, k) for k in range(12)])  # row k: the major scale on pitch class k


def _track(score: Score, track) -> Track:
    if not isinstance(score, Score):
        raise CapsuleError(f"metrics need a Score, not {type(score).__name__}")
    return score.tracks[score.track_index(track)]


def _n_bars(score: Score, n_bars: int | None = None) -> int:
    if n_bars is not None:
        if int(n_bars) < 1:
            raise CapsuleError(f"n_bars must be at least 1, got {n_bars}")
        return int(n_bars)
    return max(1, -(-score.end // score.steps_per_bar)) if score.end else 0


def _active(track: Track, n_steps: int) -> np.ndarray:
    """``(n_steps, 128)`` bool: which pitch sounds at each step."""
    roll = np.zeros((n_steps, 128), bool)
    for n in track.notes:
        roll[n.start:min(n.end, n_steps), n.pitch] = True
    return roll


def _bars(score: Score, track: Track, n_bars: int | None = None) -> np.ndarray:
    """``(bars, steps_per_bar, 128)`` bool roll of one track over the score's bars (or ``n_bars``)."""
    n_bars, spb = _n_bars(score, n_bars), score.steps_per_bar
    return _active(track, n_bars * spb).reshape(n_bars, spb, 128)


def empty_bar_rate(score: Score, track=0, n_bars: int | None = None) -> float:
    t = _track(score, track)
    bars = _bars(score, t, n_bars)
    if len(bars) == 0:
        return math.nan
    return float((~bars.any(axis=(1, 2))).mean())


def _per_bar_used(score: Score, track, classes: bool, n_bars: int | None = None) -> float:
    bars = _bars(score, _track(score, track), n_bars)
    used = bars.any(axis=1)  # (bars, 128)
    if classes:
        used = used.reshape(len(used), -1)
        used = np.stack([used[:, pc::12].any(axis=1) for pc in range(12)], axis=1)
    counts = used.sum(axis=1)
    counts = counts[counts > 0]
    return float(counts.mean()) if len(counts) else math.nan


def pitches_used(score: Score, track=0, n_bars: int | None = None) -> float:
    return _per_bar_used(score, track, classes=False, n_bars=n_bars)


def pitch_classes_used(score: Score, track=0, n_bars: int | None = None) -> float:
    return _per_bar_used(score, track, classes=True, n_bars=n_bars)


def polyphonic_rate(score: Score, track=0, threshold: int = 2) -> float:
    if threshold < 1:
        raise CapsuleError(f"threshold must be at least 1, got {threshold}")
    t = _track(score, track)
    counts = _active(t, t.end).sum(axis=1) if t.notes else np.zeros(0)
    sounding = counts[counts > 0]
    return float((sounding >= threshold).mean()) if len(sounding) else math.nan


def in_scale_ratio(score: Score, track=0) -> float:
    t = _track(score, track)
    weight = np.zeros(12)
    for n in t.notes:
        weight[n.pitch % 12] += n.duration
    total = weight.sum()
    if total == 0:
        return math.nan
    return float((_SCALES @ weight).max() / total)


def qualified_note_rate(score: Score, track=0) -> float:
    t = _track(score, track)
    if not t.notes:
        return math.nan
    shortest = max(1, score.resolution // 8)
    return float(np.mean([n.duration >= shortest for n in t.notes]))


def drum_in_pattern_rate(score: Score, track=0) -> float:
    t = _track(score, track)
    if not t.notes:
        return math.nan
    grid = score.resolution / 4
    tolerance = score.resolution / 16
    offsets = np.array([n.start % grid for n in t.notes], dtype=float)
    on_grid = np.minimum(offsets, grid - offsets) <= tolerance + 1e-9
    return float(on_grid.mean())


def _centroids(score: Score, track: Track, n_bars: int | None = None) -> np.ndarray:
    """Per bar: the 6-D tonal centroid, or NaN where the track is silent."""
    n_bars, spb = _n_bars(score, n_bars), score.steps_per_bar
    chroma = np.zeros((n_bars, 12))
    for n in track.notes:
        for b in range(n.start // spb, min(n_bars, -(-n.end // spb))):
            overlap = min(n.end, (b + 1) * spb) - max(n.start, b * spb)
            if overlap > 0:
                chroma[b, n.pitch % 12] += overlap
    pc = np.arange(12)
    phi = np.stack([
        np.sin(pc * 7 * np.pi / 6), np.cos(pc * 7 * np.pi / 6),
        np.sin(pc * 3 * np.pi / 2), np.cos(pc * 3 * np.pi / 2),
        0.5 * np.sin(pc * 2 * np.pi / 3), 0.5 * np.cos(pc * 2 * np.pi / 3),
    ])  # (6, 12)
    total = chroma.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(total > 0, chroma / total, np.nan)
    return norm @ phi.T


def tonal_distance(score: Score, track_a=0, track_b=1, n_bars: int | None = None) -> float:
    a, b = _track(score, track_a), _track(score, track_b)
    ca, cb = _centroids(score, a, n_bars), _centroids(score, b, n_bars)
    both = ~np.isnan(ca).any(axis=1) & ~np.isnan(cb).any(axis=1)
    if not both.any():
        return math.nan
    return float(np.linalg.norm(ca[both] - cb[both], axis=1).mean())


def track_metrics(score: Score, track=0, n_bars: int | None = None) -> dict:
    """Every per-track metric of one track (drum tracks: empty bar rate and drum-in-pattern rate).

    ``n_bars`` fixes the score's length in bars (default: up to its last note).
    """
    t = _track(score, track)
    if t.is_drum:
        return {"empty_bar_rate": empty_bar_rate(score, track, n_bars),
                "drum_in_pattern_rate": drum_in_pattern_rate(score, track)}
    return {
        "empty_bar_rate": empty_bar_rate(score, track, n_bars),
        "pitches_used": pitches_used(score, track, n_bars),
        "pitch_classes_used": pitch_classes_used(score, track, n_bars),
        "polyphonic_rate": polyphonic_rate(score, track),
        "in_scale_ratio": in_scale_ratio(score, track),
        "qualified_note_rate": qualified_note_rate(score, track),
    }


def score_metrics(score: Score, n_bars: int | None = None) -> dict:
    """``{"tracks": {name: metrics}, "tonal_distance": {"a|b": d}}`` for every track and pitched pair."""
    names = [t.name or f"track{i}" for i, t in enumerate(score.tracks)]
    out = {"tracks": {names[i]: track_metrics(score, i, n_bars) for i in range(len(score.tracks))}, "tonal_distance": {}}
    pitched = [i for i, t in enumerate(score.tracks) if not t.is_drum]
    for x, i in enumerate(pitched):
        for j in pitched[x + 1:]:
            out["tonal_distance"][f"{names[i]}|{names[j]}"] = tonal_distance(score, i, j, n_bars)
    return out


def mean_metrics(rows: Sequence[Mapping[str, float]]) -> dict:
    """Average metric dicts key by key, ignoring NaN; keys with no value at all give NaN."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    out = {}
    for k in keys:
        vals = [float(r[k]) for r in rows if k in r and not math.isnan(float(r[k]))]
        out[k] = float(np.mean(vals)) if vals else math.nan
    return out
