"""Training a melody-conditioned GAN (WGAN-GP) with the shared harness.

:class:`GanTask` plugs a generator and a critic into :class:`capsule_lib.train.Trainer`.
Every step updates the critic (Wasserstein loss plus a gradient penalty of weight 10 on
random interpolations of real and generated samples); every ``update_ratio``-th step
also updates the generator (the console's "update ratio": critic updates per generator
update).  Both use Adam with the console's default learning rate 0.001 and
``betas=(0.5, 0.9)`` (Gulrajani et al., 2017).

The generator's loss adds, as in pix2pix (Isola et al., 2017), a reconstruction term:
``recon_weight`` x the binary cross entropy between its output (read as the probability
``(x + 1) / 2`` that a cell sounds) and the real accompaniment of the same melody.  It
teaches the harmony that fits a melody in minutes instead of hours of CPU time; the
adversarial term keeps the output sharp and varied.  ``recon_weight=0`` is a pure WGAN-GP.

After every epoch the generator accompanies a fixed set of validation melodies with
fixed noise; the per-track metrics of those samples join the epoch's history next to the
ground truth (the same metrics on the real accompaniment), and every ``sample_every``
epochs (and the first and last) the samples are written as MIDI and a piano-roll PNG.

:func:`train_gan` is the whole job, as ``capsule train gan`` runs it: register the model,
train (checkpoints in ``$CAPSULE_HOME/runs/gan/<name>``; an interrupted run resumes),
save the generator's weights as safetensors, evaluate on the test split, write the card
(``README.md``, ``history.json``, ``loss.png``, ``metrics.png``, ``sample.mid``, see
:mod:`~capsule_lib.techniques.gan.card`) and mark the model ``complete`` (or ``failed``).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...atomic import atomic_write_bytes
from ...datasets.multitrack import MultitrackDataset
from ...errors import CapsuleError
from ...midi import write_midi
from ...models import ModelRegistry
from ...train import TrainConfig, TrainingTask
from .._common import check_name_free, count_parameters, model_config_of, train_and_register
from .card import write_card_files
from .data import GanSamples, batch_metrics, resolve_dataset, roll_to_score
from .decoder import (
    EVAL_SEED,
    SWITCH_PENALTY,
    DecoderSettings,
    calibrate_decoder,
    calibrate_jointly,
    chord_share,
    decode,
    empty_bar_share,
    joint_decoding,
    pitch_class_rate,
    track_polyphony,
)
from .evaluate import evaluate_gan
from .model import ALGORITHMS, Critic, GanConfig, build_generator
from .sample import LoadedGan, generator_output, load_gan
from .voicing import VOICE_LEADING, part_ranges

__all__ = [
    "GanTask",
    "train_gan",
    "retune_for_joint_decoding",
    "gradient_penalty",
    "DEFAULT_UPDATE_RATIO",
    "DEFAULT_LR",
]

DEFAULT_LR = 1e-3
DEFAULT_UPDATE_RATIO = 4
GP_WEIGHT = 10.0
DEFAULT_RECON_WEIGHT = 50.0


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """``mean((|grad critic(x)| - 1)^2)`` at random points between real and generated samples."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    x = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    score = critic(x)
    (grad,) = torch.autograd.grad(score.sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def _finite(x):
    """``x`` with every NaN (a metric of a silent track) replaced by None, so it can be stored as JSON."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def _metric_key(track: str, metric: str) -> str:
    return f"gen/{track}/{metric}"


class GanTask(TrainingTask):
    """A melody-conditioned WGAN-GP for :class:`~capsule_lib.train.Trainer`.

    Parameters
    ----------
    dataset : MultitrackDataset
    model_config : GanConfig
    update_ratio : int
        Critic updates per generator update (>= 1).
    recon_weight : float
        Weight of the reconstruction term in the generator's loss (0: pure WGAN-GP).
    n_eval : int
        Validation melodies (at most; spread over every validation piece) accompanied after
        every epoch for the metrics and the decoder's calibration.
    sample_every : int
        Write MIDI and piano-roll samples every this many epochs (and the first and last).
    epochs : int
        The run's length (so the last epoch's samples are written).
    voice_leading : dict or None
        Penalty weights with which the accompaniment's tracks are drawn jointly (see
        :mod:`~capsule_lib.techniques.gan.voicing`); None draws each track on its own.
    """

    def __init__(
        self,
        dataset: MultitrackDataset,
        model_config: GanConfig,
        *,
        update_ratio: int = DEFAULT_UPDATE_RATIO,
        n_eval: int = 1024,
        sample_every: int = 10,
        epochs: int = 1,
        recon_weight: float = DEFAULT_RECON_WEIGHT,
        voice_leading: dict | None = None,
    ):
        if isinstance(update_ratio, bool) or not isinstance(update_ratio, int) or not 1 <= update_ratio <= 100:
            raise CapsuleError(f"update ratio must be a whole number 1-100, got {update_ratio!r}")
        if (
            isinstance(recon_weight, bool)
            or not isinstance(recon_weight, (int, float))
            or not 0 <= recon_weight <= 1000
        ):
            raise CapsuleError(f"reconstruction weight must be a number 0-1000, got {recon_weight!r}")
        self.recon_weight = float(recon_weight)
        self.dataset = dataset
        self.spec = dataset.spec
        self.config = model_config
        self.update_ratio = update_ratio
        self.sample_every = max(1, int(sample_every))
        self.epochs = epochs
        self.train_samples = dataset.samples("train")
        if len(self.train_samples) == 0:
            raise CapsuleError("the training split has no 4-bar samples with a melody")
        # The held-out melodies of the per-epoch metrics and of the decoder's calibration: the
        # validation split (never the test split, which only the final report reads); a data set
        # too small to have one falls back to training samples, and the card says so.
        evals, self.eval_split = dataset.samples("validation"), "validation"
        if len(evals) == 0:
            evals, self.eval_split = self.train_samples[:: max(1, len(self.train_samples) // n_eval)], "train"
        if len(evals) > n_eval:  # spread over every validation piece, not the first few
            evals = evals[np.unique(np.linspace(0, len(evals) - 1, n_eval).round().astype(int))]
        self.eval_samples = evals
        self.polyphony = track_polyphony(self.train_samples)
        self.ground_truth = _finite(batch_metrics(self.eval_samples, self.spec))
        # The decoder's targets: the real accompaniment of those same held-out melodies.
        self.density = pitch_class_rate(self.eval_samples)
        self.switch_penalty = [SWITCH_PENALTY] * (len(self.spec.tracks) - 1)
        self.chords = chord_share(self.eval_samples)
        self.chord_threshold = [0.5] * (len(self.spec.tracks) - 1)
        self.empty_bars = empty_bar_share(self.eval_samples)
        self.rest_weight = [1.0] * (len(self.spec.tracks) - 1)
        self.voice_leading = dict(voice_leading) if voice_leading is not None else None

    def build(self, device):
        return {"generator": build_generator(self.config).to(device), "critic": Critic(self.config).to(device)}

    def configure_optimizers(self, modules, config):
        return {name: torch.optim.Adam(m.parameters(), lr=config.lr, betas=(0.5, 0.9)) for name, m in modules.items()}

    def train_dataset(self):
        return GanSamples(self.train_samples, transpose=True)

    def training_step(self, modules, optimizers, batch, step):
        gen, critic = modules["generator"], modules["critic"]
        melody = batch[:, :1]
        with torch.no_grad():
            fake = torch.cat([melody, gen(melody)], 1)
        d_real = critic(batch).mean()
        d_fake = critic(fake).mean()
        gp = gradient_penalty(critic, batch, fake)
        d_loss = d_fake - d_real + GP_WEIGHT * gp
        self.optimize(optimizers["critic"], d_loss)
        out = {
            "critic_loss": d_loss.detach(),
            "wasserstein": (d_real - d_fake).detach(),
            "gradient_penalty": gp.detach(),
        }
        if step % self.update_ratio == self.update_ratio - 1:
            acc = gen(melody)
            g_adv = -critic(torch.cat([melody, acc], 1)).mean()
            g_loss = g_adv
            if self.recon_weight:
                prob = ((acc + 1) / 2).clamp(1e-6, 1 - 1e-6)
                recon = torch.nn.functional.binary_cross_entropy(prob, (batch[:, 1:] + 1) / 2)
                g_loss = g_adv + self.recon_weight * recon
                out["reconstruction"] = recon.detach()
            self.optimize(optimizers["generator"], g_loss)
            out["generator_loss"] = g_loss.detach()
            out["generator_adversarial"] = g_adv.detach()
        return out

    def state_dict(self):
        return {
            "switch_penalty": list(self.switch_penalty),
            "chord_threshold": list(self.chord_threshold),
            "rest_weight": list(self.rest_weight),
        }

    def load_state_dict(self, state):
        self.switch_penalty = [float(x) for x in state.get("switch_penalty", self.switch_penalty)]
        self.chord_threshold = [float(x) for x in state.get("chord_threshold", self.chord_threshold)]
        self.rest_weight = [float(x) for x in state.get("rest_weight", self.rest_weight)]

    def on_sample(self, modules, epoch, out_dir):
        melodies = self.eval_samples[:, 0]
        raw = generator_output(modules["generator"], melodies, EVAL_SEED)
        # the decoder's settings are tuned on these validation melodies to their real accompaniment
        self.switch_penalty, self.rest_weight, self.chord_threshold = calibrate_decoder(
            raw, self.polyphony[1:], self.density[1:], self.empty_bars[1:], self.chords[1:]
        )
        # each track's settings are fitted on its own; the tracks are then drawn together, and at the
        # end of training the settings are refitted for the joint draw
        joint = joint_decoding(self.spec, self.voice_leading, melodies)
        if joint and epoch == self.epochs:
            self.switch_penalty, self.rest_weight, self.chord_threshold = calibrate_jointly(
                raw,
                joint["melody"],
                self.polyphony[1:],
                pitch_classes=self.density[1:],
                empty_bars=self.empty_bars[1:],
                chords=self.chords[1:],
                switch_penalty=self.switch_penalty,
                rest_weight=self.rest_weight,
                chord_threshold=self.chord_threshold,
                seed=EVAL_SEED,
                weights=self.voice_leading,
                ranges=joint["ranges"],
                drums=joint["drums"],
            )
        acc = decode(
            raw,
            self.polyphony[1:],
            self.switch_penalty,
            seed=EVAL_SEED,
            chord_threshold=self.chord_threshold,
            rest_weight=self.rest_weight,
            **joint,
        )
        samples = np.concatenate([np.asarray(melodies, bool)[:, None], acc], axis=1)
        metrics = batch_metrics(samples, self.spec)
        record = {f"switch_penalty/{name}": v for name, v in zip(self.spec.tracks[1:], self.switch_penalty)}
        for track, values in metrics["tracks"].items():
            for key, v in values.items():
                if not math.isnan(v):  # a silent track has no pitches used: leave a gap, not NaN
                    record[_metric_key(track, key)] = v
        for pair, v in metrics["tonal_distance"].items():
            if not math.isnan(v):
                record[f"gen/tonal_distance/{pair}"] = v
        if epoch == 1 or epoch % self.sample_every == 0 or epoch == self.epochs:
            _write_samples(samples[:4], self.spec, out_dir, f"epoch {epoch}")
        else:
            out_dir.rmdir() if out_dir.is_dir() and not any(out_dir.iterdir()) else None
        return record


def _write_samples(samples: np.ndarray, spec, out_dir: Path, title: str) -> None:
    for i, s in enumerate(samples):
        score = roll_to_score(s, spec, title=f"{title}, sample {i + 1}")
        if any(t.notes for t in score.tracks):
            write_midi(score, out_dir / f"sample_{i + 1}.mid")
    try:
        from ...plot import plot_pianoroll, subplots

        fig, ax = subplots(figsize=(10, 4), layout="constrained", standalone=True)
        plot_pianoroll(roll_to_score(samples[0], spec, title=title), tracks=None, ax=ax)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
        atomic_write_bytes(out_dir / "pianoroll.png", buf.getvalue())
    except ImportError:  # matplotlib is a dependency; be quiet if a slim install lacks it
        pass


def train_gan(
    name: str,
    algorithm: str = "musegan",
    dataset="chorale",
    epochs: int = 30,
    lr: float = DEFAULT_LR,
    update_ratio: int = DEFAULT_UPDATE_RATIO,
    batch_size: int = 32,
    seed: int = 0,
    *,
    recon_weight: float = DEFAULT_RECON_WEIGHT,
    limit: int | None = None,
    progress: bool = True,
    model_config: GanConfig | Mapping[str, Any] | None = None,
    max_steps_per_epoch: int | None = None,
    sample_every: int = 10,
    device: str = "auto",
    evaluate: bool = True,
    registry=None,
    on_epoch_end: Callable | None = None,
    description: str | None = None,
    fold: int = 0,
    voice_leading=True,
):
    """Train a melody-conditioned GAN and register it as a custom model (technique ``"gan"``).

    Parameters
    ----------
    name : str
        The new model's name (an unfinished run of the same name is resumed).
    algorithm : {"musegan", "unet"}
    dataset : str, path or MultitrackDataset
        A genre (``chorale``, ``quartet``, ``renaissance``), or a folder of LPD-5 ``.npz``
        or multi-track MIDI files.
    epochs, lr, batch_size, seed
        Training hyperparameters (console defaults: learning rate 0.001).
    update_ratio : int
        Critic updates per generator update (console example: 4).
    recon_weight : float
        Weight of the generator's reconstruction term (0: pure WGAN-GP; see the module).
    limit : int, optional
        Use only the first ``limit`` pieces (quick runs).
    max_steps_per_epoch : int, optional
        Cut epochs short (classroom smoke runs).
    sample_every : int
        Write MIDI + piano-roll samples every this many epochs.
    evaluate : bool
        Evaluate on the test split afterwards (metrics vs ground truth).
    fold : int
        Which bucket of the split rule is held out: 0 (the default) is the fixed split,
        1-9 the other folds of a 10-fold cross-validation (``bench/gan_research.py
        cross-validate`` pools them).
    voice_leading : bool or dict
        Draw the accompaniment's tracks jointly, with these penalty weights (True: the
        defaults, :data:`~capsule_lib.techniques.gan.voicing.VOICE_LEADING`); False draws each
        track on its own.  Recorded in the card, so the model decodes the same way later.

    Returns
    -------
    ModelCard
    """
    if algorithm not in ALGORITHMS:
        raise CapsuleError(f"unknown GAN algorithm {algorithm!r} (expected musegan or unet)")
    registry = registry if registry is not None else ModelRegistry()
    ds = resolve_dataset(dataset, limit=limit, progress=progress)
    if fold != ds.fold:
        ds = ds.with_fold(fold)
    model_config = model_config_of(model_config, GanConfig)
    model_config = GanConfig.from_dict({**model_config.to_dict(), "algorithm": algorithm, "n_tracks": ds.n_tracks})
    config = TrainConfig(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        device=device,
        drop_last=True,
        max_steps_per_epoch=max_steps_per_epoch,
        progress=progress,
        sample_every=1,
    )
    existing = check_name_free(registry, name, "gan")
    if voice_leading is True:
        voice_leading = dict(VOICE_LEADING)
    elif voice_leading is False or voice_leading is None:
        voice_leading = None
    elif isinstance(voice_leading, Mapping):
        voice_leading = {str(k): float(v) for k, v in voice_leading.items()}
    else:
        raise CapsuleError(f"voice_leading must be True, False or a dict of penalty weights, not {voice_leading!r}")
    task = GanTask(
        ds,
        model_config,
        update_ratio=update_ratio,
        sample_every=sample_every,
        epochs=epochs,
        recon_weight=recon_weight,
        voice_leading=voice_leading,
    )
    summary = ds.summary()
    hyper = {
        "model": model_config.to_dict(),
        "training": {
            "epochs": epochs,
            "lr": lr,
            "update_ratio": update_ratio,
            "batch_size": batch_size,
            "seed": seed,
            "max_steps_per_epoch": max_steps_per_epoch,
            "optimizer": "Adam(betas=(0.5, 0.9))",
            "loss": f"WGAN-GP (gradient penalty weight {GP_WEIGHT:g}); generator + {recon_weight:g} x "
            "reconstruction cross entropy",
        },
        "genre": ds.spec.to_dict(),
        "fold": ds.fold,
        "polyphony": task.polyphony,
        "data": {
            "samples": f"{len(task.train_samples)} train samples of 4 bars (hop 1 bar), "
            + (
                f"{len(task.eval_samples)} validation samples (spread over every validation piece)"
                if task.eval_split == "validation"
                else f"{len(task.eval_samples)} *training* samples (the data set has no validation pieces)"
            )
            + " for the per-epoch metrics and the decoder's calibration",
            "transposition": "random -5..+6 semitones (training only)",
            "summary": summary,
        },
        "ground_truth": task.ground_truth,
    }
    if voice_leading is not None:
        hyper["voice_leading"] = voice_leading
        hyper["part_ranges"] = part_ranges(ds.spec.tracks[1:])
    dataset_desc = (
        f"{summary['source']}: {summary['train']['pieces']} train / {summary['validation']['pieces']} "
        f"validation / {summary['test']['pieces']} test pieces"
    )
    algo_name = "MuseGAN" if algorithm == "musegan" else "U-Net"
    desc = (
        description
        or f"{algo_name} accompaniment ({', '.join(ds.spec.tracks[1:])}) for a melody, trained on {summary['source']}"
    )

    def metrics(history: list, modules: dict) -> dict:
        # The losses of the last epoch, both networks' sizes, and the decoder settings fitted after it.
        last = history[-1]
        out: dict[str, Any] = {k: last[k] for k in ("critic_loss", "generator_loss", "wasserstein") if k in last}
        out["parameters"] = {part: count_parameters(modules[part]) for part in ("generator", "critic")}
        hyper.update(
            switch_penalty=task.switch_penalty,
            pitch_classes_target=task.density,
            chord_threshold=task.chord_threshold,
            rest_weight=task.rest_weight,
            empty_bar_target=task.empty_bars,
            chord_share=task.chords,
        )
        return out

    def evaluate_test(gen) -> dict:
        gan = LoadedGan(
            gen,
            ds.spec,
            DecoderSettings(
                tuple(task.polyphony),
                tuple(task.switch_penalty),
                tuple(task.chord_threshold),
                tuple(task.rest_weight),
                voice_leading,
            ),
            name=name,
            fold=ds.fold,
        )
        return evaluate_gan(gan, "test", dataset=ds)

    def write_card(card, history, run_dir) -> None:
        final_samples = sorted((run_dir / "samples").glob("epoch_*/sample_1.mid"))
        write_card_files(card, history, summary, final_samples[-1] if final_samples else None)

    return train_and_register(
        registry,
        existing,
        name,
        "gan",
        make_task=lambda: task,
        config=config,
        module="generator",
        on_epoch_end=on_epoch_end,
        metrics=metrics,
        card={"algorithm": algo_name, "dataset": dataset_desc, "hyperparameters": hyper, "description": desc},
        weights_metadata=lambda history: {"model": model_config.to_dict(), "epochs": len(history)},
        evaluation=("test", evaluate_test) if evaluate and len(ds.samples("test")) else None,
        write_card=write_card,
    )


def retune_for_joint_decoding(name: str, voice_leading=True, registry=None, progress: bool = False):
    """Give a GAN trained before joint decoding existed the decoder :func:`train_gan` now ends with.

    Exactly what training does after its last epoch, on the generator's own weights (which do
    not change): its validation melodies (the :class:`GanTask` of its card's data set and fold)
    are accompanied with the fixed evaluation noise, each part's decoder settings -- those in
    the card, fitted per part after the last epoch -- are refitted for the joint draw
    (:func:`~capsule_lib.techniques.gan.decoder.calibrate_jointly`), and the test split is
    evaluated again.  The card records the weights (``voice_leading``), the new settings, the
    new ``test`` evaluation, and keeps what came before under ``decoder_retuned`` (the
    per-part settings) and ``metrics["test_parts_drawn_alone"]``; a cross-validation in the
    card was measured with parts drawn alone and says so.  The training history is the run's.
    Returns the updated card.
    """
    registry = registry if registry is not None else ModelRegistry()
    card = registry.get(name)
    hp = dict(card.hyperparameters or {})
    if hp.get("voice_leading"):
        raise CapsuleError(f"model {name} already draws its parts jointly")
    weights = (
        dict(VOICE_LEADING) if voice_leading is True else {str(k): float(v) for k, v in dict(voice_leading).items()}
    )
    gan = load_gan(name, registry=registry)
    ds = resolve_dataset(gan.spec.name, progress=progress)
    if gan.fold != ds.fold:
        ds = ds.with_fold(gan.fold)
    task = GanTask(ds, GanConfig.from_dict(hp["model"]), voice_leading=weights)
    melodies = task.eval_samples[:, 0]
    raw = generator_output(gan.generator, melodies, EVAL_SEED)
    old = gan.decoder
    pen, rest, th = calibrate_jointly(
        raw,
        np.asarray(melodies, bool),
        task.polyphony[1:],
        pitch_classes=task.density[1:],
        empty_bars=task.empty_bars[1:],
        chords=task.chords[1:],
        switch_penalty=_per_part(old.switch_penalty, task),
        rest_weight=_per_part(old.rest_weight, task),
        chord_threshold=_per_part(old.chord_threshold, task),
        seed=EVAL_SEED,
        weights=weights,
        ranges=part_ranges(ds.spec.tracks[1:]),
        drums=list(ds.spec.is_drum[1:]),
    )
    hp["decoder_retuned"] = {
        "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "by": f"capsule_lib.techniques.gan.train.retune_for_joint_decoding({name!r})",
        "parts_drawn_alone": {
            "switch_penalty": hp.get("switch_penalty"),
            "rest_weight": hp.get("rest_weight"),
            "chord_threshold": hp.get("chord_threshold"),
        },
    }
    hp.update(
        {
            "voice_leading": weights,
            "part_ranges": part_ranges(ds.spec.tracks[1:]),
            "switch_penalty": pen,
            "rest_weight": rest,
            "chord_threshold": th,
        }
    )
    gan = dataclasses.replace(
        gan,
        decoder=dataclasses.replace(
            old, switch_penalty=tuple(pen), rest_weight=tuple(rest), chord_threshold=tuple(th), voice_leading=weights
        ),
    )
    metrics = dict(card.metrics or {})
    if "test" in metrics:
        metrics["test_parts_drawn_alone"] = metrics["test"]
    metrics["test"] = evaluate_gan(gan, "test", dataset=ds)
    if "cross_validation" in metrics:
        metrics["cross_validation"] = {**metrics["cross_validation"], "decoder": "parts drawn alone"}
    card = registry.update(name, hyperparameters=hp, metrics=metrics)
    try:
        history = json.loads((card.path / "history.json").read_text(encoding="utf-8"))
        summary = hp["data"]["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        raise CapsuleError(f"model {name}: no training history or data summary to rewrite its card from") from None
    sample = card.path / "sample.mid"
    write_card_files(card, history, summary, sample if sample.is_file() else None)
    return registry.get(name)


def _per_part(setting, task: GanTask) -> list[float]:
    """A decoder setting as one number per accompaniment part (a card may store one for all)."""
    return list(setting) if isinstance(setting, (list, tuple)) else [float(setting)] * (len(task.polyphony) - 1)
