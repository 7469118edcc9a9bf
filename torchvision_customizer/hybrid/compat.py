"""The older release's hybrid helpers, driven by the backbone catalog.

``extract_tiers(model, name=None)`` and ``get_backbone_info(model, name=None)`` work on any
torchvision classification model (plain or built by :class:`HybridBuilder`): the stem, stages and
head are read-only views of the model's own modules (nothing is copied or re-registered).
``create_hybrid`` and ``list_backbones`` are thin aliases of the builder.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import BackboneError, closest
from .catalog import CATALOG, BackboneSpec, get_backbone_spec, get_path
from .catalog import list_backbones as _list

__all__ = ["BackboneInfo", "create_hybrid", "extract_tiers", "get_backbone_info", "list_backbones"]


@dataclass
class BackboneInfo:
    """What a backbone consists of.

    Attributes:
        name: catalog name.
        stem_parts / stage_parts / head_parts: module (or parameter) paths.
        total_params / trainable_params: parameter counts of the whole model.
        stage_channels / stage_strides: per stage, from the catalog.
        stage_params: parameters per stage.
    """

    name: str
    stem_parts: list[str]
    stage_parts: list[list[str]]
    head_parts: list[str]
    total_params: int
    trainable_params: int
    stage_channels: list[int]
    stage_strides: list[int] = field(default_factory=list)
    stage_params: list[int] = field(default_factory=list)
    layout: str = "nchw"

    def summary(self) -> str:
        lines = [f"{self.name}: {self.total_params:,} parameters ({self.trainable_params:,} trainable)",
                 f"  stem: {', '.join(self.stem_parts)}"]
        for i, parts in enumerate(self.stage_parts):
            shown = parts if len(parts) <= 3 else [parts[0], "...", parts[-1]]
            lines.append(f"  stage {i}: {', '.join(shown)}  channels={self.stage_channels[i]} "
                         f"stride={self.stage_strides[i]} params={self.stage_params[i]:,}")
        lines.append(f"  head: {', '.join(self.head_parts)}")
        return "\n".join(lines)

    __str__ = summary


def _shapes(model: nn.Module, skip: Sequence[str]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()
            if not any(k == s or k.startswith(s + ".") for s in skip)}


def _identify(model: nn.Module, name: str | None) -> tuple[BackboneSpec, list[list[str]]]:
    from .model import HybridModel

    if isinstance(model, HybridModel):
        return model.spec, model.stage_paths
    cls_names = {c.__name__ for c in type(model).__mro__}
    if name is not None:
        spec = get_backbone_spec(name)
        if spec.family.tv_class not in cls_names:
            raise BackboneError(f"the model is a {type(model).__name__}, not a {spec.name}", where="extract_tiers",
                                expected=f"a torchvision {spec.family.tv_class}", got=type(model).__name__)
        return spec, [list(s) for s in spec.stages]
    candidates = [s for s in CATALOG.values() if s.family.tv_class in cls_names]
    if not candidates:
        raise BackboneError(f"cannot tell which backbone a {type(model).__name__} is", where="extract_tiers",
                            expected="a torchvision classification model (or pass name=...)",
                            got=type(model).__name__,
                            suggestions=closest(type(model).__name__.lower(), CATALOG, n=3, cutoff=0.3))
    if len(candidates) > 1:
        from ._meta import build_on_meta
        from .builder import _base_kwargs, _tv_builder

        for spec in candidates:
            skip = (spec.classifier, spec.first_conv)
            want = _shapes(model, skip)
            cand = build_on_meta(_tv_builder(spec.name), weights=None, **_base_kwargs(spec))
            got = _shapes(cand, skip)
            if all(got.get(k) == v for k, v in want.items()) and set(got) <= set(want) | {
                    k for k in got if any(k.startswith(a + ".") for a in spec.family.aux)}:
                return spec, [list(s) for s in spec.stages]
        raise BackboneError(f"this {type(model).__name__} matches no catalog backbone exactly", where="extract_tiers",
                            expected="an unmodified torchvision model, or name=...",
                            got=type(model).__name__, suggestions=[c.name for c in candidates][:5])
    spec = candidates[0]
    return spec, [list(s) for s in spec.stages]


def _view(model: nn.Module, paths: Sequence[str]) -> nn.Module:
    mods = [(p, get_path(model, p)) for p in paths]
    mods = [(p, m) for p, m in mods if isinstance(m, nn.Module)]
    if len(mods) == 1:
        return mods[0][1]
    return nn.Sequential(OrderedDict((p.replace(".", "_"), m) for p, m in mods))


def get_backbone_info(model: nn.Module, name: str | None = None) -> BackboneInfo:
    """Stem/stage/head parts, parameter counts and per-stage channels of a torchvision model."""
    spec, stages = _identify(model, name)

    def params(paths: Sequence[str]) -> int:
        total = 0
        for p in paths:
            obj = get_path(model, p)
            total += obj.numel() if isinstance(obj, torch.Tensor) else sum(t.numel() for t in obj.parameters())
        return total

    return BackboneInfo(
        name=spec.name, stem_parts=list(spec.stem), stage_parts=stages,
        head_parts=list(dict.fromkeys([*spec.head_parts, spec.classifier])),
        total_params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        stage_channels=list(spec.channels), stage_strides=list(spec.strides),
        stage_params=[params(s) for s in stages], layout=spec.layout)


def extract_tiers(model: nn.Module, name: str | None = None) -> dict[str, Any]:
    """``{"stem", "stages", "head", "info"}``: views of the model's own modules (no copies)."""
    spec, stages = _identify(model, name)
    return {
        "stem": _view(model, spec.stem),
        "stages": nn.ModuleList([_view(model, s) for s in stages]),
        "head": get_path(model, spec.classifier),
        "info": get_backbone_info(model, spec.name),
    }


def create_hybrid(backbone: str, num_classes: int | None = None, weights: Any = "DEFAULT", patches: Any = None,
                  **kwargs: Any) -> Any:
    """``HybridBuilder().from_torchvision(backbone, weights=..., patches=..., num_classes=...)``."""
    from .builder import HybridBuilder

    return HybridBuilder().from_torchvision(backbone, weights=weights, patches=patches, num_classes=num_classes,
                                            **kwargs)


def list_backbones(filter: str | None = None) -> list[str]:
    """Every catalog backbone name (every torchvision classification model), optionally fnmatch-filtered."""
    return _list(filter)
