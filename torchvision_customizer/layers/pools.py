"""Global pooling layers by name (``avg``, ``max``, ``avgmax``, ``gem``) and the pooling factory.

Global pools reduce (N, C, H, W) to (N, C, 1, 1), or to (N, C) with ``flatten=True``. GeM is
generalized-mean pooling, Radenovic et al., "Fine-tuning CNN Image Retrieval with No Human
Annotation", TPAMI 2018 (arXiv:1711.02512).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import BlockArgumentError
from ..registry import POOLS
from .helpers import check_float

__all__ = ["GeM", "GlobalAvgMaxPool", "GlobalAvgPool", "GlobalMaxPool", "create_pool", "get_pooling"]


class GlobalAvgPool(nn.Module):
    """Mean over H and W."""

    def __init__(self, flatten: bool = False) -> None:
        super().__init__()
        self.flatten = flatten

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3), keepdim=not self.flatten)


class GlobalMaxPool(nn.Module):
    """Max over H and W."""

    def __init__(self, flatten: bool = False) -> None:
        super().__init__()
        self.flatten = flatten

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax((2, 3), keepdim=not self.flatten)


class GlobalAvgMaxPool(nn.Module):
    """Average of global mean and global max pooling (0.5 * (avg + max))."""

    def __init__(self, flatten: bool = False) -> None:
        super().__init__()
        self.flatten = flatten

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = not self.flatten
        return 0.5 * (x.mean((2, 3), keepdim=keep) + x.amax((2, 3), keepdim=keep))


class GeM(nn.Module):
    """Generalized-mean pooling ``(mean(clamp(x, eps) ** p)) ** (1/p)``, ``p`` learnable by default.

    Args:
        p: the power (3 in the paper); ``p=1`` is average pooling, large ``p`` tends to max.
        eps: lower clamp that keeps the power defined.
        learnable: make ``p`` a parameter.
        flatten: return (N, C) instead of (N, C, 1, 1).
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6, learnable: bool = True, flatten: bool = False,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        check_float("p", p, lo=0.0, lo_open=True, owner="GeM")
        check_float("eps", eps, lo=0.0, lo_open=True, owner="GeM")
        self.init_p = float(p)
        self.eps = eps
        self.flatten = flatten
        p_tensor = torch.full((1,), float(p), device=device, dtype=dtype)
        if learnable:
            self.p = nn.Parameter(p_tensor)
        else:
            self.register_buffer("p", p_tensor)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.p.fill_(self.init_p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.clamp(min=self.eps).pow(self.p).mean((2, 3), keepdim=not self.flatten)
        return y.pow(1.0 / self.p)

    def extra_repr(self) -> str:
        return f"p={self.init_p}, eps={self.eps}"


POOLS.register("avg", GlobalAvgPool, category="global_pool", aliases=("mean", "adaptive_avg", "gap"))
POOLS.register("max", GlobalMaxPool, category="global_pool", aliases=("adaptive_max", "gmp"))
POOLS.register("avgmax", GlobalAvgMaxPool, category="global_pool", aliases=("avg_max",))
POOLS.register("gem", GeM, category="global_pool", aliases=("generalized_mean",))


def create_pool(pool: Any, *, flatten: bool = False, **kwargs: Any) -> nn.Module:
    """A global pool from a name, class or callable; ``None``/"none" gives ``nn.Identity``."""
    if pool is None or (isinstance(pool, str) and pool.strip().lower() in ("none", "")):
        return nn.Identity()
    if isinstance(pool, str):
        return POOLS.get(pool)(flatten=flatten, **kwargs)
    if isinstance(pool, nn.Module) or not callable(pool):
        raise BlockArgumentError("pool must be a name, class or callable", where="pool",
                                 expected="one of " + ", ".join(POOLS.list()), got=pool)
    return pool(flatten=flatten, **kwargs)


def get_pooling(pool_type: str, kernel_size: int = 2, stride: int | None = None,
                output_size: int | tuple[int, int] | None = None, **kwargs: Any) -> nn.Module:
    """Older-release pooling factory: ``max``, ``avg``, ``adaptive_avg``, ``adaptive_max``, ``none``.

    ``max``/``avg`` are local pools (``kernel_size``, ``stride`` defaulting to the kernel);
    ``adaptive_*`` pool to ``output_size`` (default 1); ``gem``/``avgmax`` are global.
    """
    if not isinstance(pool_type, str):
        raise BlockArgumentError("pool_type must be a string", expected="a pooling name", got=pool_type)
    key = pool_type.strip().lower().replace("-", "_")
    stride = kernel_size if stride is None else stride
    if key == "max":
        return nn.MaxPool2d(kernel_size, stride, **kwargs)
    if key == "avg":
        return nn.AvgPool2d(kernel_size, stride, **kwargs)
    if key == "adaptive_avg":
        return nn.AdaptiveAvgPool2d(output_size or 1)
    if key == "adaptive_max":
        return nn.AdaptiveMaxPool2d(output_size or 1)
    return create_pool(key, **kwargs)
