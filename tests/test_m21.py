"""Score ⇄ music21 stream conversions, on hand-made and real corpus music."""

from fractions import Fraction

import pytest

from capsule_lib import Note, Score, Track, from_music21, to_music21


def test_round_trip_through_music21_keeps_notes_programs_tempo():
    s = Score(
        tracks=(
            Track("melody", program=73, notes=(Note(0, 72, 6), Note(6, 74, 2), Note(8, 76, 8))),
            Track("bass", program=32, notes=(Note(0, 48, 16),)),
        ),
        tempo=96.0,
        time_signature=(3, 4),
        resolution=4,
        title="Test",
    )
    stream = to_music21(s)
    assert stream.parts[0].flatten().notes[0].quarterLength == Fraction(3, 2)
    back = from_music21(stream, resolution=4)
    assert [t.notes for t in back.tracks] == [t.notes for t in s.tracks]
    assert [t.program for t in back.tracks] == [73, 32]
    assert back.tempo == 96.0 and back.time_signature == (3, 4) and back.title == "Test"


def test_real_chorale_from_the_bundled_corpus():
    from music21 import corpus

    chorale = corpus.parse("bach/bwv66.6")
    s = from_music21(chorale, resolution=4)
    assert len(s.tracks) == 4
    assert [t.name for t in s.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    soprano, bass = s.tracks[0], s.tracks[3]
    # ties are merged and the soprano sits above the bass throughout
    assert min(n.pitch for n in soprano.notes) > max(n.pitch for n in bass.notes) - 12
    expected_beats = chorale.parts[0].highestTime
    assert soprano.end == pytest.approx(expected_beats * 4, abs=4)


def test_expand_repeats_writes_repeats_out_and_keeps_a_piece_it_cannot_expand():
    from music21 import bar, note, stream

    from capsule_lib.m21 import expand_repeats

    part = stream.Part()
    for pitch, barline in ((60, None), (62, bar.Repeat(direction="end"))):
        m = stream.Measure()
        m.append(note.Note(pitch, quarterLength=4))
        if barline is not None:
            m.rightBarline = barline
        part.append(m)
    expanded, ok = expand_repeats(part)
    assert ok and [n.pitch.midi for n in expanded.flatten().notes] == [60, 62, 60, 62]

    class Unexpandable:
        def expandRepeats(self):
            raise ValueError("malformed repeats")

    piece = Unexpandable()
    assert expand_repeats(piece) == (piece, False)


@pytest.mark.slow
def test_parse_corpus_is_the_chorale_as_a_score():
    from music21 import corpus

    from capsule_lib.m21 import parse_corpus

    score, expanded = parse_corpus("bach/bwv66.6", resolution=4)
    assert expanded
    assert score == from_music21(corpus.parse("bach/bwv66.6").expandRepeats(), resolution=4)
