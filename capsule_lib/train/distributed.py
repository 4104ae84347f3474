"""The device a run trains on and, under ``torchrun``, its process group.

:class:`Distributed` is a no-op in a single process, so the training loop reads the
same with and without ``torchrun``; :func:`ddp_wrap` wraps a module so a task's code
is the same too.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..errors import CapsuleError

_DEVICE_TYPES = ("cpu", "cuda", "mps")


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


class Distributed:
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


def unwrap_module(module: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside a ``DistributedDataParallel`` wrapper (or the module itself)."""
    from torch.nn.parallel import DistributedDataParallel

    while isinstance(module, DistributedDataParallel):
        module = module.module
    return module


def ddp_wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` in ``DistributedDataParallel`` (as is when it has nothing to train)."""
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
