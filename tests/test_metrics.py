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
    a = melody(C_MAJOR_BAR)  # bar 1
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
    t = Track(
        notes=tuple(Note(i * 4, p, 4) for i, p in enumerate(C_MAJOR_BAR))
        + tuple(Note(32 + i * 4, p, 4) for i, p in enumerate([60, 72, 60, 72]))
    )
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
    hits = tuple(
        Note(s, 36, 3) for s in (0, 6, 13, 19, 21)
    )  # 0, 6 on grid; 13 (off by 1) ok; 19 (off 1) ok; 21 off by 3
    drums = Track(name="drums", is_drum=True, notes=hits)
    s = score(drums, resolution=24)
    assert M.drum_in_pattern_rate(s) == pytest.approx(4 / 5)
    assert set(M.track_metrics(s, 0)) == {"empty_bar_rate", "drum_in_pattern_rate"}


def test_tonal_distance_zero_for_the_same_harmony_and_larger_for_distant_keys():
    c_triad = melody([60, 64, 67, 60], name="a")
    same = melody([48, 52, 55, 48], name="b")  # same pitch classes, lower octave
    fifth = melody([67, 71, 74, 67], name="c")  # G major triad: a near key
    tritone = melody([66, 70, 73, 66], name="d")  # F# major triad: the farthest key
    s = score(c_triad, same, fifth, tritone)
    assert M.tonal_distance(s, 0, 1) == pytest.approx(0.0, abs=1e-12)
    near, far = M.tonal_distance(s, 0, 2), M.tonal_distance(s, 0, 3)
    assert 0 < near < far
    # bars where one track is silent are left out; no shared bar -> NaN
    late = melody([60, 64], start=32, name="late")
    assert math.isnan(M.tonal_distance(score(c_triad, late), 0, 1))


def test_score_metrics_and_mean_metrics():
    s = score(
        melody(C_MAJOR_BAR, name="lead"),
        melody([48, 52, 55, 48], name="bass"),
        Track(name="drums", is_drum=True, notes=(Note(0, 36, 1),)),
    )
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


# --------------------------------------------------------------------------- whole-score metrics (the music yardstick)


def test_polyphony_counts_distinct_pitches_over_sounding_steps_only():
    # steps 0-3: C E G (3), steps 4-7: C (1), steps 8-11: silence, steps 12-15: C4 and C4 in two tracks (1 pitch)
    a = Track(name="a", notes=(Note(0, 60, 8), Note(0, 64, 4), Note(0, 67, 4), Note(12, 60, 4)))
    b = Track(name="b", notes=(Note(12, 60, 4),))
    assert M.polyphony(score(a, b)) == pytest.approx((4 * 3 + 4 * 1 + 4 * 1) / 12)
    assert math.isnan(M.polyphony(score(Track())))


def test_polyphony_regrids_to_sixteenths_so_resolution_does_not_matter():
    fine = score(Track(notes=(Note(0, 60, 24), Note(0, 64, 12))), resolution=24)  # a beat of C, half a beat of E
    assert M.polyphony(fine) == pytest.approx((2 * 2 + 2 * 1) / 4)


def test_clash_rate_counts_steps_with_a_second_seventh_or_ninth():
    # 4 steps C+C# (minor second), 4 steps C+B (major seventh), 4 steps C+Db9 (minor ninth),
    # 4 steps C+E (third), 4 steps C+C# an octave apart... i.e. 13 semitones is a clash, 12 is not
    t = Track(notes=(Note(0, 60, 28), Note(0, 61, 4), Note(4, 71, 4), Note(8, 73, 4), Note(12, 64, 4), Note(16, 72, 4)))
    # steps 0-11 clash (3 x 4), steps 12-27 do not (C+E, C+C5, C alone)
    assert M.clash_rate(score(t)) == pytest.approx(12 / 28)
    assert M.clash_rate(score(melody([60, 61, 62]))) == 0.0  # a chromatic line never sounds two pitches at once


def test_best_key_and_in_key_rate_with_the_harmonic_minor():
    c_major = melody([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60])
    assert M.best_key(score(c_major)) == (0, "major")
    assert M.in_key_rate(score(c_major)) == 1.0
    # A minor with its raised leading note G#: in key (natural + harmonic minor)
    a_minor = melody([69, 71, 72, 74, 76, 77, 68, 69, 64, 69, 72, 69])
    assert M.best_key(score(a_minor)) == (9, "minor")
    assert M.in_key_rate(score(a_minor)) == 1.0
    # the same G# judged against C major is out of key: 11 of 12 onsets in
    assert M.in_key_rate(score(a_minor), (0, "major")) == pytest.approx(11 / 12)
    assert M.best_key(score(Track())) is None and math.isnan(M.in_key_rate(score(Track())))
    assert list(np.flatnonzero(M.key_scale((2, "major")))) == [1, 2, 4, 6, 7, 9, 11]  # D major: C# D E F# G A B


