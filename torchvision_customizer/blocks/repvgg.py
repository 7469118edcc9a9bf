"""``repvgg``: the structurally re-parameterizable RepVGG block.

Ding et al., "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021 (arXiv:2101.03697).
Training time: ``3x3`` conv-BN + ``1x1`` conv-BN + identity-BN (only when input and output shapes
match), summed, then the activation. :meth:`RepVGGBlock.reparameterize` folds the three branches
into a single ``3x3`` convolution with bias, in place, for inference; the block's ``forward`` is
the same line before and after (``act(attn(rep(x)))``), only the ``rep`` child is swapped from the
multi-branch module to one ``nn.Conv2d``. ``deploy=True`` builds the fused form directly (to load
fused weights). Departures: configurable kernel (odd, >= 3), groups and activation, and an
optional attention block after the sum (the RepVGG-SE placement).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BlockValueError
from ..layers import (
    FrozenBatchNorm2d,
    LayerType,
    check_channels,
    check_int,
    check_kernel,
    create_act,
    create_norm,
)
from ._attn import create_attn
from ._base import Block, register_block

__all__ = ["RepVGGBlock", "RepVGGBranches"]


def _conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int,
             norm_layer: LayerType, dd: dict[str, Any]) -> nn.Sequential:
    seq = nn.Sequential()
    seq.add_module("conv", nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                                     groups=groups, bias=False, **dd))
    seq.add_module("bn", create_norm(norm_layer, out_channels, **dd))
    return seq


def _fold_bn(kernel: torch.Tensor, bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kernel * scale, shift)`` so that ``bn(conv(x, kernel)) == conv(x, kernel') + bias'`` in eval."""
    if not isinstance(bn, (nn.BatchNorm2d, FrozenBatchNorm2d)) or bn.running_var is None:
        raise BlockValueError("only BatchNorm branches with running statistics can be re-parameterized",
                              where="repvgg.norm_layer", expected="norm_layer='batch'", got=type(bn).__name__)
    std = (bn.running_var + bn.eps).sqrt()
    weight = bn.weight if bn.weight is not None else torch.ones_like(std)
    bias = bn.bias if bn.bias is not None else torch.zeros_like(std)
    scale = weight / std
    return kernel * scale.reshape(-1, 1, 1, 1), bias - bn.running_mean * scale


class RepVGGBranches(nn.Module):
    """The training-time branches: ``dense(x) + pointwise(x) [+ identity(x)]``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, groups: int,
                 norm_layer: LayerType, device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        self.dense = _conv_bn(in_channels, out_channels, kernel_size, stride, groups, norm_layer, dd)
        self.pointwise = _conv_bn(in_channels, out_channels, 1, stride, groups, norm_layer, dd)
        self.identity = (create_norm(norm_layer, out_channels, **dd)
                         if stride == 1 and in_channels == out_channels else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.dense(x) + self.pointwise(x)
        if self.identity is not None:
            out = out + self.identity(x)
        return out

    @torch.no_grad()
    def fused_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(weight, bias)`` of the single ``k x k`` convolution equal to these branches in eval mode."""
        conv = self.dense.conv
        k = conv.kernel_size[0]
        kernel, bias = _fold_bn(conv.weight, self.dense.bn)
        k1, b1 = _fold_bn(self.pointwise.conv.weight, self.pointwise.bn)
        kernel = kernel + F.pad(k1, [k // 2] * 4)
        bias = bias + b1
        if self.identity is not None:
            in_per_group = conv.in_channels // conv.groups
            ident = torch.zeros_like(conv.weight)
            idx = torch.arange(conv.out_channels, device=ident.device)
            ident[idx, idx % in_per_group, k // 2, k // 2] = 1.0
            ki, bi = _fold_bn(ident, self.identity)
            kernel, bias = kernel + ki, bias + bi
        return kernel, bias


@register_block("repvgg", category="convolution", aliases=("repvgg_block", "repvggblock"))
class RepVGGBlock(Block):
    """``act(attn(conv3x3_bn(x) + conv1x1_bn(x) + bn(x)))``, fusable into one ``3x3`` conv.

    Args:
        in_channels: input channels.
        out_channels: output channels (default: ``in_channels``).
        stride: stride of both convolutions (the identity branch exists only at stride 1 and equal
            channels).
        kernel_size: odd kernel of the dense branch (3).
        groups: groups of both convolutions (RepVGG-g variants).
        norm_layer: norm of every branch; ``reparameterize`` needs ``"batch"``.
        act_layer: activation after the sum.
        attn_layer: optional attention block after the sum (``"se"`` as RepVGG-SE), or ``None``.
        se_ratio: squeeze ratio given to the attention block.
        deploy: build the fused single-convolution form directly.

    Example:
        >>> block = RepVGGBlock(32, 32).eval()
        >>> x = torch.randn(1, 32, 8, 8)
        >>> y = block(x)
        >>> torch.allclose(block.reparameterize()(x), y, atol=1e-5)
        True
    """

    OUTPUT_RULE = "out_channels; spatial / stride"

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 1, kernel_size: int = 3,
                 groups: int = 1, norm_layer: LayerType = "batch", act_layer: LayerType = "relu",
                 attn_layer: Any = None, se_ratio: float = 1 / 16, deploy: bool = False, device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = "repvgg"
        out_channels = in_channels if out_channels is None else out_channels
        check_channels("in_channels", in_channels, name)
        check_channels("out_channels", out_channels, name)
        check_int("stride", stride, owner=name)
        check_kernel("kernel_size", kernel_size, owner=name)
        if kernel_size < 3:
            raise BlockValueError("the dense branch needs a kernel of at least 3", where=f"{name}.kernel_size",
                                  expected="an odd integer >= 3", got=kernel_size)
        check_int("groups", groups, owner=name)
        if in_channels % groups or out_channels % groups:
            raise BlockValueError("groups must divide in_channels and out_channels", where=f"{name}.groups",
                                  expected=f"a common divisor of {in_channels} and {out_channels}", got=groups)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.kernel_size, self.groups = kernel_size, groups
        self.deploy = bool(deploy)
        self.rep: nn.Module
        if self.deploy:
            self.rep = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups,
                                 bias=True, **dd)
        else:
            self.rep = RepVGGBranches(in_channels, out_channels, kernel_size, stride, groups, norm_layer, **dd)
        self.attn = create_attn(attn_layer, out_channels, se_ratio=se_ratio, owner=name, **dd)
        self.act = create_act(act_layer, inplace=True)

    @torch.no_grad()
    def reparameterize(self) -> RepVGGBlock:
        """Fuse the branches into one ``k x k`` convolution, in place (no-op if already fused); returns ``self``.

        The fused block equals the multi-branch block in eval mode (BatchNorm running statistics).
        """
        if self.deploy:
            return self
        branches: RepVGGBranches = self.rep  # type: ignore[assignment]  # not deployed: the branches
        kernel, bias = branches.fused_kernel_bias()
        ref = branches.dense.conv.weight
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride, self.kernel_size // 2,
                         groups=self.groups, bias=True, device=ref.device, dtype=ref.dtype)
        conv.weight.copy_(kernel)
        conv.bias.copy_(bias)
        self.rep = conv
        self.deploy = True
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.attn(self.rep(x)))  # (N, out, H / s, W / s)
