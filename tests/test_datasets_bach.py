import time

import numpy as np
import pytest

from capsule_lib.datasets import _corpus, bach
from capsule_lib.datasets.bach import (
    HOP_STEPS,
    PITCH_HIGH,
    PITCH_LOW,
    SPLITS,
    WINDOW_STEPS,
    build_bach_dataset,
    chorale_paths,
    cut_window,
    load_bach_windows,
    split_of,
    window_starts,
)
from capsule_lib.errors import CapsuleError


def _two_per_split() -> list[str]:
    chosen: dict[str, list[str]] = {s: [] for s in SPLITS}
    for p in chorale_paths():
        if len(chosen[split_of(p)]) < 2:
            chosen[split_of(p)].append(p)
    return [p for s in SPLITS for p in chosen[s]]


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Six real chorales (two per split), parsed once into a private cache."""
    home = tmp_path_factory.mktemp("bach_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("CAPSULE_HOME", str(home))
    paths = _two_per_split()
    started = time.perf_counter()
    ds = build_bach_dataset(paths=paths, progress=False)
    first = time.perf_counter() - started
    yield home, paths, ds, first
    mp.undo()


def test_corpus_paths_are_unique_and_split_rule_is_fixed():
    paths = chorale_paths()
    assert len(paths) == len(set(paths)) >= 300
    splits = [split_of(p) for p in paths]
    # the rule depends on the path alone
    assert splits == [split_of(p) for p in paths]
    assert splits.count("test") / len(paths) >= 0.10
    assert splits.count("validation") > 0 and splits.count("train") > 0.7 * len(paths)


def test_every_chorale_lands_in_exactly_its_split(small):
    _, paths, ds, _ = small
    assert sorted(c.path for c in ds.chorales) == sorted(paths)
    members = {s: {c.path for c in ds.split(s)} for s in SPLITS}
    for a in SPLITS:
        for b in SPLITS:
            if a != b:
                assert not members[a] & members[b]
    for c in ds.chorales:
        assert c.split == split_of(c.path)


def test_no_test_window_appears_in_training(small):
    _, _, ds, _ = small
    train = {w.tobytes() for w in ds.windows("train")}
    test = ds.windows("test")
    assert test and train
    assert not any(w.tobytes() in train for w in test)


def test_notes_fit_the_model_range_and_windows_are_eight_bars(small):
    _, _, ds, _ = small
    for c in ds.chorales:
        assert c.notes.shape[1] == 3 and len(c.notes) > 20
        assert PITCH_LOW <= c.notes[:, 1].min() and c.notes[:, 1].max() <= PITCH_HIGH
        assert (c.notes[:, 2] >= 1).all()
        assert len(ds.windows(c.split)) >= 1
    for w in ds.windows("train"):
        assert (w[:, 0] >= 0).all() and ((w[:, 0] + w[:, 2]) <= WINDOW_STEPS).all()
    summary = ds.summary()
    assert sum(summary[s]["chorales"] for s in SPLITS) == 6
    assert summary["train"]["windows"] == len(ds.windows("train"))


def test_second_build_uses_the_cache(small, monkeypatch):
    home, paths, ds, first = small
    monkeypatch.setenv("CAPSULE_HOME", str(home))
    files = list((home / "cache" / "bach").iterdir())
    assert any(f.suffix == ".npz" for f in files) and any(f.suffix == ".json" for f in files)
    # The cache answers: neither the shipped parse results nor music21 are read again.
    monkeypatch.setattr(_corpus, "parse_with_shipped", lambda *a, **k: pytest.fail("the cache was not used"))
    again = build_bach_dataset(paths=paths, progress=False)
    assert [c.path for c in again.chorales] == [c.path for c in ds.chorales]
    for a, b in zip(again.chorales, ds.chorales):
        np.testing.assert_array_equal(a.notes, b.notes)
    windows = load_bach_windows(paths=paths, progress=False)
    assert set(windows) == set(SPLITS)
    assert len(windows["test"]) == len(ds.windows("test"))


def test_unparsable_chorales_are_skipped_and_counted(monkeypatch, tmp_path):
    monkeypatch.setenv("CAPSULE_HOME", str(tmp_path))
    ds = build_bach_dataset(paths=["bach/bwv269", "bach/no-such-chorale"], progress=False)
    assert [c.path for c in ds.chorales] == ["bach/bwv269"]
    assert [p for p, _ in ds.skipped] == ["bach/no-such-chorale"]
    assert ds.summary()["skipped"] == 1


def test_identical_chorales_are_deduplicated(monkeypatch, tmp_path):
    monkeypatch.setenv("CAPSULE_HOME", str(tmp_path))
    real = bach._parse_one

    def fake(path):  # a second path with the same music, as the corpus has
        return {**real("bach/bwv269"), "path": path}

    monkeypatch.setattr(bach, "_parse_one", fake)
    ds = build_bach_dataset(paths=["bach/bwv269", "bach/copy-of-269"], progress=False, workers=1)
    assert len(ds.chorales) == 1
    assert ds.duplicates == [("bach/copy-of-269", "bach/bwv269")]


@pytest.mark.parametrize("kwargs", [{"limit": 0}, {"limit": "3"}, {"paths": []}, {"paths": "bach/bwv269"}])
def test_bad_selection_raises(kwargs):
    with pytest.raises(CapsuleError):
        build_bach_dataset(progress=False, **kwargs)


def test_unknown_split_raises(small):
    with pytest.raises(CapsuleError, match="split"):
        small[2].windows("dev")


@pytest.mark.parametrize("n_steps", [1, 60, 128, 129, 192, 200, 256, 1000])
def test_windows_cover_every_step_with_hop_of_four_bars(n_steps):
    starts = window_starts(n_steps)
    assert starts[0] == 0 and all(b - a == HOP_STEPS for a, b in zip(starts, starts[1:]))
    assert starts[-1] + WINDOW_STEPS >= n_steps
    assert len(starts) == 1 or starts[-1] < n_steps - WINDOW_STEPS + HOP_STEPS


def test_cut_window_clips_and_shifts_notes():
    notes = np.array([[0, 60, 70], [100, 62, 40], [130, 64, 4], [300, 65, 4]])
    w = cut_window(notes, 64)
    assert w.tolist() == [[0, 60, 6], [36, 62, 40], [66, 64, 4]]
    assert cut_window(notes, 256).tolist() == [[44, 65, 4]]
    assert cut_window(notes, 400).shape == (0, 3)
