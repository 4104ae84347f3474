"""Chorale windows as model tensors: piano rolls, transposition augmentation, online corruption.

A window is an image of ``128 steps x 64 pitches`` (time x pitch, MIDI 30..93, 4 steps per
beat -- see :mod:`capsule_lib.datasets.bach`).  The model reads two channels:

0. the (corrupted) roll: 1 where a note sounds, 0 elsewhere and in hidden cells;
1. the visibility mask: 1 where the cell is known, 0 where it is hidden;

and predicts, per cell, whether the *original* window has a note there.

Training windows are transposed by a random shift in -6..+5 semitones (limited so every
note stays in range) and corrupted afresh every time they are drawn
(:func:`capsule_lib.techniques.arcnn.corrupt.corrupt_window`).  Their randomness comes
from torch's global generator, which the shared harness seeds and checkpoints, so
training is reproducible and resumes exactly.  Validation windows use a fixed
per-window seed and no transposition, so their loss is comparable across epochs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ...datasets.bach import N_PITCHES, PITCH_HIGH, PITCH_LOW, WINDOW_STEPS
from .corrupt import corrupt_window

__all__ = ["notes_to_roll", "model_input", "transpose_limits", "ArcnnWindows", "MAX_SHIFT_DOWN", "MAX_SHIFT_UP"]

MAX_SHIFT_DOWN = 6
MAX_SHIFT_UP = 5


def notes_to_roll(notes, n_steps: int = WINDOW_STEPS) -> np.ndarray:
    """Binary ``(n_steps, 64)`` roll of ``(start, pitch, duration)`` rows (out-of-range pitches dropped)."""
    roll = np.zeros((n_steps, N_PITCHES), dtype=bool)
    for s, p, d in np.asarray(notes, dtype=np.int64).reshape(-1, 3):
        if PITCH_LOW <= p <= PITCH_HIGH and s < n_steps and s + d > 0:
            roll[max(s, 0) : min(s + d, n_steps), p - PITCH_LOW] = True
    return roll


def model_input(roll: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """The two input channels ``(2, steps, 64)`` float32: roll (hidden cells zeroed) and visibility."""
    visible = np.asarray(visible, dtype=bool)
    return np.stack([np.asarray(roll, dtype=bool) & visible, visible]).astype(np.float32)


def transpose_limits(notes) -> tuple[int, int]:
    """The shifts ``(down, up)`` (down <= 0 <= up) keeping every note in range, within -6..+5."""
    notes = np.asarray(notes).reshape(-1, 3)
    if not len(notes):
        return -MAX_SHIFT_DOWN, MAX_SHIFT_UP
    return max(-MAX_SHIFT_DOWN, PITCH_LOW - int(notes[:, 1].min())), min(
        MAX_SHIFT_UP, PITCH_HIGH - int(notes[:, 1].max())
    )


class ArcnnWindows(Dataset):
    """Chorale windows served as ``(input, target)`` tensors for training.

    Parameters
    ----------
    windows : list of ndarray
        ``(n, 3)`` note arrays, times within the window.
    augment : bool
        Random transposition (training only).
    seed : int, optional
        Fixed per-window corruption (``numpy`` generator seeded with ``(seed, index)``)
        for validation; None draws from torch's global generator.
    corruption : dict, optional
        Keyword arguments for :func:`corrupt_window` (e.g. a fixed ``remove_fraction``).

    Items are ``(x, y)``: ``x`` float32 ``(2, 128, 64)``, ``y`` float32 ``(128, 64)``.
    """

    def __init__(self, windows, *, augment: bool = True, seed: int | None = None, corruption: dict | None = None):
        self.windows = [np.asarray(w, dtype=np.int32).reshape(-1, 3) for w in windows]
        self.augment = augment
        self.seed = seed
        self.corruption = dict(corruption or {})

    def __len__(self) -> int:
        return len(self.windows)

    def _rng(self, index: int) -> np.random.Generator:
        if self.seed is not None:
            return np.random.default_rng([self.seed, index])
        # One draw from torch's (seeded, checkpointed) generator seeds this item's numpy stream.
        return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))

    def __getitem__(self, index: int):
        rng = self._rng(index)
        notes = self.windows[index]
        if self.augment:
            down, up = transpose_limits(notes)
            shift = int(rng.integers(down, up + 1)) if up >= down else 0
            notes = notes + np.array([0, shift, 0], dtype=np.int32)
        damaged = corrupt_window(notes, rng, **self.corruption)
        x = model_input(notes_to_roll(damaged.notes), damaged.visible)
        y = notes_to_roll(notes).astype(np.float32)
        return torch.from_numpy(x), torch.from_numpy(y)
