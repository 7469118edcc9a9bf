"""``ConvNormAct``: convolution -> normalization -> activation, the primitive under most blocks.

Child names are ``conv``, ``bn`` and ``act`` (stable state-dict keys). ``padding=None`` gives
"same" padding for odd kernels (``dilation * (k - 1) // 2``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .activations import LayerType, create_act
from .norms import create_norm

__all__ = ["ConvNormAct", "same_padding"]


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps the spatial size at stride 1 for an odd kernel."""
    return dilation * (kernel_size - 1) // 2


class ConvNormAct(nn.Sequential):
    """Conv2d + norm + activation as one ``nn.Sequential`` (keys ``conv.*``, ``bn.*``).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel size.
        stride: convolution stride.
        padding: explicit padding; ``None`` means "same" padding.
        dilation: convolution dilation.
        groups: convolution groups (``groups=in_channels`` is depthwise).
        bias: conv bias; ``None`` means "only when there is no norm".
        norm_layer: norm name/class/callable, ``None`` for none.
        act_layer: activation name/class/callable, ``None`` for none.
        inplace: use in-place activations where supported.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, dilation: int = 1, groups: int = 1, bias: bool | None = None,
                 norm_layer: LayerType = "batch", act_layer: LayerType = "relu", inplace: bool = True,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        dd = {"device": device, "dtype": dtype}
        norm = create_norm(norm_layer, out_channels, **dd)
        has_norm = not isinstance(norm, nn.Identity)
        if bias is None:
            bias = not has_norm
        conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                         padding=same_padding(kernel_size, dilation) if padding is None else padding,
                         dilation=dilation, groups=groups, bias=bias, **dd)
        act = create_act(act_layer, inplace=inplace)
        modules: list[tuple[str, nn.Module]] = [("conv", conv)]
        if has_norm:
            modules.append(("bn", norm))
        if not isinstance(act, nn.Identity):
            modules.append(("act", act))
        super().__init__()
        for name, m in modules:
            self.add_module(name, m)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
