"""Each metric on hand-made scores whose answer is known by construction."""

import math

import numpy as np
import pytest

from capsule_lib import CapsuleError, Note, Score, Track
from capsule_lib import metrics as M

R = 4  # steps per beat: a bar of 4/4 is 16 steps


def score(*tracks, resolution=R):
    return Score(tracks=tuple(tracks), resolution=resolution)


def melody(pitches, dur=4, start=0, name="melody"):
    return Track(name=name, notes=tuple(Note(start + i * dur, p, dur) for i, p in enumerate(pitches)))


C_MAJOR_BAR = [60, 62, 64, 65]  # one bar of quarter notes


def test_empty_bar_rate_counts_bars_up_to_the_scores_end():
    a = melody(C_MAJOR_BAR)                      # bar 1
    b = melody(C_MAJOR_BAR, start=48, name="b")  # bar 4 -> the score is 4 bars long
    s = score(a, b)
    assert M.empty_bar_rate(s, 0) == 0.75
    assert M.empty_bar_rate(s, 1) == 0.75
    assert M.empty_bar_rate(score(melody(C_MAJOR_BAR * 2)), 0) == 0.0
    assert math.isnan(M.empty_bar_rate(score(Track(name="x")), 0))


def test_a_known_length_counts_trailing_silent_bars():
    s = score(melody(C_MAJOR_BAR))  # one bar of music in what the caller knows is a 4-bar sample
    assert M.empty_bar_rate(s, 0) == 0.0  # by the score's end: 1 bar
    assert M.empty_bar_rate(s, 0, n_bars=4) == 0.75
    assert M.track_metrics(s, 0, n_bars=4)["empty_bar_rate"] == 0.75
    assert M.score_metrics(s, n_bars=2)["tracks"]["melody"]["empty_bar_rate"] == 0.5
    assert M.pitches_used(s, 0, n_bars=4) == 4  # still averaged over the non-empty bars
    late = score(melody(C_MAJOR_BAR, start=64))  # a note after the given length is not counted
    assert M.empty_bar_rate(late, 0, n_bars=4) == 1.0
    with pytest.raises(CapsuleError, match="n_bars"):
        M.empty_bar_rate(s, 0, n_bars=0)


def test_pitches_and_pitch_classes_used_average_over_non_empty_bars():
    # bar 1: C D E F (4 pitches, 4 classes); bar 2 empty; bar 3: C4 C5 C4 C5 (2 pitches, 1 class)
    t = Track(notes=tuple(Note(i * 4, p, 4) for i, p in enumerate(C_MAJOR_BAR))
              + tuple(Note(32 + i * 4, p, 4) for i, p in enumerate([60, 72, 60, 72])))
    s = score(t)
    assert M.pitches_used(s) == 3.0
    assert M.pitch_classes_used(s) == 2.5
    assert math.isnan(M.pitches_used(score(Track())))


def test_a_note_held_across_a_barline_counts_in_both_bars():
    s = score(Track(notes=(Note(12, 60, 8),)))
    assert M.empty_bar_rate(s) == 0.0 and M.pitches_used(s) == 1.0


def test_polyphonic_rate_ignores_silence():
    mono = score(melody([60, 62]), resolution=R)
    assert M.polyphonic_rate(mono) == 0.0
    # 4 steps of a dyad, 4 steps of a single note, 8 steps of silence, then one more single step
    t = Track(notes=(Note(0, 60, 8), Note(0, 64, 4), Note(16, 67, 1)))
    assert M.polyphonic_rate(score(t)) == pytest.approx(4 / 9)
    assert M.polyphonic_rate(score(t), threshold=1) == 1.0
    with pytest.raises(CapsuleError):
        M.polyphonic_rate(score(t), threshold=0)


def test_in_scale_ratio_finds_the_best_key_and_weights_by_duration():
    assert M.in_scale_ratio(score(melody([62, 64, 66, 67, 69, 71, 73]))) == 1.0  # D major
    # 3 quarters of C major plus one half-length F#: 12 of 14 steps in C major (or G major: 10 of 14)
    t = Track(notes=(Note(0, 60, 4), Note(4, 64, 4), Note(8, 65, 4), Note(12, 66, 2)))
    assert M.in_scale_ratio(score(t)) == pytest.approx(12 / 14)
    assert M.in_scale_ratio(score(melody(list(range(60, 72))))) == pytest.approx(7 / 12)


def test_qualified_note_rate_uses_a_32nd_note_at_any_resolution():
    # at 24 steps per beat a 32nd is 3 steps
    t = Track(notes=(Note(0, 60, 2), Note(2, 62, 3), Note(5, 64, 24), Note(30, 65, 1)))
    assert M.qualified_note_rate(score(t, resolution=24)) == 0.5
    # at 4 steps per beat every note (at least a 16th) qualifies
    assert M.qualified_note_rate(score(melody([60, 62], dur=1))) == 1.0


def test_drum_in_pattern_rate():
    # 24 steps per beat: 16th grid every 6 steps, tolerance 1.5 steps
    hits = tuple(Note(s, 36, 3) for s in (0, 6, 13, 19, 21))  # 0, 6 on grid; 13 (off by 1) ok; 19 (off 1) ok; 21 off by 3
    drums = Track(name="drums", is_drum=True, notes=hits)
    s = score(drums, resolution=24)
    assert M.drum_in_pattern_rate(s) == pytest.approx(4 / 5)
    assert set(M.track_metrics(s, 0)) == {"empty_bar_rate", "drum_in_pattern_rate"}


def test_tonal_distance_zero_for_the_same_harmony_and_larger_for_distant_keys():
    c_triad = melody([60, 64, 67, 60], name="a")
    same = melody([48, 52, 55, 48], name="b")      # same pitch classes, lower octave
    fifth = melody([67, 71, 74, 67], name="c")     # G major triad: a near key
    tritone = melody([66, 70, 73, 66], name="d")   # F# major triad: the farthest key
    s = score(c_triad, same, fifth, tritone)
    assert M.tonal_distance(s, 0, 1) == pytest.approx(0.0, abs=1e-12)
    near, far = M.tonal_distance(s, 0, 2), M.tonal_distance(s, 0, 3)
    assert 0 < near < far
    # bars where one track is silent are left out; no shared bar -> NaN
    late = melody([60, 64], start=32, name="late")
    assert math.isnan(M.tonal_distance(score(c_triad, late), 0, 1))


def test_score_metrics_and_mean_metrics():
    s = score(melody(C_MAJOR_BAR, name="lead"), melody([48, 52, 55, 48], name="bass"),
              Track(name="drums", is_drum=True, notes=(Note(0, 36, 1),)))
    out = M.score_metrics(s)
    assert set(out["tracks"]) == {"lead", "bass", "drums"}
    assert set(out["tracks"]["lead"]) == set(M.METRICS)
    assert list(out["tonal_distance"]) == ["lead|bass"]
    avg = M.mean_metrics([{"a": 1.0, "b": math.nan}, {"a": 3.0}])
    assert avg["a"] == 2.0 and math.isnan(avg["b"])


def test_bad_input():
    with pytest.raises(CapsuleError):
        M.track_metrics("not a score")
    with pytest.raises(CapsuleError):
        M.pitches_used(score(melody([60])), track=5)
