"""GAN data: the data set by name, folds of the split rule, samples as tensors, rolls <-> scores, batch metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gan_fixtures import SPEC, bucket_paths, folded_dataset, synthetic_dataset

from capsule_lib import CapsuleError, Note
from capsule_lib.datasets.multitrack import (
    GENRES,
    N_PITCHES,
    PITCH_LOW,
    SAMPLE_STEPS,
    GenreSpec,
    MultitrackDataset,
    Piece,
    split_of,
)
from capsule_lib.techniques.gan import GanSamples, batch_metrics, resolve_dataset, roll_to_score
from capsule_lib.techniques.gan.data import roll_to_notes


def test_samples_transpose_all_tracks_together_and_stay_in_range():
    ds = synthetic_dataset()
    samples = ds.samples("train")
    data = GanSamples(samples, transpose=True)
    torch.manual_seed(0)
    for i in range(len(data)):
        x = data[i] > 0
        orig = torch.from_numpy(samples[i])
        assert x.sum() == orig.sum()  # nothing fell off the range
        shifts = [s for s in range(-5, 7) if torch.equal(torch.roll(orig, s, dims=-1), x)]
        assert len(shifts) == 1  # one shift for every track


def test_roll_to_notes_turns_runs_into_notes():
    roll = np.zeros((8, N_PITCHES), bool)
    roll[0:3, 10] = True
    roll[5:8, 10] = True
    roll[2, 20] = True
    notes = roll_to_notes(roll, velocity=70)
    assert notes == (Note(0, PITCH_LOW + 10, 3, 70), Note(5, PITCH_LOW + 10, 3, 70), Note(2, PITCH_LOW + 20, 1, 70))


def test_roll_to_score_uses_the_spec_instruments():
    s = np.zeros((4, SAMPLE_STEPS, N_PITCHES), bool)
    s[2, 0:4, 10] = True
    score = roll_to_score(s, SPEC)
    assert [t.name for t in score.tracks] == list(SPEC.tracks) and score.tracks[2].notes[0].duration == 4
    assert score.resolution == 4


def test_batch_metrics_match_hand_counts():
    sample = np.zeros((1, 4, SAMPLE_STEPS, N_PITCHES), bool)
    sample[0, 0, :, 60 - PITCH_LOW] = True  # melody: C held for 4 bars
    sample[0, 1, :16, 64 - PITCH_LOW] = True  # alto: E in bar 1 only
    sample[0, 2, :, [67 - PITCH_LOW, 71 - PITCH_LOW]] = True  # tenor: G+B throughout
    sample[0, 3, 0:4, 61 - PITCH_LOW] = True  # bass: one C#
    m = batch_metrics(sample, SPEC)["tracks"]
    assert m["alto"]["empty_bar_rate"] == 0.75
    assert m["tenor"]["polyphonic_rate"] == 1.0 and m["tenor"]["pitch_classes_used"] == 2
    assert m["soprano"]["polyphonic_rate"] == 0.0
    assert m["bass"]["in_scale_ratio"] == 1.0  # one pitch class fits some major scale


def test_batch_metrics_count_a_silent_last_bar_of_a_sample_as_empty():
    sample = np.zeros((1, 4, SAMPLE_STEPS, N_PITCHES), bool)
    sample[0, :, :48, 60 - PITCH_LOW] = True  # every track plays bars 1-3, all rest in bar 4
    sample[0, 1, 16:32] = False  # the alto also rests in bar 2
    m = batch_metrics(sample, SPEC)["tracks"]
    assert m["soprano"]["empty_bar_rate"] == 0.25  # a 4-bar sample, not a 3-bar score
    assert m["alto"]["empty_bar_rate"] == 0.5


def test_genre_specs_are_consistent():
    for name, spec in GENRES.items():
        assert spec.name == name and len(spec.tracks) == 4 and not any(spec.is_drum)
        assert GenreSpec.from_dict(spec.to_dict()) == spec


def test_resolve_dataset_takes_a_data_set_a_genre_or_a_folder(tmp_path):
    ds = synthetic_dataset()
    assert resolve_dataset(ds) is ds
    with pytest.raises(CapsuleError, match="unknown dataset"):
        resolve_dataset("no-such-genre")
    with pytest.raises(CapsuleError, match="genre name or a folder"):
        resolve_dataset(42)


def test_folds_move_the_split_rule_round_and_hold_out_every_piece_once():
    from capsule_lib.datasets._corpus import FOLDS, bucket_of, check_fold, split_rule

    paths = [f"any/path{i}.mxl" for i in range(200)]
    assert [split_of(p, 0) for p in paths] == [split_of(p) for p in paths]  # fold 0 is the fixed split
    for p in paths:
        splits = [split_of(p, k) for k in range(FOLDS)]
        assert splits.count("test") == 1 and splits.count("validation") == 1
        assert splits.index("test") == bucket_of(p) and splits.index("validation") == (bucket_of(p) - 1) % FOLDS
    ds = folded_dataset()
    assert ds.fold == 0 and ds.summary()["split_rule"] == split_rule(0)
    f2 = ds.with_fold(2)
    assert f2.fold == 2 and "2 test, 3 validation" in f2.summary()["split_rule"]
    assert [p.path for p in f2.split("test")] == bucket_paths(2, 2)
    assert [p.path for p in f2.split("validation")] == bucket_paths(3, 2)
    assert all(a.notes is b.notes for a, b in zip(ds.pieces, f2.pieces)) and ds.split("test") != f2.split("test")
    assert [p.split for p in f2.with_fold(0).pieces] == [p.split for p in ds.pieces]
    keyed = MultitrackDataset(SPEC, [Piece("a/b/x.npz", "x", "train", ds.pieces[0].notes, key=bucket_paths(3, 1)[0])])
    assert keyed.with_fold(3).pieces[0].split == "test"  # the split key, not the path, decides
    for bad in (-1, 10, 1.5, "2", True, None):
        with pytest.raises(CapsuleError, match="fold must be a whole number from 0 to 9"):
            check_fold(bad)
