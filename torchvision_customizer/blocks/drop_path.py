"""``drop_path``: stochastic depth per sample.

Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016 (arXiv:1603.09382), applied per
sample on a residual branch as in Larsson et al., FractalNet (arXiv:1605.07648). Identity in eval
mode and at ``drop_prob=0``; surviving samples are scaled by ``1 / keep_prob`` when
``scale_by_keep``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..layers import check_channels, check_float
from ._base import Block, register_block

__all__ = ["DropPath", "drop_path"]


def drop_path(x: torch.Tensor, drop_prob: float = 0.0, training: bool = False,
              scale_by_keep: bool = True) -> torch.Tensor:
    """Zero whole samples of ``x`` with probability ``drop_prob`` (training only)."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    mask = x.new_empty(shape).bernoulli_(keep)
    if scale_by_keep:
        mask = mask / keep
    return x * mask


@register_block("drop_path", category="regularization", aliases=("stochastic_depth", "droppath"))
class DropPath(Block):
    """Stochastic depth on a residual branch.

    Args:
        drop_prob: probability of dropping a sample's branch, in [0, 1).
        scale_by_keep: rescale kept samples by ``1 / (1 - drop_prob)``.
        in_channels: optional, only to declare ``out_channels`` (same shape).

    Example:
        >>> DropPath(0.1).eval()(torch.ones(2, 4)).sum().item()
        8.0
    """

    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True, in_channels: int | None = None,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        check_float("drop_prob", drop_prob, lo=0.0, hi=1.0, hi_open=True, owner="drop_path")
        if in_channels is not None:
            check_channels("in_channels", in_channels, "drop_path")
        self.drop_prob = float(drop_prob)
        self.scale_by_keep = scale_by_keep
        self.in_channels = self.out_channels = in_channels  # type: ignore[assignment]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.drop_prob, self.training, self.scale_by_keep)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"
