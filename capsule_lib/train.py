"""The shared training harness: one loop for the U-Net, the GAN and the Transformer.

A technique subclasses :class:`TrainingTask` (its modules, optimizers, data and one
training step); :class:`Trainer` runs the epochs around it.  The harness gives every
technique the same guarantees:

* **determinism** on CPU for a given seed (python, numpy and torch RNGs, the
  DataLoader's shuffling and its workers all derive from it);
* **exact resume**: ``run_dir/checkpoint.pt`` holds weights, optimizer states,
  the task's own extra state, the history, the global step and every RNG state,
  so a run interrupted and resumed ends bit-identical to one that never stopped;
* **plain files**: ``history.json`` after every epoch, ``final.safetensors`` at the
  end, all written atomically, the checkpoint loadable with ``weights_only=True``;
* **distributed data parallel** under ``torchrun`` with no change to the task.

This module is only imported on demand (through :mod:`capsule_lib`'s lazy map), so
it imports torch at the top.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .atomic import atomic_write_bytes, atomic_write_text
from .errors import CapsuleError

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
    "FINAL_WEIGHTS_NAME",
]

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "history.json"
FINAL_WEIGHTS_NAME = "final.safetensors"
SAMPLES_DIR = "samples"

# Bumped when the checkpoint layout changes, so an old file fails with a clear message.
_CHECKPOINT_FORMAT = 1

_DEVICE_TYPES = ("cpu", "cuda", "mps")


# --------------------------------------------------------------------------- config


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
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (
        math.isfinite(value) and value > 0
    ):
        raise CapsuleError(f"{name} must be a positive number, got {value!r}")


# --------------------------------------------------------------------------- devices and seeds


def select_device(name: str = "auto") -> torch.device:
    """The torch device to train on.

    Parameters
    ----------
    name : str
        ``"auto"`` picks cuda if available, else Apple's mps, else cpu.  An explicit
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` is checked for availability.

    Raises
    ------
    CapsuleError
        For an unknown name or a device this machine does not have.
    """
    if not isinstance(name, str):
        raise CapsuleError(f"device must be a name such as 'auto' or 'cpu', got {name!r}")
    key = name.strip().lower()
    if key == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(key)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in _DEVICE_TYPES:
        raise CapsuleError(f"unknown device {name!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise CapsuleError(f"device {name!r} requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CapsuleError(
                f"device {name!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    if device.type == "mps" and not _mps_available():
        raise CapsuleError(f"device {name!r} requested but Apple MPS is not available on this machine")
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def seed_everything(seed: int) -> None:
    """Seed python's ``random``, numpy's global RNG and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


def _rng_state(device: torch.device, loader_gen: torch.Generator) -> dict[str, Any]:
    """Every RNG state as tensors, ints, floats and lists (loadable with weights_only)."""
    _, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "loader": loader_gen.get_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": int(version), "state": [int(v) for v in internal], "gauss_next": gauss_next},
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    elif device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def _set_rng_state(state: Mapping[str, Any], device: torch.device, loader_gen: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    loader_gen.set_state(state["loader"])
    npst = state["numpy"]
    np.random.set_state(
        ("MT19937", npst["keys"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["cached_gaussian"])
    )
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
    elif device.type == "mps" and "mps" in state:
        torch.mps.set_rng_state(state["mps"])


# --------------------------------------------------------------------------- history


class History(list):
    """Per-epoch records, oldest first.

    Each record is a dict: ``epoch`` (1-based), the mean of every training metric
    over the epoch's steps, validation metrics prefixed ``val_``, any metrics
    returned by :meth:`TrainingTask.on_sample`, and ``seconds`` (the epoch's wall time).
    """

    def series(self, key: str) -> list[float]:
        """The values of one metric, one per epoch (``nan`` where an epoch lacks it)."""
        return [float(rec.get(key, math.nan)) for rec in self]

    def metrics(self) -> list[str]:
        """Names of the recorded metrics, in first-seen order (without epoch/seconds)."""
        names: dict[str, None] = {}
        for rec in self:
            names.update((k, None) for k in rec if k not in ("epoch", "seconds"))
        return list(names)

    def to_json(self) -> str:
        return json.dumps(list(self), indent=1)

    @classmethod
    def load(cls, path: str | os.PathLike) -> History:
        """Read a ``history.json`` (or the one inside a run folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / HISTORY_NAME
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CapsuleError(f"no training history at {path}") from None
        except (OSError, ValueError) as exc:
            raise CapsuleError(f"training history {path} is unreadable: {exc}") from None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise CapsuleError(f"training history {path} is not a list of epoch records")
        return cls(records)


# --------------------------------------------------------------------------- the task


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


# --------------------------------------------------------------------------- weights files


def unwrap_module(module: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside a ``DistributedDataParallel`` wrapper (or the module itself)."""
    from torch.nn.parallel import DistributedDataParallel

    while isinstance(module, DistributedDataParallel):
        module = module.module
    return module


def _check_module_names(modules: Mapping[str, Any]) -> None:
    if not isinstance(modules, Mapping) or not modules:
        raise CapsuleError("build() must return a non-empty dict of name -> torch.nn.Module")
    for name, module in modules.items():
        if not isinstance(name, str) or not name or "." in name:
            raise CapsuleError(f"module name {name!r} must be a non-empty string without dots")
        if not isinstance(module, torch.nn.Module):
            raise CapsuleError(f"module {name!r} is a {type(module).__name__}, not a torch.nn.Module")


def save_modules(
    path: str | os.PathLike, modules: Mapping[str, torch.nn.Module], metadata: Mapping[str, str] | None = None
) -> Path:
    """Write all modules' weights to one safetensors file, keys ``"<module>.<param>"``.

    Tensors are copied to CPU and un-shared first (safetensors refuses tied
    weights), so the file loads anywhere.
    """
    from safetensors.torch import save as st_save

    _check_module_names(modules)
    tensors = {}
    for name, module in modules.items():
        for key, value in unwrap_module(module).state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().to("cpu", copy=True).contiguous()
    meta = {"format": "pt", "modules": ",".join(modules)}
    meta.update({str(k): str(v) for k, v in (metadata or {}).items()})
    return atomic_write_bytes(path, st_save(tensors, metadata=meta))


def load_modules(
    path: str | os.PathLike, modules: Mapping[str, torch.nn.Module], *, strict: bool = True
) -> dict[str, torch.nn.Module]:
    """Load a :func:`save_modules` file (e.g. a run's ``final.safetensors``) into ``modules``.

    Each module keeps its device; the file's tensors are moved to it.  With
    ``strict``, a module missing from the file or a key that does not match is an
    error.  Returns ``modules`` as a dict.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    _check_module_names(modules)
    path = Path(path)
    if not path.is_file():
        raise CapsuleError(f"no weights file at {path}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CapsuleError(f"weights file {path} is unreadable: {exc}") from None
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        name, _, rest = key.partition(".")
        groups.setdefault(name, {})[rest] = value
    for name, module in modules.items():
        if name not in groups:
            if strict:
                raise CapsuleError(f"weights file {path} has no module {name!r} (it has {sorted(groups)})")
            continue
        try:
            unwrap_module(module).load_state_dict(groups[name], strict=strict)
        except RuntimeError as exc:
            raise CapsuleError(f"weights for module {name!r} in {path} do not fit: {exc}") from None
    return dict(modules)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    # Stream into a temp file beside the target rather than through bytes in memory:
    # checkpoints of the larger models are hundreds of MB.
    from .atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


# --------------------------------------------------------------------------- distributed


class _Distributed:
    """Process-group bookkeeping; a no-op in a single process."""

    def __init__(self, device_name: str):
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.enabled = self.world_size > 1
        self.owns_group = False
        device = select_device(device_name)
        if self.enabled and device.type == "cuda" and device.index is None:
            device = torch.device("cuda", self.local_rank)
        if self.enabled and device.type == "mps":
            raise CapsuleError("distributed training on mps is not supported; use device 'cpu' or 'cuda'")
        self.device = device
        if device.type == "cuda":
            torch.cuda.set_device(device)
        if self.enabled:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group(
                    backend="nccl" if device.type == "cuda" else "gloo",
                    store=_fresh_store(),
                    rank=self.rank,
                    world_size=self.world_size,
                )
                self.owns_group = True

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def gather_objects(self, obj: Any) -> list[Any]:
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.enabled:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.owns_group = False


_STORE: list = []  # [rendezvous store, number of process groups made on it]


def _fresh_store():
    """A key-value store for a new process group, under a prefix no earlier group used.

    ``destroy_process_group`` resets torch's group counter, so a second group in the
    same process (a script calling ``fit`` twice under torchrun) would reuse the first
    group's store keys, read stale addresses and hang.  One rendezvous per process,
    a new prefix per group, avoids that.
    """
    import torch.distributed as dist

    if not _STORE:
        store, _, _ = next(dist.rendezvous("env://"))
        _STORE.extend([store, 0])
    _STORE[1] += 1
    return dist.PrefixStore(f"capsule_train_{_STORE[1]}", _STORE[0])


def _ddp_wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    class _ForwardingDDP(DistributedDataParallel):
        # Tasks call their own module attributes (latent size, helper methods); forward
        # them so the task's code is the same with and without torchrun.
        def __getattr__(self, name):
            try:
                return super().__getattr__(name)
            except AttributeError:
                if name == "module":
                    raise
                return getattr(super().__getattr__("module"), name)

    if not any(p.requires_grad for p in module.parameters()):
        return module  # DDP refuses modules with nothing to synchronise
    device_ids = [device.index] if device.type == "cuda" else None
    return _ForwardingDDP(module, device_ids=device_ids)


# --------------------------------------------------------------------------- the trainer


def _to_device(batch: Any, device: torch.device, non_blocking: bool) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(_to_device(v, device, non_blocking) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device, non_blocking) for v in batch)
    return batch


def _metric_dict(metrics: Any, where: str) -> dict[str, float]:
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise CapsuleError(f"{where} must return a dict of metric name -> number, got {type(metrics).__name__}")
    try:
        return {str(k): float(v.detach() if isinstance(v, torch.Tensor) else v) for k, v in metrics.items()}
    except (TypeError, ValueError, RuntimeError) as exc:
        raise CapsuleError(f"{where} returned a metric that is not a single number: {exc}") from None


class _Means:
    """Running sums and counts per metric (metrics may be missing from some steps)."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, metrics: Mapping[str, float]) -> None:
        for k, v in metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1

    def local(self) -> dict[str, float]:
        return {k: self.sums[k] / self.counts[k] for k in sorted(self.sums)}

    def reduced(self, dist_ctx: _Distributed) -> dict[str, float]:
        """Means over every process's steps (each rank's steps weigh the same)."""
        if not dist_ctx.enabled:
            return self.local()
        names = sorted(set().union(*dist_ctx.gather_objects(sorted(self.sums))))
        device = dist_ctx.device if dist_ctx.device.type == "cuda" else torch.device("cpu")
        packed = torch.tensor(
            [self.sums.get(k, 0.0) for k in names] + [float(self.counts.get(k, 0)) for k in names],
            dtype=torch.float64,
            device=device,
        )
        packed = dist_ctx.sum_(packed).cpu().tolist()
        n = len(names)
        return {k: packed[i] / packed[n + i] for i, k in enumerate(names) if packed[n + i] > 0}


class Trainer:
    """Runs a :class:`TrainingTask` for ``config.epochs`` epochs, writing into ``run_dir``.

    Parameters
    ----------
    task : TrainingTask
    config : TrainConfig or None
        None uses the defaults.
    run_dir : path
        Folder for ``checkpoint.pt``, ``history.json``, ``final.safetensors`` and
        ``samples/epoch_XXXX/``; created if missing.
    on_epoch_end : callable, optional
        Called as ``on_epoch_end(history)`` after each epoch, once that epoch's
        history and checkpoint are written (e.g. to redraw a loss plot).  It should not
        draw from the global RNGs, or a resumed run stops matching an uninterrupted
        one.  Raising ``KeyboardInterrupt`` there stops training cleanly.

    Attributes
    ----------
    modules, optimizers : dict
        After :meth:`fit`: the trained (plain, unwrapped) modules and their optimizers.
    history : History
    device : torch.device
    rank, world_size : int
        This process's place under ``torchrun`` (0 and 1 otherwise).
    """

    def __init__(
        self,
        task: TrainingTask,
        config: TrainConfig | None,
        run_dir: str | os.PathLike,
        *,
        on_epoch_end: Callable[[History], Any] | None = None,
    ):
        if not isinstance(task, TrainingTask):
            raise CapsuleError(f"task must be a TrainingTask, got {type(task).__name__}")
        config = TrainConfig() if config is None else config
        if not isinstance(config, TrainConfig):
            raise CapsuleError(f"config must be a TrainConfig, got {type(config).__name__}")
        run_dir = Path(run_dir)
        if run_dir.exists() and not run_dir.is_dir():
            raise CapsuleError(f"run folder {run_dir} exists and is not a folder")
        self.task = task
        self.config = config
        self.run_dir = run_dir
        self.on_epoch_end = on_epoch_end
        self.modules: dict[str, torch.nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.history = History()
        self.device = torch.device("cpu")
        self.rank = 0
        self.world_size = 1
        self.global_step = 0

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME

    @property
    def history_path(self) -> Path:
        return self.run_dir / HISTORY_NAME

    @property
    def final_weights_path(self) -> Path:
        return self.run_dir / FINAL_WEIGHTS_NAME

    # -- public -------------------------------------------------------------------------

    def fit(self, resume: bool = True) -> History:
        """Train to ``config.epochs`` and return the history.

        With ``resume`` (the default) training continues from ``run_dir``'s
        checkpoint if there is one -- a finished run just rewrites its final weights,
        a run with more ``epochs`` than before trains the extra ones.  Without
        ``resume`` an existing checkpoint is deleted and training starts over.
        """
        dist_ctx = _Distributed(self.config.device)
        try:
            return self._fit(dist_ctx, resume)
        finally:
            dist_ctx.close()

    # -- internals ----------------------------------------------------------------------

    def _fit(self, dist_ctx: _Distributed, resume: bool) -> History:
        cfg, task = self.config, self.task
        self.device, self.rank, self.world_size = dist_ctx.device, dist_ctx.rank, dist_ctx.world_size
        if dist_ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)

        # Same seed on every rank: identical initial weights (DDP would broadcast them
        # anyway, but this keeps single-process and distributed inits the same).
        seed_everything(cfg.seed)
        modules = task.build(self.device)
        _check_module_names(modules)
        self.modules = {name: m.to(self.device) for name, m in modules.items()}
        self.optimizers = dict(task.configure_optimizers(self.modules, cfg) or {})
        loader_gen = torch.Generator()
        loader_gen.manual_seed(cfg.seed)
        if dist_ctx.enabled:
            # Per-rank streams from here on, so noise and dropout differ across ranks.
            seed_everything(cfg.seed + 7919 * dist_ctx.rank)
            loader_gen.manual_seed(cfg.seed + 7919 * dist_ctx.rank)

        self.history = History()
        self.global_step = 0
        start_epoch = 0
        if resume and self.checkpoint_path.is_file():
            start_epoch = self._load_checkpoint(dist_ctx, loader_gen)
        elif not resume and dist_ctx.is_main:
            self.checkpoint_path.unlink(missing_ok=True)

        train_modules = (
            {n: _ddp_wrap(m, self.device) for n, m in self.modules.items()} if dist_ctx.enabled else self.modules
        )
        train_loader, train_sampler = self._loader(task.train_dataset(), loader_gen, dist_ctx, train=True)
        if len(train_loader) == 0:
            raise CapsuleError(
                f"the training set gives no batches (batch_size {cfg.batch_size}, drop_last {cfg.drop_last})"
            )
        val_set = task.val_dataset()
        val_loader = None if val_set is None else self._loader(val_set, loader_gen, dist_ctx, train=False)[0]

        hooks = []
        if cfg.grad_clip is not None:
            hooks = [opt.register_step_pre_hook(self._clip_hook) for opt in self.optimizers.values()]
        show = cfg.progress and dist_ctx.is_main
        from tqdm.auto import tqdm

        epoch_bar = tqdm(
            total=cfg.epochs, initial=min(start_epoch, cfg.epochs), desc="training", unit="epoch", disable=not show
        )
        try:
            for epoch in range(start_epoch + 1, cfg.epochs + 1):
                started = time.perf_counter()
                if train_sampler is not None:
                    train_sampler.set_epoch(epoch)
                record: dict[str, Any] = {"epoch": epoch}
                record.update(self._train_epoch(train_modules, train_loader, epoch, dist_ctx, tqdm, show))
                if val_loader is not None:
                    record.update(self._validate(val_loader, dist_ctx))
                if cfg.sample_every and epoch % cfg.sample_every == 0 and dist_ctx.is_main:
                    record.update(self._sample(epoch))
                record["seconds"] = round(time.perf_counter() - started, 4)
                self.history.append(record)
                if dist_ctx.is_main:
                    atomic_write_text(self.history_path, self.history.to_json())
                if cfg.checkpoint_every and (epoch % cfg.checkpoint_every == 0 or epoch == cfg.epochs):
                    self._save_checkpoint(dist_ctx, loader_gen, epoch)
                epoch_bar.set_postfix(
                    {k: f"{v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds")}, refresh=False
                )
                epoch_bar.update(1)
                if self.on_epoch_end is not None:
                    self.on_epoch_end(self.history)
        finally:
            epoch_bar.close()
            for h in hooks:
                h.remove()

        if dist_ctx.is_main:
            save_modules(
                self.final_weights_path,
                self.modules,
                metadata={"epochs": str(len(self.history)), "config": json.dumps(cfg.to_dict())},
            )
        dist_ctx.barrier()  # every rank returns only once the final weights exist
        return self.history

    def _loader(self, dataset: Dataset, gen: torch.Generator, dist_ctx: _Distributed, *, train: bool):
        cfg = self.config
        sampler = None
        if dist_ctx.enabled:
            from torch.utils.data.distributed import DistributedSampler

            sampler = DistributedSampler(
                dataset, num_replicas=dist_ctx.world_size, rank=dist_ctx.rank, shuffle=train, seed=cfg.seed
            )
        loader = DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            shuffle=train and sampler is None,
            sampler=sampler,
            num_workers=cfg.num_workers,
            collate_fn=self.task.collate_fn,
            pin_memory=self.device.type == "cuda",
            drop_last=cfg.drop_last and train,
            # Shuffling and each worker's base seed come from ``gen``; torch seeds
            # python, numpy and torch in every worker from that base seed.
            generator=gen,
        )
        return loader, sampler

    def _clip_hook(self, optimizer, args, kwargs):
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if params:
            torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)

    def _train_epoch(self, train_modules, loader, epoch, dist_ctx, tqdm, show) -> dict[str, float]:
        cfg = self.config
        for m in self.modules.values():
            m.train()
        means = _Means()
        limit = len(loader) if cfg.max_steps_per_epoch is None else min(len(loader), cfg.max_steps_per_epoch)
        non_blocking = self.device.type == "cuda"
        with tqdm(total=limit, desc=f"epoch {epoch}", unit="step", leave=False, disable=not show) as bar:
            for i, batch in enumerate(loader):
                if i >= limit:
                    break
                batch = _to_device(batch, self.device, non_blocking)
                metrics = self.task.training_step(train_modules, self.optimizers, batch, self.global_step)
                means.add(_metric_dict(metrics, "training_step"))
                self.global_step += 1
                bar.update(1)
                if show:
                    bar.set_postfix({k: f"{v:.4g}" for k, v in means.local().items()}, refresh=False)
        return means.reduced(dist_ctx)

    def _validate(self, loader, dist_ctx) -> dict[str, float]:
        means = _Means()
        non_blocking = self.device.type == "cuda"
        with _eval_mode(self.modules), torch.no_grad():
            for batch in loader:
                batch = _to_device(batch, self.device, non_blocking)
                means.add(_metric_dict(self.task.validation_step(self.modules, batch), "validation_step"))
        return {(k if k.startswith("val_") else f"val_{k}"): v for k, v in means.reduced(dist_ctx).items()}

    def _sample(self, epoch: int) -> dict[str, float]:
        out_dir = self.run_dir / SAMPLES_DIR / f"epoch_{epoch:04d}"
        out_dir.mkdir(parents=True, exist_ok=True)
        with _eval_mode(self.modules), torch.no_grad():
            return _metric_dict(self.task.on_sample(self.modules, epoch, out_dir), "on_sample")

    def _save_checkpoint(self, dist_ctx: _Distributed, loader_gen: torch.Generator, epoch: int) -> None:
        # Each rank has its own RNG streams; gather them all so a resumed
        # distributed run continues every stream where it stopped.
        rng = dist_ctx.gather_objects(_rng_state(self.device, loader_gen))
        if not dist_ctx.is_main:
            return
        state = {
            "format": _CHECKPOINT_FORMAT,
            "epoch": epoch,
            "global_step": self.global_step,
            "modules": {n: m.state_dict() for n, m in self.modules.items()},
            "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
            "task": self.task.state_dict(),
            "history": [dict(r) for r in self.history],
            "rng": rng,
            "world_size": dist_ctx.world_size,
            "config": self.config.to_dict(),
        }
        _atomic_torch_save(state, self.checkpoint_path)

    def _load_checkpoint(self, dist_ctx: _Distributed, loader_gen: torch.Generator) -> int:
        path = self.checkpoint_path
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises a zoo of types for a damaged file
            raise CapsuleError(f"checkpoint {path} is unreadable: {exc}") from None
        if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
            raise CapsuleError(f"checkpoint {path} is not a checkpoint this version can resume")
        saved, wanted = sorted(state["modules"]), sorted(self.modules)
        if saved != wanted:
            raise CapsuleError(f"checkpoint {path} holds modules {saved}, but the task builds {wanted}")
        try:
            for name, module in self.modules.items():
                module.load_state_dict(state["modules"][name])
            if sorted(state["optimizers"]) != sorted(self.optimizers):
                raise ValueError(f"optimizers {sorted(state['optimizers'])} vs {sorted(self.optimizers)}")
            for name, opt in self.optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CapsuleError(f"checkpoint {path} does not fit the task: {exc}") from None
        self.task.load_state_dict(state.get("task", {}))
        self.history = History(state["history"])
        self.global_step = int(state["global_step"])
        rng = state["rng"]
        if dist_ctx.rank < len(rng):
            _set_rng_state(rng[dist_ctx.rank], self.device, loader_gen)
        # else: resumed on more processes than saved; the new ranks keep their fresh seeds.
        return int(state["epoch"])


class _eval_mode:
    """Put modules in eval mode for a block, restoring each one's previous mode."""

    def __init__(self, modules: Mapping[str, torch.nn.Module]):
        self.modules = list(modules.values())

    def __enter__(self):
        self.modes = [m.training for m in self.modules]
        for m in self.modules:
            m.eval()

    def __exit__(self, *exc):
        for m, mode in zip(self.modules, self.modes):
            m.train(mode)
        return False
