"""Multi-process training through ``torchrun`` and ``torch.distributed`` (no home-made engine).

Launch any script that calls ``Trainer.fit`` with::

    torchrun --nproc_per_node 2 train.py

``torchrun`` sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. When
``WORLD_SIZE > 1`` the :class:`~torchvision_customizer.train.Trainer` initialises the default
process group (``nccl`` on CUDA, ``gloo`` on CPU), places the model on ``cuda:LOCAL_RANK`` (or the
CPU), wraps it in :class:`~torch.nn.parallel.DistributedDataParallel`, gives each loader a
:class:`~torch.utils.data.distributed.DistributedSampler` (the loader's ``batch_size`` is per
process, so the global batch is ``batch_size * WORLD_SIZE``), averages the epoch metrics over all
processes, and writes checkpoints and logs on rank 0 only.
"""

from __future__ import annotations

import atexit
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, RandomSampler, Sampler, SequentialSampler
from torch.utils.data.distributed import DistributedSampler

from ..errors import TrainingError

__all__ = [
    "DistContext",
    "ShardSampler",
    "all_reduce_sum",
    "convert_sync_batchnorm",
    "distribute_loader",
    "env_world_size",
    "setup_distributed",
]


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when unset)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise TrainingError("WORLD_SIZE is not an integer", where="environment",
                            got=os.environ.get("WORLD_SIZE")) from None


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``world_size`` 1 means single-process training."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


_CREATED_GROUP = False


def _destroy_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def setup_distributed(device_type: str) -> DistContext:
    """Initialise the default process group from ``torchrun``'s environment, if needed.

    An already initialised group (the user's own ``init_process_group``) is used as is. A group
    created here is destroyed at interpreter exit.
    """
    global _CREATED_GROUP
    if dist.is_available() and dist.is_initialized():
        ws, rank = dist.get_world_size(), dist.get_rank()
        return DistContext(ws, rank, int(os.environ.get("LOCAL_RANK", rank)), dist.get_backend())
    world = env_world_size()
    if world <= 1:
        return DistContext()
    if not dist.is_available():
        raise TrainingError("WORLD_SIZE > 1 but this torch build has no torch.distributed", got=world)
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise TrainingError("WORLD_SIZE > 1 but the rendezvous variables are missing", where="environment",
                            expected="RANK, MASTER_ADDR and MASTER_PORT (set by torchrun)", got=missing,
                            hint="launch with `torchrun --nproc_per_node N script.py`")
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    if not _CREATED_GROUP:
        atexit.register(_destroy_group)
    _CREATED_GROUP = True
    rank = dist.get_rank()
    return DistContext(dist.get_world_size(), rank, int(os.environ.get("LOCAL_RANK", rank)), backend)


def convert_sync_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm*d`` by :class:`~torch.nn.SyncBatchNorm` (weights and stats kept)."""
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def has_sync_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())


def all_reduce_sum(values: Sequence[float], device: torch.device, ctx: DistContext) -> list[float]:
    """Sum ``values`` over all processes (identity when not distributed)."""
    if not ctx.enabled:
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def all_gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_flag(flag: bool, device: torch.device, ctx: DistContext) -> bool:
    """True when any process raised ``flag`` (keeps early stopping in lockstep)."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


class ShardSampler(Sampler[int]):
    """Indices ``rank, rank + world, ...`` with no padding: exact distributed evaluation."""

    def __init__(self, length: int, rank: int, world_size: int) -> None:
        self.length, self.rank, self.world_size = length, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self) -> int:
        return max(0, math.ceil((self.length - self.rank) / self.world_size))


def distribute_loader(loader: Any, ctx: DistContext, *, train: bool, seed: int) -> Any:
    """Rebuild a ``DataLoader`` so that each process reads its own shard.

    Training loaders get a :class:`DistributedSampler` (shuffled when the original shuffled;
    ``set_epoch`` is called by the trainer); evaluation loaders get a :class:`ShardSampler`, so no
    sample is duplicated and the all-reduced metrics are exact. A loader that already has a
    distributed sampler, or that is not a ``DataLoader``, is returned unchanged.
    """
    if not ctx.enabled or not isinstance(loader, DataLoader):
        return loader
    sampler = loader.sampler
    if isinstance(sampler, (DistributedSampler, ShardSampler)):
        return loader
    batch_sampler = loader.batch_sampler
    if batch_sampler is not None and type(batch_sampler).__name__ != "BatchSampler":
        raise TrainingError("cannot shard a DataLoader with a custom batch_sampler", where="Trainer.fit",
                            got=type(batch_sampler).__name__,
                            hint="give it a DistributedSampler yourself, or use sampler=/shuffle=")
    if not isinstance(sampler, (RandomSampler, SequentialSampler)):
        raise TrainingError("cannot shard a DataLoader with a custom sampler", where="Trainer.fit",
                            got=type(sampler).__name__,
                            hint="pass a loader whose sampler is a DistributedSampler")
    dataset = loader.dataset
    if train:
        new_sampler: Sampler[int] = DistributedSampler(
            dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=isinstance(sampler, RandomSampler),
            seed=seed, drop_last=loader.drop_last)
    else:
        new_sampler = ShardSampler(len(dataset), ctx.rank, ctx.world_size)
    extra = {k: getattr(loader, k) for k in ("pin_memory_device", "in_order") if hasattr(loader, k)}
    return DataLoader(
        dataset, batch_size=loader.batch_size, sampler=new_sampler, num_workers=loader.num_workers,
        collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, drop_last=loader.drop_last,
        timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context, generator=loader.generator,
        prefetch_factor=loader.prefetch_factor if loader.num_workers > 0 else None,
        persistent_workers=loader.persistent_workers, **extra)


def set_sampler_epoch(loader: Any, epoch: int) -> None:
    """Call ``set_epoch`` on the loader's sampler (or batch sampler) when it has one."""
    for obj in (getattr(loader, "sampler", None), getattr(getattr(loader, "batch_sampler", None), "sampler", None),
                getattr(loader, "batch_sampler", None)):
        fn = getattr(obj, "set_epoch", None)
        if callable(fn):
            fn(epoch)
            return
