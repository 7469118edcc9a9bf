"""``dropblock``: DropBlock, structured dropout of contiguous square regions.

Ghiasi et al., "DropBlock: A regularization method for convolutional networks", NeurIPS 2018
(arXiv:1810.12890). In training, block centres are sampled as Bernoulli(``gamma``) seeds per sample
and channel, each seed is grown to a ``block_size x block_size`` square (a stride-1 max pool with
padding ``block_size // 2``), the squares are zeroed and the kept activations are rescaled by
``count / count_kept``. Identity in eval mode and at ``drop_prob=0``.

Departures: seeds are sampled at *every* position (not only where a whole block fits), so the
same code runs at any feature size with no data-dependent branch; squares near the border are
clipped. Accordingly ``gamma = drop_prob / block_size**2`` without the paper's valid-region factor
``feat_size**2 / (feat_size - block_size + 1)**2``: the dropped fraction is about ``drop_prob``
away from the borders and lower on maps not much larger than a block (the paper clips
``block_size`` instead). ``block_size`` must be odd so the grown mask keeps the input size. No
linear schedule of ``drop_prob`` is built in: set ``block.drop_prob`` from the training loop.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..layers import check_channels, check_float, check_kernel
from ._base import Block, register_block

__all__ = ["DropBlock", "drop_block"]


def drop_block(x: torch.Tensor, drop_prob: float, block_size: int, scale_by_keep: bool = True) -> torch.Tensor:
    """Zero random ``block_size`` squares of an (N, C, H, W) tensor (always applies: no mode check)."""
    gamma = drop_prob / (block_size * block_size)
    seeds = torch.empty_like(x).bernoulli_(gamma)
    keep = 1.0 - F.max_pool2d(seeds, block_size, stride=1, padding=block_size // 2)
    if scale_by_keep:
        keep = keep * (1.0 / keep.mean().clamp_min(1e-7))  # count / count_kept, computed without a sync
    return x * keep


@register_block("dropblock", category="regularization", aliases=("DropBlock", "drop_block"))
class DropBlock(Block):
    """DropBlock: drop ``block_size x block_size`` regions per channel during training.

    Args:
        in_channels: optional, only to declare ``out_channels`` (same shape).
        drop_prob: fraction of activations to drop, in [0, 1) (0.1 in the paper's ResNet-50 runs).
        block_size: odd side of the dropped squares (7 in the paper).
        scale_by_keep: rescale kept activations by ``count / count_kept``.

    Example:
        >>> DropBlock(drop_prob=0.1, block_size=3).eval()(torch.ones(1, 4, 8, 8)).sum().item()
        256.0
    """

    def __init__(self, in_channels: int | None = None, drop_prob: float = 0.1, block_size: int = 7,
                 scale_by_keep: bool = True, device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        name = "dropblock"
        if in_channels is not None:
            check_channels("in_channels", in_channels, name)
        check_float("drop_prob", drop_prob, lo=0.0, hi=1.0, hi_open=True, owner=name)
        check_kernel("block_size", block_size, owner=name)
        self.in_channels = self.out_channels = in_channels  # type: ignore[assignment]
        self.drop_prob = float(drop_prob)
        self.block_size = block_size
        self.scale_by_keep = scale_by_keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.drop_prob == 0.0:
            return x
        return drop_block(x, self.drop_prob, self.block_size, self.scale_by_keep)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}, block_size={self.block_size}"
