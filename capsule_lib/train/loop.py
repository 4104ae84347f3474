"""The training loop: :class:`Trainer` runs a task's epochs, checkpoints and resumes them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from ..atomic import atomic_write_text
from ..errors import CapsuleError
from .config import TrainConfig
from .distributed import Distributed, ddp_wrap
from .history import HISTORY_NAME, History
from .rng import rng_state, seed_everything, set_rng_state
from .task import TrainingTask
from .weights import atomic_torch_save, check_module_names

CHECKPOINT_NAME = "checkpoint.pt"
SAMPLES_DIR = "samples"

# Bumped when the checkpoint layout changes, so an old file fails with a clear message.
_CHECKPOINT_FORMAT = 1


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

    def reduced(self, dist_ctx: Distributed) -> dict[str, float]:
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
        Folder for ``checkpoint.pt``, ``history.json`` and ``samples/epoch_XXXX/``;
        created if missing.
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

    # -- public -------------------------------------------------------------------------

    def fit(self, resume: bool = True) -> History:
        """Train to ``config.epochs`` and return the history.

        With ``resume`` (the default) training continues from ``run_dir``'s
        checkpoint if there is one -- a finished run trains no further, a run with
        more ``epochs`` than before trains the extra ones.  Without
        ``resume`` an existing checkpoint is deleted and training starts over.
        """
        dist_ctx = Distributed(self.config.device)
        try:
            return self._fit(dist_ctx, resume)
        finally:
            dist_ctx.close()

    # -- internals ----------------------------------------------------------------------

    def _fit(self, dist_ctx: Distributed, resume: bool) -> History:
        cfg, task = self.config, self.task
        self.device, self.rank, self.world_size = dist_ctx.device, dist_ctx.rank, dist_ctx.world_size
        if dist_ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)

        # Same seed on every rank: identical initial weights (DDP would broadcast them
        # anyway, but this keeps single-process and distributed inits the same).
        seed_everything(cfg.seed)
        modules = task.build(self.device)
        check_module_names(modules)
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
            {n: ddp_wrap(m, self.device) for n, m in self.modules.items()} if dist_ctx.enabled else self.modules
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

        dist_ctx.barrier()  # every rank returns only once rank 0 has written its files
        return self.history

    def _loader(self, dataset: Dataset, gen: torch.Generator, dist_ctx: Distributed, *, train: bool):
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

    def _save_checkpoint(self, dist_ctx: Distributed, loader_gen: torch.Generator, epoch: int) -> None:
        # Each rank has its own RNG streams; gather them all so a resumed
        # distributed run continues every stream where it stopped.
        rng = dist_ctx.gather_objects(rng_state(self.device, loader_gen))
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
        atomic_torch_save(state, self.checkpoint_path)

    def _load_checkpoint(self, dist_ctx: Distributed, loader_gen: torch.Generator) -> int:
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
            set_rng_state(rng[dist_ctx.rank], self.device, loader_gen)
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
