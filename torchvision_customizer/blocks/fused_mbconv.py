"""``fused_mbconv``: the fused inverted residual of EfficientNetV2.

Tan & Le, "EfficientNetV2: Smaller Models and Faster Training" (arXiv:2104.00298): the ``1x1``
expansion and the depthwise ``k x k`` of MBConv are fused into one regular ``k x k`` convolution
(strided) -> norm -> act, followed by a linear ``1x1`` projection; identity shortcut and
stochastic depth when the shape is kept. As in torchvision's ``FusedMBConv``, the hidden width is
``in * expand_ratio`` rounded to a multiple of 8, and when there is no expansion (``expand_ratio
== 1``) the block is a single ``k x k`` conv-norm-act. Departures: optional attention on the hidden
width (off by default, as in EfficientNetV2; ``attn_layer="se"`` turns SE on, its squeeze width
``in_channels * se_ratio`` taken from the block input like MBConv), configurable activation and norm.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import (
    ConvNormAct,
    LayerType,
    check_channels,
    check_float,
    check_int,
    check_kernel,
    make_divisible,
)
from ._base import Block, register_block
from .drop_path import DropPath
from .mbconv import make_block_attn

__all__ = ["FusedMBConv"]


@register_block("fused_mbconv", category="mobile", aliases=("fusedmbconv", "fused_inverted_residual"))
class FusedMBConv(Block):
    """Fused inverted residual: kxk expand (strided) -> [attention] -> project 1x1 (+ shortcut).

    Args:
        in_channels: input channels.
        out_channels: output channels (default: ``in_channels``).
        stride: stride of the ``k x k`` convolution.
        expand_ratio: hidden width / input width (legacy ``expansion``); at 1 the block is a single
            ``k x k`` conv-norm-act to ``out_channels``.
        kernel_size: odd kernel of the fused convolution.
        se_ratio: SE squeeze width as a fraction of ``in_channels`` (0.25), used when ``attn_layer`` is set.
        attn_layer: ``None`` (default: no attention, as EfficientNetV2), ``"se"`` (legacy
            ``use_se=True``) or another registered attention block.
        act_layer: activation after the fused convolution and inside SE.
        norm_layer: norm after each convolution.
        gate_layer: SE gate (sigmoid).
        drop_path: stochastic-depth rate on the residual branch.

    Example:
        >>> FusedMBConv(24, 48, stride=2)(torch.randn(1, 24, 32, 32)).shape
        torch.Size([1, 48, 16, 16])
    """

    OUTPUT_RULE = "out_channels; spatial / stride"

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 1,
                 expand_ratio: float = 4.0, kernel_size: int = 3, se_ratio: float = 0.25, attn_layer: Any = None,
                 act_layer: LayerType = "silu", norm_layer: LayerType = "batch", gate_layer: LayerType = "sigmoid",
                 drop_path: float = 0.0, device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = "fused_mbconv"
        out_channels = in_channels if out_channels is None else out_channels
        check_channels("in_channels", in_channels, name)
        check_channels("out_channels", out_channels, name)
        check_int("stride", stride, owner=name)
        check_float("expand_ratio", expand_ratio, lo=0.0, lo_open=True, owner=name)
        check_kernel("kernel_size", kernel_size, owner=name)
        check_float("se_ratio", se_ratio, lo=0.0, hi=1.0, owner=name)
        check_float("drop_path", drop_path, lo=0.0, hi=1.0, hi_open=True, owner=name)
        hidden = in_channels if expand_ratio == 1 else make_divisible(in_channels * expand_ratio, 8)
        expand = hidden != in_channels
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.hidden_channels = hidden if expand else out_channels
        self.has_skip = stride == 1 and in_channels == out_channels
        self.conv_exp = ConvNormAct(in_channels, self.hidden_channels, kernel_size, stride, norm_layer=norm_layer,
                                    act_layer=act_layer, **dd)
        self.se = make_block_attn(attn_layer, self.hidden_channels, se_ratio, max(1, int(in_channels * se_ratio)),
                                  act_layer=act_layer, gate_layer=gate_layer, owner=name, dd=dd)
        self.conv_pwl = (ConvNormAct(hidden, out_channels, 1, norm_layer=norm_layer, act_layer=None, **dd)
                         if expand else nn.Identity())
        self.drop_path = DropPath(drop_path) if drop_path > 0 and self.has_skip else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_exp(x)  # (N, hidden, H / s, W / s)
        out = self.se(out)
        out = self.conv_pwl(out)  # (N, out, H / s, W / s)
        if self.has_skip:
            out = self.drop_path(out) + x
        return out
