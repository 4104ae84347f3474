"""Enhancing a melody with the AR-CNN: repeated passes through the U-Net that add and remove notes.

How one call works
    The melody track is put on the model's grid (4 steps per beat, MIDI 30..93; notes
    outside that pitch range are kept unchanged and never shown to the model).  Each
    **sampling iteration** is one pass through the network over a 128-step (8-bar)
    window, giving a probability per cell that it belongs in a Bach chorale.  With
    **creative risk** ``T`` as the temperature, ``p = sigmoid(logit / T)`` (``T = 0``:
    ``p`` is 1 above one half and 0 below -- no randomness at all).  Then

    * every note that may be removed is proposed for removal with probability
      ``1 - mean(p over its cells)``;
    * cells that are silent now are switched on with probability ``p`` (one random
      number per pitch and beat, so a confident note is not chopped into fragments);
      each unbroken run of switched-on cells along time is one proposed new note;

    and at most ``REMOVALS_PER_PASS`` removals and ``ADDITIONS_PER_PASS`` additions per
    8 bars (16 in ``harmonize`` mode) are accepted, drawn by weighted sampling without
    replacement (weights: the probabilities above; ``T = 0`` takes the strongest).  So
    more iterations mean more notes added and removed, as in the console.

The caps are hard and count *notes*, not cells
    The output lacks at most ``floor(max_remove_pct / 100 * n)`` of the input's ``n``
    notes and holds at most ``max_notes_added`` notes that were not in the input.  A
    note the model added may be removed again on a later pass (that frees its slot).
    Input notes are never moved or changed: each is either kept exactly (at the
    input's resolution, with its velocity) or removed.

Long melodies
    Windows of 128 steps hop by 64 steps (4 bars), processed left to right.  The first
    window edits notes starting anywhere in it; every later window edits only notes
    starting in its second half, while its first half -- already finished by the
    previous window -- is shown to the model as context.  Every note start thus
    belongs to exactly one window, so nothing is duplicated or edited twice at a
    join.  The caps are shared out over the windows in proportion to their length
    (additions) and their input notes (removals); what a window leaves unused passes
    on.  Nothing is added after the melody's last bar.

``harmonize``
    The input melody is locked (never removed) and the model writes voices *beneath* it
    into a new track ``"harmony"``: cells below the melody are shown to the model as
    hidden (unknown), the way it was trained to fill them in, and only there are notes
    added.  ``max_remove_pct`` is ignored.

Parameter ranges (anything else raises :class:`~capsule_lib.errors.CapsuleError`)
    ============================  ==========  =======
    parameter                     range       default
    ============================  ==========  =======
    ``sampling_iterations``       1 .. 100    12
    ``max_remove_pct``            0 .. 100    20
    ``max_notes_added``           0 .. 1000   40
    ``creative_risk``             0 .. 4      1.0
    ``seed``                      None or an integer 0 .. 2**63 - 1
    ============================  ==========  =======

Same seed, same output (the seed actually used is stored with the composition, so a
``seed=None`` result can be reproduced too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from numbers import Integral, Real

import numpy as np

from ...datasets.bach import HOP_STEPS, N_PITCHES, PITCH_HIGH, PITCH_LOW, RESOLUTION, WINDOW_STEPS, window_starts
from ...errors import CapsuleError
from .._common import check_flags, check_seed, finish_inference, progress_bar
from ...score import Note, Score, Track
from .corrupt import visible_above
from .data import model_input
from .params import SPEC

__all__ = [
    "enhance",
    "enhance_notes",
    "EnhanceResult",
    "DEFAULTS",
    "RANGES",
    "ADDITIONS_PER_PASS",
    "REMOVALS_PER_PASS",
    "HARMONIZE_ADDITIONS_PER_PASS",
]

#: Defaults and accepted ranges come from the one definition of the parameters (``params.py``).
DEFAULTS = SPEC.defaults()
RANGES = {p.name: (p.low, p.high) for p in SPEC.parameters if p.kind in ("int", "float")}
#: Accepted edits per pass per 8 bars (scaled by the length a window may edit).
ADDITIONS_PER_PASS = 4
REMOVALS_PER_PASS = 2
HARMONIZE_ADDITIONS_PER_PASS = 16
_MAX_SEED = 2**63 - 1


@dataclass
class EnhanceResult:
    """What :func:`enhance_notes` did, on the model grid.

    Attributes
    ----------
    kept : ndarray of bool
        Per input note, whether it survived.
    added : ndarray
        ``(k, 3)`` rows ``(start, pitch, duration)`` of the notes added.
    passes : int
        Forward passes run.
    """

    kept: np.ndarray
    added: np.ndarray
    passes: int = 0
    per_window: list = field(default_factory=list)

    @property
    def n_removed(self) -> int:
        return int((~self.kept).sum())

    @property
    def n_added(self) -> int:
        return len(self.added)


# --------------------------------------------------------------------------- validation


def _check_int(name: str, value) -> int:
    lo, hi = RANGES[name]
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise CapsuleError(f"{name} must be a whole number in {lo}-{hi}, got {value!r}")
    if not lo <= value <= hi:
        raise CapsuleError(f"{name} {value} is outside {lo}-{hi}")
    return int(value)


def _check_real(name: str, value) -> float:
    lo, hi = RANGES[name]
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise CapsuleError(f"{name} must be a number in {lo}-{hi}, got {value!r}")
    if not lo <= float(value) <= hi:
        raise CapsuleError(f"{name} {value:g} is outside {lo}-{hi}")
    return float(value)


# --------------------------------------------------------------------------- the sampler


def _runs(mask: np.ndarray) -> list[tuple[int, int, int]]:
    """Unbroken runs along time of a ``(steps, pitches)`` bool mask: ``(start, pitch_index, length)``."""
    padded = np.zeros((mask.shape[0] + 2, mask.shape[1]), dtype=np.int8)
    padded[1:-1] = mask
    diff = np.diff(padded, axis=0)
    starts_t, starts_p = np.nonzero(diff == 1)
    ends_t, ends_p = np.nonzero(diff == -1)
    # nonzero walks row-major (time first); sort both by (pitch, time) to pair them up.
    o1 = np.lexsort((starts_t, starts_p))
    o2 = np.lexsort((ends_t, ends_p))
    return [(int(s), int(p), int(e - s)) for s, p, e in zip(starts_t[o1], starts_p[o1], ends_t[o2])]


def _pick(weights: np.ndarray, k: int, rng: np.random.Generator, greedy: bool) -> np.ndarray:
    """Indices of up to ``k`` items, weighted sampling without replacement (Efraimidis-Spirakis)."""
    if k <= 0 or not len(weights):
        return np.zeros(0, dtype=np.int64)
    w = np.clip(np.asarray(weights, dtype=np.float64), 1e-12, None)
    keys = w if greedy else np.log(rng.random(len(w))) / w
    return np.argsort(-keys, kind="stable")[:k]


def _render(notes: np.ndarray, alive: np.ndarray, w0: int) -> np.ndarray:
    roll = np.zeros((WINDOW_STEPS, N_PITCHES), dtype=bool)
    if not len(notes):
        return roll
    s, p, d = notes[:, 0], notes[:, 1], notes[:, 2]
    # Select the window's notes in one vectorised pass: a Python loop over every note of
    # the piece, once per pass, made long melodies quadratic.
    near = np.asarray(alive, bool) & (p >= PITCH_LOW) & (p <= PITCH_HIGH) & (s < w0 + WINDOW_STEPS) & (s + d > w0)
    for s, p, d in notes[near].tolist():
        roll[max(s - w0, 0): min(s + d - w0, WINDOW_STEPS), p - PITCH_LOW] = True
    return roll


def _each_window(starts: list[int], progress: bool | None):
    """``(index, start)`` of each window, in order, with a progress bar (after 2 s) and torch's
    thread count re-decided as the machine's load changes (see :mod:`capsule_lib.threads`)."""
    from ...threads import InferenceThreads

    with InferenceThreads() as threads, progress_bar(len(starts), "enhancing", "window", progress) as bar:
        for wi, w0 in enumerate(starts):
            threads.refresh()
            yield wi, w0
            bar.update(1)


