"""``layer_scale``: LayerScale, a learnable per-channel scale on a residual branch.

Touvron et al., "Going deeper with Image Transformers" (CaiT), ICCV 2021 (arXiv:2103.17239):
the branch output is multiplied by a diagonal matrix ``diag(gamma)`` initialized to a small
``init_values`` (1e-5 here; the paper uses 0.1 / 1e-5 / 1e-6 by depth), so a deep stack starts
close to the identity. Departure: applied to NCHW feature maps (``gamma`` broadcast over H and W,
stored with shape (C,) as timm's ``LayerScale2d``) instead of tokens.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..layers import check_channels, check_float
from ._base import Block, register_block

__all__ = ["LayerScale"]


@register_block("layer_scale", category="regularization", aliases=("layerscale",))
class LayerScale(Block):
    """``x * gamma[None, :, None, None]`` with a learnable ``gamma`` of ``in_channels`` entries.

    Args:
        in_channels: channels (also accepted as ``channels=`` and, as in the older release, ``dim=``).
        init_values: initial value of every ``gamma`` entry (legacy ``init_value=``).

    Example:
        >>> LayerScale(8, init_values=0.5)(torch.ones(1, 8, 2, 2)).sum().item()
        16.0
    """

    def __init__(self, in_channels: int, init_values: float = 1e-5, device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        check_channels("in_channels", in_channels, "layer_scale")
        self.init_values = check_float("init_values", init_values, owner="layer_scale")
        self.in_channels = self.out_channels = in_channels
        self.gamma = nn.Parameter(torch.empty(in_channels, device=device, dtype=dtype))

    def _init_weights(self) -> None:
        with torch.no_grad():
            self.gamma.fill_(self.init_values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, init_values={self.init_values}"
