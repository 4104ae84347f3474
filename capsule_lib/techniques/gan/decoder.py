"""The GAN's decoder: generator output -> bool rolls, and the tuning of its three settings.

The generator writes one value per cell; :func:`decode` turns them into notes, each track's
line drawn (:mod:`~capsule_lib.techniques.gan.lines`) or, with voice-leading weights, the
tracks drawn jointly (:mod:`~capsule_lib.techniques.gan.voicing`).  Three settings per track
shape the texture: the switch penalty (how long notes are held), the rest weight (how often
the track rests) and, for a polyphonic track, the chord threshold.  They are hyperparameters of
the sampling, tuned as hyperparameters are: on held-out validation melodies, so that the
accompaniment decoded for them has the statistics of their *real* accompaniment, each the
metric the test table reports (:func:`calibrate_decoder` per track, :func:`calibrate_jointly`
for the joint draw).  A model card records them; :class:`DecoderSettings` carries them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from ...metrics import rolls_empty_bar_rate, rolls_pitches_used, rolls_polyphonic_rate
from .lines import SWITCH_PENALTY, sample_line, viterbi_line, with_chord_notes
from .voicing import decode_voices, part_ranges, voice_order

__all__ = [
    "DecoderSettings",
    "decode",
    "joint_decoding",
    "track_polyphony",
    "calibrate_decoder",
    "calibrate_jointly",
    "pitch_class_rate",
    "empty_bar_share",
    "chord_share",
    "SWITCH_PENALTY",
    "EVAL_SEED",
    "PENALTY_GRID",
    "REST_GRID",
    "THRESHOLD_GRID",
]

#: The fixed noise (and decoding) seed of the per-epoch metrics, the calibration and the evaluation.
EVAL_SEED = 20240611
_BAR = 16  # steps per bar of the GAN's grid


@dataclass(frozen=True)
class DecoderSettings:
    """How a GAN's output becomes notes, as its card records it.

    ``polyphony`` has one entry per track (the melody's first); the three settings are one
    number for every accompaniment track or one per track; ``voice_leading`` holds the penalty
    weights of the joint draw (None: each track drawn on its own, as models from before joint
    decoding were trained and evaluated).
    """

    polyphony: tuple[int, ...]
    switch_penalty: float | tuple[float, ...] = SWITCH_PENALTY
    chord_threshold: float | tuple[float, ...] = 0.5
    rest_weight: float | tuple[float, ...] = 1.0
    voice_leading: dict | None = None


def track_polyphony(samples: np.ndarray) -> list[int]:
    """Per track, the most pitches that sound together at 99 % of its sounding steps (>= 1).

    A voice of a chorale gives 1; a piano part gives its usual chord size.  Decoding keeps
    at most that many pitches per step, so generated tracks keep the texture of the data.
    """
    out = []
    for t in range(samples.shape[1]):
        counts = samples[:, t].sum(axis=-1).ravel()
        counts = counts[counts > 0]
        out.append(max(1, int(np.percentile(counts, 99))) if len(counts) else 1)
    return out


def _per_track(x, k: int) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x] * k


def decode(
    output: np.ndarray,
    polyphony: list[int],
    switch_penalty=SWITCH_PENALTY,
    seed: int | None = None,
    chord_threshold=0.5,
    rest_weight=1.0,
    *,
    melody: np.ndarray | None = None,
    voice_leading=None,
    ranges=None,
    drums=None,
    scales=None,
) -> np.ndarray:
    """Generator output ``(n, tracks, steps, pitches)`` in [-1, 1] -> bool rolls.

    A cell's value ``x`` reads as the probability ``(x + 1) / 2`` that it sounds.  Every
    track gets its most likely *line* through those probabilities
    (:func:`~capsule_lib.techniques.gan.lines.viterbi_line`: a note or a rest at each step,
    ``switch_penalty`` per change -- one number or one per track); with ``seed`` the line is
    sampled instead (:func:`~capsule_lib.techniques.gan.lines.sample_line`).  A track whose
    polyphony ``k`` is above 1 (double stops, chords) also plays up to ``k - 1`` further
    cells whose probability is above ``chord_threshold`` (one number or one per track) at
    that step.  ``rest_weight`` (one or per track) scales the probability of resting.

    With ``voice_leading`` (penalty weights, see
    :func:`~capsule_lib.techniques.gan.voicing.decode_voices`), the ``melody`` ``(n, steps,
    pitches)`` and a ``seed``, the tracks are drawn *jointly* instead: one after another, each
    given the melody and the tracks already drawn, so that they avoid parallel fifths and
    octaves, clashes, crossings, notes out of key (the melody's, or ``scales``) and (with
    ``ranges``, per track) leaving their range; tracks flagged in ``drums`` are drawn on their own.
    """
    k = len(polyphony)
    penalties, thresholds, rests = (_per_track(x, k) for x in (switch_penalty, chord_threshold, rest_weight))
    if voice_leading is not None and melody is not None and seed is not None:
        return decode_voices(
            output,
            melody,
            polyphony,
            switch_penalty=penalties,
            rest_weight=rests,
            chord_threshold=thresholds,
            seed=seed,
            weights=voice_leading,
            ranges=ranges,
            drums=drums,
            scales=scales,
        )
    rng = None if seed is None else np.random.default_rng(int(seed))
    out = np.asarray(output, dtype=np.float64)
    prob = (out + 1) / 2
    on = np.zeros(out.shape, bool)
    for t, p in enumerate(polyphony):
        pt = prob[:, t]
        if rng is not None:
            path = sample_line(pt, float(penalties[t]), rng, float(rests[t]))
        else:
            path = viterbi_line(pt, float(penalties[t]))
        on[:, t] = with_chord_notes(path, pt, p, thresholds[t])
    return on


def joint_decoding(spec, weights: dict | None, melodies: np.ndarray, scales: np.ndarray | None = None) -> dict:
    """The keyword arguments of :func:`decode` that draw the accompaniment tracks of genre ``spec``
    jointly with penalty ``weights`` (empty for None: each track drawn on its own)."""
    if weights is None:
        return {}
    return {
        "melody": np.asarray(melodies, bool),
        "voice_leading": weights,
        "ranges": part_ranges(spec.tracks[1:]),
        "drums": list(spec.is_drum[1:]),
        "scales": scales,
    }


# --------------------------------------------------------------------------- the statistics tuned to
# Each is a metric of capsule_lib.metrics on every ``(n, tracks, steps, 84)`` roll at once, per 4-bar
# sample and then averaged over samples, exactly as batch_metrics reports it (tests hold them equal).


def _sample_mean(per_sample: np.ndarray) -> list[float]:
    """``(n, tracks)`` per-sample values (NaN: undefined) -> per track, the mean over samples (0 if none)."""
    defined = ~np.isnan(per_sample)
    return [float(np.nanmean(per_sample[:, t])) if defined[:, t].any() else 0.0 for t in range(per_sample.shape[1])]


def _bars(samples: np.ndarray) -> np.ndarray:
    s = np.asarray(samples, bool)
    n, k, steps, pitches = s.shape
    return s.reshape(n, k, steps // _BAR, _BAR, pitches)


def pitch_class_rate(samples: np.ndarray) -> list[float]:
    """Per track, pitch classes per non-empty bar (the metric ``pitch_classes_used``)."""
    return _sample_mean(rolls_pitches_used(_bars(samples), classes=True))


def empty_bar_share(samples: np.ndarray) -> list[float]:
    """Per track, the share of bars without a sounding note (the metric ``empty_bar_rate``; every
    sample has the same number of bars, so this is also the share over all samples' bars)."""
    return [float(x) for x in rolls_empty_bar_rate(_bars(samples)).mean(axis=0)]


def chord_share(samples: np.ndarray) -> list[float]:
    """Per track, the share of its sounding steps with two or more notes (the metric ``polyphonic_rate``)."""
    return _sample_mean(rolls_polyphonic_rate(samples))


# --------------------------------------------------------------------------- tuning

#: Switch penalties tried when calibrating a track's decoder: ``-log(1 - h)`` for a chance
#: ``h`` that a sampled line holds its state from one step to the next, 0 .. 0.99.
PENALTY_GRID = tuple(
    float(-np.log1p(-h)) for h in (0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 0.9, 0.97, 0.99)
)
#: Rest weights tried when calibrating a track's decoder.
REST_GRID = (
    0.25,
    0.35,
    0.5,
    0.6,
    0.75,
    0.9,
    1.0,
    1.25,
    1.5,
    1.75,
    2.0,
    2.5,
    3.0,
    3.5,
    4.0,
    5.0,
    6.0,
    8.0,
    12.0,
    16.0,
    24.0,
    32.0,
)
#: Chord-note thresholds tried when calibrating a track with polyphony above 1.
THRESHOLD_GRID = (
    0.05,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.35,
    0.4,
    0.45,
    0.5,
    0.55,
    0.6,
    0.65,
    0.7,
    0.75,
    0.8,
    0.85,
    0.9,
    0.95,
    1.01,
)


def _closest(grid, stat, target: float) -> float:
    """The value of ``grid`` whose ``stat(value)`` is closest to ``target``, for a statistic that
    moves one way along the grid (bisection: about ``log2(len(grid)) + 2`` evaluations)."""
    seen = {}

    def f(i):
        if i not in seen:
            seen[i] = stat(grid[i])
        return seen[i]

    lo, hi = 0, len(grid) - 1
    increasing = f(hi) >= f(lo)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (f(mid) < target) == increasing:
            lo = mid
        else:
            hi = mid
    return grid[min((lo, hi), key=lambda i: abs(f(i) - target))]


def calibrate_decoder(
    output: np.ndarray, polyphony: list[int], pitch_classes: list[float], empty_bars: list[float], chords: list[float]
) -> tuple[list[float], list[float], list[float]]:
    """``(switch penalties, rest weights, chord thresholds)`` per accompaniment track, fitted on
    generator ``output`` so the sampled tracks have the given pitch classes per bar, share of
    empty bars and polyphonic rate, in that order (the first two fitted twice since each moves
    the other).  During training the targets are those of the real accompaniment of the
    validation melodies whose ``output`` this is.  Each statistic moves one way along its setting's grid (more
    penalty, fewer pitch classes; more rest weight, more empty bars; a higher threshold,
    fewer chords), so each fit is a bisection of the grid."""

    def stat(fn, one, p, pen, rest, th=0.5):
        return fn(decode(one, [p], pen, seed=EVAL_SEED, rest_weight=rest, chord_threshold=th))[0]

    penalties, rests, thresholds = [], [], []
    for t, p in enumerate(polyphony):
        one = output[:, t : t + 1]
        rest = 1.0
        for _ in range(2):
            pen = _closest(PENALTY_GRID, partial(stat, pitch_class_rate, one, p, rest=rest), pitch_classes[t])
            rest = _closest(REST_GRID, partial(stat, empty_bar_share, one, p, pen), empty_bars[t])
        penalties.append(float(pen))
        rests.append(float(rest))
        if p == 1:
            thresholds.append(0.5)
            continue
        thresholds.append(float(_closest(THRESHOLD_GRID, partial(stat, chord_share, one, p, pen, rest), chords[t])))
    return penalties, rests, thresholds


def calibrate_jointly(
    output: np.ndarray,
    melody: np.ndarray,
    polyphony: list[int],
    *,
    pitch_classes,
    empty_bars,
    chords,
    switch_penalty,
    rest_weight,
    chord_threshold,
    seed: int,
    weights: dict,
    ranges=None,
    drums=None,
) -> tuple[list[float], list[float], list[float]]:
    """The decoder's three settings per part refitted for the *joint* draw: ``(switch penalties,
    rest weights, chord thresholds)`` so that the jointly drawn parts have the given pitch
    classes per bar, empty bar shares and polyphonic rates (those of the real accompaniment).

    :func:`calibrate_decoder` fits each part drawn on its own; drawn jointly, a part that must
    keep out of clashes, crossings and other keys uses fewer pitch classes and chord notes at the
    same settings (on the quartet's validation melodies the viola's pitch classes per bar fall
    from 3.1 to 2.8, its double stops from 5.0 % to 2.9 % of its sounding steps).  Starting from
    those settings, each part in drawing order is refitted by the same bisections, every trial a
    full joint draw with the other parts at their current settings (one sweep: a part's settings
    move the parts drawn after it a little).
    """
    settings = {"pen": list(switch_penalty), "rest": list(rest_weight), "th": list(chord_threshold)}

    def stat(fn, t, key, value):
        trial = {k: list(v) for k, v in settings.items()}
        trial[key][t] = value
        rolls = decode_voices(
            output,
            melody,
            polyphony,
            switch_penalty=trial["pen"],
            rest_weight=trial["rest"],
            chord_threshold=trial["th"],
            seed=seed,
            weights=weights,
            ranges=ranges,
            drums=drums,
        )
        return fn(rolls[:, t : t + 1])[0]

    for t in voice_order(len(polyphony)):
        settings["pen"][t] = float(_closest(PENALTY_GRID, partial(stat, pitch_class_rate, t, "pen"), pitch_classes[t]))
        settings["rest"][t] = float(_closest(REST_GRID, partial(stat, empty_bar_share, t, "rest"), empty_bars[t]))
        if polyphony[t] > 1:
            settings["th"][t] = float(_closest(THRESHOLD_GRID, partial(stat, chord_share, t, "th"), chords[t]))
    return settings["pen"], settings["rest"], settings["th"]
