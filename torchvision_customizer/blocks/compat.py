"""The older release's ``torchvision_customizer.blocks`` names that have no registered block of their own.

Every class here is kept only for compatibility: instantiating it (or calling ``create_bottleneck``)
emits one ``DeprecationWarning`` naming the new spelling. None of them is registered, so the
registry and the registry-wide tests never see them, and none shadows a name another block module
exports. Each does the documented thing correctly; where the older release was broken the fix is
listed in ``COMPATIBILITY.md`` (e.g. ``SqueezeExcitation``/``ConvBNAct`` with an unknown activation
raise instead of silently using ReLU; ``MixedArchitectureBlock``'s ``dense`` layers and
``out_channels`` work; ``ResidualStage(downsample_first=False)`` keeps its stride).

Older-release names that *are* registered blocks (``Conv3DBlock``, ``GroupedBottleneck``,
``CoordConv``, ``LayerScale`` ...) live in their own modules and are current API.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import BlockValueError, CompositionError, UnknownComponentError, closest
from ..layers import ConvNormAct, check_channels, check_float, check_int, create_act, create_norm
from ..layers.compat import deprecated
from .bottleneck import GroupedBottleneck, StandardBottleneck, WideBottleneck
from .conv import ConvBlock
from .residual import ResidualBlock
from .se import SEBlock

__all__ = [
    "AsymmetricBottleneck",
    "ConvBNAct",
    "GELUActivation",
    "MixedArchitectureBlock",
    "MultiScaleBottleneck",
    "ResidualArchitectureBuilder",
    "ResidualBottleneckStage",
    "ResidualConnector",
    "ResidualSequence",
    "ResidualStage",
    "ResidualStageConfig",
    "SkipConnectionBuilder",
    "SqueezeExcitation",
    "SuperConv2d",
    "SuperLinear",
    "create_bottleneck",
]


def _flag_norm(use: bool, norm: Any) -> Any:
    return norm if use else None


# =============================================================================== layers
@deprecated("ConvNormAct(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, "
            "norm_layer=..., act_layer=...) from torchvision_customizer.layers")
class SuperConv2d(ConvNormAct):
    """Older-release conv -> norm -> activation (``use_normalization``/``use_activation`` switch them off)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, padding: int = 1,
                 dilation: int = 1, groups: int = 1, activation: Any = "relu", norm_type: Any = "batch",
                 use_activation: bool = True, use_normalization: bool = True) -> None:
        check_channels("in_channels", in_channels, "SuperConv2d")
        check_channels("out_channels", out_channels, "SuperConv2d")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         norm_layer=_flag_norm(use_normalization, norm_type),
                         act_layer=activation if use_activation else None)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride


@deprecated("nn.Sequential(nn.Linear(in_features, out_features), get_activation(name), nn.Dropout(p)), "
            "or Head(num_classes, hidden=[...]) for classifier heads")
class SuperLinear(nn.Sequential):
    """Older-release linear -> activation -> dropout (keys ``linear``, ``activation``, ``dropout``)."""

    def __init__(self, in_features: int, out_features: int, activation: Any = "relu", dropout_rate: float = 0.0,
                 use_activation: bool = True, use_dropout: bool | None = None, bias: bool = True) -> None:
        check_channels("in_features", in_features, "SuperLinear")
        check_channels("out_features", out_features, "SuperLinear")
        check_float("dropout_rate", dropout_rate, lo=0.0, hi=1.0, hi_open=True, owner="SuperLinear")
        if use_dropout is None:
            use_dropout = dropout_rate > 0
        super().__init__()
        self.add_module("linear", nn.Linear(in_features, out_features, bias=bias))
        self.add_module("activation", create_act(activation, inplace=True) if use_activation else nn.Identity())
        self.add_module("dropout", nn.Dropout(dropout_rate) if use_dropout else nn.Identity())
        self.in_features, self.out_features = in_features, out_features


@deprecated("nn.GELU(approximate=...) or get_activation('gelu')")
class GELUActivation(nn.GELU):
    """Older-release GELU with ``approximate='none' | 'tanh'``."""

    def __init__(self, approximate: str = "none") -> None:
        if approximate not in ("none", "tanh"):
            raise BlockValueError("unknown GELU approximation", where="GELUActivation", got=approximate,
                                  expected="'none' or 'tanh'")
        super().__init__(approximate=approximate)


