"""Corrupting chorale windows, the way the AR-CNN learns what is missing or out of place.

Training shows the model a damaged window and asks for the original.  Three kinds of
damage, all at the level of *notes* (a note is removed or added whole), all drawn from
an explicit ``numpy.random.Generator`` so the same seed gives the same damage:

* **removal** -- a random fraction of the notes disappears (their cells read "silent");
  the model must find the notes that are missing;
* **stray notes** -- notes at random times and pitches near the window's range, with
  durations borrowed from real notes; the model must find the notes that are out of place;
* **hiding** -- a random subset of cells is marked unknown (the visibility channel is 0
  and the cell reads 0); the model must guess those cells from their context.  The
  ``"harmonize"`` hiding keeps only the top voice and hides every cell beneath it, which
  is exactly what :func:`capsule_lib.techniques.arcnn.sample.enhance` shows the model in
  ``harmonize`` mode.

Notes are ``(n, 3)`` int arrays of ``(start, pitch, duration)`` rows (times in steps
within the window, MIDI pitches).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...datasets.bach import N_PITCHES, PITCH_HIGH, PITCH_LOW, WINDOW_STEPS

__all__ = [
    "Corruption",
    "remove_notes",
    "add_stray_notes",
    "hide_cells",
    "hide_below_top_voice",
    "corrupt_window",
]


@dataclass(frozen=True)
class Corruption:
    """A damaged window.

    Attributes
    ----------
    notes : ndarray
        The notes the model sees (kept originals plus strays).
    removed : ndarray
        Original notes taken out.
    added : ndarray
        Stray notes put in.
    visible : ndarray
        ``(steps, 64)`` bool; False marks hidden cells.
    """

    notes: np.ndarray
    removed: np.ndarray
    added: np.ndarray
    visible: np.ndarray


def _as_notes(notes) -> np.ndarray:
    return np.asarray(notes, dtype=np.int32).reshape(-1, 3)


def remove_notes(notes, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Remove ``round(fraction * n)`` notes chosen uniformly; returns ``(kept, removed)``."""
    notes = _as_notes(notes)
    k = int(round(float(np.clip(fraction, 0.0, 1.0)) * len(notes)))
    drop = np.zeros(len(notes), dtype=bool)
    if k:
        drop[rng.choice(len(notes), size=k, replace=False)] = True
    return notes[~drop], notes[drop]


def add_stray_notes(
    notes, count: int, rng: np.random.Generator, *, n_steps: int = WINDOW_STEPS, reference=None
) -> tuple[np.ndarray, np.ndarray]:
    """Add ``count`` stray notes; returns ``(notes_with_strays, strays)``.

    Stray pitches are uniform within 5 semitones of the ``reference`` notes' range
    (default: ``notes``; the model's whole range if there are none), starts are
    uniform over the window, durations are drawn from the reference notes' durations
    (cut at the window's end).  A stray never lands on a cell an existing note
    occupies, so every stray is a genuinely wrong note.
    """
    notes = _as_notes(notes)
    ref = _as_notes(notes if reference is None else reference)
    if len(ref):
        lo = max(PITCH_LOW, int(ref[:, 1].min()) - 5)
        hi = min(PITCH_HIGH, int(ref[:, 1].max()) + 5)
        durations = ref[:, 2]
    else:
        lo, hi, durations = PITCH_LOW, PITCH_HIGH, np.array([2, 4, 8])
    occupied = np.zeros((n_steps, 128), dtype=bool)
    for s, p, d in notes:
        occupied[max(s, 0) : min(s + d, n_steps), p] = True
    strays = []
    for _ in range(max(0, int(count)) * 10):  # a few retries when a draw hits a sounding cell
        if len(strays) >= count:
            break
        s = int(rng.integers(0, n_steps))
        p = int(rng.integers(lo, hi + 1))
        d = int(min(int(rng.choice(durations)), n_steps - s))
        if occupied[s : s + d, p].any():
            continue
        occupied[s : s + d, p] = True
        strays.append((s, p, d))
    strays = np.asarray(strays, dtype=np.int32).reshape(-1, 3)
    return np.concatenate([notes, strays]), strays


