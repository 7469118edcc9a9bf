"""``residual``: the ResNet basic block (two 3x3 convolutions and an identity shortcut).

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (arXiv:1512.03385).
State-dict keys follow torchvision's ``BasicBlock`` (``conv1``, ``bn1``, ``conv2``, ``bn2``,
``downsample.0``, ``downsample.1``), so torchvision ResNet weights load unchanged. Departures:
a projection shortcut is added automatically whenever stride or channels change (option B of the
paper), an optional attention module sits on the residual branch before the addition (the
SE-ResNet placement, Hu et al. arXiv:1709.01507), and optional stochastic depth.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import BlockValueError
from ..layers import LayerType, check_channels, check_int, create_act, create_norm
from ._attn import create_attn
from ._base import Block, register_block
from .drop_path import DropPath

__all__ = ["ResidualBlock", "make_shortcut"]


def make_shortcut(in_channels: int, out_channels: int, stride: int, norm_layer: LayerType,
                  force: bool | None, owner: str, dd: dict[str, Any]) -> nn.Module | None:
    """Projection shortcut (1x1 conv + norm) when shape changes or ``force``; else ``None``."""
    needed = stride != 1 or in_channels != out_channels
    if force is False and needed:
        raise BlockValueError("this block changes shape, so it needs a projection shortcut",
                              where=f"{owner}.downsample", expected="downsample=None or True", got=False)
    if not (needed or force):
        return None
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False, **dd)]
    norm = create_norm(norm_layer, out_channels, **dd)
    if not isinstance(norm, nn.Identity):
        layers.append(norm)
    return nn.Sequential(*layers)


@register_block("residual", category="residual", aliases=("res", "resblock", "basic", "basic_block",
                                                            "residualblock", "residual_block"))
class ResidualBlock(Block):
    """ResNet basic block: ``act(bn2(conv2(act(bn1(conv1(x))))) + shortcut(x))``.

    Args:
        in_channels: input channels.
        out_channels: output channels (default: ``in_channels``).
        stride: stride of the first 3x3 convolution.
        dilation: dilation of both convolutions.
        norm_layer: norm name/class.
        act_layer: activation name/class.
        attn_layer: attention block on the residual branch (``"se"``, ``"eca"``, ...), or ``None``.
        se_ratio: squeeze ratio given to the attention block when it takes ``rd_ratio``.
        drop_path: stochastic-depth rate on the residual branch.
        downsample: ``None`` = projection only when needed; ``True`` = always.
        zero_init_last: zero the last norm's scale (the branch starts as zero).

    Example:
        >>> ResidualBlock(64, 128, stride=2)(torch.randn(1, 64, 16, 16)).shape
        torch.Size([1, 128, 8, 8])
    """

    OUTPUT_RULE = "out_channels; spatial / stride"

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 1, dilation: int = 1,
                 norm_layer: LayerType = "batch", act_layer: LayerType = "relu", attn_layer: Any = None,
                 se_ratio: float = 1 / 16, drop_path: float = 0.0, downsample: bool | None = None,
                 zero_init_last: bool = False, device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        out_channels = in_channels if out_channels is None else out_channels
        check_channels("in_channels", in_channels, "residual")
        check_channels("out_channels", out_channels, "residual")
        check_int("stride", stride, owner="residual")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.zero_init_last = zero_init_last
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=dilation, dilation=dilation,
                               bias=False, **dd)
        self.bn1 = create_norm(norm_layer, out_channels, **dd)
        self.act1 = create_act(act_layer, inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False,
                               **dd)
        self.bn2 = create_norm(norm_layer, out_channels, **dd)
        self.attn = create_attn(attn_layer, out_channels, se_ratio=se_ratio, owner="residual", **dd)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.act2 = create_act(act_layer, inplace=True)
        self.downsample = make_shortcut(in_channels, out_channels, stride, norm_layer, downsample, "residual", dd)

    def _init_weights(self) -> None:
        if self.zero_init_last and getattr(self.bn2, "weight", None) is not None:
            nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = self.drop_path(self.attn(out))
        out += shortcut  # in place, as torchvision: one less feature-map allocation
        return self.act2(out)
