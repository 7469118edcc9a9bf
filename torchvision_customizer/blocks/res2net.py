"""``res2net``: the Res2Net bottleneck (hierarchical multi-scale 3x3 convolutions).

Gao et al., "Res2Net: A New Multi-scale Backbone Architecture", TPAMI 2019 (arXiv:1904.01169).
A 1x1 convolution reduces to ``width * scale`` channels, which are split into ``scale`` groups
``x_1..x_s``; ``y_1 = K_1(x_1)``, ``y_i = K_i(x_i + y_{i-1})`` for ``1 < i < s`` and
``y_s = x_s``; the concatenated ``y`` is expanded by a 1x1 convolution and added to the shortcut.
Each ``K_i`` is 3x3 conv -> norm -> activation.

When the block changes shape (``stride > 1`` or ``in_channels != out_channels``) it is a
"stage" block, as ``stype='stage'`` in the paper's reference code: the splits are *not* chained
(each ``K_i`` sees only ``x_i``, strided) and the last split goes through a 3x3 average pool with
the block's stride (``count_include_pad``) instead of passing through unchanged.
``width = floor(out_channels / expansion * base_width / 64)``, which gives the paper's
Res2Net-50 26w x 4s widths. State-dict keys follow the common Res2Net layout (``conv1``,
``bn1``, ``convs.i``, ``bns.i``, ``conv3``, ``bn3``, ``downsample.0/1``). Departures: optional
attention before the addition (SE placement), stochastic depth and ``zero_init_last``.
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
from .residual import make_shortcut

__all__ = ["Res2NetBottleneck"]


@register_block("res2net", category="residual", aliases=("res2net_block", "res2net_bottleneck"))
class Res2NetBottleneck(Block):
    """1x1 reduce -> ``scale`` hierarchical 3x3 convolutions -> 1x1 expand, plus a shortcut.

    Args:
        in_channels: input channels.
        out_channels: output channels (default: ``in_channels``); must be divisible by ``expansion``.
        stride: stride of the 3x3 convolutions (and of the average pool of the last split).
        scale: number of splits ``s`` (4); ``scale=1`` is a plain bottleneck of width ``width``.
        base_width: width of one split at ``out_channels = 64 * expansion`` (26, the "26w").
        expansion: ``out_channels`` / bottleneck planes (4, as ResNet).
        dilation: dilation of the 3x3 convolutions.
        norm_layer, act_layer: norm and activation.
        attn_layer: attention on the residual branch before the addition, or ``None``.
        se_ratio: squeeze ratio for the attention block.
        drop_path: stochastic-depth rate.
        downsample: ``None`` = projection when needed, ``True`` = always.
        zero_init_last: zero ``bn3.weight`` so the branch starts at zero.

    Example:
        >>> Res2NetBottleneck(64, 256, stride=2)(torch.randn(1, 64, 16, 16)).shape
        torch.Size([1, 256, 8, 8])
    """

    OUTPUT_RULE = "out_channels; spatial / stride"

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 1, scale: int = 4,
                 base_width: int = 26, expansion: int = 4, dilation: int = 1, norm_layer: LayerType = "batch",
                 act_layer: LayerType = "relu", attn_layer: Any = None, se_ratio: float = 1 / 16,
                 drop_path: float = 0.0, downsample: bool | None = None, zero_init_last: bool = False,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = "res2net"
        out_channels = in_channels if out_channels is None else out_channels
        check_channels("in_channels", in_channels, name)
        check_channels("out_channels", out_channels, name)
        check_int("stride", stride, owner=name)
        check_int("scale", scale, owner=name)
        check_int("base_width", base_width, owner=name)
        check_int("expansion", expansion, owner=name)
        check_int("dilation", dilation, owner=name)
        check_float("drop_path", drop_path, lo=0.0, hi=1.0, hi_open=True, owner=name)
        if out_channels % expansion:
            raise BlockValueError("out_channels must be divisible by expansion", where=f"{name}.out_channels",
                                  expected=f"a multiple of {expansion}", got=out_channels)
        width = (out_channels // expansion) * base_width // 64
        if width < 1:
            raise BlockValueError("the split width is below 1 channel", where=f"{name}.base_width",
                                  expected=f"out_channels / expansion * base_width >= 64 "
                                  f"(base_width >= {-(-64 * expansion // out_channels)})", got=base_width)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.width, self.scale = width, scale
        self.is_stage = stride != 1 or in_channels != out_channels
        self.zero_init_last = zero_init_last
        mid = width * scale
        num_convs = max(1, scale - 1)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False, **dd)
        self.bn1 = create_norm(norm_layer, mid, **dd)
        self.act1 = create_act(act_layer, inplace=True)
        self.convs = nn.ModuleList(
            nn.Conv2d(width, width, 3, stride, padding=dilation, dilation=dilation, bias=False, **dd)
            for _ in range(num_convs))
        self.bns = nn.ModuleList(create_norm(norm_layer, width, **dd) for _ in range(num_convs))
        self.acts = nn.ModuleList(create_act(act_layer, inplace=True) for _ in range(num_convs))
        # the untouched last split: pooled in a stage block (to match the strided splits), else passed on
        self.pool = (nn.AvgPool2d(3, stride, padding=1) if self.is_stage and scale > 1 else nn.Identity())
        self.conv3 = nn.Conv2d(mid, out_channels, 1, bias=False, **dd)
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
        splits = torch.split(out, self.width, 1)
        ys = []
        y = splits[0]
        for i, (conv, bn, act) in enumerate(zip(self.convs, self.bns, self.acts)):
            if i > 0:  # construction-time structure: the split index and the block type
                y = splits[i] if self.is_stage else y + splits[i]
            y = act(bn(conv(y)))
            ys.append(y)
        if self.scale > 1:
            ys.append(self.pool(splits[-1]))
        out = self.bn3(self.conv3(torch.cat(ys, 1)))
        out = self.drop_path(self.attn(out))
        out += shortcut  # in place, as torchvision: one less feature-map allocation
        return self.act3(out)
