"""``shuffle_block``: the ShuffleNetV2 unit.

Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design", ECCV 2018
(arXiv:1807.11164). Stride 1: the channels are split in two halves; the first passes through
unchanged, the second goes through ``1x1`` conv-BN-act -> depthwise ``k x k`` conv-BN -> ``1x1``
conv-BN-act; the halves are concatenated and shuffled with 2 groups. Stride 2: no split; both
branches see the whole input (branch 1: depthwise strided conv-BN -> ``1x1`` conv-BN-act), each
produces ``out / 2`` channels. Parameter counts match torchvision's ``InvertedResidual``.
Concatenation and shuffle are done in one step, ``stack((a, b), dim=2).flatten(1, 2)``, which
equals :func:`channel_shuffle` of ``cat((a, b))`` with 2 groups without the intermediate copy.
Departures: configurable kernel, activation and norm.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import BlockValueError
from ..layers import ConvNormAct, LayerType, check_channels, check_int, check_kernel
from ._base import Block, register_block

__all__ = ["ShuffleBlock", "channel_shuffle"]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``groups`` channel groups: (N, g * c, H, W) -> reshape (N, g, c) -> transpose -> reshape."""
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


@register_block("shuffle_block", category="mobile", aliases=("shufflenet_block", "shuffle_unit", "shuffleblock"))
class ShuffleBlock(Block):
    """ShuffleNetV2 unit: split (stride 1) or duplicate (stride 2), branch, concat, shuffle.

    Args:
        in_channels: input channels (even, and equal to ``out_channels``, at stride 1).
        out_channels: output channels, even (default: ``in_channels``).
        stride: 1 (split unit) or larger (downsampling unit).
        kernel_size: odd kernel of the depthwise convolutions.
        norm_layer: norm after every convolution.
        act_layer: activation after the ``1x1`` convolutions.

    Example:
        >>> ShuffleBlock(24, 116, stride=2)(torch.randn(1, 24, 32, 32)).shape
        torch.Size([1, 116, 16, 16])
    """

    OUTPUT_RULE = "out_channels; spatial / stride"

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 1, kernel_size: int = 3,
                 norm_layer: LayerType = "batch", act_layer: LayerType = "relu", device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = "shuffle_block"
        out_channels = in_channels if out_channels is None else out_channels
        check_channels("in_channels", in_channels, name)
        check_channels("out_channels", out_channels, name)
        check_int("stride", stride, owner=name)
        check_kernel("kernel_size", kernel_size, owner=name)
        if out_channels % 2:
            raise BlockValueError("the two branches need an even number of output channels",
                                  where=f"{name}.out_channels", expected="an even integer", got=out_channels)
        if stride == 1 and in_channels != out_channels:
            raise BlockValueError("a stride-1 unit splits its input, so it keeps the channel count",
                                  where=f"{name}.out_channels", expected=f"{in_channels} (or stride > 1)",
                                  got=out_channels)
        branch = out_channels // 2
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.split = stride == 1
        self.branch_channels = branch
        if self.split:
            self.branch1: nn.Module | None = None
        else:
            self.branch1 = nn.Sequential(
                ConvNormAct(in_channels, in_channels, kernel_size, stride, groups=in_channels, norm_layer=norm_layer,
                            act_layer=None, **dd),
                ConvNormAct(in_channels, branch, 1, norm_layer=norm_layer, act_layer=act_layer, **dd),
            )
        self.branch2 = nn.Sequential(
            ConvNormAct(branch if self.split else in_channels, branch, 1, norm_layer=norm_layer, act_layer=act_layer,
                        **dd),
            ConvNormAct(branch, branch, kernel_size, stride, groups=branch, norm_layer=norm_layer, act_layer=None,
                        **dd),
            ConvNormAct(branch, branch, 1, norm_layer=norm_layer, act_layer=act_layer, **dd),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.branch1 is None:
            a = x[:, : self.branch_channels]  # (N, out / 2, H, W), passed through
            b = self.branch2(x[:, self.branch_channels:])
        else:
            a = self.branch1(x)  # (N, out / 2, H / s, W / s)
            b = self.branch2(x)
        # concat + channel shuffle with 2 groups in one copy: channels a0, b0, a1, b1, ...
        return torch.stack((a, b), dim=2).flatten(1, 2)
