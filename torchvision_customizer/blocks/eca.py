"""``eca``: Efficient Channel Attention.

Wang et al., "ECA-Net: Efficient Channel Attention for Deep Convolutional Neural Networks",
CVPR 2020 (arXiv:1910.03151). Global average pooling, then a 1-D convolution *across channels*
(local cross-channel interaction, no dimensionality reduction) and a sigmoid gate. The kernel size
is adaptive, ``k = |log2(C) / gamma + beta / gamma|`` rounded to odd (truncated, then +1 when even,
as in the authors' code), with ``gamma=2, beta=1``; an explicit odd ``kernel_size`` overrides it.
Departures: none in the computation. timm's ``EcaModule`` additionally clamps ``k`` to at least 3,
which differs from this rule only for ``C < 8``; parameter counts agree for every ``C >= 8``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..layers import LayerType, check_channels, check_float, check_kernel, create_act
from ._base import Block, register_block

__all__ = ["ECABlock", "eca_kernel_size"]


def eca_kernel_size(channels: int, gamma: float = 2, beta: float = 1) -> int:
    """The adaptive ECA kernel size: ``|log2(C) / gamma + beta / gamma|`` rounded up to odd."""
    t = int(abs(math.log2(channels) / gamma + beta / gamma))
    return t if t % 2 else t + 1


@register_block("eca", category="attention", aliases=("eca_block", "ecablock", "efficient_channel"))
class ECABlock(Block):
    """ECA: ``x * gate(conv1d_k(mean_hw(x)))``, the 1-D convolution running over channels.

    Args:
        in_channels: channels (also accepted as ``channels=``).
        kernel_size: odd 1-D kernel size; ``None`` (default) derives it from the channels.
        gamma: slope of the adaptive kernel rule (2 in the paper).
        beta: offset of the adaptive kernel rule (1 in the paper).
        gate_layer: gating function (sigmoid in the paper).

    Example:
        >>> ECABlock(channels=256).conv.kernel_size
        (5,)
    """

    def __init__(self, in_channels: int, kernel_size: int | None = None, gamma: float = 2, beta: float = 1,
                 gate_layer: LayerType = "sigmoid", device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        name = self.block_name or "eca"
        check_channels("in_channels", in_channels, name)
        check_float("gamma", gamma, lo=0.0, lo_open=True, owner=name)
        check_float("beta", beta, lo=-math.inf, owner=name)
        if kernel_size is None:
            kernel_size = eca_kernel_size(in_channels, gamma, beta)
        check_kernel("kernel_size", kernel_size, odd=True, owner=name)
        self.in_channels = self.out_channels = in_channels
        self.conv = nn.Conv1d(1, 1, kernel_size, padding=kernel_size // 2, bias=False, device=device,
                              dtype=dtype)
        self.gate = create_act(gate_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.conv(x.mean((2, 3)).unsqueeze(1))  # (N, 1, C): channels as the 1-D sequence
        return x * self.gate(s).transpose(1, 2).unsqueeze(-1)  # (N, C, 1, 1)