@deprecated("SEBlock(channels, rd_ratio=1/16, act_layer=..., gate_layer=..., norm_layer=...) (registered 'se')")
class SqueezeExcitation(SEBlock):
    """Older-release SE: ``SqueezeExcitation(channels, reduction=16, activation, gate_activation, use_bn)``.

    The squeeze width is ``max(1, channels // reduction)`` as before; ``activation`` and
    ``gate_activation`` are any registered activation names (an unknown name is an error, not a
    silent ReLU/sigmoid); ``use_bn`` adds a BatchNorm after the squeeze.
    """

    def __init__(self, channels: int, reduction: int = 16, activation: Any = "relu",
                 gate_activation: Any = "sigmoid", use_bn: bool = False) -> None:
        check_channels("channels", channels, "SqueezeExcitation")
        check_int("reduction", reduction, owner="SqueezeExcitation")
        super().__init__(channels, rd_channels=max(1, channels // reduction), act_layer=activation,
                         gate_layer=gate_activation, norm_layer="batch" if use_bn else None)


@deprecated("ConvNormAct(in_channels, out_channels, kernel_size, stride, padding, groups=..., "
            "norm_layer='batch' | None, act_layer=...) from torchvision_customizer.layers")
class ConvBNAct(ConvNormAct):
    """Older-release conv -> BatchNorm -> activation; ``activation=None`` for none, an unknown name raises."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, groups: int = 1, activation: Any = "relu", use_bn: bool = True) -> None:
        check_channels("in_channels", in_channels, "ConvBNAct")
        check_channels("out_channels", out_channels, "ConvBNAct")
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         kernel_size // 2 if padding is None else padding, groups=groups,
                         norm_layer="batch" if use_bn else None, act_layer=activation)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride


# =============================================================================== bottlenecks
class _BottleneckBase(nn.Module):
    """``act(body(x) [* se] + shortcut(x))`` with the older release's width rule ``out // expansion``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int, activation: Any,
                 norm_type: Any, use_downsample: bool, attention: Any, se_reduction: int, owner: str) -> None:
        super().__init__()
        check_channels("in_channels", in_channels, owner)
        check_channels("out_channels", out_channels, owner)
        check_int("stride", stride, owner=owner)
        check_int("expansion", expansion, owner=owner)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.norm_type, self.activation = norm_type, activation
        self.width = max(1, out_channels // expansion)
        self.conv1 = ConvNormAct(in_channels, self.width, 1, norm_layer=norm_type, act_layer=activation)
        self.conv3 = ConvNormAct(self.width, out_channels, 1, norm_layer=norm_type, act_layer=None)
        self.attn = (SEBlock(out_channels, rd_channels=max(1, out_channels // se_reduction)) if attention
                     else nn.Identity())
        if stride != 1 or in_channels != out_channels or use_downsample:
            self.shortcut: nn.Module = ConvNormAct(in_channels, out_channels, 1, stride, norm_layer=norm_type,
                                                   act_layer=None)
        else:
            self.shortcut = nn.Identity()
        self.act = create_act(activation, inplace=True)

    def _unit(self, cin: int, cout: int, kernel: Any, stride: Any, padding: Any, dilation: int = 1) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, padding, dilation=dilation, bias=False),
                             create_norm(self.norm_type, cout), create_act(self.activation, inplace=True))

    def _body(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.attn(self.conv3(self._body(self.conv1(x)))) + self.shortcut(x))


class _MultiScale(_BottleneckBase):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expansion: int = 4,
                 use_dilation: bool = True, activation: Any = "relu", norm_type: Any = "batch",
                 use_downsample: bool = False, attention: Any = None, se_reduction: int = 16) -> None:
        super().__init__(in_channels, out_channels, stride, expansion, activation, norm_type, use_downsample,
                         attention, se_reduction, "MultiScaleBottleneck")
        if self.width < 2:
            raise BlockValueError("a multi-scale bottleneck needs at least 2 bottleneck channels",
                                  where="MultiScaleBottleneck", expected=f"out_channels >= {2 * expansion}",
                                  got=out_channels)
        a = self.width // 2
        b = self.width - a  # the older release lost one channel for odd widths and crashed
        self.branch_a = self._unit(self.width, a, 3, stride, 1)
        self.branch_b = (self._unit(self.width, b, 3, stride, 2, dilation=2) if use_dilation
                         else self._unit(self.width, b, 5, stride, 2))

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch_a(x), self.branch_b(x)], 1)


