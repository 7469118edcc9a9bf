"""Normalization layers by name: the ``norms`` registry and its factory.

Every norm constructor here takes ``num_channels`` first, so any ``norm_layer`` argument accepts a
registered name (``"batch"``, ``"group"``, ``"layer"``, ...), a class or a callable. ``"layer"`` is
:class:`LayerNorm2d`, a channels-first LayerNorm that works on NCHW maps (the older release used
``nn.LayerNorm(C)``, which fails on NCHW).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BlockArgumentError, BlockValueError
from ..registry import NORMS

__all__ = [
    "BatchNorm2d",
    "FrozenBatchNorm2d",
    "GroupNorm",
    "InstanceNorm2d",
    "LayerNorm2d",
    "create_norm",
    "get_normalization",
    "resolve_norm_layer",
]

BatchNorm2d = nn.BatchNorm2d


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channel dimension of an NCHW tensor (as in ConvNeXt)."""

    def __init__(self, num_channels: int, eps: float = 1e-6, affine: bool = True,
                 device: Any = None, dtype: torch.dtype | None = None) -> None:
        super().__init__(num_channels, eps=eps, elementwise_affine=affine, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, C, H, W) -> normalize over C
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def _default_groups(num_channels: int) -> int:
    for g in range(min(32, num_channels), 0, -1):
        if num_channels % g == 0:
            return g
    return 1


class GroupNorm(nn.GroupNorm):
    """GroupNorm taking ``num_channels`` first.

    ``num_groups`` defaults to 32, or to the largest divisor of ``num_channels`` below 32 when 32
    does not divide it (a documented rule, not a fallback: an explicit ``num_groups`` that does not
    divide the channels is an error).
    """

    def __init__(self, num_channels: int, num_groups: int | None = None, eps: float = 1e-5,
                 affine: bool = True, device: Any = None, dtype: torch.dtype | None = None) -> None:
        if num_groups is None:
            num_groups = _default_groups(num_channels)
        elif num_channels % num_groups:
            raise BlockValueError("GroupNorm needs num_groups to divide num_channels", where="norm_layer",
                                  expected=f"a divisor of {num_channels}", got=num_groups)
        super().__init__(num_groups, num_channels, eps=eps, affine=affine, device=device, dtype=dtype)


class InstanceNorm2d(nn.InstanceNorm2d):
    """InstanceNorm with learnable affine parameters by default (so norm swaps can transfer them)."""

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True,
                 track_running_stats: bool = False, device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__(num_channels, eps=eps, affine=affine, track_running_stats=track_running_stats,
                         device=device, dtype=dtype)


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm2d with fixed statistics and affine parameters (buffers, never trained).

    State-dict keys match ``nn.BatchNorm2d`` (``weight``, ``bias``, ``running_mean``,
    ``running_var``); a ``num_batches_tracked`` entry in a loaded state dict is accepted and dropped.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, device: Any = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.num_features = num_channels
        self.eps = eps
        dd = {"device": device, "dtype": dtype}
        self.register_buffer("weight", torch.ones(num_channels, **dd))
        self.register_buffer("bias", torch.zeros(num_channels, **dd))
        self.register_buffer("running_mean", torch.zeros(num_channels, **dd))
        self.register_buffer("running_var", torch.ones(num_channels, **dd))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.fill_(1.0)
            self.bias.zero_()
            self.running_mean.zero_()
            self.running_var.fill_(1.0)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):  # type: ignore[no-untyped-def]
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


_BUILTIN: list[tuple[str, Callable[..., nn.Module], tuple[str, ...]]] = [
    ("batch", nn.BatchNorm2d, ("bn", "batchnorm", "batch_norm", "batchnorm2d")),
    ("group", GroupNorm, ("gn", "groupnorm", "group_norm")),
    ("layer", LayerNorm2d, ("ln", "layernorm", "layer_norm", "layernorm2d")),
    ("instance", InstanceNorm2d, ("in", "instancenorm", "instance_norm")),
    ("frozen_batch", FrozenBatchNorm2d, ("frozen_bn", "frozenbatchnorm", "frozen_batchnorm")),
    ("none", nn.Identity, ("identity",)),
]
for _name, _cls, _aliases in _BUILTIN:
    NORMS.register(_name, _cls, category="norm", aliases=_aliases)

# torch classes whose constructor does not take ``num_channels`` first are mapped to ours.
_TORCH_EQUIVALENTS: dict[Any, Callable[..., nn.Module]] = {
    nn.GroupNorm: GroupNorm,
    nn.LayerNorm: LayerNorm2d,
    nn.InstanceNorm2d: InstanceNorm2d,
}


def resolve_norm_layer(layer: Any) -> Callable[..., nn.Module] | None:
    """Turn a name / class / callable into a ``ctor(num_channels, ...)``; ``None``/"none" -> ``None``."""
    if layer is None or layer is False:
        return None
    if isinstance(layer, str):
        if layer.strip().lower() in ("none", "identity", ""):
            return None
        return NORMS.get(layer)
    if isinstance(layer, nn.Module):
        raise BlockArgumentError("norm_layer must be a class, callable or name, not a module instance",
                                 expected="e.g. 'batch', nn.BatchNorm2d or functools.partial(GroupNorm, "
                                 "num_groups=8)", got=layer)
    if callable(layer):
        return _TORCH_EQUIVALENTS.get(layer, layer)
    raise BlockArgumentError("norm_layer has the wrong type", expected="a name, class, callable or None",
                             got=layer)


def create_norm(layer: Any, num_channels: int, *, device: Any = None, dtype: torch.dtype | None = None,
                **kwargs: Any) -> nn.Module:
    """Instantiate a norm for ``num_channels`` channels (``nn.Identity`` for ``None``).

    Example:
        >>> create_norm("gn", 64)
        GroupNorm(32, 64, eps=1e-05, affine=True)
    """
    ctor = resolve_norm_layer(layer)
    if ctor is None:
        return nn.Identity()
    if device is not None or dtype is not None:
        kwargs.update(device=device, dtype=dtype)
    return ctor(num_channels, **kwargs)


def get_normalization(norm_type: Any, num_channels: int, **kwargs: Any) -> nn.Module:
    """Older-release spelling of :func:`create_norm`: ``get_normalization("batch", 64)``."""
    return create_norm(norm_type, num_channels, **kwargs)
