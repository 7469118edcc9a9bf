"""``triplet_attention``: Triplet Attention.

Misra et al., "Rotate to Attend: Convolutional Triplet Attention Module", WACV 2021
(arXiv:2010.03045). Three branches capture the (C, W), (C, H) and (H, W) interactions: each
rotates the tensor so that one of H, W, C is the "channel" axis, reduces it by Z-pool
(max and mean concatenated, in that order), applies a 7x7 convolution + BatchNorm + sigmoid and
rescales the rotated input; the three results are rotated back and averaged. Implementation: the
rotations are applied to the small pooled maps and gates only (the gates are mathematically the
paper's), and the three gates are averaged before one multiplication with the input,
``x * (g_cw + g_hc + g_hw) / 3``, which equals the paper's average of three rescaled copies
without materializing them. Departures: BatchNorm uses PyTorch's default momentum (the authors'
code uses 0.01); ``spatial=False`` drops the (H, W) branch (the paper's "no_spatial" variant,
average over two).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import LayerType, check_channels, check_kernel, create_act, create_norm
from ._base import Block, register_block

__all__ = ["TripletAttention"]


class _ZPoolGate(nn.Module):
    """7x7 conv (no bias) + norm + gate over a 2-channel Z-pooled map."""

    def __init__(self, kernel_size: int, norm_layer: LayerType, gate_layer: LayerType,
                 dd: dict[str, Any]) -> None:
        super().__init__()
        self.bn = create_norm(norm_layer, 1, **dd)
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2,
                              bias=isinstance(self.bn, nn.Identity), **dd)
        self.gate = create_act(gate_layer)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.gate(self.bn(self.conv(z)))


@register_block("triplet_attention", category="attention", aliases=("triplet",))
class TripletAttention(Block):
    """Triplet attention: three Z-pool + 7x7 conv gates over rotated views, averaged.

    Args:
        in_channels: channels (only recorded, no per-channel parameters; also ``channels=``).
        kernel_size: odd kernel of the three gate convolutions (7 in the paper).
        norm_layer: norm after each gate convolution (BatchNorm), or ``None``.
        gate_layer: gating function (sigmoid).
        spatial: keep the plain (H, W) spatial branch (``False``: the paper's two-branch variant).

    Example:
        >>> TripletAttention(channels=64)(torch.randn(2, 64, 8, 8)).shape
        torch.Size([2, 64, 8, 8])
    """

    def __init__(self, in_channels: int, kernel_size: int = 7, norm_layer: LayerType = "batch",
                 gate_layer: LayerType = "sigmoid", spatial: bool = True, device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = self.block_name or "triplet_attention"
        check_channels("in_channels", in_channels, name)
        check_kernel("kernel_size", kernel_size, odd=True, owner=name)
        self.in_channels = self.out_channels = in_channels
        self.cw = _ZPoolGate(kernel_size, norm_layer, gate_layer, dd)  # H pooled: the (C, W) plane
        self.hc = _ZPoolGate(kernel_size, norm_layer, gate_layer, dd)  # W pooled: the (H, C) plane
        self.hw = _ZPoolGate(kernel_size, norm_layer, gate_layer, dd) if spatial else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # branch 1: rotate to (N, H, C, W); Z-pool over H -> (N, 2, C, W); gate back to (N, C, 1, W)
        z = torch.cat([x.amax(2, keepdim=True), x.mean(2, keepdim=True)], dim=2).transpose(1, 2)
        g = self.cw(z).transpose(1, 2)
        # branch 2: rotate to (N, W, H, C); Z-pool over W -> (N, 2, H, C); gate back to (N, C, H, 1)
        z = torch.cat([x.amax(3, keepdim=True), x.mean(3, keepdim=True)], dim=3).permute(0, 3, 2, 1)
        g = g + self.hc(z).permute(0, 3, 2, 1)
        if self.hw is None:
            return x * (g * 0.5)
        # branch 3: plain spatial, Z-pool over C -> (N, 2, H, W)
        z = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], dim=1)
        return x * ((g + self.hw(z)) * (1.0 / 3.0))
