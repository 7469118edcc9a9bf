"""Random-number state: seeding, and snapshots that checkpoints can store and restore.

A snapshot holds the states of torch's CPU generator, every CUDA generator, numpy's and Python's
global generators, and any extra ``torch.Generator`` (a ``DataLoader``'s or a sampler's own), so a
resumed run draws exactly the numbers the uninterrupted run would have drawn.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["get_rng_state", "seed_everything", "set_rng_state"]

try:  # numpy is optional for us (torch does not require it)
    import numpy as _np
except ImportError:  # pragma: no cover - numpy ships with the supported stacks
    _np = None


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    if _np is not None:
        _np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def get_rng_state(generators: Sequence[torch.Generator] = ()) -> dict[str, Any]:
    """Snapshot every global generator and the given ``generators``."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "generators": [g.get_state() for g in generators],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if _np is not None:
        name, keys, pos, has_gauss, cached = _np.random.get_state()
        state["numpy"] = (name, torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss), float(cached))
    return state


def set_rng_state(state: dict[str, Any], generators: Sequence[torch.Generator] = ()) -> None:
    """Restore a snapshot taken by :func:`get_rng_state` (the same ``generators``, same order)."""
    torch.set_rng_state(state["torch"])
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    if state.get("numpy") is not None and _np is not None:
        name, keys, pos, has_gauss, cached = state["numpy"]
        _np.random.set_state((name, keys.numpy().astype("uint32"), pos, has_gauss, cached))
    for gen, gen_state in zip(generators, state.get("generators", ())):
        gen.set_state(gen_state)
