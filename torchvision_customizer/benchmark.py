"""Latency/throughput benchmark of any model, with device synchronization and percentiles.

Example:
    >>> import torchvision
    >>> from torchvision_customizer.benchmark import benchmark
    >>> r = benchmark(torchvision.models.resnet18(), input_size=(3, 64, 64), iterations=5, warmup=1)
    >>> r.latency_ms["p50"] > 0
    True
"""

from __future__ import annotations

import contextlib
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .errors import TVCError, closest

__all__ = ["BenchmarkResult", "benchmark", "count_flops"]


class BenchmarkError(TVCError, ValueError):
    """A benchmark was asked for something impossible (bad device, sizes, iterations)."""


@dataclass
class BenchmarkResult:
    """Timing of one configuration. Latencies are per batch, in milliseconds."""

    device: str
    batch_size: int
    input_size: tuple[int, ...]
    iterations: int
    latency_ms: dict[str, float]
    throughput: float  # images per second at the median latency
    peak_memory_mb: float  # CUDA: max allocated; CPU: growth of the process's peak RSS
    params: int
    flops: int  # forward FLOPs for one batch (torch.utils.flop_counter; a multiply-add counts 2)
    options: dict[str, Any] = field(default_factory=dict)
    threads: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def count_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Exact forward FLOPs from ``torch.utils.flop_counter`` (a multiply-add counts as 2)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_rss_mb() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage / (1024 * 1024) if sys.platform == "darwin" else usage / 1024


def _resolve_device(device: str | torch.device) -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    choices = ["cpu", "cuda", "auto"]
    if not isinstance(device, str) or device.split(":")[0] not in ("cpu", "cuda"):
        raise BenchmarkError("unknown device", where="device", expected="cpu, cuda[:N] or auto", got=device,
                             suggestions=closest(str(device), choices))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BenchmarkError("CUDA was asked for but is not available", where="device", expected="cpu",
                             got=device)
    return torch.device(device)


def benchmark(model: nn.Module, *, input_size: tuple[int, ...] = (3, 224, 224), batch_size: int = 1,
              device: str | torch.device = "cpu", warmup: int = 5, iterations: int = 50,
              channels_last: bool = False, compile: bool = False, amp: bool = False) -> BenchmarkResult:
    """Time eval-mode forward passes of ``model`` on one batch.

    Args:
        input_size: (C, H, W) of one image.
        batch_size: images per forward pass.
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.
        warmup: untimed passes first (also triggers compilation).
        iterations: timed passes; latency percentiles are over these.
        channels_last: convert model and input to channels-last memory format.
        compile: ``torch.compile`` the model first.
        amp: autocast (bf16 on CPU, fp16 on CUDA).
    """
    for name, value, low in (("batch_size", batch_size, 1), ("iterations", iterations, 1), ("warmup", warmup, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise BenchmarkError(f"{name} is out of range", where=name, expected=f"an integer >= {low}", got=value)
    if len(tuple(input_size)) != 3 or any(int(s) < 1 for s in input_size):
        raise BenchmarkError("input_size must be (C, H, W)", where="input_size", expected="three positive ints",
                             got=input_size)
    dev = _resolve_device(device)
    model = model.to(dev).eval()
    x = torch.randn(batch_size, *input_size, device=dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    params = sum(p.numel() for p in model.parameters())
    flops = count_flops(model, x)
    runner: nn.Module = torch.compile(model) if compile else model  # type: ignore[assignment]
    autocast = (torch.autocast(dev.type, dtype=torch.float16 if dev.type == "cuda" else torch.bfloat16)
                if amp else contextlib.nullcontext())
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    rss_before = _peak_rss_mb()
    times: list[float] = []
    with torch.inference_mode(), autocast:
        for _ in range(warmup):
            runner(x)
        _sync(dev)
        for _ in range(iterations):
            t0 = time.perf_counter()
            runner(x)
            _sync(dev)
            times.append((time.perf_counter() - t0) * 1e3)
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) / 2**20
    else:
        peak = max(0.0, _peak_rss_mb() - rss_before)
    times.sort()

    def pct(q: float) -> float:
        return times[min(len(times) - 1, round(q * (len(times) - 1)))]

    latency = {"mean": statistics.fmean(times), "p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99),
               "min": times[0], "max": times[-1]}
    return BenchmarkResult(
        device=str(dev), batch_size=batch_size, input_size=tuple(input_size), iterations=iterations,
        latency_ms=latency, throughput=batch_size / (latency["p50"] / 1e3), peak_memory_mb=peak, params=params,
        flops=flops, options={"channels_last": channels_last, "compile": compile, "amp": amp},
        threads=torch.get_num_threads())
