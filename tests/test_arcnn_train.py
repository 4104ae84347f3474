import json

import numpy as np
import pytest
import torch

from capsule_lib.datasets.bach import WINDOW_STEPS, BachDataset, Chorale, split_of
from capsule_lib.errors import CapsuleError
from capsule_lib.models import ModelRegistry
from capsule_lib.score import Score
from capsule_lib.techniques.arcnn.evaluate import evaluate_arcnn, pitch_frequency_baseline
from capsule_lib.techniques.arcnn.model import ArcnnConfig, ArcnnUNet, count_parameters, load_arcnn
from capsule_lib.techniques.arcnn.sample import enhance
from capsule_lib.techniques.arcnn.train import ArcnnTask, train_arcnn
from capsule_lib.train import TrainConfig, Trainer

pytestmark = pytest.mark.slow  # training: left out of `make test-fast`

TINY = {"base_channels": 4, "depth": 2}


def _paths_for(split: str, n: int) -> list[str]:
    out, i = [], 0
    while len(out) < n:
        p = f"synthetic/{i}"
        if split_of(p) == split:
            out.append(p)
        i += 1
    return out


def synthetic_dataset(n_train: int = 4) -> BachDataset:
    """Chorale-like pieces built from triads in a fixed progression (learnable, instant)."""
    progression = [(60, 64, 67), (57, 60, 65), (55, 59, 62), (60, 64, 67)]
    chorales = []
    for split, n in (("train", n_train), ("validation", 1), ("test", 2)):
        for k, path in enumerate(_paths_for(split, n)):
            notes = []
            for bar in range(16):
                chord = progression[(bar + k) % 4]
                for beat in range(4):
                    t = bar * 16 + beat * 4
                    notes += [(t, p, 4) for p in chord] + [(t, chord[0] - 12, 4)]
            chorales.append(Chorale(path, path, split, np.array(notes, dtype=np.int32), (4, 4)))
    return BachDataset(chorales, [], [], [])


def test_unet_shapes_parameters_and_config_checks():
    net = ArcnnUNet(ArcnnConfig(**TINY))
    out = net(torch.zeros(3, 2, WINDOW_STEPS, 64))
    assert out.shape == (3, WINDOW_STEPS, 64)
    default = ArcnnUNet()
    assert 500_000 < count_parameters(default) < 3_000_000
    assert count_parameters(default) * 4 < 10 * 1024 * 1024  # float32 weights fit the 10 MB budget
    for bad in ({"base_channels": 2}, {"depth": 5}, {"depth": 1.5}, {"base_channels": True}):
        with pytest.raises(CapsuleError):
            ArcnnConfig(**bad)
    with pytest.raises(CapsuleError, match="input"):
        net(torch.zeros(1, 1, WINDOW_STEPS, 64))


def test_a_short_training_run_lowers_the_loss(tmp_path):
    ds = synthetic_dataset()
    task = ArcnnTask(ds, ArcnnConfig(**TINY), epochs=4, batch_size=4)
    history = Trainer(task, TrainConfig(epochs=4, lr=1e-2, batch_size=4, progress=False, device="cpu"), tmp_path).fit()
    losses = history.series("loss")
    assert losses[-1] < losses[0] * 0.9
    assert history.series("val_loss")[-1] < history.series("val_loss")[0]
    # the checkpoint loads without unpickling code
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert "unet" in state["modules"]


def test_train_arcnn_registers_a_complete_model_that_enhance_can_use(tmp_path):
    registry = ModelRegistry()
    card = train_arcnn(
        "tiny-bach",
        epochs=2,
        lr=3e-3,
        batch_size=8,
        seed=1,
        progress=False,
        model_config=TINY,
        dataset=synthetic_dataset(),
        eval_windows=2,
        registry=registry,
    )
    assert card.status == "complete" and card.technique == "arcnn" and card.algorithm == "U-Net"
    assert card.hyperparameters["model"] == TINY and card.hyperparameters["training"]["epochs"] == 2
    assert card.training_time_s > 0
    test = card.metrics["test"]
    assert {"nll", "baseline_nll", "restoration"} <= set(test)
    assert set(test["restoration"]) >= {"precision", "recall", "f1"}
    files = {p.name for p in card.path.iterdir()}
    assert {"weights.safetensors", "model.json", "README.md", "history.json", "loss.png"} <= files
    assert len(json.loads((card.path / "history.json").read_text())) == 2
    # weights are plain safetensors that load into the configured network
    from safetensors.torch import load_file

    net = ArcnnUNet(ArcnnConfig(**TINY))
    net.load_state_dict(load_file(card.path / "weights.safetensors"))
    loaded = load_arcnn("tiny-bach")
    assert loaded.name == "tiny-bach" and not loaded.training
    x = torch.rand(1, 2, WINDOW_STEPS, 64)
    net.eval()
    assert torch.allclose(net(x), loaded(x))
    melody = Score.from_notes([(i * 4, 60 + (i % 5), 4) for i in range(32)], resolution=4)
    out, comp = enhance(melody, "tiny-bach", seed=0, return_composition=True)
    assert comp.model == "tiny-bach" and out.tracks
    with pytest.raises(CapsuleError, match="already exists"):
        train_arcnn(
            "tiny-bach", epochs=1, progress=False, model_config=TINY, dataset=synthetic_dataset(), registry=registry
        )


def test_failed_training_marks_the_model_failed():
    registry = ModelRegistry()
    empty = BachDataset([c for c in synthetic_dataset().chorales if c.split != "train"], [], [], [])
    with pytest.raises(CapsuleError, match="no training"):
        train_arcnn("broken", epochs=1, progress=False, model_config=TINY, dataset=empty, registry=registry)
    assert registry.get("broken").status == "failed"
    with pytest.raises(CapsuleError, match="not ready"):
        load_arcnn("broken")


def test_evaluation_reports_model_and_baseline_on_held_out_windows():
    ds = synthetic_dataset()
    net = ArcnnUNet(ArcnnConfig(**TINY))
    result = evaluate_arcnn(model=net, dataset=ds, split="test", max_windows=3)
    assert result["split"] == "test" and result["n_windows"] == 3 and result["n_chorales"] == 2
    assert result["nll"] > 0 and result["baseline_nll"] > 0
    r = result["restoration"]
    assert 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1 and 0 <= r["f1"] <= 1
    assert r["corrupted"]["recall"] == pytest.approx(0.5, abs=0.15)  # half the notes were removed
    again = evaluate_arcnn(model=net, dataset=ds, split="test", max_windows=3)
    assert again["nll"] == result["nll"] and again["restoration"] == result["restoration"]
    with pytest.raises(CapsuleError, match="split"):
        evaluate_arcnn(model=net, dataset=ds, split="dev")


def test_pitch_frequency_baseline_matches_counts():
    windows = [np.array([[0, 60, WINDOW_STEPS]]), np.array([[0, 60, WINDOW_STEPS // 2]])]
    base = pitch_frequency_baseline(windows)
    cells = 2 * WINDOW_STEPS
    assert base[60 - 30] == pytest.approx((1.5 * WINDOW_STEPS + 1) / (cells + 2))
    assert base[0] == pytest.approx(1 / (cells + 2))
