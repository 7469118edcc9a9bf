"""The builder's layer factories: spec -> the child modules of a stem, a stage or a head.

These functions are the *one* place where specs become modules; the ``>>`` composer and
:func:`~torchvision_customizer.build.build_model` both call them. Child names are stable
state-dict keys:

* stem: ``conv``, ``bn`` (any norm), ``act``, ``pool``;
* stage: ``proj`` (only when the block cannot change channels/stride itself), ``0`` ... ``n-1``
  (the blocks), ``transition`` (after a ``dense`` block), ``pool`` (stage pooling);
* head: ``norm``, ``norm_act`` (optional pre-pool norm), ``pool``, ``flatten`` (for
  ``pool_size > 1``), ``drop``, ``mlp`` (hidden layers: ``Linear, act[, Dropout]`` groups),
  ``fc``.

Errors raised by a block's constructor (our ``BlockArgumentError``/``BlockValueError``, and the
``TypeError``/``ValueError`` a block lets through for a badly typed argument) are reported as a
located :class:`~torchvision_customizer.spec.RecipeValidationError` naming the stage and block.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ..errors import TVCError
from ..layers import create_act, create_norm, create_pool
from ..registry import BLOCKS, POOLS
from ..spec.issues import Collector, Path
from ..spec.model import LAYERED_BLOCKS, LAYERED_TRANSITION, BlockSpec, HeadSpec, StageSpec, StemSpec

__all__ = ["block_module", "head_layers", "stage_layers", "stem_layers"]


def _dd(device: Any, dtype: Any) -> dict[str, Any]:
    return {"device": device, "dtype": dtype}


def stem_layers(spec: StemSpec, in_channels: int, *, device: Any = None,
                dtype: Any = None) -> list[tuple[str, nn.Module]]:
    """``conv -> [bn] -> [act] -> [pool]`` for a :class:`StemSpec`."""
    dd = _dd(device, dtype)
    norm = create_norm(spec.norm, spec.channels, **dd)
    has_norm = not isinstance(norm, nn.Identity)
    bias = spec.type == "patch" or not has_norm
    layers: list[tuple[str, nn.Module]] = [
        ("conv", nn.Conv2d(in_channels, spec.channels, spec.kernel_size, spec.stride,  # type: ignore[arg-type]
                           spec.padding, bias=bias, **dd))]  # type: ignore[arg-type]
    if has_norm:
        layers.append(("bn", norm))
    act = create_act(spec.act, inplace=True)
    if not isinstance(act, nn.Identity):
        layers.append(("act", act))
    if spec.pool == "max":
        layers.append(("pool", nn.MaxPool2d(3, 2, 1)))
    elif spec.pool == "avg":
        layers.append(("pool", nn.AvgPool2d(3, 2, 1)))
    return layers


def _accepts_dd(cls: Any) -> bool:
    try:
        return "device" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def block_module(block: BlockSpec, *, device: Any = None, dtype: Any = None, path: Path = ()) -> nn.Module:
    """Instantiate one registered block from a :class:`BlockSpec`; errors are located at ``path``."""
    cls = BLOCKS.get(block.type)
    kwargs = block.kwargs()
    if _accepts_dd(cls):
        kwargs.update(device=device, dtype=dtype)
    c = Collector()
    try:
        module = cls(block.in_channels, **kwargs)
    except TVCError as exc:
        c.add(path, "block", f"block {block.type!r} rejected its arguments: {exc}",
              got={"in_channels": block.in_channels, **{k: v for k, v in kwargs.items()
                                                         if k not in ("device", "dtype")}})
    except (TypeError, ValueError, ZeroDivisionError) as exc:  # a block that lets a bad type through
        c.add(path, "block", f"block {block.type!r} failed with {type(exc).__name__}: {exc}",
              got={k: v for k, v in kwargs.items() if k not in ("device", "dtype")})
    c.raise_if_any(f"block {block.type!r}")
    declared = getattr(module, "out_channels", None)
    if declared is not None and declared != block.out_channels:
        c.add(path, "out_channels", f"block {block.type!r} declares {declared} output channels",
              got=declared, expected=f"{block.out_channels} (the stage's channels)")
        c.raise_if_any(f"block {block.type!r}")
    return module


def stage_layers(spec: StageSpec, in_channels: int, *, device: Any = None, dtype: Any = None,
                 drop_path: tuple[float, ...] | None = None, path: Path = ()) -> list[tuple[str, nn.Module]]:
    """Projection (when needed), the blocks and the stage pool of a (non-branch) :class:`StageSpec`."""
    dd = _dd(device, dtype)
    layers: list[tuple[str, nn.Module]] = []
    if spec.needs_projection(in_channels):
        s = spec.stride
        proj = nn.Sequential()
        proj.add_module("norm", create_norm("layer", in_channels, **dd))
        proj.add_module("conv", nn.Conv2d(in_channels, spec.channels, s, s, bias=True, **dd))  # type: ignore[arg-type]
        layers.append(("proj", proj))
    for j, b in enumerate(spec.block_specs(in_channels, drop_path)):
        name = "transition" if b.type == LAYERED_TRANSITION and spec.type in LAYERED_BLOCKS else str(j)
        layers.append((name, block_module(b, path=(*path, "blocks", j), **dd)))
    if spec.pool == "max":
        layers.append(("pool", nn.MaxPool2d(2, 2)))
    elif spec.pool == "avg":
        layers.append(("pool", nn.AvgPool2d(2, 2)))
    return layers


def head_layers(spec: HeadSpec, in_channels: int, *, device: Any = None,
                dtype: Any = None) -> list[tuple[str, nn.Module]]:
    """``[norm, norm_act] -> pool -> [flatten] -> (drop -> fc | mlp -> fc)`` for a :class:`HeadSpec`."""
    dd = _dd(device, dtype)
    layers: list[tuple[str, nn.Module]] = []
    if spec.norm is not None:
        layers.append(("norm", create_norm(spec.norm, in_channels, **dd)))
        layers.append(("norm_act", create_act(spec.act, inplace=True)))
    canon = POOLS.canonical(spec.pool)
    if spec.pool_size == 1:
        kw = dd if canon == "gem" else {}
        layers.append(("pool", create_pool(canon, flatten=True, **kw)))
    else:
        adaptive = nn.AdaptiveAvgPool2d if canon == "avg" else nn.AdaptiveMaxPool2d
        layers.append(("pool", adaptive(spec.pool_size)))
        layers.append(("flatten", nn.Flatten(1)))
    features = spec.in_features(in_channels)
    if spec.type == "mlp":
        mlp = nn.Sequential()
        for h in spec.hidden:
            mlp.append(nn.Linear(features, h, **dd))
            mlp.append(create_act(spec.act, inplace=True))
            if spec.dropout:
                mlp.append(nn.Dropout(spec.dropout))
            features = h
        layers.append(("mlp", mlp))
    elif spec.dropout:
        layers.append(("drop", nn.Dropout(spec.dropout)))
    layers.append(("fc", nn.Linear(features, spec.num_classes, **dd)))
    return layers

