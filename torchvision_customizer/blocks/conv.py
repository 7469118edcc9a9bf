"""``conv``: convolution -> norm -> activation, with optional dropout and pooling.

The plain VGG-style unit (Simonyan & Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition", arXiv:1409.1556) with BatchNorm (Ioffe & Szegedy,
arXiv:1502.03167). Departs from the paper only by making norm, activation, dropout and a
trailing pool configurable.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import BlockValueError
from ..layers import LayerType, check_channels, check_float, check_int, check_kernel, create_act, create_norm
from ..layers.conv import same_padding
from ._base import Block, register_block

__all__ = ["ConvBlock"]


@register_block("conv", category="convolution",
                aliases=("conv2d", "convblock", "conv_bn_act", "convbnact", "conv_norm_act"))
class ConvBlock(Block):
    """Conv2d -> norm -> activation -> dropout -> pool.

    Args:
        in_channels: input channels.
        out_channels: output channels (default: ``in_channels``).
        kernel_size: odd square kernel.
        stride: convolution stride.
        padding: explicit padding; ``None`` keeps "same" padding.
        dilation: convolution dilation.
        groups: convolution groups.
        bias: conv bias; ``None`` = only without a norm.
        norm_layer: norm name/class or ``None``.
        act_layer: activation name/class or ``None``.
        dropout: channel dropout probability (``nn.Dropout2d``) after the activation.
        pool: ``None``, ``"max"`` or ``"avg"`` pooling after everything else.
        pool_kernel_size: pooling window.
        pool_stride: pooling stride (default: the window).

    Example:
        >>> ConvBlock(3, 16, stride=2)(torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 16, 16, 16])
    """

    OUTPUT_RULE = "out_channels; spatial / (stride * pool_stride)"

    def __init__(self, in_channels: int, out_channels: int | None = None, kernel_size: int = 3,
                 stride: int = 1, padding: int | None = None, dilation: int = 1, groups: int = 1,
                 bias: bool | None = None, norm_layer: LayerType = "batch", act_layer: LayerType = "relu",
                 dropout: float = 0.0, pool: str | None = None, pool_kernel_size: int = 2,
                 pool_stride: int | None = None, device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        out_channels = in_channels if out_channels is None else out_channels
        check_channels("in_channels", in_channels, "conv")
        check_channels("out_channels", out_channels, "conv")
        check_kernel("kernel_size", kernel_size, odd=padding is None, owner="conv")
        check_int("stride", stride, owner="conv")
        check_int("groups", groups, owner="conv")
        if in_channels % groups or out_channels % groups:
            raise BlockValueError("groups must divide in_channels and out_channels", where="conv.groups",
                                  expected=f"a common divisor of {in_channels} and {out_channels}", got=groups)
        check_float("dropout", dropout, lo=0.0, hi=1.0, hi_open=True, owner="conv")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.bn = create_norm(norm_layer, out_channels, **dd)
        if bias is None:
            bias = isinstance(self.bn, nn.Identity)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              same_padding(kernel_size, dilation) if padding is None else padding,
                              dilation=dilation, groups=groups, bias=bias, **dd)
        self.act = create_act(act_layer, inplace=True)
        self.drop = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        pool_stride = pool_kernel_size if pool_stride is None else pool_stride
        if pool is None or pool == "none":
            self.pool: nn.Module = nn.Identity()
            pool_stride = 1
        elif pool == "max":
            self.pool = nn.MaxPool2d(pool_kernel_size, pool_stride)
        elif pool == "avg":
            self.pool = nn.AvgPool2d(pool_kernel_size, pool_stride)
        else:
            raise BlockValueError("unknown pool", where="conv.pool", expected="None, 'max' or 'avg'", got=pool)
        self.stride = stride * pool_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.drop(self.act(self.bn(self.conv(x)))))
