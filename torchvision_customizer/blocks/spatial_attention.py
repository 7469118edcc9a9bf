"""``spatial_attention``: the spatial half of CBAM.

Woo et al., "CBAM: Convolutional Block Attention Module", ECCV 2018 (arXiv:1807.06521), Sec. 3,
"Spatial attention module": the channel-wise average and max maps are concatenated (in that
order), convolved by one ``k x k`` convolution to a single map and gated by a sigmoid that rescales
every position. As in the authors' code (and timm's ``SpatialAttn``) the convolution is followed by
a BatchNorm and has no bias; ``norm_layer=None`` gives the bare convolution of the paper's equation
(then with a bias). The kernel must be odd so that the map keeps its size.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import LayerType, check_channels, check_kernel, create_act, create_norm
from ._base import Block, register_block

__all__ = ["SpatialAttention"]


@register_block("spatial_attention", category="attention", aliases=("sa", "spatial_gate"))
class SpatialAttention(Block):
    """CBAM spatial attention: ``x * gate(norm(conv([mean_c(x), max_c(x)])))``.

    Args:
        in_channels: channels of the input (the block has no per-channel parameters; also
            accepted as ``channels=``).
        kernel_size: odd size of the convolution over the two pooled maps (7 in the paper).
        norm_layer: norm after the convolution (BatchNorm, as the authors' code), or ``None``.
        gate_layer: gating function (sigmoid in the paper).

    Example:
        >>> SpatialAttention(channels=64)(torch.randn(2, 64, 8, 8)).shape
        torch.Size([2, 64, 8, 8])
    """

    def __init__(self, in_channels: int, kernel_size: int = 7, norm_layer: LayerType = "batch",
                 gate_layer: LayerType = "sigmoid", device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = self.block_name or "spatial_attention"
        check_channels("in_channels", in_channels, name)
        check_kernel("kernel_size", kernel_size, odd=True, owner=name)
        self.in_channels = self.out_channels = in_channels
        self.kernel_size = kernel_size
        self.bn = create_norm(norm_layer, 1, **dd)
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2,
                              bias=isinstance(self.bn, nn.Identity), **dd)
        self.gate = create_act(gate_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], dim=1)  # (N, 2, H, W)
        return x * self.gate(self.bn(self.conv(s)))
