"""Enhancing a melody with the AR-CNN: Gibbs sampling with the U-Net adds voices and removes notes.

How one call works
    The melody track is put on the model's grid (4 steps per beat, MIDI 30..93; notes
    outside that pitch range are kept unchanged and never shown to the model) and cut
    into 128-step (8-bar) windows.  In each window the silent cells become the canvas:
    annealed blocked Gibbs sampling (:mod:`~capsule_lib.techniques.arcnn.gibbs`, after
    Coconet) hides a random share of them, lets the U-Net say -- given the melody and
    every cell still visible -- how likely each hidden cell is to sound in a Bach chorale,
    redraws them, and repeats, hiding less each time: **sampling iterations** such passes,
    then one pass that scores the finished window.  With **creative risk** ``T`` as the
    temperature a cell sounds with ``p = sigmoid(logit / T + guide)`` (``T = 0``: ``p`` is 1
    above one half and 0 below -- no randomness at all).  Then

    * each unbroken run of new sounding cells along time is a proposed note, kept with
      its mean probability given the finished window (``T = 0``: above one half);
    * every input note that may be removed is proposed for removal with probability
      ``1 - mean(p over its cells)``;

    and the caps below decide how many of the proposals are accepted (weighted sampling
    without replacement; ``T = 0`` takes the strongest).

The guide
    The U-Net's logits get a fixed log-weight (:data:`GUIDE`, nats) before the temperature's
    draw: ``-out_of_key`` for a pitch outside the melody's key (the Krumhansl-Kessler best
    fit of the input, :func:`capsule_lib.metrics.best_key`), ``-clash`` for a cell 1, 11 or
    13 semitones from a visible sounding cell, and ``+density`` everywhere.  Sampled alone,
    the U-Net's cells are individually plausible but, together, clash on 12 % of the steps of
    harmonized validation chorales (Bach: 4 %) and leave the texture thinner than Bach's;
    the weights were chosen on the validation chorales so that harmonizing their soprano
    gives Bach's texture: polyphony 3.82, clash rate 0.040, in key 0.95 against Bach's own
    3.94, 0.044 and 0.91 (BENCHMARKS.md, "AR-CNN sampling").

The caps are hard and count *notes*, not cells
    The output lacks at most ``floor(max_remove_pct / 100 * n)`` of the input's ``n``
    notes and holds at most ``max_notes_added`` notes that were not in the input.
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
    into a new track ``"harmony"``: only the cells below the melody are the canvas, as in
    the training windows that keep the top voice and hide everything beneath it.
    ``max_remove_pct`` is ignored.

Parameter ranges (anything else raises :class:`~capsule_lib.errors.CapsuleError`)
    ============================  ==========  =======
    parameter                     range       default
    ============================  ==========  =======
    ``sampling_iterations``       1 .. 100    12
    ``max_remove_pct``            0 .. 100    20
    ``max_notes_added``           0 .. 1000   400
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
from ...score import Note, Score, Track
from .._common import finish_inference, progress_bar, resolve_model, start_inference
from .corrupt import visible_above
from .data import model_input
from .params import SPEC

__all__ = [
    "enhance",
    "enhance_notes",
    "EnhanceResult",
    "DEFAULTS",
    "RANGES",
    "GUIDE",
]

#: Defaults and accepted ranges come from the one definition of the parameters (``params.py``).
DEFAULTS = SPEC.defaults()
RANGES = {p.name: (p.low, p.high) for p in SPEC.parameters if p.kind in ("int", "float")}
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
        roll[max(s - w0, 0) : min(s + d - w0, WINDOW_STEPS), p - PITCH_LOW] = True
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


def _probabilities(model, x: np.ndarray, temperature: float, bias=0.0) -> np.ndarray:
    """Per cell, ``sigmoid(logit / temperature + bias)`` (``bias``: the guide's log-weights, 0: none)."""
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(torch.from_numpy(x)[None].to(device))[0].float().cpu().numpy()
    if temperature == 0:
        return (logits + bias > 0).astype(np.float64)
    with np.errstate(over="ignore"):  # a tiny temperature overflows to +-inf, which the clip bounds
        scaled = np.clip(logits.astype(np.float64) / temperature + bias, -60, 60)
    return 1.0 / (1.0 + np.exp(-scaled))


#: Log-weights (nats) of the sampler's guide (see the module notes): against a cell out of the melody's
#: key and a cell 1, 11 or 13 semitones from a visible sounding cell; for every cell (density).
GUIDE = {"out_of_key": 2.0, "clash": 2.0, "density": 1.0}


def _key_bias(notes) -> np.ndarray:
    """``(64,)`` log-weight per model pitch: ``GUIDE["out_of_key"]`` outside the input's best-fitting key."""
    from ...metrics import best_key, key_scale

    if not GUIDE["out_of_key"]:
        return np.zeros(N_PITCHES)
    notes = np.asarray(notes).reshape(-1, 3)
    melody = Score(tracks=(Track(notes=tuple(Note(int(s), int(p), int(d)) for s, p, d in notes)),))
    key = best_key(melody)
    if key is None:
        return np.zeros(N_PITCHES)
    inside = key_scale(key)[np.arange(PITCH_LOW, PITCH_HIGH + 1) % 12]
    return np.where(inside, 0.0, -GUIDE["out_of_key"])


def _clash_bias(sounding: np.ndarray) -> np.ndarray:
    """``(steps, 64)``: ``-GUIDE["clash"]`` where a cell lies 1, 11 or 13 semitones from a sounding cell."""
    if not GUIDE["clash"]:
        return 0.0
    near = np.zeros_like(sounding)
    for d in (1, 11, 13):
        near[:, d:] |= sounding[:, :-d]
        near[:, :-d] |= sounding[:, d:]
    return np.where(near, -GUIDE["clash"], 0.0)


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
    removable_input = in_range & (not harmonize)
    n_removable = int(removable_input.sum())
    run = _Run(model, notes, kept, added, sampling_iterations, creative_risk, rng, greedy, harmonize)
    was_model_visible = model.training
    model.eval()
    try:
        for wi, w0 in _each_window(window_starts(total), progress):
            lo = w0 if wi == 0 else w0 + HOP_STEPS  # this window may edit notes starting in [lo, hi)
            hi = min(w0 + WINDOW_STEPS, total)
            if lo >= hi:
                continue
            # Share the caps out so later windows are not starved; unused quota passes on.
            add_quota = (max_added if hi >= total else int(max_added * hi / total)) - len(added)
            inputs_before = int((removable_input & (notes[:, 0] < hi)).sum())
            rm_allowed = (
                max_removed if hi >= total or n_removable == 0 else int(max_removed * inputs_before / n_removable)
            )
            rm_quota = rm_allowed - int((~kept).sum())
            in_window_input = removable_input & (notes[:, 0] >= lo) & (notes[:, 0] < hi)
            line = None
            if harmonize:
                from .corrupt import melody_line

                mel = notes[in_range & (notes[:, 0] < w0 + WINDOW_STEPS) & (notes[:, 0] + notes[:, 2] > w0)].copy()
                mel[:, 0] -= w0
                line = melody_line(mel, WINDOW_STEPS)
            add_quota, rm_quota = _sample_window(run, w0, lo, hi, line, in_window_input, add_quota, rm_quota)
            result.passes += sampling_iterations + 1
            result.per_window.append((w0, lo, hi))
    finally:
        model.train(was_model_visible)
    result.kept = kept
    result.added = np.asarray(sorted(added), dtype=np.int64).reshape(-1, 3)
    return result


@dataclass
class _Run:
    """What every window of one :func:`enhance_notes` call shares: the model, the input notes,
    which of them are ``kept`` and the notes ``added`` so far (both updated window by window),
    and the sampling settings."""

    model: object
    notes: np.ndarray
    kept: np.ndarray
    added: list
    iterations: int
    creative_risk: float
    rng: np.random.Generator
    greedy: bool
    harmonize: bool


def _sample_window(run: _Run, w0, lo, hi, line, in_window_input, add_quota: int, rm_quota: int) -> tuple[int, int]:
    """One window's edits: new notes by annealed blocked Gibbs sampling, then removals.

    The editable cells are the silent cells of the region ``[lo, hi)`` (in ``harmonize``
    mode only those beneath the melody ``line``); the input's notes and the notes other
    windows wrote stay and are always visible.  :func:`~.gibbs.gibbs_window` redraws the
    editable cells over ``run.iterations`` passes and scores the result; each unbroken run of
    new sounding cells along time is a candidate note, and at most ``add_quota`` of them
    are kept, drawn without replacement by their mean probability (greedy at creative risk
    0).  Then each input note of the region is proposed for removal with probability
    ``1 - mean(p over its cells)`` (greedy: below one half), at most ``rm_quota`` of them.
    ``run.kept`` and ``run.added`` are updated in place; returns the quotas left.
    """
    from .gibbs import gibbs_window

    add_arr = np.asarray(run.added, dtype=np.int64).reshape(-1, 3)
    roll = _render(run.notes, run.kept, w0) | _render(add_arr, np.ones(len(add_arr), bool), w0)
    editable = np.zeros_like(roll)
    editable[lo - w0 : hi - w0] = True
    if run.harmonize:
        editable &= ~visible_above(line) if (line >= 0).any() else np.zeros_like(roll)
    editable &= ~roll
    if add_quota <= 0:
        editable[:] = False

    bias = _key_bias(run.notes) + GUIDE["density"]

    def predict(r, visible):
        return _probabilities(run.model, model_input(r, visible), run.creative_risk, bias + _clash_bias(r & visible))

    # creative risk 0 is deterministic: the cells hidden in each pass follow a fixed seed too
    mask_rng = np.random.default_rng(0) if run.greedy else run.rng
    out, p = gibbs_window(predict, roll, editable, run.iterations + 1, mask_rng, greedy=run.greedy)
    runs = _runs(out & editable)
    if runs and add_quota > 0:
        scores = np.array([p[s : s + d, q].mean() for s, q, d in runs])
        # a last Gibbs step per note: kept with its probability given the finished window
        ok = np.flatnonzero(scores > 0.5 if run.greedy else run.rng.random(len(scores)) < scores)
        for k in sorted(ok[_pick(scores[ok], min(len(ok), add_quota), run.rng, run.greedy)]):
            s, q, d = runs[k]
            run.added.append([w0 + s, q + PITCH_LOW, d])
            add_quota -= 1
    if rm_quota > 0:
        cand = np.flatnonzero(in_window_input & run.kept)
        weights = np.array(
            [
                1.0 - p[max(s - w0, 0) : min(s + d - w0, WINDOW_STEPS), pitch - PITCH_LOW].mean()
                for s, pitch, d in run.notes[cand]
            ]
        ).reshape(-1)
        proposed = (
            np.flatnonzero(weights > 0.5) if run.greedy else np.flatnonzero(run.rng.random(len(weights)) < weights)
        )
        for k in proposed[_pick(weights[proposed], min(len(proposed), rm_quota), run.rng, run.greedy)]:
            run.kept[cand[k]] = False
            rm_quota -= 1
    return add_quota, rm_quota


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
    model=SPEC.default_model,
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
        Gibbs passes through the model per 8-bar window, 1-100 (plus one scoring pass).
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
    flags = {"harmonize": harmonize, "save": save, "return_composition": return_composition}
    used_seed, ti, melody = start_inference("enhance", score, seed, _MAX_SEED, track, progress, **flags)
    if not melody.notes:
        raise CapsuleError("the melody has no notes; record or load one first")
    if not any(PITCH_LOW <= n.pitch <= PITCH_HIGH for n in melody.notes):
        raise CapsuleError(f"no melody note lies in the model's pitch range {PITCH_LOW}-{PITCH_HIGH} (F#1-A6)")
    net = resolve_model(model, "arcnn", "an AR-CNN network")

    grid = np.array([_to_grid(n, score.resolution) for n in melody.notes], dtype=np.int64)
    n_input = len(melody.notes)
    max_removed = 0 if harmonize else math.floor(remove_pct / 100 * n_input + 1e-9)
    bar = -(-score.steps_per_bar * RESOLUTION // score.resolution)
    end = -(-int((grid[:, 0] + grid[:, 2]).max()) // bar) * bar
    out = enhance_notes(
        net,
        grid,
        sampling_iterations=iterations,
        max_removed=max_removed,
        max_added=max_added,
        creative_risk=risk,
        rng=np.random.default_rng(used_seed),
        harmonize=harmonize,
        end=end,
        progress=progress,
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
        "sampling_iterations": iterations,
        "max_remove_pct": remove_pct,
        "max_notes_added": max_added,
        "creative_risk": risk,
        "seed": used_seed,
        "harmonize": harmonize,
        "track": ti,
        "notes_removed": out.n_removed,
        "notes_added": out.n_added,
    }
    return finish_inference(
        result, "arcnn", net, parameters, save=save, parent=parent, title=title, return_composition=return_composition
    )
