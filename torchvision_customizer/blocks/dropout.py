"""``dropout``: element-wise or channel-wise (spatial) dropout as a block.

Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from Overfitting", JMLR 2014,
and its channel-wise form for convolutional maps, Tompson et al., "Efficient Object Localization
Using Convolutional Networks", CVPR 2015 (arXiv:1411.4280), which zeroes whole feature maps
because neighbouring activations are strongly correlated. ``channelwise=True`` (the default) is
``nn.Dropout2d``, ``False`` is ``nn.Dropout``; kept activations are scaled by ``1 / (1 - p)``.
Identity in eval mode. No departure beyond the block wrapper.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import check_channels, check_float
from ._base import Block, register_block

__all__ = ["Dropout"]


@register_block("dropout", category="regularization", aliases=("dropout2d", "channel_dropout"))
class Dropout(Block):
    """Dropout block: whole channels (``nn.Dropout2d``) or single activations (``nn.Dropout``).

    Args:
        in_channels: optional, only to declare ``out_channels`` (same shape).
        p: drop probability, in [0, 1].
        channelwise: drop whole channels (``True``) or independent activations (``False``).

    Example:
        >>> Dropout(16, p=0.5).eval()(torch.ones(1, 16, 4, 4)).sum().item()
        256.0
    """

    def __init__(self, in_channels: int | None = None, p: float = 0.5, channelwise: bool = True,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if in_channels is not None:
            check_channels("in_channels", in_channels, "dropout")
        check_float("p", p, lo=0.0, hi=1.0, owner="dropout")
        self.in_channels = self.out_channels = in_channels  # type: ignore[assignment]
        self.channelwise = channelwise
        self.drop = nn.Dropout2d(p) if channelwise else nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(x)
