"""Training and evaluating a (tiny) Transformer-XL end to end, and its command line."""

import json

import numpy as np
import pytest

from capsule_lib import ModelRegistry, list_samples, load_sample
from capsule_lib.datasets.classical import ClassicalDataset, Piece
from capsule_lib.techniques.transformer import (
    TransformerConfig,
    encode,
    evaluate_transformer,
    extend,
    train_transformer,
)
from capsule_lib.techniques.transformer.evaluate import bigram_baseline

TINY = TransformerConfig(d_model=32, n_heads=2, n_layers=1, d_ff=64, segment_len=16, mem_len=16, dropout=0.0)


pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # training: left out of `make test-fast`


@pytest.fixture(scope="module")
def melodies():
    """The sample melodies as a small data set: 6 train, 2 validation, 2 test pieces."""
    names = [s["name"] for s in list_samples()]
    splits = ["train"] * 6 + ["validation"] * 2 + ["test"] * 2
    pieces = [
        Piece(
            path=f"samples/{n}",
            composer="samples",
            split=sp,
            tokens=np.array(encode(load_sample(n)), np.int16),
            seconds=load_sample(n).duration_seconds,
        )
        for n, sp in zip(names, splits)
    ]
    return ClassicalDataset(pieces, [], [])


def test_bigram_baseline_is_a_distribution_fitted_on_counts():
    base = bigram_baseline([np.array([1, 5, 6, 5, 6])])
    assert np.allclose(np.exp(base).sum(axis=1), 1.0)
    assert base[5, 6] > base[5, 7] and np.isneginf(base[5, 0])


def test_training_registers_a_model_that_beats_the_bigram_baseline_and_extends(melodies):
    card = train_transformer(
        "tiny-xl",
        steps=60,
        steps_per_epoch=20,
        lr=3e-3,
        batch_size=4,
        model_config=TINY,
        dataset=melodies,
        progress=False,
        eval_pieces=2,
    )
    assert card.status == "complete" and card.technique == "transformer"
    assert card.hyperparameters["training"]["steps"] == 60
    history = json.loads((card.path / "history.json").read_text())
    assert history[0]["loss"] > history[-1]["loss"]
    assert "val_loss" in history[-1] and "perplexity" in history[-1]
    ev = card.metrics["evaluation"]
    assert {"val_nll", "test_nll", "baseline_nll"} <= set(ev)
    assert ev["test_nll"] < np.log(310)  # far better than uniform
    text = (card.path / "README.md").read_text()
    assert "## Data and split" in text and "bigram baseline" in text and "loss.png" in text

    melody = load_sample("twinkle_twinkle")
    out = extend(melody, model="tiny-xl", extension_duration=4.0, seed=3, save=False)
    assert out.tracks[0].notes[: len(melody.tracks[0].notes)] == melody.tracks[0].notes
    again = evaluate_transformer("tiny-xl", dataset=melodies, max_pieces=2, extensions=2)
    assert again["test_nll"] == ev["test_nll"]


def test_steps_must_be_positive(melodies):
    from capsule_lib import CapsuleError

    with pytest.raises(CapsuleError, match="steps"):
        train_transformer("bad", steps=0, dataset=melodies, model_config=TINY, progress=False)
    assert not [c for c in ModelRegistry().list() if c.name == "bad"]


def test_extend_command_line(melodies, tmp_path, capsys):
    from capsule_lib import read_midi
    from capsule_lib.cli import main

    train_transformer(
        "tiny-cli", steps=5, batch_size=2, model_config=TINY, dataset=melodies, progress=False, evaluate=False
    )
    out = tmp_path / "longer.mid"
    assert (
        main(
            [
                "extend",
                "ode_to_joy",
                "-o",
                str(out),
                "--model",
                "tiny-cli",
                "--extension-duration",
                "3",
                "--sampling",
                "nucleus",
                "--threshold",
                "0.9",
                "--seed",
                "2",
            ]
        )
        == 0
    )
    melody, result = load_sample("ode_to_joy"), read_midi(out)
    assert result.notes[: len(melody.notes)] == melody.notes
    assert "composition" in capsys.readouterr().out
    for bad, needle in (
        (["--threshold", "1.5"], "threshold"),
        (["--sampling", "greedy"], "--sampling"),
        (["--creative-risk", "0"], "creative_risk"),
    ):
        assert main(["extend", "ode_to_joy", "-o", str(tmp_path / "x.mid"), "--model", "tiny-cli", *bad]) == 2
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1
