"""Genre data sets from music21's corpus: track choice, split by piece, samples, cache."""

import json

import numpy as np
import pytest

from capsule_lib import CapsuleError, Note, Score, Track
from capsule_lib.cli import main
from capsule_lib.datasets import _corpus
from capsule_lib.datasets.multitrack import (
    GENRES,
    N_PITCHES,
    PITCH_LOW,
    SAMPLE_STEPS,
    MultitrackDataset,
    Piece,
    build_genre_dataset,
    genre_paths,
    score_to_notes,
    split_of,
)


def _part(name, pitch, n=4):
    return Track(name, notes=tuple(Note(i * 4, pitch + (i % 2), 4) for i in range(n)))


def test_melody_is_the_highest_part_and_the_accompaniment_the_three_lowest():
    score = Score(
        tracks=(
            _part("tenor", 55),
            _part("bass", 43),
            _part("top", 76),
            _part("second", 70),
            _part("alto", 64),
            Track("kit", is_drum=True, notes=(Note(0, 36, 1),)),
        )
    )
    notes = score_to_notes(score)
    by_track = {t: sorted({p for tt, _, p, _ in notes if tt == t}) for t in range(4)}
    assert by_track == {0: [76, 77], 1: [64, 65], 2: [55, 56], 3: [43, 44]}  # "second" (70) is dropped
    with pytest.raises(CapsuleError, match="3 pitched parts"):
        score_to_notes(Score(tracks=(_part("a", 70), _part("b", 60), _part("c", 50))))


def test_samples_are_four_bars_by_piece_split_and_skip_silent_melodies():
    rows = [(0, s, 72, 4) for s in range(0, 64, 4)] + [(1, s, 48, 16) for s in range(0, 128, 16)]
    piece = Piece("x/a", "a", "train", np.asarray(rows, np.int32))
    ds = MultitrackDataset(GENRES["chorale"], [piece])
    train = ds.samples("train")
    # 8 bars: windows start at bars 1-5; the one at bar 5 has a silent melody and is dropped
    assert train.shape == (4, 4, SAMPLE_STEPS, N_PITCHES)
    assert train[0, 0, :, 72 - PITCH_LOW].all() and train[0, 1, :, 48 - PITCH_LOW].all()
    assert train[3, 0, :16].any() and not train[3, 0, 16:].any()  # the window at bar 4: one bar of melody
    assert ds.samples("test").shape[0] == 0
    assert ds.samples("train", hop=64).shape[0] == 1
    with pytest.raises(CapsuleError, match="unknown split"):
        ds.samples("dev")
    two = MultitrackDataset(GENRES["chorale"], [piece, Piece("x/b", "b", "train", np.asarray(rows[:16], np.int32))])
    samples, owner = two.samples("train", with_pieces=True)
    assert len(samples) == 5 and owner.tolist() == [0, 0, 0, 0, 1]  # the second piece: one 4-bar window
    assert np.array_equal(samples, two.samples("train"))


def test_quartets_use_musicxml_where_both_formats_exist():
    paths = genre_paths("quartet")
    stems = [p.rsplit(".", 1)[0] for p in paths]
    assert len(stems) == len(set(stems)) and any(p.endswith(".mxl") for p in paths)
    assert all(p.split("/")[0] in ("haydn", "mozart", "beethoven") for p in paths)
    ren = genre_paths("renaissance")
    assert any(p.startswith("monteverdi/") for p in ren) and any(p.startswith("palestrina/") for p in ren)


def test_build_parses_splits_and_caches(monkeypatch):
    ds = build_genre_dataset("chorale", progress=False, limit=3, workers=1)
    assert len(ds.pieces) == 3 and ds.spec.tracks == ("soprano", "alto", "tenor", "bass")
    assert all(p.split == split_of(p.path) for p in ds.pieces)
    assert all(set(np.unique(p.notes[:, 0])) == {0, 1, 2, 3} for p in ds.pieces)
    soprano = [p.notes[p.notes[:, 0] == 0, 2].mean() for p in ds.pieces]
    bass = [p.notes[p.notes[:, 0] == 3, 2].mean() for p in ds.pieces]
    assert all(s > b + 12 for s, b in zip(soprano, bass))
    monkeypatch.setattr(_corpus, "parse_with_shipped", lambda *a, **k: pytest.fail("the cache was not used"))
    again = build_genre_dataset("chorale", progress=False, limit=3)
    assert [p.path for p in again.pieces] == [p.path for p in ds.pieces]
    assert all(np.array_equal(a.notes, b.notes) for a, b in zip(again.pieces, ds.pieces))
    with pytest.raises(CapsuleError, match="unknown genre"):
        build_genre_dataset("jazz")


def test_cli_data_genre_json(capsys):
    assert main(["data", "chorale", "--limit", "2", "--json", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["tracks"] == ["soprano", "alto", "tenor", "bass"] and summary["pieces"] == 2
    assert sum(summary[s]["samples"] for s in ("train", "validation", "test")) > 0
    assert main(["data", "chorale", "/some/folder"]) == 2
