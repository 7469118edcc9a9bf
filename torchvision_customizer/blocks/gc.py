"""``gc``: the global context (GC) block of GCNet.

Cao et al., "GCNet: Non-local Networks Meet Squeeze-Excitation Networks and Beyond", ICCV-W 2019
(arXiv:1904.11492). Context modelling by attention pooling (a 1x1 convolution to one channel,
softmax over all ``H * W`` positions, weighted sum of the features), a bottleneck transform
(1x1 conv -> LayerNorm -> ReLU -> 1x1 conv, ratio 1/16 as the paper's main setting) and fusion by
broadcast addition (the paper's default) or, with ``fusion="scale"``, by multiplication with a
sigmoid gate. As in the authors' code, the attention convolution gets Kaiming-normal (fan-in)
initialization and, for addition fusion, the last transform convolution is zero-initialized so the
block starts as the identity. Departures: ``pool="avg"`` (the paper's ablation) replaces attention
pooling by average pooling, the hidden width is rounded to ``rd_divisor`` (1: the paper's ``C / r``
rounded), and the norm / activation / gate are configurable; ``"layer"`` is a LayerNorm over the
hidden channels of the ``(N, C', 1, 1)`` vector, i.e. the paper's ``LayerNorm([C', 1, 1])``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import BlockValueError
from ..layers import LayerType, check_channels, create_act, create_norm
from ._base import Block, register_block
from .se import reduced_channels

__all__ = ["GlobalContextBlock"]

_FUSIONS = ("add", "scale")
_POOLS = ("attention", "avg")


@register_block("gc", category="attention", aliases=("global_context", "gc_block", "gcnet"))
class GlobalContextBlock(Block):
    """Global context block: ``x + transform(attention_pool(x))`` (or ``x * gate(transform(...))``).

    Args:
        in_channels: channels (also accepted as ``channels=``).
        rd_ratio: bottleneck ratio of the transform (1/16 in the paper; legacy ``reduction=16``).
        rd_channels: explicit bottleneck width, overrides ``rd_ratio``.
        rd_divisor: round the bottleneck width to a multiple of this.
        fusion: ``"add"`` (paper default) or ``"scale"`` (sigmoid gate, SE-like).
        pool: ``"attention"`` (softmax-weighted sum, paper) or ``"avg"`` (global average).
        norm_layer: norm inside the transform (LayerNorm in the paper), or ``None``.
        act_layer: activation inside the transform.
        gate_layer: gate for ``fusion="scale"``.
        zero_init_last: zero the last transform convolution for ``fusion="add"`` (identity at init).

    Example:
        >>> GlobalContextBlock(channels=64)(torch.randn(2, 64, 8, 8)).shape
        torch.Size([2, 64, 8, 8])
    """

    def __init__(self, in_channels: int, rd_ratio: float = 1 / 16, rd_channels: int | None = None,
                 rd_divisor: int = 1, fusion: str = "add", pool: str = "attention",
                 norm_layer: LayerType = "layer", act_layer: LayerType = "relu",
                 gate_layer: LayerType = "sigmoid", zero_init_last: bool = True, device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        name = self.block_name or "gc"
        check_channels("in_channels", in_channels, name)
        rd = reduced_channels(in_channels, rd_ratio, rd_channels, rd_divisor, name)
        if fusion not in _FUSIONS:
            raise BlockValueError("unknown fusion", where=f"{name}.fusion",
                                  expected=" or ".join(map(repr, _FUSIONS)), got=fusion)
        if pool not in _POOLS:
            raise BlockValueError("unknown pool", where=f"{name}.pool",
                                  expected=" or ".join(map(repr, _POOLS)), got=pool)
        self.in_channels = self.out_channels = in_channels
        self.fusion, self.pool = fusion, pool
        self.zero_init_last = zero_init_last
        self.conv_attn = nn.Conv2d(in_channels, 1, 1, bias=True, **dd) if pool == "attention" else None
        self.fc1 = nn.Conv2d(in_channels, rd, 1, bias=True, **dd)
        self.norm = create_norm(norm_layer, rd, **dd)
        self.act = create_act(act_layer, inplace=True)
        self.fc2 = nn.Conv2d(rd, in_channels, 1, bias=True, **dd)
        self.gate = create_act(gate_layer) if fusion == "scale" else nn.Identity()

    def _init_weights(self) -> None:
        if self.conv_attn is not None:
            nn.init.kaiming_normal_(self.conv_attn.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(self.conv_attn.bias)
        if self.fusion == "add" and self.zero_init_last:
            nn.init.zeros_(self.fc2.weight)
            nn.init.zeros_(self.fc2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv_attn is None:
            context = x.mean((2, 3), keepdim=True)
        else:
            attn = self.conv_attn(x).flatten(2).softmax(-1)  # (N, 1, HW), weights over positions
            context = torch.matmul(x.flatten(2), attn.transpose(1, 2)).unsqueeze(-1)  # (N, C, 1, 1)
        t = self.fc2(self.act(self.norm(self.fc1(context))))
        if self.fusion == "add":
            return x + t
        return x * self.gate(t)
