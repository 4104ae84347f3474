"""The score type: validation, shape and re-gridding."""

import pytest

from capsule_lib import CapsuleError, Note, Score, Track


@pytest.mark.parametrize(
    "kwargs,msg",
    [
        (dict(start=0, pitch=128, duration=1), "pitch 128"),
        (dict(start=0, pitch=60, duration=0), "duration 0"),
        (dict(start=-1, pitch=60, duration=1), "start -1"),
        (dict(start=0, pitch=60, duration=1, velocity=0), "velocity 0"),
    ],
)
def test_note_validation(kwargs, msg):
    with pytest.raises(CapsuleError, match=msg):
        Note(**kwargs)


def test_track_sorts_notes_and_score_measures_bars():
    t = Track("m", notes=(Note(8, 60, 4), Note(0, 62, 4)))
    assert [n.start for n in t.notes] == [0, 8]
    s = Score(tracks=(t,), resolution=4, time_signature=(3, 4))
    assert s.steps_per_bar == 12 and s.end == 12 and s.n_bars == 1
    assert Score(tracks=(t,), resolution=4, time_signature=(6, 8)).steps_per_bar == 12


def test_invalid_score_fields():
    with pytest.raises(CapsuleError, match="time signature 3/5"):
        Score(time_signature=(3, 5))
    with pytest.raises(CapsuleError, match="tempo"):
        Score(tempo=0)
    with pytest.raises(CapsuleError, match="program 200"):
        Track(program=200)


def test_with_resolution_rescales_and_keeps_notes_audible():
    s = Score.from_notes([(0, 60, 24), (24, 62, 1)], resolution=24)
    coarse = s.with_resolution(4)
    assert coarse.notes == (Note(0, 60, 4), Note(4, 62, 1))
    assert coarse.with_resolution(24).notes[0] == Note(0, 60, 24)


def test_seconds_follow_tempo_changes():
    s = Score(tracks=(Track(notes=(Note(0, 60, 16),)),), tempo=120, resolution=4, tempo_changes=((8, 60.0),))
    assert s.step_to_seconds(8) == pytest.approx(1.0)
    assert s.duration_seconds == pytest.approx(1.0 + 2.0)
