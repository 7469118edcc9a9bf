"""Activation layers by name: the ``activations`` registry and its factory.

Every ``act_layer`` argument in the library accepts a registered name (``"silu"``,
``"swish"``), an ``nn.Module`` class, a callable returning a module, or ``None`` (identity).
Unknown names raise :class:`~torchvision_customizer.errors.UnknownComponentError`; nothing falls
back to ReLU silently.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeAlias

from torch import nn

from ..errors import BlockArgumentError
from ..registry import ACTIVATIONS

__all__ = ["LayerType", "Mish", "create_act", "get_activation", "resolve_act_layer"]

LayerType: TypeAlias = str | type[nn.Module] | Callable[..., nn.Module] | None

Mish = nn.Mish

_BUILTIN: list[tuple[str, type[nn.Module], tuple[str, ...]]] = [
    ("relu", nn.ReLU, ()),
    ("relu6", nn.ReLU6, ()),
    ("leaky_relu", nn.LeakyReLU, ("lrelu",)),
    ("prelu", nn.PReLU, ()),
    ("elu", nn.ELU, ()),
    ("selu", nn.SELU, ()),
    ("gelu", nn.GELU, ()),
    ("silu", nn.SiLU, ("swish",)),
    ("mish", nn.Mish, ()),
    ("hard_swish", nn.Hardswish, ("hardswish", "hswish")),
    ("hard_sigmoid", nn.Hardsigmoid, ("hardsigmoid", "hsigmoid")),
    ("sigmoid", nn.Sigmoid, ()),
    ("tanh", nn.Tanh, ()),
    ("identity", nn.Identity, ("linear", "none")),
]
for _name, _cls, _aliases in _BUILTIN:
    ACTIVATIONS.register(_name, _cls, category="activation", aliases=_aliases)


@functools.cache
def _accepts(cls: Any, arg: str) -> bool:
    try:
        return arg in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def resolve_act_layer(layer: LayerType) -> Callable[..., nn.Module] | None:
    """Turn a name / class / callable into a constructor (``None`` and ``"none"`` give ``None``)."""
    if layer is None or layer is False:
        return None
    if isinstance(layer, str):
        if layer.strip().lower() in ("none", ""):
            return None
        return ACTIVATIONS.get(layer)
    if isinstance(layer, nn.Module):
        raise BlockArgumentError("act_layer must be a class, callable or name, not a module instance",
                                 expected="e.g. 'relu', nn.SiLU or functools.partial(nn.LeakyReLU, 0.1)",
                                 got=layer)
    if callable(layer):
        return layer
    raise BlockArgumentError("act_layer has the wrong type", expected="a name, class, callable or None",
                             got=layer)


def create_act(layer: LayerType, *, inplace: bool = False, **kwargs: Any) -> nn.Module:
    """Instantiate an activation; ``inplace`` is passed only to layers that accept it.

    Example:
        >>> create_act("swish")
        SiLU()
    """
    ctor = resolve_act_layer(layer)
    if ctor is None:
        return nn.Identity()
    if inplace and _accepts(ctor, "inplace"):
        kwargs.setdefault("inplace", True)
    return ctor(**kwargs)


def get_activation(name: LayerType, **kwargs: Any) -> nn.Module:
    """Older-release spelling of :func:`create_act`: ``get_activation("relu", inplace=True)``."""
    return create_act(name, **kwargs)