def hide_cells(shape: tuple[int, int], fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A visibility mask with each cell hidden independently with probability ``fraction``."""
    return rng.random(shape) >= float(fraction)


def hide_below_top_voice(notes, n_steps: int = WINDOW_STEPS) -> tuple[np.ndarray, np.ndarray]:
    """Keep the top voice, hide every cell beneath it: ``(top_voice_notes, visible)``.

    At each step the highest sounding note is the melody; a note belongs to the top
    voice if it is the highest at its first step.  Beneath the melody (and everywhere
    while no note sounds, down from the melody's last pitch) cells are hidden.
    """
    notes = _as_notes(notes)
    top = np.full(n_steps, -1, dtype=np.int32)
    for s, p, d in notes:
        seg = top[max(s, 0) : min(s + d, n_steps)]
        np.maximum(seg, p, out=seg)
    keep = np.array([0 <= s < n_steps and top[s] == p for s, p, d in notes], dtype=bool).reshape(-1)
    melody = notes[keep]
    return melody, visible_above(melody_line(melody, n_steps))


def melody_line(melody, n_steps: int = WINDOW_STEPS) -> np.ndarray:
    """Per step, the lowest melody pitch sounding, carried through rests (-1: no melody at all)."""
    melody = _as_notes(melody)
    line = np.full(n_steps, 999, dtype=np.int32)
    for s, p, d in melody:
        seg = line[max(s, 0) : min(s + d, n_steps)]
        np.minimum(seg, p, out=seg)
    known = np.flatnonzero(line < 999)
    if not len(known):
        return np.full(n_steps, -1, dtype=np.int32)
    # Rests take the previous melody pitch (the first rest the next one).
    idx = np.maximum.accumulate(np.where(line < 999, np.arange(n_steps), -1))
    idx[idx < 0] = known[0]
    return line[idx]


def visible_above(line: np.ndarray) -> np.ndarray:
    """Visibility ``(steps, 64)``: cells strictly below ``line`` hidden, the rest visible."""
    pitches = np.arange(PITCH_LOW, PITCH_LOW + N_PITCHES)
    return ~(pitches[None, :] < line[:, None])


def _rows_in(notes: np.ndarray, subset: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``notes`` that appear in ``subset``."""
    wanted = {tuple(r) for r in subset.tolist()}
    return np.array([i for i, r in enumerate(notes.tolist()) if tuple(r) in wanted], dtype=np.int64)


def corrupt_window(
    notes,
    rng: np.random.Generator,
    *,
    remove_fraction: float | None = None,
    stray_fraction: float | None = None,
    hide_fraction: float | None = None,
    harmonize_prob: float = 0.15,
    n_steps: int = WINDOW_STEPS,
) -> Corruption:
    """The training corruption of one window.

    Parameters left as None are drawn per window: ``remove_fraction`` ~ U(0, 0.95)
    (so the model sees everything from a full chorale to a lone melody),
    ``stray_fraction`` ~ U(0, 0.2) of the notes, and half of the windows get
    ``hide_fraction`` ~ U(0.1, 0.9) of cells hidden.  With probability
    ``harmonize_prob`` the window instead keeps its top voice and hides everything
    beneath it (no removal, no strays).
    """
    notes = _as_notes(notes)
    if harmonize_prob and rng.random() < harmonize_prob and len(notes):
        melody, visible = hide_below_top_voice(notes, n_steps)
        removed = notes[~np.isin(np.arange(len(notes)), _rows_in(notes, melody))]
        return Corruption(melody, removed, np.zeros((0, 3), np.int32), visible)
    if remove_fraction is None:
        remove_fraction = rng.uniform(0.0, 0.95)
    if stray_fraction is None:
        stray_fraction = rng.uniform(0.0, 0.2)
    if hide_fraction is None:
        hide_fraction = rng.uniform(0.1, 0.9) if rng.random() < 0.5 else 0.0
    kept, removed = remove_notes(notes, remove_fraction, rng)
    n_stray = int(round(stray_fraction * len(notes)))
    damaged, strays = add_stray_notes(kept, n_stray, rng, n_steps=n_steps, reference=notes)
    visible = (
        hide_cells((n_steps, N_PITCHES), hide_fraction, rng) if hide_fraction else np.ones((n_steps, N_PITCHES), bool)
    )
    return Corruption(damaged, removed, strays, visible)