def test_parallels_counts_joint_moves_that_keep_a_fifth_or_octave():
    # soprano G A B C, bass C D G C (quarter notes):
    #   step 4: G->A, C->D   both up, fifth -> fifth: a parallel fifth
    #   step 8: A->B, D->G   both up, fifth -> major third: a joint move, not parallel
    #   step 12: B->C, G->C  contrary motion: not a joint move
    s = score(melody([67, 69, 71, 72], name="s"), melody([48, 50, 55, 48], name="b"))
    lines = M.voice_lines(s)
    assert lines.shape == (2, 16) and lines[0, 0] == 67 and lines[1, 15] == 48
    assert M.voice_motion(lines) == (1, 2)
    assert M.parallels_per_100(s) == pytest.approx(50.0)
    # octaves in similar motion, and a rest that breaks the line (no move into or out of a rest)
    octaves = score(melody([60, 62, 64], name="a"), melody([48, 50, 52], name="b"))
    assert M.voice_motion(M.voice_lines(octaves)) == (2, 2)
    rests = np.array([[60, -1, 62], [48, 49, 50]])
    assert M.voice_motion(rests) == (0, 0)
    assert math.isnan(M.parallels_per_100(score(melody([60, 62]))))  # one voice: no pair


def test_a_voice_is_its_tracks_highest_pitch():
    chords = Track(name="c", notes=(Note(0, 60, 4), Note(0, 67, 4), Note(4, 62, 4), Note(4, 69, 4)))  # top: G -> A
    bass = melody([48, 50], name="b")  # C -> D: with the top voice G -> A a parallel fifth (plus an octave below)
    assert M.voice_motion(M.voice_lines(score(chords, bass))) == (1, 1)


def test_mean_pitch_above_melody_and_in_range():
    s = score(melody([72, 74, 76, 77], name="tune"), melody([48, 79, 52, 53], name="bass"))
    assert M.mean_pitch(score(melody([60, 64]))) == 62.0
    assert M.above_melody_rate(s, "bass", "tune") == pytest.approx(0.25)  # the G5 sounds above the E5
    assert M.in_range_rate(s, "bass", (40, 62)) == pytest.approx(0.75)
    assert math.isnan(M.in_range_rate(score(Track(name="x")), 0, (0, 127)))


# --- against pypianoroll.metrics, where the two definitions agree ------------------------------
# Only the pitch counts and the polyphonic rate: pypianoroll 1.0.4's chroma (``_to_chroma``) sums ten
# *neighbouring* pitches (``reshape(-1, 12, 10)``), not pitch classes, so its pitch-class count, in-scale
# rate and tonal distance disagree with their papers; and its ``empty_beat_rate`` counts non-empty beats.


def _one_bar(rng) -> Score:
    """A random 4/4 bar (96 steps at 24 per beat) of overlapping notes: chords, rests, repeats."""
    notes = []
    for _ in range(int(rng.integers(1, 12))):
        start = int(rng.integers(0, 90))
        notes.append(Note(start, int(rng.integers(36, 90)), int(rng.integers(1, 96 - start + 1)), 80))
    return Score(tracks=(Track(notes=tuple(sorted(notes, key=lambda n: (n.start, n.pitch)))),), resolution=24)


@pytest.mark.parametrize("seed", range(12))
def test_pitches_used_and_polyphonic_rate_agree_with_pypianoroll(seed):
    """On one bar, where pypianoroll's whole-roll count is a per-bar count: the distinct pitches; and the
    polyphonic rate of the sounding steps (pypianoroll counts steps with *more than* its threshold, over
    every step it is given, so it gets the sounding steps and threshold - 1)."""
    import pypianoroll.metrics as pm

    from capsule_lib import to_pianoroll

    score = _one_bar(np.random.default_rng(seed))
    roll = to_pianoroll(score, 0, binary=True)
    assert M.pitches_used(score, n_bars=1) == pm.n_pitches_used(roll)
    sounding = roll[roll.any(axis=1)]
    for threshold in (1, 2, 3):
        assert M.polyphonic_rate(score, threshold=threshold) == pytest.approx(
            pm.polyphonic_rate(sounding, threshold=threshold - 1)
        )
