"""Tests for capsule_lib.datasets._corpus: what the corpus data sets share (checks, splits, packed caches)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest

from capsule_lib import CapsuleError
from capsule_lib.datasets import _corpus
from capsule_lib.datasets._corpus import SplitByPiece, cached_dataset, check_limit, read_packed, write_packed


def test_check_limit():
    for ok in (None, 1, 30):
        check_limit(ok)
    for bad in (0, -1, 2.0, True, "3"):
        with pytest.raises(CapsuleError, match="limit must be a whole number >= 1"):
            check_limit(bad)


@dataclass
class Item:
    name: str
    split: str


@dataclass
class Toy(SplitByPiece):
    songs: list
    _items = "songs"


def test_split_by_piece_keeps_order_and_refuses_unknown_splits():
    toy = Toy([Item("a", "train"), Item("b", "test"), Item("c", "train")])
    assert [i.name for i in toy.split("train")] == ["a", "c"]
    assert toy.split("validation") == []
    with pytest.raises(CapsuleError, match="unknown split"):
        toy.split("dev")


def test_write_and_read_packed_round_trip(tmp_path):
    stem = tmp_path / "x"
    arrays = [np.arange(6, dtype=np.int32).reshape(2, 3), np.zeros((0, 3), np.int32), np.ones((1, 3), np.int32)]
    write_packed(stem, "notes", arrays, {"version": 3, "pieces": ["a", "b", "c"]}, dtype=np.int16, indent=1)
    with np.load(stem.with_suffix(".npz")) as data:  # the cache layout the data sets always had
        assert data["notes"].dtype == np.int16 and list(data["offsets"]) == [0, 2, 2, 3]
    assert json.loads(stem.with_suffix(".json").read_text()) == {"version": 3, "pieces": ["a", "b", "c"]}
    meta, back = read_packed(stem, "notes", version=3, items="pieces")
    assert meta["pieces"] == ["a", "b", "c"]
    assert [b.tolist() for b in back] == [a.tolist() for a in arrays]

    assert read_packed(stem, "notes", version=4) is None  # outdated
    assert read_packed(stem, "tokens", version=3) is None  # another array name
    write_packed(stem, "notes", arrays, {"version": 3, "pieces": ["a"]})
    assert read_packed(stem, "notes", version=3, items="pieces") is None  # pieces and arrays disagree
    assert read_packed(stem, "notes", version=3) is not None
    stem.with_suffix(".json").write_text("{damaged")
    assert read_packed(stem, "notes", version=3) is None
    assert read_packed(tmp_path / "missing", "notes", version=3) is None


def test_write_packed_of_nothing_has_the_row_shape(tmp_path):
    write_packed(tmp_path / "e", "notes", [], {"version": 1, "pieces": []}, dtype=np.int32, row_shape=(4,))
    with np.load(tmp_path / "e.npz") as data:
        assert data["notes"].shape == (0, 4) and list(data["offsets"]) == [0]


@dataclass
class Cached:
    value: int
    cache_path: object = field(default=None)


def test_cached_dataset_builds_once_then_loads(tmp_path):
    store, built = {}, []

    def build():
        built.append(1)
        return Cached(7)

    def save(stem, ds):
        store[stem] = ds.value

    def load(stem):
        return Cached(store[stem]) if stem in store else None

    stem = tmp_path / "c"
    first = cached_dataset(stem, force=False, load=load, save=save, build=build)
    again = cached_dataset(stem, force=False, load=load, save=save, build=build)
    assert first.value == again.value == 7 and len(built) == 1
    assert first.cache_path == stem.with_suffix(".npz")
    cached_dataset(stem, force=True, load=load, save=save, build=build)
    assert len(built) == 2


def test_shipped_results_use_the_packed_layout(tmp_path):
    stem = tmp_path / "s"
    results = [{"path": "a", "notes": np.ones((2, 3), np.int32)}, {"path": "b", "error": "no notes"}]
    _corpus.save_results(stem, "toy", 5, "notes", results)
    meta, arrays = read_packed(stem, "values", version=5)
    assert meta["array"] == "notes" and meta["results"] == [{"path": "a"}, {"path": "b", "error": "no notes"}]
    assert [a.tolist() for a in arrays] == [[[1, 1, 1], [1, 1, 1]]]
