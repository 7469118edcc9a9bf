"""The attention slot shared by residual and mobile blocks (``attn_layer`` argument)."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ..errors import BlockArgumentError
from ..registry import BLOCKS

__all__ = ["create_attn"]


def create_attn(attn_layer: Any, channels: int, *, se_ratio: float | None = None,
                device: Any = None, dtype: Any = None, owner: str = "block") -> nn.Module:
    """Build the attention module of a block's residual branch, or ``nn.Identity`` for ``None``.

    ``attn_layer`` is a registered block name (``"se"``, ``"eca"``, ``"cbam"`` ...), a class or a
    callable taking ``in_channels``. ``se_ratio`` is passed as ``rd_ratio`` to blocks that take it.
    """
    if attn_layer is None or attn_layer is False or (isinstance(attn_layer, str) and attn_layer.lower() == "none"):
        return nn.Identity()
    if isinstance(attn_layer, str):
        ctor = BLOCKS.get(attn_layer)
    elif callable(attn_layer) and not isinstance(attn_layer, nn.Module):
        ctor = attn_layer
    else:
        raise BlockArgumentError("attn_layer has the wrong type", where=f"{owner}.attn_layer",
                                 expected="a block name, class or callable, or None", got=attn_layer)
    kwargs: dict[str, Any] = {}
    try:
        accepted = inspect.signature(ctor).parameters
    except (TypeError, ValueError):
        accepted = {}
    if se_ratio is not None and "rd_ratio" in accepted:
        kwargs["rd_ratio"] = se_ratio
    if "device" in accepted:
        kwargs.update(device=device, dtype=dtype)
    module = ctor(channels, **kwargs)
    out = getattr(module, "out_channels", channels)
    if out != channels or getattr(module, "stride", 1) != 1:
        raise BlockArgumentError("attn_layer must keep the shape of its input", where=f"{owner}.attn_layer",
                                 expected=f"a same-shape block for {channels} channels",
                                 got=f"{attn_layer} -> {out} channels")
    return module
