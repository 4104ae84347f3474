"""What a technique provides to the trainer: :class:`TrainingTask`, to subclass."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from .config import TrainConfig


class TrainingTask:
    """What a technique provides to :class:`Trainer`.  Subclass and override.

    Required: :meth:`build`, :meth:`train_dataset`, :meth:`training_step`.  The
    others have sensible defaults.

    Under ``torchrun`` :meth:`training_step` receives each module wrapped in
    ``DistributedDataParallel`` (calling it synchronises gradients across processes;
    other attributes are forwarded to the module, and :func:`unwrap_module` returns
    the plain module).  Two DDP rules follow: every forward pass with gradients
    enabled must be followed by a backward pass that reaches all that module's
    parameters (so compute outputs you will ``.detach()`` -- a GAN critic step's fake
    batch -- under ``torch.no_grad()``), and do not toggle ``requires_grad`` during
    training.  :meth:`validation_step` and :meth:`on_sample` always get plain modules.

    For exact resume, randomness in the task must come from the global python,
    numpy and torch RNGs (which the checkpoint saves), and any other state that
    changes during training (LR schedulers, counters, EMA weights) must be returned
    by :meth:`state_dict` and restored by :meth:`load_state_dict`.
    """

    #: Optional ``collate_fn`` for the DataLoaders (None: torch's default).
    collate_fn: Callable | None = None

    def build(self, device: torch.device) -> dict[str, torch.nn.Module]:
        """Create the named modules (names must not contain dots), on ``device``."""
        raise NotImplementedError

    def configure_optimizers(
        self, modules: Mapping[str, torch.nn.Module], config: TrainConfig
    ) -> dict[str, torch.optim.Optimizer]:
        """Named optimizers.  Default: one Adam at ``config.lr`` per module with parameters."""
        return {
            name: torch.optim.Adam(module.parameters(), lr=config.lr)
            for name, module in modules.items()
            if any(p.requires_grad for p in module.parameters())
        }

    def train_dataset(self) -> Dataset:
        raise NotImplementedError

    def val_dataset(self) -> Dataset | None:
        return None

    def training_step(
        self,
        modules: Mapping[str, torch.nn.Module],
        optimizers: Mapping[str, torch.optim.Optimizer],
        batch: Any,
        step: int,
    ) -> dict[str, float]:
        """One step on ``batch`` (already on the device): forward, backward and
        ``optimizer.step()`` for as many optimizers as the step updates.

        ``step`` is the 0-based global step count (it keeps counting across
        epochs and resumes), e.g. a GAN updates its generator when
        ``step % update_ratio == update_ratio - 1``.  Returns metrics (floats or
        one-element tensors); a metric may be missing from some steps.
        """
        raise NotImplementedError

    def validation_step(self, modules: Mapping[str, torch.nn.Module], batch: Any) -> dict[str, float]:
        """Metrics for one validation batch (run in eval mode, without gradients)."""
        return {}

    def on_sample(self, modules: Mapping[str, torch.nn.Module], epoch: int, out_dir: Path) -> dict[str, float] | None:
        """Write samples for ``epoch`` into ``out_dir`` (created already; eval mode,
        without gradients; main process only).  May return metrics of the
        samples, which join the epoch's history record."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """Extra state to checkpoint (tensors, numbers, strings, lists, dicts only)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    # convenience for the common single-optimizer update
    @staticmethod
    def optimize(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        """``zero_grad``, ``loss.backward()``, ``optimizer.step()``."""
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
