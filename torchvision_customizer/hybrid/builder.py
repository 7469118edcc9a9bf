"""``HybridBuilder``: build a customized torchvision (or timm) model by name, keeping what it knows.

Order of work in :meth:`HybridBuilder.from_torchvision` (everything that can be wrong is found in
steps 1-3, before any weight is read or allocated):

1. the name is looked up in the catalog, the weights are resolved (tag, enum, file, state dict)
   and every argument is checked;
2. a skeleton of the final architecture (head resized, input channels, dropout) is built on the
   meta device and traced once: call sites and shapes of every module;
3. every patch is resolved and validated against the trace (a meta-device dry run of the whole
   patched model included) -> a :class:`~torchvision_customizer.hybrid.patch.PatchPlan`;
4. the torchvision model is built on the meta device and the checkpoint's tensors are assigned to
   it (no random init first, no copy), *before* patching, so original modules keep their trained
   weights; pretrained head parts stay and only the final classifier layer is replaced;
5. the plan is applied (new modules are created fresh, identity at init with ``preserve=True``);
6. ``weights.partial_load`` fills the final model from the same state dict and returns the
   ``LoadReport``: every original tensor loaded, the first conv adapted (``in_chans``), the old
   classifier shape-mismatched, every new tensor listed as new.

A builder holds no state between calls.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import warnings
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import BackboneError, BlockArgumentError, BlockValueError, PatchError, WeightLoadingError
from ._meta import build_on_meta, swap_class
from .catalog import CATALOG, BackboneSpec, Family, get_backbone_spec, get_path, list_backbones
from .model import BN_POLICIES, HybridModel
from .patch import (
    PRESERVE_MODES,
    PatchPlan,
    PlanContext,
    _meta_copy,
    _WrapMixin,
    apply_plan,
    normalize_patches,
    plan_patches,
    trace_model,
)
from .patch_spec import PatchSpec  # noqa: F401  (the 2.x home of PatchSpec)

__all__ = ["HybridBuilder", "build_from_recipe"]


# ------------------------------------------------------------------------------- checks
def _check_int(name: str, value: Any, lo: int = 1, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BlockArgumentError(f"{name} must be an integer", where=f"HybridBuilder({name}=...)",
                                 expected=f"an int >= {lo}" + (" or None" if allow_none else ""), got=value)
    if value < lo:
        raise BlockValueError(f"{name} is too small", where=f"HybridBuilder({name}=...)",
                              expected=f">= {lo}", got=value)
    return value


def _check_indices(name: str, value: Any, n: int) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value or \
            not all(isinstance(i, int) and not isinstance(i, bool) for i in value):
        raise BlockValueError(f"{name} must be a non-empty list of stage indices", where=f"HybridBuilder({name}=...)",
                              expected=f"ints in 0..{n - 1}", got=value)
    bad = [i for i in value if not -n <= i < n]
    if bad:
        raise BlockValueError(f"{name} has a stage index out of range", where=f"HybridBuilder({name}=...)",
                              expected=f"0..{n - 1} (or -{n}..-1): the backbone has {n} stages", got=bad[0])
    out = [i % n for i in value]
    if len(set(out)) != len(out):
        raise BlockValueError(f"{name} repeats a stage", where=f"HybridBuilder({name}=...)",
                              expected="distinct stage indices", got=value)
    return out


def _check_args(spec: BackboneSpec, *, num_classes: Any, dropout: Any, in_chans: Any, features_only: Any,
                out_indices: Any, freeze_backbone: Any, unfreeze_stages: Any, preserve: Any, bn: Any
                ) -> tuple[list[int] | None, list[int] | None]:
    _check_int("num_classes", num_classes)
    _check_int("in_chans", in_chans, allow_none=False)
    if dropout is not None and (isinstance(dropout, bool) or not isinstance(dropout, (int, float))
                                or not 0.0 <= dropout < 1.0):
        raise BlockValueError("dropout must be a probability", where="HybridBuilder(dropout=...)",
                              expected="a float in [0, 1) or None", got=dropout)
    if preserve not in PRESERVE_MODES:
        raise BlockValueError("bad preserve value", where="HybridBuilder(preserve=...)",
                              expected="True, False, 'scalar' or 'channel'", got=preserve)
    if bn not in BN_POLICIES:
        raise BlockValueError("unknown BatchNorm policy", where="HybridBuilder(bn=...)",
                              expected="one of " + ", ".join(BN_POLICIES), got=bn)
    n = spec.num_stages
    idx = _check_indices("out_indices", out_indices, n)
    if idx is not None and not features_only:
        raise BlockValueError("out_indices selects feature maps, so it needs features_only=True",
                              where="HybridBuilder(out_indices=...)", expected="features_only=True", got=out_indices)
    if features_only and num_classes is not None:
        raise BlockValueError("a features_only model has no classifier", where="HybridBuilder(num_classes=...)",
                              expected="num_classes=None with features_only=True", got=num_classes)
    keep = _check_indices("unfreeze_stages", unfreeze_stages, n)
    if keep is not None and not freeze_backbone:
        raise BlockValueError("unfreeze_stages only has a meaning when the backbone is frozen",
                              where="HybridBuilder(unfreeze_stages=...)", expected="freeze_backbone=True",
                              got=unfreeze_stages)
    return idx, keep


def _merge_patches(patches: Any, replace_norm: Any, replace_act: Any) -> Any:
    extra: dict[str, Any] = {}
    if replace_norm is not None:
        extra["type:BatchNorm2d"] = {"replace": replace_norm}
    if replace_act is not None:
        extra["type:ReLU"] = {"replace": replace_act}
    if not extra:
        return patches
    if patches is None:
        return extra
    if isinstance(patches, Mapping):
        merged = dict(patches)
        for k, v in extra.items():
            if k in merged:
                raise PatchError(f"{k!r} is given twice (in patches and by replace_norm/replace_act)",
                                 where="patches", got=k)
            merged[k] = v
        return merged
    return [*patches, *({"target": k, "op": "replace", "block": v["replace"]} for k, v in extra.items())]


def _ambient_meta() -> bool:
    return torch.empty(0).is_meta


# ------------------------------------------------------------------- architecture kwargs
def _tv_builder(name: str) -> Any:
    from torchvision import models

    return models.get_model_builder(name)


def _base_kwargs(spec: BackboneSpec) -> dict[str, Any]:
    if spec.family.aux:  # build without the auxiliary heads (and without torchvision's init warning)
        return {"aux_logits": False, "init_weights": True}
    return {}


def _arch_from_enum(spec: BackboneSpec, enum: Any) -> dict[str, Any]:
    """The kwargs torchvision's builder sets for these weights (its ``_ovewrite_named_param`` calls)."""
    meta = enum.meta
    kw: dict[str, Any] = {"num_classes": len(meta["categories"])}
    fam = spec.family.name
    if fam in ("googlenet", "inception"):
        kw.update(transform_input=True, aux_logits=True, init_weights=False)
    elif fam == "vit":
        kw["image_size"] = meta["min_size"][0]
    elif fam == "maxvit":
        kw["input_size"] = meta["min_size"]
    return kw


