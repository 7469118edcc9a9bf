"""The older release's ``torchvision_customizer.layers`` names, done right, and the deprecation helper.

Older-release layer names and where they stand (``COMPATIBILITY.md`` has the full table):

* current API, no warning: ``StochasticPool2d`` (Zeiler & Fergus sampling, vectorized),
  ``PositionalEncoding`` (sinusoidal), ``ChannelAttention`` (the registered block),
  ``SpatialAttention`` (the registered block; calling it without ``in_channels`` is the old
  convention and warns);
* kept only for compatibility (one ``DeprecationWarning`` per instantiation, naming the new
  spelling): ``PoolingBlock``, ``LPPool2d``, ``ChannelSpatialAttention``, ``MultiHeadAttention``,
  ``AttentionBlock``.

The block-backed names are defined on first access (``blocks`` imports ``layers``, so this module
must not import ``blocks`` while ``layers`` is being imported).

:func:`deprecated` / :func:`warn_deprecated` are the one deprecation mechanism of every compat module.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BlockArgumentError, BlockValueError
from .helpers import check_channels, check_float, check_int
from .pools import get_pooling

__all__ = [
    "AttentionBlock",  # noqa: F822 - defined on first access
    "ChannelAttention",  # noqa: F822
    "ChannelSpatialAttention",  # noqa: F822
    "LPPool2d",
    "MultiHeadAttention",
    "PoolingBlock",
    "PositionalEncoding",
    "SpatialAttention",  # noqa: F822
    "StochasticPool2d",
    "deprecated",
    "warn_deprecated",
]

T = TypeVar("T")


# ============================================================================= deprecation
def warn_deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Emit the one ``DeprecationWarning`` of an older-release name, naming the new spelling."""
    warnings.warn(f"{old} is deprecated and kept only for compatibility with torchvision-customizer 2.x; "
                  f"use {new}", DeprecationWarning, stacklevel=stacklevel)


def deprecated(new: str, old: str | None = None) -> Callable[[T], T]:
    """Mark a class (warns when it is instantiated, not for subclasses) or a function as compat-only."""

    def deco(obj: Any) -> Any:
        label = old or obj.__name__
        if isinstance(obj, type):
            init = obj.__init__

            @functools.wraps(init)
            def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
                if type(self) is obj:
                    warn_deprecated(label, new)
                init(self, *args, **kwargs)

            obj.__init__ = __init__
            obj.__deprecated__ = new
            return obj

        @functools.wraps(obj)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            warn_deprecated(label, new)
            return obj(*args, **kwargs)

        wrapper.__deprecated__ = new  # type: ignore[attr-defined]
        return wrapper

    return deco


def _pair(v: Any, name: str, owner: str) -> tuple[int, int]:
    if isinstance(v, (tuple, list)) and len(v) == 2:
        return (check_int(name, v[0], owner=owner), check_int(name, v[1], owner=owner))
    k = check_int(name, v, owner=owner)
    return (k, k)


# ============================================================================= pooling
@deprecated("get_pooling(pool_type, kernel_size, stride, padding=...) followed by nn.Dropout2d, or the "
            "registered 'max_pool' / 'avg_pool' blocks")
