"""``preact_residual``: the pre-activation ResNet basic block.

He et al., "Identity Mappings in Deep Residual Networks", ECCV 2016 (arXiv:1603.05027). The
norm and activation move in front of each convolution (``bn-act-conv3x3-bn-act-conv3x3``) and
nothing follows the addition, so the identity path stays clean from block to block. When stride
or channels change, the projection shortcut (a bare 1x1 convolution, no norm) is applied to the
*pre-activated* input, as in the paper's reference code. Departures: an optional attention module
on the residual branch before the addition (the SE placement of Hu et al., arXiv:1709.01507),
optional stochastic depth, and ``zero_init_last`` (zero ``conv2``, so the block starts as the
shortcut).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import BlockValueError
from ..layers import LayerType, check_channels, check_float, check_int, create_act, create_norm
from ._attn import create_attn
from ._base import Block, register_block
from .drop_path import DropPath

__all__ = ["PreActResidualBlock"]


@register_block("preact_residual", category="residual", aliases=("preact", "preact_block"))
class PreActResidualBlock(Block):
    """Pre-activation basic block: ``conv2(act(bn2(conv1(act(bn1(x)))))) + shortcut``.

    The shortcut is ``x`` itself, or ``downsample(act(bn1(x)))`` when the shape changes.

    Args:
        in_channels: input channels.
        out_channels: output channels (default: ``in_channels``).
        stride: stride of the first 3x3 convolution (and of the projection).
        dilation: dilation of both 3x3 convolutions.
        norm_layer: norm name/class (applied before each convolution).
        act_layer: activation name/class.
        attn_layer: attention block on the residual branch (``"se"``, ``"eca"``, ...), or ``None``.
        se_ratio: squeeze ratio given to the attention block when it takes ``rd_ratio``.
        drop_path: stochastic-depth rate on the residual branch.
        downsample: ``None`` = projection only when needed; ``True`` = always.
        zero_init_last: zero ``conv2.weight`` so that the block starts as its shortcut.

    Example:
        >>> PreActResidualBlock(64, 128, stride=2)(torch.randn(1, 64, 16, 16)).shape
        torch.Size([1, 128, 8, 8])
    """

    OUTPUT_RULE = "out_channels; spatial / stride"

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 1, dilation: int = 1,
                 norm_layer: LayerType = "batch", act_layer: LayerType = "relu", attn_layer: Any = None,
                 se_ratio: float = 1 / 16, drop_path: float = 0.0, downsample: bool | None = None,
                 zero_init_last: bool = False, device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = "preact_residual"
        out_channels = in_channels if out_channels is None else out_channels
        check_channels("in_channels", in_channels, name)
        check_channels("out_channels", out_channels, name)
        check_int("stride", stride, owner=name)
        check_int("dilation", dilation, owner=name)
        check_float("drop_path", drop_path, lo=0.0, hi=1.0, hi_open=True, owner=name)
        needed = stride != 1 or in_channels != out_channels
        if downsample is False and needed:
            raise BlockValueError("this block changes shape, so it needs a projection shortcut",
                                  where=f"{name}.downsample", expected="downsample=None or True", got=False)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.zero_init_last = zero_init_last
        self.bn1 = create_norm(norm_layer, in_channels, **dd)
        # without a norm the first activation would act on the caller's tensor: no in-place then
        self.act1 = create_act(act_layer, inplace=not isinstance(self.bn1, nn.Identity))
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=dilation, dilation=dilation,
                               bias=False, **dd)
        self.bn2 = create_norm(norm_layer, out_channels, **dd)
        self.act2 = create_act(act_layer, inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False,
                               **dd)
        self.attn = create_attn(attn_layer, out_channels, se_ratio=se_ratio, owner=name, **dd)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.downsample = (nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False, **dd)
                           if needed or downsample else None)

    def _init_weights(self) -> None:
        if self.zero_init_last:
            nn.init.zeros_(self.conv2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act1(self.bn1(x))
        shortcut = x if self.downsample is None else self.downsample(pre)
        out = self.conv1(pre)
        out = self.conv2(self.act2(self.bn2(out)))
        out = self.drop_path(self.attn(out))
        out += shortcut  # in place, as in residual: one less feature-map allocation
        return out
