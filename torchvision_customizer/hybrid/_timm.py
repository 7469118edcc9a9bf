"""``HybridBuilder.from_timm``: the same surface over timm models (an optional dependency).

The stage table comes from timm's own ``feature_info`` metadata (entries that describe the stem,
such as ResNet's ``act1``, are left out so stage 0 is the first real stage), the classifier and
first conv from its ``pretrained_cfg``. Patches, freezing, parameter groups and ``features_only``
(through timm's ``forward_intermediates``) behave as for torchvision models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import BackboneError, BlockValueError, PluginError, closest
from ._meta import build_on_meta
from .catalog import BackboneSpec, Family, get_path
from .model import HybridModel
from .patch import PlanContext, apply_plan, normalize_patches, plan_patches, trace_model

__all__ = ["build_timm", "timm_spec"]


def _timm() -> Any:
    try:
        import timm
    except ImportError:
        raise PluginError("timm is not installed", where="HybridBuilder.from_timm",
                          expected="pip install 'torchvision-customizer[timm]'", got="ImportError") from None
    return timm


def _top(path: str) -> str:
    return path.split(".")[0]


def timm_spec(model: nn.Module, name: str) -> tuple[BackboneSpec, int]:
    """A catalog row for a timm model, from its metadata; also how many leading feature entries
    describe the stem."""
    info = list(getattr(model, "feature_info", []) or [])
    info = [dict(d) for d in info]
    if not info:
        raise BackboneError(f"timm model {name!r} has no feature_info", where="from_timm",
                            expected="a timm model with stage metadata")
    skip = 0
    for d in info:
        mod = get_path(model, d["module"])
        is_container = isinstance(mod, (nn.Sequential, nn.ModuleList)) or len(list(mod.children())) > 2
        if "stem" in d["module"] or not is_container:
            skip += 1
            continue
        break
    stages_info = info[skip:] or info
    skip = len(info) - len(stages_info)
    stage_paths = [(d["module"],) for d in stages_info]
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    classifier = cfg.get("classifier") or "head"
    if isinstance(classifier, (list, tuple)):
        classifier = classifier[0]
    first_conv = cfg.get("first_conv") or ""
    if isinstance(first_conv, (list, tuple)):
        first_conv = first_conv[0]
    first_conv = first_conv.removesuffix(".weight") if isinstance(first_conv, str) else ""
    order = [n for n, _ in model.named_children()]
    tops = [_top(p[0]) for p in stage_paths]
    first_i, last_i = order.index(tops[0]), order.index(tops[-1])
    stem = tuple(n for n, _ in model.named_parameters(recurse=False)) + tuple(order[:first_i])
    head_parts = tuple(order[last_i + 1:])
    layout = "nhwc" if str(getattr(model, "output_fmt", "NCHW")).upper() == "NHWC" else "nchw"
    if any(isinstance(m, nn.Module) and hasattr(m, "num_prefix_tokens") for m in [model]):
        layout = "tokens"
    fam = Family(name=f"timm:{type(model).__name__}", tv_class=type(model).__name__, classifier=classifier,
                 head_parts=head_parts, first_conv=first_conv, stem=stem, layout=layout,
                 prefix_tokens=int(getattr(model, "num_prefix_tokens", 0) or 0))
    spec = BackboneSpec(name=name, family=fam, stem=stem, stages=tuple(stage_paths),
                        channels=tuple(int(d["num_chs"]) for d in stages_info),
                        strides=tuple(int(d["reduction"]) for d in stages_info), head_parts=head_parts)
    return spec, skip


def build_timm(builder: Any, name: str, *, pretrained: bool, weights: Any, patches: Any, num_classes: Any,
               dropout: Any, freeze_backbone: bool, unfreeze_stages: Any, in_chans: int, features_only: bool,
               out_indices: Sequence[int] | None, preserve: Any, verbose: bool, bn: str, replace_norm: Any,
               replace_act: Any, dry_run: bool, strict: bool) -> Any:
    from .builder import _check_args, _merge_patches, _update_stages

    timm = _timm()
    if not isinstance(name, str) or not timm.is_model(name):
        names = timm.list_models()
        raise BackboneError(f"unknown timm model {name!r}", where="timm", expected="a name from timm.list_models()",
                            suggestions=closest(str(name), names, n=5))
    if pretrained and weights is not None:
        raise BlockValueError("pass either pretrained=True or weights=<file>", where="from_timm",
                              got={"pretrained": pretrained, "weights": weights})
    kw: dict[str, Any] = {"in_chans": in_chans}
    if num_classes is not None:
        kw["num_classes"] = num_classes
    if dropout is not None:
        kw["drop_rate"] = float(dropout)
    skeleton = build_on_meta(timm.create_model, name, pretrained=False, **kw).to("meta")
    spec, skip = timm_spec(skeleton, name)
    idx, keep = _check_args(spec, num_classes=num_classes, dropout=dropout, in_chans=in_chans,
                            features_only=features_only, out_indices=out_indices, freeze_backbone=freeze_backbone,
                            unfreeze_stages=unfreeze_stages, preserve=preserve, bn=bn)
    patches = _merge_patches(patches, replace_norm, replace_act)
    normalize_patches(patches)
    cfg = getattr(skeleton, "pretrained_cfg", {}) or {}
    size = tuple(cfg.get("input_size", (3, 224, 224)))[-2:]
    trace = trace_model(skeleton, (2, in_chans, *size))
    ctx = PlanContext(preserve=preserve, stages=spec.stages, layout_of=lambda p, s: spec.layout if spec.layout
                      == "nhwc" else "nchw", prefix_tokens=spec.family.prefix_tokens, backbone=name)
    plan = plan_patches(skeleton, patches, trace, ctx)
    if dry_run:
        return plan
    model = timm.create_model(name, pretrained=bool(pretrained), **kw)
    appended = apply_plan(model, plan)
    report = None
    if weights is not None:
        from ..weights import partial_load

        report = partial_load(model, weights, strict=strict)
    build = {"num_classes": num_classes, "dropout": dropout, "in_chans": in_chans, "preserve": preserve,
             "features_only": bool(features_only), "out_indices": idx, "timm_skip": skip}
    hybrid = HybridModel.adopt(model, spec, build=build, load_report=report,
                               weights_name=str(weights) if weights is not None else
                               ("timm:pretrained" if pretrained else None), timm=True)
    hybrid.__dict__["_tvc_timm_skip"] = skip
    _update_stages(hybrid, appended)
    if features_only:
        hybrid._tvc_out_indices = tuple(idx if idx is not None else range(spec.num_stages))
    if freeze_backbone:
        hybrid.freeze_backbone(keep, bn=bn)
    if verbose:
        print(plan)
    return hybrid


def timm_stage_outputs(model: HybridModel, x: torch.Tensor, upto: int) -> list[torch.Tensor]:
    """Stage outputs through timm's ``forward_intermediates`` (stem entries skipped)."""
    skip = model.__dict__.get("_tvc_timm_skip", 0)
    base = type(model)._tvc_base  # type: ignore[attr-defined]
    outs = base.forward_intermediates(model, x, indices=[skip + i for i in range(upto + 1)],
                                      intermediates_only=True)
    return list(outs)
