"""``coord_conv``: a convolution that also sees where it is (CoordConv).

Liu et al., "An Intriguing Failing of Convolutional Neural Networks and the CoordConv Solution",
NeurIPS 2018 (arXiv:1807.03247). Two channels holding the normalized x and y pixel coordinates
(each in ``[-1, 1]``) are concatenated to the input before the convolution; ``with_r`` adds a
third channel with the distance to the image centre. Departures: the radius is
``sqrt(x^2 + y^2)`` on the normalized coordinates (range ``[0, sqrt(2)]``; the paper's listing
measures it from the point (0.5, 0.5)), and the convolution is followed by a norm and an
activation like every conv block here. The coordinate grid is built in ``forward`` from the
input's shape on its device and dtype, so any input size works (also with dynamic shapes in
``torch.export`` and ONNX).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import LayerType, check_channels, check_int, check_kernel, create_act, create_norm
from ..layers.conv import same_padding
from ._base import Block, register_block

__all__ = ["CoordConv"]


def _grid(n: int, x: torch.Tensor) -> torch.Tensor:
    """``linspace(-1, 1, n)`` on ``x``'s device and dtype, from tensor ops only.

    ``arange`` keeps ``n`` symbolic under ``torch.export`` / ONNX dynamic axes (``linspace``
    specializes it); the float32 grid is cast afterwards (a dtype taken from ``x`` exports to ONNX
    as float64); ``clamp`` gives ``[-1]`` for ``n == 1`` like ``linspace``.
    """
    g = torch.arange(n, device=x.device, dtype=torch.float32)
    return (g * 2.0 / g[-1:].clamp(min=1.0) - 1.0).to(x.dtype)


@register_block("coord_conv", category="convolution", aliases=("coordconv", "coordinate_conv"))
class CoordConv(Block):
    """Concatenate x / y (and optionally radius) coordinate channels, then conv -> norm -> act.

    Args:
        in_channels: input channels (the convolution sees ``in_channels + 2`` or ``+ 3``).
        out_channels: output channels (default: ``in_channels``).
        kernel_size: odd square kernel.
        stride: convolution stride.
        with_r: add the radius channel.
        dilation: convolution dilation.
        bias: conv bias; ``None`` = only without a norm.
        norm_layer: norm name/class or ``None``.
        act_layer: activation name/class or ``None``.

    Example:
        >>> CoordConv(3, 16, with_r=True)(torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 16, 32, 32])
    """

    OUTPUT_RULE = "out_channels; spatial / stride"

    def __init__(self, in_channels: int, out_channels: int | None = None, kernel_size: int = 3,
                 stride: int = 1, with_r: bool = False, dilation: int = 1, bias: bool | None = None,
                 norm_layer: LayerType = "batch", act_layer: LayerType = "relu", device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = "coord_conv"
        out_channels = in_channels if out_channels is None else out_channels
        check_channels("in_channels", in_channels, name)
        check_channels("out_channels", out_channels, name)
        check_kernel("kernel_size", kernel_size, owner=name)
        check_int("stride", stride, owner=name)
        check_int("dilation", dilation, owner=name)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.with_r = bool(with_r)
        self.bn = create_norm(norm_layer, out_channels, **dd)
        if bias is None:
            bias = isinstance(self.bn, nn.Identity)
        extra = 3 if self.with_r else 2
        self.conv = nn.Conv2d(in_channels + extra, out_channels, kernel_size, stride,
                              same_padding(kernel_size, dilation), dilation=dilation, bias=bias, **dd)
        self.act = create_act(act_layer, inplace=True)

    def add_coords(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with the coordinate channels appended: (N, C, H, W) -> (N, C + 2 [+ 1], H, W)."""
        b, _, h, w = x.shape
        xs = _grid(w, x).view(1, 1, 1, -1).expand(b, 1, h, w)
        ys = _grid(h, x).view(1, 1, -1, 1).expand(b, 1, h, w)
        if self.with_r:
            r = torch.sqrt(xs * xs + ys * ys)
            return torch.cat([x, xs, ys, r], dim=1)
        return torch.cat([x, xs, ys], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(self.add_coords(x))))
