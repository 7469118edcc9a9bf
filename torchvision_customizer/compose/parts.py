"""Composer parts: ``Stem``, ``Stage``, ``Head`` and ``Branch`` -- ``nn.Module``s that carry their spec.

A part created without an input size is *unbound*: it has no parameters yet and calling it raises
a clear error. Chaining it with ``>>`` binds it: its input channels are read from the previous
part's ``out_channels`` and its layers are built at once by the one builder
(:mod:`torchvision_customizer.build.layers`) -- no lazy layers, so optimizers, fx and export see
every parameter. Binding rules:

* an unbound part that belongs to no chain is bound in place;
* a part that already belongs to a chain is *copied* (rebuilt from its spec, fresh weights), so
  binding one part object into two chains gives two independent sets of weights;
* a part created with ``in_channels`` keeps it; a different incoming width is an error naming both
  sides and both numbers.

Example:
    >>> model = Stem(64) >> Stage(128, blocks=2) >> Head(10)
    >>> model(torch.randn(2, 3, 224, 224)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from ..build.layers import head_layers, stage_layers, stem_layers
from ..errors import CompositionError
from ..spec.convert import head_from_value, stage_from_fields, stem_from_value
from ..spec.issues import Collector
from ..spec.model import HeadSpec, StageSpec, StemSpec

__all__ = ["Branch", "Head", "Part", "PatchStem", "SimpleStem", "Stage", "Stem", "describe"]

_AUTO = "auto"


def describe(module: Any) -> str:
    """Short label of a chain item for messages: ``Stage(128, pattern='residual')``."""
    label = getattr(module, "label", None)
    if callable(label):
        return label()
    return type(module).__name__


class Part(nn.Module):
    """Base of every composer part: spec, channel bookkeeping, binding and the operators.

    Attributes:
        in_channels: input channels (``None`` while unbound).
        out_channels: output channels (known from the spec even while unbound, except for branches).
        stride: total spatial reduction of the part.
    """

    role: ClassVar[str] = "stage"

    def __init__(self) -> None:
        super().__init__()
        self.in_channels: int | None = None
        self.out_channels: int | None = None
        self.stride: int = 1
        self._owned = False
        self._fixed_in: int | None = None  # input channels given by the user (enforced by >>)
        self._factory: dict[str, Any] = {}

    # ------------------------------------------------------------------ binding
    @property
    def bound(self) -> bool:
        return self.in_channels is not None

    def _build(self, in_channels: int) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def fresh(self) -> Part:
        """A new, unbound part with the same spec (fresh weights once bound)."""
        raise NotImplementedError

    def bind(self, in_channels: int) -> Part:
        """This part bound to ``in_channels`` (itself, or a fresh copy when it is already in a chain)."""
        if self._owned:
            part = self.fresh()
            part._bind_in_place(in_channels)
            return part
        if self.in_channels is None:
            self._bind_in_place(in_channels)
            return self
        if self.in_channels != in_channels:
            raise CompositionError(
                f"{describe(self)} was built for {self.in_channels} input channels, but the previous part "
                f"gives {in_channels}", expected=f"{self.in_channels} input channels", got=in_channels,
                where=describe(self), hint="drop in_channels= so that >> infers it")
        return self

    def _bind_in_place(self, in_channels: int) -> None:
        if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < 1:
            raise CompositionError("input channels must be a positive integer", got=in_channels,
                                   where=describe(self))
        self._build(in_channels)
        self.in_channels = in_channels

    def _check_bound(self) -> None:
        if self.in_channels is None:
            raise CompositionError(
                f"{describe(self)} is unbound: it has no input size and no parameters yet",
                where=describe(self),
                hint="chain it after a part with >> (Stem(64) >> Stage(128)), or pass in_channels=")

    def _add_layers(self, layers: Iterable[tuple[str, nn.Module]]) -> None:
        for name, module in layers:
            self.add_module(name, module)

    # ------------------------------------------------------------------ operators
    def __rshift__(self, other: Any) -> Any:
        from .model import chain

        return chain(self, other)

    def __rrshift__(self, other: Any) -> Any:
        from .model import chain

        return chain(other, self)

    __add__ = __rshift__

    def __or__(self, other: Any) -> Branch:
        return Branch(self, other)

    def __ror__(self, other: Any) -> Branch:
        return Branch(other, self)

    def __mul__(self, n: int) -> Any:
        from .model import repeat

        return repeat(self, n)

    __rmul__ = __mul__

    # ------------------------------------------------------------------ misc
    @property
    def spec(self) -> Any:
        return self._spec  # type: ignore[attr-defined]

    def label(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        state = f"in_channels={self.in_channels}" if self.bound else "unbound"
        return f"{state}, out_channels={self.out_channels}, stride={self.stride}"


class _SequentialPart(Part, nn.Sequential):
    """A part whose children run in order (stem, stage, head)."""

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, slice):
            return nn.Sequential(*list(self._modules.values())[idx])
        return nn.Sequential.__getitem__(self, idx)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels is None:
            self._check_bound()
        for module in self._modules.values():
            x = module(x)
        return x


# ------------------------------------------------------------------------------------ stem
class Stem(_SequentialPart):
    """The stem: ``conv -> norm -> act -> [pool]`` (see :class:`~torchvision_customizer.spec.StemSpec`).

    ``Stem(64)`` is ResNet's stem: 7x7 stride-2 convolution, BatchNorm, ReLU and a 3x3 stride-2
    max-pool (total stride 4). ``type="simple"`` is a 3x3 stride-1 conv; ``type="patch"`` a
    patchify convolution with LayerNorm.

    Args:
        channels: output channels.
        kernel: kernel size (``kernel_size`` is an alias); default from ``type`` (7, 3, 4).
        stride: convolution stride; default from ``type`` (2, 1, = kernel).
        in_channels: image channels (3).
        act, norm: activation and norm names (``"auto"``: the type's default; ``None``: none).
        pool: ``"max"``, ``"avg"`` or ``None`` (``"auto"``: max for ``conv``).
        type: ``"conv"``, ``"simple"`` or ``"patch"``.
        padding: conv padding (default ``kernel // 2``; 0 for patch).
    """

    role = "stem"

    def __init__(self, channels: int = 64, kernel: int | None = None, stride: int | None = None,
                 in_channels: int = 3, act: Any = _AUTO, norm: Any = _AUTO, pool: Any = _AUTO, *,
                 kernel_size: int | None = None, padding: int | None = None, type: str = "conv",
                 activation: Any = None, spec: StemSpec | None = None, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        if spec is None:
            if kernel is not None and kernel_size is not None and kernel != kernel_size:
                raise CompositionError("kernel and kernel_size disagree", got=(kernel, kernel_size),
                                       where="Stem", expected="one of them")
            data: dict[str, Any] = {"type": type, "channels": channels}
            k = kernel if kernel is not None else kernel_size
            for key, value in (("kernel_size", k), ("stride", stride), ("padding", padding)):
                if value is not None:
                    data[key] = value
            if activation is not None:
                act = activation
            for key, value in (("act", act), ("norm", norm), ("pool", pool)):
                if not (isinstance(value, str) and value == _AUTO):
                    data[key] = value
            c = Collector()
            spec = stem_from_value(data, c, ("stem",))
            if spec is not None and not c:
                spec._check(c, ("stem",))
            c.raise_if_any("Stem")
        self._spec = spec
        self._factory = {"device": device, "dtype": dtype}
        self.out_channels = spec.channels  # type: ignore[union-attr]
        self.stride = spec.total_stride  # type: ignore[union-attr]
        self._fixed_in = spec.in_channels or in_channels  # type: ignore[union-attr]
        self._bind_in_place(self._fixed_in)

    def _build(self, in_channels: int) -> None:
        self._add_layers(stem_layers(self._spec, in_channels, **self._factory))

    def fresh(self) -> Stem:
        return Stem(spec=self._spec, in_channels=self.in_channels or 3, **self._factory)

    def bind(self, in_channels: int) -> Part:
        raise CompositionError("a Stem must come first in a chain", where=describe(self),
                               got=f"{in_channels} input channels from an earlier part",
                               hint="put the Stem first: Stem(...) >> Stage(...)")

    def label(self) -> str:
        s = self._spec
        return f"Stem({s.type} {s.channels}, k={s.kernel_size}, s={s.stride}{', ' + s.pool if s.pool else ''})"


def SimpleStem(channels: int = 32, in_channels: int = 3, act: Any = "relu", norm: Any = "batch",
               **kwargs: Any) -> Stem:
    """Older-release ``SimpleStem``: a 3x3 stride-1 conv-norm-act stem."""
    return Stem(channels, in_channels=in_channels, act=kwargs.pop("activation", act), norm=norm, type="simple",
                **kwargs)


def PatchStem(embed_dim: int = 96, patch_size: int = 16, in_channels: int = 3, **kwargs: Any) -> Stem:
    """Older-release ``PatchStem``: a ``patch_size`` x ``patch_size`` patchify conv + LayerNorm."""
    return Stem(embed_dim, kernel=patch_size, in_channels=in_channels, type="patch", **kwargs)


# ------------------------------------------------------------------------------------ stage
def _prune(d: Mapping[str, Any]) -> dict[str, Any]:
    """Drop ``None`` values so that unset options keep the block's defaults (STYLE P13)."""
    return {k: v for k, v in d.items() if v is not None}


class Stage(_SequentialPart):
    """A stage: ``blocks`` registered blocks; stride (``downsample``) on the first one.

    Args:
        channels: output channels of every block.
        blocks: number of blocks (DenseNet stages: dense layers).
        pattern: a registered block name, optionally with ``+attention`` (``"residual+se"``).
        downsample: stride 2 on the first block (same as ``stride=2``).
        stride: explicit first-block stride (never ignored; ``downsample=True`` with ``stride=1``
            is an error).
        attention: attention block for each block's attention slot (``"se"``, ``"eca"``, ...).
        drop_path: stochastic-depth rate of each block.
        expansion: bottleneck expansion / MBConv ``expand_ratio``.
        act, norm: activation / norm names for the blocks (``None``: the block's default).
        in_channels: bind at once (otherwise ``>>`` infers it).
        pool: ``"max"``/``"avg"`` 2x2 pool after the blocks (VGG).
        **block_kwargs: further block arguments, checked against the block's signature.
    """

    role = "stage"

    def __init__(self, channels: int | None = None, blocks: int = 2, pattern: str = "residual",
                 downsample: bool = False, stride: int | None = None, attention: str | None = None,
                 drop_path: float = 0.0, expansion: Any = None, act: Any = None, norm: Any = None,
                 in_channels: int | None = None, pool: str | None = None, *, spec: StageSpec | None = None,
                 drop_path_schedule: tuple[float, ...] | None = None, device: Any = None, dtype: Any = None,
                 **block_kwargs: Any) -> None:
        super().__init__()
        if spec is None:
            data = _prune({"type": pattern, "channels": channels, "blocks": blocks, "stride": stride,
                           "attention": attention, "pool": pool, "e": expansion, "act": act, "norm": norm})
            if downsample:
                data["downsample"] = True
            if drop_path:
                data["drop_path"] = drop_path
            for key, value in _prune(block_kwargs).items():
                if key in data:
                    raise CompositionError(f"Stage got {key!r} twice", where="Stage", got=key)
                data[key] = value
            c = Collector()
            spec = stage_from_fields(data, c, ("stage",))
            if spec is not None and not c:
                spec._check(c, ("stage",))
            c.raise_if_any("Stage")
        if spec.type == "branch":  # type: ignore[union-attr]
            raise CompositionError("use Branch for a branch spec", where="Stage", got=spec)
        self._spec = spec
        self._factory = {"device": device, "dtype": dtype}
        self._schedule = drop_path_schedule
        self._path: tuple[Any, ...] = ("stage",)
        self.out_channels = spec.channels  # type: ignore[union-attr]
        self.stride = spec.total_stride()  # type: ignore[union-attr]
        if in_channels is not None:
            self._fixed_in = in_channels
            self._bind_in_place(in_channels)

    def _build(self, in_channels: int) -> None:
        self._add_layers(stage_layers(self._spec, in_channels, drop_path=self._schedule, path=self._path,
                                      **self._factory))

    def fresh(self) -> Stage:
        return Stage(spec=self._spec, drop_path_schedule=self._schedule, **self._factory)

    def label(self) -> str:
        s = self._spec
        attn = f"+{s.attention}" if s.attention else ""
        return f"Stage({s.type}{attn}({s.channels}) x {s.blocks}{', stride ' + str(s.stride) if s.stride != 1 else ''})"


# ------------------------------------------------------------------------------------ head
class Head(_SequentialPart):
    """The classifier head: pool -> flatten -> (dropout -> linear | MLP) (see :class:`HeadSpec`).

    ``Head(10, dropout=0.5)`` really contains ``Dropout(0.5)`` before the linear layer;
    ``Head(10, hidden=[512])`` is an MLP with dropout after each hidden layer. The head is
    built eagerly when bound (never at the first forward).

    Args:
        num_classes: output features.
        hidden: hidden widths (an MLP head).
        dropout: dropout probability.
        pool: ``"avg"``, ``"max"``, ``"gem"``, ``"avgmax"``.
        in_channels: feature channels (``in_features`` is accepted for ``pool_size=1``).
        act: hidden activation; norm: optional norm before pooling; pool_size: adaptive pool size.
    """

    role = "head"

    def __init__(self, num_classes: int = 1000, hidden: Any = None, dropout: float = 0.0, pool: str = "avg",
                 in_channels: int | None = None, *, in_features: int | None = None, act: Any = "relu",
                 activation: Any = None, norm: Any = None, pool_size: int = 1, type: str | None = None,
                 spec: HeadSpec | None = None, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if spec is None:
            data = _prune({"type": type, "num_classes": num_classes, "hidden": hidden, "dropout": dropout,
                           "pool": pool, "pool_size": pool_size, "norm": norm,
                           "act": activation if activation is not None else act})
            if hidden is not None and not isinstance(hidden, (list, tuple)):
                data["hidden"] = [hidden]
            c = Collector()
            spec = head_from_value(data, c, ("head",))
            if spec is not None and not c:
                spec._check(c, ("head",))
            c.raise_if_any("Head")
        self._spec = spec
        self._factory = {"device": device, "dtype": dtype}
        self.out_channels = spec.num_classes  # type: ignore[union-attr]
        if in_features is not None and in_channels is None:
            in_channels = in_features // (spec.pool_size ** 2)  # type: ignore[union-attr]
        if in_channels is not None:
            self._fixed_in = in_channels
            self._bind_in_place(in_channels)

    def _build(self, in_channels: int) -> None:
        self._add_layers(head_layers(self._spec, in_channels, **self._factory))

    def fresh(self) -> Head:
        return Head(spec=self._spec, **self._factory)

    def label(self) -> str:
        s = self._spec
        extra = f", hidden={list(s.hidden)}" if s.hidden else ""
        return f"Head({s.type}({s.num_classes}{extra}))"


# ------------------------------------------------------------------------------------ branch
class Branch(Part):
    """Parallel paths on the same input, merged by channel concatenation (or addition).

    ``a | b`` is ``Branch(a, b)``; an empty path (``None`` or ``nn.Identity()``) is the identity,
    so ``Branch(None, body, merge="add")`` is a residual connection.
    """

    role = "stage"

    def __init__(self, *paths: Any, merge: str = "concat", spec: StageSpec | None = None,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if merge not in ("concat", "add"):
            raise CompositionError("unknown merge mode", got=merge, expected="'concat' or 'add'", where="Branch")
        self.merge = merge
        self._factory = {"device": device, "dtype": dtype}
        self._given_spec = spec
        if spec is not None:
            self.merge = spec.merge
            items = [[Stage(spec=s, **self._factory) if s.type != "branch" else Branch(spec=s, **self._factory)
                      for s in path] for path in spec.branches]
        else:
            items = []
            for p in paths:
                if isinstance(p, Branch) and p.merge == merge and not p.bound and p._given_spec is None \
                        and merge == "concat":
                    items.extend(p._pending)  # (a | b) | c -> one branch of three paths
                else:
                    items.append(_path_items(p))
        if len(items) < 2:
            raise CompositionError("a branch needs at least two paths", got=len(items), where="Branch")
        self._pending: list[list[Any]] = items
        self.paths = nn.ModuleList()
        self.out_channels = None
        self.stride = 1

    def _build(self, in_channels: int) -> None:
        outs, strides = [], []
        paths = nn.ModuleList()
        for i, items in enumerate(self._pending):
            seq = nn.Sequential()
            c, s = in_channels, 1
            for j, item in enumerate(items):
                bound = _bind_item(item, c, f"Branch path {i}")
                seq.add_module(str(j), bound)
                items[j] = bound
                c = bound.out_channels
                s *= _stride(bound)
            paths.append(seq)
            outs.append(c)
            strides.append(s)
        if len(set(strides)) > 1:
            raise CompositionError("branch paths must reduce the spatial size equally", got=strides,
                                   where="Branch", expected="the same total stride on every path")
        if self.merge == "add" and len(set(outs)) > 1:
            raise CompositionError("paths merged by addition must have equal channels", got=outs,
                                   where="Branch", hint="use merge='concat' (a | b) to concatenate")
        for item_list in self._pending:
            for item in item_list:
                if isinstance(item, Part):
                    item._owned = True
        self.paths = paths
        self.out_channels = sum(outs) if self.merge == "concat" else outs[0]
        self.stride = strides[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_channels is None:
            self._check_bound()
        outs = [path(x) for path in self.paths]
        if self.merge == "concat":
            return torch.cat(outs, 1)
        out = outs[0]
        for o in outs[1:]:
            out = out + o
        return out

    @property
    def spec(self) -> StageSpec:
        branches = []
        for items in self._pending:
            specs = []
            for item in items:
                if not isinstance(item, (Stage, Branch)):
                    raise CompositionError(f"{describe(item)} has no spec, so the branch cannot be written "
                                           "as a recipe", where="Branch", got=type(item).__name__)
                specs.append(item.spec)
            branches.append(tuple(specs))
        return StageSpec("branch", branches=tuple(branches), merge=self.merge)

    def fresh(self) -> Branch:
        return Branch(spec=self.spec, **self._factory)

    def label(self) -> str:
        return f"Branch({len(self._pending)} paths, {self.merge})"


def _stride(m: Any) -> int:
    s = getattr(m, "stride", 1) or 1
    return int(max(s)) if isinstance(s, (tuple, list)) and s else int(s)  # type: ignore[arg-type]


def _path_items(p: Any) -> list[Any]:
    from .model import ComposedModel

    if p is None or isinstance(p, nn.Identity):
        return []
    if isinstance(p, ComposedModel):
        if p.has_stem or p.has_head:
            raise CompositionError("a branch path may hold only stages", where="Branch", got=describe(p))
        return list(p.stages)
    if isinstance(p, (list, tuple)):
        return [x for q in p for x in _path_items(q)]
    if isinstance(p, (Stem, Head)):
        raise CompositionError(f"a branch path may hold only stages, not a {type(p).__name__}",
                               where="Branch", got=describe(p))
    if not isinstance(p, nn.Module):
        raise CompositionError("branch paths must be modules", where="Branch", got=p)
    return [p]


def _bind_item(item: Any, in_channels: int, where: str) -> Any:
    """Bind a part (or check a plain module that declares its channels) to ``in_channels``."""
    if isinstance(item, Part):
        return item.bind(in_channels)
    declared_in = getattr(item, "in_channels", None)
    out = getattr(item, "out_channels", None)
    if out is None:
        raise CompositionError(f"{describe(item)} does not declare out_channels, so >> cannot chain it",
                               where=where, got=type(item).__name__,
                               hint="wrap it or give it `in_channels`/`out_channels` attributes")
    if declared_in is not None and declared_in != in_channels:
        raise CompositionError(
            f"channel mismatch: the previous part gives {in_channels} channels, but {describe(item)} "
            f"expects {declared_in}", where=where, expected=f"{declared_in} input channels", got=in_channels)
    return item