class PoolingBlock(nn.Module):
    """Older-release pooling + optional ``Dropout2d``: ``PoolingBlock('max', kernel_size=2, dropout_rate=0.1)``.

    ``pool_type`` is ``max``, ``avg`` (``kernel_size`` default 2, ``stride`` default the kernel,
    ``padding``), ``adaptive_max``, ``adaptive_avg`` (``output_size`` default 1) or ``none``.
    """

    def __init__(self, pool_type: str = "max", kernel_size: Any = None, stride: Any = None, padding: int = 0,
                 dropout_rate: float = 0.0, output_size: Any = None) -> None:
        super().__init__()
        if not isinstance(pool_type, str):
            raise BlockArgumentError("pool_type must be a string", where="PoolingBlock", got=pool_type,
                                     expected="max, avg, adaptive_max, adaptive_avg or none")
        key = pool_type.strip().lower()
        check_float("dropout_rate", dropout_rate, lo=0.0, hi=1.0, hi_open=True, owner="PoolingBlock")
        check_int("padding", padding, minimum=0, owner="PoolingBlock")
        self.pool_type = key
        self.padding = padding
        self.dropout_rate = float(dropout_rate)
        if key in ("max", "avg"):
            self.kernel_size = 2 if kernel_size is None else kernel_size
            self.stride = self.kernel_size if stride is None else stride
            self.output_size = None
            self.pool = get_pooling(key, self.kernel_size, self.stride, padding=padding)
        elif key in ("adaptive_max", "adaptive_avg"):
            self.kernel_size = self.stride = None
            self.output_size = 1 if output_size is None else output_size
            self.pool = get_pooling(key, output_size=self.output_size)
        else:
            self.kernel_size = self.stride = self.output_size = None
            self.pool = get_pooling(key)  # "none" -> Identity; anything else raises with the choices
        self.dropout = nn.Dropout2d(self.dropout_rate) if self.dropout_rate > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.pool(x))

    def calculate_output_size(self, input_height: int, input_width: int) -> tuple[int, int]:
        """Output ``(H, W)`` for an input of ``(input_height, input_width)`` (padding included)."""
        if self.output_size is not None:
            o = self.output_size
            return (o, o) if isinstance(o, int) else tuple(o)  # type: ignore[return-value]
        if self.kernel_size is None:
            return (input_height, input_width)
        kh, kw = _pair(self.kernel_size, "kernel_size", "PoolingBlock")
        sh, sw = _pair(self.stride, "stride", "PoolingBlock")
        p = self.padding
        return ((input_height + 2 * p - kh) // sh + 1, (input_width + 2 * p - kw) // sw + 1)


class StochasticPool2d(nn.Module):
    """Stochastic pooling (Zeiler & Fergus, "Stochastic Pooling for Regularization of Deep CNNs", ICLR 2013).

    In training each window outputs one of its activations, drawn with probability proportional to
    the activation (``p_i = a_i / sum_j a_j``, the paper's rule; inputs are expected to be
    non-negative, as after a ReLU, and negative values count as 0). In evaluation it is max pooling,
    as the older release documented. One vectorized draw per window (no Python loop over pixels).

    Args:
        kernel_size: window size (int or pair), default 2.
        stride: window stride, default the kernel size.
        padding: zero padding on each side.
    """

    def __init__(self, kernel_size: Any = 2, stride: Any = None, padding: int = 0) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size", "StochasticPool2d")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", "StochasticPool2d")
        self.padding = check_int("padding", padding, minimum=0, owner="StochasticPool2d")
        if 2 * self.padding > min(self.kernel_size):
            raise BlockValueError("padding must be at most half the kernel size", where="StochasticPool2d",
                                  expected=f"<= {min(self.kernel_size) // 2}", got=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)
        n, c, h, w = x.shape
        kh, kw = self.kernel_size
        p = self.padding
        oh = (h + 2 * p - kh) // self.stride[0] + 1
        ow = (w + 2 * p - kw) // self.stride[1] + 1
        a = x.clamp(min=0)
        cols = F.unfold(a, self.kernel_size, padding=p, stride=self.stride)  # (N, C*kh*kw, L)
        cols = cols.view(n, c, kh * kw, oh * ow).transpose(2, 3).reshape(-1, kh * kw)  # one row per window
        total = cols.sum(1, keepdim=True)
        probs = torch.where(total > 0, cols / total.clamp_min(torch.finfo(cols.dtype).tiny), 1.0 / (kh * kw))
        idx = torch.multinomial(probs.detach().float(), 1)
        return cols.gather(1, idx).view(n, c, oh, ow)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


