"""``transition``: the DenseNet transition layer between dense blocks.

Huang et al., "Densely Connected Convolutional Networks", CVPR 2017 (arXiv:1608.06993):
BN-ReLU-1x1 convolution, then 2x2 average pooling with stride 2. DenseNet-BC compresses the
channels by ``theta = 0.5`` (``out_channels = in_channels // 2`` by default). Children are
``norm``, ``relu``, ``conv``, ``pool`` as torchvision's ``_Transition``, so its weights load
unchanged. Departures: configurable norm, activation and pooling stride (``stride=1`` drops the
pool). The pool runs *before* the convolution: a bias-free 1x1 convolution commutes with average
pooling, so the result is the same (up to rounding) for ``stride**2`` times fewer FLOPs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import BlockValueError
from ..layers import LayerType, check_channels, check_float, check_int, create_act, create_norm
from ._base import Block, register_block

__all__ = ["TransitionLayer"]


@register_block("transition", category="multi_branch", aliases=("dense_transition", "transition_layer"))
class TransitionLayer(Block):
    """DenseNet transition: ``avgpool2x2(conv1x1(relu(norm(x))))``.

    Args:
        in_channels: input channels.
        out_channels: output channels (default: ``int(in_channels * compression)``).
        stride: kernel and stride of the average pool (2); 1 means no pooling.
        compression: DenseNet-BC ``theta``, used only when ``out_channels`` is ``None`` (0.5).
        norm_layer, act_layer: norm and activation before the convolution.

    Example:
        >>> TransitionLayer(256)(torch.randn(1, 256, 16, 16)).shape
        torch.Size([1, 128, 8, 8])
    """

    OUTPUT_RULE = "out_channels (default in_channels * compression); floor(spatial / stride)"

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 2,
                 compression: float = 0.5, norm_layer: LayerType = "batch", act_layer: LayerType = "relu",
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = "transition"
        check_channels("in_channels", in_channels, name)
        check_int("stride", stride, owner=name)
        if out_channels is None:
            check_float("compression", compression, lo=0.0, hi=1.0, lo_open=True, owner=name)
            out_channels = int(in_channels * compression)
            if out_channels < 1:
                raise BlockValueError("the compression leaves no channel", where=f"{name}.compression",
                                      expected=f"compression >= {1 / in_channels:.4g} for {in_channels} channels",
                                      got=compression)
        check_channels("out_channels", out_channels, name)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.norm = create_norm(norm_layer, in_channels, **dd)
        # without a norm the activation would act on the caller's tensor: no in-place then
        self.relu = create_act(act_layer, inplace=not isinstance(self.norm, nn.Identity))
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False, **dd)
        self.pool = nn.AvgPool2d(stride, stride) if stride > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # a bias-free 1x1 convolution commutes with average pooling: pool first, 4x fewer FLOPs
        return self.conv(self.pool(self.relu(self.norm(x))))
