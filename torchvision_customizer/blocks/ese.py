"""``ese``: effective Squeeze-and-Excitation.

Lee & Park, "CenterMask: Real-Time Anchor-Free Instance Segmentation", CVPR 2020
(arXiv:1911.06667), Sec. 3.3 (VoVNetV2): SE with a single fully-connected layer of ``C`` channels
instead of the reducing bottleneck, so no channel information is lost by the squeeze; the gate is a
hard sigmoid. Global average pooling, one 1x1 convolution with bias, gate, rescale. Departures:
the gate is configurable (``gate_layer``). Same parameters as timm's ``EffectiveSEModule``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import LayerType, check_channels, create_act
from ._base import Block, register_block

__all__ = ["EffectiveSEBlock"]


@register_block("ese", category="attention", aliases=("effective_se", "ese_block"))
class EffectiveSEBlock(Block):
    """Effective SE: ``x * hard_sigmoid(fc(mean_hw(x)))`` with a ``C -> C`` 1x1 convolution.

    Args:
        in_channels: channels (also accepted as ``channels=``).
        gate_layer: gating function (hard sigmoid in the paper).

    Example:
        >>> EffectiveSEBlock(channels=64)(torch.randn(2, 64, 8, 8)).shape
        torch.Size([2, 64, 8, 8])
    """

    def __init__(self, in_channels: int, gate_layer: LayerType = "hard_sigmoid", device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        check_channels("in_channels", in_channels, self.block_name or "ese")
        self.in_channels = self.out_channels = in_channels
        self.fc = nn.Conv2d(in_channels, in_channels, 1, bias=True, device=device, dtype=dtype)
        self.gate = create_act(gate_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc(x.mean((2, 3), keepdim=True)))
