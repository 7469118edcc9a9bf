"""Templates: well-known architectures as recipe data, and a fluent ``Template`` to customize them.

The recipes live as YAML files in ``templates/data/`` (``resnet18`` ... ``convnext_tiny``,
``resnet_base``, ``efficientnet_base``, ``hybrid_resnet_se``); :func:`resnet`, :func:`vgg`,
:func:`mobilenet`, :func:`efficientnet` and :func:`densenet` are thin layers that load one and
apply :class:`Template` methods. Every template is built by the one builder: no
``torchvision.models`` class appears in its module tree. ResNet-18/50, VGG-16-BN, MobileNetV2 and
EfficientNet-B0 have exactly torchvision's parameter counts, and ResNet/DenseNet templates load
torchvision state dicts through :mod:`.keymap`.

Example:
    >>> model = Template.resnet(50).replace_activation("swish").add_attention("se").build(num_classes=10)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from ..errors import RecipeError, UnknownComponentError, closest
from ..layers import make_divisible
from ..registry import ACTIVATIONS, BLOCKS, NORMS
from ..spec import _blocks
from ..spec.convert import head_from_value, stage_from_fields, stem_from_value
from ..spec.issues import Collector
from ..spec.model import ModelSpec, StageSpec
from .keymap import KEY_MAPS, template_state_dict_to_torchvision, torchvision_state_dict_to_template

__all__ = [
    "KEY_MAPS",
    "Template",
    "densenet",
    "efficientnet",
    "get_template_recipe",
    "list_templates",
    "mobilenet",
    "resnet",
    "template_state_dict_to_torchvision",
    "torchvision_state_dict_to_template",
    "vgg",
]


def list_templates() -> list[str]:
    """Names of the built-in templates."""
    from ..recipe import list_templates as _list

    return _list()


def get_template_recipe(name: str) -> Any:
    """The :class:`~torchvision_customizer.recipe.Recipe` of a built-in template (``extends`` resolved)."""
    from ..recipe.yaml_io import _load_document, expand_macros

    if name not in list_templates():
        raise UnknownComponentError(f"unknown template {name!r}", where="templates",
                                    expected="one of " + ", ".join(list_templates()),
                                    suggestions=closest(str(name), list_templates()))
    config, origin, lines = _load_document({"extends": name})
    config = expand_macros(config, origin=origin, lines=lines)
    if "backbone" in config:
        raise RecipeError(f"template {name!r} is a hybrid (backbone) recipe, not a Template", where="templates",
                          hint="load it with load_yaml_recipe or create_recipe_from_template")
    from ..recipe.yaml_io import _recipe_of

    return _recipe_of(config)


def _check(c: Collector, title: str) -> None:
    c.raise_if_any(title)


def _stage_fields(st: StageSpec) -> dict[str, Any]:
    d: dict[str, Any] = {"type": st.type, "channels": st.channels, "blocks": st.blocks, "stride": st.stride}
    if st.attention is not None:
        d["attention"] = st.attention
    if st.drop_path:
        d["drop_path"] = st.drop_path
    if st.pool is not None:
        d["pool"] = st.pool
    d.update(st.args)
    return d


def _map_stages(stages: Iterable[StageSpec], fn: Any) -> tuple[StageSpec, ...]:
    out = []
    for st in stages:
        if st.type == "branch":
            out.append(dataclasses.replace(st, branches=tuple(_map_stages(p, fn) for p in st.branches)))
        else:
            out.append(fn(st))
    return tuple(out)


class Template:
    """A fluent, really-applied customization of a template recipe.

    Every method changes the spec it holds (and returns ``self`` for chaining); :meth:`build`
    builds it. Unknown names and impossible requests are errors, never no-ops.

    Example:
        >>> t = Template.resnet(18).replace_norm("group").modify_stage(3, blocks=3).use_dropout(0.2)
        >>> model = t.build(num_classes=10)
    """

    def __init__(self, source: Any) -> None:
        from ..recipe import Recipe

        if isinstance(source, str):
            source = get_template_recipe(source)
        if isinstance(source, Recipe):
            source = source.to_spec()
        if not isinstance(source, ModelSpec):
            raise RecipeError("a Template needs a template name, a Recipe or a ModelSpec", where="Template",
                              got=type(source).__name__)
        self._spec: ModelSpec = source
        self.changes: list[str] = []

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> Template:
        t = cls(name)
        if "num_classes" in overrides:
            t.set_head(num_classes=overrides.pop("num_classes"))
        if overrides:
            raise RecipeError("unknown Template.from_name options", got=sorted(overrides), where="Template.from_name",
                              expected="num_classes")
        return t

    @staticmethod
    def list_templates() -> list[str]:
        return list_templates()

    @classmethod
    def resnet(cls, layers: int = 50) -> Template:
        return cls(_variant("resnet", layers, (18, 34, 50, 101, 152)))

    @classmethod
    def vgg(cls, layers: int = 16, batch_norm: bool = True) -> Template:
        return cls(_variant("vgg", layers, (11, 13, 16, 19)) + ("_bn" if batch_norm else ""))

    @classmethod
    def mobilenet(cls, version: int = 2, mode: str = "large") -> Template:
        if version == 3:
            if mode not in ("small", "large"):
                raise RecipeError("unknown MobileNetV3 mode", got=mode, expected="'small' or 'large'",
                                  where="Template.mobilenet")
            return cls(f"mobilenet_v3_{mode}")
        return cls(_variant("mobilenet_v", version, (1, 2, 3)))

    @classmethod
    def efficientnet(cls, variant: str = "b0") -> Template:
        t = cls("efficientnet_b0")
        return t._efficientnet_scale(variant) if variant != "b0" else t

    @classmethod
    def densenet(cls, layers: int = 121) -> Template:
        t = cls("densenet121")
        return t._densenet_config(layers) if layers != 121 else t

    @classmethod
    def convnext(cls, size: str = "tiny") -> Template:
        if size != "tiny":
            raise RecipeError("only convnext 'tiny' ships as a template", got=size, where="Template.convnext")
        return cls("convnext_tiny")

    # ------------------------------------------------------------------ helpers
    @property
    def spec(self) -> ModelSpec:
        return self._spec

    def _set(self, note: str, **changes: Any) -> Template:
        new = dataclasses.replace(self._spec, **changes)
        if new == self._spec:
            raise RecipeError(f"{note}: nothing to change in template {self._spec.name!r}", where="Template",
                              hint="the template has no part this method applies to")
        self._spec = new
        self.changes.append(note)
        return self

    # ------------------------------------------------------------------ customization
    def replace_activation(self, act: str) -> Template:
        """Use ``act`` everywhere an activation is configurable (stem, every block, head MLP/norm)."""
        if not isinstance(act, str) or act not in ACTIVATIONS:
            raise UnknownComponentError(f"unknown activation {act!r}", where="Template.replace_activation",
                                        suggestions=closest(str(act), ACTIVATIONS.list()))
        stem = self._spec.stem
        if stem is not None and stem.act is not None:
            stem = dataclasses.replace(stem, act=act)

        def fn(st: StageSpec) -> StageSpec:
            if _blocks.takes(st.type, "act_layer") and st.args.get("act_layer", "x") is not None:
                return dataclasses.replace(st, args={**st.args, "act_layer": act})
            return st

        head = self._spec.head
        if head is not None and (head.type == "mlp" or head.norm is not None):
            head = dataclasses.replace(head, act=act)
        return self._set(f"activation -> {act}", stem=stem, stages=_map_stages(self._spec.stages, fn), head=head)

    def replace_norm(self, norm: str) -> Template:
        """Use ``norm`` for every norm layer (stem, blocks, head norm); absent norms stay absent."""
        if not isinstance(norm, str) or norm not in NORMS:
            raise UnknownComponentError(f"unknown norm {norm!r}", where="Template.replace_norm",
                                        suggestions=closest(str(norm), NORMS.list()))
        stem = self._spec.stem
        if stem is not None and stem.norm is not None:
            stem = dataclasses.replace(stem, norm=norm)

        def fn(st: StageSpec) -> StageSpec:
            if _blocks.takes(st.type, "norm_layer") and st.args.get("norm_layer", "x") is not None:
                return dataclasses.replace(st, args={**st.args, "norm_layer": norm})
            return st

        head = self._spec.head
        if head is not None and head.norm is not None:
            head = dataclasses.replace(head, norm=norm)
        return self._set(f"norm -> {norm}", stem=stem, stages=_map_stages(self._spec.stages, fn), head=head)

    def add_attention(self, type: str = "se", stages: Iterable[int] | None = None,
                      after: str = "block", ratio: float | None = None) -> Template:
        """Fill the attention slot of every block (of ``stages``, by index) with ``type``.

        ``ratio`` is the squeeze ratio (``se_ratio``). Stages whose block has no attention slot are
        skipped when ``stages`` is not given, and an error when they are named.
        """
        if after != "block":
            raise RecipeError("attention goes inside each block (after='block')", got=after,
                              where="Template.add_attention", expected="'block'")
        if not isinstance(type, str) or type not in BLOCKS:
            raise UnknownComponentError(f"unknown attention block {type!r}", where="Template.add_attention",
                                        suggestions=_blocks.suggest_blocks(type))
        wanted = None if stages is None else set(stages)
        n = len(self._spec.stages)
        if wanted is not None and not all(isinstance(i, int) and 0 <= i < n for i in wanted):
            raise RecipeError("stage index out of range", got=sorted(wanted), expected=f"0..{n - 1}",
                              where="Template.add_attention")
        new = []
        for i, st in enumerate(self._spec.stages):
            if wanted is not None and i not in wanted:
                new.append(st)
                continue
            if st.type == "branch" or not _blocks.takes(st.type, "attn_layer"):
                if wanted is not None:
                    raise RecipeError(f"stage {i} ({st.type}) has no attention slot", where=f"stages.{i}",
                                      got=type)
                new.append(st)
                continue
            args = {k: v for k, v in st.args.items() if k != "attn_layer"}
            if ratio is not None:
                args["se_ratio"] = ratio
            new.append(dataclasses.replace(st, attention=type, args=args))
        return self._set(f"attention {type}", stages=tuple(new))

    def modify_stage(self, index: int, **changes: Any) -> Template:
        """Change stage ``index``: ``channels``, ``blocks``, ``stride``/``downsample``, ``attention``,
        ``drop_path``, ``pool``, ``type`` (block arguments the new block does not take are dropped)
        or any block argument."""
        stages = list(self._spec.stages)
        if not isinstance(index, int) or not -len(stages) <= index < len(stages):
            raise RecipeError("stage index out of range", got=index, expected=f"0..{len(stages) - 1}",
                              where="Template.modify_stage")
        st = stages[index]
        if st.type == "branch":
            raise RecipeError("branch stages cannot be modified in place", where=f"stages.{index}")
        fields = _stage_fields(st)
        if "downsample" in changes:
            fields.pop("stride", None)
        new_type = changes.get("type", changes.get("pattern"))
        if new_type is not None and isinstance(new_type, str) and new_type.split("+")[0] in BLOCKS:
            accepted = _blocks.block_params(new_type.split("+")[0])
            fields = {k: v for k, v in fields.items() if k in ("type", "channels", "blocks", "stride", "drop_path",
                                                               "pool", "attention") or k in accepted}
            fields.pop("type")
            if "attention" in fields and "attn_layer" not in accepted:
                fields.pop("attention")
        fields.update(changes)
        c = Collector()
        spec = stage_from_fields(fields, c, ("stages", index))
        if spec is not None and not c:
            spec._check(c, ("stages", index))
        _check(c, "Template.modify_stage")
        stages[index] = spec  # type: ignore[assignment]
        return self._set(f"stage {index}: {changes}", stages=tuple(stages))

    def set_stem(self, **changes: Any) -> Template:
        """Change the stem (``channels``, ``kernel_size``, ``stride``, ``pool``, ``act``, ``norm``, ``type``)."""
        base = self._spec.stem.to_dict() if self._spec.stem is not None else {"type": "conv"}
        if "type" in changes:
            base = {"type": changes["type"], "channels": base.get("channels", 64)}
        c = Collector()
        stem = stem_from_value({**base, **changes}, c, ("stem",))
        if stem is not None and not c:
            stem._check(c, ("stem",))
        _check(c, "Template.set_stem")
        return self._set(f"stem: {changes}", stem=stem)

    def set_head(self, **changes: Any) -> Template:
        """Change the head (``num_classes``, ``dropout``, ``hidden``, ``pool``, ``pool_size``, ``act``, ``norm``)."""
        base = self._spec.head.to_dict() if self._spec.head is not None else {"type": "linear", "num_classes": 1000}
        if "hidden" in changes and "type" not in changes:
            base["type"] = "mlp" if changes["hidden"] else "linear"
        c = Collector()
        head = head_from_value({**base, **changes}, c, ("head",))
        if head is not None and not c:
            head._check(c, ("head",))
        _check(c, "Template.set_head")
        return self._set(f"head: {changes}", head=head)

    def use_dropout(self, rate: float) -> Template:
        """Dropout before the classifier (after each hidden layer of an MLP head)."""
        return self.set_head(dropout=rate)

    def scale_channels(self, factor: float, divisor: int = 8) -> Template:
        """Multiply the stem's and every stage's channels by ``factor`` (rounded to ``divisor``)."""
        if not isinstance(factor, (int, float)) or isinstance(factor, bool) or factor <= 0:
            raise RecipeError("factor must be a positive number", got=factor, where="Template.scale_channels")
        stem = self._spec.stem
        if stem is not None:
            stem = dataclasses.replace(stem, channels=make_divisible(stem.channels * factor, divisor))

        def fn(st: StageSpec) -> StageSpec:
            return dataclasses.replace(st, channels=make_divisible(st.channels * factor, divisor))  # type: ignore[operator]

        return self._set(f"channels x {factor}", stem=stem, stages=_map_stages(self._spec.stages, fn))

    def scale_depth(self, factor: float) -> Template:
        """Multiply every stage's block count by ``factor`` (rounded up)."""
        if not isinstance(factor, (int, float)) or isinstance(factor, bool) or factor <= 0:
            raise RecipeError("factor must be a positive number", got=factor, where="Template.scale_depth")

        def fn(st: StageSpec) -> StageSpec:
            return dataclasses.replace(st, blocks=max(1, math.ceil(st.blocks * factor)))

        return self._set(f"depth x {factor}", stages=_map_stages(self._spec.stages, fn))

    def set_input_shape(self, input_shape: Iterable[int]) -> Template:
        return self._set(f"input_shape {tuple(input_shape)}", input_shape=tuple(input_shape))

    def set_drop_path_rate(self, rate: float) -> Template:
        stages = tuple(dataclasses.replace(s, drop_path=0.0) if s.drop_path else s for s in self._spec.stages)
        return self._set(f"drop_path_rate {rate}", drop_path_rate=rate, stages=stages)

    # ------------------------------------------------------------------ family variants
    def _efficientnet_scale(self, variant: str) -> Template:
        table = {"b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
                 "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
                 "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5)}
        if variant not in table:
            raise RecipeError("unknown EfficientNet variant", got=variant, expected="b0 ... b7",
                              where="Template.efficientnet", suggestions=closest(str(variant), table))
        width, depth, res, dropout = table[variant]
        spec = self._spec
        stem = dataclasses.replace(spec.stem, channels=make_divisible(spec.stem.channels * width, 8))  # type: ignore[arg-type]
        stages, last = [], stem.channels
        for st in spec.stages:
            if st.type == "mbconv":
                st = dataclasses.replace(st, channels=make_divisible(st.channels * width, 8),  # type: ignore[operator]
                                         blocks=math.ceil(st.blocks * depth))
                last = st.channels
            else:  # the 1x1 head convolution: 4x the last MBConv width
                st = dataclasses.replace(st, channels=4 * last)  # type: ignore[operator]
            stages.append(st)
        self._spec = dataclasses.replace(spec, name=f"efficientnet_{variant}", input_shape=(3, res, res), stem=stem,
                                         stages=tuple(stages), head=dataclasses.replace(spec.head, dropout=dropout))  # type: ignore[arg-type]
        self.changes.append(f"efficientnet {variant}")
        return self

    def _densenet_config(self, layers: int, growth_rate: int | None = None, num_init_features: int | None = None,
                         compression: float = 0.5, bn_size: int = 4) -> Template:
        table = {121: (32, 64, (6, 12, 24, 16)), 161: (48, 96, (6, 12, 36, 24)), 169: (32, 64, (6, 12, 32, 32)),
                 201: (32, 64, (6, 12, 48, 32)), 264: (32, 64, (6, 12, 64, 48))}
        if layers not in table:
            raise RecipeError("unknown DenseNet depth", got=layers, expected=", ".join(map(str, table)),
                              where="Template.densenet")
        growth, init, counts = table[layers]
        growth = growth_rate or growth
        init = num_init_features or init
        stem = dataclasses.replace(self._spec.stem, channels=init)  # type: ignore[arg-type]
        stages, c = [], init
        for i, n in enumerate(counts):
            c += n * growth
            last = i == len(counts) - 1
            if not last:
                c = int(c * compression)
            stages.append(StageSpec("dense", c, blocks=n, stride=1 if last else 2,
                                    args={"growth_rate": growth, "bn_size": bn_size}))
        self._spec = dataclasses.replace(self._spec, name=f"densenet{layers}", stem=stem, stages=tuple(stages))
        self.changes.append(f"densenet {layers}")
        return self

    # ------------------------------------------------------------------ output
    def to_spec(self) -> ModelSpec:
        return self._spec

    def to_recipe(self) -> Any:
        from ..recipe import Recipe

        return Recipe.from_spec(self._spec)

    def get_config(self) -> dict[str, Any]:
        """The recipe as YAML-ready data."""
        return self.to_recipe().to_dict()

    def describe(self) -> str:
        """The recipe strings and the changes applied."""
        r = self.to_recipe()
        lines = [f"Template {self._spec.name!r}", f"  stem:  {r.stem}"]
        lines += [f"  stage {i}: {s}" for i, s in enumerate(r.stages)]
        lines.append(f"  head:  {r.head}")
        if self.changes:
            lines.append("  changes: " + "; ".join(self.changes))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.describe()

    def build(self, num_classes: int | None = None, *, in_channels: int | None = None, dropout: float | None = None,
              device: Any = None, dtype: Any = None) -> Any:
        """Build the model (``num_classes``, ``in_channels`` and ``dropout`` override the template's)."""
        from ..recipe import build_recipe

        spec = self._spec
        if in_channels is not None:
            spec = dataclasses.replace(spec, input_shape=(in_channels, *spec.input_shape[1:]))
        if dropout is not None:
            if spec.head is None:
                raise RecipeError("the template has no head for dropout", where="Template.build")
            spec = dataclasses.replace(spec, head=dataclasses.replace(spec.head, dropout=dropout))
        return build_recipe(spec, num_classes=num_classes, device=device, dtype=dtype)


def _variant(prefix: str, n: Any, allowed: tuple[int, ...]) -> str:
    if n not in allowed:
        raise RecipeError(f"no {prefix}{n} template", got=n, expected="one of " + ", ".join(map(str, allowed)),
                          where=f"templates.{prefix.rstrip('_v')}")
    return f"{prefix}{n}"


def _common(t: Template, *, num_classes: int, in_channels: int, activation: str | None, dropout: float | None,
            channel_scale: float, input_shape: Any = None) -> Template:
    if activation is not None:
        t.replace_activation(activation)
    if channel_scale != 1.0:
        t.scale_channels(channel_scale)
    if dropout is not None and t.spec.head is not None and t.spec.head.dropout != dropout:
        t.use_dropout(dropout)
    if t.spec.head is not None and t.spec.head.num_classes != num_classes:
        t.set_head(num_classes=num_classes)
    shape = tuple(input_shape) if input_shape is not None else (in_channels, *t.spec.input_shape[1:])
    if shape != t.spec.input_shape:
        t.set_input_shape(shape)
    return t


# ---------------------------------------------------------------------------------- functions
def resnet(layers: int = 50, num_classes: int = 1000, in_channels: int = 3, activation: str | None = None,
           norm_type: str | None = None, use_se: bool = False, se_reduction: int = 16, stem_channels: int = 64,
           channel_scale: float = 1.0, dropout: float | None = None, zero_init_residual: bool = False,
           attention: str | None = None, input_shape: Any = None) -> Any:
    """ResNet-18/34/50/101/152 from the templates (torchvision-identical at the defaults).

    ``use_se``/``attention`` fill every block's attention slot (SE-ResNet placement);
    ``zero_init_residual`` zeroes each block's last norm scale (torchvision's option, off by default).
    """
    t = Template.resnet(layers)
    if norm_type is not None:
        t.replace_norm(norm_type)
    if use_se or attention:
        t.add_attention(attention or "se", ratio=1 / se_reduction if se_reduction else None)
    if stem_channels != 64:
        t.set_stem(channels=stem_channels)
    if zero_init_residual:
        for i in range(len(t.spec.stages)):
            t.modify_stage(i, zero_init_last=True)
    return _common(t, num_classes=num_classes, in_channels=in_channels, activation=activation, dropout=dropout,
                   channel_scale=channel_scale, input_shape=input_shape).build()


def vgg(layers: int = 16, num_classes: int = 1000, in_channels: int = 3, activation: str | None = None,
        use_batchnorm: bool = True, dropout: float | None = None, channel_scale: float = 1.0,
        input_shape: Any = None) -> Any:
    """VGG-11/13/16/19 (with or without BatchNorm), torchvision-identical at the defaults."""
    t = Template.vgg(layers, batch_norm=use_batchnorm)
    return _common(t, num_classes=num_classes, in_channels=in_channels, activation=activation, dropout=dropout,
                   channel_scale=channel_scale, input_shape=input_shape).build()


def mobilenet(version: int = 2, num_classes: int = 1000, width_multiplier: float = 1.0,
              activation: str | None = None, dropout: float | None = None, mode: str = "large",
              in_channels: int = 3, input_shape: Any = None) -> Any:
    """MobileNet V1, V2 (torchvision-identical) or V3 ``small``/``large`` (layout template)."""
    t = Template.mobilenet(version, mode)
    return _common(t, num_classes=num_classes, in_channels=in_channels, activation=activation, dropout=dropout,
                   channel_scale=width_multiplier, input_shape=input_shape).build()


def efficientnet(variant: str = "b0", num_classes: int = 1000, in_channels: int = 3, dropout: float | None = None,
                 activation: str | None = None, input_shape: Any = None) -> Any:
    """EfficientNet-B0 ... B7 (B0 torchvision-identical; B1-B7 scaled with torchvision's width/depth rules)."""
    t = Template.efficientnet(variant)
    return _common(t, num_classes=num_classes, in_channels=in_channels, activation=activation, dropout=dropout,
                   channel_scale=1.0, input_shape=input_shape).build()


def densenet(layers: int = 121, num_classes: int = 1000, growth_rate: int | None = None, bn_size: int = 4,
             compression: float = 0.5, activation: str | None = None, dropout: float | None = None,
             num_init_features: int | None = None, in_channels: int = 3, input_shape: Any = None) -> Any:
    """DenseNet-121/161/169/201/264 (DenseNet-BC)."""
    t = Template("densenet121")
    if layers != 121 or growth_rate or num_init_features or compression != 0.5 or bn_size != 4:
        t._densenet_config(layers, growth_rate, num_init_features, compression, bn_size)
    return _common(t, num_classes=num_classes, in_channels=in_channels, activation=activation, dropout=dropout,
                   channel_scale=1.0, input_shape=input_shape).build()