class _Asymmetric(_BottleneckBase):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expansion: int = 4,
                 activation: Any = "relu", norm_type: Any = "batch", use_downsample: bool = False,
                 attention: Any = None, se_reduction: int = 16) -> None:
        super().__init__(in_channels, out_channels, stride, expansion, activation, norm_type, use_downsample,
                         attention, se_reduction, "AsymmetricBottleneck")
        self.conv2a = self._unit(self.width, self.width, (1, 5), (1, stride), (0, 2))
        self.conv2b = self._unit(self.width, self.width, (5, 1), (stride, 1), (2, 0))

    def _body(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2b(self.conv2a(x))


@deprecated("the registered 'res2net' block (Res2NetBottleneck) for multi-scale bottlenecks, or "
            "Stage(..., pattern='bottleneck')")
class MultiScaleBottleneck(_MultiScale):
    """Older-release bottleneck: a 3x3 branch and a dilated 3x3 (or 5x5) branch, concatenated, then 1x1."""


@deprecated("Stage(..., pattern='bottleneck') (StandardBottleneck); the asymmetric 1x5/5x1 variant has no "
            "registered equivalent (register your own block with register_block)")
class AsymmetricBottleneck(_Asymmetric):
    """Older-release bottleneck with a 1x5 then a 5x1 convolution in the middle."""


_BOTTLENECKS: dict[str, Any] = {"standard": StandardBottleneck, "wide": WideBottleneck, "grouped": GroupedBottleneck,
                                "multi_scale": _MultiScale, "asymmetric": _Asymmetric}


def _make_bottleneck(kind: Any, in_channels: int, out_channels: int, *, attention: Any = None,
                     se_reduction: int = 16, **kwargs: Any) -> nn.Module:
    if not isinstance(kind, str) or kind not in _BOTTLENECKS:
        raise UnknownComponentError(f"unknown bottleneck type {kind!r}", where="create_bottleneck",
                                    expected="one of " + ", ".join(_BOTTLENECKS),
                                    suggestions=closest(str(kind), _BOTTLENECKS))
    cls = _BOTTLENECKS[kind]
    if cls in (_MultiScale, _Asymmetric):
        return cls(in_channels, out_channels, attention=attention, se_reduction=se_reduction, **kwargs)
    if "num_groups" in kwargs:  # the older release's name
        kwargs["groups"] = kwargs.pop("num_groups")
    if attention:
        kwargs.update(attn_layer="se", se_ratio=1.0 / se_reduction)
    return cls(in_channels, out_channels, **kwargs)


@deprecated("registry.get('bottleneck' | 'wide_bottleneck' | 'grouped_bottleneck')(in_channels, out_channels, "
            "...)")
def create_bottleneck(bottleneck_type: str, in_channels: int, out_channels: int, **kwargs: Any) -> nn.Module:
    """Older-release factory: ``standard``, ``wide``, ``grouped``, ``multi_scale`` or ``asymmetric``."""
    return _make_bottleneck(bottleneck_type, in_channels, out_channels, **kwargs)


# =============================================================================== stages
class _Stage(nn.Module):
    """Blocks in ``self.blocks``; declares ``in_channels``, ``out_channels`` and ``stride``."""

    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, stride: int, kinds: Sequence[Any],
                 stride_on_first: bool, make: Any, owner: str) -> None:
        super().__init__()
        check_channels("in_channels", in_channels, owner)
        check_channels("out_channels", out_channels, owner)
        check_int("num_blocks", num_blocks, owner=owner)
        check_int("stride", stride, owner=owner)
        if len(kinds) != num_blocks:
            raise BlockValueError("one block type per block", where=f"{owner}.bottleneck_types",
                                  expected=f"{num_blocks} entries", got=list(kinds))
        at = 0 if stride_on_first else num_blocks - 1
        blocks = [make(kinds[i], in_channels if i == 0 else out_channels, out_channels, stride if i == at else 1)
                  for i in range(num_blocks)]
        self.blocks = nn.Sequential(*blocks)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride
        self.num_blocks = num_blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x)


