"""Score ⇄ piano roll conversions."""

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import grid_tracks

from capsule_lib import CapsuleError, Note, Score, Track, from_pianoroll, to_onsets, to_pianoroll
from capsule_lib.roll import track_from_pianoroll


def test_roll_values_are_velocities_and_shape_follows_score():
    s = Score.from_notes([(0, 60, 4, 80), (2, 64, 2, 100)], resolution=4)
    roll = to_pianoroll(s)
    assert roll.shape == (4, 128) and roll.dtype == np.uint8
    assert roll[:, 60].tolist() == [80, 80, 80, 80]
    assert roll[:, 64].tolist() == [0, 0, 100, 100]
    assert to_pianoroll(s, binary=True).sum() == 6
    assert to_pianoroll(s, length=2).shape == (2, 128)


def test_repeated_notes_need_onsets_to_stay_apart():
    s = Score.from_notes([(0, 62, 2), (2, 62, 2)], resolution=4)
    roll, onsets = to_pianoroll(s), to_onsets(s)
    assert from_pianoroll(roll, onsets, resolution=4).notes == s.notes
    merged = from_pianoroll(roll, resolution=4).notes
    assert merged == (Note(0, 62, 4, 100),)


def test_binary_and_float_rolls_use_given_velocity():
    roll = np.zeros((8, 128), dtype=bool)
    roll[1:5, 70] = True
    assert from_pianoroll(roll, velocity=64).notes == (Note(1, 70, 4, 64),)
    probs = np.zeros((8, 128), dtype=np.float32)
    probs[2:4, 50] = 0.9
    probs[5, 50] = 0.2  # below one half: silence
    assert from_pianoroll(probs).notes == (Note(2, 50, 2, 100),)


def test_merged_roll_excludes_drums():
    s = Score(tracks=(Track("m", notes=(Note(0, 60, 2),)), Track("d", is_drum=True, notes=(Note(0, 36, 1),))))
    assert to_pianoroll(s, track=None, binary=True)[:, 36].sum() == 0
    assert to_pianoroll(s, track="d", binary=True)[:, 36].sum() == 1


def test_bad_shapes_raise():
    with pytest.raises(CapsuleError, match="shape"):
        from_pianoroll(np.zeros((4, 88)))
    with pytest.raises(CapsuleError, match="onsets shape"):
        from_pianoroll(np.zeros((4, 128)), np.zeros((3, 128), dtype=bool))


@settings(max_examples=60, deadline=None)
@given(grid_tracks(is_drum=False))
def test_track_round_trip_with_onsets(track):
    s = Score(tracks=(track,), resolution=4)
    back = track_from_pianoroll(to_pianoroll(s), to_onsets(s))
    assert back.notes == track.notes
