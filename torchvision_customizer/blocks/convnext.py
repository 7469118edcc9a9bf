"""``convnext_block``: the ConvNeXt block.

Liu et al., "A ConvNet for the 2020s", CVPR 2022 (arXiv:2201.03545): depthwise ``7x7``
convolution -> LayerNorm over channels -> Linear ``C -> 4C`` -> GELU -> Linear ``4C -> C`` ->
layer scale (learnable per-channel ``gamma``, initialized to 1e-6) -> stochastic depth, plus the
identity. The norm and the MLP run channels-last (one permute in, one out), as in the reference
code, so the linears are plain GEMMs; a ``channels_last`` input makes both permutes free.
Parameters match torchvision's ``CNBlock``. Departures: configurable kernel, MLP ratio and
activation; ``layer_scale_init_value=None`` removes the layer scale; weights are initialized as
in the paper (truncated normal, std 0.02, zero biases).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import LayerType, check_channels, check_float, check_kernel, create_act
from ._base import Block, register_block
from .drop_path import DropPath

__all__ = ["ConvNeXtBlock"]


@register_block("convnext_block", category="mobile", aliases=("convnext", "convnextblock", "cnblock"))
class ConvNeXtBlock(Block):
    """``x + drop_path(gamma * mlp(norm(dwconv7x7(x))))``, same shape in and out.

    Args:
        in_channels: channels (also accepted as ``channels=``).
        kernel_size: odd kernel of the depthwise convolution (7).
        mlp_ratio: hidden width of the MLP / channels (4).
        layer_scale_init_value: initial value of the learnable layer scale (1e-6); ``None`` or 0
            removes it.
        drop_path: stochastic-depth rate on the branch.
        act_layer: MLP activation (GELU).
        norm_eps: LayerNorm epsilon (1e-6).

    Example:
        >>> ConvNeXtBlock(96)(torch.randn(1, 96, 14, 14)).shape
        torch.Size([1, 96, 14, 14])
    """

    def __init__(self, in_channels: int, kernel_size: int = 7, mlp_ratio: float = 4.0,
                 layer_scale_init_value: float | None = 1e-6, drop_path: float = 0.0,
                 act_layer: LayerType = "gelu", norm_eps: float = 1e-6, device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = "convnext_block"
        check_channels("in_channels", in_channels, name)
        check_kernel("kernel_size", kernel_size, owner=name)
        check_float("mlp_ratio", mlp_ratio, lo=0.0, lo_open=True, owner=name)
        check_float("drop_path", drop_path, lo=0.0, hi=1.0, hi_open=True, owner=name)
        check_float("norm_eps", norm_eps, lo=0.0, lo_open=True, owner=name)
        if layer_scale_init_value is not None:
            check_float("layer_scale_init_value", layer_scale_init_value, owner=name)
        hidden = max(1, int(in_channels * mlp_ratio))
        self.in_channels = self.out_channels = in_channels
        self.hidden_channels = hidden
        self.layer_scale_init_value = layer_scale_init_value
        self.conv_dw = nn.Conv2d(in_channels, in_channels, kernel_size, padding=kernel_size // 2,
                                 groups=in_channels, bias=True, **dd)
        self.norm = nn.LayerNorm(in_channels, eps=norm_eps, **dd)
        self.fc1 = nn.Linear(in_channels, hidden, **dd)
        self.act = create_act(act_layer)
        self.fc2 = nn.Linear(hidden, in_channels, **dd)
        self.gamma = (nn.Parameter(torch.empty(in_channels, **dd)) if layer_scale_init_value else None)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def _init_weights(self) -> None:
        for m in (self.conv_dw, self.fc1, self.fc2):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        if self.gamma is not None:
            with torch.no_grad():
                self.gamma.fill_(float(self.layer_scale_init_value))  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_dw(x).permute(0, 2, 3, 1)  # (N, H, W, C)
        out = self.fc2(self.act(self.fc1(self.norm(out))))
        if self.gamma is not None:
            out = out * self.gamma
        out = self.drop_path(out.permute(0, 3, 1, 2))  # (N, C, H, W)
        out += x  # in place: one less feature-map allocation
        return out
