"""``inception``: the GoogLeNet Inception module (four parallel branches, concatenated).

Szegedy et al., "Going Deeper with Convolutions", CVPR 2015 (arXiv:1409.4842), figure 2(b):
a 1x1 branch, 1x1 -> 3x3, 1x1 -> 5x5 and 3x3 max-pool -> 1x1 projection, concatenated along the
channels. Every convolution is conv -> norm -> activation (the BN variant, as torchvision's
``BasicConv2d``). The child layout and state-dict keys are those of torchvision's
``googlenet.Inception`` (``branch1.conv``, ``branch2.0.conv``, ``branch2.1.conv``, ``branch3.*``,
``branch4.1.conv``, each with its ``bn``).

The "5x5" branch uses a real 5x5 kernel by default (the paper). torchvision's GoogLeNet has a
*single 3x3* convolution there (a known deviation kept for its pretrained weights); pass
``kernel_5x5=3`` to reproduce it exactly (same parameters and, with
``norm_layer=functools.partial(nn.BatchNorm2d, eps=1e-3)``, the same outputs for the same
weights). The pool branch uses ``MaxPool2d(3, stride=1, padding=1, ceil_mode=True)`` as
torchvision.

Branch sizes: give either ``out_channels`` (divisible by 4: four equal branches of
``out_channels // 4``, reductions ``max(1, branch // 2)``) or explicit branch sizes, not both.
Branch sizes left ``None`` default to ``max(1, in_channels // 4)`` for the four branch outputs and
``max(1, out // 2)`` for the two reductions (``out`` being that branch's output), so
``InceptionModule(c)`` with ``c`` divisible by 4 keeps ``c`` channels. The declared
``out_channels`` is always ``out_1x1 + out_3x3 + out_5x5 + out_pool``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import BlockArgumentError, BlockValueError
from ..layers import ConvNormAct, LayerType, check_channels, check_kernel
from ._base import Block, register_block

__all__ = ["InceptionModule"]

_BRANCH_ARGS = ("out_1x1", "red_3x3", "out_3x3", "red_5x5", "out_5x5", "out_pool")


@register_block("inception", category="multi_branch", aliases=("inception_module", "inceptionmodule"))
class InceptionModule(Block):
    """GoogLeNet Inception module: ``cat([1x1, 1x1->3x3, 1x1->5x5, maxpool->1x1])``.

    Args:
        in_channels: input channels.
        out_1x1: output channels of the 1x1 branch.
        red_3x3: 1x1 reduction before the 3x3 convolution.
        out_3x3: output channels of the 3x3 branch.
        red_5x5: 1x1 reduction before the "5x5" convolution.
        out_5x5: output channels of the "5x5" branch.
        out_pool: output channels of the 1x1 projection after the max pool.
        out_channels: total output channels, split into four equal branches (multiple of 4);
            exclusive with the explicit branch sizes.
        kernel_5x5: odd kernel of the "5x5" branch (5 = paper, 3 = torchvision's GoogLeNet).
        act_layer: activation after every convolution.
        norm_layer: norm after every convolution (``None`` gives biased convolutions).

    Example:
        >>> m = InceptionModule(192, 64, 96, 128, 16, 32, 32)
        >>> m.out_channels, m(torch.randn(1, 192, 28, 28)).shape
        (256, torch.Size([1, 256, 28, 28]))
    """

    OUTPUT_RULE = "out_1x1 + out_3x3 + out_5x5 + out_pool channels (or out_channels); same spatial size"

    def __init__(self, in_channels: int, out_1x1: int | None = None, red_3x3: int | None = None,
                 out_3x3: int | None = None, red_5x5: int | None = None, out_5x5: int | None = None,
                 out_pool: int | None = None, out_channels: int | None = None, kernel_5x5: int = 5,
                 act_layer: LayerType = "relu", norm_layer: LayerType = "batch", device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = "inception"
        check_channels("in_channels", in_channels, name)
        check_kernel("kernel_5x5", kernel_5x5, owner=name)
        given = {k: v for k, v in zip(_BRANCH_ARGS, (out_1x1, red_3x3, out_3x3, red_5x5, out_5x5, out_pool))
                 if v is not None}
        if out_channels is not None:
            if given:
                raise BlockArgumentError("give either out_channels or the branch sizes, not both",
                                         where=f"{name}.out_channels",
                                         expected="out_channels alone, or only " + ", ".join(_BRANCH_ARGS),
                                         got=f"out_channels={out_channels!r} and {', '.join(given)}")
            check_channels("out_channels", out_channels, name)
            if out_channels % 4:
                raise BlockValueError("out_channels must split into four equal branches",
                                      where=f"{name}.out_channels", expected="a multiple of 4", got=out_channels)
            branch = out_channels // 4
        else:
            branch = max(1, in_channels // 4)
        out_1x1 = branch if out_1x1 is None else out_1x1
        out_3x3 = branch if out_3x3 is None else out_3x3
        out_5x5 = branch if out_5x5 is None else out_5x5
        out_pool = branch if out_pool is None else out_pool
        red_3x3 = max(1, out_3x3 // 2) if red_3x3 is None else red_3x3
        red_5x5 = max(1, out_5x5 // 2) if red_5x5 is None else red_5x5
        sizes = dict(zip(_BRANCH_ARGS, (out_1x1, red_3x3, out_3x3, red_5x5, out_5x5, out_pool)))
        for key, value in sizes.items():
            check_channels(key, value, name)
        self.in_channels = in_channels
        self.out_channels = out_1x1 + out_3x3 + out_5x5 + out_pool
        self.branch_channels = (out_1x1, out_3x3, out_5x5, out_pool)

        def cna(cin: int, cout: int, k: int) -> ConvNormAct:
            return ConvNormAct(cin, cout, k, norm_layer=norm_layer, act_layer=act_layer, **dd)

        self.branch1 = cna(in_channels, out_1x1, 1)
        self.branch2 = nn.Sequential(cna(in_channels, red_3x3, 1), cna(red_3x3, out_3x3, 3))
        self.branch3 = nn.Sequential(cna(in_channels, red_5x5, 1), cna(red_5x5, out_5x5, kernel_5x5))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True),
                                     cna(in_channels, out_pool, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)