class _ResidualStage(_Stage):
    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, stride: int = 1, expansion: int = 4,
                 use_bottleneck: bool = True, bottleneck_type: str = "standard", activation: Any = "relu",
                 norm_type: Any = "batch", use_se: bool = False, se_reduction: int = 16,
                 downsample_first: bool = True) -> None:
        check_int("se_reduction", se_reduction, owner="ResidualStage")

        def make(kind: Any, cin: int, cout: int, s: int) -> nn.Module:
            if use_bottleneck:
                return _make_bottleneck(kind, cin, cout, stride=s, expansion=expansion, activation=activation,
                                        norm_type=norm_type, attention=use_se, se_reduction=se_reduction)
            return ResidualBlock(cin, cout, stride=s, act_layer=activation, norm_layer=norm_type,
                                 attn_layer="se" if use_se else None, se_ratio=1.0 / se_reduction)

        super().__init__(in_channels, out_channels, num_blocks, stride, [bottleneck_type] * num_blocks,
                         downsample_first, make, "ResidualStage")


class _BottleneckStage(_Stage):
    def __init__(self, in_channels: int, out_channels: int, num_blocks: int, bottleneck_types: Any = "standard",
                 stride: int = 1, expansion: int = 4, activation: Any = "relu", norm_type: Any = "batch") -> None:
        kinds = [bottleneck_types] * num_blocks if isinstance(bottleneck_types, str) else list(bottleneck_types)

        def make(kind: Any, cin: int, cout: int, s: int) -> nn.Module:
            return _make_bottleneck(kind, cin, cout, stride=s, expansion=expansion, activation=activation,
                                    norm_type=norm_type)

        super().__init__(in_channels, out_channels, num_blocks, stride, kinds, True, make, "ResidualBottleneckStage")


@deprecated("Stage(out_channels, blocks=num_blocks, pattern='bottleneck' | 'residual', stride=..., "
            "attention='se', in_channels=in_channels)")
class ResidualStage(_ResidualStage):
    """Older-release stage of residual/bottleneck blocks; the stride goes on the first block
    (``downsample_first=False``: on the last one; the older release then dropped it)."""


@deprecated("Stage(out_channels, blocks=num_blocks, pattern=...) (one registered block type per Stage; chain "
            "stages with >>)")
class ResidualBottleneckStage(_BottleneckStage):
    """Older-release stage mixing bottleneck types (one per block)."""


_SCHEDULES = ("later", "all", "first", "none")


@deprecated("a recipe (build_recipe(Recipe(stem=..., stages=[...], head=...))) or build_vision_model(...)")
class ResidualSequence(nn.Module):
    """Older-release stack of ResidualStages; stride schedule ``later``, ``all``, ``first`` or ``none``."""

    def __init__(self, in_channels: int, num_stages: int, blocks_per_stage: Any, channels_per_stage: Any,
                 stride_schedule: str = "later", expansion: int = 4, use_bottleneck: bool = True,
                 activation: Any = "relu", norm_type: Any = "batch", use_se: bool = False) -> None:
        super().__init__()
        check_int("num_stages", num_stages, owner="ResidualSequence")
        blocks = [blocks_per_stage] * num_stages if isinstance(blocks_per_stage, int) else list(blocks_per_stage)
        widths = [channels_per_stage] * num_stages if isinstance(channels_per_stage, int) else list(channels_per_stage)
        for name, values in (("blocks_per_stage", blocks), ("channels_per_stage", widths)):
            if len(values) != num_stages:
                raise BlockValueError(f"{name} needs one entry per stage", where=f"ResidualSequence.{name}",
                                      expected=f"{num_stages} entries", got=values)
        if stride_schedule not in _SCHEDULES:
            raise BlockValueError("unknown stride schedule", where="ResidualSequence.stride_schedule",
                                  expected="one of " + ", ".join(_SCHEDULES), got=stride_schedule,
                                  suggestions=closest(str(stride_schedule), _SCHEDULES))
        strides = {"later": [1] + [2] * (num_stages - 1), "all": [2] * num_stages,
                   "first": [2] + [1] * (num_stages - 1), "none": [1] * num_stages}[stride_schedule]
        stages, c = [], in_channels
        for n, w, s in zip(blocks, widths, strides):
            stages.append(_ResidualStage(c, w, n, s, expansion=expansion, use_bottleneck=use_bottleneck,
                                         activation=activation, norm_type=norm_type, use_se=use_se))
            c = w
        self.stages = nn.Sequential(*stages)
        self.in_channels, self.out_channels = in_channels, widths[-1]
        self.stride = 1
        for s in strides:
            self.stride *= s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x)


