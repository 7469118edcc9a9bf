"""Model summaries and exact FLOP counts, from ``torch.utils.flop_counter`` (no hand-written counter).

FLOPs follow PyTorch's flop counter: a multiply-add counts as 2 FLOPs (so ResNet-18 at 224x224
is about 3.64 GFLOPs = 1.82 GMACs); only the operations it knows (convolutions, matmuls,
attention ...) are counted, elementwise ops are not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..errors import CompositionError

__all__ = ["ModelSummary", "SummaryRow", "get_model_flops", "model_summary", "print_model_summary"]


@dataclass(frozen=True)
class SummaryRow:
    """One top-level part of a model: name, type, output shape (without batch), parameters, FLOPs."""

    name: str
    type: str
    output_shape: tuple[int, ...] | None
    params: int
    flops: int


@dataclass(frozen=True)
class ModelSummary:
    """Per-part rows plus totals; ``str()`` gives a table."""

    input_size: tuple[int, ...]
    output_shape: tuple[int, ...] | None
    rows: tuple[SummaryRow, ...]
    total_params: int
    trainable_params: int
    total_flops: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gflops(self) -> float:
        return self.total_flops / 1e9

    def __str__(self) -> str:
        header = ("layer", "type", "output", "params", "FLOPs")
        body = [(r.name, r.type, "x".join(map(str, r.output_shape)) if r.output_shape else "?", f"{r.params:,}",
                 f"{r.flops:,}") for r in self.rows]
        widths = [max(len(str(x[i])) for x in [header, *body]) for i in range(len(header))]
        lines = [f"input {'x'.join(map(str, self.input_size))}"]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in body]
        lines.append(f"total params: {self.total_params:,} (trainable {self.trainable_params:,})")
        lines.append(f"total FLOPs: {self.total_flops:,} ({self.gflops:.3f} GFLOPs; 1 multiply-add = 2 FLOPs)")
        return "\n".join(lines)


def _input(model: nn.Module, input_shape: Iterable[int]) -> torch.Tensor:
    shape = tuple(input_shape)
    if len(shape) == 3:
        shape = (1, *shape)
    if len(shape) < 2 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise CompositionError("input_shape must be (C, H, W) or (N, C, H, W) with positive integers",
                               got=input_shape, where="summary")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    return torch.zeros(shape, device=device, dtype=dtype)


def _top_level(model: nn.Module) -> list[tuple[str, nn.Module]]:
    parts: list[tuple[str, nn.Module]] = []
    for name, child in model.named_children():
        if name == "stages" and isinstance(child, nn.Sequential):
            parts += [(f"stages.{i}", m) for i, m in enumerate(child)]
        elif not isinstance(child, nn.Identity):
            parts.append((name, child))
    return parts


def _run(model: nn.Module, x: torch.Tensor, hooks_on: list[tuple[str, nn.Module]]
         ) -> tuple[Any, dict[str, tuple[int, ...]], FlopCounterMode]:
    shapes: dict[str, tuple[int, ...]] = {}
    handles = []
    for name, module in hooks_on:
        def hook(_m: nn.Module, _i: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor):
                shapes[name] = tuple(out.shape[1:])
        handles.append(module.register_forward_hook(hook))
    was_training = model.training
    counter = FlopCounterMode(display=False)
    try:
        model.eval()
        with torch.no_grad(), counter:
            out = model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return out, shapes, counter


def model_summary(model: nn.Module, input_shape: Iterable[int]) -> ModelSummary:
    """Output shapes, parameters and FLOPs of each top-level part (stem, each stage, head ...)."""
    x = _input(model, input_shape)
    parts = _top_level(model)
    out, shapes, counter = _run(model, x, parts)
    counts = counter.get_flop_counts()
    root = type(model).__name__
    rows = []
    for name, module in parts:
        flops = sum(counts.get(f"{root}.{name}", {}).values())
        rows.append(SummaryRow(name, type(module).__name__, shapes.get(name),
                               sum(p.numel() for p in module.parameters()), int(flops)))
    return ModelSummary(
        input_size=tuple(x.shape),
        output_shape=tuple(out.shape[1:]) if isinstance(out, torch.Tensor) else None,
        rows=tuple(rows),
        total_params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        total_flops=int(counter.get_total_flops()),
    )


def get_model_flops(model: nn.Module, input_shape: Iterable[int]) -> int:
    """Exact FLOPs of one forward (batch 1 for a ``(C, H, W)`` shape), from ``torch.utils.flop_counter``."""
    x = _input(model, input_shape)
    _, _, counter = _run(model, x, [])
    return int(counter.get_total_flops())


def print_model_summary(model: nn.Module, input_shape: Iterable[int], verbose: bool = True) -> ModelSummary:
    """Print (when ``verbose``) and return :func:`model_summary`."""
    summary = model_summary(model, input_shape)
    if verbose:
        print(summary)
    return summary
