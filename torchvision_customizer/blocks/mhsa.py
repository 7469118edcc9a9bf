"""``mhsa``: multi-head self-attention over the spatial positions of an NCHW map.

Vaswani et al., "Attention Is All You Need", NeurIPS 2017 (arXiv:1706.03762), applied to feature
maps as in BoTNet (Srinivas et al., "Bottleneck Transformers for Visual Recognition", CVPR 2021,
arXiv:2101.11605): every position attends to every position. Queries, keys and values come from
one 1x1 convolution to ``3 * C`` channels (no bias, as BoTNet), split into ``num_heads`` heads of
``C / num_heads`` channels; softmax attention with the ``1 / sqrt(head_dim)`` scale
(``F.scaled_dot_product_attention``); heads are concatenated and projected by a 1x1 convolution.
Returns a tensor of the input's shape. Departures: no position encoding (BoTNet's relative
position logits are left out, so the block is permutation-equivariant over positions), an output
projection as in the Transformer, and no residual connection (the surrounding block adds it).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BlockValueError
from ..layers import check_channels, check_float, check_int
from ._base import Block, register_block

__all__ = ["MultiHeadSelfAttention"]


@register_block("mhsa", category="attention",
                aliases=("multihead_attention", "mha", "multihead", "self_attention"))
class MultiHeadSelfAttention(Block):
    """Multi-head self-attention over the ``H * W`` positions: ``proj(attention(qkv(x)))``.

    Args:
        in_channels: channels (also accepted as ``channels=``); must be divisible by ``num_heads``.
        num_heads: number of attention heads.
        qkv_bias: give the query/key/value convolution a bias.
        proj_bias: give the output projection a bias.
        attn_drop: dropout on the attention weights (training only).

    Example:
        >>> MultiHeadSelfAttention(channels=64, num_heads=4)(torch.randn(2, 64, 8, 8)).shape
        torch.Size([2, 64, 8, 8])
    """

    def __init__(self, in_channels: int, num_heads: int = 4, qkv_bias: bool = False, proj_bias: bool = True,
                 attn_drop: float = 0.0, device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = self.block_name or "mhsa"
        check_channels("in_channels", in_channels, name)
        check_int("num_heads", num_heads, owner=name)
        if in_channels % num_heads:
            raise BlockValueError(
                f"num_heads ({num_heads}) must divide in_channels ({in_channels})", where=f"{name}.num_heads",
                expected=f"a divisor of in_channels={in_channels}", got=num_heads)
        self.attn_drop = check_float("attn_drop", attn_drop, lo=0.0, hi=1.0, hi_open=True, owner=name)
        self.in_channels = self.out_channels = in_channels
        self.num_heads = num_heads
        self.head_dim = in_channels // num_heads
        self.qkv = nn.Conv2d(in_channels, 3 * in_channels, 1, bias=qkv_bias, **dd)
        self.proj = nn.Conv2d(in_channels, in_channels, 1, bias=proj_bias, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, 3C, H, W) -> (N, 3, heads, head_dim, HW) -> q, k, v as (N, heads, HW, head_dim)
        qkv = self.qkv(x).flatten(2).unflatten(1, (3, self.num_heads, self.head_dim)).transpose(-1, -2)
        y = F.scaled_dot_product_attention(qkv[:, 0], qkv[:, 1], qkv[:, 2],
                                           dropout_p=self.attn_drop if self.training else 0.0)
        y = y.transpose(-1, -2).flatten(1, 2).reshape_as(x)  # (N, C, HW) -> (N, C, H, W)
        return self.proj(y)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}"
