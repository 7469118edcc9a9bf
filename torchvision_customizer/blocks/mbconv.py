"""``mbconv``: the inverted residual with linear bottleneck (MobileNetV2 / EfficientNet MBConv).

Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks" (arXiv:1801.04381) and
Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks"
(arXiv:1905.11946): ``1x1`` expansion -> depthwise ``k x k`` (strided) -> Squeeze-and-Excitation
-> linear ``1x1`` projection, with an identity shortcut and stochastic depth when the shape is
kept. Widths follow torchvision's EfficientNet exactly: the hidden width is ``in * expand_ratio``
rounded to a multiple of 8 (no expansion convolution when it equals ``in``, and always none at
``expand_ratio == 1``), and the SE squeeze width is taken from the *block input*,
``max(1, int(in_channels * se_ratio))``, applied on the hidden width. Departures: the SE activation
is the block's ``act_layer`` (SiLU by default, as in EfficientNet), and any registered attention
block can replace SE (``attn_layer="eca"``, ``"cbam"``, ...).
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
from ..registry import BLOCKS
from ._attn import create_attn
from ._base import Block, register_block
from .drop_path import DropPath
from .se import SEBlock

__all__ = ["MBConv", "make_block_attn"]


def _is_se(attn_layer: Any) -> bool:
    if isinstance(attn_layer, str):
        if attn_layer.strip().lower() in ("none", ""):
            return False
        return BLOCKS.get(attn_layer) is SEBlock
    return attn_layer is SEBlock


def make_block_attn(attn_layer: Any, channels: int, se_ratio: float, rd_channels: int, *,
                    act_layer: LayerType, gate_layer: LayerType, owner: str, dd: dict[str, Any]) -> nn.Module:
    """The attention slot of a mobile block, on ``channels`` (the hidden width).

    SE (``attn_layer="se"`` or :class:`SEBlock`) is built with the squeeze width ``rd_channels``
    (computed by the block from its own rule) and is off when ``se_ratio == 0``; any other
    attention block goes through :func:`create_attn` (``se_ratio`` given as ``rd_ratio`` when > 0);
    ``None`` gives ``nn.Identity``.
    """
    if attn_layer is None or attn_layer is False:
        return nn.Identity()
    if _is_se(attn_layer):
        if se_ratio <= 0:
            return nn.Identity()
        return SEBlock(channels, rd_channels=rd_channels, act_layer=act_layer, gate_layer=gate_layer, **dd)
    return create_attn(attn_layer, channels, se_ratio=se_ratio if se_ratio > 0 else None, owner=owner, **dd)


@register_block("mbconv", category="mobile", aliases=("inverted_residual", "mbconv_block"))
class MBConv(Block):
    """Inverted residual: expand 1x1 -> depthwise kxk -> SE -> project 1x1 (+ shortcut).

    Args:
        in_channels: input channels.
        out_channels: output channels (default: ``in_channels``).
        stride: stride of the depthwise convolution.
        expand_ratio: hidden width / input width (legacy ``expansion``); 1 means no expansion conv.
        kernel_size: odd kernel of the depthwise convolution.
        se_ratio: SE squeeze width as a fraction of ``in_channels`` (legacy ``se_reduction=4``);
            0 disables SE.
        attn_layer: ``"se"`` (default), another registered attention block, or ``None``
            (legacy ``use_se=False``).
        act_layer: activation after the expansion and depthwise convs and inside SE.
        norm_layer: norm after each convolution.
        gate_layer: SE gate (sigmoid).
        drop_path: stochastic-depth rate on the residual branch.

    Example:
        >>> MBConv(16, 24, stride=2, expand_ratio=6)(torch.randn(1, 16, 32, 32)).shape
        torch.Size([1, 24, 16, 16])
    """

    OUTPUT_RULE = "out_channels; spatial / stride"

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 1,
                 expand_ratio: float = 4.0, kernel_size: int = 3, se_ratio: float = 0.25, attn_layer: Any = "se",
                 act_layer: LayerType = "silu", norm_layer: LayerType = "batch", gate_layer: LayerType = "sigmoid",
                 drop_path: float = 0.0, device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = "mbconv"
        out_channels = in_channels if out_channels is None else out_channels
        check_channels("in_channels", in_channels, name)
        check_channels("out_channels", out_channels, name)
        check_int("stride", stride, owner=name)
        check_float("expand_ratio", expand_ratio, lo=0.0, lo_open=True, owner=name)
        check_kernel("kernel_size", kernel_size, owner=name)
        check_float("se_ratio", se_ratio, lo=0.0, hi=1.0, owner=name)
        check_float("drop_path", drop_path, lo=0.0, hi=1.0, hi_open=True, owner=name)
        hidden = in_channels if expand_ratio == 1 else make_divisible(in_channels * expand_ratio, 8)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.hidden_channels = hidden
        self.has_skip = stride == 1 and in_channels == out_channels
        self.conv_pw = (ConvNormAct(in_channels, hidden, 1, norm_layer=norm_layer, act_layer=act_layer, **dd)
                        if hidden != in_channels else nn.Identity())
        self.conv_dw = ConvNormAct(hidden, hidden, kernel_size, stride, groups=hidden, norm_layer=norm_layer,
                                   act_layer=act_layer, **dd)
        self.se = make_block_attn(attn_layer, hidden, se_ratio, max(1, int(in_channels * se_ratio)),
                                  act_layer=act_layer, gate_layer=gate_layer, owner=name, dd=dd)
        self.conv_pwl = ConvNormAct(hidden, out_channels, 1, norm_layer=norm_layer, act_layer=None, **dd)
        self.drop_path = DropPath(drop_path) if drop_path > 0 and self.has_skip else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_pw(x)  # (N, hidden, H, W)
        out = self.conv_dw(out)  # (N, hidden, H / s, W / s)
        out = self.se(out)
        out = self.conv_pwl(out)  # (N, out, H / s, W / s)
        if self.has_skip:
            out = self.drop_path(out)
            out += x  # in place: one less feature-map allocation
        return out
