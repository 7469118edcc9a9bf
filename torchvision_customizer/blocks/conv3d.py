"""``conv3d``: 3-D convolution -> norm -> activation for volumes and clips (N, C, D, H, W).

The 3-D form of the VGG-style conv unit, as used by C3D (Tran et al., "Learning Spatiotemporal
Features with 3D Convolutional Networks", arXiv:1412.0767) with BatchNorm (Ioffe & Szegedy,
arXiv:1502.03167). Departures: configurable norm (batch, group, instance or none), activation,
dropout, and a single ``stride`` applied to depth, height and width alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import BlockArgumentError, BlockValueError
from ..layers import (
    GroupNorm,
    InstanceNorm2d,
    LayerType,
    check_channels,
    check_float,
    check_int,
    check_kernel,
    create_act,
)
from ..layers.conv import same_padding
from ..registry import normalize_name
from ._base import Block, register_block

__all__ = ["Conv3DBlock", "create_norm3d"]


def _instance_norm3d(num_channels: int, **kwargs: Any) -> nn.Module:
    return nn.InstanceNorm3d(num_channels, affine=True, **kwargs)


_NORMS_3D: dict[str, Callable[..., nn.Module]] = {
    "batch": nn.BatchNorm3d,
    "group": GroupNorm,
    "instance": _instance_norm3d,
}
_NORM_ALIASES_3D = {
    "bn": "batch", "batchnorm": "batch", "batch_norm": "batch", "batchnorm3d": "batch",
    "gn": "group", "groupnorm": "group", "group_norm": "group",
    "in": "instance", "instancenorm": "instance", "instance_norm": "instance", "instancenorm3d": "instance",
}
# 2-D classes given by class are mapped to their 3-D counterparts
_CLASS_3D: dict[Any, Callable[..., nn.Module]] = {
    nn.BatchNorm2d: nn.BatchNorm3d,
    nn.GroupNorm: GroupNorm,
    nn.InstanceNorm2d: _instance_norm3d,
    InstanceNorm2d: _instance_norm3d,
}


def create_norm3d(layer: LayerType, num_channels: int, *, device: Any = None, dtype: torch.dtype | None = None,
                  owner: str = "conv3d") -> nn.Module:
    """A norm for 5-D inputs: ``"batch"`` (BatchNorm3d), ``"group"``, ``"instance"`` (affine) or ``None``.

    A class or callable is called as ``layer(num_channels, device=..., dtype=...)``; the 2-D torch
    classes (``nn.BatchNorm2d``, ``nn.InstanceNorm2d``, ``nn.GroupNorm``) map to their 3-D forms.
    """
    dd = {"device": device, "dtype": dtype}
    if layer is None or layer is False:
        return nn.Identity()
    if isinstance(layer, str):
        key = normalize_name(layer)
        if key in ("none", "identity", ""):
            return nn.Identity()
        key = _NORM_ALIASES_3D.get(key, key)
        if key not in _NORMS_3D:
            raise BlockValueError("unknown norm for a 3-D block", where=f"{owner}.norm_layer",
                                  expected="one of 'batch', 'group', 'instance' or None", got=layer)
        return _NORMS_3D[key](num_channels, **dd)
    if isinstance(layer, nn.Module) or not callable(layer):
        raise BlockArgumentError("norm_layer has the wrong type", where=f"{owner}.norm_layer",
                                 expected="'batch', 'group', 'instance', None, a class or a callable", got=layer)
    return _CLASS_3D.get(layer, layer)(num_channels, **dd)


@register_block("conv3d", category="convolution", aliases=("conv3d_block", "conv3dblock"))
class Conv3DBlock(Block):
    """Conv3d -> norm -> activation -> dropout on (N, C, D, H, W) inputs.

    Args:
        in_channels: input channels.
        out_channels: output channels (default: ``in_channels``).
        kernel_size: odd cubic kernel.
        stride: stride along depth, height and width.
        dilation: convolution dilation.
        groups: convolution groups.
        bias: conv bias; ``None`` = only without a norm.
        norm_layer: ``"batch"`` (BatchNorm3d), ``"group"``, ``"instance"`` (affine InstanceNorm3d),
            ``None``, or a class/callable taking the channel count.
        act_layer: activation name/class or ``None``.
        dropout: channel dropout (``nn.Dropout3d``) after the activation.

    Example:
        >>> Conv3DBlock(3, 16, stride=2)(torch.randn(1, 3, 8, 32, 32)).shape
        torch.Size([1, 16, 4, 16, 16])
    """

    OUTPUT_RULE = "out_channels; depth, height and width / stride (5-D input)"
    input_ndim = 5

    def __init__(self, in_channels: int, out_channels: int | None = None, kernel_size: int = 3,
                 stride: int = 1, dilation: int = 1, groups: int = 1, bias: bool | None = None,
                 norm_layer: LayerType = "batch", act_layer: LayerType = "relu", dropout: float = 0.0,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = "conv3d"
        out_channels = in_channels if out_channels is None else out_channels
        check_channels("in_channels", in_channels, name)
        check_channels("out_channels", out_channels, name)
        check_kernel("kernel_size", kernel_size, owner=name)
        check_int("stride", stride, owner=name)
        check_int("dilation", dilation, owner=name)
        check_int("groups", groups, owner=name)
        if in_channels % groups or out_channels % groups:
            raise BlockValueError("groups must divide in_channels and out_channels", where=f"{name}.groups",
                                  expected=f"a common divisor of {in_channels} and {out_channels}", got=groups)
        check_float("dropout", dropout, lo=0.0, hi=1.0, hi_open=True, owner=name)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.bn = create_norm3d(norm_layer, out_channels, owner=name, **dd)
        if bias is None:
            bias = isinstance(self.bn, nn.Identity)
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size, stride, same_padding(kernel_size, dilation),
                              dilation=dilation, groups=groups, bias=bias, **dd)
        self.act = create_act(act_layer, inplace=True)
        self.drop = nn.Dropout3d(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.act(self.bn(self.conv(x))))  # (N, out, D / s, H / s, W / s)
