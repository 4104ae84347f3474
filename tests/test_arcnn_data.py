import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from capsule_lib.datasets.bach import N_PITCHES, PITCH_HIGH, PITCH_LOW, WINDOW_STEPS
from capsule_lib.techniques.arcnn.corrupt import (
    add_stray_notes,
    corrupt_window,
    hide_below_top_voice,
    hide_cells,
    melody_line,
    remove_notes,
)
from capsule_lib.techniques.arcnn.data import ArcnnWindows, model_input, notes_to_roll, transpose_limits


def chorale_like(seed: int = 0, n_steps: int = WINDOW_STEPS) -> np.ndarray:
    """Four voices of quarter and eighth notes, like a chorale window."""
    rng = np.random.default_rng(seed)
    notes = []
    for base in (72, 64, 57, 48):
        t = 0
        while t < n_steps:
            d = int(rng.choice([2, 4, 4, 8]))
            notes.append((t, base + int(rng.integers(-3, 4)), min(d, n_steps - t)))
            t += d
    return np.array(notes, dtype=np.int32)


def as_set(notes) -> set:
    return {tuple(n) for n in np.asarray(notes).reshape(-1, 3).tolist()}


@given(st.integers(0, 10_000), st.floats(0, 1))
@settings(max_examples=40, deadline=None)
def test_remove_notes_removes_that_fraction_of_whole_notes(seed, fraction):
    notes = chorale_like(seed)
    kept, removed = remove_notes(notes, fraction, np.random.default_rng(seed))
    assert len(removed) == round(fraction * len(notes))
    assert as_set(kept) | as_set(removed) == as_set(notes)
    assert not as_set(kept) & as_set(removed)


@given(st.integers(0, 10_000), st.integers(0, 20))
@settings(max_examples=40, deadline=None)
def test_stray_notes_are_new_and_never_on_sounding_cells(seed, count):
    notes = chorale_like(seed)
    out, strays = add_stray_notes(notes, count, np.random.default_rng(seed))
    assert len(strays) == count
    assert len(out) == len(notes) + count
    before = notes_to_roll(notes)
    lo, hi = notes[:, 1].min() - 5, notes[:, 1].max() + 5
    for s, p, d in strays:
        assert lo <= p <= hi and 0 <= s and s + d <= WINDOW_STEPS and d >= 1
        assert not before[s : s + d, p - PITCH_LOW].any()
    # strays do not overlap each other either: every stray adds d new cells
    assert notes_to_roll(out).sum() == before.sum() + strays[:, 2].sum()


def test_corruption_is_reproducible_from_the_generator():
    notes = chorale_like(3)
    a = corrupt_window(notes, np.random.default_rng(7))
    b = corrupt_window(notes, np.random.default_rng(7))
    c = corrupt_window(notes, np.random.default_rng(8))
    for field in ("notes", "removed", "added", "visible"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not all(np.array_equal(getattr(a, f), getattr(c, f)) for f in ("notes", "visible"))


def test_corrupt_window_with_fixed_fractions_does_what_it_says():
    notes = chorale_like(1)
    damaged = corrupt_window(
        notes, np.random.default_rng(0), remove_fraction=0.5, stray_fraction=0.1, hide_fraction=0.5, harmonize_prob=0
    )
    assert len(damaged.removed) == round(0.5 * len(notes))
    assert len(damaged.added) == round(0.1 * len(notes))
    assert as_set(damaged.notes) == (as_set(notes) - as_set(damaged.removed)) | as_set(damaged.added)
    assert 0.4 < 1 - damaged.visible.mean() < 0.6
    assert damaged.visible.shape == (WINDOW_STEPS, N_PITCHES)


def test_hide_cells_hides_about_the_fraction():
    visible = hide_cells((WINDOW_STEPS, N_PITCHES), 0.3, np.random.default_rng(0))
    assert abs((~visible).mean() - 0.3) < 0.02
    assert hide_cells((4, 4), 0.0, np.random.default_rng(0)).all()


def test_hiding_below_the_top_voice_keeps_the_melody_and_hides_beneath_it():
    notes = np.array([[0, 72, 4], [0, 60, 8], [4, 74, 4], [8, 50, 4]])  # 50 sounds alone at 8..12
    melody, visible = hide_below_top_voice(notes, 16)
    assert as_set(melody) == {(0, 72, 4), (4, 74, 4), (8, 50, 4)}
    line = melody_line(melody, 16)
    assert line.tolist()[:12] == [72] * 4 + [74] * 4 + [50] * 4 and line[12:].tolist() == [50] * 4
    assert not visible[0, 60 - PITCH_LOW] and visible[0, 72 - PITCH_LOW] and visible[0, 80 - PITCH_LOW]
    assert not visible[5, 73 - PITCH_LOW] and visible[5, 74 - PITCH_LOW]
    damaged = corrupt_window(notes, np.random.default_rng(0), harmonize_prob=1.0, n_steps=16)
    assert as_set(damaged.notes) == as_set(melody) and as_set(damaged.removed) == {(0, 60, 8)}


def test_roll_and_model_input():
    notes = np.array([[0, 60, 4], [2, 20, 4], [126, 93, 10]])  # pitch 20 is out of range
    roll = notes_to_roll(notes)
    assert roll.shape == (WINDOW_STEPS, N_PITCHES) and roll.sum() == 4 + 2
    visible = np.ones_like(roll)
    visible[1, 60 - PITCH_LOW] = False
    x = model_input(roll, visible)
    assert x.shape == (2, WINDOW_STEPS, N_PITCHES) and x.dtype == np.float32
    assert x[0, 1, 60 - PITCH_LOW] == 0 and x[0, 0, 60 - PITCH_LOW] == 1 and x[1, 1, 60 - PITCH_LOW] == 0


def test_transposition_keeps_notes_in_range():
    assert transpose_limits(np.array([[0, PITCH_LOW + 2, 1], [0, PITCH_HIGH - 1, 1]])) == (-2, 1)
    assert transpose_limits(np.array([[0, 60, 1]])) == (-6, 5)
    windows = [chorale_like(i) + np.array([0, -15, 0]) for i in range(4)]  # low windows
    ds = ArcnnWindows(windows, augment=True)
    torch.manual_seed(0)
    for i in range(len(ds)):
        x, y = ds[i]
        assert y.shape == (WINDOW_STEPS, N_PITCHES) and x.shape == (2, WINDOW_STEPS, N_PITCHES)
        assert y.sum() == notes_to_roll(windows[i]).sum()  # nothing fell off the roll


def test_windows_dataset_is_seeded_by_torch_or_fixed_seed():
    windows = [chorale_like(i) for i in range(3)]
    fixed = ArcnnWindows(windows, augment=False, seed=5)
    assert torch.equal(fixed[1][0], fixed[1][0])
    online = ArcnnWindows(windows, augment=True)
    torch.manual_seed(1)
    a = online[0][0]
    torch.manual_seed(1)
    assert torch.equal(a, online[0][0])
    assert not torch.equal(online[0][0], online[0][0])  # fresh corruption on every draw
    x, y = fixed[0]
    assert torch.equal(y, torch.from_numpy(notes_to_roll(windows[0]).astype(np.float32)))


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_removal_extremes(fraction):
    notes = chorale_like(0)
    kept, removed = remove_notes(notes, fraction, np.random.default_rng(0))
    assert len(kept) == (len(notes) if fraction == 0 else 0)
