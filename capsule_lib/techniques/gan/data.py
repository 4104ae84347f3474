"""A GAN's data: the data set by name or folder, training samples as tensors, roll <-> score, metrics of sample batches."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ...datasets.external import load_lpd5, load_midi_folder
from ...datasets.multitrack import (
    GENRES,
    N_PITCHES,
    PITCH_LOW,
    RESOLUTION,
    STEPS_PER_BAR,
    GenreSpec,
    MultitrackDataset,
    build_genre_dataset,
)
from ...errors import CapsuleError
from ...metrics import mean_metrics, tonal_distance, track_metrics
from ...score import Note, Score, Track

__all__ = [
    "resolve_dataset",
    "GanSamples",
    "roll_to_notes",
    "roll_to_score",
    "batch_metrics",
    "sample_metrics",
    "MAX_SHIFT_DOWN",
    "MAX_SHIFT_UP",
]

MAX_SHIFT_DOWN = 5
MAX_SHIFT_UP = 6


def resolve_dataset(dataset, *, limit: int | None = None, progress: bool = True) -> MultitrackDataset:
    """A genre name (``chorale``, ``quartet``, ``renaissance``), a folder of LPD-5 ``.npz`` or
    MIDI files, or a :class:`MultitrackDataset` -> the data set."""
    if isinstance(dataset, MultitrackDataset):
        return dataset
    if not isinstance(dataset, (str, Path)):
        raise CapsuleError(f"dataset must be a genre name or a folder, not {type(dataset).__name__}")
    if str(dataset) in GENRES:
        return build_genre_dataset(str(dataset), progress=progress, limit=limit)
    folder = Path(dataset).expanduser()
    if not folder.is_dir():
        raise CapsuleError(
            f"unknown dataset {str(dataset)!r}: use {', '.join(GENRES)} or a folder of LPD-5 .npz or MIDI files"
        )
    if next(folder.rglob("*.npz"), None) is not None:
        return load_lpd5(folder, limit=limit, progress=progress)
    return load_midi_folder(folder, limit=limit, progress=progress)


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


def sample_metrics(samples: np.ndarray, spec: GenreSpec) -> list[dict]:
    """Per sample ``{"tracks": {name: {metric: value}}, "tonal_distance": {"melody|name": value}}``.

    Each sample is scored as its own score of exactly its length in bars (4: a silent last
    bar is an empty bar, as in MuseGAN's metrics on fixed-size tensors, not a shorter
    score); a silent track's undefined metrics are NaN.
    """
    samples = np.asarray(samples, bool)
    n_bars = max(1, samples.shape[2] // STEPS_PER_BAR)  # (n, tracks, steps, pitches)
    rows = []
    for s in samples:
        score = roll_to_score(s, spec)
        row = {"tracks": {}, "tonal_distance": {}}
        for i, name in enumerate(spec.tracks):
            row["tracks"][name] = track_metrics(score, i, n_bars)
            if i and not spec.is_drum[i]:
                row["tonal_distance"][f"{spec.tracks[0]}|{name}"] = tonal_distance(score, 0, i, n_bars)
        rows.append(row)
    return rows


def batch_metrics(samples: np.ndarray, spec: GenreSpec, rows: list[dict] | None = None) -> dict:
    """Mean per-track metrics (and mean tonal distance of each track to the melody) over samples.

    Returns ``{"tracks": {name: {metric: value}}, "tonal_distance": {"melody|name": value}}``:
    the means of :func:`sample_metrics` (pass its ``rows`` to reuse them), NaNs (a silent
    track) skipped.
    """
    rows = sample_metrics(samples, spec) if rows is None else rows
    out = {
        "tracks": {name: mean_metrics([r["tracks"][name] for r in rows]) for name in spec.tracks},
        "tonal_distance": {},
    }
    for name in spec.tracks[1:]:
        pair = f"{spec.tracks[0]}|{name}"
        vals = [{"d": r["tonal_distance"][pair]} for r in rows if pair in r["tonal_distance"]]
        if vals:
            out["tonal_distance"][pair] = mean_metrics(vals).get("d", math.nan)
    return out
