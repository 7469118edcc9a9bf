"""``non_local``: the non-local block (embedded Gaussian).

Wang et al., "Non-local Neural Networks", CVPR 2018 (arXiv:1711.07971), Sec. 3.2-3.3, 2-D
(spatial) version: ``theta``, ``phi`` and ``g`` are 1x1 convolutions to ``C / 2`` channels,
``y = softmax(theta(x)^T phi(x)) g(x)`` over all positions (no scaling, as the embedded-Gaussian
form of the paper), and ``z = W_z(y) + x`` where ``W_z`` is a 1x1 convolution back to ``C``
channels followed by BatchNorm whose scale is initialized to zero, so the block is the identity at
initialization (the paper's recommendation). ``sub_sample=True`` adds the paper's 2x2 max pooling
after ``phi`` and ``g`` (4x fewer keys). Departures: the attention is computed with
``F.scaled_dot_product_attention`` (same result, fused kernels where available); without a norm
(``norm_layer=None``) the output convolution itself is zero-initialized instead.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import LayerType, check_channels, create_norm
from ._base import Block, register_block
from .se import reduced_channels

__all__ = ["NonLocalBlock"]


@register_block("non_local", category="attention", aliases=("nonlocal", "non_local_block", "nl_block"))
class NonLocalBlock(Block):
    """Non-local block: ``x + norm(W_z(softmax(theta^T phi) g))``, the identity at initialization.

    Args:
        in_channels: channels (also accepted as ``channels=``).
        rd_ratio: embedding width of theta/phi/g relative to ``in_channels`` (1/2 in the paper).
        rd_channels: explicit embedding width, overrides ``rd_ratio``.
        sub_sample: 2x2 max pooling on the keys and values (``phi``, ``g``).
        norm_layer: norm after the output convolution (BatchNorm), or ``None``.
        zero_init: zero the output norm's scale (or the output convolution without a norm).

    Example:
        >>> x = torch.randn(2, 64, 8, 8)
        >>> torch.equal(NonLocalBlock(channels=64).eval()(x), x)
        True
    """

    def __init__(self, in_channels: int, rd_ratio: float = 1 / 2, rd_channels: int | None = None,
                 sub_sample: bool = False, norm_layer: LayerType = "batch", zero_init: bool = True,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = self.block_name or "non_local"
        check_channels("in_channels", in_channels, name)
        inter = reduced_channels(in_channels, rd_ratio, rd_channels, 1, name)
        self.in_channels = self.out_channels = in_channels
        self.inter_channels = inter
        self.zero_init = zero_init
        self.theta = nn.Conv2d(in_channels, inter, 1, bias=True, **dd)
        self.phi = nn.Conv2d(in_channels, inter, 1, bias=True, **dd)
        self.g = nn.Conv2d(in_channels, inter, 1, bias=True, **dd)
        self.pool = nn.MaxPool2d(2) if sub_sample else nn.Identity()
        self.norm = create_norm(norm_layer, in_channels, **dd)
        self.out_conv = nn.Conv2d(inter, in_channels, 1, bias=isinstance(self.norm, nn.Identity), **dd)

    def _init_weights(self) -> None:
        if not self.zero_init:
            return
        weight = getattr(self.norm, "weight", None)
        if isinstance(weight, torch.Tensor):
            nn.init.zeros_(weight)
        else:
            nn.init.zeros_(self.out_conv.weight)
            if self.out_conv.bias is not None:
                nn.init.zeros_(self.out_conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        theta = self.theta(x)  # (N, C', H, W)
        q = theta.flatten(2).transpose(1, 2)  # (N, HW, C')
        k = self.pool(self.phi(x)).flatten(2).transpose(1, 2)  # (N, HW', C')
        v = self.pool(self.g(x)).flatten(2).transpose(1, 2)  # (N, HW', C')
        y = F.scaled_dot_product_attention(q, k, v, scale=1.0)  # softmax(q k^T) v, (N, HW, C')
        y = y.transpose(1, 2).reshape_as(theta)
        return x + self.norm(self.out_conv(y))
