"""Training a GAN: the WGAN-GP task, the held-out melodies it tunes on, and the whole job with its card."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from gan_fixtures import SPEC, paths, piece, synthetic_dataset

from capsule_lib import CapsuleError, load_sample
from capsule_lib.datasets.multitrack import N_PITCHES, SAMPLE_STEPS, MultitrackDataset
from capsule_lib.midi import read_midi
from capsule_lib.techniques.gan import Critic, GanConfig, GanTask, accompany, train_gan
from capsule_lib.techniques.gan.decoder import chord_share, empty_bar_share, pitch_class_rate
from capsule_lib.techniques.gan.train import gradient_penalty

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # training: left out of `make test-fast`


def test_gradient_penalty_is_zero_for_a_unit_slope_critic():
    class Linear(torch.nn.Module):
        def forward(self, x):
            return x.flatten(1)[:, 0]  # gradient norm exactly 1 everywhere

    real = torch.rand(4, 4, SAMPLE_STEPS, N_PITCHES)
    assert gradient_penalty(Linear(), real, torch.rand_like(real)).item() == pytest.approx(0.0)

    class Steep(torch.nn.Module):
        def forward(self, x):
            return 3 * x.flatten(1)[:, 0]

    assert gradient_penalty(Steep(), real, torch.rand_like(real)).item() == pytest.approx(4.0)


def test_per_epoch_metrics_spread_over_all_validation_samples():
    pieces = [piece(p) for p in paths("train", 1)]
    pieces += [piece(p, bars=8, root=50 + 3 * k) for k, p in enumerate(paths("validation", 4))]  # 2 samples each
    ds = MultitrackDataset(SPEC, pieces)
    task = GanTask(ds, GanConfig(z_dim=8, width=16, critic_width=16), n_eval=4)
    full = ds.samples("validation")
    assert len(full) == 8 and len(task.eval_samples) == 4
    first_of_piece = full[::2]  # not the first two pieces' samples: one from each piece
    lows = sorted(int(np.flatnonzero(x[3].any(axis=0))[0]) for x in task.eval_samples)
    assert lows == sorted(int(np.flatnonzero(x[3].any(axis=0))[0]) for x in first_of_piece)


def test_decoder_targets_are_the_validation_accompaniment_and_never_the_test_split():
    ds = synthetic_dataset()
    task = GanTask(ds, GanConfig(z_dim=8, width=16, critic_width=16))
    val = ds.samples("validation")
    assert task.eval_split == "validation" and np.array_equal(task.eval_samples, val)
    assert task.empty_bars == empty_bar_share(val) and task.chords == chord_share(val)
    assert task.density == pitch_class_rate(val)
    no_val = MultitrackDataset(SPEC, [p for p in ds.pieces if p.split != "validation"])
    task = GanTask(no_val, GanConfig(z_dim=8, width=16, critic_width=16))
    assert task.eval_split == "train"  # not the test split: training never reads it
    train = {x.tobytes() for x in no_val.samples("train")}
    assert all(x.tobytes() in train for x in task.eval_samples)


class _Counter(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.noise_dim = 2

    def forward(self, melody, noise=None):
        return torch.tanh(self.w + 0 * melody).expand(-1, 3, -1, -1)


def test_update_ratio_sets_how_often_the_generator_is_updated():
    task = GanTask(synthetic_dataset(), GanConfig(z_dim=8, width=16, critic_width=16), update_ratio=3)
    gen = _Counter()
    critic = Critic(GanConfig(z_dim=8, width=16, critic_width=16))
    cfg = type("C", (), {"lr": 0.01})()
    opts = task.configure_optimizers({"generator": gen, "critic": critic}, cfg)
    assert all(o.param_groups[0]["lr"] == 0.01 for o in opts.values())
    batch = torch.stack([task.train_dataset()[i] for i in range(4)])
    updates = []
    for step in range(6):
        before = gen.w.item()
        out = task.training_step({"generator": gen, "critic": critic}, opts, batch, step)
        updates.append(("generator_loss" in out, gen.w.item() != before))
        assert {"critic_loss", "wasserstein", "gradient_penalty"} <= set(out)
    assert updates == [(False, False), (False, False), (True, True)] * 2
    assert "reconstruction" in out  # the pix2pix-style term joins the generator's loss
    with pytest.raises(CapsuleError, match="update ratio"):
        GanTask(synthetic_dataset(), GanConfig(), update_ratio=0)
    with pytest.raises(CapsuleError, match="reconstruction weight"):
        GanTask(synthetic_dataset(), GanConfig(), recon_weight=-1)


def test_reconstruction_term_pulls_the_generator_towards_the_real_accompaniment():
    torch.manual_seed(0)
    cfg = GanConfig(z_dim=8, width=16, critic_width=16)
    task = GanTask(synthetic_dataset(), cfg, update_ratio=1, recon_weight=50)
    mods = task.build(torch.device("cpu"))
    opts = task.configure_optimizers(mods, type("C", (), {"lr": 0.003})())
    batch = torch.stack([task.train_dataset()[i] for i in range(8)])
    first = [task.training_step(mods, opts, batch, s)["reconstruction"].item() for s in range(30)]
    assert first[-1] < 0.5 * first[0]


def test_train_gan_records_losses_metrics_against_ground_truth_and_samples(tiny_model, tiny_home):
    card = tiny_model
    assert card.status == "complete" and card.technique == "gan" and card.algorithm == "MuseGAN"
    history = json.loads((card.path / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2]
    for rec in history:
        assert {"critic_loss", "generator_loss", "wasserstein"} <= set(rec)
        for track in SPEC.tracks[1:]:
            assert f"gen/{track}/pitch_classes_used" in rec or f"gen/{track}/empty_bar_rate" in rec
    gt = card.hyperparameters["ground_truth"]["tracks"]
    assert gt["alto"]["pitch_classes_used"] == 1.0 and gt["bass"]["polyphonic_rate"] == 0.0  # the synthetic texture
    for fname in ("README.md", "loss.png", "metrics.png", "sample.mid"):
        assert (card.path / fname).is_file(), fname
    text = (card.path / "README.md").read_text()
    for needle in (
        "## Data and split",
        "## Hyperparameters",
        "update ratio 2",
        "Wall-clock",
        "Quality bar",
        "generated / ground truth",
    ):
        assert needle in text, needle
    runs = tiny_home / "runs" / "gan" / "tiny-gan" / "samples"
    assert sorted(p.name for p in runs.iterdir()) == ["epoch_0001", "epoch_0002"]
    sample = read_midi(runs / "epoch_0002" / "sample_1.mid", "all")
    assert len(sample.tracks) >= 1
    assert card.hyperparameters["training"]["lr"] == 0.001  # the console's default


def test_training_refuses_a_taken_name_and_bad_algorithm(in_tiny_home):
    with pytest.raises(CapsuleError, match="already exists"):
        train_gan("tiny-gan", dataset=synthetic_dataset(), epochs=1)
    with pytest.raises(CapsuleError, match="unknown GAN algorithm"):
        train_gan("x", algorithm="rnn", dataset=synthetic_dataset())
    with pytest.raises(CapsuleError, match="unknown dataset"):
        train_gan("x", dataset="no-such-genre")


def test_unet_generator_trains_and_accompanies(tmp_path):
    card = train_gan(
        "tiny-unet",
        "unet",
        synthetic_dataset(),
        epochs=1,
        batch_size=4,
        update_ratio=1,
        max_steps_per_epoch=2,
        progress=False,
        evaluate=False,
        model_config={"z_dim": 4, "width": 8, "critic_width": 8},
    )
    assert card.status == "complete" and card.algorithm == "U-Net"
    assert card.hyperparameters["model"]["algorithm"] == "unet"
    out = accompany(load_sample("twinkle_twinkle"), model="tiny-unet", seed=2, save=False)
    assert [t.name for t in out.tracks[1:]] == ["alto", "tenor", "bass"]
