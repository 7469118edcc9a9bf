"""``channel_attention``: the channel half of CBAM.

Woo et al., "CBAM: Convolutional Block Attention Module", ECCV 2018 (arXiv:1807.06521), Sec. 3,
"Channel attention module": the average- and max-pooled channel descriptors go through one shared
MLP (two 1x1 convolutions with a reduction in between), are summed and gated by a sigmoid that
rescales the channels. Departures: the reduced width is rounded to a multiple of ``rd_divisor``
(1 by default, which gives the paper's ``C / r`` rounded to the nearest integer, as timm's
``ChannelAttn``); the MLP has no biases by default (``mlp_bias=False``, as timm) and its activation
and gate are configurable.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import LayerType, check_channels, create_act
from ._base import Block, register_block
from .se import reduced_channels

__all__ = ["ChannelAttention"]


@register_block("channel_attention", category="attention", aliases=("ca", "channel_gate"))
class ChannelAttention(Block):
    """CBAM channel attention: ``x * gate(mlp(mean_hw(x)) + mlp(max_hw(x)))``.

    Args:
        in_channels: channels (also accepted as ``channels=``).
        rd_ratio: squeeze ratio of the shared MLP (1/16 in the paper; legacy ``reduction=16``).
        rd_channels: explicit hidden width, overrides ``rd_ratio``.
        rd_divisor: round the hidden width to a multiple of this.
        act_layer: activation inside the MLP (ReLU in the paper).
        gate_layer: gating function (sigmoid in the paper).
        mlp_bias: give the two 1x1 convolutions a bias.

    Example:
        >>> ChannelAttention(channels=64)(torch.randn(2, 64, 8, 8)).shape
        torch.Size([2, 64, 8, 8])
    """

    def __init__(self, in_channels: int, rd_ratio: float = 1 / 16, rd_channels: int | None = None,
                 rd_divisor: int = 1, act_layer: LayerType = "relu", gate_layer: LayerType = "sigmoid",
                 mlp_bias: bool = False, device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = self.block_name or "channel_attention"
        check_channels("in_channels", in_channels, name)
        rd = reduced_channels(in_channels, rd_ratio, rd_channels, rd_divisor, name)
        self.in_channels = self.out_channels = in_channels
        self.fc1 = nn.Conv2d(in_channels, rd, 1, bias=mlp_bias, **dd)
        self.act = create_act(act_layer, inplace=True)
        self.fc2 = nn.Conv2d(rd, in_channels, 1, bias=mlp_bias, **dd)
        self.gate = create_act(gate_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        mx = self.fc2(self.act(self.fc1(x.amax((2, 3), keepdim=True))))
        return x * self.gate(avg + mx)
