"""Helpers to build any registered block at a small size for the registry-wide tests."""

from __future__ import annotations

import math
from typing import Any

import torch

from torchvision_customizer import registry

IN_CHANNELS = 16
SIZE = 8


def build(name: str, **overrides: Any) -> torch.nn.Module:
    cls = registry.get(name)
    kwargs = {"in_channels": IN_CHANNELS, **getattr(cls, "example_kwargs", {}), **overrides}
    return cls(**kwargs)


def example_input(block: torch.nn.Module, batch: int = 2) -> torch.Tensor:
    layout = getattr(block, "layout", "nchw")
    c = block.in_channels or IN_CHANNELS
    if layout == "tokens":
        return torch.randn(batch, SIZE * SIZE, c)
    if layout == "nhwc":
        return torch.randn(batch, SIZE, SIZE, c)
    if getattr(block, "input_ndim", 4) == 5:
        return torch.randn(batch, c, 4, SIZE, SIZE)
    return torch.randn(batch, c, SIZE, SIZE)


def expected_shape(block: torch.nn.Module, x: torch.Tensor) -> tuple[int, ...]:
    layout = getattr(block, "layout", "nchw")
    out_c = block.out_channels if block.out_channels is not None else x.shape[1]
    if layout == "tokens":
        n = x.shape[1]
        return (x.shape[0], math.ceil(math.sqrt(n) / block.stride) ** 2, out_c)
    output_size = getattr(block, "output_size", None)
    spatial = x.shape[2:] if layout == "nchw" else x.shape[1:3]
    if output_size is not None:
        dims = (output_size,) * len(spatial) if isinstance(output_size, int) else tuple(output_size)
    else:
        dims = tuple(math.ceil(s / block.stride) for s in spatial)
    if layout == "nhwc":
        return (x.shape[0], *dims, out_c)
    return (x.shape[0], out_c, *dims)
