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

Whole-score metrics (the music yardstick of ``bench/bench_music.py``), each on the binary
roll of all non-drum tracks at ``resolution`` = 4 steps per beat (the score is re-gridded
first, so a MIDI file read at any resolution gives the same figures):

``polyphony``
    Mean number of distinct sounding pitches over the steps where anything sounds
    (a melody: 1; a four-part chorale: about 4).
``clash_rate``
    Share of sounding steps holding two pitches 1, 11 or 13 semitones apart (minor
    second, major seventh, minor ninth: the intervals a chorale treats as dissonances
    to be prepared and resolved, so they are rare -- about 5 % of Bach's steps).
``in_key_rate``
    Share of note onsets whose pitch class lies in the scale of the key that best
    fits the whole piece (:func:`best_key`): the major scale, or for a minor key the
    natural and harmonic minor together (8 pitch classes: the raised leading note is
    part of the key).
``parallels_per_100``
    Voices are the non-drum tracks, each read as its highest sounding pitch per step.
    A *joint move* of two voices is a step at which both sound, both sounded at the
    step before, and both changed pitch in the same direction; a *parallel* is a joint
    move that keeps a perfect fifth or an octave/unison (``|a - b| mod 12`` in {7, 0},
    the same before and after).  Parallels per 100 joint moves, pooled over every pair
    of voices (:func:`voice_motion` gives the two counts, for pooling over pieces).
    Bach's chorales: about 0.1 (Fux's rule against parallel perfect consonances).

Every function returns ``nan`` where a metric is undefined (e.g. pitches used of a
silent track), never raises for an empty track.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .errors import CapsuleError
from .keys import best_key, key_scale
from .score import Score, Track

#: The per-track metric keys (pitched tracks) in the order tables show them.
METRICS = (
    "empty_bar_rate",
    "pitches_used",
    "pitch_classes_used",
    "polyphonic_rate",
    "in_scale_ratio",
    "qualified_note_rate",
)

__all__ = [
    "METRICS",
    *METRICS,  # each metric key is the name of its function
    "drum_in_pattern_rate",
    "tonal_distance",
    "track_metrics",
    "score_metrics",
    "mean_metrics",
    "YARDSTICK_RESOLUTION",
    "sounding_roll",
    "polyphony",
    "clash_rate",
    "best_key",  # defined in capsule_lib.keys, with the editor's key finding
    "key_scale",
    "in_key_rate",
    "voice_lines",
    "voice_motion",
    "parallels_per_100",
    "mean_pitch",
    "above_melody_rate",
    "in_range_rate",
    "rolls_empty_bar_rate",
    "rolls_pitches_used",
    "rolls_polyphonic_rate",
]


_SCALES = np.stack([key_scale((k, "major")) for k in range(12)])  # row k: the major scale on pitch class k


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
        roll[n.start : min(n.end, n_steps), n.pitch] = True
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
    return float(rolls_empty_bar_rate(bars))


def _per_bar_used(score: Score, track, classes: bool, n_bars: int | None = None) -> float:
    bars = _bars(score, _track(score, track), n_bars)
    return float(rolls_pitches_used(bars, classes=classes))


def pitches_used(score: Score, track=0, n_bars: int | None = None) -> float:
    return _per_bar_used(score, track, classes=False, n_bars=n_bars)


def pitch_classes_used(score: Score, track=0, n_bars: int | None = None) -> float:
    return _per_bar_used(score, track, classes=True, n_bars=n_bars)


def polyphonic_rate(score: Score, track=0, threshold: int = 2) -> float:
    if threshold < 1:
        raise CapsuleError(f"threshold must be at least 1, got {threshold}")
    t = _track(score, track)
    return float(rolls_polyphonic_rate(_active(t, t.end), threshold))


# The three metrics above on bool piano rolls with any leading axes (samples, tracks, ...), so a
# caller that scores thousands of rolls -- the GAN decoder's calibration -- builds no Score.  Pitch
# index 0 must be a C (MIDI 0, or the GAN grid's 24) for pitch classes; NaN where undefined.


