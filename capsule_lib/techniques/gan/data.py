"""GAN training samples as tensors, roll <-> score conversion, and metrics of sample batches."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset

from ...datasets.multitrack import N_PITCHES, PITCH_LOW, RESOLUTION, GenreSpec
from ...metrics import mean_metrics, tonal_distance, track_metrics
from ...score import Note, Score, Track

__all__ = ["GanSamples", "roll_to_notes", "roll_to_score", "batch_metrics", "MAX_SHIFT_DOWN", "MAX_SHIFT_UP"]

MAX_SHIFT_DOWN = 5
MAX_SHIFT_UP = 6


class GanSamples(Dataset):
    """``(n, tracks, 64, 84)`` bool samples -> float tensors in {-1, 1}, randomly transposed.

    With ``transpose`` each sample is shifted by a random -5..+6 semitones (all twelve
    keys), limited so that no note leaves the 84-pitch range.
    """

    def __init__(self, samples: np.ndarray, transpose: bool = True):
        self.samples = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.uint8))
        self.transpose = transpose
        used = samples.any(axis=(1, 2))  # (n, pitches)
        has = used.any(axis=1)
        self.low = np.where(has, used.argmax(axis=1), 0)
        self.high = np.where(has, N_PITCHES - 1 - used[:, ::-1].argmax(axis=1), N_PITCHES - 1)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> torch.Tensor:
        x = self.samples[i].float() * 2 - 1
        if self.transpose:
            lo = max(-MAX_SHIFT_DOWN, -int(self.low[i]))
            hi = min(MAX_SHIFT_UP, N_PITCHES - 1 - int(self.high[i]))
            shift = int(torch.randint(lo, hi + 1, ()).item()) if hi >= lo else 0
            if shift:
                x = torch.roll(x, shift, dims=-1)  # rolled-in cells were silent: the range check above
        return x


def roll_to_notes(roll: np.ndarray, velocity: int = 90, offset: int = 0) -> tuple[Note, ...]:
    """Notes of one track's ``(steps, 84)`` bool roll: each run of sounding steps is one note."""
    roll = np.asarray(roll, bool)
    padded = np.zeros((roll.shape[0] + 2, roll.shape[1]), np.int8)
    padded[1:-1] = roll
    diff = np.diff(padded, axis=0)
    notes = []
    for p in np.flatnonzero(roll.any(axis=0)):
        starts = np.flatnonzero(diff[:, p] == 1)
        ends = np.flatnonzero(diff[:, p] == -1)
        for s, e in zip(starts, ends):
            notes.append(Note(int(s) + offset, int(p) + PITCH_LOW, int(e - s), velocity))
    return tuple(notes)


def roll_to_score(sample: np.ndarray, spec: GenreSpec, *, tempo: float = 100.0, title: str = "") -> Score:
    """A score (4 steps per beat, 4/4) of one ``(tracks, steps, 84)`` bool sample."""
    tracks = tuple(
        Track(name=spec.tracks[i], program=spec.programs[i], is_drum=spec.is_drum[i], notes=roll_to_notes(sample[i]))
        for i in range(len(spec.tracks))
    )
    return Score(tracks=tracks, tempo=tempo, time_signature=(4, 4), resolution=RESOLUTION, title=title)


def batch_metrics(samples: np.ndarray, spec: GenreSpec) -> dict:
    """Mean per-track metrics (and mean tonal distance of each track to the melody) over samples.

    Returns ``{"tracks": {name: {metric: value}}, "tonal_distance": {"melody|name": value}}``;
    each sample is scored as its own 4-bar score, NaNs (a silent track) are skipped.
    """
    samples = np.asarray(samples, bool)
    per_track = {name: [] for name in spec.tracks}
    tonal = {name: [] for name in spec.tracks[1:]}
    for s in samples:
        score = roll_to_score(s, spec)
        for i, name in enumerate(spec.tracks):
            per_track[name].append(track_metrics(score, i))
            if i and not spec.is_drum[i]:
                tonal[name].append({"d": tonal_distance(score, 0, i)})
    out = {"tracks": {k: mean_metrics(v) for k, v in per_track.items()}, "tonal_distance": {}}
    for name, rows in tonal.items():
        if rows:
            out["tonal_distance"][f"{spec.tracks[0]}|{name}"] = mean_metrics(rows).get("d", math.nan)
    return out
