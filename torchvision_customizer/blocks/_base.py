"""The block protocol: ``Block`` base class, legacy keyword table and ``register_block``.

Every registered block:

* takes ``in_channels`` first, then ``out_channels`` where the shape changes, ``stride``,
  ``act_layer``/``norm_layer`` by class or name, and ``device=None, dtype=None``;
* same-shape blocks (no ``out_channels`` argument) also accept ``channels=`` for ``in_channels``;
* exposes ``in_channels``, ``out_channels``, ``stride`` (spatial reduction) and ``layout``
  (``"nchw"``, ``"nhwc"`` or ``"tokens"``), and ``reset_parameters()``;
* rejects unknown keyword arguments with the accepted names (no silently dropped kwargs);
* accepts the older release's keyword names through one table, :data:`LEGACY_KWARGS`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, ClassVar

from torch import nn

from ..errors import BlockArgumentError, closest
from ..registry import BLOCKS

__all__ = ["LEGACY_KWARGS", "Block", "register_block"]


def _inverse(v: Any) -> float:
    return 1.0 / v


def _norm_from_flag(v: Any) -> str | None:
    return "batch" if v else None


def _se_from_flag(v: Any) -> str | None:
    return "se" if v else None


#: Older-release keyword -> (new keyword, value conversion or None). Applied only when the block
#: does not itself take the old name and does take the new one.
LEGACY_KWARGS: dict[str, tuple[str, Callable[[Any], Any] | None]] = {
    "activation": ("act_layer", None),
    "act": ("act_layer", None),
    "norm_type": ("norm_layer", None),
    "norm": ("norm_layer", None),
    "use_batchnorm": ("norm_layer", _norm_from_flag),
    "use_bn": ("norm_layer", _norm_from_flag),
    "reduction": ("rd_ratio", _inverse),
    "channel_reduction": ("rd_ratio", _inverse),
    "se_reduction": ("se_ratio", _inverse),
    "use_se": ("attn_layer", _se_from_flag),
    "kernel": ("kernel_size", None),
    "spatial_kernel": ("spatial_kernel_size", None),
    "dropout_rate": ("dropout", None),
    "drop_path_rate": ("drop_path", None),
    "expansion": ("expand_ratio", None),
    "gate_activation": ("gate_layer", None),
    "init_value": ("init_values", None),
    "pooling_type": ("pool", None),
    "pooling_kernel_size": ("pool_kernel_size", None),
    "pooling_stride": ("pool_stride", None),
    "use_downsample": ("downsample", None),
    "add_residual": ("residual", None),
    "dim": ("in_channels", None),
}


class Block(nn.Module):
    """Base class of every built-in block (plain ``nn.Module`` plus the protocol attributes)."""

    #: registry name, set by :func:`register_block`
    block_name: ClassVar[str] = ""
    #: human-readable rule for the output shape, shown by ``registry.info``
    OUTPUT_RULE: ClassVar[str] = "same shape as the input"
    #: keyword arguments (besides ``in_channels=16``) that give a small valid instance; the
    #: registry-wide tests build every block with them
    example_kwargs: ClassVar[dict[str, Any]] = {}

    # protocol attributes (set by every block's __init__); plain class attributes, not annotations,
    # so that TorchScript does not try to resolve them
    stride = 1
    layout = "nchw"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _checked_init(cls, cls.__dict__["__init__"])  # type: ignore[method-assign]

    def _init_weights(self) -> None:
        """Block-specific initialization on top of each child's own ``reset_parameters``."""

    def reset_parameters(self) -> None:
        """Re-initialize every parameter and buffer (use after meta-device construction).

        Calls ``reset_parameters`` on every non-block submodule (conv, linear, norms reset their
        running statistics too), then each block's ``_init_weights``, innermost first.
        """
        blocks: list[Block] = []
        for m in self.modules():
            if isinstance(m, Block):
                blocks.append(m)
            elif hasattr(m, "reset_parameters"):
                m.reset_parameters()
            elif hasattr(m, "reset_running_stats"):
                m.reset_running_stats()
        for b in reversed(blocks):
            b._init_weights()


def _checked_init(cls: type, init: Callable[..., None]) -> Callable[..., None]:
    sig = inspect.signature(init)
    params = [p for p in sig.parameters if p != "self"]
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    takes_out = "out_channels" in params

    @functools.wraps(init)
    def __init__(self: Block, *args: Any, **kwargs: Any) -> None:
        if not has_var_kw:
            kwargs = _translate(cls, params, takes_out, kwargs)
            try:
                sig.bind(self, *args, **kwargs)
            except TypeError as exc:
                raise BlockArgumentError(
                    f"cannot call {_block_label(cls)}: {exc}",
                    expected="arguments (" + ", ".join(params) + ")",
                    where=_block_label(cls),
                ) from None
        init(self, *args, **kwargs)
        if type(self) is cls:
            self._init_weights()

    return __init__


def _block_label(cls: type) -> str:
    name = getattr(cls, "block_name", "") or ""
    return f"block {name!r} ({cls.__name__})" if name else cls.__name__


def _translate(cls: type, params: list[str], takes_out: bool, kwargs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in params:
            target, conv = key, None
        elif key == "channels" and "in_channels" in params and not takes_out:
            target, conv = "in_channels", None
        elif key in LEGACY_KWARGS and LEGACY_KWARGS[key][0] in params:
            target, conv = LEGACY_KWARGS[key]
        else:
            valid = params + [k for k, (t, _) in LEGACY_KWARGS.items() if t in params]
            raise BlockArgumentError(
                f"{_block_label(cls)} got an unexpected argument {key!r}",
                where=_block_label(cls),
                expected="one of: " + ", ".join(params),
                got=key,
                suggestions=closest(key, valid),
            )
        if target in out or (target != key and target in kwargs):
            raise BlockArgumentError(
                f"{_block_label(cls)} got {target!r} twice (once as {key!r})",
                where=_block_label(cls), expected=f"only one of {key!r} and {target!r}", got=key)
        if conv is not None:
            try:
                value = conv(value)
            except (TypeError, ZeroDivisionError):
                raise BlockArgumentError(
                    f"{_block_label(cls)}: cannot convert legacy argument {key!r} to {target!r}",
                    where=_block_label(cls), expected="a positive number or a bool", got=value) from None
        out[target] = value
    return out


def register_block(name: str, *, category: str, aliases: tuple[str, ...] | list[str] = (),
                   force: bool = False) -> Callable[[type], type]:
    """Register a block class in the block registry and record its registry name on the class."""

    def deco(cls: type) -> type:
        cls.block_name = name  # type: ignore[attr-defined]
        BLOCKS.register(name, cls, category=category, aliases=tuple(aliases), force=force)
        return cls

    return deco
