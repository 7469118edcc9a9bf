"""``ComposedModel`` and the functional operators: ``chain`` (``>>``), ``repeat``, ``branch``, ``residual``.

Every model built from a recipe, a YAML file, a template or ``>>`` is a :class:`ComposedModel`:
an ``nn.Module`` whose children are ``stem``, ``stages`` (an ``nn.Sequential``; stage ``i`` is
``model.stages[i]``, numbered from 0, stem excluded) and ``head``.

Example:
    >>> model = Stem(32, type="simple") >> Stage(64, blocks=1, downsample=True) >> Head(10)
    >>> print(model.explain((3, 32, 32)))  # doctest: +SKIP
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import CompositionError
from ..models.surface import ModelSurface
from ..spec.model import HeadSpec, ModelSpec, StageSpec, StemSpec
from .parts import Branch, Head, Part, Stage, Stem, _bind_item, describe

__all__ = [
    "BranchedModule",
    "Compose",
    "ComposedModel",
    "ComposedModule",
    "FeatureInfo",
    "Sequential",
    "VisionModel",
    "branch",
    "chain",
    "compose",
    "repeat",
    "residual",
]


@dataclass(frozen=True)
class FeatureInfo:
    """Declared output of one stage: its index, module name, channels and total stride."""

    stage: int
    module: str
    channels: int | None
    stride: int


def _fixed_in(m: Any) -> int | None:
    """Input channels a chain item insists on (set by the user, not by an earlier chain)."""
    if isinstance(m, Part):
        return m._fixed_in
    return getattr(m, "in_channels", None)


def _stride_of(m: Any) -> int:
    """Declared spatial reduction of a chain item (``nn.Conv2d``'s tuple stride included)."""
    s = getattr(m, "stride", 1) or 1
    if isinstance(s, (tuple, list)):
        s = max(s) if s else 1
    return int(s)


class ComposedModel(ModelSurface, Part):
    """A model assembled from parts: ``stem -> stages -> head``.

    Args:
        stem: a :class:`Stem` (or ``None``).
        stages: stages in order: :class:`Stage`, :class:`Branch` or any ``nn.Module`` declaring
            ``out_channels``.
        head: a :class:`Head` (or ``None``: ``forward`` returns the last feature map).
        name: model name (kept in :meth:`to_recipe`).
        input_shape: ``(C, H, W)`` used by :meth:`explain` and :meth:`summary` (default
            ``(in_channels, 224, 224)``); ``C`` binds an unbound first stage.
        features_only: ``forward`` returns every stage's feature map (see :meth:`get_stage_outputs`).
        drop_path_rate: model-wide stochastic-depth schedule the stages were built with.
    """

    role = "model"

    def __init__(self, stem: Any = None, stages: Iterable[Any] = (), head: Any = None, *,
                 name: str = "ComposedModel", input_shape: tuple[int, int, int] | None = None,
                 features_only: bool = False, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        items = ([stem] if stem is not None else []) + list(stages) + ([head] if head is not None else [])
        self.name = name
        self.features_only = features_only
        self.drop_path_rate = drop_path_rate
        self._input_hw = tuple(input_shape[1:]) if input_shape is not None else (224, 224)
        self._assemble([(m, False) for m in items], input_shape[0] if input_shape is not None else None)

    # ------------------------------------------------------------------ assembly
    def _assemble(self, flat: list[tuple[Any, bool]], in_channels: int | None) -> None:
        stem = head = None
        stages: list[nn.Module] = []
        cin = in_channels
        prev: Any = None
        for idx, (m, reuse) in enumerate(flat):
            if not isinstance(m, nn.Module):
                raise CompositionError("only modules can be chained", got=m, where=f"chain item {idx}",
                                       expected="a Stem, Stage, Head, Branch or nn.Module with out_channels")
            role = m.role if isinstance(m, Part) else "stage"
            if head is not None:
                raise CompositionError(f"nothing can follow the head: {describe(head)} >> {describe(m)}",
                                       where=f"chain item {idx}", got=describe(m),
                                       hint="put the Head last")
            if role == "stem" and idx != 0:
                raise CompositionError(f"a Stem must come first: {describe(prev)} >> {describe(m)}",
                                       where=f"chain item {idx}", got=describe(m))
            m = self._place(m, reuse, cin, prev, idx)
            if role == "stem":
                stem = m
            elif role == "head":
                head = m
            else:
                stages.append(m)
            if isinstance(m, Part) and not m.bound:
                cin = None
            else:
                cin = m.out_channels
            prev = m
        for m in [stem, *stages, head]:
            if isinstance(m, Part):
                m._owned = True
        self.stem = stem if stem is not None else nn.Identity()
        self.stages = nn.Sequential(*stages)
        self.head = head if head is not None else nn.Identity()
        self.has_stem = stem is not None
        self.has_head = head is not None
        first = stem if stem is not None else (stages[0] if stages else head)
        if first is None:
            self.in_channels = in_channels
        else:
            self.in_channels = getattr(first, "in_channels", None)
        self._refresh_info()

    def _place(self, m: Any, reuse: bool, cin: int | None, prev: Any, idx: int) -> Any:
        want = _fixed_in(m)
        if cin is not None and isinstance(m, Part) and reuse and m.bound and m.in_channels != cin:
            want = m.in_channels
        if cin is not None and want is not None and want != cin:
            raise CompositionError(
                f"channel mismatch: {describe(prev) if prev is not None else 'the input'} gives {cin} "
                f"channels, but {describe(m)} expects {want}",
                where=f"{describe(prev) if prev is not None else 'input'} >> {describe(m)}",
                expected=f"{want} channels", got=cin,
                hint="drop in_channels= to let >> infer it, or change the previous part's channels")
        if not isinstance(m, Part):
            return m if cin is None else _bind_item(m, cin, f"chain item {idx}")
        if cin is None:
            if m._owned and not reuse:
                fresh = m.fresh()
                if m.bound and fresh.in_channels is None and m.role != "stem":
                    fresh._bind_in_place(m.in_channels)  # type: ignore[arg-type]
                return fresh
            return m
        if m.role == "stem":  # first item, checked against the input channels above
            return m.fresh() if (m._owned and not reuse) else m
        if reuse:
            if not m.bound:
                m._bind_in_place(cin)
            return m
        return m.bind(cin)

    def _refresh_info(self) -> None:
        stride = getattr(self.stem, "stride", 1) if self.has_stem else 1
        info = []
        c = self.stem.out_channels if self.has_stem else self.in_channels
        for i, st in enumerate(self.stages):
            stride *= _stride_of(st)
            c = getattr(st, "out_channels", None)
            info.append(FeatureInfo(i, f"stages.{i}", c, stride))
        self.feature_info: list[FeatureInfo] = info
        self.feature_channels = c
        self.feature_stride = stride
        self.out_channels = self.head.out_channels if self.has_head else c
        self.stride = stride

    def _items(self) -> list[Any]:
        return ([self.stem] if self.has_stem else []) + list(self.stages) + ([self.head] if self.has_head else [])

    def _build(self, in_channels: int) -> None:
        self._assemble([(m, True) for m in self._items()], in_channels)

    def _bind_in_place(self, in_channels: int) -> None:
        self._build(in_channels)

    def fresh(self) -> ComposedModel:
        items = [m.fresh() if isinstance(m, Part) else copy.deepcopy(m) for m in self._items()]
        return ComposedModel(items[0] if self.has_stem else None,
                             items[1 if self.has_stem else 0: len(items) - (1 if self.has_head else 0)],
                             items[-1] if self.has_head else None, name=self.name,
                             input_shape=self.input_shape if self.bound else None)

    @property
    def input_shape(self) -> tuple[int, int, int] | None:
        if self.in_channels is None:
            return None
        return (self.in_channels, *self._input_hw)  # type: ignore[return-value]

    def label(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self.stages)} stages)"

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> Any:
        if self.in_channels is None:
            self._check_bound()
        if self.features_only:
            return self.get_stage_outputs(x)
        x = self.stem(x)
        x = self.stages(x)
        return self.head(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map (stem and stages, no head)."""
        if self.in_channels is None:
            self._check_bound()
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)

    def get_stage_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each stage's output, in order (stem excluded); channels/strides are in ``feature_info``."""
        if self.in_channels is None:
            self._check_bound()
        x = self.stem(x)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs

    # ------------------------------------------------------------------ introspection
    @property
    def num_classes(self) -> int | None:
        return self.head.out_channels if self.has_head else None

    def count_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (only those with ``requires_grad`` when ``trainable_only``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    def _parts(self) -> list[tuple[str, str, nn.Module]]:
        rows: list[tuple[str, str, nn.Module]] = []
        if self.has_stem:
            rows.append(("stem", "stem", self.stem))
        for i, st in enumerate(self.stages):
            rows.append((f"stage {i}", f"stages.{i}", st))
        if self.has_head:
            rows.append(("head", "head", self.head))
        return rows

    def _shapes(self, input_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """Output shape (without batch) of stem, each stage and head, from one no-grad eval forward."""
        shapes: dict[str, tuple[int, ...]] = {}
        hooks = []
        for _, key, module in self._parts():
            def hook(_m: nn.Module, _i: Any, out: Any, key: str = key) -> None:
                if isinstance(out, torch.Tensor):
                    shapes[key] = tuple(out.shape[1:])
            hooks.append(module.register_forward_hook(hook))
        param = next(self.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        was_training, features_only = self.training, self.features_only
        try:
            self.eval()
            self.features_only = False
            with torch.no_grad():
                self(torch.zeros(1, *input_shape, device=device, dtype=dtype))
        finally:
            for h in hooks:
                h.remove()
            self.train(was_training)
            self.features_only = features_only
        return shapes

    def _resolve_input(self, input_shape: Any) -> tuple[int, int, int]:
        if input_shape is None:
            if self.input_shape is None:
                self._check_bound()
            return self.input_shape  # type: ignore[return-value]
        shape = tuple(input_shape)
        if len(shape) == 4:
            shape = shape[1:]
        if len(shape) != 3:
            raise CompositionError("input_shape must be (C, H, W) or (N, C, H, W)", got=input_shape,
                                   where=f"{self.name}.explain")
        return shape  # type: ignore[return-value]

    def explain(self, input_shape: tuple[int, ...] | None = None) -> str:
        """A table: part, blocks, in -> out channels, stride, output size for ``input_shape``, params."""
        shape = self._resolve_input(input_shape)
        shapes = self._shapes(shape)
        header = ("part", "blocks", "channels", "stride", "output", "params")
        rows = []
        for title, key, module in self._parts():
            blocks = _blocks_label(module)
            cin = getattr(module, "in_channels", None)
            cout = getattr(module, "out_channels", None)
            stride = getattr(module, "stride", 1) if key != "head" else "-"
            params = sum(p.numel() for p in module.parameters())
            out = shapes.get(key)
            rows.append((title, blocks, f"{cin} -> {cout}", str(stride),
                         "x".join(str(s) for s in out) if out else "?", f"{params:,}"))
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        lines = [f"{self.name}: input {'x'.join(str(s) for s in shape)}"]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
        total, trainable = self.count_parameters(), self.count_parameters(trainable_only=True)
        lines.append(f"total params: {total:,} (trainable {trainable:,})")
        return "\n".join(lines)

    def summary(self, input_size: tuple[int, ...] | None = None) -> Any:
        """Per-part output shapes, parameters and FLOPs (``torch.utils.flop_counter``)."""
        from ..utils.summary import model_summary

        if input_size is None:
            input_size = self._resolve_input(None)
        return model_summary(self, input_size)

    # ------------------------------------------------------------------ write-back
    @property
    def spec(self) -> ModelSpec:
        """The :class:`ModelSpec` of this model (every part must carry a spec)."""
        if self.in_channels is None:
            self._check_bound()
        stem_spec: StemSpec | None = None
        if self.has_stem:
            stem_spec = self.stem.spec  # type: ignore[assignment]
        stage_specs: list[StageSpec] = []
        for i, st in enumerate(self.stages):
            if not isinstance(st, (Stage, Branch)):
                raise CompositionError(f"stage {i} ({describe(st)}) has no spec, so the model cannot be written "
                                       "as a recipe", where=f"stages.{i}", got=type(st).__name__,
                                       hint="compose it from Stage/Branch parts or registered block stages")
            stage_specs.append(st.spec)
        head_spec: HeadSpec | None = self.head.spec if self.has_head else None  # type: ignore[assignment]
        shape = self.input_shape
        if stem_spec is not None and stem_spec.in_channels is not None and stem_spec.in_channels == shape[0]:
            import dataclasses

            stem_spec = dataclasses.replace(stem_spec, in_channels=None)
        return ModelSpec(name=self.name, input_shape=shape, stem=stem_spec, stages=tuple(stage_specs),  # type: ignore[arg-type]
                         head=head_spec, drop_path_rate=self.drop_path_rate)

    def to_recipe(self) -> Any:
        """The :class:`~torchvision_customizer.recipe.Recipe` that rebuilds this architecture."""
        from ..recipe import Recipe

        return Recipe.from_spec(self.spec)

    # ------------------------------------------------------------------ model-surface hook
    def _surface_replace_classifier(self, num_classes: int) -> None:
        """``reset_classifier``: a fresh ``head.fc``; the head's spec (and so ``to_recipe``) follows."""
        import dataclasses

        if not self.has_head or not isinstance(self.head, Head):
            raise CompositionError("the model has no head to reset", where=f"{self.name}.reset_classifier",
                                   hint="append a Head: model >> Head(num_classes)")
        old = self.head.fc
        self.head.fc = nn.Linear(old.in_features, num_classes, bias=old.bias is not None,
                                 device=old.weight.device, dtype=old.weight.dtype)
        self.head._spec = dataclasses.replace(self.head._spec, num_classes=num_classes)
        self.head.out_channels = num_classes
        self._refresh_info()


def _blocks_label(module: nn.Module) -> str:
    spec = getattr(module, "_spec", None)
    if isinstance(module, Stem) and spec is not None:
        return f"{spec.type} {spec.kernel_size}x{spec.kernel_size}/{spec.stride}" + (f" + {spec.pool}pool"
                                                                                   if spec.pool else "")
    if isinstance(module, Stage) and spec is not None:
        attn = f"+{spec.attention}" if spec.attention else ""
        return f"{spec.type}{attn} x {spec.blocks}" + (f" + {spec.pool}pool" if spec.pool else "")
    if isinstance(module, Head) and spec is not None:
        return f"{spec.type}({spec.num_classes})"
    if isinstance(module, Branch):
        return module.label()
    return type(module).__name__


# ------------------------------------------------------------------------------------ operators
def chain(*items: Any, input_shape: tuple[int, int, int] | None = None, name: str = "ComposedModel") -> ComposedModel:
    """``a >> b >> c``: one :class:`ComposedModel`, channels inferred from each part's ``out_channels``.

    Parts of a :class:`ComposedModel` operand are taken over as they are (``(a >> b) >> c`` extends
    the chain); a standalone part that already belongs to another chain is copied with fresh
    weights.
    """
    flat: list[tuple[Any, bool]] = []
    for it in items:
        if isinstance(it, ComposedModel):
            flat.extend((m, True) for m in it._items())
            if name == "ComposedModel":
                name = it.name
            if input_shape is None and it is items[0] and it.bound:
                input_shape = it.input_shape
        elif isinstance(it, nn.Module):
            flat.append((it, False))
        elif isinstance(it, type) and issubclass(it, nn.Module):
            raise CompositionError(f"got the class {it.__name__}, not an instance", where="chain",
                                   got=it, hint=f"instantiate it: {it.__name__}(...)")
        else:
            raise CompositionError("only modules can be chained", where="chain", got=it,
                                   expected="a Stem, Stage, Head, Branch or nn.Module with out_channels")
    model = ComposedModel.__new__(ComposedModel)
    Part.__init__(model)
    model.name = name
    model.features_only = False
    model.drop_path_rate = 0.0
    model._input_hw = tuple(input_shape[1:]) if input_shape is not None else (224, 224)
    model._assemble(flat, input_shape[0] if input_shape is not None else None)
    return model


def compose(*modules: Any, input_shape: tuple[int, int, int] | None = None) -> ComposedModel:
    """Functional ``>>``: ``compose(Stem(64), Stage(128), Head(10))``."""
    return chain(*modules, input_shape=input_shape)


def Sequential(*layers: Any) -> ComposedModel:
    """Older-release ``Sequential(*layers)``: now infers channels like ``>>``."""
    return chain(*layers)


def Compose(input_shape: tuple[int, int, int] = (3, 224, 224), layers: Iterable[Any] = ()) -> ComposedModel:
    """Older-release ``Compose(input_shape, layers)``: ``>>`` over ``layers`` bound to ``input_shape``."""
    return chain(*list(layers), input_shape=tuple(input_shape))  # type: ignore[arg-type]


def repeat(module: Any, n: int) -> ComposedModel:
    """``n`` independent copies of ``module`` in sequence (``stage * n``); each has its own weights."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise CompositionError("repeat count must be a positive integer", got=n, where="repeat",
                               expected="an integer >= 1")
    if isinstance(module, Part):
        copies: list[Any] = [module.fresh() for _ in range(n)]
        shape = (module.in_channels, 224, 224) if module.bound and module.role != "stem" else None
        return chain(*copies, input_shape=shape)  # type: ignore[arg-type]
    if not isinstance(module, nn.Module):
        raise CompositionError("only modules can be repeated", got=module, where="repeat")
    copies = []
    for _ in range(n):
        m = copy.deepcopy(module)
        for sub in m.modules():
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()
        copies.append(m)
    return chain(*copies)


def branch(*modules: Any, merge: str = "concat") -> Branch:
    """Parallel paths merged by channel concatenation (``a | b``) or addition (``merge="add"``)."""
    return Branch(*modules, merge=merge)


def residual(module: Any) -> Branch:
    """``x + module(x)``: an identity path added to ``module``'s output (channels must match)."""
    return Branch(None, module, merge="add")


# older-release names
VisionModel = ComposedModel
ComposedModule = ComposedModel
BranchedModule = Branch
