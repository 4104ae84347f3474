"""Tests for capsule_lib.keys: pitch names, key finding and scales, worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capsule_lib import CapsuleError, Note, Score, Track, edit, keys, metrics, plot
from capsule_lib.edit import transpose
from capsule_lib.keys import best_key, detect_key, key_name, key_scale, parse_key, pitch_label

C4, D4, E4, F4, G4, A4, B4, C5 = 60, 62, 64, 65, 67, 69, 71, 72

C_MAJOR_TUNE = [
    (0, C4, 8),
    (8, D4, 4),
    (12, E4, 4),
    (16, F4, 4),
    (20, G4, 8),
    (28, A4, 4),
    (32, B4, 4),
    (36, C5, 8),
    (44, G4, 4),
    (48, E4, 4),
    (52, C4, 12),
]
# the same shape on A natural minor (A B C D E F G), starting and ending on A
A_MINOR_TUNE = [
    (0, 57, 8),
    (8, 59, 4),
    (12, C4, 4),
    (16, D4, 4),
    (20, E4, 8),
    (28, F4, 4),
    (32, G4, 4),
    (36, A4, 8),
    (44, E4, 4),
    (48, C4, 4),
    (52, 57, 12),
]


def melody(*notes):
    return Score.from_notes(notes, resolution=4, tempo=120.0)


def test_one_copy_serves_the_editor_the_metrics_and_the_pictures():
    for name in ("detect_key", "parse_key", "key_name"):
        assert getattr(edit, name) is getattr(keys, name)
    assert metrics.best_key is keys.best_key and metrics.key_scale is keys.key_scale
    assert plot.pitch_label is keys.pitch_label


def test_public_names_resolve_from_the_package():
    import capsule_lib

    for name, module in capsule_lib._LAZY.items():
        if module == "keys":
            assert getattr(capsule_lib, name) is getattr(keys, name)
            assert name in keys.__all__


def test_pitch_label_spells_sharps_and_flats_like_the_widgets():
    assert [pitch_label(p) for p in (60, 61, 69, 21, 0)] == ["C4", "C#4", "A4", "A0", "C-1"]
    assert [pitch_label(p) for p in range(60, 72)] == [
        "C4",
        "C#4",
        "D4",
        "Eb4",
        "E4",
        "F4",
        "F#4",
        "G4",
        "Ab4",
        "A4",
        "Bb4",
        "B4",
    ]


def test_detect_key_major_and_minor():
    assert detect_key(melody(*C_MAJOR_TUNE)) == (0, "major")
    assert detect_key(melody(*A_MINOR_TUNE)) == (9, "minor")


def test_detect_key_ignores_drums_and_rejects_nothing_to_go_on():
    score = melody(*C_MAJOR_TUNE)
    drums = Track("drums", is_drum=True, notes=tuple(Note(i, 42, 50) for i in range(0, 60, 4)))  # F#
    assert detect_key(score.replace(tracks=score.tracks + (drums,))) == (0, "major")
    with pytest.raises(CapsuleError):
        detect_key(Score(tracks=(drums,)))
    with pytest.raises(CapsuleError):
        detect_key(melody(*[(i, 60 + i, 1) for i in range(12)]))  # all 12 equally


@settings(max_examples=24, deadline=None)
@given(shift=st.integers(-12, 12))
def test_detect_key_follows_transposition(shift):
    tonic, mode = detect_key(transpose(melody(*C_MAJOR_TUNE), shift))
    assert (tonic, mode) == (shift % 12, "major")


def test_detect_key_final_note_bonus_is_what_best_key_lacks():
    # Mary Had a Little Lamb's E-heavy profile: the whole piece correlates best with E minor,
    # but the tune ends on C, and detect_key's final-note bonus hears C major.
    mary = [E4, D4, C4, D4, E4, E4, E4, D4, D4, D4, E4, G4, G4, E4, D4, C4, D4, E4, E4, E4, E4, D4, D4, E4, D4, C4]
    score = melody(*[(4 * i, p, 4) for i, p in enumerate(mary)])
    assert detect_key(score) == (0, "major")
    assert best_key(score) == (4, "minor")


def test_detect_key_finds_the_written_key_of_every_sample_melody():
    from capsule_lib import list_samples, load_sample

    for sample in list_samples():
        assert detect_key(load_sample(sample["name"])) == parse_key(sample["key"]), sample["name"]


def test_parse_key_accepts_spelled_accidentals():
    assert parse_key("D-flat major") == parse_key("Db major") == (1, "major")
    assert parse_key("F sharp minor") == (6, "minor")
    assert parse_key("Bb") == (10, "major") and parse_key((9.0, "minor")) == (9, "minor")
    assert key_name((9, "minor")) == "A minor" and key_name("A# major") == "Bb major"
    for bad in ("H major", (12, "major"), (True, "major"), (2.5, "major"), (0, "dorian"), 7):
        with pytest.raises(CapsuleError):
            parse_key(bad)


def test_key_scale_major_and_harmonic_minor():
    assert list(np.flatnonzero(key_scale((0, "major")))) == [0, 2, 4, 5, 7, 9, 11]
    assert list(np.flatnonzero(key_scale((9, "minor")))) == [0, 2, 4, 5, 7, 8, 9, 11]  # A minor + G#
    with pytest.raises(CapsuleError):
        key_scale((0, "lydian"))
