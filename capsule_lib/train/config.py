"""The hyperparameters and switches of one training run, checked when made.

Kept free of torch so a run's settings can be built, checked and written into a
model card without loading it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import CapsuleError


@dataclass
class TrainConfig:
    """Hyperparameters and switches of one training run.

    Parameters
    ----------
    epochs : int
        Passes over the training set (>= 1).
    lr : float
        Learning rate, read by :meth:`TrainingTask.configure_optimizers`.
    batch_size : int
        Examples per step (per process under ``torchrun``).
    seed : int
        Seeds every RNG; the same seed on CPU gives bit-identical runs.
    device : str
        ``"auto"`` (cuda, else mps, else cpu) or an explicit ``"cpu"``, ``"cuda"``,
        ``"cuda:N"``, ``"mps"``.
    checkpoint_every : int
        Write ``checkpoint.pt`` every this many epochs (and after the last one);
        0 never writes one, so the run cannot be resumed.
    sample_every : int
        Call :meth:`TrainingTask.on_sample` every this many epochs; 0 never does.
    num_workers : int
        DataLoader worker processes.
    max_steps_per_epoch : int or None
        Cut every epoch after this many steps (quick runs in a classroom).
    grad_clip : float or None
        Clip the gradient norm of each optimizer's parameters to this before
        every ``optimizer.step()``.
    progress : bool
        Show progress bars.
    drop_last : bool
        Drop the last incomplete batch of each epoch (GANs with batch norm like
        equal batches).
    """

    epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 32
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 1
    sample_every: int = 0
    num_workers: int = 0
    max_steps_per_epoch: int | None = None
    grad_clip: float | None = None
    progress: bool = True
    drop_last: bool = False

    def __post_init__(self):
        _check_int("epochs", self.epochs, 1)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("seed", self.seed, 0)
        _check_int("checkpoint_every", self.checkpoint_every, 0)
        _check_int("sample_every", self.sample_every, 0)
        _check_int("num_workers", self.num_workers, 0)
        if self.max_steps_per_epoch is not None:
            _check_int("max_steps_per_epoch", self.max_steps_per_epoch, 1)
        _check_positive("lr", self.lr)
        if self.grad_clip is not None:
            _check_positive("grad_clip", self.grad_clip)
        if not isinstance(self.device, str):
            raise CapsuleError(f"device must be a name such as 'auto' or 'cpu', got {self.device!r}")

    def to_dict(self) -> dict[str, Any]:
        """The config as plain values (for checkpoints and model cards)."""
        return dataclasses.asdict(self)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise CapsuleError(f"{name} must be a whole number >= {minimum}, got {value!r}")


def _check_positive(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.number))
        or not (math.isfinite(value) and value > 0)
    ):
        raise CapsuleError(f"{name} must be a positive number, got {value!r}")
