"""Tests for capsule_lib.edit: every expected answer is worked out by hand in the test."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_keys import A_MINOR_TUNE  # a tune the key tests share

from capsule_lib import CapsuleError, Note, Score, Track, edit
from capsule_lib.edit import (
    add_note,
    arpeggiate,
    auto_chord,
    change_length,
    change_pitch,
    crop_bars,
    humanize,
    octave_shift,
    quantize,
    remove_note,
    resolve_sustain,
    set_instrument,
    set_tempo,
    tap_tempo,
    toggle_note,
    transpose,
)

C4, D4, E4, F4, G4, A4, B4, C5 = 60, 62, 64, 65, 67, 69, 71, 72


def call_pure(fn, score, *args, **kwargs):
    """Call an edit and check the input score is left exactly as it was."""
    before = copy.deepcopy(score)
    result = fn(score, *args, **kwargs)
    assert score == before
    assert isinstance(result, Score)
    return result


def melody(*notes, resolution=4, tempo=120.0):
    return Score.from_notes(notes, resolution=resolution, tempo=tempo)


def band():
    """A melody track plus a drum track."""
    return Score(
        tracks=(
            Track("melody", 0, False, (Note(0, C4, 4), Note(4, E4, 4))),
            Track("drums", 0, True, (Note(0, 36, 1), Note(4, 38, 1))),
        ),
        resolution=4,
    )


def track_notes(score, track=0):
    return [(n.start, n.pitch, n.duration) for n in score.tracks[track].notes]


# -- tempo ------------------------------------------------------------------------
def test_set_tempo_scales_later_changes_in_proportion():
    score = Score(tracks=(Track("m", notes=(Note(0, C4, 4),)),), tempo=100.0, tempo_changes=((96, 150.0),))
    out = call_pure(set_tempo, score, 80)
    assert out.tempo == 80
    # 150 * 80/100 = 120, and the change stays on its step
    assert out.tempo_changes == ((96, pytest.approx(120.0)),)
    assert out.tracks == score.tracks


@pytest.mark.parametrize("bpm", [40, 160, 95.5])
def test_set_tempo_accepts_the_inclusive_range(bpm):
    assert set_tempo(melody((0, C4, 4)), bpm).tempo == bpm


@pytest.mark.parametrize("bpm", [39.9, 161, 0, -120, float("nan"), "fast"])
def test_set_tempo_rejects_out_of_range(bpm):
    with pytest.raises(CapsuleError):
        set_tempo(melody((0, C4, 4)), bpm)


# -- transpose and octaves ------------------------------------------------------------
def test_transpose_moves_pitched_tracks_only():
    out = call_pure(transpose, band(), 3)
    assert track_notes(out, 0) == [(0, C4 + 3, 4), (4, E4 + 3, 4)]
    assert out.tracks[1] == band().tracks[1]


@pytest.mark.parametrize("semitones", [13, -13, 2.5, True])
def test_transpose_rejects_bad_amounts(semitones):
    with pytest.raises(CapsuleError):
        transpose(band(), semitones)


def test_transpose_refuses_to_push_a_note_out_of_midi_range():
    with pytest.raises(CapsuleError, match="127"):
        transpose(melody((0, 120, 4)), 8)
    with pytest.raises(CapsuleError):
        transpose(melody((0, 5, 4)), -6)
    # 120 + 7 = 127 still fits
    assert track_notes(transpose(melody((0, 120, 4)), 7)) == [(0, 127, 4)]


pitches_st = st.lists(st.tuples(st.integers(0, 64), st.integers(0, 127), st.integers(1, 16)), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(notes=pitches_st, n=st.integers(-12, 12))
def test_transpose_there_and_back_is_identity(notes, n):
    score = melody(*notes)
    lo, hi = min(p for _, p, _ in notes), max(p for _, p, _ in notes)
    if not (0 <= lo + n and hi + n <= 127):
        with pytest.raises(CapsuleError):
            transpose(score, n)
        return
    assert transpose(transpose(score, n), -n) == score


def test_octave_shift_all_pitched_tracks_and_one_track():
    out = call_pure(octave_shift, band(), -2)
    assert track_notes(out, 0) == [(0, C4 - 24, 4), (4, E4 - 24, 4)]
    assert out.tracks[1] == band().tracks[1]
    # any number of octaves is fine if the notes fit: 60 + 5*12 = 120
    assert track_notes(octave_shift(melody((0, C4, 1)), 5)) == [(0, 120, 1)]
    two = Score(tracks=(Track("a", notes=(Note(0, C4, 1),)), Track("b", notes=(Note(0, C4, 1),))))
    out = octave_shift(two, 1, track="b")
    assert track_notes(out, 0) == [(0, C4, 1)] and track_notes(out, 1) == [(0, C5, 1)]


def test_octave_shift_errors():
    with pytest.raises(CapsuleError):
        octave_shift(melody((0, C4, 1)), 6)  # 132
    with pytest.raises(CapsuleError, match="drum"):
        octave_shift(band(), 1, track="drums")
    with pytest.raises(CapsuleError):
        octave_shift(band(), 1, track="nope")


# -- quantize ----------------------------------------------------------------------------
def test_quantize_snaps_starts_and_ends_to_default_sixteenth_grid():
    # resolution 24: a 16th is 6 steps
    score = melody((1, C4, 11), (13, E4, 4), (20, G4, 3), resolution=24)
    out = call_pure(quantize, score)
    # 1->0, end 12->12 ; 13->12, end 17->18 ; 20->18, end 23->24
    assert track_notes(out) == [(0, C4, 12), (12, E4, 6), (18, G4, 6)]


def test_quantize_strength_half_moves_half_way():
    score = melody((2, C4, 8), (16, E4, 6), resolution=24)
    out = quantize(score, strength=0.5)
    # start 2 -> grid 0: half way is 1; end 10 -> grid 12: half way 11
    # start 16 -> grid 18: 17; end 22 -> grid 24: 23
    assert track_notes(out) == [(1, C4, 10), (17, E4, 6)]


def test_quantize_strength_zero_changes_nothing_and_halfway_goes_later():
    score = melody((3, C4, 2), resolution=24)
    assert quantize(score, strength=0) == score
    # 3 is exactly between 0 and 6: the later line wins
    assert track_notes(quantize(score, durations=False)) == [(6, C4, 2)]


def test_quantize_without_durations_keeps_lengths():
    score = melody((5, C4, 7), (11, E4, 2), resolution=4)
    out = quantize(score, grid=4, durations=False)
    assert track_notes(out) == [(4, C4, 7), (12, E4, 2)]


def test_quantize_short_note_gets_a_grid_cell_not_zero_length():
    # start 12 and end 13 both snap to 12: the note becomes one cell (6 steps)
    out = quantize(melody((12, C4, 1), resolution=24))
    assert track_notes(out) == [(12, C4, 6)]
    # half strength: start stays 12, end 13 -> 18 half way = 15.5 -> 16
    out = quantize(melody((12, C4, 1), resolution=24), strength=0.5)
    assert track_notes(out) == [(12, C4, 4)]


def test_quantize_collisions_keep_the_longer_then_louder_note():
    score = melody((0, C4, 4, 50), (1, C4, 8, 60), (1, E4, 4), resolution=4)
    out = quantize(score, grid=4, durations=False)
    # both Cs land on 0: the 8-step one survives; E is a different pitch and stays
    assert [(n.start, n.pitch, n.duration, n.velocity) for n in out.tracks[0].notes] == [
        (0, C4, 8, 60),
        (0, E4, 4, 100),
    ]
    score = melody((0, C4, 4, 50), (1, C4, 4, 90), resolution=4)
    assert [n.velocity for n in quantize(score, grid=4, durations=False).tracks[0].notes] == [90]


def test_quantize_cuts_a_note_still_sounding_when_its_pitch_restarts():
    score = melody((0, C4, 7), (7, C4, 4), resolution=4)
    out = quantize(score, grid=4, durations=False)
    # starts 0 and 8; the first lasted 7 and would overlap: cut to 8
    assert track_notes(out) == [(0, C4, 7), (8, C4, 4)]
    out = quantize(melody((0, C4, 10), (6, C4, 4), resolution=4), grid=4, durations=False)
    assert track_notes(out) == [(0, C4, 8), (8, C4, 4)]


@pytest.mark.parametrize("kwargs", [{"grid": 0}, {"strength": 1.5}, {"strength": -0.1}, {"grid": 2.5}])
def test_quantize_rejects_bad_parameters(kwargs):
    with pytest.raises(CapsuleError):
        quantize(melody((0, C4, 4)), **kwargs)


@settings(max_examples=80, deadline=None)
@given(
    notes=st.lists(
        st.tuples(st.integers(0, 100), st.integers(40, 80), st.integers(1, 20), st.integers(1, 127)),
        min_size=1,
        max_size=25,
    ),
    grid=st.integers(1, 12),
    durations=st.booleans(),
)
def test_quantize_full_strength_lands_on_grid_and_keeps_distinct_notes(notes, grid, durations):
    score = melody(*notes)
    out = quantize(score, grid=grid, strength=1.0, durations=durations)
    result = out.tracks[0].notes
    assert all(n.start % grid == 0 for n in result)
    assert all(n.duration >= 1 for n in result)

    def nearest(x):
        below = x - x % grid
        return below + grid if x - below >= grid - (x - below) else below

    expected = {(nearest(s), p) for s, p, _, _ in notes}
    got = [(n.start, n.pitch) for n in result]
    assert sorted(got) == sorted(expected)  # one note per distinct (start, pitch), none lost
    by_pitch = {}
    for n in result:
        by_pitch.setdefault(n.pitch, []).append(n)
    for same in by_pitch.values():  # no same-pitch overlaps left
        same.sort()
        assert all(a.end <= b.start for a, b in zip(same, same[1:]))


# -- note edits ---------------------------------------------------------------------------
def test_add_and_remove_note_by_any_covered_cell():
    score = melody((0, C4, 4))
    out = call_pure(add_note, score, E4, 2, 3, velocity=90)
    assert [(n.start, n.pitch, n.duration, n.velocity) for n in out.tracks[0].notes] == [
        (0, C4, 4, 100),
        (2, E4, 3, 90),
    ]
    # the E covers steps 2,3,4: removing by step 4 finds it
    assert call_pure(remove_note, out, E4, 4) == score
    with pytest.raises(CapsuleError, match="no note"):
        remove_note(out, E4, 5)  # the E ends at 5
    with pytest.raises(CapsuleError):
        remove_note(out, D4, 0)


def test_add_note_refuses_overlap_and_shortens_into_next_same_pitch():
    score = melody((0, C4, 4), (8, C4, 4))
    with pytest.raises(CapsuleError, match="already"):
        add_note(score, C4, 3, 2)
    out = add_note(score, C4, 5, 10)
    assert track_notes(out) == [(0, C4, 4), (5, C4, 3), (8, C4, 4)]
    for bad in [
        dict(pitch=128, start=0, duration=1),
        dict(pitch=60, start=-1, duration=1),
        dict(pitch=60, start=0, duration=0),
        dict(pitch=60, start=0, duration=1, velocity=0),
    ]:
        with pytest.raises(CapsuleError):
            add_note(score, **bad)


def test_edits_address_tracks_by_name():
    out = add_note(band(), G4, 8, 2, track="melody")
    assert (8, G4, 2) in track_notes(out, 0)
    out = remove_note(band(), 38, 4, track="drums")
    assert track_notes(out, 1) == [(0, 36, 1)]
    with pytest.raises(CapsuleError):
        add_note(band(), G4, 8, 2, track="strings")


def test_toggle_note_is_double_click():
    score = melody((0, C4, 8), resolution=24)
    removed = call_pure(toggle_note, score, 5, C4)  # step 5 is inside the note
    assert removed.tracks[0].notes == ()
    added = call_pure(toggle_note, score, 8, C4)  # empty cell: add a 16th (24 // 4 = 6 steps)
    assert track_notes(added) == [(0, C4, 8), (8, C4, 6)]
    assert track_notes(toggle_note(score, 0, E4, duration=3)) == [(0, C4, 8), (0, E4, 3)]
    # toggling the same cell twice gives back the original
    assert toggle_note(added, 9, C4) == score


def test_change_pitch_drags_the_covering_note():
    score = melody((0, C4, 4), (4, E4, 4))
    out = call_pure(change_pitch, score, C4, 3, D4)
    assert track_notes(out) == [(0, D4, 4), (4, E4, 4)]
    with pytest.raises(CapsuleError):
        change_pitch(score, C4, 4, D4)  # nothing covers (4, C4)
    with pytest.raises(CapsuleError):
        change_pitch(score, C4, 0, 200)
    with pytest.raises(CapsuleError, match="already"):
        change_pitch(melody((0, C4, 4), (2, E4, 4)), C4, 0, E4)


def test_change_length_drags_the_right_edge():
    score = melody((0, C4, 4), (8, C4, 4))
    out = call_pure(change_length, score, C4, 2, 6)
    assert track_notes(out) == [(0, C4, 6), (8, C4, 4)]
    assert track_notes(change_length(score, C4, 2, 1)) == [(0, C4, 1), (8, C4, 4)]
    # stretching into the next C stops where it starts
    assert track_notes(change_length(score, C4, 0, 20)) == [(0, C4, 8), (8, C4, 4)]
    # the last note may grow freely
    assert track_notes(change_length(score, C4, 9, 20)) == [(0, C4, 4), (8, C4, 20)]
    with pytest.raises(CapsuleError):
        change_length(score, C4, 0, 0)
    with pytest.raises(CapsuleError):
        change_length(score, C4, 5, 3)


# -- crop ----------------------------------------------------------------------------------
def test_crop_bars_clips_and_shifts():
    # 4/4 at 4 steps per beat: 16 steps per bar
    score = Score(
        tracks=(
            Track("m", notes=(Note(0, C4, 4), Note(12, D4, 8), Note(20, E4, 4), Note(40, G4, 16)), pedals=((10, 30),)),
        ),
        resolution=4,
        tempo=100.0,
        tempo_changes=((8, 110.0), (24, 90.0), (48, 70.0)),
    )
    out = call_pure(crop_bars, score, 1, 3)  # steps 16..48
    # D (12-20) clipped to 16-20 -> 0-4; E 20-24 -> 4-8; G 40-56 -> 24-32; C dropped
    assert track_notes(out) == [(0, D4, 4), (4, E4, 4), (24, G4, 8)]
    assert out.tracks[0].pedals == ((0, 14),)
    assert out.tempo == 110.0  # in force at step 16
    assert out.tempo_changes == ((8, 90.0),)
    # a window past the music's end is allowed
    assert track_notes(crop_bars(score, 3, 10)) == [(0, G4, 8)]


@pytest.mark.parametrize("bars", [(-1, 2), (2, 2), (3, 1), (4, 5), (1.5, 2)])
def test_crop_bars_rejects_bad_ranges(bars):
    score = melody((0, C4, 64))  # exactly 4 bars
    with pytest.raises(CapsuleError):
        crop_bars(score, *bars)


def test_crop_bars_uses_the_time_signature():
    score = Score.from_notes([(0, C4, 3), (12, E4, 12)], resolution=4, time_signature=(3, 4))
    out = crop_bars(score, 1, 2)  # 3/4: 12 steps per bar
    assert track_notes(out) == [(0, E4, 12)]


# -- tap tempo and arpeggiator ---------------------------------------------------------------
def test_tap_tempo_uses_the_median_interval():
    assert tap_tempo([0.0, 0.5, 1.0, 1.5]) == pytest.approx(120.0)
    # one late tap (0.6 s) does not move the median 0.5 s
    assert tap_tempo([10.0, 10.5, 11.0, 11.6, 12.1]) == pytest.approx(120.0)
    assert tap_tempo([0, 1]) == pytest.approx(60.0)


@pytest.mark.parametrize("taps", [[], [1.0], [0, 1, 1], [0, 2, 1], [0, float("inf")]])
def test_tap_tempo_errors(taps):
    with pytest.raises(CapsuleError):
        tap_tempo(taps)


def chord(*pitches, start=0, duration=8, resolution=8):
    return Score.from_notes([(start, p, duration) for p in pitches], resolution=resolution)


def test_arpeggiate_up_on_c_major_chord():
    out = call_pure(arpeggiate, chord(C4, E4, G4), "up", 2)
    assert track_notes(out) == [(0, C4, 2), (2, E4, 2), (4, G4, 2), (6, C4, 2)]


def test_arpeggiate_down_and_updown_patterns():
    assert [n.pitch for n in arpeggiate(chord(C4, E4, G4), "down", 2).tracks[0].notes] == [G4, E4, C4, G4]
    # updown does not repeat the ends: C E G E C E G E
    out = arpeggiate(chord(C4, E4, G4), "updown", 1)
    assert [n.pitch for n in out.tracks[0].notes] == [C4, E4, G4, E4, C4, E4, G4, E4]
    assert [n.start for n in out.tracks[0].notes] == list(range(8))


def test_arpeggiate_random_is_seeded_and_uses_chord_pitches():
    score = chord(C4, E4, G4, duration=64)
    a = arpeggiate(score, "random", 1, seed=7)
    b = arpeggiate(score, "random", 1, seed=7)
    assert a == b
    pitches = [n.pitch for n in a.tracks[0].notes]
    assert len(pitches) == 64 and set(pitches) <= {C4, E4, G4} and len(set(pitches)) == 3


def test_arpeggiate_default_rate_is_a_sixteenth_and_last_note_is_cut():
    # resolution 8: a 16th is 2 steps; a 7-step chord gives notes at 0,2,4,6 with the last 1 long
    out = arpeggiate(chord(C4, E4, G4, duration=7))
    assert track_notes(out) == [(0, C4, 2), (2, E4, 2), (4, G4, 2), (6, C4, 1)]


def test_arpeggiate_tap_bpm_sets_the_rate():
    # score at 120 bpm, 8 steps/beat; tapped 60 bpm: a 16th of it is 2 * 120/60 = 4 steps
    score = chord(C4, E4, G4, duration=16).replace(tempo=120.0)
    out = arpeggiate(score, tap_bpm=60)
    assert [n.start for n in out.tracks[0].notes] == [0, 4, 8, 12]
    # tapped 240 bpm: 2 * 120/240 = 1 step
    assert len(arpeggiate(score, tap_bpm=240).tracks[0].notes) == 16
    # very fast taps still give at least one step
    assert len(arpeggiate(score, tap_bpm=10_000).tracks[0].notes) == 16
    with pytest.raises(CapsuleError):
        arpeggiate(score, rate=2, tap_bpm=60)
    with pytest.raises(CapsuleError):
        arpeggiate(score, tap_bpm=0)


def test_arpeggiate_single_notes_and_octaves():
    score = melody((0, C4, 4), (4, E4, 4), resolution=8)
    assert arpeggiate(score, rate=1) == score
    out = arpeggiate(melody((0, C4, 4), resolution=8), rate=1, octaves=2)
    assert [n.pitch for n in out.tracks[0].notes] == [C4, C5, C4, C5]
    out = arpeggiate(chord(C4, E4, duration=4), rate=1, octaves=2)
    assert [n.pitch for n in out.tracks[0].notes] == [C4, E4, C5, E4 + 12]


def test_arpeggiate_chord_stops_where_the_next_chord_starts():
    score = Score.from_notes([(0, C4, 16), (0, E4, 16), (4, F4, 4), (4, A4, 4)], resolution=8)
    out = arpeggiate(score, rate=2)
    assert track_notes(out) == [(0, C4, 2), (2, E4, 2), (4, F4, 2), (6, A4, 2)]


def test_arpeggiate_keeps_each_pitch_velocity():
    score = Score.from_notes([(0, C4, 4, 40), (0, G4, 4, 90)], resolution=4)
    out = arpeggiate(score, rate=1)
    assert [(n.pitch, n.velocity) for n in out.tracks[0].notes] == [(C4, 40), (G4, 90), (C4, 40), (G4, 90)]


@pytest.mark.parametrize(
    "kwargs", [{"pattern": "sideways"}, {"rate": 0}, {"octaves": 0}, {"track": "drums"}, {"track": 5}]
)
def test_arpeggiate_errors(kwargs):
    score = band().with_track(0, Track("melody", notes=(Note(0, C4, 4), Note(0, E4, 4))))
    with pytest.raises(CapsuleError):
        arpeggiate(score, **kwargs)
    with pytest.raises(CapsuleError, match="127"):
        arpeggiate(chord(100, 120), octaves=2)


# -- auto-chord ------------------------------------------------------------------------------
# a tune on A natural minor (A B C D E F G), starting and ending on A: A_MINOR_TUNE, shared with test_keys


def pitches_at(score, start):
    return sorted(n.pitch for n in score.tracks[0].notes if n.start == start)


def test_auto_chord_builds_diatonic_triads_on_the_note():
    score = melody((0, D4, 4), (4, B4, 4), (8, C4, 4), (12, 61, 4))
    out = call_pure(auto_chord, score, (0, "major"))
    assert pitches_at(out, 0) == [D4, F4, A4]  # ii: D-F-A
    assert pitches_at(out, 4) == [B4, 74, 77]  # vii°: B-D-F
    assert pitches_at(out, 8) == [C4, E4, G4]  # I
    assert pitches_at(out, 12) == [61, 65, 68]  # C# not in C major: major triad C#-F-G#
    assert len(out.tracks) == 1  # chords go in the melody's own track
    chords = [n for n in out.tracks[0].notes if n not in score.tracks[0].notes]
    assert all(n.velocity == 80 and n.duration == 4 for n in chords)


def test_auto_chord_in_minor_by_name_and_detected():
    score = melody((0, 57, 4), (4, E4, 4), (8, G4, 4))
    out = auto_chord(score, "A minor")
    assert pitches_at(out, 0) == [57, C4, E4]  # A-C-E
    assert pitches_at(out, 4) == [E4, G4, B4]  # natural minor v: E-G-B
    assert pitches_at(out, 8) == [G4, B4, 74]  # VII: G-B-D
    detected = auto_chord(melody(*A_MINOR_TUNE))
    assert detected == auto_chord(melody(*A_MINOR_TUNE), (9, "minor"))
    assert auto_chord(score, "a minor") == out


def test_auto_chord_does_not_cut_the_melody():
    # a held melody G still sounds when the C's triad wants a G: the chord leaves its G out
    score = melody((0, G4, 8), (4, C4, 4))
    out = auto_chord(score, "C major")
    gs = [n for n in out.tracks[0].notes if n.pitch == G4]
    assert [(n.start, n.duration, n.velocity) for n in gs] == [(0, 8, 100)]
    assert pitches_at(out, 0) == [G4, B4, 74]  # G-B-D
    assert pitches_at(out, 4) == [C4, E4]


@pytest.mark.parametrize("key", ["H major", "C dorian", (12, "major"), (0, "lydian"), 5])
def test_auto_chord_rejects_bad_keys(key):
    with pytest.raises(CapsuleError):
        auto_chord(melody((0, C4, 4)), key)


def test_auto_chord_other_errors():
    with pytest.raises(CapsuleError):
        auto_chord(melody((0, C4, 4)), "C major", velocity_scale=0)
    with pytest.raises(CapsuleError, match="drum"):
        auto_chord(band(), "C major", track="drums")


# -- sustain pedal and instruments -------------------------------------------------------------
def test_resolve_sustain_extends_to_pedal_release():
    score = Score(
        tracks=(
            Track(
                "piano",
                notes=(Note(0, C4, 6), Note(0, E4, 2), Note(8, G4, 12), Note(12, A4, 2), Note(0, D4, 4)),
                pedals=((4, 20),),
            ),
        ),
        resolution=4,
    )
    out = call_pure(resolve_sustain, score)
    assert track_notes(out) == [
        (0, C4, 20),  # released at 6 with the pedal down: held until 20
        (0, D4, 20),  # released on the very step the pedal goes down: caught too
        (0, E4, 2),  # released at 2, before the pedal went down
        (8, G4, 12),  # released at 20 as the pedal comes up: unchanged
        (12, A4, 8),  # 12-14 -> until 20
    ]
    assert out.tracks[0].pedals == ()


def test_resolve_sustain_same_pitch_restrike_cuts_the_held_note():
    score = Score(tracks=(Track("piano", notes=(Note(0, C4, 2), Note(10, C4, 2)), pedals=((1, 30),)),))
    out = resolve_sustain(score)
    # the first C would ring to 30 but is struck again at 10; the second rings to 30
    assert track_notes(out) == [(0, C4, 10), (10, C4, 20)]


def test_resolve_sustain_leaves_drums_and_unpedalled_tracks():
    drums = Track("drums", is_drum=True, notes=(Note(0, 36, 1),), pedals=((0, 10),))
    score = Score(tracks=(Track("m", notes=(Note(0, C4, 2),)), drums))
    out = resolve_sustain(score)
    assert track_notes(out, 0) == [(0, C4, 2)]
    assert track_notes(out, 1) == [(0, 36, 1)] and out.tracks[1].pedals == ()


def test_set_instrument():
    out = call_pure(set_instrument, band(), "melody", 40)
    assert out.tracks[0].program == 40 and out.tracks[1] == band().tracks[1]
    assert set_instrument(band(), 0, 127).tracks[0].program == 127
    with pytest.raises(CapsuleError, match="drum"):
        set_instrument(band(), "drums", 1)
    for bad in (128, -1, 2.5):
        with pytest.raises(CapsuleError):
            set_instrument(band(), 0, bad)


def test_public_names_resolve_from_the_package():
    import capsule_lib

    for name, module in capsule_lib._LAZY.items():
        if module == "edit":
            assert getattr(capsule_lib, name) is getattr(edit, name)
            assert name in edit.__all__


def test_arpeggiator_accepts_the_consoles_up_down_spelling():
    from capsule_lib import Note, Score, Track, arpeggiate

    chord = Score(tracks=(Track(notes=(Note(0, 60, 24), Note(0, 64, 24), Note(0, 67, 24))),))
    assert arpeggiate(chord, "up-down") == arpeggiate(chord, "updown")


def test_humanize_moves_starts_within_the_spread_and_keeps_pitches_and_lengths():
    score = Score.from_notes([(i * 24, 60 + i % 5, 12) for i in range(16)], resolution=24)
    played = humanize(score, 0.125, seed=3)
    moves = [b.start - a.start for a, b in zip(score.notes, played.notes)]
    assert max(abs(m) for m in moves) <= 3 and any(moves)  # 0.125 beat = 3 steps at 24 per beat
    assert [(n.pitch, n.duration) for n in played.notes] == [(n.pitch, n.duration) for n in score.notes]
    assert humanize(score, 0.125, seed=3) == played  # the same seed, the same take
    assert humanize(score, 0) == score


def test_rhythm_assist_puts_a_humanized_take_back_on_the_grid():
    score = Score.from_notes([(i * 24, 60 + i % 5, 24) for i in range(8)], resolution=24)
    assert quantize(humanize(score, 0.1, seed=1)).notes == score.notes  # +-2 steps: nearest 16th is the original


def test_humanize_refuses_a_spread_outside_one_beat():
    with pytest.raises(CapsuleError, match="spread"):
        humanize(Score.from_notes([(0, 60, 4)], resolution=4), 2)
