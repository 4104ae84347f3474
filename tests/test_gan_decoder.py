"""The GAN's decoder: notes from the generator's output, and settings tuned to the real accompaniment."""

from __future__ import annotations

import numpy as np
import pytest
from gan_fixtures import SPEC

from capsule_lib.datasets.multitrack import N_PITCHES, SAMPLE_STEPS
from capsule_lib.techniques.gan import batch_metrics, decode
from capsule_lib.techniques.gan.decoder import (
    EVAL_SEED,
    _closest,
    calibrate_decoder,
    chord_share,
    empty_bar_share,
    pitch_class_rate,
    track_polyphony,
)


def test_decode_keeps_at_most_the_tracks_polyphony_above_zero():
    out = -np.ones((1, 2, 2, N_PITCHES))
    out[0, 0, 0, [3, 5, 9]] = [0.2, 0.9, 0.5]  # three candidates, polyphony 1 keeps the strongest
    out[0, 1, 0, [3, 5, 9]] = [0.2, 0.9, 0.5]  # polyphony 2 keeps two
    out[0, 0, 1, 7] = -0.1  # probability 0.45 in all: the line rests
    on = decode(out, [1, 2])
    assert np.flatnonzero(on[0, 0, 0]).tolist() == [5]
    assert np.flatnonzero(on[0, 1, 0]).tolist() == [5, 9]  # the line (5) and one more above 1/2 (9, not 3)
    assert not on[0, 0, 1].any()
    spread = -np.ones((1, 1, 1, N_PITCHES))
    spread[0, 0, 0, [10, 11, 12]] = [-0.4, -0.3, -0.4]  # 0.3, 0.35, 0.3: rest only 0.05, the line sounds at 11
    assert np.flatnonzero(decode(spread, [1])[0, 0, 0]).tolist() == [11]
    assert np.flatnonzero(decode(spread, [2])[0, 0, 0]).tolist() == [11]  # no second note above 1/2


def test_track_polyphony_reads_the_texture_of_the_data():
    s = np.zeros((10, 2, SAMPLE_STEPS, N_PITCHES), bool)
    s[:, 0, :, 30] = True  # a single line
    s[:, 1, :, [30, 34, 37]] = True  # triads
    assert track_polyphony(s) == [1, 3]


def test_calibration_statistics_are_the_reported_metrics():
    """The decoder is calibrated on the very numbers batch_metrics (and the quality bar) report:
    per-sample rates averaged over samples, not one pooled share."""
    rng = np.random.default_rng(5)
    s = np.zeros((40, 4, SAMPLE_STEPS, N_PITCHES), bool)
    for i in range(40):
        for t in range(4):
            for bar in range(4):
                if rng.random() < 0.2:
                    continue  # an empty bar
                lo = bar * 16
                for k in range(int(rng.integers(1, 5))):
                    step = lo + 4 * k
                    s[i, t, step : step + 4, rng.integers(20, 60)] = True
                if rng.random() < 0.3 * (i % 3):  # some samples far more polyphonic than others
                    s[i, t, lo : lo + 8, rng.integers(20, 60)] = True
    m = batch_metrics(s, SPEC)["tracks"]
    for t, name in enumerate(SPEC.tracks):
        assert chord_share(s)[t] == pytest.approx(m[name]["polyphonic_rate"])
        assert pitch_class_rate(s)[t] == pytest.approx(m[name]["pitch_classes_used"])
        assert empty_bar_share(s)[t] == pytest.approx(m[name]["empty_bar_rate"])
    pooled = (s.sum(-1) >= 2).sum() / (s.sum(-1) > 0).sum()
    assert abs(np.mean(chord_share(s)) - pooled) > 1e-4  # the pooled share is a different number


