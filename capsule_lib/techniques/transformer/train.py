"""Training the Transformer-XL on classical performances with the shared harness.

:class:`TransformerTask` plugs the model into :class:`capsule_lib.train.Trainer`.  A training
example is a random crop of ``2 x segment`` tokens (+1 for the shifted target) from a
training piece, augmented afresh each time (transposition +-3 semitones, tempo +-5 %): the
first segment is read to build the memory, and the loss -- cross entropy per token,
padding ignored -- covers both segments, so the model learns to use its memory.  An
"epoch" is :data:`STEPS_PER_EPOCH` optimiser steps (fewer for a run shorter than that);
``--steps N`` runs ``ceil(N / 100)`` such epochs.  The learning rate warms up linearly over the first 5 % of the steps, then
follows a cosine down to 5 % of ``lr``.

:func:`train_transformer` is the whole job, as ``capsule train transformer`` runs it:
register the model, train (resumable checkpoints under ``$CAPSULE_HOME/runs``), save
safetensors weights, evaluate (:func:`~.evaluate.evaluate_transformer`), write the model
card (``README.md``, ``history.json``, ``loss.png``) and mark it complete.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ...atomic import atomic_write_text
from ...errors import CapsuleError
from ...train import TrainConfig, TrainingTask
from .._common import (
    card_number,
    check_name_free,
    model_config_of,
    provenance_lines,
    train_and_register,
    write_history,
)
from .evaluate import evaluate_transformer
from .model import TransformerConfig, TransformerXL
from .tokens import PAD
from .views import plot_training

__all__ = ["TransformerTask", "train_transformer", "STEPS_PER_EPOCH"]

STEPS_PER_EPOCH = 100
VALIDATION_SEED = 20240602
VALIDATION_CROPS = 64
_WARMUP = 0.05
_LR_FLOOR = 0.05


def _segment(config: TransformerConfig) -> int:
    return int(getattr(config, "segment_len", None) or getattr(config, "tgt_len", None) or 128)


def random_crop(pieces: list[np.ndarray], length: int, rng: np.random.Generator, augment=None) -> np.ndarray:
    """A crop of ``length`` tokens from a piece drawn in proportion to its length (PAD-filled if short)."""
    sizes = np.array([len(p) for p in pieces], dtype=np.float64)
    piece = pieces[int(rng.choice(len(pieces), p=sizes / sizes.sum()))]
    if augment is not None:
        piece = augment(piece, rng)
    out = np.full(length, PAD, dtype=np.int64)
    if len(piece) <= length:
        out[: len(piece)] = piece
    else:
        start = int(rng.integers(0, len(piece) - length + 1))
        out[:] = piece[start : start + length]
    return out


class _Crops(Dataset):
    """``n`` crops; training crops use the global numpy RNG (checkpointed by the harness)."""

    def __init__(self, pieces, length: int, n: int, augment=None, seed: int | None = None):
        self.pieces, self.length, self.n, self.augment = pieces, length, n, augment
        self.fixed = None
        if seed is not None:  # validation: the same crops every epoch
            rng = np.random.default_rng(seed)
            self.fixed = [random_crop(pieces, length, rng) for _ in range(n)]

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if self.fixed is not None:
            return torch.from_numpy(self.fixed[i])
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        return torch.from_numpy(random_crop(self.pieces, self.length, rng, self.augment))


def sequence_loss(model, batch: torch.Tensor, segment: int) -> torch.Tensor:
    """Mean cross entropy of next-token prediction over two segments read with memory."""
    x, y = batch[:, :-1], batch[:, 1:]
    total, count, mems = 0.0, 0, None
    for lo in range(0, x.shape[1], segment):
        logits, mems = model(x[:, lo : lo + segment], mems)
        target = y[:, lo : lo + segment]
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=PAD, reduction="sum"
        )
        total = total + loss
        count += int((target != PAD).sum())
    return total / max(count, 1)


class TransformerTask(TrainingTask):
    """The Transformer-XL for :class:`~capsule_lib.train.Trainer`."""

    def __init__(
        self,
        dataset,
        model_config: TransformerConfig | None = None,
        *,
        epochs: int = 1,
        batch_size: int = 8,
        steps_per_epoch: int = STEPS_PER_EPOCH,
        augment: bool = True,
    ):
        from ...datasets.classical import augment as augment_tokens

        self.model_config = model_config or TransformerConfig()
        self.segment = _segment(self.model_config)
        self.train_pieces = [np.asarray(t) for t in dataset.tokens("train") if len(t) > 1]
        self.val_pieces = [np.asarray(t) for t in dataset.tokens("validation") if len(t) > 1]
        if not self.train_pieces:
            raise CapsuleError("the data set has no training pieces")
        self.batch_size, self.steps_per_epoch = batch_size, steps_per_epoch
        self.augment = augment_tokens if augment else None
        self.total_steps = max(1, steps_per_epoch * epochs)
        self.base_lr: float | None = None

    def build(self, device):
        return {"transformer": TransformerXL(self.model_config)}

    def configure_optimizers(self, modules, config):
        self.base_lr = config.lr
        return {"transformer": torch.optim.AdamW(modules["transformer"].parameters(), lr=config.lr, weight_decay=0.01)}

    def train_dataset(self):
        return _Crops(self.train_pieces, 2 * self.segment + 1, self.steps_per_epoch * self.batch_size, self.augment)

    def val_dataset(self):
        if not self.val_pieces:
            return None
        return _Crops(self.val_pieces, 2 * self.segment + 1, VALIDATION_CROPS, seed=VALIDATION_SEED)

    def _lr(self, step: int) -> float:
        warm = max(1, int(_WARMUP * self.total_steps))
        if step < warm:
            return self.base_lr * (step + 1) / warm
        frac = min((step - warm) / max(1, self.total_steps - warm), 1.0)
        return self.base_lr * (_LR_FLOOR + (1 - _LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * frac)))

    def training_step(self, modules, optimizers, batch, step):
        opt = optimizers["transformer"]
        lr = self._lr(step)
        for group in opt.param_groups:
            group["lr"] = lr
        loss = sequence_loss(modules["transformer"], batch, self.segment)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(modules["transformer"].parameters(), 1.0)
        opt.step()
        value = float(loss.detach())
        return {"loss": value, "perplexity": math.exp(min(value, 20.0)), "lr": lr}

    def validation_step(self, modules, batch):
        loss = sequence_loss(modules["transformer"], batch, self.segment)
        return {"loss": loss, "perplexity": float(math.exp(min(float(loss), 20)))}


def train_transformer(
    name: str,
    steps: int = 1500,
    lr: float = 1e-3,
    batch_size: int = 8,
    seed: int = 0,
    *,
    limit: int | None = None,
    progress: bool = True,
    model_config: TransformerConfig | Mapping[str, Any] | None = None,
    steps_per_epoch: int = STEPS_PER_EPOCH,
    device: str = "auto",
    evaluate: bool = True,
    eval_pieces: int | None = None,
    registry=None,
    dataset=None,
    on_epoch_end: Callable | None = None,
):
    """Train a Transformer-XL on classical performances and register it as a custom model.

    Parameters
    ----------
    name : str
        The new model's name (an unfinished run of the same name is resumed).
    steps : int
        Optimiser steps, rounded up to whole epochs of ``steps_per_epoch``.
    lr, batch_size, seed
        Peak learning rate (warm-up, then cosine), crops per step, seed.
    limit : int, optional
        Use the first ``limit`` corpus pieces only (quick runs).
    model_config : TransformerConfig or dict, optional
    evaluate : bool
        Evaluate afterwards (validation and test NLL vs a bigram baseline, extensions).
    eval_pieces : int, optional
        Evaluate on at most this many pieces per split.

    Returns
    -------
    ModelCard
    """
    from ...datasets.classical import build_classical_dataset
    from ...models import ModelRegistry

    if not isinstance(steps, int) or steps < 1:
        raise CapsuleError(f"steps must be a whole number of at least 1, got {steps!r}")
    if not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
        raise CapsuleError(f"steps_per_epoch must be a whole number of at least 1, got {steps_per_epoch!r}")
    registry = registry if registry is not None else ModelRegistry()
    model_config = model_config_of(model_config, TransformerConfig)
    steps_per_epoch = min(steps_per_epoch, steps)  # a short run is one short epoch
    epochs = math.ceil(steps / steps_per_epoch)
    config = TrainConfig(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, device=device, progress=progress)
    existing = check_name_free(registry, name, "transformer")
    ds = dataset if dataset is not None else build_classical_dataset(progress=progress, limit=limit)
    summary = ds.summary()
    hyper = {
        "model": model_config.to_dict(),
        "training": {
            "steps": epochs * steps_per_epoch,
            "steps_per_epoch": steps_per_epoch,
            "lr": lr,
            "batch_size": batch_size,
            "seed": seed,
            "crop_tokens": 2 * _segment(model_config) + 1,
        },
        "lr_schedule": f"linear warm-up over {_WARMUP:.0%} of the steps, then cosine to {_LR_FLOOR:g} x lr; AdamW",
        "data": {
            "augmentation": "transposition -3..+3 semitones, tempo stretch 0.95..1.05 (training only)",
            "vocabulary": "310 performance tokens (start, pad, 100 x 10 ms shifts, note-on/off 21-108, 32 velocities)",
        },
    }
    dataset_desc = (
        f"classical pieces (music21 corpus): {summary['train']['pieces']} train / "
        f"{summary['validation']['pieces']} validation / {summary['test']['pieces']} test"
    )

    return train_and_register(
        registry,
        existing,
        name,
        "transformer",
        make_task=lambda: TransformerTask(
            ds, model_config, epochs=epochs, batch_size=batch_size, steps_per_epoch=steps_per_epoch
        ),
        config=config,
        module="transformer",
        on_epoch_end=on_epoch_end,
        card={
            "algorithm": "TransformerXL",
            "dataset": dataset_desc,
            "hyperparameters": hyper,
            "description": "Transformer-XL over performance tokens: extends a melody by up to 30 s",
        },
        weights_metadata=lambda history: {"model": model_config.to_dict()},
        evaluation=(
            (
                "evaluation",
                lambda net: evaluate_transformer(
                    name, model=net, dataset=ds, max_pieces=eval_pieces, progress=progress
                ),
            )
            if evaluate and ds.split("test")
            else None
        ),
        write_card=lambda card, history, run_dir: write_card_files(card, history, summary),
    )


def write_card_files(card, history, summary: dict) -> None:
    """``history.json``, ``loss.png`` (loss and perplexity) and ``README.md`` for a trained model."""
    has_plot = write_history(card, history, lambda h: plot_training(h, figsize=(11, 3.5), layout=None, standalone=True))
    hp, m = card.hyperparameters, card.metrics
    lines = [
        f"# {card.name} -- Transformer-XL over performance tokens",
        "",
        card.description,
        "",
        "## Data and split",
        "",
        f"- {card.dataset}; {summary.get('skipped', 0)} unparsable pieces skipped.",
        f"- Split rule: {summary.get('split_rule', 'sha256(corpus path) mod 10')} (by piece).",
        f"- Tokens: {summary['train']['tokens']} train / {summary['validation']['tokens']} validation / "
        f"{summary['test']['tokens']} test.",
        f"- {hp['data']['vocabulary']}; augmentation: {hp['data']['augmentation']}.",
        "",
        "## Hyperparameters",
        "",
        f"- Network: {json.dumps(hp['model'])}, {m.get('parameters', '?')} parameters.",
        f"- Training: {json.dumps(hp['training'])}; {hp['lr_schedule']}.",
        f"- Wall-clock training time: {card.training_time_s:.0f} s ({card.training_time_s / 60:.1f} min).",
        "",
        "## Results",
        "",
        f"- Final training loss {card_number(m.get('final_loss'))}, validation loss {card_number(m.get('final_val_loss'))} "
        "(nats per token, crops of two segments).",
    ]
    ev = m.get("evaluation")
    if ev:
        lines.append(
            f"- Validation NLL {card_number(ev.get('val_nll'))}, test NLL {card_number(ev.get('test_nll'))} nats per token "
            f"vs bigram baseline {card_number(ev.get('baseline_nll'))} (test)."
        )
        ext = ev.get("extensions")
        if ext:
            lines.append(
                f"- Extensions of {ext['n']} held-out prompts: in-scale ratio {card_number(ext['in_scale_ratio'])} "
                f"(prompts {card_number(ext['prompt_in_scale_ratio'])}), longest rest {card_number(ext['longest_rest_s'])} s, "
                f"longest note {card_number(ext['longest_note_s'])} s, pitch range {card_number(ext['pitch_range'])} semitones."
            )
    if has_plot:
        lines += ["", "![loss and perplexity](loss.png)"]
    lines += provenance_lines(card, f"- `capsule evaluate {card.name} --json` reproduces the evaluation.")
    atomic_write_text(card.path / "README.md", "\n".join(lines) + "\n")