def rolls_empty_bar_rate(bars: np.ndarray) -> np.ndarray:
    """``(..., bars, steps, pitches)`` -> ``(...)``: the share of bars without a sounding cell."""
    return (~np.asarray(bars, bool).any(axis=(-2, -1))).mean(axis=-1)


def rolls_pitches_used(bars: np.ndarray, classes: bool = False) -> np.ndarray:
    """``(..., bars, steps, pitches)`` -> ``(...)``: distinct pitches (``classes``: pitch classes)
    sounding per bar, averaged over the non-empty bars."""
    used = np.asarray(bars, bool).any(axis=-2)  # (..., bars, pitches)
    if classes:
        pad = (-used.shape[-1]) % 12
        padded = np.pad(used, [(0, 0)] * (used.ndim - 1) + [(0, pad)])
        used = padded.reshape(*used.shape[:-1], -1, 12).any(axis=-2)
    counts = used.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts.sum(axis=-1) / (counts > 0).sum(axis=-1)


def rolls_polyphonic_rate(roll: np.ndarray, threshold: int = 2) -> np.ndarray:
    """``(..., steps, pitches)`` -> ``(...)``: of the sounding steps, the share with ``threshold`` or more pitches."""
    counts = np.asarray(roll, bool).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts >= threshold).sum(axis=-1) / (counts > 0).sum(axis=-1)


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
    phi = np.stack(
        [
            np.sin(pc * 7 * np.pi / 6),
            np.cos(pc * 7 * np.pi / 6),
            np.sin(pc * 3 * np.pi / 2),
            np.cos(pc * 3 * np.pi / 2),
            0.5 * np.sin(pc * 2 * np.pi / 3),
            0.5 * np.cos(pc * 2 * np.pi / 3),
        ]
    )  # (6, 12)
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
        return {
            "empty_bar_rate": empty_bar_rate(score, track, n_bars),
            "drum_in_pattern_rate": drum_in_pattern_rate(score, track),
        }
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
    out = {
        "tracks": {names[i]: track_metrics(score, i, n_bars) for i in range(len(score.tracks))},
        "tonal_distance": {},
    }
    pitched = [i for i, t in enumerate(score.tracks) if not t.is_drum]
    for x, i in enumerate(pitched):
        for j in pitched[x + 1 :]:
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


# --------------------------------------------------------------------------- whole-score metrics

#: Steps per beat of the whole-score metrics' roll (16th notes).
YARDSTICK_RESOLUTION = 4
#: Semitone distances that count as a clash: minor second, major seventh, minor ninth.
CLASH_INTERVALS = (1, 11, 13)
#: Interval classes (``|a - b| mod 12``) of the perfect consonances: unison/octave and fifth.
PERFECT_INTERVALS = (0, 7)


def _regrid(score: Score, resolution: int) -> Score:
    if not isinstance(score, Score):
        raise CapsuleError(f"metrics need a Score, not {type(score).__name__}")
    return score.with_resolution(int(resolution))


def _pitched_tracks(score: Score) -> list[Track]:
    return [t for t in score.tracks if not t.is_drum]


def sounding_roll(score: Score, resolution: int = YARDSTICK_RESOLUTION) -> np.ndarray:
    """``(steps, 128)`` bool: which pitches sound at each step, all non-drum tracks merged."""
    s = _regrid(score, resolution)
    roll = np.zeros((s.end, 128), bool)
    for t in _pitched_tracks(s):
        for n in t.notes:
            roll[n.start : n.end, n.pitch] = True
    return roll


def polyphony(score: Score, resolution: int = YARDSTICK_RESOLUTION) -> float:
    """Mean number of distinct sounding pitches over the steps where anything sounds."""
    counts = sounding_roll(score, resolution).sum(axis=1)
    counts = counts[counts > 0]
    return float(counts.mean()) if len(counts) else math.nan


def _clashing_steps(roll: np.ndarray) -> np.ndarray:
    out = np.zeros(len(roll), bool)
    for d in CLASH_INTERVALS:
        out |= (roll[:, d:] & roll[:, :-d]).any(axis=1)
    return out