def test_pitch_class_rate_and_penalty_calibration_match_the_training_texture():
    s = np.zeros((1, 1, 32, N_PITCHES), bool)
    s[0, 0, :8, 30] = True  # bar 1: F# and ...
    s[0, 0, 8:16, 43] = True  # ... G (two pitch classes)
    s[0, 0, 16:, 42] = True  # bar 2: F# an octave up (one)
    assert pitch_class_rate(s) == [1.5]
    flicker = -np.ones((16, 1, SAMPLE_STEPS, N_PITCHES))
    flicker[:, 0, :, 30] = np.where(np.arange(SAMPLE_STEPS) % 2, -0.1, 0.1)  # 0.45 / 0.55 alternating
    flicker[:, 0, :, 31] = np.where(np.arange(SAMPLE_STEPS) % 2, 0.1, -0.1)
    busy, _, _ = calibrate_decoder(flicker, [1], [2.0], [0.0], [0.0])  # the data moves between two notes
    calm, _, _ = calibrate_decoder(flicker, [1], [1.0], [0.0], [0.0])  # the data holds one note per bar
    assert busy[0] < calm[0]
    assert pitch_class_rate(decode(flicker, [1], busy, seed=1))[0] > 1.7
    assert pitch_class_rate(decode(flicker, [1], calm, seed=1))[0] < 1.3


def test_calibration_bisects_a_monotone_grid():
    grid = tuple(range(32))
    calls = []

    def falling(x):
        calls.append(x)
        return 100 - 3 * x

    assert _closest(grid, falling, 41.2) == 20  # 100 - 60 = 40 is nearest
    assert len(calls) <= 8  # bisection, not all 32
    assert _closest(grid, lambda x: x * x, 50) == 7  # rising: 49
    assert _closest(grid, lambda x: x, -5) == 0 and _closest(grid, lambda x: x, 99) == 31  # out of range: the ends


def test_chord_threshold_calibration_matches_the_share_of_double_stops():
    s = np.zeros((1, 1, 8, N_PITCHES), bool)
    s[0, 0, :, 30] = True
    s[0, 0, :2, 34] = True
    assert chord_share(s) == [0.25]
    out = -np.ones((4, 1, SAMPLE_STEPS, N_PITCHES))
    out[:, 0, :, 30] = 0.9  # the line
    out[:, 0, ::4, 34] = -0.4  # a second note with probability 0.3 on every 4th step
    pens, rests, th = calibrate_decoder(out, [2], [1.0], [0.0], [0.25])
    assert th[0] < 0.3
    decoded = decode(out, [2], pens, seed=EVAL_SEED, chord_threshold=th, rest_weight=rests)
    assert chord_share(decoded)[0] == pytest.approx(0.25, abs=0.03)
    assert chord_share(decode(out, [2], pens, seed=EVAL_SEED))[0] == 0.0  # at 1/2 no second note would sound
    assert calibrate_decoder(out, [1], [1.0], [0.0], [0.25])[2] == [0.5]  # single lines have no threshold


def test_rest_weight_calibration_matches_the_share_of_empty_bars():
    out = -np.ones((32, 1, SAMPLE_STEPS, N_PITCHES))
    out[:, 0, :, 30] = 0.0  # the note is as likely as the rest at every step
    assert empty_bar_share(decode(out, [1], 0.0, seed=1, rest_weight=0.01)) == [0.0]
    pens, rests, ths = calibrate_decoder(out, [1], [1.0], [0.5], [0.0])
    decoded = decode(out, [1], pens, seed=EVAL_SEED, rest_weight=rests)
    plain = decode(out, [1], pens, seed=EVAL_SEED)
    assert abs(empty_bar_share(decoded)[0] - 0.5) < abs(empty_bar_share(plain)[0] - 0.5)
    assert rests[0] > 1 and ths == [0.5]
    s = np.zeros((1, 2, SAMPLE_STEPS, N_PITCHES), bool)
    s[0, 0, :16, 3] = True
    assert empty_bar_share(s) == [0.75, 1.0]
