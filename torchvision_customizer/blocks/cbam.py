"""``cbam_block``: Convolutional Block Attention Module.

Woo et al., "CBAM: Convolutional Block Attention Module", ECCV 2018 (arXiv:1807.06521): channel
attention (:class:`~.channel_attention.ChannelAttention`, a shared MLP over the average- and
max-pooled vectors) followed by spatial attention (:class:`~.spatial_attention.SpatialAttention`,
a ``7 x 7`` convolution over the channel-wise average and max maps), applied sequentially in that
order as the paper recommends. Departures are those of the two halves: hidden width rounded to
``rd_divisor`` (1 by default, as timm's ``CbamModule``, whose parameter count this matches), no MLP
bias by default, and a BatchNorm after the spatial convolution as in the authors' code.
"""

from __future__ import annotations

from typing import Any

import torch

from ..layers import LayerType, check_channels, check_kernel
from ._base import Block, register_block
from .channel_attention import ChannelAttention
from .se import reduced_channels
from .spatial_attention import SpatialAttention

__all__ = ["CBAMBlock"]


@register_block("cbam_block", category="attention",
                aliases=("cbam", "cbamblock", "cbam_attention", "channel_spatial"))
class CBAMBlock(Block):
    """CBAM: ``spatial(channel(x))``, children ``channel`` and ``spatial``.

    Args:
        in_channels: channels (also accepted as ``channels=``).
        rd_ratio: squeeze ratio of the channel MLP (1/16 in the paper; legacy ``reduction=16``).
        rd_channels: explicit hidden width of the channel MLP, overrides ``rd_ratio``.
        rd_divisor: round the hidden width to a multiple of this.
        spatial_kernel_size: odd kernel of the spatial convolution (7; legacy ``spatial_kernel``).
        act_layer: activation inside the channel MLP.
        gate_layer: gating function of both halves.
        norm_layer: norm after the spatial convolution, or ``None``.
        mlp_bias: give the channel MLP biases.

    Example:
        >>> CBAMBlock(channels=64)(torch.randn(2, 64, 8, 8)).shape
        torch.Size([2, 64, 8, 8])
    """

    def __init__(self, in_channels: int, rd_ratio: float = 1 / 16, rd_channels: int | None = None,
                 rd_divisor: int = 1, spatial_kernel_size: int = 7, act_layer: LayerType = "relu",
                 gate_layer: LayerType = "sigmoid", norm_layer: LayerType = "batch", mlp_bias: bool = False,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        name = self.block_name or "cbam_block"
        check_channels("in_channels", in_channels, name)
        # validated here too so that errors name this block's own arguments
        reduced_channels(in_channels, rd_ratio, rd_channels, rd_divisor, name)
        check_kernel("spatial_kernel_size", spatial_kernel_size, odd=True, owner=name)
        self.in_channels = self.out_channels = in_channels
        self.channel = ChannelAttention(in_channels, rd_ratio=rd_ratio, rd_channels=rd_channels,
                                        rd_divisor=rd_divisor, act_layer=act_layer, gate_layer=gate_layer,
                                        mlp_bias=mlp_bias, device=device, dtype=dtype)
        self.spatial = SpatialAttention(in_channels, kernel_size=spatial_kernel_size, norm_layer=norm_layer,
                                        gate_layer=gate_layer, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
