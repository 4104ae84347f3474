"""bench/gan_research.py and bench/texture_study.py: research on the GAN evaluation itself."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from gan_fixtures import SPEC, folded_dataset, synthetic_dataset, tacet_alto

from capsule_lib import CapsuleError, ModelRegistry
from capsule_lib.datasets.multitrack import SAMPLE_STEPS, MultitrackDataset
from capsule_lib.techniques.gan import batch_metrics, evaluate_gan, quality_bar
from capsule_lib.techniques.gan.views import cross_validation_lines, real_music_lines

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import gan_research  # noqa: E402
import texture_study  # noqa: E402
from gan_research import cross_validate, piece_interval, real_music_bar, research_evaluation  # noqa: E402

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # training: left out of `make test-fast`


def test_research_evaluation_adds_intervals_and_real_music_to_the_evaluation(in_tiny_home):
    result = research_evaluation("tiny-gan", "test", dataset=synthetic_dataset())
    plain = evaluate_gan("tiny-gan", "test", dataset=synthetic_dataset())
    assert {k: v for k, v in result.items() if k not in ("ground_truth_interval", "real_music_bar")} == plain
    assert result["ground_truth_interval"]["tracks"] == {}  # one test piece: nothing to resample
    assert set(result["real_music_bar"]) == {"train", "validation"}


def test_real_music_of_the_other_splits_is_scored_by_the_same_bar():
    ds = synthetic_dataset()
    truth = batch_metrics(ds.samples("test"), SPEC)
    alike = real_music_bar(ds, "test", truth)
    assert set(alike) == {"train", "validation"} and alike["train"]["n_pieces"] == 4
    assert alike["train"]["passed"] and alike["validation"]["passed"]  # same texture everywhere
    assert alike["train"]["n_samples"] == len(ds.samples("train", hop=SAMPLE_STEPS))
    unlike = MultitrackDataset(SPEC, [tacet_alto(p) if p.split == "train" else p for p in ds.pieces])
    ref = real_music_bar(unlike, "test", truth)
    assert not ref["train"]["passed"] and ref["validation"]["passed"]
    assert ref["train"]["failures"] == ["alto empty_bar_rate: train pieces 0.500 vs ground truth 0.000"]
    assert "train" not in real_music_bar(unlike, "train", truth)  # never against itself
    result = {
        "quality_bar": {"failures": ["tenor polyphonic_rate: generated 0.1 vs ground truth 0.0"]},
        "real_music_bar": ref,
    }
    lines = real_music_lines(result)
    assert lines[0] == "the model: 1 failed check"
    assert lines[1].startswith("the real accompaniment of the 4 train pieces") and "alto empty_bar_rate" in lines[1]
    assert lines[2].endswith(": passed")


def test_piece_interval_measures_how_much_the_held_out_pieces_matter():
    def rows(values):
        return [{"tracks": {"alto": {"empty_bar_rate": v}}, "tonal_distance": {}} for v in values]

    same = piece_interval(rows([0.1, 0.1, 0.1, 0.1]), [0, 0, 1, 1])
    assert same == {"alto": {"empty_bar_rate": [0.1, 0.1]}}  # pieces alike: the mean cannot move
    lo, hi = piece_interval(rows([0.0] * 10 + [0.2] * 10), [0] * 10 + [1] * 10)["alto"]["empty_bar_rate"]
    assert lo == 0.0 and hi == 0.2  # two unlike pieces: either may be all there is
    lo, hi = piece_interval(rows([0.0, 0.2] * 10), list(range(20)))["alto"]["empty_bar_rate"]
    assert 0.0 < lo < 0.1 < hi < 0.2  # twenty pieces: a narrower band around the mean
    nan = piece_interval(rows([math.nan, 0.3, 0.5, math.nan]), [0, 0, 1, 1])  # silent samples are skipped
    assert nan["alto"]["empty_bar_rate"] == [0.3, 0.5]
    assert piece_interval(rows([0.1, 0.2]), [0, 0]) == {}


def test_cross_validation_pools_the_held_out_pieces_of_every_fold(in_tiny_home, fold_models):
    ds = folded_dataset()
    cv = cross_validate(fold_models[::-1], dataset=ds)
    assert cv["folds"] == [0, 1] and cv["n_pieces"] == 4 and set(cv["per_fold"]) == {"0", "1"}
    real = np.concatenate([ds.with_fold(k).samples("test") for k in (0, 1)])
    assert cv["n_samples"] == len(real) == sum(f["n_samples"] for f in cv["per_fold"].values())
    truth = batch_metrics(real, SPEC)["tracks"]
    for track in SPEC.tracks:
        for metric, pair in cv["tracks"][track].items():
            if pair["ground_truth"] is not None:
                assert pair["ground_truth"] == pytest.approx(truth[track][metric], abs=1e-4)
    for fold, name in enumerate(fold_models):  # each fold's part is exactly that model's own evaluation
        own = research_evaluation(name, "test", dataset=ds)
        assert cv["per_fold"][str(fold)]["tracks"] == own["tracks"]
        assert cv["per_fold"][str(fold)]["failures"] == own["quality_bar"]["failures"]
        assert cv["per_fold"][str(fold)]["real_music_bar"] == {"train": own["real_music_bar"]["train"]}
    assert cv["quality_bar"] == quality_bar(cv["tracks"], skip=("soprano",))
    assert set(cv["ground_truth_interval"]["tracks"]["alto"]) >= {"empty_bar_rate"}  # four pieces to resample
    lines = cross_validation_lines(cv)
    assert lines[0].startswith("Folds 0, 1: 4 held-out pieces") and lines[1].startswith("fold 0 (fold-gan-0, 2 test")
    assert "; the real music of its 4 training pieces: " in lines[1]
    with pytest.raises(CapsuleError, match="two models of the same fold"):
        cross_validate([fold_models[0], fold_models[0]], dataset=ds)
    with pytest.raises(CapsuleError, match="at least one model"):
        cross_validate([], dataset=ds)


def test_cross_validate_command_records_the_result_in_the_fold_0_card(in_tiny_home, fold_models, capsys, monkeypatch):
    import json

    monkeypatch.setattr("capsule_lib.techniques.gan.evaluate.resolve_dataset", lambda *a, **k: folded_dataset())
    before = (ModelRegistry().get("fold-gan-0").path / "README.md").read_text()
    assert "## Cross-validation" not in before
    capsys.readouterr()
    assert gan_research.main(["cross-validate", "fold-gan-1", "--record"]) == 2  # no fold-0 model to record in
    assert "name the model of fold 0" in capsys.readouterr().err
    assert gan_research.main(["cross-validate", *fold_models, "--record"]) == 0
    out = capsys.readouterr().out
    assert "Folds 0, 1: 4 held-out pieces" in out and "recorded in" in out
    card = ModelRegistry().get("fold-gan-0")
    assert card.metrics["cross_validation"]["folds"] == [0, 1] and "test" in card.metrics
    text = (card.path / "README.md").read_text()
    assert "## Cross-validation" in text and "--fold K --name fold-gan-0-fold-K" not in text  # Python call, no CLI
    assert "Reproduce: `python bench/gan_research.py cross-validate fold-gan-0 fold-gan-1 --record`." in text
    assert text.replace(text[text.index("## Cross-validation") : text.index("![generator")], "") == before
    assert gan_research.main(["cross-validate", *fold_models, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_pieces"] == 4
    assert gan_research.main(["evaluate", "fold-gan-1"]) == 0
    assert "interval, pieces resampled" in capsys.readouterr().out


def test_texture_study_compares_splits_and_predicts_texture_from_the_melody():
    ds = synthetic_dataset()
    alike = texture_study.study(ds, draws=20)
    assert alike["pieces"] == {"train": 4, "validation": 1, "test": 1}
    assert all(r["passed"] for r in alike["real_music_bar"].values())
    empty = alike["predicted"]["empty_bar_rate"]["alto"]
    assert empty["truth"] == 0.0 and empty["predicted"] == pytest.approx(0.0, abs=1e-9)
    unlike = texture_study.study(
        MultitrackDataset(SPEC, [tacet_alto(p) if p.split != "test" else p for p in ds.pieces]), draws=20
    )
    means = unlike["means"]["empty_bar_rate"]["alto"]
    assert means["train"] == means["validation"] == 0.5 and means["test"] == 0.0
    assert not any(r["passed"] for r in unlike["real_music_bar"].values())
    alto = unlike["predicted"]["empty_bar_rate"]["alto"]  # like melodies cannot tell the textures apart
    assert alto["truth"] == 0.0 and alto["fit_mean"] == 0.5 and alto["predicted"] == pytest.approx(0.5)
    # alike pieces pass the bar in every random split; with the alto tacet in half of them, not
    feasible = alike["feasibility"]
    assert feasible["oracle_passed"] == feasible["training_music_passed"] == 1.0 and feasible["test_pieces"] == 1
    half = MultitrackDataset(SPEC, [tacet_alto(p) if i % 2 else p for i, p in enumerate(ds.pieces)])
    mixed = texture_study.bar_feasibility(half, draws=20)
    assert mixed["oracle_passed"] == 0.0 and mixed["oracle_failed_checks"] == {"alto empty_bar_rate": 1.0}


def test_evaluation_of_the_chorale_model_reproduces_its_card():
    # Parses the 349 chorales (about 30 s on 2 cores), then accompanies every held-out melody.
    result = research_evaluation("musegan-chorale", "test")
    recorded = ModelRegistry().get("musegan-chorale").metrics["test"]
    for track, metrics in recorded["tracks"].items():
        for key, pair in metrics.items():
            for which in ("generated", "ground_truth"):
                assert result["tracks"][track][key][which] == pytest.approx(pair[which], abs=0.01), (track, key)
    assert result["quality_bar"]["passed"]
    assert result["ground_truth_interval"] == recorded["ground_truth_interval"]
    assert result["real_music_bar"] == recorded["real_music_bar"]
