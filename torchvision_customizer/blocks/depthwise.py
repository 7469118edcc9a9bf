"""``depthwise``: the depthwise-separable convolution of MobileNetV1.

Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications" (arXiv:1704.04861): a depthwise ``k x k`` convolution (one filter per channel,
carrying the stride) with norm and activation, then a pointwise ``1 x 1`` convolution with norm
and activation. Departures: configurable kernel, dilation, norm and activation, and an optional
identity shortcut (``residual=True``, with stochastic depth) when input and output shapes match,
which the paper does not have.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import BlockValueError
from ..layers import ConvNormAct, LayerType, check_channels, check_float, check_int, check_kernel
from ._base import Block, register_block
from .drop_path import DropPath

__all__ = ["DepthwiseBlock"]


@register_block("depthwise", category="convolution",
                aliases=("dw", "depthwise_separable", "depthwiseblock"))
class DepthwiseBlock(Block):
    """Depthwise ``k x k`` conv-norm-act (strided), then pointwise ``1 x 1`` conv-norm-act.

    Args:
        in_channels: input channels.
        out_channels: output channels (default: ``in_channels``).
        stride: stride of the depthwise convolution.
        kernel_size: odd kernel of the depthwise convolution.
        padding: explicit depthwise padding; ``None`` keeps "same" padding.
        dilation: dilation of the depthwise convolution.
        norm_layer: norm after each convolution (name, class or ``None``).
        act_layer: activation after each norm (name, class or ``None``).
        residual: add the input back (legacy ``add_residual``); needs ``stride == 1`` and
            ``in_channels == out_channels``.
        drop_path: stochastic-depth rate on the branch when ``residual``.

    Example:
        >>> DepthwiseBlock(32, 64, stride=2)(torch.randn(1, 32, 16, 16)).shape
        torch.Size([1, 64, 8, 8])
    """

    OUTPUT_RULE = "out_channels; spatial / stride"

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 1,
                 kernel_size: int = 3, padding: int | None = None, dilation: int = 1,
                 norm_layer: LayerType = "batch", act_layer: LayerType = "relu", residual: bool = False,
                 drop_path: float = 0.0, device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = "depthwise"
        out_channels = in_channels if out_channels is None else out_channels
        check_channels("in_channels", in_channels, name)
        check_channels("out_channels", out_channels, name)
        check_int("stride", stride, owner=name)
        check_kernel("kernel_size", kernel_size, odd=padding is None, owner=name)
        check_int("dilation", dilation, owner=name)
        if padding is not None:
            check_int("padding", padding, minimum=0, owner=name)
        check_float("drop_path", drop_path, lo=0.0, hi=1.0, hi_open=True, owner=name)
        if residual and (stride != 1 or in_channels != out_channels):
            raise BlockValueError(
                "residual=True needs a block that keeps the shape", where=f"{name}.residual",
                expected=f"stride=1 and out_channels={in_channels}",
                got=f"stride={stride}, out_channels={out_channels}")
        if residual and padding is not None and 2 * padding != dilation * (kernel_size - 1):
            raise BlockValueError("residual=True needs 'same' padding", where=f"{name}.padding",
                                  expected=f"None or {dilation * (kernel_size - 1) // 2}", got=padding)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.has_skip = bool(residual)
        self.conv_dw = ConvNormAct(in_channels, in_channels, kernel_size, stride, padding=padding,
                                   dilation=dilation, groups=in_channels, norm_layer=norm_layer,
                                   act_layer=act_layer, **dd)
        self.conv_pw = ConvNormAct(in_channels, out_channels, 1, norm_layer=norm_layer, act_layer=act_layer,
                                   **dd)
        self.drop_path = DropPath(drop_path) if drop_path > 0 and residual else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_pw(self.conv_dw(x))  # (N, out, H / s, W / s)
        if self.has_skip:
            out = self.drop_path(out) + x
        return out
