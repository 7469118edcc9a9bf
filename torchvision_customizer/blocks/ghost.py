"""``ghost_bottleneck``: the GhostNet bottleneck built from Ghost modules.

Han et al., "GhostNet: More Features from Cheap Operations", CVPR 2020 (arXiv:1911.11907). A
Ghost module makes half of its output with a primary ``1x1`` conv-norm-act
(``ceil(out / 2)`` channels) and the other half with a cheap depthwise ``3x3`` conv-norm-act on
those, concatenated and cut to ``out``. The bottleneck is: Ghost module expand (with activation)
-> depthwise ``k x k`` conv-norm at the stride (only when ``stride > 1``) -> optional SE -> Ghost
module project (no activation), plus a shortcut: identity when the shape is kept, else depthwise
``k x k`` (strided) + norm + ``1x1`` conv + norm. Widths and the SE rule follow the reference
(SE squeeze ``make_divisible(hidden * se_ratio, 4)``, hard-sigmoid gate); parameter counts match
timm's ``GhostBottleneck``. Departures: the hidden width is ``round(in * expand_ratio)`` instead
of a per-stage table, and optional stochastic depth.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..errors import BlockValueError
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

__all__ = ["GhostBottleneck", "GhostModule"]


class GhostModule(nn.Module):
    """Primary ``1x1`` conv to ``ceil(out / 2)`` channels + cheap depthwise conv on them, concat, cut.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        dw_size: kernel of the cheap depthwise convolution (3).
        norm_layer, act_layer: norm and activation of both convolutions (``act_layer=None`` for
            the projecting module).
    """

    def __init__(self, in_channels: int, out_channels: int, dw_size: int = 3, norm_layer: LayerType = "batch",
                 act_layer: LayerType = "relu", device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        init = math.ceil(out_channels / 2)
        self.out_channels = out_channels
        self.primary_conv = ConvNormAct(in_channels, init, 1, norm_layer=norm_layer, act_layer=act_layer, **dd)
        self.cheap_operation = ConvNormAct(init, init, dw_size, groups=init, norm_layer=norm_layer,
                                           act_layer=act_layer, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.primary_conv(x)
        out = torch.cat([x1, self.cheap_operation(x1)], dim=1)  # (N, 2 * ceil(out / 2), H, W)
        return out[:, : self.out_channels]


@register_block("ghost_bottleneck", category="mobile", aliases=("ghost", "ghostnet_block", "ghostbottleneck"))
class GhostBottleneck(Block):
    """Ghost expand -> [depthwise strided conv] -> [SE] -> Ghost project, plus a shortcut.

    Args:
        in_channels: input channels.
        out_channels: output channels (default: ``in_channels``).
        stride: stride of the depthwise convolution (and of the shortcut).
        expand_ratio: hidden width / input width (legacy ``expansion``).
        kernel_size: odd kernel of the strided depthwise convolution and of the shortcut.
        se_ratio: SE squeeze ratio on the hidden width (0.25, GhostNet's), used when ``attn_layer`` is set.
        hidden_channels: explicit hidden width, overrides ``expand_ratio``.
        attn_layer: ``None`` (default: no attention), ``"se"`` (legacy ``use_se=True``) or another
            registered attention block.
        act_layer: activation of the expanding Ghost module (and inside SE).
        norm_layer: norm after every convolution.
        gate_layer: SE gate (hard sigmoid, as GhostNet).
        drop_path: stochastic-depth rate on the residual branch.

    Example:
        >>> GhostBottleneck(16, 24, stride=2, attn_layer="se")(torch.randn(1, 16, 32, 32)).shape
        torch.Size([1, 24, 16, 16])
    """

    OUTPUT_RULE = "out_channels; spatial / stride"

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 1,
                 expand_ratio: float = 3.0, kernel_size: int = 3, se_ratio: float = 0.25,
                 hidden_channels: int | None = None, attn_layer: Any = None, act_layer: LayerType = "relu",
                 norm_layer: LayerType = "batch", gate_layer: LayerType = "hard_sigmoid", drop_path: float = 0.0,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = "ghost_bottleneck"
        out_channels = in_channels if out_channels is None else out_channels
        check_channels("in_channels", in_channels, name)
        check_channels("out_channels", out_channels, name)
        check_int("stride", stride, owner=name)
        check_kernel("kernel_size", kernel_size, owner=name)
        check_float("se_ratio", se_ratio, lo=0.0, hi=1.0, owner=name)
        check_float("drop_path", drop_path, lo=0.0, hi=1.0, hi_open=True, owner=name)
        if hidden_channels is None:
            check_float("expand_ratio", expand_ratio, lo=0.0, lo_open=True, owner=name)
            hidden = round(in_channels * expand_ratio)
            if hidden < 1:
                raise BlockValueError("the hidden width is below 1 channel", where=f"{name}.expand_ratio",
                                      expected=f"expand_ratio >= {0.5 / in_channels:.4g}", got=expand_ratio)
        else:
            hidden = check_channels("hidden_channels", hidden_channels, name)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.hidden_channels = hidden
        self.ghost1 = GhostModule(in_channels, hidden, norm_layer=norm_layer, act_layer=act_layer, **dd)
        self.conv_dw: nn.Module = (
            ConvNormAct(hidden, hidden, kernel_size, stride, groups=hidden, norm_layer=norm_layer, act_layer=None,
                        **dd) if stride > 1 else nn.Identity())
        self.se = make_block_attn(attn_layer, hidden, se_ratio, make_divisible(hidden * se_ratio, 4),
                                  act_layer=act_layer, gate_layer=gate_layer, owner=name, dd=dd)
        self.ghost2 = GhostModule(hidden, out_channels, norm_layer=norm_layer, act_layer=None, **dd)
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                ConvNormAct(in_channels, in_channels, kernel_size, stride, groups=in_channels, norm_layer=norm_layer,
                            act_layer=None, **dd),
                ConvNormAct(in_channels, out_channels, 1, norm_layer=norm_layer, act_layer=None, **dd),
            )
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ghost1(x)  # (N, hidden, H, W)
        out = self.conv_dw(out)  # (N, hidden, H / s, W / s)
        out = self.se(out)
        out = self.ghost2(out)  # (N, out, H / s, W / s)
        return self.drop_path(out) + self.shortcut(x)