@deprecated("torch.nn.LPPool2d(norm_type, kernel_size, stride)")
class LPPool2d(nn.LPPool2d):
    """Older-release ``LPPool2d(norm_type=2.0, kernel_size=2, stride=None)``: ``torch.nn.LPPool2d``."""

    def __init__(self, norm_type: float = 2.0, kernel_size: Any = 2, stride: Any = None,
                 ceil_mode: bool = False) -> None:
        check_float("norm_type", norm_type, lo=0.0, lo_open=True, owner="LPPool2d")
        super().__init__(norm_type, kernel_size, stride, ceil_mode)


# ============================================================================= sequences
@deprecated("torch.nn.MultiheadAttention(embed_dim, num_heads, batch_first=True) (or the registered 'mhsa' "
            "block on feature maps)")
class MultiHeadAttention(nn.MultiheadAttention):
    """Older-release multi-head attention: ``forward(query, key=None, value=None, attention_mask=None)``.

    Returns ``(output, per-head weights (N, heads, L, S))`` as documented. ``attention_mask`` keeps
    the older convention (1/True = attend, 0/False = masked) with shape ``(L, S)``, ``(N, L, S)``
    or ``(N, 1 | heads, L, S)``. Unlike the older release, keys/values may have a different length
    than the query, and ``batch_first=False`` inputs ``(L, N, E)`` work.
    """

    def __init__(self, embed_dim: int, num_heads: int = 8, dropout: float = 0.0, bias: bool = True,
                 batch_first: bool = True) -> None:
        check_channels("embed_dim", embed_dim, "MultiHeadAttention")
        check_int("num_heads", num_heads, owner="MultiHeadAttention")
        if embed_dim % num_heads:
            raise BlockValueError("embed_dim must be divisible by num_heads", where="MultiHeadAttention",
                                  expected=f"a multiple of {num_heads}", got=embed_dim)
        check_float("dropout", dropout, lo=0.0, hi=1.0, hi_open=True, owner="MultiHeadAttention")
        super().__init__(embed_dim, num_heads, dropout=dropout, bias=bias, batch_first=batch_first)

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None,  # type: ignore[override]
                value: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        key = query if key is None else key
        value = key if value is None else value
        mask = None
        if attention_mask is not None:
            blocked = attention_mask == 0
            if blocked.dim() == 3:  # (N, L, S) -> (N * heads, L, S)
                blocked = blocked.repeat_interleave(self.num_heads, dim=0)
            elif blocked.dim() == 4:  # (N, 1 | heads, L, S)
                nb = blocked.shape[0]
                blocked = blocked.expand(nb, self.num_heads, *blocked.shape[2:]).reshape(-1, *blocked.shape[2:])
            mask = blocked
        out, weights = super().forward(query, key, value, attn_mask=mask, need_weights=True,
                                       average_attn_weights=False)
        return out, weights  # type: ignore[return-value]


