"""``se``: Squeeze-and-Excitation channel attention.

Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018 (arXiv:1709.01507). Global average pool,
a bottleneck MLP as two 1x1 convolutions, a sigmoid gate that rescales the channels. Departures:
the reduced width is rounded to a multiple of ``rd_divisor`` (as in timm; ``rd_divisor=1`` gives
the paper's ``C // r``), an optional norm between the two convolutions, and configurable
activation and gate.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import BlockValueError
from ..layers import (
    LayerType,
    check_channels,
    check_float,
    check_int,
    create_act,
    create_norm,
    make_divisible,
)
from ._base import Block, register_block

__all__ = ["SEBlock", "reduced_channels"]


def reduced_channels(channels: int, rd_ratio: float, rd_channels: int | None, rd_divisor: int,
                     owner: str) -> int:
    """The squeeze width: explicit ``rd_channels`` or ``channels * rd_ratio`` rounded to ``rd_divisor``."""
    if rd_channels is not None:
        return check_int("rd_channels", rd_channels, owner=owner)
    check_float("rd_ratio", rd_ratio, lo=0.0, hi=1.0, lo_open=True, owner=owner)
    if channels * rd_ratio < 1:
        raise BlockValueError(
            "the reduction is larger than the number of channels", where=f"{owner}.rd_ratio",
            expected=f"reduction <= {channels} (rd_ratio >= {1 / channels:.4g})", got=round(1 / rd_ratio, 4))
    return make_divisible(channels * rd_ratio, rd_divisor, round_limit=0.0)


@register_block("se", category="attention",
                aliases=("squeeze_excitation", "seblock", "se_block", "squeeze_excite", "se_enhanced", "se_v2"))
class SEBlock(Block):
    """Squeeze-and-Excitation: ``x * gate(fc2(act(fc1(mean_hw(x)))))``.

    Args:
        in_channels: channels (also accepted as ``channels=``).
        rd_ratio: squeeze ratio (1/16 in the paper; legacy ``reduction=16``).
        rd_channels: explicit squeeze width, overrides ``rd_ratio``.
        rd_divisor: round the squeeze width to a multiple of this.
        act_layer: activation between the two convolutions.
        gate_layer: gating function (sigmoid in the paper).
        norm_layer: optional norm after the first convolution.

    Example:
        >>> SEBlock(channels=64)(torch.randn(2, 64, 8, 8)).shape
        torch.Size([2, 64, 8, 8])
    """

    def __init__(self, in_channels: int, rd_ratio: float = 1 / 16, rd_channels: int | None = None,
                 rd_divisor: int = 8, act_layer: LayerType = "relu", gate_layer: LayerType = "sigmoid",
                 norm_layer: LayerType = None, device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        check_channels("in_channels", in_channels, "se")
        rd = reduced_channels(in_channels, rd_ratio, rd_channels, rd_divisor, "se")
        self.in_channels = self.out_channels = in_channels
        self.fc1 = nn.Conv2d(in_channels, rd, 1, bias=True, **dd)
        self.bn = create_norm(norm_layer, rd, **dd)
        self.act = create_act(act_layer, inplace=True)
        self.fc2 = nn.Conv2d(rd, in_channels, 1, bias=True, **dd)
        self.gate = create_act(gate_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)  # (N, C, 1, 1)
        s = self.fc2(self.act(self.bn(self.fc1(s))))
        return x * self.gate(s)
