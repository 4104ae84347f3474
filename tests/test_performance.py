"""Tests for capsule_lib.performance, the 310-token vocabulary: layout, encode/decode round trips, tolerance."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capsule_lib import performance as T
from capsule_lib.errors import CapsuleError
from capsule_lib.performance import decode, decode_notes, describe, encode, shift_tokens, token_name
from capsule_lib.score import Note, Score, Track

TOL = 0.010 + 1e-9  # start and end within one 10 ms tick


def test_the_transformer_reads_the_same_vocabulary():
    from capsule_lib.techniques.transformer import tokens

    assert tokens.__all__ == T.__all__
    assert all(getattr(tokens, name) is getattr(T, name) for name in T.__all__)


def test_shift_tokens_are_greedy():
    assert shift_tokens(0) == []
    assert shift_tokens(7) == [T.time_shift(7)]
    assert shift_tokens(250) == [T.time_shift(100), T.time_shift(100), T.time_shift(50)]


def test_layout_constants():
    assert T.VOCAB_SIZE == 310
    assert (T.PAD, T.START) == (0, 1)
    assert (T.PITCH_LOW, T.PITCH_HIGH, T.N_PITCHES) == (21, 108, 88)
    assert (T.NOTE_ON_BASE, T.NOTE_OFF_BASE, T.SHIFT_BASE, T.VELOCITY_BASE) == (2, 90, 178, 278)
    assert (T.N_SHIFTS, T.SHIFT_MS, T.N_VELOCITY_BINS) == (100, 10, 32)
    assert T.note_on(21) == 2 and T.note_on(108) == 89
    assert T.note_off(21) == 90 and T.note_off(108) == 177
    assert T.time_shift(1) == 178 and T.time_shift(100) == 277
    assert T.velocity_token(0) == 278 and T.velocity_token(127) == 309
    kinds = [sum(f(t) for f in (T.is_note_on, T.is_note_off, T.is_shift, T.is_velocity)) for t in range(310)]
    assert kinds[:2] == [0, 0] and all(k == 1 for k in kinds[2:])
    with pytest.raises(CapsuleError):
        T.note_on(20)
    with pytest.raises(CapsuleError):
        T.time_shift(101)


def test_velocity_bins():
    assert [T.velocity_bin(v) for v in (0, 3, 4, 100, 127)] == [0, 0, 1, 25, 31]
    for b in range(32):
        assert T.velocity_bin(T.bin_velocity(b)) == b
        assert 1 <= T.bin_velocity(b) <= 127


def test_token_names_and_describe():
    assert token_name(0) == "PAD" and token_name(1) == "START"
    assert token_name(T.note_on(60)) == "NOTE_ON(60)"
    assert token_name(T.note_off(60)) == "NOTE_OFF(60)"
    assert token_name(T.time_shift(25)) == "SHIFT(250ms)"
    assert token_name(T.VELOCITY_BASE + 20) == "VELOCITY(20)"
    names = {token_name(t) for t in range(310)}
    assert len(names) == 310
    text = describe([1, T.note_on(60), T.time_shift(50), T.note_off(60)], limit=2)
    assert text.startswith("START NOTE_ON(60)") and "+2 more" in text
    assert describe([1, 2], limit=None) == "START NOTE_ON(21)"


@pytest.mark.parametrize("bad", [-1, 310, 1000, 2.5, "x", None])
def test_bad_ids_raise(bad):
    with pytest.raises(CapsuleError):
        decode([1, bad])
    with pytest.raises(CapsuleError):
        token_name(bad)


def _seconds(score: Score) -> list[tuple[float, int, float, int]]:
    return sorted(
        (score.step_to_seconds(n.start), n.pitch, score.step_to_seconds(n.end), n.velocity)
        for t in score.tracks
        if not t.is_drum
        for n in t.notes
    )


def _assert_same(original: list, decoded: list) -> None:
    assert len(original) == len(decoded)
    # match note for note by (pitch, start): strikes of one pitch keep their order
    key = lambda x: (x[1], x[0])  # noqa: E731
    for (s0, p0, e0, v0), (s1, p1, e1, v1) in zip(sorted(original, key=key), sorted(decoded, key=key)):
        assert p0 == p1
        assert T.velocity_bin(v0) == T.velocity_bin(v1)
        assert abs(s0 - s1) <= TOL, (s0, s1)
        assert abs(e0 - e1) <= TOL, (e0, e1)


def _roundtrip(score: Score) -> None:
    original = sorted(_seconds(score), key=lambda x: (x[0], x[1]))
    _assert_same(original, decode_notes(encode(score)))
    # through a Score on a 10 ms grid (60 bpm, 100 steps per beat): nothing is lost either
    back = decode(encode(score), tempo=60.0, resolution=100)
    _assert_same(original, [(s, p, e, v) for s, p, e, v in _seconds(back)])


def test_hand_cases_roundtrip():
    res = 24
    notes = [
        Note(0, 60, 24, 100),  # plain
        Note(0, 64, 24, 60),
        Note(0, 67, 24, 61),  # chord (same bin, one VELOCITY)
        Note(24, 72, 400, 127),  # long note: > 1 s at 120 bpm -> repeated shifts
        Note(1000, 48, 12, 1),  # after a long rest (> 8 s)
        Note(1012, 50, 2, 40),  # short note
    ]
    score = Score(tracks=(Track("a", notes=tuple(notes)),), tempo=120.0, resolution=res)
    toks = encode(score)
    assert toks[0] == T.START
    assert toks.count(T.time_shift(100)) >= 8
    _roundtrip(score)
    assert encode(score, start=False) == toks[1:]


def test_velocity_token_only_on_change():
    score = Score.from_notes([(0, 60, 4, 100), (4, 62, 4, 101), (8, 64, 4, 20)], resolution=4)
    toks = encode(score)
    vel = [t for t in toks if T.is_velocity(t)]
    assert vel == [T.velocity_token(100), T.velocity_token(20)]


def test_tempo_changes_roundtrip():
    notes = tuple(Note(i * 12, 60 + i % 12, 12, 90) for i in range(20))
    score = Score(
        tracks=(Track("m", notes=notes),), tempo=90.0, resolution=24, tempo_changes=((48, 180.0), (120, 45.0))
    )
    toks = decode_notes(encode(score))
    assert abs(toks[-1][2] - score.duration_seconds) <= TOL
    _roundtrip(score)


def test_equal_time_order_off_before_on_then_pitch():
    score = Score.from_notes([(0, 62, 4, 80), (0, 60, 4, 80), (4, 64, 4, 80)], resolution=4)
    toks = encode(score, start=False)
    names = [token_name(t) for t in toks]
    assert names == [
        "VELOCITY(20)",
        "NOTE_ON(60)",
        "NOTE_ON(62)",
        "SHIFT(500ms)",
        "NOTE_OFF(60)",
        "NOTE_OFF(62)",
        "NOTE_ON(64)",
        "SHIFT(500ms)",
        "NOTE_OFF(64)",
    ]


def test_overlapping_same_pitch_ends_earlier_note():
    score = Score.from_notes([(0, 60, 8, 100), (4, 60, 8, 50)], resolution=4)  # 120 bpm: 125 ms steps
    got = decode_notes(encode(score))
    assert [(s, p, e) for s, p, e, _ in got] == [(0.0, 60, 0.5), (0.5, 60, 1.5)]
    # same start: merged into one (the longer) note
    same = Score.from_notes([(0, 60, 4, 100), (0, 60, 8, 50)], resolution=4)
    stats = {}
    got = decode_notes(encode(same, stats=stats))
    assert [(s, p, e) for s, p, e, _ in got] == [(0.0, 60, 1.0)] and stats["merged"] == 1


def test_out_of_range_pitches_dropped_and_counted():
    score = Score.from_notes([(0, 20, 4), (0, 21, 4), (0, 108, 4), (0, 109, 4), (4, 0, 4)], resolution=4)
    stats = {}
    toks = encode(score, stats=stats)
    assert stats["dropped"] == 3 and stats["notes"] == 2
    assert sorted(p for _, p, _, _ in decode_notes(toks)) == [21, 108]


def test_drums_skipped_by_default_and_track_selection():
    mel = Track("mel", notes=(Note(0, 60, 4),))
    drums = Track("drums", is_drum=True, notes=(Note(0, 36, 4),))
    bass = Track("bass", notes=(Note(0, 40, 4),))
    score = Score(tracks=(mel, drums, bass), resolution=4)
    assert sorted(p for _, p, _, _ in decode_notes(encode(score))) == [40, 60]
    assert [p for _, p, _, _ in decode_notes(encode(score, tracks=["bass"]))] == [40]
    assert [p for _, p, _, _ in decode_notes(encode(score, tracks=1))] == [36]
    with pytest.raises(CapsuleError):
        encode(score, tracks=["nope"])


def test_zero_length_after_rounding_keeps_a_10ms_note():
    # 1 step at 24 steps/beat and 240 bpm is ~10.4 ms; at 960 steps/beat a step is 0.26 ms.
    score = Score.from_notes([(0, 60, 1, 100)], resolution=960, tempo=240.0)
    got = decode_notes(encode(score))
    assert got == [(0.0, 60, 0.01, 102)]
    # a hand-written on/off at the same time also decodes to one 10 ms note
    got = decode_notes([T.note_on(60), T.note_off(60)])
    assert got == [(0.0, 60, 0.01, T.DEFAULT_VELOCITY)]
    sc = decode([T.note_on(60), T.note_off(60)], tempo=120, resolution=4)
    assert sc.tracks[0].notes == (Note(0, 60, 1, T.DEFAULT_VELOCITY),)


def test_decode_is_tolerant():
    toks = [
        T.PAD,
        T.START,
        T.note_off(61),
        T.VELOCITY_BASE + 5,
        T.note_on(60),
        T.time_shift(50),
        T.note_on(60),
        T.time_shift(50),
        T.START,
        T.PAD,
        T.note_on(64),
        T.time_shift(100),
    ]
    got = decode_notes(toks)
    assert got == [(0.0, 60, 0.5, 22), (0.5, 60, 2.0, 22), (1.0, 64, 2.0, 22)]  # closed at the end
    score = decode(toks, tempo=120, resolution=4, program=5, name="x")
    assert score.tempo == 120 and score.resolution == 4
    assert score.tracks[0].program == 5 and score.tracks[0].name == "x"
    assert [(n.start, n.pitch, n.duration) for n in score.tracks[0].notes] == [(0, 60, 4), (4, 60, 12), (8, 64, 8)]
    assert decode([]).tracks[0].notes == ()
    assert T.total_seconds(toks) == 2.0


@given(st.lists(st.integers(0, 309), max_size=200))
def test_decode_never_raises_on_valid_ids(toks):
    score = decode(toks, tempo=100, resolution=12)
    assert all(21 <= n.pitch <= 108 and n.duration >= 1 for n in score.tracks[0].notes)


@st.composite
def performances(draw):
    """Scores with tempo changes, chords, long notes and rests; no same-pitch overlaps."""
    res = draw(st.sampled_from([4, 12, 24, 96]))
    tempo = draw(st.floats(40, 240))
    changes = tuple(
        sorted(
            {(draw(st.integers(1, 40 * res)), draw(st.floats(30, 300))) for _ in range(draw(st.integers(0, 3)))},
            key=lambda c: c[0],
        )
    )
    changes = tuple(dict(changes).items())
    score0 = Score(tempo=tempo, resolution=res, tempo_changes=changes)
    notes, busy = [], {}
    for _ in range(draw(st.integers(1, 25))):
        pitch = draw(st.integers(21, 108))
        start = draw(st.integers(0, 40 * res))
        dur = draw(st.one_of(st.integers(1, 2 * res), st.integers(1, 20 * res)))
        # notes must be at least 10 ms long and strikes of one pitch 10 ms apart
        if score0.step_to_seconds(start + dur) - score0.step_to_seconds(start) < 0.0101:
            continue
        spans = busy.setdefault(pitch, [])
        if any(start < e + 2 * res and s < start + dur + 2 * res for s, e in spans):
            continue
        spans.append((start, start + dur))
        notes.append(Note(start, pitch, dur, draw(st.integers(1, 127))))
    return Score(tracks=(Track("m", notes=tuple(notes)),), tempo=tempo, resolution=res, tempo_changes=changes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(performances())
def test_roundtrip_property(score):
    _roundtrip(score)


@settings(max_examples=30, deadline=None)
@given(performances())
def test_encoding_is_canonical(score):
    toks = encode(score)
    assert all(0 <= t < 310 for t in toks)
    # re-encoding the decoded performance gives the same tokens
    again = encode(decode(toks, tempo=60.0, resolution=100))
    assert again == toks
