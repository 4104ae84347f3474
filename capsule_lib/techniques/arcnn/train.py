"""Training an AR-CNN on the Bach chorales with the shared harness.

:class:`ArcnnTask` plugs the U-Net into :class:`capsule_lib.train.Trainer`: the training
set is the train split's windows, transposed and corrupted afresh each epoch; the
validation set is the validation split's windows with a fixed corruption.  The loss is
the binary cross entropy over all cells of the window (does the original have a note
here?).  The learning rate follows a cosine from ``lr`` down to 5 % of it over the run,
computed from the global step (so a resumed run follows the same curve).

:func:`train_arcnn` is the whole job, as ``capsule train arcnn`` runs it: register the
model (status ``training``), train (checkpoints in ``$CAPSULE_HOME/runs/arcnn/<name>``, so
an interrupted run resumes), save the weights as safetensors, evaluate on the test
split, write the model card (``README.md``, ``history.json``, ``loss.png``) and mark the
model ``complete`` -- or ``failed`` if anything goes wrong.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F

from ...atomic import atomic_write_text
from ...datasets.bach import HOP_STEPS, PITCH_HIGH, PITCH_LOW, WINDOW_STEPS, BachDataset, build_bach_dataset
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
from .data import ArcnnWindows
from .evaluate import evaluate_arcnn
from .model import ArcnnConfig, ArcnnUNet

__all__ = ["ArcnnTask", "train_arcnn", "VALIDATION_SEED"]

VALIDATION_SEED = 20240601
_LR_FLOOR = 0.05


class ArcnnTask(TrainingTask):
    """The AR-CNN for :class:`~capsule_lib.train.Trainer`.

    Parameters
    ----------
    dataset : BachDataset
        Parsed chorales (their split decides what is trained on).
    model_config : ArcnnConfig, optional
    epochs, batch_size : int
        Used only to lay out the cosine learning-rate schedule.
    max_steps_per_epoch : int, optional
        Likewise.
    """

    def __init__(
        self,
        dataset: BachDataset,
        model_config: ArcnnConfig | None = None,
        *,
        epochs: int = 1,
        batch_size: int = 32,
        max_steps_per_epoch: int | None = None,
    ):
        self.dataset = dataset
        self.model_config = model_config or ArcnnConfig()
        self.train_windows = dataset.windows("train")
        self.val_windows = dataset.windows("validation")
        if not self.train_windows:
            raise CapsuleError("the data set has no training chorales")
        steps = math.ceil(len(self.train_windows) / batch_size)
        if max_steps_per_epoch is not None:
            steps = min(steps, max_steps_per_epoch)
        self.total_steps = max(1, steps * epochs)
        self.base_lr: float | None = None

    def build(self, device):
        return {"unet": ArcnnUNet(self.model_config)}

    def configure_optimizers(self, modules, config):
        self.base_lr = config.lr
        return {"unet": torch.optim.Adam(modules["unet"].parameters(), lr=config.lr)}

    def train_dataset(self):
        return ArcnnWindows(self.train_windows, augment=True)

    def val_dataset(self):
        return ArcnnWindows(self.val_windows, augment=False, seed=VALIDATION_SEED) if self.val_windows else None

    def _lr(self, step: int) -> float:
        frac = min(step / self.total_steps, 1.0)
        return self.base_lr * (_LR_FLOOR + (1 - _LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * frac)))

    def training_step(self, modules, optimizers, batch, step):
        x, y = batch
        opt = optimizers["unet"]
        lr = self._lr(step)
        for group in opt.param_groups:
            group["lr"] = lr
        loss = F.binary_cross_entropy_with_logits(modules["unet"](x), y)
        self.optimize(opt, loss)
        return {"loss": loss.detach(), "lr": lr}

    def validation_step(self, modules, batch):
        x, y = batch
        logits = modules["unet"](x)
        hidden = x[:, 1] < 0.5
        out = {"loss": F.binary_cross_entropy_with_logits(logits, y)}
        if hidden.any():
            out["hidden_loss"] = F.binary_cross_entropy_with_logits(logits[hidden], y[hidden])
        return out


def train_arcnn(
    name: str,
    epochs: int = 30,
    lr: float = 2e-3,
    batch_size: int = 32,
    seed: int = 0,
    *,
    limit: int | None = None,
    paths=None,
    progress: bool = True,
    model_config: ArcnnConfig | Mapping[str, Any] | None = None,
    max_steps_per_epoch: int | None = None,
    device: str = "auto",
    evaluate: bool = True,
    eval_windows: int | None = None,
    registry=None,
    dataset: BachDataset | None = None,
    on_epoch_end: Callable | None = None,
):
    """Train an AR-CNN on the Bach chorales and register it as a custom model.

    Parameters
    ----------
    name : str
        The new model's name (an unfinished run of the same name is resumed).
    epochs, lr, batch_size, seed
        Training hyperparameters (see :class:`~capsule_lib.train.TrainConfig`).
    limit, paths
        Train on the first ``limit`` chorales / these corpus paths only (quick runs).
    model_config : ArcnnConfig or dict, optional
        Network size (default :class:`ArcnnConfig`).
    max_steps_per_epoch : int, optional
        Cut epochs short (classroom smoke runs).
    evaluate : bool
        Evaluate on the test split afterwards (skipped if the data has no test chorale).
    eval_windows : int, optional
        Evaluate on at most this many test windows.
    registry : ModelRegistry, optional
    dataset : BachDataset, optional
        Already-built chorales (default: :func:`build_bach_dataset`).
    on_epoch_end : callable, optional
        Passed to the Trainer (e.g. a live loss plot in a notebook).

    Returns
    -------
    ModelCard
        Status ``complete``, with metrics, hyperparameters and training time.
    """
    from ...models import ModelRegistry

    registry = registry if registry is not None else ModelRegistry()
    model_config = model_config_of(model_config, ArcnnConfig)
    config = TrainConfig(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        device=device,
        max_steps_per_epoch=max_steps_per_epoch,
        progress=progress,
    )
    existing = check_name_free(registry, name, "arcnn")
    ds = dataset if dataset is not None else build_bach_dataset(progress=progress, paths=paths, limit=limit)
    summary = ds.summary()
    hyper = {
        "model": model_config.to_dict(),
        "training": {k: config.to_dict()[k] for k in ("epochs", "lr", "batch_size", "seed", "max_steps_per_epoch")},
        "lr_schedule": f"cosine from lr to {_LR_FLOOR:g} x lr",
        "data": {
            "pitch_range": [PITCH_LOW, PITCH_HIGH],
            "steps_per_beat": 4,
            "window_steps": WINDOW_STEPS,
            "hop_steps": HOP_STEPS,
            "transposition": "random -6..+5 semitones (training only)",
            "corruption": "remove U(0,0.95) of notes, add U(0,0.2) x n stray notes, hide U(0.1,0.9) of cells in half"
            " the windows; 15% of windows keep the top voice and hide everything beneath",
        },
    }
    dataset_desc = (
        f"Bach chorales (music21 corpus): {summary['train']['chorales']} train / "
        f"{summary['validation']['chorales']} validation / {summary['test']['chorales']} test chorales"
    )

    return train_and_register(
        registry,
        existing,
        name,
        "arcnn",
        make_task=lambda: ArcnnTask(
            ds, model_config, epochs=epochs, batch_size=batch_size, max_steps_per_epoch=max_steps_per_epoch
        ),
        config=config,
        module="unet",
        on_epoch_end=on_epoch_end,
        card={
            "algorithm": "U-Net",
            "dataset": dataset_desc,
            "hyperparameters": hyper,
            "description": "AR-CNN trained on Bach chorales: enhances a melody by adding and removing notes",
        },
        weights_metadata=lambda history: {"model": model_config.to_dict(), "epochs": len(history)},
        evaluation=(
            (
                "test",
                lambda net: evaluate_arcnn(
                    name, "test", model=net, dataset=ds, max_windows=eval_windows, progress=progress
                ),
            )
            if evaluate and ds.split("test")
            else None
        ),
        write_card=lambda card, history, run_dir: _write_card_files(card, history, summary),
    )


def _draw_loss(card, history):
    from ...plot import plot_loss, subplots  # matplotlib: only when a card is written

    keys = [k for k in ("loss", "val_loss", "val_hidden_loss") if any(k in r for r in history)]
    fig, ax = subplots(figsize=(7, 3.5), layout="constrained", standalone=True)
    plot_loss(history, keys=keys, ax=ax)
    ax.set_title(f"{card.name}: binary cross entropy per cell")
    return fig


def _write_card_files(card, history, summary: dict) -> None:
    has_plot = write_history(card, history, lambda h: _draw_loss(card, h))
    hp = card.hyperparameters
    m = card.metrics
    lines = [
        f"# {card.name} -- AR-CNN (U-Net) trained on Bach chorales",
        "",
        card.description,
        "",
        "## Data and split",
        "",
        f"- {card.dataset}; {summary['skipped']} unparsable and {summary['duplicates']} duplicate chorales dropped.",
        f"- Split rule: {summary['split_rule']} (by chorale; no test window is ever trained on).",
        f"- Windows of {WINDOW_STEPS} steps (8 bars at 4 steps per beat) sliding by {HOP_STEPS}: "
        f"{summary['train']['windows']} train / {summary['validation']['windows']} validation / "
        f"{summary['test']['windows']} test.",
        f"- Pitches MIDI {PITCH_LOW}-{PITCH_HIGH}; {hp['data']['transposition']}.",
        f"- Corruption: {hp['data']['corruption']}.",
        "",
        "## Hyperparameters",
        "",
        f"- Network: {json.dumps(hp['model'])}, {m.get('parameters', '?')} parameters.",
        f"- Training: {json.dumps(hp['training'])}, {hp['lr_schedule']}, Adam, binary cross entropy.",
        f"- Wall-clock training time: {card.training_time_s:.0f} s ({card.training_time_s / 60:.1f} min).",
        "",
        "## Results",
        "",
        f"- Final training loss {card_number(m.get('final_loss'))}, validation loss {card_number(m.get('final_val_loss'))} "
        "(binary cross entropy per cell).",
    ]
    test = m.get("test")
    if test:
        lines.append(
            f"- Test split ({test['n_chorales']} chorales, {test['n_windows']} windows): NLL {test['nll']} "
            f"vs pitch-frequency baseline {test['baseline_nll']} ({test['nll_unit']})."
        )
        if "restoration" in test:
            r = test["restoration"]
            lines.append(
                f"- Restoration (half the notes removed, strays added, then enhanced): precision "
                f"{r['precision']}, recall {r['recall']}, F1 {r['f1']} (corrupted input: F1 {r['corrupted']['f1']})."
            )
            if r.get("metrics"):
                from .views import metrics_table

                m3 = r["metrics"]
                lines += [
                    "",
                    "Music metrics, mean per 8-bar test window (see `capsule_lib.metrics`):",
                    "",
                    metrics_table({"damaged input": m3["input"], "enhanced": m3["output"], "Bach": m3["bach"]}),
                ]
    if has_plot:
        lines += ["", "![loss curves](loss.png)"]
    lines += provenance_lines(
        card,
        f"- Test results above: `capsule evaluate {card.name} --split test --json` reproduces them.",
        "- A sample model is that folder (`$CAPSULE_HOME/models/NAME/`) copied to `data/models/NAME/`.",
    )
    atomic_write_text(card.path / "README.md", "\n".join(lines) + "\n")
