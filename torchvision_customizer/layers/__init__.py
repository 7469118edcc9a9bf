"""Primitives: activation/norm/pool factories by name, conv-norm-act, shared helpers."""

from typing import Any

from .activations import LayerType, Mish, create_act, get_activation, resolve_act_layer
from .compat import LPPool2d, MultiHeadAttention, PoolingBlock, PositionalEncoding, StochasticPool2d
from .conv import ConvNormAct, same_padding
from .helpers import check_channels, check_float, check_int, check_kernel, dd_kwargs, make_divisible
from .norms import (
    FrozenBatchNorm2d,
    GroupNorm,
    InstanceNorm2d,
    LayerNorm2d,
    create_norm,
    get_normalization,
    resolve_norm_layer,
)
from .pools import GeM, GlobalAvgMaxPool, GlobalAvgPool, GlobalMaxPool, create_pool, get_pooling

__all__ = [
    "AttentionBlock",
    "ChannelAttention",
    "ChannelSpatialAttention",
    "ConvNormAct",
    "FrozenBatchNorm2d",
    "GeM",
    "GlobalAvgMaxPool",
    "GlobalAvgPool",
    "GlobalMaxPool",
    "GroupNorm",
    "InstanceNorm2d",
    "LPPool2d",
    "LayerNorm2d",
    "LayerType",
    "Mish",
    "MultiHeadAttention",
    "PoolingBlock",
    "PositionalEncoding",
    "SpatialAttention",
    "StochasticPool2d",
    "check_channels",
    "check_float",
    "check_int",
    "check_kernel",
    "create_act",
    "create_norm",
    "create_pool",
    "dd_kwargs",
    "get_activation",
    "get_normalization",
    "get_pooling",
    "make_divisible",
    "resolve_act_layer",
    "resolve_norm_layer",
    "same_padding",
]


# older-release layer names backed by blocks (which import layers): resolved on first access
_COMPAT_LAZY = ("AttentionBlock", "ChannelAttention", "ChannelSpatialAttention", "SpatialAttention")


def __getattr__(name: str) -> Any:
    if name in _COMPAT_LAZY:
        from . import compat

        value = getattr(compat, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
