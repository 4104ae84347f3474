"""Score ⇄ piano roll (numpy arrays of shape time × 128 pitches).

A piano roll cell holds the velocity of the note sounding there (0 = silence).
A roll alone cannot tell two repeated notes of one pitch from one long note, so
:func:`to_onsets` gives the matching onset mask; passing it back to
:func:`from_pianoroll` makes ``score → roll → score`` exact on the grid.  Without
onsets, each unbroken run of a pitch becomes one note (what models produce).
Two notes of the *same pitch overlapping in time* in one track cannot be drawn
in a roll; they merge.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import CapsuleError
from .score import MODEL_RESOLUTION, Note, Score, Track

__all__ = [
    "to_pianoroll",
    "to_onsets",
    "to_multitrack_pianoroll",
    "to_multitrack_onsets",
    "from_pianoroll",
    "from_multitrack_pianoroll",
    "track_from_pianoroll",
]

N_PITCHES = 128


def _length(score: Score, length: int | None) -> int:
    return score.end if length is None else int(length)


def _tracks(score: Score, track: int | str | None) -> list[Track]:
    if track is None:
        return [t for t in score.tracks if not t.is_drum]
    return [score.tracks[score.track_index(track)]]


def to_pianoroll(
    score: Score, track: int | str | None = 0, *, length: int | None = None, binary: bool = False
) -> np.ndarray:
    """The roll of one track (or of all non-drum tracks merged, ``track=None``).

    Returns a ``(length, 128)`` array: ``uint8`` velocities, or ``bool`` if
    ``binary``.  ``length`` defaults to the score's end; notes beyond it are cut.
    """
    T = _length(score, length)
    roll = np.zeros((T, N_PITCHES), dtype=np.uint8)
    for t in _tracks(score, track):
        for n in t.notes:
            if n.start < T:
                seg = roll[n.start : min(n.end, T), n.pitch]
                np.maximum(seg, n.velocity, out=seg)
    return roll > 0 if binary else roll


def to_onsets(score: Score, track: int | str | None = 0, *, length: int | None = None) -> np.ndarray:
    """Boolean ``(length, 128)`` mask of the steps where a note starts."""
    T = _length(score, length)
    onsets = np.zeros((T, N_PITCHES), dtype=bool)
    for t in _tracks(score, track):
        for n in t.notes:
            if n.start < T:
                onsets[n.start, n.pitch] = True
    return onsets


def to_multitrack_pianoroll(score: Score, *, length: int | None = None, binary: bool = False) -> np.ndarray:
    """A ``(n_tracks, length, 128)`` stack, one roll per track in score order."""
    T = _length(score, length)
    rolls = [to_pianoroll(score, i, length=T, binary=binary) for i in range(len(score.tracks))]
    dtype = bool if binary else np.uint8
    return np.stack(rolls) if rolls else np.zeros((0, T, N_PITCHES), dtype=dtype)


def to_multitrack_onsets(score: Score, *, length: int | None = None) -> np.ndarray:
    T = _length(score, length)
    masks = [to_onsets(score, i, length=T) for i in range(len(score.tracks))]
    return np.stack(masks) if masks else np.zeros((0, T, N_PITCHES), dtype=bool)


def _check_roll(roll: np.ndarray, ndim: int) -> np.ndarray:
    roll = np.asarray(roll)
    if roll.ndim != ndim or roll.shape[-1] != N_PITCHES:
        want = "(time, 128)" if ndim == 2 else "(tracks, time, 128)"
        raise CapsuleError(f"a piano roll must have shape {want}, got {roll.shape}")
    return roll


def track_from_pianoroll(
    roll: np.ndarray,
    onsets: np.ndarray | None = None,
    *,
    velocity: int = 100,
    name: str = "melody",
    program: int = 0,
    is_drum: bool = False,
) -> Track:
    """Notes from one ``(time, 128)`` roll.  Boolean/float rolls use ``velocity``."""
    roll = _check_roll(roll, 2)
    if onsets is not None and np.shape(onsets) != roll.shape:
        raise CapsuleError(f"onsets shape {np.shape(onsets)} does not match the roll {roll.shape}")
    active = roll > (0.5 if roll.dtype.kind == "f" else 0)
    use_values = roll.dtype.kind in "iu"
    T = roll.shape[0]
    notes = []
    for pitch in np.flatnonzero(active.any(axis=0)):
        col = active[:, pitch]
        prev = np.concatenate(([False], col[:-1]))
        starts_mask = col & ~prev
        if onsets is not None:
            starts_mask |= col & np.asarray(onsets[:, pitch], dtype=bool)
        starts = np.flatnonzero(starts_mask)
        # A note ends at the next start or the first silent step, whichever comes first.
        silent = np.flatnonzero(~col)
        for i, s in enumerate(starts):
            nxt_start = starts[i + 1] if i + 1 < len(starts) else T
            k = np.searchsorted(silent, s)
            nxt_silent = silent[k] if k < len(silent) else T
            end = min(nxt_start, nxt_silent)
            vel = int(roll[s, pitch]) if use_values else velocity
            notes.append(Note(int(s), int(pitch), int(end - s), max(1, min(127, vel))))
    return Track(name=name, program=program, is_drum=is_drum, notes=tuple(notes))


def from_pianoroll(
    roll: np.ndarray,
    onsets: np.ndarray | None = None,
    *,
    resolution: int = MODEL_RESOLUTION,
    tempo: float = 120.0,
    time_signature: tuple[int, int] = (4, 4),
    velocity: int = 100,
    name: str = "melody",
    program: int = 0,
    is_drum: bool = False,
) -> Score:
    """A one-track score from a ``(time, 128)`` roll (and optional onset mask)."""
    track = track_from_pianoroll(roll, onsets, velocity=velocity, name=name, program=program, is_drum=is_drum)
    return Score(tracks=(track,), tempo=tempo, time_signature=time_signature, resolution=resolution)


def from_multitrack_pianoroll(
    rolls: np.ndarray,
    onsets: np.ndarray | None = None,
    *,
    names: Sequence[str] | None = None,
    programs: Sequence[int] | None = None,
    drums: Sequence[bool] | None = None,
    resolution: int = MODEL_RESOLUTION,
    tempo: float = 120.0,
    time_signature: tuple[int, int] = (4, 4),
    velocity: int = 100,
) -> Score:
    """A score from a ``(tracks, time, 128)`` stack, with per-track names, programs and drum flags."""
    rolls = _check_roll(rolls, 3)
    n = rolls.shape[0]
    names = list(names) if names is not None else [f"track {i + 1}" for i in range(n)]
    programs = list(programs) if programs is not None else [0] * n
    drums = list(drums) if drums is not None else [False] * n
    if not len(names) == len(programs) == len(drums) == n:
        raise CapsuleError(f"names, programs and drums must each have {n} entries, one per track")
    tracks = tuple(
        track_from_pianoroll(
            rolls[i],
            None if onsets is None else onsets[i],
            velocity=velocity,
            name=names[i],
            program=programs[i],
            is_drum=drums[i],
        )
        for i in range(n)
    )
    return Score(tracks=tracks, tempo=tempo, time_signature=time_signature, resolution=resolution)
