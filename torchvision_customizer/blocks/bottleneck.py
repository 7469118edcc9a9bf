"""``bottleneck``, ``wide_bottleneck``, ``grouped_bottleneck``: the ResNet bottleneck family.

He et al., "Deep Residual Learning for Image Recognition" (arXiv:1512.03385), with the stride on
the 3x3 convolution (ResNet v1.5, as torchvision). Wide ResNet: Zagoruyko & Komodakis,
arXiv:1605.07146 (inner width x2). ResNeXt: Xie et al., arXiv:1611.05431 (grouped 3x3,
cardinality x base width). State-dict keys follow torchvision's ``Bottleneck`` (``conv1..3``,
``bn1..3``, ``downsample.0/1``). ``out_channels`` is the block's *output*; the inner width is
``out_channels / expansion * base_width / 64 * groups``, which reproduces torchvision's widths.
Departures: optional attention before the addition (SE-ResNet placement) and stochastic depth.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import BlockValueError
from ..layers import LayerType, check_channels, check_int, create_act, create_norm
from ._attn import create_attn
from ._base import Block, register_block
from .drop_path import DropPath
from .residual import make_shortcut

__all__ = ["GroupedBottleneck", "StandardBottleneck", "WideBottleneck"]


@register_block("bottleneck", category="residual", aliases=("standard_bottleneck", "bottleneck_block",
                                                              "standardbottleneck"))
class StandardBottleneck(Block):
    """1x1 reduce -> 3x3 (strided, grouped) -> 1x1 expand, plus a shortcut.

    Args:
        in_channels: input channels.
        out_channels: output channels (default: ``in_channels``); must be divisible by ``expansion``.
        stride: stride of the 3x3 convolution.
        expansion: output / inner-width ratio before ``base_width`` and ``groups`` scaling (4).
        groups: groups of the 3x3 convolution (ResNeXt cardinality).
        base_width: width per group at ``groups=1`` (64; 128 is Wide ResNet, 4 with 32 groups ResNeXt).
        dilation: dilation of the 3x3 convolution.
        norm_layer, act_layer: norm and activation.
        attn_layer: attention on the residual branch before the addition, or ``None``.
        se_ratio: squeeze ratio for the attention block.
        drop_path: stochastic-depth rate.
        downsample: ``None`` = projection when needed, ``True`` = always.
        zero_init_last: zero ``bn3.weight`` so the branch starts at zero.

    Example:
        >>> StandardBottleneck(64, 256)(torch.randn(1, 64, 8, 8)).shape
        torch.Size([1, 256, 8, 8])
    """

    OUTPUT_RULE = "out_channels; spatial / stride"

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 1, expansion: int = 4,
                 groups: int = 1, base_width: int = 64, dilation: int = 1, norm_layer: LayerType = "batch",
                 act_layer: LayerType = "relu", attn_layer: Any = None, se_ratio: float = 1 / 16,
                 drop_path: float = 0.0, downsample: bool | None = None, zero_init_last: bool = False,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = self.block_name or "bottleneck"
        out_channels = in_channels if out_channels is None else out_channels
        check_channels("in_channels", in_channels, name)
        check_channels("out_channels", out_channels, name)
        check_int("stride", stride, owner=name)
        check_int("expansion", expansion, owner=name)
        check_int("groups", groups, owner=name)
        check_int("base_width", base_width, owner=name)
        if out_channels % expansion:
            raise BlockValueError("out_channels must be divisible by expansion", where=f"{name}.out_channels",
                                  expected=f"a multiple of {expansion}", got=out_channels)
        width = int(out_channels // expansion * (base_width / 64.0)) * groups
        if width < 1:
            raise BlockValueError("the inner width is below 1 channel", where=f"{name}.base_width",
                                  expected="a larger out_channels or base_width", got=base_width)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.width = width
        self.zero_init_last = zero_init_last
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False, **dd)
        self.bn1 = create_norm(norm_layer, width, **dd)
        self.act1 = create_act(act_layer, inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=dilation, dilation=dilation, groups=groups,
                               bias=False, **dd)
        self.bn2 = create_norm(norm_layer, width, **dd)
        self.act2 = create_act(act_layer, inplace=True)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False, **dd)
        self.bn3 = create_norm(norm_layer, out_channels, **dd)
        self.attn = create_attn(attn_layer, out_channels, se_ratio=se_ratio, owner=name, **dd)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.act3 = create_act(act_layer, inplace=True)
        self.downsample = make_shortcut(in_channels, out_channels, stride, norm_layer, downsample, name, dd)

    def _init_weights(self) -> None:
        if self.zero_init_last and getattr(self.bn3, "weight", None) is not None:
            nn.init.zeros_(self.bn3.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.act2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out = self.drop_path(self.attn(out))
        out += shortcut  # in place, as torchvision: one less feature-map allocation
        return self.act3(out)


@register_block("wide_bottleneck", category="residual", aliases=("widebottleneck", "wide_resnet_block"))
class WideBottleneck(StandardBottleneck):
    """Wide ResNet bottleneck: inner width multiplied by ``width_multiplier`` (2 in WRN-50-2)."""

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 1,
                 width_multiplier: float = 2.0, expansion: int = 4, norm_layer: LayerType = "batch",
                 act_layer: LayerType = "relu", attn_layer: Any = None, se_ratio: float = 1 / 16,
                 drop_path: float = 0.0, downsample: bool | None = None, zero_init_last: bool = False,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        base_width = round(64 * width_multiplier)
        super().__init__(in_channels, out_channels, stride, expansion=expansion, base_width=base_width,
                         norm_layer=norm_layer, act_layer=act_layer, attn_layer=attn_layer, se_ratio=se_ratio,
                         drop_path=drop_path, downsample=downsample, zero_init_last=zero_init_last,
                         device=device, dtype=dtype)


@register_block("grouped_bottleneck", category="residual", aliases=("resnext", "resnext_block",
                                                                      "groupedbottleneck"))
class GroupedBottleneck(StandardBottleneck):
    """ResNeXt bottleneck: grouped 3x3 with ``groups`` (cardinality) x ``base_width`` inner width."""

    example_kwargs = {"out_channels": 64, "groups": 4, "base_width": 16}

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 1, groups: int = 32,
                 base_width: int = 4, expansion: int = 4, norm_layer: LayerType = "batch",
                 act_layer: LayerType = "relu", attn_layer: Any = None, se_ratio: float = 1 / 16,
                 drop_path: float = 0.0, downsample: bool | None = None, zero_init_last: bool = False,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(in_channels, out_channels, stride, expansion=expansion, groups=groups,
                         base_width=base_width, norm_layer=norm_layer, act_layer=act_layer, attn_layer=attn_layer,
                         se_ratio=se_ratio, drop_path=drop_path, downsample=downsample,
                         zero_init_last=zero_init_last, device=device, dtype=dtype)
