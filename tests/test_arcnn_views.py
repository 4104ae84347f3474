"""The notebook helpers of the AR-CNN: windows and corruptions as scores, history and card of a model."""

import json

import numpy as np
import pytest

from capsule_lib import CapsuleError, ModelRegistry, Note, Score, Track
from capsule_lib.models import model_card_text, model_history
from capsule_lib.techniques.arcnn import corruption_score, edit_summary, window_score

WINDOW = np.array([[s, p, 4] for s in range(0, 128, 4) for p in (60, 64, 67)], dtype=np.int32)


def test_window_score_keeps_every_note_on_the_model_grid():
    score = window_score(WINDOW, "test")
    assert score.resolution == 4 and score.n_bars == 8
    assert sorted((n.start, n.pitch, n.duration) for n in score.notes) == sorted(map(tuple, WINDOW.tolist()))


def test_corruption_score_partitions_the_window():
    damaged, answer = corruption_score(WINDOW, seed=1, remove_fraction=0.5, stray_fraction=0.1)
    kept = {(n.start, n.pitch, n.duration) for n in damaged.tracks[0].notes}
    strays = {(n.start, n.pitch, n.duration) for n in damaged.tracks[1].notes}
    removed = {(n.start, n.pitch, n.duration) for n in answer.tracks[1].notes}
    original = set(map(tuple, WINDOW.tolist()))
    assert kept | removed == original and not kept & removed
    assert len(removed) == pytest.approx(len(original) / 2, abs=1)
    assert len(strays) == round(0.1 * len(original)) and not strays & original
    assert [t.name for t in damaged.tracks] == ["kept", "stray"] and [t.name for t in answer.tracks] == [
        "kept",
        "removed",
    ]
    with pytest.raises(CapsuleError):
        corruption_score(WINDOW, remove_fraction=1.5)


def test_history_and_card_of_a_model():

    reg = ModelRegistry()
    reg.create("m", "arcnn")
    with pytest.raises(CapsuleError, match="history"):
        model_history("m", reg)
    with pytest.raises(CapsuleError, match="card"):
        model_card_text("m", reg)
    folder = reg.get("m").path
    (folder / "history.json").write_text(json.dumps([{"epoch": 1, "loss": 0.3}, {"epoch": 2, "loss": 0.2}]))
    (folder / "README.md").write_text("# m\n\ntext\n![loss](loss.png)\n")
    assert [h["loss"] for h in model_history("m", reg)] == [0.3, 0.2]
    assert model_card_text("m", reg) == "# m\n\ntext"
    (folder / "history.json").write_text("{broken")
    with pytest.raises(CapsuleError, match="unreadable"):
        model_history("m", reg)


def test_edit_summary_counts_across_resolutions():
    before = Score(tracks=(Track(notes=(Note(0, 60, 24), Note(24, 62, 24), Note(48, 64, 24))),), resolution=24)
    after = Score(
        tracks=(Track(notes=(Note(0, 60, 4), Note(8, 64, 4), Note(12, 67, 4), Note(12, 55, 4))),), resolution=4
    )
    assert edit_summary(before, after) == {"input_notes": 3, "kept": 2, "removed": 1, "added": 2}


def test_plot_unet_draws_one_box_per_block():
    from capsule_lib.techniques.arcnn import ArcnnConfig, plot_unet

    ax = plot_unet(ArcnnConfig(base_channels=8, depth=3))
    labels = [t.get_text() for t in ax.texts]
    assert "8 ch\n128x64" in labels and "64 ch\n16x8" in labels  # input level and bottleneck
    assert len([t for t in labels if " ch\n" in t]) == 2 * 3 + 1


def test_metrics_table():
    from capsule_lib.techniques.arcnn import metrics_table

    text = metrics_table({"a": {"x": 1.0, "y": float("nan")}, "b": {"x": 0.5}})
    assert text.splitlines() == ["| metric | a | b |", "|---|---|---|", "| x | 1.000 | 0.500 |", "| y | - | - |"]
