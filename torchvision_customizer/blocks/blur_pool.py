"""``blur_pool``: anti-aliased downsampling (convolution, then blur, then subsample).

Zhang, "Making Convolutional Networks Shift-Invariant Again", ICML 2019 (arXiv:1904.11486): a
strided convolution is replaced by the same convolution at stride 1 followed by a fixed
low-pass (binomial) depthwise filter applied with the stride ("BlurPool"), so the subsampling
no longer aliases. Here: conv -> norm -> act at stride 1, then the normalized binomial filter of
size ``filt_size`` (3 by default, ``[1, 2, 1]`` outer ``[1, 2, 1]`` / 16) with reflect padding and
stride ``stride``. The filter is a fixed, non-persistent buffer (not in the state dict; re-filled
by ``reset_parameters``). Departures:
the norm and activation before the blur are configurable; ``stride=1`` keeps only the blur.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BlockValueError
from ..layers import LayerType, check_channels, check_int, check_kernel, create_act, create_norm
from ..layers.conv import same_padding
from ._base import Block, register_block

__all__ = ["BlurPoolConv", "binomial_filter"]

_PAD_MODES = ("reflect", "replicate", "zeros")


def binomial_filter(size: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The normalized 2-D binomial filter of side ``size`` (sums to 1), e.g. size 3: [1,2,1]^T [1,2,1] / 16."""
    row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float64)
    filt = torch.outer(row, row)
    return (filt / filt.sum()).to(dtype or torch.get_default_dtype())


@register_block("blur_pool", category="convolution", aliases=("blurpool", "antialiased_conv"))
class BlurPoolConv(Block):
    """Conv -> norm -> act at stride 1, then a fixed binomial depthwise blur with stride ``stride``.

    Args:
        in_channels: input channels.
        out_channels: output channels (default: ``in_channels``).
        stride: subsampling of the blur (2 in the paper); the convolution itself is not strided.
        kernel_size: odd kernel of the convolution.
        filt_size: side of the binomial blur filter (1 = plain subsampling, 3 = the default).
        pad_mode: padding of the blur, ``"reflect"`` (as the paper), ``"replicate"`` or ``"zeros"``.
        norm_layer: norm name/class or ``None``.
        act_layer: activation name/class or ``None``.

    Example:
        >>> BlurPoolConv(16, 32)(torch.randn(1, 16, 32, 32)).shape
        torch.Size([1, 32, 16, 16])
    """

    OUTPUT_RULE = "out_channels; spatial / stride"

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 2, kernel_size: int = 3,
                 filt_size: int = 3, pad_mode: str = "reflect", norm_layer: LayerType = "batch",
                 act_layer: LayerType = "relu", device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = "blur_pool"
        out_channels = in_channels if out_channels is None else out_channels
        check_channels("in_channels", in_channels, name)
        check_channels("out_channels", out_channels, name)
        check_int("stride", stride, owner=name)
        check_kernel("kernel_size", kernel_size, owner=name)
        check_int("filt_size", filt_size, maximum=16, owner=name)
        if pad_mode not in _PAD_MODES:
            raise BlockValueError("unknown pad_mode", where=f"{name}.pad_mode",
                                  expected="one of " + ", ".join(repr(m) for m in _PAD_MODES), got=pad_mode)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.filt_size = filt_size
        self.pad_mode = "constant" if pad_mode == "zeros" else pad_mode
        # (left, right, top, bottom): asymmetric for even filters, so the output is ceil(H / stride)
        lo, hi = (filt_size - 1) // 2, filt_size // 2
        self.padding = (lo, hi, lo, hi)
        self.bn = create_norm(norm_layer, out_channels, **dd)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, 1, same_padding(kernel_size),
                              bias=isinstance(self.bn, nn.Identity), **dd)
        self.act = create_act(act_layer, inplace=True)
        self.register_buffer("filt", torch.empty(out_channels, 1, filt_size, filt_size, **dd), persistent=False)

    def _init_weights(self) -> None:
        filt = binomial_filter(self.filt_size, dtype=torch.float64)
        with torch.no_grad():
            self.filt.copy_(filt.expand_as(self.filt))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.conv(x)))  # (N, out, H, W)
        x = F.pad(x, self.padding, mode=self.pad_mode)
        return F.conv2d(x, self.filt, stride=self.stride, groups=self.out_channels)  # (N, out, H / s, W / s)

    def extra_repr(self) -> str:
        return f"filt_size={self.filt_size}, stride={self.stride}, pad_mode={self.pad_mode!r}"