def _arch_from_state_dict(spec: BackboneSpec, sd: Mapping[str, Any]) -> dict[str, Any]:
    """The architecture kwargs a state dict implies (classes, auxiliary heads, ViT image size)."""
    kw = _base_kwargs(spec)
    w = sd.get(spec.classifier + ".weight")
    if isinstance(w, torch.Tensor) and w.dim() >= 1:
        kw["num_classes"] = int(w.shape[0])
    if spec.family.aux:
        has_aux = any(k.startswith(tuple(a + "." for a in spec.family.aux)) for k in sd)
        kw.update(aux_logits=has_aux, init_weights=not has_aux)
    if spec.family.name == "vit":
        pos = sd.get("encoder.pos_embedding")
        proj = sd.get("conv_proj.weight")
        if isinstance(pos, torch.Tensor) and isinstance(proj, torch.Tensor):
            side = math.isqrt(pos.shape[1] - 1)
            kw["image_size"] = side * int(proj.shape[-1])
    return kw


def _call_builder(name: str, kwargs: Mapping[str, Any], *, meta: bool) -> nn.Module:
    fn = _tv_builder(name)
    try:
        if meta:
            return build_on_meta(fn, weights=None, **kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return fn(weights=None, **kwargs)
    except TypeError as exc:
        raise BlockArgumentError(f"torchvision's {name} does not accept these arguments: {exc}",
                                 where=f"torchvision.models.{name}", expected="arguments of the builder",
                                 got=sorted(kwargs)) from None


# ---------------------------------------------------------------------- loading
def _materialize(model: nn.Module) -> list[str]:
    """Give every tensor still on the meta device real memory and a fresh init; return their owners."""
    done = []
    for name, m in model.named_modules():
        own = list(m._parameters.values()) + list(m._buffers.values())
        if not any(t is not None and t.is_meta for t in own):
            continue
        m.to_empty(device="cpu", recurse=False)
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
        else:
            with torch.no_grad():
                for p in m._parameters.values():
                    if p is not None:
                        nn.init.trunc_normal_(p, std=0.02)
        done.append(name)
    return done


def _assign(model: nn.Module, sd: Mapping[str, Any]) -> list[str]:
    """Assign the fitting tensors of ``sd`` to ``model`` (built on meta): zero-copy, no random init."""
    own = model.state_dict(keep_vars=True)
    fit: Any = OrderedDict()
    # the model's own module versions: some torchvision modules (MNASNet) refuse a load without them
    fit._metadata = getattr(own, "_metadata", None)
    for k, v in sd.items():
        t = own.get(k)
        if isinstance(v, torch.Tensor) and t is not None and tuple(v.shape) == tuple(t.shape):
            fit[k] = v if v.dtype == t.dtype or not v.is_floating_point() else v.to(t.dtype)
    model.load_state_dict(fit, strict=False, assign=True)
    return _materialize(model)


def _drop_aux(model: nn.Module, spec: BackboneSpec) -> None:
    if not spec.family.aux:
        return
    model.aux_logits = False
    for name in spec.family.aux:
        if name in model._modules:
            model._modules[name] = None


def _restructure(model: nn.Module, spec: BackboneSpec, *, num_classes: int | None, in_chans: int,
                 dropout: float | None, input_conv_mode: str = "auto") -> None:
    """Resize the final classifier layer, adapt the first conv to ``in_chans``, set the head dropout."""
    from ..weights.rules import resolve_input_conv_mode

    if num_classes is not None:
        old = get_path(model, spec.classifier)
        out = old.out_features if isinstance(old, nn.Linear) else old.out_channels
        if out != num_classes:
            dd = {"device": old.weight.device, "dtype": old.weight.dtype}
            if isinstance(old, nn.Linear):
                new: nn.Module = nn.Linear(old.in_features, num_classes, bias=old.bias is not None, **dd)
                desc = f"Linear({old.in_features} -> {num_classes})"
            else:
                new = nn.Conv2d(old.in_channels, num_classes, old.kernel_size, old.stride, old.padding,
                                bias=old.bias is not None, **dd)
                desc = f"Conv2d({old.in_channels} -> {num_classes}, {old.kernel_size})"
            new._tvc_patch = {"op": "head", "target": spec.classifier, "block": desc,
                              "old": f"{type(old).__name__} with {out} outputs",
                              "detail": "new, default init; the layers before it keep their weights"}
            _set(model, spec.classifier, new)
            if isinstance(getattr(model, "num_classes", None), int):
                model.num_classes = num_classes
    if in_chans != 3:
        old = get_path(model, spec.first_conv)
        mode = resolve_input_conv_mode(in_chans, input_conv_mode)
        new = nn.Conv2d(in_chans, old.out_channels, old.kernel_size, old.stride, old.padding, old.dilation,
                        old.groups, bias=old.bias is not None, padding_mode=old.padding_mode,
                        device=old.weight.device, dtype=old.weight.dtype)
        detail = f"3 -> {in_chans} input channels (pretrained kernels adapted by rule input_conv_{mode})"
        if getattr(model, "transform_input", False):
            model.transform_input = False
            detail += "; transform_input disabled (it assumes RGB)"
        new._tvc_patch = {"op": "in_chans", "target": spec.first_conv, "block": f"Conv2d({in_chans} -> "
                          f"{old.out_channels})", "old": "Conv2d(3 -> ...)", "detail": detail}
        _set(model, spec.first_conv, new)
    if dropout is not None:
        path = spec.family.dropout
        drop = get_path(model, path) if path else None
        if isinstance(drop, nn.Dropout):
            drop.p = float(dropout)
            drop._tvc_patch = {"op": "dropout", "target": path, "block": f"Dropout(p={dropout})",
                               "old": "Dropout", "detail": "existing dropout before the classifier"}
        else:
            cls = get_path(model, spec.classifier)
            swap_class(cls, _WrapMixin)
            d = nn.Dropout(float(dropout))
            d._tvc_patch = {"op": "dropout", "target": spec.classifier, "block": f"Dropout(p={dropout})",
                            "old": "none", "detail": "runs on the classifier's input (no new keys)"}
            cls.add_module("drop", d)
            cls._tvc_pre = ("drop", *cls._tvc_pre)


def _set(root: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    parent._modules[name] = new


def _layout_fn(spec: BackboneSpec) -> Any:
    fam = spec.family
    inside = [p for s in spec.stages for p in s] + list(spec.stem)

    def layout_of(path: str, shape: tuple[int, ...]) -> str:
        if fam.layout != "nhwc":
            return "nchw"
        if path == fam.first_conv or path.startswith(fam.first_conv + "."):
            return "nchw"
        in_backbone = any(path == p or path.startswith(p + ".") for p in inside)
        return "nhwc" if in_backbone else "nchw"

    return layout_of


def _update_stages(model: HybridModel, appended: list[tuple[str, str]]) -> None:
    """Blocks appended to a container that spans stages (``features``) join the stage of their
    previous sibling, so ``forward_features`` and ``features_only`` run them too."""
    groups = [model.spec.stem, *model._tvc_stages, model.spec.head_parts]
    for container, child in appended:
        path = f"{container}.{child}"
        if any(container == p or container.startswith(p + ".") for g in groups for p in g):
            continue  # inside a member already
        siblings = [(gi, i) for gi, g in enumerate(groups) for i, p in enumerate(g)
                    if p.rpartition(".")[0] == container]
        if not siblings:
            continue
        gi, i = max(siblings, key=lambda t: (_child_order(model, container, groups[t[0]][t[1]])))
        if 1 <= gi <= len(model._tvc_stages):
            model._tvc_stages[gi - 1].insert(i + 1, path)


def _child_order(model: nn.Module, container: str, path: str) -> int:
    names = list(model.get_submodule(container)._modules)
    return names.index(path.rpartition(".")[2])


def _weights_name(resolved: Any) -> Any:
    if resolved is None or resolved.kind == "none":
        return None
    if resolved.kind == "state_dict":
        return None
    return resolved.name


# ---------------------------------------------------------------------------- builder
class HybridBuilder:
    """Build customized torchvision / timm models; holds no state between calls.

    Example:
        >>> model = HybridBuilder().from_torchvision("resnet50", weights="IMAGENET1K_V2",
        ...     patches={"layer4": {"wrap": "se"}}, num_classes=100)  # doctest: +SKIP
    """

    @staticmethod
    def list_backbones(filter: str | None = None) -> list[str]:
        """Names of every catalog backbone (every torchvision classification model)."""
        return list_backbones(filter)

    # ---------------------------------------------------------------- planning
    def _prepare(self, name: str, weights: Any, patches: Any, num_classes: Any, dropout: Any, in_chans: Any,
                 features_only: Any, out_indices: Any, freeze_backbone: Any, unfreeze_stages: Any,
                 preserve: Any, bn: Any, replace_norm: Any, replace_act: Any, model_kwargs: Any,
                 read_weights: bool) -> dict[str, Any]:
        from ..weights import resolve_weights

        spec = get_backbone_spec(name)
        name = spec.name
        idx, keep = _check_args(spec, num_classes=num_classes, dropout=dropout, in_chans=in_chans,
                                features_only=features_only, out_indices=out_indices,
                                freeze_backbone=freeze_backbone, unfreeze_stages=unfreeze_stages,
                                preserve=preserve, bn=bn)
        if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
            raise BlockArgumentError("model_kwargs must be a dict", where="HybridBuilder(model_kwargs=...)",
                                     expected="keyword arguments of the torchvision builder", got=model_kwargs)
        resolved = resolve_weights(name, weights)
        patches = _merge_patches(patches, replace_norm, replace_act)
        normalize_patches(patches)  # format errors first
        sd = None
        if resolved.kind == "torchvision":
            arch = _arch_from_enum(spec, resolved.enum)
        elif resolved.kind in ("file", "state_dict"):
            sd = resolved.state_dict() if read_weights or resolved.kind == "state_dict" else None
            arch = _arch_from_state_dict(spec, sd) if sd is not None else _base_kwargs(spec)
        else:
            arch = _base_kwargs(spec)
        arch.update(model_kwargs or {})
        final_classes = num_classes if num_classes is not None else arch.get("num_classes")
        if features_only:
            final_classes = None
        # the checkpoint's architecture on the meta device (reused for loading), and a skeleton of the
        # final architecture (a meta copy: head resized, input channels, dropout), traced once
        base = _call_builder(name, arch, meta=True)
        skeleton = _meta_copy(base)
        _drop_aux(skeleton, spec)
        _restructure(skeleton, spec, num_classes=final_classes, in_chans=in_chans, dropout=dropout)
        skeleton = skeleton.to("meta")
        side = _input_side(spec, arch)
        trace = trace_model(skeleton, (2, in_chans, side, side))
        ctx = PlanContext(preserve=preserve, stages=spec.stages, layout_of=_layout_fn(spec),
                          prefix_tokens=spec.family.prefix_tokens, backbone=name)
        plan = plan_patches(skeleton, patches, trace, ctx)
        return {"spec": spec, "resolved": resolved, "sd": sd, "arch": arch, "plan": plan, "idx": idx,
                "keep": keep, "final_classes": final_classes, "patches": patches, "base": base}

    def plan(self, name: str, patches: Any = None, *, num_classes: int | None = None, in_chans: int = 3,
             dropout: float | None = None, preserve: Any = True, replace_norm: Any = None,
             replace_act: Any = None, weights: Any = None, model_kwargs: Mapping[str, Any] | None = None
             ) -> PatchPlan:
        """The changes ``patches`` would make to ``name`` (path, op, old/new module, channels, new
        parameter count), validated, without reading or allocating any weights.

        Example:
            >>> print(HybridBuilder().plan("resnet18", {"layer*.*.conv2": {"wrap": "eca"}}))  # doctest: +SKIP
        """
        prep = self._prepare(name, weights, patches, num_classes, dropout, in_chans, False, None, False, None,
                             preserve, "eval", replace_norm, replace_act, model_kwargs, read_weights=False)
        return prep["plan"]

    # ------------------------------------------------------------------ building
    def from_torchvision(self, name: str, weights: Any = "DEFAULT", patches: Any = None,
                         num_classes: int | None = None, dropout: float | None = None,
                         freeze_backbone: bool = False, unfreeze_stages: Any = None, in_chans: int = 3,
                         features_only: bool = False, out_indices: Sequence[int] | None = None,
                         preserve: Any = True, verbose: bool = False, *, bn: str = "eval",
                         replace_norm: Any = None, replace_act: Any = None, dry_run: bool = False,
                         strict: bool = False, input_conv_mode: str = "auto",
                         model_kwargs: Mapping[str, Any] | None = None) -> Any:
        """Build torchvision model ``name``, load ``weights``, customize it, and return a ``HybridModel``.

        Args:
            name: a torchvision classification model (``list_backbones()``).
            weights: ``"DEFAULT"``, a tag (``"IMAGENET1K_V2"``), an enum, a local file, a state dict, or
                ``None`` for torchvision's random init. Files come from torchvision's cache
                (``$TORCH_HOME/hub/checkpoints``); offline, the error names the file to place.
            patches: ``{target: {op: block}}`` (see :mod:`torchvision_customizer.hybrid.patch`).
            num_classes: new class count; only the final classifier layer is replaced. ``None``
                keeps the pretrained head.
            dropout: dropout probability in front of the classifier (``None``: unchanged).
            freeze_backbone: freeze stem and stages (new patch modules and the head stay trainable).
            unfreeze_stages: stage indices that stay trainable when freezing.
            in_chans: input channels; the first conv's pretrained kernels are adapted by rule.
            features_only: return stage feature maps (NCHW) instead of logits; the head is removed.
            out_indices: stages returned with ``features_only`` (default: all).
            preserve: identity-at-init mixing of wrapped/injected blocks (``True``/``"scalar"``,
                ``"channel"``, or ``False`` for the plain block).
            verbose: print the plan and the load report.
            bn: BatchNorm policy when freezing (``eval``, ``frozen``, ``train``).
            replace_norm: shorthand for ``{"type:BatchNorm2d": {"replace": replace_norm}}``.
            replace_act: shorthand for ``{"type:ReLU": {"replace": replace_act}}``.
            dry_run: return the :class:`PatchPlan` instead of building.
            strict: raise when the weights do not fill every original tensor (new modules and a resized
                head are expected to be new and never count).
            input_conv_mode: ``auto``/``sum``/``zeros``/``repeat`` for ``in_chans != 3``.
            model_kwargs: extra keyword arguments for the torchvision builder.

        Returns:
            A :class:`HybridModel` (also an instance of the torchvision class), with ``load_report``.
        """
        prep = self._prepare(name, weights, patches, num_classes, dropout, in_chans, features_only, out_indices,
                             freeze_backbone, unfreeze_stages, preserve, bn, replace_norm, replace_act,
                             model_kwargs, read_weights=not dry_run)
        if dry_run:
            return prep["plan"]
        spec, resolved, plan = prep["spec"], prep["resolved"], prep["plan"]
        sd = prep["sd"]
        if resolved.kind == "torchvision":
            sd = resolved.state_dict()
        meta = _ambient_meta()
        if sd is not None:
            model = prep["base"]
            _assign(model, sd)
        else:
            arch = dict(prep["arch"])
            if prep["final_classes"] is not None:
                arch["num_classes"] = prep["final_classes"]
            model = _call_builder(spec.name, arch, meta=meta)
        _drop_aux(model, spec)
        _restructure(model, spec, num_classes=prep["final_classes"], in_chans=in_chans, dropout=dropout,
                     input_conv_mode=input_conv_mode)
        appended = apply_plan(model, plan, device="meta" if meta and sd is None else None)
        if features_only:  # the head goes before loading, so the report lists its tensors as unused
            for path in spec.head_parts:
                with contextlib.suppress(AttributeError):
                    if isinstance(get_path(model, path), nn.Module):
                        _set(model, path, nn.Identity())
        report = None
        if sd is not None:
            from ..weights import partial_load

            report = partial_load(model, sd, input_conv_mode=input_conv_mode)
            report.source = resolved.name
            if strict:
                _strict_check(report, model, spec.head_parts if features_only else ())
        build = {"num_classes": num_classes, "dropout": dropout, "in_chans": in_chans, "preserve": preserve,
                 "features_only": bool(features_only), "out_indices": prep["idx"]}
        hybrid = HybridModel.adopt(model, spec, build=build, load_report=report,
                                   weights_name=_weights_name(resolved))
        _update_stages(hybrid, appended)
        if features_only:
            hybrid._tvc_out_indices = tuple(prep["idx"] if prep["idx"] is not None else range(spec.num_stages))
        if freeze_backbone:
            hybrid.freeze_backbone(prep["keep"], bn=bn)
        if verbose:
            print(plan)
            if report is not None:
                print(report.summary())
        return hybrid

    def patch(self, model: HybridModel, patches: Any, *, preserve: Any = True) -> PatchPlan:
        """Patch an already-built :class:`HybridModel` in place (validated first; nothing changes on error).

        The weights it holds stay; only the new modules are fresh (identity at init with ``preserve``).
        Targets are resolved on the model as it is now (earlier patches included).
        """
        from .patch import apply_patches

        if not isinstance(model, HybridModel):
            raise BlockArgumentError("patch() needs a model built by HybridBuilder", where="HybridBuilder.patch",
                                     expected="a HybridModel", got=type(model).__name__,
                                     hint="for any other nn.Module use hybrid.patch.apply_patches(model, patches, "
                                          "input_shape)")
        if preserve not in PRESERVE_MODES:
            raise BlockValueError("bad preserve value", where="HybridBuilder.patch(preserve=...)",
                                  expected="True, False, 'scalar' or 'channel'", got=preserve)
        spec = model.spec
        side = _input_side(spec, {"image_size": getattr(model, "image_size", 224),
                                  "input_size": (224, 224)})
        in_chans = get_path(model, spec.first_conv).in_channels if spec.first_conv else 3
        ctx = PlanContext(preserve=preserve, stages=model.stage_paths, layout_of=_layout_fn(spec),
                          prefix_tokens=spec.family.prefix_tokens, backbone=spec.name)
        plan = apply_patches(model, patches, (2, in_chans, side, side), ctx=ctx)
        _update_stages(model, plan.appended)
        return plan

    def from_checkpoint(self, path: Any, backbone_name: str | None = None, patches: Any = None,
                        num_classes: int | None = None, dropout: float | None = None, strict: bool = False,
                        **kwargs: Any) -> Any:
        """Rebuild a model from a checkpoint; the checkpoint's tensors win over any fresh init.

        A file written by ``weights.save_model`` (safetensors with an architecture description)
        rebuilds itself; then ``backbone_name``/``patches``/``num_classes`` must be left out. Any
        other state dict (``.pth``, ``.safetensors``; torchvision keys, patched or not) needs
        ``backbone_name`` and is loaded after the patches are applied, so saved patch modules keep
        their trained values. ``num_classes=None`` takes the class count from the checkpoint.
        """
        from ..weights import load_model, read_checkpoint_metadata

        meta: dict[str, str] = {}
        if str(path).endswith(".safetensors"):
            meta = read_checkpoint_metadata(path)
        if "tvc.arch.kind" in meta:
            given = {k: v for k, v in {"backbone_name": backbone_name, "patches": patches,
                                       "num_classes": num_classes, "dropout": dropout, **kwargs}.items()
                     if v is not None}
            if given:
                raise BlockValueError("this checkpoint describes its own architecture", where=str(path),
                                      expected="no architecture arguments", got=sorted(given),
                                      hint="load it with from_checkpoint(path) and customize the result")
            return load_model(path, strict=strict)
        if backbone_name is None:
            raise BlockValueError("a plain state dict needs the backbone name", where=str(path),
                                  expected="from_checkpoint(path, backbone_name='resnet50', ...)", got=None)
        return self.from_torchvision(backbone_name, weights=path, patches=patches, num_classes=num_classes,
                                     dropout=dropout, strict=strict, **kwargs)

    def from_recipe(self, recipe: Mapping[str, Any], *, weights: Any = ..., **overrides: Any) -> Any:
        """Build from a ``backbone:`` recipe dict (what ``HybridModel.to_recipe()`` writes)."""
        return build_from_recipe(recipe, builder=self, weights=weights, **overrides)

    # ---------------------------------------------------------------------- timm
    def from_timm(self, name: str, pretrained: bool = False, weights: Any = None, patches: Any = None,
                  num_classes: int | None = None, dropout: float | None = None, freeze_backbone: bool = False,
                  unfreeze_stages: Any = None, in_chans: int = 3, features_only: bool = False,
                  out_indices: Sequence[int] | None = None, preserve: Any = True, verbose: bool = False, *,
                  bn: str = "eval", replace_norm: Any = None, replace_act: Any = None, dry_run: bool = False,
                  strict: bool = False) -> Any:
        """The same surface for a timm model (needs the ``timm`` extra).

        ``pretrained=True`` uses timm's own pretrained weights (its download/cache); ``weights=`` a
        local file (timm keys) loaded through ``weights.partial_load`` after patching, with a report.
        Stages come from timm's ``feature_info`` (stem entries such as ResNet's ``act1`` excluded).
        """
        from ._timm import build_timm

        return build_timm(self, name, pretrained=pretrained, weights=weights, patches=patches,
                          num_classes=num_classes, dropout=dropout, freeze_backbone=freeze_backbone,
                          unfreeze_stages=unfreeze_stages, in_chans=in_chans, features_only=features_only,
                          out_indices=out_indices, preserve=preserve, verbose=verbose, bn=bn,
                          replace_norm=replace_norm, replace_act=replace_act, dry_run=dry_run, strict=strict)


def _strict_check(report: Any, model: nn.Module, removed: Sequence[str] = ()) -> None:
    """Strict means: every original tensor was filled; new modules and a resized head are new by design,
    and a ``features_only`` model's removed head leaves its tensors unused by design."""
    from .patch import iter_patches

    new = [p for p, _, rec in iter_patches(model) if rec.get("op") in ("wrap", "inject_before", "replace", "head")]
    missing = [k for k in report.missing if not any(k.startswith(p + ".") for p in new)]
    mismatched = [k for k, _, _ in report.shape_mismatched if not any(k.startswith(p + ".") for p in new)]
    unexpected = [k for k in report.unexpected if not any(k.startswith(p + ".") for p in removed)]
    if missing or mismatched or unexpected:
        raise WeightLoadingError(
            "weights do not fill the model", where=report.source,
            expected="every original tensor loaded or adapted, every source tensor used",
            got=f"{len(missing)} missing, {len(mismatched)} shape-mismatched, {len(unexpected)} unexpected: "
                + ", ".join((missing + mismatched + unexpected)[:5]),
            hint="see err.report.summary(); pass strict=False to build anyway", report=report)


def _input_side(spec: BackboneSpec, arch: Mapping[str, Any]) -> int:
    fam = spec.family
    if fam.name == "vit":
        return int(arch.get("image_size", 224))
    if fam.name == "maxvit":
        size = arch.get("input_size", (224, 224))
        return int(size[0])
    return max(224, fam.min_size)


_RECIPE_KEYS = {"name", "source", "weights", "patches", "preserve", "in_chans", "freeze_backbone",
                "unfreeze_stages", "bn", "features_only", "out_indices", "pretrained", "replace_norm",
                "replace_act", "model_kwargs"}


def build_from_recipe(recipe: Mapping[str, Any], *, builder: HybridBuilder | None = None, weights: Any = ...,
                      **overrides: Any) -> Any:
    """Build a model from ``{"backbone": {...}, "head": {"num_classes", "dropout"}}``.

    ``weights=...`` (not given) uses the recipe's ``weights`` (which a recipe must state; ``None``
    means random init); pass ``weights=None`` to skip loading (as ``load_model`` does).
    """
    from ..errors import RecipeError, closest

    if not isinstance(recipe, Mapping) or "backbone" not in recipe:
        raise RecipeError("a hybrid recipe needs a 'backbone' section", where="recipe",
                          expected="{'backbone': {'name': ..., 'weights': ...}, 'head': {...}}",
                          got=sorted(recipe) if isinstance(recipe, Mapping) else type(recipe).__name__)
    bb = recipe["backbone"]
    if isinstance(bb, str):
        bb = {"name": bb}
    if not isinstance(bb, Mapping):
        raise RecipeError("backbone must be a mapping", where="backbone", got=type(bb).__name__)
    for k in bb:
        if k not in _RECIPE_KEYS:
            raise RecipeError(f"unknown backbone key {k!r}", where=f"backbone.{k}", expected="one of "
                              + ", ".join(sorted(_RECIPE_KEYS)), got=k, suggestions=closest(str(k), _RECIPE_KEYS))
    head = recipe.get("head") or {}
    if not isinstance(head, Mapping):
        raise RecipeError("head must be a mapping", where="head", expected="{num_classes: 10, dropout: 0.2}",
                          got=head)
    for k in head:
        if k not in ("num_classes", "dropout"):
            raise RecipeError(f"unknown head key {k!r}", where=f"head.{k}", expected="num_classes, dropout",
                              got=k, suggestions=closest(str(k), ["num_classes", "dropout"]))
    if "name" not in bb:
        raise RecipeError("backbone needs a name", where="backbone.name", expected="e.g. resnet50")
    if weights is ...:
        if "weights" not in bb and not bb.get("pretrained"):
            raise RecipeError("a backbone recipe must state its weights", where="backbone.weights",
                              expected="a tag, a path, or null for random init", got="(missing)",
                              hint="recipes never download implicitly: write weights: DEFAULT to ask for it")
        weights = bb.get("weights")
    builder = builder or HybridBuilder()
    kw: dict[str, Any] = {
        "weights": weights, "patches": bb.get("patches"), "num_classes": head.get("num_classes"),
        "dropout": head.get("dropout"), "freeze_backbone": bool(bb.get("freeze_backbone", False)),
        "unfreeze_stages": bb.get("unfreeze_stages"), "in_chans": bb.get("in_chans", 3),
        "features_only": bool(bb.get("features_only", False)), "out_indices": bb.get("out_indices"),
        "preserve": bb.get("preserve", True), "bn": bb.get("bn", "eval"),
        "replace_norm": bb.get("replace_norm"), "replace_act": bb.get("replace_act"),
    }
    kw.update(overrides)
    if bb.get("source", "torchvision") == "timm":
        kw["pretrained"] = bool(bb.get("pretrained", False))
        return builder.from_timm(bb["name"], **kw)
    if bb.get("model_kwargs"):
        kw["model_kwargs"] = bb["model_kwargs"]
    return builder.from_torchvision(bb["name"], **kw)


def _rebuild_hybrid(arch: dict[str, Any]) -> nn.Module:
    """``weights.load_model`` rebuilder for kind ``"hybrid"``: the recipe, built with weights=None."""
    recipe = arch.get("recipe")
    if arch.get("format") == "yaml":
        import yaml

        recipe = yaml.safe_load(recipe)
    return build_from_recipe(recipe, weights=None)


def _register_rebuilder() -> None:
    from ..weights import register_rebuilder
    from ..weights.checkpoint import REBUILDERS

    if "hybrid" not in REBUILDERS:
        register_rebuilder("hybrid", _rebuild_hybrid, meta_ok=True)


_register_rebuilder()

# silence an unused-import warning for names kept for users of this module
_ = (CATALOG, Family, BackboneError, inspect)