def clash_rate(score: Score, resolution: int = YARDSTICK_RESOLUTION) -> float:
    """Share of sounding steps holding two pitches 1, 11 or 13 semitones apart."""
    roll = sounding_roll(score, resolution)
    sounding = roll.any(axis=1)
    if not sounding.any():
        return math.nan
    return float(_clashing_steps(roll)[sounding].mean())


def in_key_rate(score: Score, key: tuple[int, str] | None = None) -> float:
    """Share of note onsets (all non-drum tracks) whose pitch class is in ``key``'s scale.

    ``key`` defaults to :func:`best_key` of the score itself; pass another piece's key to
    ask whether this music stays in *that* key (an extension in its prompt's key).
    """
    key = best_key(score) if key is None else key
    pcs = [n.pitch % 12 for t in _pitched_tracks(score) for n in t.notes]
    if key is None or not pcs:
        return math.nan
    return float(key_scale(key)[pcs].mean())


def voice_lines(score: Score, resolution: int = YARDSTICK_RESOLUTION) -> np.ndarray:
    """``(voices, steps)`` int: per non-drum track its highest sounding pitch per step, -1 in rests."""
    s = _regrid(score, resolution)
    tracks = _pitched_tracks(s)
    lines = np.full((len(tracks), s.end), -1, np.int64)
    for v, t in enumerate(tracks):
        for n in t.notes:
            seg = lines[v, n.start : n.end]
            np.maximum(seg, n.pitch, out=seg)
    return lines


def voice_motion(lines: np.ndarray) -> tuple[int, int]:
    """``(parallels, joint_moves)`` over every pair of ``(voices, steps)`` lines (-1 = rest).

    See the module notes: a joint move is a step where two voices both sound now and
    before and both move the same way; a parallel keeps ``|a - b| mod 12`` at 0 or 7.
    """
    lines = np.asarray(lines, np.int64)
    if lines.ndim != 2:
        raise CapsuleError(f"voice lines must be (voices, steps), got shape {lines.shape}")
    before, after = lines[:, :-1], lines[:, 1:]
    sounding = (before >= 0) & (after >= 0)
    move = np.where(sounding, np.sign(after - before), 0)
    parallels = joint = 0
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            both = (move[i] != 0) & (move[i] == move[j])
            iv0 = np.abs(before[i] - before[j]) % 12
            iv1 = np.abs(after[i] - after[j]) % 12
            perfect = np.isin(iv0, PERFECT_INTERVALS) & (iv0 == iv1)
            joint += int(both.sum())
            parallels += int((both & perfect).sum())
    return parallels, joint


def parallels_per_100(score: Score, resolution: int = YARDSTICK_RESOLUTION) -> float:
    """Parallel fifths and octaves per 100 joint moves of two voices (NaN without any joint move)."""
    parallels, joint = voice_motion(voice_lines(score, resolution))
    return 100.0 * parallels / joint if joint else math.nan


def mean_pitch(score: Score) -> float:
    """Mean MIDI pitch of the notes of all non-drum tracks (each note once)."""
    pitches = [n.pitch for t in _pitched_tracks(score) for n in t.notes]
    return float(np.mean(pitches)) if pitches else math.nan


def above_melody_rate(score: Score, track, melody=0, resolution: int = YARDSTICK_RESOLUTION) -> float:
    """Share of the steps where ``track`` and the ``melody`` track both sound at which the track's
    highest pitch lies above the melody's (an accompaniment part crossing over the tune)."""
    s = _regrid(score, resolution)
    a, m = s.track_index(track), s.track_index(melody)
    lines = np.full((2, s.end), -1, np.int64)
    for v, t in enumerate((s.tracks[a], s.tracks[m])):
        for n in t.notes:
            seg = lines[v, n.start : n.end]
            np.maximum(seg, n.pitch, out=seg)
    both = (lines >= 0).all(axis=0)
    return float((lines[0, both] > lines[1, both]).mean()) if both.any() else math.nan


def in_range_rate(score: Score, track, pitch_range: tuple[int, int]) -> float:
    """Share of the track's notes whose pitch lies in ``pitch_range`` (inclusive MIDI numbers)."""
    t = _track(score, track)
    if not t.notes:
        return math.nan
    low, high = pitch_range
    return float(np.mean([low <= n.pitch <= high for n in t.notes]))