class PositionalEncoding(nn.Module):
    """Sinusoidal position encoding (Vaswani et al., 2017); ``forward(x)`` returns the encoding, not ``x + pe``.

    Use it as ``x = x + pos_enc(x)`` for ``x`` of shape ``(N, L, d_model)``; the result is
    ``(1, L, d_model)`` after dropout. Odd ``d_model`` works; a sequence longer than ``max_len`` is
    an error (the older release returned a shorter encoding that then failed to broadcast).
    """

    def __init__(self, d_model: int, max_len: int = 5000, dropout: float = 0.1) -> None:
        super().__init__()
        check_channels("d_model", d_model, "PositionalEncoding")
        check_int("max_len", max_len, owner="PositionalEncoding")
        check_float("dropout", dropout, lo=0.0, hi=1.0, hi_open=True, owner="PositionalEncoding")
        self.d_model, self.max_len = d_model, max_len
        self.dropout = nn.Dropout(dropout)
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div[: d_model // 2])
        self.register_buffer("pe", pe.unsqueeze(0), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        if n > self.max_len:
            raise BlockValueError("sequence longer than max_len", where="PositionalEncoding",
                                  expected=f"<= {self.max_len} positions", got=n,
                                  hint="build it with a larger max_len")
        return self.dropout(self.pe[:, :n])

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


# ============================================================================= block-backed names
_BLOCK_BACKED = ("AttentionBlock", "ChannelAttention", "ChannelSpatialAttention", "SpatialAttention")


class _CrossGate(nn.Module):
    """``x * sigmoid(conv(relu(conv(x))))``: the older ``AttentionBlock``'s cross-channel gate."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(1, channels // 2)
        self.gate = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


def _define_block_backed() -> None:
    from ..blocks.cbam import CBAMBlock
    from ..blocks.channel_attention import ChannelAttention as _ChannelAttention
    from ..blocks.spatial_attention import SpatialAttention as _SpatialAttention

    class SpatialAttention(_SpatialAttention):
        """CBAM's spatial gate (the registered ``spatial_attention`` block) at its older-release home.

        The older release took no channels (``SpatialAttention(kernel_size=7)``); that call still
        works (channel-agnostic, ``in_channels`` is ``None``) but warns: pass the channels first.
        """

        def __init__(self, in_channels: int | None = None, kernel_size: int = 7, norm_layer: Any = "batch",
                     gate_layer: Any = "sigmoid", device: Any = None, dtype: torch.dtype | None = None) -> None:
            if in_channels is None:
                warn_deprecated("SpatialAttention() without in_channels", "SpatialAttention(in_channels, "
                                "kernel_size=7)", stacklevel=4)
            super().__init__(1 if in_channels is None else in_channels, kernel_size, norm_layer, gate_layer,
                             device=device, dtype=dtype)
            if in_channels is None:
                self.in_channels = self.out_channels = None

    @deprecated("CBAMBlock(channels, rd_ratio=1/16, spatial_kernel_size=7) (registered 'cbam_block')")
    class ChannelSpatialAttention(CBAMBlock):
        """Older-release channel-then-spatial attention: CBAM (avg- and max-pooled channel MLP, spatial gate)."""

        def __init__(self, channels: int, channel_reduction: int = 16, spatial_kernel: int = 7) -> None:
            check_int("channel_reduction", channel_reduction, owner="ChannelSpatialAttention")
            check_channels("channels", channels, "ChannelSpatialAttention")
            super().__init__(channels, rd_channels=max(1, channels // channel_reduction),
                             spatial_kernel_size=spatial_kernel)

    @deprecated("CBAMBlock (channel + spatial attention; registered 'cbam_block'), or ChannelAttention / "
                "SpatialAttention")
    class AttentionBlock(nn.Module):
        """Older-release combination: channel attention, spatial attention, optional cross-channel gate.

        Disabled parts are ``nn.Identity`` (straight-line forward: fx, export and TorchScript work;
        the older release failed TorchScript on the missing ``cross_attn``).
        """

        def __init__(self, channels: int, use_channel: bool = True, use_spatial: bool = True,
                     use_cross: bool = False, channel_reduction: int = 16, spatial_kernel: int = 7) -> None:
            super().__init__()
            check_channels("channels", channels, "AttentionBlock")
            check_int("channel_reduction", channel_reduction, owner="AttentionBlock")
            self.in_channels = self.out_channels = channels
            rd = max(1, channels // channel_reduction)
            self.channel_attn = _ChannelAttention(channels, rd_channels=rd) if use_channel else nn.Identity()
            self.spatial_attn = _SpatialAttention(channels, spatial_kernel) if use_spatial else nn.Identity()
            self.cross_attn = _CrossGate(channels) if use_cross else nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.cross_attn(self.spatial_attn(self.channel_attn(x)))

    for cls in (SpatialAttention, ChannelSpatialAttention, AttentionBlock):
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
    globals().update(ChannelAttention=_ChannelAttention, SpatialAttention=SpatialAttention,
                     ChannelSpatialAttention=ChannelSpatialAttention, AttentionBlock=AttentionBlock)


def __getattr__(name: str) -> Any:
    if name in _BLOCK_BACKED:
        _define_block_backed()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
