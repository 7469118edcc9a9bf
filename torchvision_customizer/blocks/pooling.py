"""``gem``, ``avg_pool``, ``max_pool``, ``avgmax_pool``: pooling layers as registered blocks.

* ``gem``: generalized-mean pooling, Radenovic et al., "Fine-tuning CNN Image Retrieval with No
  Human Annotation", TPAMI 2018 (arXiv:1711.02512): ``mean(clamp(x, eps) ** p) ** (1 / p)`` with a
  learnable ``p`` (3), a block around :class:`~torchvision_customizer.layers.GeM`.
* ``avg_pool`` / ``max_pool``: local average / max pooling (LeCun et al. 1998; Krizhevsky et al.
  2012), thin blocks around ``nn.AvgPool2d`` / ``nn.MaxPool2d`` that declare their stride.
* ``avgmax_pool``: global ``0.5 * (avg + max)`` pooling (the "avgmax" head pool of timm, no paper),
  a block around :class:`~torchvision_customizer.layers.GlobalAvgMaxPool`.

The global pools return (N, C, 1, 1) and set ``output_size = 1``. No departures from the layers
they wrap; the math lives in ``layers/pools.py`` (these blocks only add the block protocol).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import BlockValueError
from ..layers import check_channels, check_int
from ..layers.pools import GeM, GlobalAvgMaxPool
from ._base import Block, register_block

__all__ = ["AvgMaxPoolBlock", "AvgPoolBlock", "GeMPool", "MaxPoolBlock"]


@register_block("gem", category="pooling", aliases=("generalized_mean", "gem_pool"))
class GeMPool(Block):
    """Generalized-mean global pooling to (N, C, 1, 1): ``mean(clamp(x, eps) ** p) ** (1 / p)``.

    Args:
        in_channels: channels (also accepted as ``channels=``).
        p: initial power (3; 1 = average pooling, large ``p`` tends to max pooling).
        eps: lower clamp keeping the power defined.
        learnable: make ``p`` a parameter (else a buffer).

    Example:
        >>> GeMPool(16)(torch.rand(2, 16, 8, 8)).shape
        torch.Size([2, 16, 1, 1])
    """

    OUTPUT_RULE = "same channels; spatial 1x1"

    def __init__(self, in_channels: int, p: float = 3.0, eps: float = 1e-6, learnable: bool = True,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        check_channels("in_channels", in_channels, "gem")
        self.in_channels = self.out_channels = in_channels
        self.output_size = 1
        self.pool = GeM(p, eps, learnable, flatten=False, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


def _check_local_pool(name: str, in_channels: int, kernel_size: int, stride: int | None,
                      padding: int) -> int:
    check_channels("in_channels", in_channels, name)
    check_int("kernel_size", kernel_size, owner=name)
    stride = kernel_size if stride is None else check_int("stride", stride, owner=name)
    check_int("padding", padding, minimum=0, owner=name)
    if 2 * padding > kernel_size:
        raise BlockValueError("padding must be at most half the kernel size", where=f"{name}.padding",
                              expected=f"padding <= {kernel_size // 2} for kernel_size={kernel_size}", got=padding)
    return stride


@register_block("avg_pool", category="pooling", aliases=("avgpool", "average_pool"))
class AvgPoolBlock(Block):
    """Local average pooling (``nn.AvgPool2d``) with a declared stride.

    Args:
        in_channels: channels (unchanged; also accepted as ``channels=``).
        kernel_size: square window (2).
        stride: step (default: ``kernel_size``).
        padding: zero padding on each side (at most ``kernel_size // 2``).
        ceil_mode: round the output size up instead of down.
        count_include_pad: count padded zeros in the average.

    Example:
        >>> AvgPoolBlock(16)(torch.randn(1, 16, 8, 8)).shape
        torch.Size([1, 16, 4, 4])
    """

    OUTPUT_RULE = "same channels; floor((spatial + 2 * padding - kernel_size) / stride) + 1 (ceil with ceil_mode)"

    def __init__(self, in_channels: int, kernel_size: int = 2, stride: int | None = None, padding: int = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True, device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        stride = _check_local_pool("avg_pool", in_channels, kernel_size, stride, padding)
        self.in_channels = self.out_channels = in_channels
        self.stride = stride
        self.pool = nn.AvgPool2d(kernel_size, stride, padding, ceil_mode=ceil_mode,
                                 count_include_pad=count_include_pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


@register_block("max_pool", category="pooling", aliases=("maxpool",))
class MaxPoolBlock(Block):
    """Local max pooling (``nn.MaxPool2d``) with a declared stride.

    Args:
        in_channels: channels (unchanged; also accepted as ``channels=``).
        kernel_size: square window (2).
        stride: step (default: ``kernel_size``).
        padding: implicit ``-inf`` padding on each side (at most ``kernel_size // 2``).
        ceil_mode: round the output size up instead of down.

    Example:
        >>> MaxPoolBlock(16, kernel_size=3, stride=2, padding=1)(torch.randn(1, 16, 8, 8)).shape
        torch.Size([1, 16, 4, 4])
    """

    OUTPUT_RULE = "same channels; floor((spatial + 2 * padding - kernel_size) / stride) + 1 (ceil with ceil_mode)"

    def __init__(self, in_channels: int, kernel_size: int = 2, stride: int | None = None, padding: int = 0,
                 ceil_mode: bool = False, device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        stride = _check_local_pool("max_pool", in_channels, kernel_size, stride, padding)
        self.in_channels = self.out_channels = in_channels
        self.stride = stride
        self.pool = nn.MaxPool2d(kernel_size, stride, padding, ceil_mode=ceil_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)


@register_block("avgmax_pool", category="pooling", aliases=("avg_max_pool", "adaptive_avgmax"))
class AvgMaxPoolBlock(Block):
    """Global ``0.5 * (mean_hw(x) + max_hw(x))`` pooling to (N, C, 1, 1).

    Args:
        in_channels: channels (unchanged; also accepted as ``channels=``).

    Example:
        >>> AvgMaxPoolBlock(16)(torch.randn(2, 16, 8, 8)).shape
        torch.Size([2, 16, 1, 1])
    """

    OUTPUT_RULE = "same channels; spatial 1x1"

    def __init__(self, in_channels: int, device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        check_channels("in_channels", in_channels, "avgmax_pool")
        self.in_channels = self.out_channels = in_channels
        self.output_size = 1
        self.pool = GlobalAvgMaxPool(flatten=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)
