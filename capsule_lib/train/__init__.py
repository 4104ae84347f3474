"""The shared training harness: one loop for the U-Net, the GAN and the Transformer.

A technique subclasses :class:`TrainingTask` (its modules, optimizers, data and one
training step); :class:`Trainer` runs the epochs around it.  The harness gives every
technique the same guarantees:

* **determinism** on CPU for a given seed (python, numpy and torch RNGs, the
  DataLoader's shuffling and its workers all derive from it);
* **exact resume**: ``run_dir/checkpoint.pt`` holds weights, optimizer states,
  the task's own extra state, the history, the global step and every RNG state,
  so a run interrupted and resumed ends bit-identical to one that never stopped;
* **plain files**: ``history.json`` after every epoch and the checkpoint, both
  written atomically, the checkpoint loadable with ``weights_only=True``;
* **distributed data parallel** under ``torchrun`` with no change to the task.

One module per responsibility: :mod:`.config` (the run's settings), :mod:`.rng`
(seeding and saving every RNG), :mod:`.distributed` (device and process group),
:mod:`.weights` (safetensors files), :mod:`.history`, :mod:`.task` (what a technique
overrides) and :mod:`.loop` (the trainer).

This package is only imported on demand (through :mod:`capsule_lib`'s lazy map), so
it imports torch at the top.
"""

from .config import TrainConfig
from .distributed import select_device, unwrap_module
from .history import HISTORY_NAME, History
from .loop import CHECKPOINT_NAME, Trainer
from .rng import seed_everything
from .task import TrainingTask
from .weights import load_modules, save_modules

__all__ = [
    "TrainConfig",
    "TrainingTask",
    "Trainer",
    "History",
    "select_device",
    "seed_everything",
    "save_modules",
    "load_modules",
    "unwrap_module",
    "CHECKPOINT_NAME",
    "HISTORY_NAME",
]
