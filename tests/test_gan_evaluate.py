"""Evaluating a GAN on held-out melodies: generated beside real accompaniment, one quality bar."""

from __future__ import annotations

import pytest
from gan_fixtures import SPEC, folded_dataset, synthetic_dataset

from capsule_lib import ModelRegistry
from capsule_lib.techniques.gan import batch_metrics, evaluate_gan, load_gan, quality_bar
from capsule_lib.techniques.gan.evaluate import QUALITY_BAR, allowed_deviation

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_evaluate_reports_generated_beside_ground_truth(in_tiny_home):
    result = evaluate_gan("tiny-gan", "test", dataset=synthetic_dataset())
    assert set(result["tracks"]) == set(SPEC.tracks)
    for _track, metrics in result["tracks"].items():
        assert {
            "empty_bar_rate",
            "pitches_used",
            "pitch_classes_used",
            "polyphonic_rate",
            "in_scale_ratio",
            "qualified_note_rate",
        } <= set(metrics)
        for v in metrics.values():
            assert set(v) == {"generated", "ground_truth"}
    melody = result["tracks"]["soprano"]
    assert all(v["generated"] == v["ground_truth"] for v in melody.values())  # the melody is kept verbatim
    assert result["n_samples"] >= 1 and isinstance(result["quality_bar"]["passed"], bool)
    assert result["quality_bar"] == quality_bar(result["tracks"], skip=("soprano",))
    assert result == evaluate_gan(load_gan("tiny-gan"), "test", dataset=synthetic_dataset())  # same seed, same numbers


def test_quality_bar_tolerances():
    def one(metric, g, t):
        return {"alto": {metric: {"generated": g, "ground_truth": t}}}

    assert quality_bar(one("pitch_classes_used", 3.5, 3.0))["passed"]
    assert not quality_bar(one("pitch_classes_used", 3.7, 3.0))["passed"]
    assert quality_bar(one("in_scale_ratio", 0.91, 0.95))["passed"]
    assert not quality_bar(one("in_scale_ratio", 0.89, 0.95))["passed"]
    assert quality_bar(one("empty_bar_rate", 0.0, 0.009))["passed"]  # within 0.01 of a near-zero ground truth
    assert not quality_bar(one("empty_bar_rate", 0.03, 0.009))["passed"]
    assert not quality_bar(one("polyphonic_rate", None, 0.0))["passed"]  # a silent track fails
    assert quality_bar(one("polyphonic_rate", 0.3, 0.2)) == {
        "passed": False,
        "failures": ["alto polyphonic_rate: generated 0.300 vs ground truth 0.200"],
    }
    assert allowed_deviation("pitch_classes_used", 3.0) == pytest.approx(0.6)
    assert allowed_deviation("empty_bar_rate", 0.01) == 0.01  # near zero: one hundredth, not 20 % of it
    assert allowed_deviation("in_scale_ratio", 0.9) == 0.05
    assert QUALITY_BAR["in_scale_ratio"] == ("absolute", 0.05)


@pytest.mark.slow
def test_a_fold_model_remembers_its_fold_and_is_evaluated_on_its_own_test_pieces(in_tiny_home, fold_models):
    card = ModelRegistry().get("fold-gan-1")
    assert card.hyperparameters["fold"] == 1 and load_gan("fold-gan-1").fold == 1
    assert "1 test, 2 validation" in (card.path / "README.md").read_text()
    test = card.metrics["test"]
    again = evaluate_gan("fold-gan-1", "test", dataset=folded_dataset())  # the fold-0 split given: moved to fold 1
    assert again["tracks"] == test["tracks"] and again["n_pieces"] == 2
    truth = batch_metrics(folded_dataset().with_fold(1).samples("test"), SPEC)["tracks"]
    assert {k: v["ground_truth"] for k, v in again["tracks"]["alto"].items()} == pytest.approx(
        {k: v for k, v in truth["alto"].items()}, abs=1e-4
    )