def _probabilities(model, x: np.ndarray, temperature: float) -> np.ndarray:
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(torch.from_numpy(x)[None].to(device))[0].float().cpu().numpy()
    if temperature == 0:
        return (logits > 0).astype(np.float64)
    with np.errstate(over="ignore"):  # a tiny temperature overflows to +-inf, which the clip bounds
        scaled = np.clip(logits.astype(np.float64) / temperature, -60, 60)
    return 1.0 / (1.0 + np.exp(-scaled))


def enhance_notes(
    model,
    notes,
    *,
    sampling_iterations: int = DEFAULTS["sampling_iterations"],
    max_removed: int = 0,
    max_added: int = DEFAULTS["max_notes_added"],
    creative_risk: float = DEFAULTS["creative_risk"],
    rng: np.random.Generator | None = None,
    harmonize: bool = False,
    end: int | None = None,
    progress: bool | None = False,
) -> EnhanceResult:
    """The sampler on the model grid (no validation, no saving; used by :func:`enhance` and evaluation).

    Parameters
    ----------
    model : ArcnnUNet
    notes : array-like
        ``(n, 3)`` rows ``(start, pitch, duration)`` at 4 steps per beat; pitches outside
        30..93 are never touched.
    max_removed, max_added : int
        Hard caps on input notes removed and notes added.
    end : int, optional
        No note is added at or after this step (default: the notes' end).
    progress : bool or None
        Show a progress bar over the windows once the call runs 2 s (None: where someone watches).
    """
    notes = np.asarray(notes, dtype=np.int64).reshape(-1, 3)
    rng = rng if rng is not None else np.random.default_rng()
    n_in = len(notes)
    in_range = (notes[:, 1] >= PITCH_LOW) & (notes[:, 1] <= PITCH_HIGH)
    total = int(end if end is not None else (notes[:, 0] + notes[:, 2]).max(initial=0))
    kept = np.ones(n_in, dtype=bool)
    added: list[list[int]] = []
    result = EnhanceResult(kept=kept, added=np.zeros((0, 3), np.int64))
    if total <= 0 or n_in == 0 and not max_added:
        return result
    max_removed = 0 if harmonize else max(0, int(max_removed))
    max_added = max(0, int(max_added))
    greedy = creative_risk == 0
    add_per_pass = HARMONIZE_ADDITIONS_PER_PASS if harmonize else ADDITIONS_PER_PASS
    removable_input = in_range & (not harmonize)
    n_removable = int(removable_input.sum())
    was_model_visible = model.training
    model.eval()
    try:
        for wi, w0 in _each_window(window_starts(total), progress):
            lo = w0 if wi == 0 else w0 + HOP_STEPS  # this window may edit notes starting in [lo, hi)
            hi = min(w0 + WINDOW_STEPS, total)
            if lo >= hi:
                continue
            span = (hi - lo) / WINDOW_STEPS
            # Share the caps out so later windows are not starved; unused quota passes on.
            add_quota = (max_added if hi >= total else int(max_added * hi / total)) - len(added)
            inputs_before = int((removable_input & (notes[:, 0] < hi)).sum())
            rm_allowed = max_removed if hi >= total or n_removable == 0 else int(max_removed * inputs_before / n_removable)
            rm_quota = rm_allowed - int((~kept).sum())
            per_add = max(1, round(add_per_pass * span))
            per_rm = max(1, round(REMOVALS_PER_PASS * span))
            in_window_input = removable_input & (notes[:, 0] >= lo) & (notes[:, 0] < hi)
            line = None
            if harmonize:
                from .corrupt import melody_line

                mel = notes[in_range & (notes[:, 0] < w0 + WINDOW_STEPS) & (notes[:, 0] + notes[:, 2] > w0)].copy()
                mel[:, 0] -= w0
                line = melody_line(mel, WINDOW_STEPS)
            for _ in range(sampling_iterations):
                if add_quota <= 0 and rm_quota <= 0 and not added:
                    break
                add_arr = np.asarray(added, dtype=np.int64).reshape(-1, 3)
                roll = _render(notes, kept, w0) | _render(add_arr, np.ones(len(add_arr), bool), w0)
                visible = np.ones_like(roll)
                editable = np.zeros_like(roll)
                editable[lo - w0: hi - w0] = True
                if harmonize:
                    below = ~visible_above(line) if (line >= 0).any() else np.zeros_like(roll)
                    editable &= below
                    # Beneath the melody and still to be written: unknown, unless a voice is there already.
                    visible = ~(editable & ~roll)
                p = _probabilities(model, model_input(roll, visible), creative_risk)
                result.passes += 1

                # removals: input notes in this window's region, and notes added earlier
                cand, weights, is_added = [], [], []
                for i in np.flatnonzero(in_window_input & kept):
                    s, pitch, d = notes[i]
                    cells = p[max(s - w0, 0): min(s + d - w0, WINDOW_STEPS), pitch - PITCH_LOW]
                    cand.append(i), weights.append(1.0 - cells.mean()), is_added.append(False)
                for j, (s, pitch, d) in enumerate(added):
                    if lo <= s < hi:
                        cells = p[s - w0: s + d - w0, pitch - PITCH_LOW]
                        cand.append(j), weights.append(1.0 - cells.mean()), is_added.append(True)
                weights = np.asarray(weights)
                proposed = np.flatnonzero(weights > 0.5) if greedy else np.flatnonzero(rng.random(len(weights)) < weights)
                drop_added = []
                n_rm = 0
                for k in proposed[_pick(weights[proposed], len(proposed), rng, greedy)]:
                    if n_rm >= per_rm:
                        break
                    if is_added[k]:
                        drop_added.append(cand[k])
                    elif rm_quota > 0:
                        kept[cand[k]] = False
                        rm_quota -= 1
                    else:
                        continue
                    n_rm += 1
                for j in sorted(drop_added, reverse=True):
                    del added[j]
                    add_quota += 1

                # additions: runs of newly switched-on cells in the editable region
                if add_quota > 0:
                    if greedy:
                        on = p > 0.5
                    else:
                        # One random number per pitch and beat, not per cell: independent
                        # draws would chop confident notes into 16th-note fragments.
                        u = np.repeat(rng.random((WINDOW_STEPS // RESOLUTION, N_PITCHES)), RESOLUTION, axis=0)
                        on = u < p
                    on &= editable & ~roll
                    runs = _runs(on)
                    if runs:
                        scores = np.array([p[s: s + d, q].mean() for s, q, d in runs])
                        for k in _pick(scores, min(per_add, add_quota), rng, greedy):
                            s, q, d = runs[k]
                            added.append([w0 + s, q + PITCH_LOW, d])
                            add_quota -= 1
            result.per_window.append((w0, lo, hi))
    finally:
        model.train(was_model_visible)
    result.kept = kept
    result.added = np.asarray(sorted(added), dtype=np.int64).reshape(-1, 3)
    return result


# --------------------------------------------------------------------------- public entry point


def _to_grid(n: Note, resolution: int) -> tuple[int, int, int]:
    ratio = Fraction(RESOLUTION, resolution)
    start = int(round(n.start * ratio))
    end = max(int(round(n.end * ratio)), start + 1)
    return start, n.pitch, end - start


def _from_grid(start: int, pitch: int, duration: int, resolution: int, velocity: int) -> Note:
    ratio = Fraction(resolution, RESOLUTION)
    s = int(round(start * ratio))
    e = max(int(round((start + duration) * ratio)), s + 1)
    return Note(s, int(pitch), e - s, velocity)


def enhance(
    score: Score,
    model="arcnn-bach",
    sampling_iterations: int = DEFAULTS["sampling_iterations"],
    max_remove_pct: float = DEFAULTS["max_remove_pct"],
    max_notes_added: int = DEFAULTS["max_notes_added"],
    creative_risk: float = DEFAULTS["creative_risk"],
    seed: int | None = None,
    harmonize: bool = DEFAULTS["harmonize"],
    save: bool = True,
    *,
    track: int | str = 0,
    parent=None,
    title: str | None = None,
    return_composition: bool = False,
    progress: bool | None = None,
):
    """Enhance a melody with the AR-CNN: add and remove notes towards Bach chorale style.

    Parameters
    ----------
    score : Score
        The input; its melody track (``track``, default 0) is enhanced, any other
        tracks are carried over unchanged.  Any resolution, tempo, time signature
        and length.
    model : str or ArcnnUNet
        A registered AR-CNN model name (default the sample model ``"arcnn-bach"``) or
        a network object.
    sampling_iterations : int
        Passes through the model per 8-bar window, 1-100.
    max_remove_pct : float
        At most this percentage (0-100) of the melody's notes may be removed (rounded down).
    max_notes_added : int
        At most this many notes (0-1000) may be added in all.
    creative_risk : float
        Sampling temperature, 0-4 (0: always the most likely choice).
    seed : int, optional
        Same seed, same output.
    harmonize : bool
        Lock the melody and write voices beneath it into a new ``"harmony"`` track.
    save : bool
        Save the result as a composition (technique ``"arcnn"``, the model name, the
        parameters including the seed used, and ``parent``).
    track : int or str
        The melody track.
    parent : str or Composition, optional
        The composition the input came from.
    title : str, optional
        Title of the saved composition.
    return_composition : bool
        Return ``(score, composition)`` (composition None when ``save`` is False).
    progress : bool or None
        A progress bar over the 8-bar windows, shown once the call has run 2 s: None
        (default) where someone watches (a terminal, a notebook), True always, False never.

    Returns
    -------
    Score
        Same resolution, tempo and time signature as the input.

    Raises
    ------
    CapsuleError
        For a non-score, an empty or drum melody, a melody with no note in MIDI
        30-93, out-of-range parameters or an unknown/unfinished model.
    """
    if not isinstance(score, Score):
        raise CapsuleError(f"enhance needs a Score, not {type(score).__name__}")
    iterations = _check_int("sampling_iterations", sampling_iterations)
    remove_pct = _check_real("max_remove_pct", max_remove_pct)
    max_added = _check_int("max_notes_added", max_notes_added)
    risk = _check_real("creative_risk", creative_risk)
    used_seed = check_seed(seed, _MAX_SEED)
    check_flags(harmonize=harmonize, save=save, return_composition=return_composition)
    if progress is not None:
        check_flags(progress=progress)
    if not score.tracks:
        raise CapsuleError("the score has no tracks; give enhance a melody")
    ti = score.track_index(track)
    melody = score.tracks[ti]
    if melody.is_drum:
        raise CapsuleError(f"track {melody.name or ti!r} is a drum track; enhance needs a melody")
    if not melody.notes:
        raise CapsuleError("the melody has no notes; record or load one first")
    if not any(PITCH_LOW <= n.pitch <= PITCH_HIGH for n in melody.notes):
        raise CapsuleError(f"no melody note lies in the model's pitch range {PITCH_LOW}-{PITCH_HIGH} (F#1-A6)")
    net = _resolve_model(model)

    grid = np.array([_to_grid(n, score.resolution) for n in melody.notes], dtype=np.int64)
    n_input = len(melody.notes)
    max_removed = 0 if harmonize else math.floor(remove_pct / 100 * n_input + 1e-9)
    bar = -(-score.steps_per_bar * RESOLUTION // score.resolution)
    end = -(-int((grid[:, 0] + grid[:, 2]).max()) // bar) * bar
    out = enhance_notes(
        net, grid, sampling_iterations=iterations, max_removed=max_removed, max_added=max_added,
        creative_risk=risk, rng=np.random.default_rng(used_seed), harmonize=harmonize, end=end, progress=progress,
    )
    velocity = int(np.median([n.velocity for n in melody.notes]))
    new_notes = tuple(_from_grid(s, p, d, score.resolution, velocity) for s, p, d in out.added)
    kept_notes = tuple(n for n, ok in zip(melody.notes, out.kept) if ok)
    tracks = list(score.tracks)
    if harmonize:
        tracks[ti] = melody
        tracks.append(Track(name="harmony", program=melody.program, notes=new_notes))
    else:
        tracks[ti] = melody.replace(notes=kept_notes + new_notes)
    result = score.replace(tracks=tuple(tracks))

    parameters = {
        "sampling_iterations": iterations, "max_remove_pct": remove_pct, "max_notes_added": max_added,
        "creative_risk": risk, "seed": used_seed, "harmonize": harmonize, "track": ti,
        "notes_removed": out.n_removed, "notes_added": out.n_added,
    }
    return finish_inference(result, "arcnn", net, parameters, save=save, parent=parent, title=title,
                            return_composition=return_composition)


def _resolve_model(model):
    from torch import nn

    from .model import load_arcnn

    if isinstance(model, str):
        return load_arcnn(model)
    if isinstance(model, nn.Module):
        return model
    raise CapsuleError(f"model must be a model name or an AR-CNN network, not {type(model).__name__}")
