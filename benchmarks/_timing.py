"""Interleaved, median-based timing shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def param_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def interleaved(fns: dict[str, Callable[[], object]], reps: int = 15, warmup: int = 3) -> dict[str, float]:
    """Median seconds per call of each function, alternating between them on every repetition."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(reps):
        order = list(fns.items())
        if i % 2:
            order.reverse()  # alternate the order so neither side always runs first
        for name, fn in order:
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in samples.items()}


def eval_fn(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    model.eval()

    def run() -> object:
        with torch.inference_mode():
            return model(x)

    return run


def train_fn(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)

    def run() -> object:
        opt.zero_grad(set_to_none=True)
        out = model(x)
        out.float().mean().backward()
        opt.step()
        return out

    return run