@deprecated("Stage(...) / StageSpec (a stage description that the recipe builder consumes)")
@dataclasses.dataclass
class ResidualStageConfig:
    """Older-release stage configuration; :meth:`build` makes the stage it describes."""

    in_channels: int
    out_channels: int
    num_blocks: int
    stride: int = 1
    expansion: int = 4
    use_bottleneck: bool = True
    bottleneck_type: str = "standard"
    activation: str = "relu"
    norm_type: str = "batch"
    use_se: bool = False
    se_reduction: int = 16
    downsample_first: bool = True

    def build(self) -> nn.Module:
        return _ResidualStage(**dataclasses.asdict(self))


@deprecated("Stem(...) >> Stage(...) >> ... (the composer), or a Recipe")
class ResidualArchitectureBuilder:
    """Older-release fluent builder; every ``in_channels`` is checked against the previous part."""

    def __init__(self) -> None:
        self.layers: list[tuple[str, nn.Module]] = []
        self.current_channels: int | None = None

    def _in(self, in_channels: int | None, where: str) -> int:
        if in_channels is None:
            if self.current_channels is None:
                raise CompositionError("the first stage needs in_channels", where=where,
                                       hint="call add_initial_conv first or pass in_channels")
            return self.current_channels
        if self.current_channels is not None and in_channels != self.current_channels:
            raise CompositionError(f"channel mismatch: the previous part gives {self.current_channels} channels",
                                   where=where, expected=f"in_channels={self.current_channels} (or None)",
                                   got=in_channels)
        return in_channels

    def add_initial_conv(self, in_channels: int, out_channels: int, kernel_size: int = 7, stride: int = 2,
                         padding: int = 3, norm_type: Any = "batch", activation: Any = "relu"
                         ) -> ResidualArchitectureBuilder:
        cin = self._in(in_channels, "add_initial_conv")
        self.layers.append(("initial_conv", ConvNormAct(cin, out_channels, kernel_size, stride, padding,
                                                        norm_layer=norm_type, act_layer=activation)))
        self.current_channels = out_channels
        return self

    def add_max_pool(self, kernel_size: int = 3, stride: int = 2, padding: int = 1) -> ResidualArchitectureBuilder:
        self.layers.append(("max_pool", nn.MaxPool2d(kernel_size, stride, padding)))
        return self

    def add_stage(self, in_channels: int | None, out_channels: int, num_blocks: int, stride: int = 1,
                  expansion: int = 4, use_bottleneck: bool = True, bottleneck_type: str = "standard",
                  activation: Any = "relu", norm_type: Any = "batch", use_se: bool = False
                  ) -> ResidualArchitectureBuilder:
        cin = self._in(in_channels, "add_stage")
        self.layers.append(("stage", _ResidualStage(cin, out_channels, num_blocks, stride, expansion, use_bottleneck,
                                                    bottleneck_type, activation, norm_type, use_se)))
        self.current_channels = out_channels
        return self

    def add_mixed_bottleneck_stage(self, in_channels: int | None, out_channels: int, num_blocks: int,
                                   bottleneck_types: Sequence[str], stride: int = 1, expansion: int = 4,
                                   activation: Any = "relu", norm_type: Any = "batch") -> ResidualArchitectureBuilder:
        cin = self._in(in_channels, "add_mixed_bottleneck_stage")
        self.layers.append(("stage", _BottleneckStage(cin, out_channels, num_blocks, bottleneck_types, stride,
                                                      expansion, activation, norm_type)))
        self.current_channels = out_channels
        return self

    def add_global_avg_pool(self) -> ResidualArchitectureBuilder:
        self.layers.append(("global_avg_pool", nn.AdaptiveAvgPool2d(1)))
        return self

    def build(self) -> nn.Sequential:
        """An ``nn.Sequential`` of the parts added (children ``initial_conv``, ``stage1`` ...)."""
        if not self.layers:
            raise CompositionError("nothing was added to the builder", where="ResidualArchitectureBuilder.build",
                                   hint="add_initial_conv(3, 64).add_stage(None, 256, 3)...")
        seq = nn.Sequential()
        counts: dict[str, int] = {}
        for kind, module in self.layers:
            counts[kind] = counts.get(kind, 0) + 1
            seq.add_module(kind if kind != "stage" and counts[kind] == 1 else f"{kind}{counts[kind]}", module)
        seq.out_channels = self.current_channels  # type: ignore[assignment]
        return seq


