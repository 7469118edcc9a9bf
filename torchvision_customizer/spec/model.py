"""The typed model spec (the IR): frozen dataclasses that validate themselves.

Recipe strings, YAML files, templates and the ``>>`` composer all produce a :class:`ModelSpec`;
one builder (:mod:`torchvision_customizer.build`) turns it into modules. Semantics shared by
every front end:

* ``channels`` is always the *output* channels of a stage (and of each of its blocks);
  a bottleneck's inner width is ``channels / expansion``; an MBConv's hidden width is
  ``in_channels * expand_ratio``.
* ``stride`` (``downsample`` is ``stride=2``) is applied by the stage's *first* block. When the
  block cannot change channels or stride itself (it takes no ``out_channels``/``stride``, e.g.
  ``convnext_block``), the stage starts with a projection (norm, then a ``stride x stride``
  convolution, as ConvNeXt's downsampling layers).
* ``attention`` fills each block's single attention slot (``attn_layer``); ``se_ratio`` (``se=``
  in strings) is its squeeze ratio.
* ``pool`` adds a 2x2/2 max or average pool after the stage's blocks (VGG stages).

Validation collects every problem with its dotted path (``stages.2.channels``) and raises one
:class:`~torchvision_customizer.spec.issues.RecipeValidationError`.

Example:
    >>> spec = ModelSpec(stem=StemSpec("conv", 64),
    ...                  stages=(StageSpec("residual", 64, blocks=2),),
    ...                  head=HeadSpec("linear", 10))
    >>> ModelSpec.from_dict(spec.to_dict()) == spec
    True
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import closest
from ..registry import ACTIVATIONS, BLOCKS, NORMS, POOLS
from . import _blocks
from ._frozen import FrozenDict, thaw
from .issues import Collector, Path

__all__ = [
    "HEAD_TYPES",
    "LAYERED_BLOCKS",
    "STEM_TYPES",
    "BlockSpec",
    "HeadSpec",
    "ModelSpec",
    "StageSpec",
    "StemSpec",
    "deferred_validation",
]

_DEFER: contextvars.ContextVar[bool] = contextvars.ContextVar("tvc_spec_defer", default=False)


@contextlib.contextmanager
def deferred_validation() -> Iterator[None]:
    """Construct specs without validating each one; the caller validates the whole model once."""
    token = _DEFER.set(True)
    try:
        yield
    finally:
        _DEFER.reset(token)


def _validate_now(spec: Any, title: str) -> None:
    if _DEFER.get():
        return
    c = Collector()
    spec._check(c, ())
    c.raise_if_any(title)


# --------------------------------------------------------------------------- small checkers
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (
        isinstance(v, float) and math.isnan(v))


def _label(path: Path) -> str:
    """``("head", "hidden", 0)`` -> ``"hidden[0]"``; ``("stem", "channels")`` -> ``"channels"``."""
    if len(path) >= 2 and isinstance(path[-1], int):
        return f"{path[-2]}[{path[-1]}]"
    return str(path[-1]) if path else "value"


def _check_int(c: Collector, path: Path, v: Any, *, minimum: int = 1, what: str = "an integer") -> bool:
    if not _is_int(v):
        c.add(path, "type", f"{_label(path)} must be an integer", got=v, expected=f"{what} >= {minimum}")
        return False
    if v < minimum:
        c.add(path, "value", f"{_label(path)} is out of range", got=v, expected=f"{what} >= {minimum}")
        return False
    return True


def _check_rate(c: Collector, path: Path, v: Any) -> bool:
    if not _is_num(v) or not 0.0 <= v < 1.0:
        c.add(path, "value", f"{_label(path)} must be a probability", got=v, expected="a number in [0, 1)")
        return False
    return True


def _check_layer(c: Collector, path: Path, v: Any, registry: Any, kind: str) -> None:
    if v is None or (isinstance(v, str) and v.strip().lower() in ("none", "")):
        return
    if not isinstance(v, str):
        c.add(path, "type", f"{kind} must be given by name", got=v, expected=f"a registered {kind} name")
        return
    if v not in registry:
        c.add(path, f"unknown_{kind.replace(' ', '_')}", f"unknown {kind} {v!r}", got=v,
              expected=f"one of {', '.join(registry.list())}",
              suggestions=closest(v, list(registry._lookup)))


def _check_choice(c: Collector, path: Path, v: Any, choices: tuple[Any, ...], what: str) -> bool:
    if v not in choices:
        names = [str(x) for x in choices if x is not None]
        c.add(path, "value", f"unknown {what} {v!r}" if isinstance(v, str) else f"invalid {what}", got=v,
              expected="one of " + ", ".join(repr(x) for x in choices),
              suggestions=closest(v, names) if isinstance(v, str) else ())
        return False
    return True


def _norm_name(v: Any) -> Any:
    """Lower-case string names; ``"none"``/``"null"`` and '' become ``None``."""
    if isinstance(v, str):
        s = v.strip()
        return None if s.lower() in ("none", "null", "") else s
    return v


# --------------------------------------------------------------------------------- stem
#: stem types -> defaults (``stride=None`` means "= kernel_size")
STEM_TYPES: dict[str, dict[str, Any]] = {
    "conv": {"kernel_size": 7, "stride": 2, "pool": "max", "act": "relu", "norm": "batch"},
    "simple": {"kernel_size": 3, "stride": 1, "pool": None, "act": "relu", "norm": "batch"},
    "patch": {"kernel_size": 4, "stride": None, "pool": None, "act": None, "norm": "layer"},
}
_STEM_ALIASES = {"standard": "conv", "stem": "conv", "resnet": "conv", "conv_stem": "conv",
                 "patchify": "patch", "patch_embed": "patch"}
_AUTO = "auto"


@dataclass(frozen=True)
class StemSpec:
    """The stem: the first layers, from the image to the first stage.

    * ``conv(64)``: 7x7 stride-2 convolution, norm, activation, then a 3x3 stride-2 max-pool
      (ResNet's stem; total stride 4). ``pool=None`` drops the pool (MobileNet/EfficientNet stems
      are ``conv(32, k=3, s=2, pool=None)``).
    * ``simple(32)``: 3x3 stride-1 convolution, norm, activation (CIFAR-style).
    * ``patch(96, p=4)``: patchify, a ``p x p`` stride-``p`` convolution with bias, then a
      channels-first LayerNorm (ConvNeXt).

    Args:
        type: ``"conv"``, ``"simple"`` or ``"patch"``.
        channels: output channels.
        kernel_size, stride, padding: of the convolution (defaults depend on ``type``; padding
            defaults to ``kernel_size // 2``, 0 for ``patch``).
        pool: ``"max"``, ``"avg"`` (3x3, stride 2, padding 1) or ``None``.
        act, norm: activation and norm names (``None`` for none).
        in_channels: image channels (default: the model's ``input_shape[0]``).
    """

    type: str = "conv"
    channels: int = 64
    kernel_size: int | None = None
    stride: int | None = None
    padding: int | None = None
    pool: str | None = _AUTO
    act: str | None = _AUTO
    norm: str | None = _AUTO
    in_channels: int | None = None

    def __post_init__(self) -> None:
        t = self.type
        if isinstance(t, str):
            t = t.strip().lower()
            t = _STEM_ALIASES.get(t, t)
            object.__setattr__(self, "type", t)
        defaults = STEM_TYPES.get(t) if isinstance(t, str) else None
        if defaults is not None:
            if self.kernel_size is None:
                object.__setattr__(self, "kernel_size", defaults["kernel_size"])
            if self.stride is None:
                object.__setattr__(self, "stride", defaults["stride"] or self.kernel_size)
            if self.padding is None:
                pad = 0 if t == "patch" else (self.kernel_size // 2 if _is_int(self.kernel_size) else None)
                object.__setattr__(self, "padding", pad)
            for key in ("pool", "act", "norm"):
                if getattr(self, key) == _AUTO:
                    object.__setattr__(self, key, defaults[key])
        for key in ("pool", "act", "norm"):
            object.__setattr__(self, key, _norm_name(getattr(self, key)))
        if isinstance(self.pool, str):
            object.__setattr__(self, "pool", self.pool.lower())
        _validate_now(self, "stem spec")

    def _check(self, c: Collector, path: Path) -> None:
        if not isinstance(self.type, str) or self.type not in STEM_TYPES:
            c.add((*path, "type"), "unknown_stem", f"unknown stem type {self.type!r}", got=self.type,
                  expected="one of " + ", ".join(STEM_TYPES),
                  suggestions=closest(str(self.type), list(STEM_TYPES) + list(_STEM_ALIASES)))
        _check_int(c, (*path, "channels"), self.channels)
        _check_int(c, (*path, "kernel_size"), self.kernel_size)
        _check_int(c, (*path, "stride"), self.stride)
        _check_int(c, (*path, "padding"), self.padding, minimum=0)
        _check_choice(c, (*path, "pool"), self.pool, (None, "max", "avg"), "stem pool")
        _check_layer(c, (*path, "act"), self.act, ACTIVATIONS, "activation")
        _check_layer(c, (*path, "norm"), self.norm, NORMS, "norm")
        if self.in_channels is not None:
            _check_int(c, (*path, "in_channels"), self.in_channels)

    @property
    def out_channels(self) -> int:
        return self.channels

    @property
    def total_stride(self) -> int:
        return int(self.stride or 1) * (2 if self.pool else 1)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "channels": self.channels}
        defaults = STEM_TYPES.get(self.type, {})
        if self.kernel_size != defaults.get("kernel_size"):
            d["kernel_size"] = self.kernel_size
        if self.stride != (defaults.get("stride") or self.kernel_size):
            d["stride"] = self.stride
        default_pad = 0 if self.type == "patch" else (self.kernel_size or 0) // 2
        if self.padding != default_pad:
            d["padding"] = self.padding
        for key in ("pool", "act", "norm"):
            if getattr(self, key) != defaults.get(key):
                d[key] = getattr(self, key)
        if self.in_channels is not None:
            d["in_channels"] = self.in_channels
        return d


# --------------------------------------------------------------------------------- head
HEAD_TYPES = ("linear", "mlp")
_HEAD_ALIASES = {"fc": "linear", "classifier": "linear", "dense": "linear"}


@dataclass(frozen=True)
class HeadSpec:
    """The classifier head: [norm + act] -> pool -> flatten -> (dropout -> linear | MLP).

    * ``linear(10)``: global pool, flatten, ``Dropout(dropout)`` (when > 0), ``Linear``.
    * ``mlp(10, hidden=[512, 256], dropout=0.3)``: global pool, flatten, then for each hidden
      width ``Linear -> act -> Dropout``, then the final ``Linear`` (torchvision's VGG classifier
      is ``mlp(1000, hidden=[4096, 4096], dropout=0.5, pool_size=7)``).

    Args:
        type: ``"linear"`` or ``"mlp"`` (default: ``"mlp"`` when ``hidden`` is given).
        num_classes: output features.
        hidden: hidden widths of the MLP.
        dropout: dropout probability (before the linear layer; after each hidden layer of an MLP).
        pool: global pool name (``avg``, ``max``, ``gem``, ``avgmax``).
        pool_size: adaptive pool output size (``avg``/``max`` only); ``in_features`` is
            ``channels * pool_size ** 2``.
        act: activation of the MLP's hidden layers and after ``norm``.
        norm: optional norm (followed by ``act``) on the feature map before pooling (DenseNet).
    """

    type: str | None = None
    num_classes: int = 1000
    hidden: tuple[int, ...] = ()
    dropout: float = 0.0
    pool: str = "avg"
    pool_size: int = 1
    act: str | None = "relu"
    norm: str | None = None

    def __post_init__(self) -> None:
        t = self.type
        if t is None:
            t = "mlp" if self.hidden else "linear"
        if isinstance(t, str):
            t = t.strip().lower()
            t = _HEAD_ALIASES.get(t, t)
        object.__setattr__(self, "type", t)
        if isinstance(self.hidden, (list, tuple)):
            object.__setattr__(self, "hidden", tuple(self.hidden))
        elif _is_int(self.hidden):
            object.__setattr__(self, "hidden", (self.hidden,))
        for key in ("act", "norm"):
            object.__setattr__(self, key, _norm_name(getattr(self, key)))
        if isinstance(self.pool, str):
            object.__setattr__(self, "pool", self.pool.strip().lower())
        _validate_now(self, "head spec")

    def _check(self, c: Collector, path: Path) -> None:
        if self.type not in HEAD_TYPES:
            c.add((*path, "type"), "unknown_head", f"unknown head type {self.type!r}", got=self.type,
                  expected="one of " + ", ".join(HEAD_TYPES),
                  suggestions=closest(str(self.type), list(HEAD_TYPES) + list(_HEAD_ALIASES)))
        _check_int(c, (*path, "num_classes"), self.num_classes)
        if not isinstance(self.hidden, tuple):
            c.add((*path, "hidden"), "type", "hidden must be a list of widths", got=self.hidden,
                  expected="a list of positive integers")
        else:
            for i, h in enumerate(self.hidden):
                _check_int(c, (*path, "hidden", i), h)
            if self.type == "linear" and self.hidden:
                c.add((*path, "hidden"), "value", "a linear head has no hidden layers", got=list(self.hidden),
                      hint="use mlp(...) for hidden layers")
            if self.type == "mlp" and not self.hidden:
                c.add((*path, "hidden"), "missing", "an mlp head needs hidden widths",
                      expected="hidden=[512] or similar")
        _check_rate(c, (*path, "dropout"), self.dropout)
        if not isinstance(self.pool, str) or self.pool not in POOLS:
            c.add((*path, "pool"), "unknown_pool", f"unknown head pool {self.pool!r}", got=self.pool,
                  expected="one of " + ", ".join(POOLS.list()),
                  suggestions=closest(str(self.pool), list(POOLS._lookup)))
        elif _check_int(c, (*path, "pool_size"), self.pool_size) and self.pool_size > 1 and \
                POOLS.canonical(self.pool) not in ("avg", "max"):
            c.add((*path, "pool_size"), "value", f"pool {self.pool!r} only pools to 1x1", got=self.pool_size,
                  expected="pool_size=1, or pool='avg'/'max'")
        _check_layer(c, (*path, "act"), self.act, ACTIVATIONS, "activation")
        _check_layer(c, (*path, "norm"), self.norm, NORMS, "norm")

    def in_features(self, channels: int) -> int:
        return channels * self.pool_size * self.pool_size

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": self.type, "num_classes": self.num_classes}
        if self.hidden:
            d["hidden"] = list(self.hidden)
        if self.dropout:
            d["dropout"] = self.dropout
        if self.pool != "avg":
            d["pool"] = self.pool
        if self.pool_size != 1:
            d["pool_size"] = self.pool_size
        if self.act != "relu":
            d["act"] = self.act
        if self.norm is not None:
            d["norm"] = self.norm
        return d


# --------------------------------------------------------------------------------- blocks
@dataclass(frozen=True)
class BlockSpec:
    """One block, fully resolved: registered type, input/output channels, stride and arguments.

    Produced by :meth:`StageSpec.block_specs`; the builder calls
    ``registry.get(type)(in_channels, [out_channels=...,] [stride=...,] **args)``.
    """

    type: str
    in_channels: int
    out_channels: int
    stride: int = 1
    args: FrozenDict = field(default_factory=FrozenDict)

    def __post_init__(self) -> None:
        if not isinstance(self.args, FrozenDict):
            object.__setattr__(self, "args", FrozenDict(self.args or {}))

    def kwargs(self) -> dict[str, Any]:
        """Constructor keyword arguments (without ``in_channels``)."""
        kw = thaw(self.args)
        if _blocks.takes(self.type, "out_channels"):
            kw["out_channels"] = self.out_channels
        if self.stride != 1 or _blocks.takes(self.type, "stride"):
            kw["stride"] = self.stride
        return kw


# --------------------------------------------------------------------------------- stage
STAGE_POOLS = (None, "max", "avg")
#: blocks that stack layers themselves: ``x N`` sets this parameter instead of repeating the block,
#: and the stage's ``channels``/``stride`` are reached by a ``transition`` block after it (DenseNet)
LAYERED_BLOCKS: dict[str, str] = {"dense": "num_layers"}
LAYERED_TRANSITION = "transition"
MERGE_MODES = ("concat", "add")


@dataclass(frozen=True)
class StageSpec:
    """A stage: ``blocks`` blocks of one registered ``type``, or parallel ``branches``.

    Args:
        type: a registered block name (``"residual"``, ``"bottleneck"``, ``"mbconv"`` ...), or
            ``"branch"`` for parallel paths.
        channels: output channels of every block of the stage.
        blocks: number of blocks (``x N`` in strings).
        stride: stride of the first block (``downsample`` = 2).
        attention: registered attention block for each block's attention slot (``+se``).
        drop_path: stochastic-depth rate of each block.
        pool: ``"max"``/``"avg"``: a 2x2 stride-2 pool after the blocks.
        args: further block arguments (canonical names of the block's signature).
        branches: for ``type="branch"``: paths of stages (an empty path is the identity).
        merge: ``"concat"`` (channels add up) or ``"add"`` (paths must agree) for branches.
    """

    type: str
    channels: int | None = None
    blocks: int = 1
    stride: int = 1
    attention: str | None = None
    drop_path: float = 0.0
    pool: str | None = None
    args: FrozenDict = field(default_factory=FrozenDict)
    branches: tuple[tuple[StageSpec, ...], ...] = ()
    merge: str = "concat"

    def __post_init__(self) -> None:
        if isinstance(self.type, str):
            t = self.type.strip()
            if t.lower() == "branch":
                t = "branch"
            elif t in BLOCKS:
                t = BLOCKS.canonical(t)
            object.__setattr__(self, "type", t)
        if isinstance(self.args, Mapping) and not isinstance(self.args, FrozenDict):
            object.__setattr__(self, "args", FrozenDict(self.args))
        attn = _norm_name(self.attention)
        if isinstance(attn, str) and attn in BLOCKS:
            attn = BLOCKS.canonical(attn)
        object.__setattr__(self, "attention", attn)
        pool = _norm_name(self.pool)
        object.__setattr__(self, "pool", pool.lower() if isinstance(pool, str) else pool)
        if isinstance(self.branches, (list, tuple)):
            object.__setattr__(self, "branches", tuple(
                tuple(p) if isinstance(p, (list, tuple)) else p for p in self.branches))
        if _is_int(self.drop_path):
            object.__setattr__(self, "drop_path", float(self.drop_path))
        _validate_now(self, "stage spec")

    # ------------------------------------------------------------------ checks
    def _check(self, c: Collector, path: Path) -> None:
        if self.type == "branch":
            self._check_branch(c, path)
            return
        if not isinstance(self.type, str) or self.type not in BLOCKS:
            c.add((*path, "type"), "unknown_block", f"unknown block {self.type!r}", got=self.type,
                  expected="a registered block name (see registry.list())",
                  suggestions=_blocks.suggest_blocks(self.type))
            known = False
        else:
            known = True
        _check_int(c, (*path, "channels"), self.channels)
        _check_int(c, (*path, "blocks"), self.blocks)
        _check_int(c, (*path, "stride"), self.stride)
        _check_rate(c, (*path, "drop_path"), self.drop_path)
        _check_choice(c, (*path, "pool"), self.pool, STAGE_POOLS, "stage pool")
        if not isinstance(self.args, FrozenDict):
            c.add((*path, "args"), "type", "args must be a mapping of block arguments", got=self.args,
                  expected="a dict")
            return
        if self.attention is not None:
            if not isinstance(self.attention, str) or self.attention not in BLOCKS:
                c.add((*path, "attention"), "unknown_block", f"unknown attention block {self.attention!r}",
                      got=self.attention, expected="a registered attention block (se, eca, cbam_block, ...)",
                      suggestions=_blocks.suggest_blocks(self.attention))
            elif known and not _blocks.takes(self.type, "attn_layer"):
                c.add((*path, "attention"), "no_attention_slot",
                      f"block {self.type!r} has no attention slot (attn_layer)", got=self.attention,
                      hint="use a residual or mobile block, or wrap the stage")
            if "attn_layer" in self.args:
                c.add((*path, "args", "attn_layer"), "duplicate", "attention is given twice",
                      got=self.args["attn_layer"], hint=f"keep either +{self.attention} or attn_layer=")
        if not known:
            return
        layered = LAYERED_BLOCKS.get(self.type)
        if layered is not None and layered in self.args:
            c.add((*path, "args", layered), "duplicate", f"{layered} is set by the repeat count",
                  got=self.args[layered], hint=f"write {self.type}(CHANNELS) x {self.args[layered]}")
        if self.drop_path and _is_num(self.drop_path) and not _blocks.takes(self.type, "drop_path"):
            c.add((*path, "drop_path"), "unsupported", f"block {self.type!r} has no drop_path",
                  got=self.drop_path)
        params = _blocks.block_params(self.type)
        for key in self.args:
            if key in _blocks.RESERVED_ARGS:
                c.add((*path, "args", key), "reserved_arg",
                      f"argument {key!r} is set by the stage, not given to block {self.type!r}",
                      hint="channels are the first argument; stride comes from `stride=`/`downsample`")
            elif key not in params:
                c.add((*path, "args", key), "unknown_arg", f"block {self.type!r} has no argument {key!r}",
                      expected="one of: " + ", ".join(_blocks.accepted_names(self.type)),
                      suggestions=closest(key, _blocks.accepted_names(self.type)))
            elif key == layered:
                pass
            elif key == "drop_path" and self.drop_path:
                c.add((*path, "args", key), "duplicate", "drop_path is given twice", got=self.args[key])

    def _check_branch(self, c: Collector, path: Path) -> None:
        if not isinstance(self.branches, tuple) or len(self.branches) < 2:
            c.add((*path, "branch"), "value", "a branch stage needs at least two paths",
                  got=len(self.branches) if isinstance(self.branches, tuple) else self.branches,
                  expected="a list of >= 2 lists of stages ([] is the identity)")
            return
        _check_choice(c, (*path, "merge"), self.merge, MERGE_MODES, "merge mode")
        if self.channels is not None:
            _check_int(c, (*path, "channels"), self.channels)
        for i, branch in enumerate(self.branches):
            if not isinstance(branch, tuple):
                c.add((*path, "branch", i), "type", "each branch path must be a list of stages", got=branch)
                continue
            for j, stage in enumerate(branch):
                if not isinstance(stage, StageSpec):
                    c.add((*path, "branch", i, j), "type", "expected a stage", got=stage)
                else:
                    stage._check(c, (*path, "branch", i, j))

    # --------------------------------------------------------------- derived
    def out_channels(self, in_channels: int) -> int:
        """Output channels for the given input channels (branches: sum or common width)."""
        if self.type != "branch":
            return self.channels  # type: ignore[return-value]
        outs = [_path_out(b, in_channels) for b in self.branches]
        return sum(outs) if self.merge == "concat" else outs[0]

    def total_stride(self) -> int:
        if self.type == "branch":
            return max((_path_stride(b) for b in self.branches), default=1)
        return int(self.stride) * (2 if self.pool else 1)

    def needs_projection(self, in_channels: int) -> bool:
        """True when the block cannot itself change the channels or apply the stride."""
        if self.type == "branch" or self.type in LAYERED_BLOCKS:
            return False
        change_c = in_channels != self.channels
        return (change_c and not _blocks.takes(self.type, "out_channels")) or (
            self.stride != 1 and not _blocks.takes(self.type, "stride"))

    def block_specs(self, in_channels: int, drop_path: tuple[float, ...] | None = None) -> tuple[BlockSpec, ...]:
        """The resolved :class:`BlockSpec` of every block, given the stage's input channels.

        ``drop_path`` optionally gives one rate per block (a model-wide schedule).
        """
        layered = LAYERED_BLOCKS.get(self.type)
        if layered is not None:
            return self._layered_specs(in_channels, layered)
        proj = self.needs_projection(in_channels)
        cin = self.channels if proj else in_channels
        first_stride = 1 if proj else self.stride
        out: list[BlockSpec] = []
        for i in range(self.blocks):
            args = dict(self.args)
            if self.attention is not None:
                args["attn_layer"] = self.attention
            rate = drop_path[i] if drop_path is not None else self.drop_path
            if rate:
                args["drop_path"] = rate
            out.append(BlockSpec(self.type, cin, self.channels, first_stride if i == 0 else 1,  # type: ignore[arg-type]
                                 FrozenDict(args)))
            cin = self.channels  # type: ignore[assignment]
        return tuple(out)

    def _layered_specs(self, in_channels: int, layered: str) -> tuple[BlockSpec, ...]:
        params = _blocks.block_params(self.type)
        growth = self.args.get("growth_rate", params["growth_rate"].default if "growth_rate" in params else 0)
        out = in_channels + self.blocks * growth
        args = {**self.args, layered: self.blocks}
        specs = [BlockSpec(self.type, in_channels, out, 1, FrozenDict(args))]
        if out != self.channels or self.stride != 1:
            targs = {k: v for k, v in self.args.items() if k in ("norm_layer", "act_layer")}
            specs.append(BlockSpec(LAYERED_TRANSITION, out, self.channels, self.stride,  # type: ignore[arg-type]
                                   FrozenDict(targs)))
        return tuple(specs)

    def to_dict(self) -> dict[str, Any]:
        if self.type == "branch":
            d: dict[str, Any] = {"branch": [[s.to_dict() for s in b] for b in self.branches]}
            if self.merge != "concat":
                d["merge"] = self.merge
            return d
        d = {"type": self.type, "channels": self.channels}
        if self.blocks != 1:
            d["blocks"] = self.blocks
        if self.stride != 1:
            d["stride"] = self.stride
        if self.attention is not None:
            d["attention"] = self.attention
        if self.drop_path:
            d["drop_path"] = self.drop_path
        if self.pool is not None:
            d["pool"] = self.pool
        if self.args:
            d["args"] = thaw(self.args)
        return d


def _path_out(path: tuple[StageSpec, ...], in_channels: int) -> int:
    c = in_channels
    for s in path:
        c = s.out_channels(c)
    return c


def _path_stride(path: tuple[StageSpec, ...]) -> int:
    s = 1
    for st in path:
        s *= st.total_stride()
    return s


# --------------------------------------------------------------------------------- model
@dataclass(frozen=True)
class ModelSpec:
    """A whole model: stem, stages and head (either may be ``None``: no stem / a headless backbone).

    Args:
        name: model name.
        input_shape: ``(C, H, W)`` of one input image.
        stem: :class:`StemSpec` or ``None`` (the first stage then sees the image).
        stages: the stages, in order.
        head: :class:`HeadSpec` or ``None`` (``forward`` then returns the last feature map).
        drop_path_rate: when > 0, block ``i`` of ``n`` (over the whole model) gets stochastic depth
            ``drop_path_rate * i / n`` (torchvision's EfficientNet schedule); stage ``drop_path``
            must then be 0.
    """

    name: str = "CustomModel"
    input_shape: tuple[int, int, int] = (3, 224, 224)
    stem: StemSpec | None = None
    stages: tuple[StageSpec, ...] = ()
    head: HeadSpec | None = None
    drop_path_rate: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.input_shape, list):
            object.__setattr__(self, "input_shape", tuple(self.input_shape))
        if isinstance(self.stages, list):
            object.__setattr__(self, "stages", tuple(self.stages))
        if _is_int(self.drop_path_rate):
            object.__setattr__(self, "drop_path_rate", float(self.drop_path_rate))
        _validate_now(self, f"model spec {self.name!r}")

    def _check_top(self, c: Collector, path: Path) -> bool:
        """Checks of the model's own fields; True when ``input_shape`` is valid."""
        if not isinstance(self.name, str) or not self.name:
            c.add((*path, "name"), "type", "name must be a non-empty string", got=self.name)
        shape_ok = isinstance(self.input_shape, tuple) and len(self.input_shape) == 3 and all(
            _is_int(v) and v >= 1 for v in self.input_shape)
        if not shape_ok:
            c.add((*path, "input_shape"), "value", "input_shape must be (channels, height, width)",
                  got=list(self.input_shape) if isinstance(self.input_shape, tuple) else self.input_shape,
                  expected="three positive integers, e.g. [3, 224, 224]")
        _check_rate(c, (*path, "drop_path_rate"), self.drop_path_rate)
        return shape_ok

    def _check(self, c: Collector, path: Path) -> None:
        shape_ok = self._check_top(c, path)
        if self.stem is not None:
            if not isinstance(self.stem, StemSpec):
                c.add((*path, "stem"), "type", "stem must be a StemSpec", got=self.stem)
            else:
                self.stem._check(c, (*path, "stem"))
                if shape_ok and self.stem.in_channels is not None and \
                        self.stem.in_channels != self.input_shape[0]:
                    c.add((*path, "stem", "in_channels"), "mismatch",
                          "stem in_channels differs from input_shape[0]", got=self.stem.in_channels,
                          expected=f"{self.input_shape[0]} (input_shape[0])")
        if not isinstance(self.stages, tuple):
            c.add((*path, "stages"), "type", "stages must be a list", got=self.stages)
        else:
            for i, st in enumerate(self.stages):
                if not isinstance(st, StageSpec):
                    c.add((*path, "stages", i), "type", "expected a stage", got=st)
                    continue
                st._check(c, (*path, "stages", i))
                if self.drop_path_rate and st.drop_path:
                    c.add((*path, "stages", i, "drop_path"), "conflict",
                          "stage drop_path and model drop_path_rate are both set", got=st.drop_path,
                          hint="set one of them")
        if self.head is not None:
            if not isinstance(self.head, HeadSpec):
                c.add((*path, "head"), "type", "head must be a HeadSpec", got=self.head)
            else:
                self.head._check(c, (*path, "head"))
        if not c:
            self._check_flow(c, path)

    def _check_flow(self, c: Collector, path: Path) -> None:
        """Channel flow: a stage whose block keeps its shape needs ``channels`` == its input."""
        channels = self.in_channels_of_stages()
        for i, st in enumerate(self.stages):
            if st.type == "branch":
                self._check_branch_flow(c, (*path, "stages", i), st, channels)
            channels = st.out_channels(channels)

    def _check_branch_flow(self, c: Collector, path: Path, st: StageSpec, cin: int) -> None:
        outs = []
        for b in st.branches:
            outs.append(_path_out(b, cin))
        if st.merge == "add" and len(set(outs)) > 1:
            c.add((*path, "merge"), "mismatch", "branches merged by 'add' must have equal channels",
                  got=outs, hint="use merge: concat, or give every path the same output channels")
        strides = {_path_stride(b) for b in st.branches}
        if len(strides) > 1:
            c.add((*path, "branch"), "mismatch", "branch paths must have the same total stride",
                  got=sorted(strides))
        if st.channels is not None:
            total = sum(outs) if st.merge == "concat" else outs[0]
            if total != st.channels:
                c.add((*path, "channels"), "mismatch", "branch channels differ from the paths' output",
                      got=st.channels, expected=str(total))

    # --------------------------------------------------------------- derived
    def in_channels_of_stages(self) -> int:
        if self.stem is not None:
            return self.stem.channels
        return self.input_shape[0]

    def stage_channels(self) -> list[int]:
        """Output channels of each stage."""
        out, c = [], self.in_channels_of_stages()
        for st in self.stages:
            c = st.out_channels(c)
            out.append(c)
        return out

    @property
    def out_channels(self) -> int:
        """Channels of the last feature map (before the head)."""
        chans = self.stage_channels()
        return chans[-1] if chans else self.in_channels_of_stages()

    def drop_path_schedule(self) -> list[tuple[float, ...] | None]:
        """Per stage, per block stochastic-depth rates of ``drop_path_rate`` (``None`` when off).

        Only blocks that take ``drop_path`` count: block ``i`` of those ``n`` gets
        ``drop_path_rate * i / n`` (torchvision's EfficientNet rule).
        """
        eligible = [st.type != "branch" and st.type in BLOCKS and _blocks.takes(st.type, "drop_path")
                    and st.type not in LAYERED_BLOCKS for st in self.stages]
        if not self.drop_path_rate:
            return [None] * len(self.stages)
        total = sum(st.blocks for st, ok in zip(self.stages, eligible) if ok)
        out: list[tuple[float, ...] | None] = []
        idx = 0
        for st, ok in zip(self.stages, eligible):
            if not ok:
                out.append(None)
                continue
            out.append(tuple(self.drop_path_rate * (idx + j) / total for j in range(st.blocks)))
            idx += st.blocks
        return out

    # ------------------------------------------------------------ round trip
    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict``/``list`` data (YAML-ready); :meth:`from_dict` gives back an equal spec."""
        d: dict[str, Any] = {"name": self.name, "input_shape": list(self.input_shape)}
        d["stem"] = self.stem.to_dict() if self.stem is not None else None
        d["stages"] = [s.to_dict() for s in self.stages]
        d["head"] = self.head.to_dict() if self.head is not None else None
        if self.drop_path_rate:
            d["drop_path_rate"] = self.drop_path_rate
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSpec:
        """Build and validate a spec from :meth:`to_dict` data; every problem is reported at once."""
        from .convert import model_from_dict

        return model_from_dict(data)

    def replace(self, **changes: Any) -> ModelSpec:
        """A copy with ``changes`` applied (validated)."""
        import dataclasses

        return dataclasses.replace(self, **changes)

