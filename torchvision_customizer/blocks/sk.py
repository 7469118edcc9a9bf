"""``sk``: Selective Kernel convolution.

Li et al., "Selective Kernel Networks", CVPR 2019 (arXiv:1903.06586), Sec. 3.1. *Split*: parallel
grouped 3x3 convolutions (+ BatchNorm + ReLU) with different receptive fields; the 5x5 branch is
the paper's 3x3 with dilation 2. *Fuse*: the branch outputs are summed, globally averaged and
reduced by a fully-connected layer (+ BatchNorm + ReLU) to ``d = max(C * rd_ratio, L)`` channels
with ``rd_ratio = 1/16`` and ``L = 32`` (the paper's rule ``d = max(C / r, L)``; ``C * rd_ratio``
is truncated). *Select*: one fully-connected layer per branch, a softmax across branches for each
channel, and the branch outputs are summed with these weights. ``groups`` is the paper's
cardinality ``G = 32``, capped at the channel count (so 16 channels give a depthwise convolution);
it must divide the channels. Departures: ``dilations`` sets the number and dilation of the 3x3
branches (paper: ``(1, 2)``); the per-branch selection layers are one 1x1 convolution to
``M * C`` channels, and none of the three fully-connected layers has a bias (as in the paper's
equations). Unlike timm's ``SelectiveKernel`` the input is not split across branches.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import BlockValueError
from ..layers import ConvNormAct, LayerType, check_channels, check_float, check_int, create_act, create_norm
from ._base import Block, register_block

__all__ = ["SelectiveKernel"]


@register_block("sk", category="attention", aliases=("selective_kernel", "sk_block", "skconv"))
class SelectiveKernel(Block):
    """Selective-kernel convolution: ``sum_i softmax_i(fc_i(z)) * branch_i(x)``.

    Args:
        in_channels: channels in and out (also accepted as ``channels=``).
        stride: stride of every branch convolution (spatial reduction of the block).
        dilations: dilation of each 3x3 branch; ``(1, 2)`` is the paper's 3x3 and 5x5 pair.
        groups: groups of the branch convolutions (cardinality, 32 in the paper), capped at
            ``in_channels``.
        rd_ratio: reduction ratio of the fuse layer (1/16; legacy ``reduction=16``).
        rd_channels: explicit fuse width ``d``, overrides ``rd_ratio`` and ``min_rd_channels``.
        min_rd_channels: lower bound ``L`` of the fuse width (32 in the paper).
        act_layer: activation of the branches and of the fuse layer.
        norm_layer: norm of the branches and of the fuse layer.

    Example:
        >>> SelectiveKernel(channels=64)(torch.randn(2, 64, 8, 8)).shape
        torch.Size([2, 64, 8, 8])
    """

    OUTPUT_RULE = "in_channels; spatial / stride"

    def __init__(self, in_channels: int, stride: int = 1, dilations: tuple[int, ...] = (1, 2),
                 groups: int = 32, rd_ratio: float = 1 / 16, rd_channels: int | None = None,
                 min_rd_channels: int = 32, act_layer: LayerType = "relu", norm_layer: LayerType = "batch",
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = self.block_name or "sk"
        check_channels("in_channels", in_channels, name)
        check_int("stride", stride, owner=name)
        check_int("groups", groups, owner=name)
        dilations = tuple(dilations) if isinstance(dilations, (list, tuple)) else dilations
        if not isinstance(dilations, tuple) or len(dilations) < 2:
            raise BlockValueError("selective kernel needs at least two branches", where=f"{name}.dilations",
                                  expected="a tuple of two or more dilations, e.g. (1, 2)", got=dilations)
        for d in dilations:
            check_int("dilations", d, owner=name)
        groups = min(groups, in_channels)
        if in_channels % groups:
            raise BlockValueError("groups must divide the channels", where=f"{name}.groups",
                                  expected=f"a divisor of {in_channels}", got=groups)
        if rd_channels is None:
            check_float("rd_ratio", rd_ratio, lo=0.0, hi=1.0, lo_open=True, owner=name)
            check_int("min_rd_channels", min_rd_channels, owner=name)
            rd = max(min_rd_channels, int(in_channels * rd_ratio + 1e-6))
        else:
            rd = check_int("rd_channels", rd_channels, owner=name)
        self.in_channels = self.out_channels = in_channels
        self.stride = stride
        self.num_paths = len(dilations)
        self.paths = nn.ModuleList(
            ConvNormAct(in_channels, in_channels, 3, stride=stride, dilation=d, groups=groups,
                        norm_layer=norm_layer, act_layer=act_layer, **dd)
            for d in dilations)
        self.fc_reduce = nn.Conv2d(in_channels, rd, 1, bias=False, **dd)
        self.bn = create_norm(norm_layer, rd, **dd)
        self.act = create_act(act_layer, inplace=True)
        self.fc_select = nn.Conv2d(rd, in_channels * self.num_paths, 1, bias=False, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [path(x) for path in self.paths]
        s = feats[0].mean((2, 3), keepdim=True)  # mean of the sum == sum of the means
        for f in feats[1:]:
            s = s + f.mean((2, 3), keepdim=True)
        z = self.act(self.bn(self.fc_reduce(s)))
        a = self.fc_select(z).unflatten(1, (self.num_paths, -1)).softmax(1)  # (N, M, C, 1, 1)
        out = feats[0] * a[:, 0]
        for i, f in enumerate(feats[1:], 1):
            out = out + f * a[:, i]
        return out