# =============================================================================== connections
_SKIP_TYPES = ("identity", "projection", "bottle")


@deprecated("compose.residual(module) (x + module(x)), or a block's own shortcut (ResidualBlock)")
class ResidualConnector(nn.Module):
    """Older-release ``forward(x, skip) = act(x + shortcut(skip))`` with an identity, 1x1 projection or
    bottleneck (1x1 -> 1x1) shortcut. ``identity`` with different widths or a stride is an error at
    construction (the older release failed at the first forward)."""

    def __init__(self, skip_type: str = "identity", in_channels: int = 64, out_channels: int = 64, stride: int = 1,
                 activation: Any = "relu", use_batchnorm: bool = True) -> None:
        super().__init__()
        if skip_type not in _SKIP_TYPES:
            raise BlockValueError("unknown skip type", where="ResidualConnector.skip_type", got=skip_type,
                                  expected="one of " + ", ".join(_SKIP_TYPES),
                                  suggestions=closest(str(skip_type), _SKIP_TYPES))
        check_channels("in_channels", in_channels, "ResidualConnector")
        check_channels("out_channels", out_channels, "ResidualConnector")
        check_int("stride", stride, owner="ResidualConnector")
        norm = "batch" if use_batchnorm else None
        if skip_type == "identity":
            if in_channels != out_channels or stride != 1:
                raise BlockValueError("an identity shortcut cannot change channels or resolution",
                                      where="ResidualConnector", got={"in_channels": in_channels,
                                                                      "out_channels": out_channels, "stride": stride},
                                      hint="use skip_type='projection'")
            self.skip: nn.Module = nn.Identity()
        elif skip_type == "projection":
            self.skip = ConvNormAct(in_channels, out_channels, 1, stride, norm_layer=norm, act_layer=None)
        else:
            hidden = max(1, out_channels // 4)
            self.skip = nn.Sequential(ConvNormAct(in_channels, hidden, 1, norm_layer="batch", act_layer="relu"),
                                      ConvNormAct(hidden, out_channels, 1, stride, norm_layer=norm, act_layer=None))
        self.act = create_act(activation)
        self.skip_type, self.in_channels, self.out_channels, self.stride = skip_type, in_channels, out_channels, stride

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.skip(skip))


_PATTERNS = ("residual", "dense", "hierarchical", "dense_residual")


