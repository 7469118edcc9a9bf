"""``dense``: the DenseNet dense block (every layer sees all earlier feature maps).

Huang et al., "Densely Connected Convolutional Networks", CVPR 2017 (arXiv:1608.06993), the
DenseNet-B bottleneck layer: ``BN-ReLU-1x1 conv (bn_size * growth_rate) - BN-ReLU-3x3 conv
(growth_rate)``, optional dropout. Layer ``i`` takes the concatenation of the block input and the
``i`` earlier outputs, so the block returns ``in_channels + num_layers * growth_rate`` channels.
Each layer concatenates its inputs once (as torchvision's ``_DenseBlock``): the forward is a
straight line for fx and export. Children are ``denselayer1..N`` with ``norm1``, ``relu1``,
``conv1``, ``norm2``, ``relu2``, ``conv2`` as in torchvision, so ``densenet121().features.denseblock1``
weights load unchanged. Departures: configurable norm and activation; the dropout is an
``nn.Dropout`` module (torchvision calls ``F.dropout``); no memory-efficient checkpointing.

Compatibility: the older release's signature was ``DenseConnectionBlock(num_layers=4,
in_channels=64, ...)`` with ``num_layers`` first; this one takes ``in_channels`` first (the block
protocol). Keyword calls keep working; positional calls must swap the first two arguments.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import LayerType, check_channels, check_float, check_int, create_act, create_norm
from ._base import Block, register_block

__all__ = ["DenseConnectionBlock", "DenseLayer"]


class DenseLayer(nn.Module):
    """One DenseNet-B layer on concatenated inputs: ``conv2(relu2(norm2(conv1(relu1(norm1(x))))))``."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int, dropout: float, norm_layer: LayerType,
                 act_layer: LayerType, device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        inter = bn_size * growth_rate
        self.norm1 = create_norm(norm_layer, in_channels, **dd)
        self.relu1 = create_act(act_layer, inplace=True)  # acts on a fresh tensor (norm or concat output)
        self.conv1 = nn.Conv2d(in_channels, inter, 1, bias=False, **dd)
        self.norm2 = create_norm(norm_layer, inter, **dd)
        self.relu2 = create_act(act_layer, inplace=True)
        self.conv2 = nn.Conv2d(inter, growth_rate, 3, padding=1, bias=False, **dd)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu1(self.norm1(x)))
        return self.drop(self.conv2(self.relu2(self.norm2(out))))


@register_block("dense", category="multi_branch",
                aliases=("dense_block", "denseblock", "densenet", "denseconnectionblock"))
class DenseConnectionBlock(Block):
    """DenseNet dense block: ``num_layers`` bottleneck layers, each output concatenated.

    Args:
        in_channels: input channels.
        num_layers: number of dense layers (6, 12, 24, 16 in DenseNet-121's four blocks).
        growth_rate: channels each layer adds (``k``, 32 in DenseNet-121).
        bn_size: bottleneck width multiplier (the 1x1 convolution outputs ``bn_size * growth_rate``).
        dropout: dropout probability after each layer's 3x3 convolution.
        norm_layer, act_layer: norm and activation (pre-activation order, BN-ReLU-conv).

    Example:
        >>> block = DenseConnectionBlock(64, num_layers=6, growth_rate=32)
        >>> block.out_channels, block(torch.randn(1, 64, 8, 8)).shape
        (256, torch.Size([1, 256, 8, 8]))
    """

    OUTPUT_RULE = "in_channels + num_layers * growth_rate channels; same spatial size"

    def __init__(self, in_channels: int, num_layers: int = 4, growth_rate: int = 32, bn_size: int = 4,
                 dropout: float = 0.0, norm_layer: LayerType = "batch", act_layer: LayerType = "relu",
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = "dense"
        check_channels("in_channels", in_channels, name)
        check_int("num_layers", num_layers, owner=name)
        check_int("growth_rate", growth_rate, owner=name)
        check_int("bn_size", bn_size, owner=name)
        check_float("dropout", dropout, lo=0.0, hi=1.0, hi_open=True, owner=name)
        self.in_channels = in_channels
        self.out_channels = in_channels + num_layers * growth_rate
        self.num_layers, self.growth_rate = num_layers, growth_rate
        self.layer_names = tuple(f"denselayer{i + 1}" for i in range(num_layers))
        for i, layer_name in enumerate(self.layer_names):
            self.add_module(layer_name, DenseLayer(in_channels + i * growth_rate, growth_rate, bn_size, dropout,
                                                   norm_layer, act_layer, **dd))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer_name in self.layer_names:
            features.append(getattr(self, layer_name)(torch.cat(features, 1)))
        return torch.cat(features, 1)
