"""``fire``: the SqueezeNet Fire module.

Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model
size" (arXiv:1602.07360): a ``1x1`` squeeze convolution (+ ReLU) feeds two parallel expand
convolutions, ``1x1`` and ``3x3`` (each + ReLU), whose outputs are concatenated. Here
``out_channels`` is the concatenated width, split evenly between the two expands, and the squeeze
width defaults to ``out_channels // 8`` (the paper's ``s1x1 = (e1x1 + e3x3) / 8``). With the
default ``norm_layer=None`` the parameters match torchvision's ``Fire``. Departures: an optional
norm after each convolution (then without conv bias) and a configurable activation.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import BlockValueError
from ..layers import ConvNormAct, LayerType, check_channels
from ._base import Block, register_block

__all__ = ["FireModule"]


@register_block("fire", category="multi_branch", aliases=("fire_module", "squeezenet_fire", "firemodule"))
class FireModule(Block):
    """Squeeze ``1x1`` -> (expand ``1x1`` || expand ``3x3``) -> concat.

    Args:
        in_channels: input channels.
        out_channels: concatenated output channels, even (default: ``in_channels``); each expand
            gets half.
        squeeze_channels: squeeze width (default ``max(1, out_channels // 8)``).
        norm_layer: optional norm after each convolution (``None`` as in SqueezeNet).
        act_layer: activation after each convolution (ReLU).

    Example:
        >>> FireModule(96, 128, squeeze_channels=16)(torch.randn(1, 96, 28, 28)).shape
        torch.Size([1, 128, 28, 28])
    """

    OUTPUT_RULE = "out_channels; same spatial size"

    def __init__(self, in_channels: int, out_channels: int | None = None, squeeze_channels: int | None = None,
                 norm_layer: LayerType = None, act_layer: LayerType = "relu", device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = "fire"
        out_channels = in_channels if out_channels is None else out_channels
        check_channels("in_channels", in_channels, name)
        check_channels("out_channels", out_channels, name)
        if out_channels % 2:
            raise BlockValueError("out_channels is split evenly between the 1x1 and 3x3 expands",
                                  where=f"{name}.out_channels", expected="an even integer", got=out_channels)
        if squeeze_channels is None:
            squeeze_channels = max(1, out_channels // 8)
        check_channels("squeeze_channels", squeeze_channels, name)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.squeeze_channels = squeeze_channels
        half = out_channels // 2
        self.squeeze = ConvNormAct(in_channels, squeeze_channels, 1, norm_layer=norm_layer, act_layer=act_layer, **dd)
        self.expand1x1 = ConvNormAct(squeeze_channels, half, 1, norm_layer=norm_layer, act_layer=act_layer, **dd)
        self.expand3x3 = ConvNormAct(squeeze_channels, half, 3, norm_layer=norm_layer, act_layer=act_layer, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)  # (N, squeeze, H, W)
        return torch.cat([self.expand1x1(s), self.expand3x3(s)], dim=1)  # (N, out, H, W)