@deprecated("compose.residual(...) / compose.branch(...) (x + f(x), concatenation) in a >> chain")
class SkipConnectionBuilder(nn.Module):
    """Older-release merge of ``num_blocks`` same-shape feature maps ``forward([f0, f1, ...])``.

    * ``residual``: the sum of all maps;
    * ``hierarchical``: the sum of every second map (``f0, f2, ...``) and the last one, each once
      (the older release could add the last map twice);
    * ``dense``: the concatenation of all maps (``num_blocks * in_channels`` channels);
    * ``dense_residual``: the last map plus a 1x1 conv-norm-act projection of all earlier maps.
    """

    def __init__(self, pattern: str = "residual", num_blocks: int = 4, in_channels: int = 64,
                 activation: Any = "relu", use_batchnorm: bool = True) -> None:
        super().__init__()
        if pattern not in _PATTERNS:
            raise BlockValueError("unknown skip pattern", where="SkipConnectionBuilder.pattern", got=pattern,
                                  expected="one of " + ", ".join(_PATTERNS),
                                  suggestions=closest(str(pattern), _PATTERNS))
        check_int("num_blocks", num_blocks, owner="SkipConnectionBuilder")
        check_channels("in_channels", in_channels, "SkipConnectionBuilder")
        self.pattern, self.num_blocks, self.in_channels = pattern, num_blocks, in_channels
        self.out_channels = in_channels * num_blocks if pattern == "dense" else in_channels
        self.projection = (ConvNormAct(in_channels * (num_blocks - 1), in_channels, 1,
                                       norm_layer="batch" if use_batchnorm else None, act_layer=activation)
                           if pattern == "dense_residual" and num_blocks > 1 else nn.Identity())
        create_act(activation)  # validate the name for every pattern

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(features) != self.num_blocks:
            raise BlockValueError("wrong number of feature maps", where="SkipConnectionBuilder.forward",
                                  expected=f"{self.num_blocks} maps (num_blocks)", got=len(features))
        if self.pattern == "dense":
            return torch.cat(list(features), 1)
        if self.pattern == "dense_residual":
            if len(features) == 1:
                return features[0]
            return features[-1] + self.projection(torch.cat(list(features[:-1]), 1))
        chosen = list(features) if self.pattern == "residual" else list(features[0::2])
        if self.pattern == "hierarchical" and (len(features) - 1) % 2:
            chosen.append(features[-1])
        out = chosen[0]
        for f in chosen[1:]:
            out = out + f
        return out


_MIXED = ("standard", "residual", "dense")


class _MixedLayer(nn.Module):
    def __init__(self, pattern: str, channels: int, kernel_size: int, activation: Any, use_batchnorm: bool,
                 dropout_rate: float) -> None:
        super().__init__()
        self.pattern = pattern
        self.conv = ConvBlock(channels, channels, kernel_size, act_layer=activation,
                              norm_layer="batch" if use_batchnorm else None, dropout=dropout_rate)
        # dense: concatenate input and new features, fuse back to `channels` (the older release
        # concatenated without fusing, so the next layer crashed)
        self.fuse = (ConvNormAct(2 * channels, channels, 1, norm_layer="batch" if use_batchnorm else None,
                                 act_layer=activation) if pattern == "dense" else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.pattern == "residual":
            return x + y
        if self.pattern == "dense":
            return self.fuse(torch.cat([x, y], 1))
        return y


@deprecated("Stage(...) with registered blocks, compose.residual(...) / compose.branch(...)")
class MixedArchitectureBlock(nn.Module):
    """Older-release block of ``num_layers`` conv layers, each ``standard`` (f(x)), ``residual`` (x + f(x))
    or ``dense`` (fuse([x, f(x)])); a final 1x1 projection gives ``out_channels`` (the older release
    ignored ``out_channels``)."""

    def __init__(self, num_layers: int = 4, in_channels: int = 64, out_channels: int = 64,
                 mixed_patterns: Sequence[str] | None = None, kernel_size: int = 3, activation: Any = "relu",
                 use_batchnorm: bool = True, dropout_rate: float = 0.0) -> None:
        super().__init__()
        check_int("num_layers", num_layers, owner="MixedArchitectureBlock")
        check_channels("in_channels", in_channels, "MixedArchitectureBlock")
        check_channels("out_channels", out_channels, "MixedArchitectureBlock")
        if mixed_patterns is None:
            mixed_patterns = [("standard", "residual", "dense", "standard")[i % 4] for i in range(num_layers)]
        patterns = list(mixed_patterns)
        if len(patterns) != num_layers:
            raise BlockValueError("mixed_patterns needs one pattern per layer", where="MixedArchitectureBlock",
                                  expected=f"{num_layers} patterns", got=patterns)
        bad = [p for p in patterns if p not in _MIXED]
        if bad:
            raise BlockValueError("unknown layer pattern", where="MixedArchitectureBlock.mixed_patterns",
                                  expected="one of " + ", ".join(_MIXED), got=bad[0],
                                  suggestions=closest(str(bad[0]), _MIXED))
        self.patterns = patterns
        self.layers = nn.ModuleList(_MixedLayer(p, in_channels, kernel_size, activation, use_batchnorm, dropout_rate)
                                    for p in patterns)
        self.proj = (ConvNormAct(in_channels, out_channels, 1, norm_layer="batch" if use_batchnorm else None,
                                 act_layer=activation) if out_channels != in_channels else nn.Identity())
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.proj(x)
