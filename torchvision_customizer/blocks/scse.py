"""``scse``: concurrent spatial and channel Squeeze-and-Excitation (scSE).

Roy et al., "Concurrent Spatial and Channel 'Squeeze & Excitation' in Fully Convolutional
Networks", MICCAI 2018 (arXiv:1803.02579). Two gates computed from the same input: cSE, the SE
channel gate (global average pool, ``C -> C * rd_ratio -> C`` MLP with ReLU, sigmoid), and sSE, a
spatial gate (a 1x1 convolution to one channel, sigmoid). They are combined by element-wise
addition, ``x * cse + x * sse`` (the paper's scSE; computed as ``x * (cse + sse)``);
``mode="max"`` takes the element-wise maximum of the two gated outputs instead (the max-out of the authors'
follow-up, Roy et al., IEEE TMI 2019). Departures: the squeeze ratio defaults to 1/16 (as SE)
with the width rounded to ``rd_divisor`` (1: ``C / r`` rounded); activation and gate are
configurable.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import BlockValueError
from ..layers import LayerType, check_channels, create_act
from ._base import Block, register_block
from .se import reduced_channels

__all__ = ["SCSEBlock"]

_MODES = ("add", "max")


@register_block("scse", category="attention", aliases=("scse_block", "concurrent_se"))
class SCSEBlock(Block):
    """scSE: ``x * (cse(x) + sse(x))`` (``mode="add"``) or ``max(x * cse(x), x * sse(x))``.

    Args:
        in_channels: channels (also accepted as ``channels=``).
        rd_ratio: squeeze ratio of the channel gate (legacy ``reduction=16``).
        rd_channels: explicit squeeze width, overrides ``rd_ratio``.
        rd_divisor: round the squeeze width to a multiple of this.
        mode: ``"add"`` (paper) or ``"max"`` aggregation of the two gated outputs.
        act_layer: activation inside the channel MLP.
        gate_layer: gating function of both gates (sigmoid).

    Example:
        >>> SCSEBlock(channels=64)(torch.randn(2, 64, 8, 8)).shape
        torch.Size([2, 64, 8, 8])
    """

    def __init__(self, in_channels: int, rd_ratio: float = 1 / 16, rd_channels: int | None = None,
                 rd_divisor: int = 1, mode: str = "add", act_layer: LayerType = "relu",
                 gate_layer: LayerType = "sigmoid", device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = self.block_name or "scse"
        check_channels("in_channels", in_channels, name)
        rd = reduced_channels(in_channels, rd_ratio, rd_channels, rd_divisor, name)
        if mode not in _MODES:
            raise BlockValueError("unknown aggregation mode", where=f"{name}.mode",
                                  expected=" or ".join(map(repr, _MODES)), got=mode)
        self.in_channels = self.out_channels = in_channels
        self.mode = mode
        self.fc1 = nn.Conv2d(in_channels, rd, 1, bias=True, **dd)
        self.act = create_act(act_layer, inplace=True)
        self.fc2 = nn.Conv2d(rd, in_channels, 1, bias=True, **dd)
        self.conv_s = nn.Conv2d(in_channels, 1, 1, bias=True, **dd)
        self.gate = create_act(gate_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))  # (N, C, 1, 1)
        s = self.gate(self.conv_s(x))  # (N, 1, H, W)
        if self.mode == "max":
            return torch.maximum(x * c, x * s)  # on the outputs: differs from x * max(c, s) for x < 0
        return x * (c + s)
