"""``coord_attention``: Coordinate Attention.

Hou et al., "Coordinate Attention for Efficient Mobile Network Design", CVPR 2021
(arXiv:2103.02907). The input is average-pooled along the width (one descriptor per row) and along
the height (one per column); both strips are concatenated, go through a shared 1x1 convolution,
BatchNorm and h-swish, are split back, and two 1x1 convolutions with sigmoid gates give a row gate
and a column gate that both rescale the input. The hidden width is ``max(8, C // 32)``, the rule of
the authors' code (``rd_ratio=1/32``, ``min_rd_channels=8``; truncation, not rounding). Departures:
activation, norm and gate are configurable.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import LayerType, check_channels, check_float, check_int, create_act, create_norm
from ._base import Block, register_block

__all__ = ["CoordAttention"]


@register_block("coord_attention", category="attention",
                aliases=("coordatt", "coordinate_attention", "ca_block"))
class CoordAttention(Block):
    """Coordinate attention: ``x * gate_h(conv_h(y_h)) * gate_w(conv_w(y_w))``.

    Args:
        in_channels: channels (also accepted as ``channels=``).
        rd_ratio: reduction ratio of the shared convolution (1/32 in the paper; legacy
            ``reduction=32``).
        rd_channels: explicit hidden width, overrides ``rd_ratio`` and ``min_rd_channels``.
        min_rd_channels: lower bound of the hidden width (8 in the paper).
        act_layer: activation after the shared convolution (h-swish in the paper).
        norm_layer: norm after the shared convolution, or ``None``.
        gate_layer: gating function of the two directions (sigmoid).

    Example:
        >>> CoordAttention(channels=64)(torch.randn(2, 64, 8, 6)).shape
        torch.Size([2, 64, 8, 6])
    """

    def __init__(self, in_channels: int, rd_ratio: float = 1 / 32, rd_channels: int | None = None,
                 min_rd_channels: int = 8, act_layer: LayerType = "hard_swish",
                 norm_layer: LayerType = "batch", gate_layer: LayerType = "sigmoid", device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = self.block_name or "coord_attention"
        check_channels("in_channels", in_channels, name)
        if rd_channels is None:
            check_float("rd_ratio", rd_ratio, lo=0.0, hi=1.0, lo_open=True, owner=name)
            check_int("min_rd_channels", min_rd_channels, owner=name)
            rd = max(min_rd_channels, int(in_channels * rd_ratio + 1e-6))  # C // r, robust to 1/r rounding
        else:
            rd = check_int("rd_channels", rd_channels, owner=name)
        self.in_channels = self.out_channels = in_channels
        self.conv1 = nn.Conv2d(in_channels, rd, 1, bias=True, **dd)
        self.bn1 = create_norm(norm_layer, rd, **dd)
        self.act = create_act(act_layer, inplace=True)
        self.conv_h = nn.Conv2d(rd, in_channels, 1, bias=True, **dd)
        self.conv_w = nn.Conv2d(rd, in_channels, 1, bias=True, **dd)
        self.gate = create_act(gate_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[2]
        x_h = x.mean(3, keepdim=True)  # (N, C, H, 1)
        x_w = x.mean(2, keepdim=True).transpose(2, 3)  # (N, C, W, 1)
        y = self.act(self.bn1(self.conv1(torch.cat([x_h, x_w], dim=2))))  # (N, rd, H + W, 1)
        a_h = self.gate(self.conv_h(y[:, :, :h]))  # (N, C, H, 1)
        a_w = self.gate(self.conv_w(y[:, :, h:].transpose(2, 3)))  # (N, C, 1, W)
        return x * a_h * a_w
