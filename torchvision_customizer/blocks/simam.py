"""``simam``: SimAM, a simple parameter-free attention module.

Yang et al., "SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural
Networks", ICML 2021. Each activation gets an inverse minimal energy
``e = (x - mu)^2 / (4 * (var + lambda)) + 1/2`` from the mean ``mu`` and variance ``var`` of its
channel (variance with ``n = H * W - 1``, as the paper's closed form), and the output is
``x * sigmoid(e)``. ``e_lambda = 1e-4`` as in the paper. No parameters and no departures; the
mean and variance are computed in one pass (``torch.var_mean``). Needs ``H * W > 1``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..layers import check_channels, check_float
from ._base import Block, register_block

__all__ = ["SimAM"]


@register_block("simam", category="attention", aliases=("simam_block",))
class SimAM(Block):
    """SimAM: ``x * sigmoid((x - mu)^2 / (4 * (var + e_lambda)) + 0.5)``, per channel, no parameters.

    Args:
        in_channels: channels (only recorded; also accepted as ``channels=``). ``None`` is allowed.
        e_lambda: the regularizer lambda of the energy function (1e-4 in the paper).

    Example:
        >>> SimAM(channels=64)(torch.randn(2, 64, 8, 8)).shape
        torch.Size([2, 64, 8, 8])
    """

    def __init__(self, in_channels: int | None = None, e_lambda: float = 1e-4, device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        name = self.block_name or "simam"
        if in_channels is not None:
            check_channels("in_channels", in_channels, name)
        self.e_lambda = check_float("e_lambda", e_lambda, lo=0.0, lo_open=True, owner=name)
        self.in_channels = self.out_channels = in_channels  # type: ignore[assignment]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var, mu = torch.var_mean(x, dim=(2, 3), correction=1, keepdim=True)
        d = (x - mu).square()
        return x * torch.sigmoid(d / (4 * (var + self.e_lambda)) + 0.5)

    def extra_repr(self) -> str:
        return f"e_lambda={self.e_lambda}"
