"""``ModelSurface``: one protocol shared by every model this library returns.

Composed models (``Stem >> Stage >> Head``), recipe and template models (the same class) and hybrid
torchvision/timm models answer the same calls, so a user never has to remember which kind they hold:

====================================================  ===============================================
call                                                  meaning
====================================================  ===============================================
``count_parameters(trainable_only=False)``            number of parameters
``explain()`` / ``summary(input_size)``               readable account / per-part shapes, params, FLOPs
``forward_features(x)``                               last feature map (stem and stages, no head)
``get_stage_outputs(x)``                              one map per stage; ``stage_channels`` and
                                                      ``stage_strides`` declare their channels/strides
``stages`` (``num_stages``)                           stages numbered from 0, the stem excluded
``get_classifier()`` / ``reset_classifier(n)``        the final layer / a fresh one with ``n`` outputs
``freeze(stages=None, bn="eval")``                    freeze the stem and the given stages (default all)
``freeze_backbone(unfreeze_stages=None, bn="eval")``  freeze stem and stages except ``unfreeze_stages``
``unfreeze_all()``                                    everything trainable again, BatchNorm released
``param_groups(lr, layer_decay=None, ...)``           optimizer groups with layer-wise lr decay
``to_recipe()`` / ``save(path)``                      the recipe that rebuilds it / a safetensors file
====================================================  ===============================================

The mixin supplies default implementations driven by a few hooks (``_surface_stem``,
``_surface_stages``, ``_surface_stage_info``, ``_surface_classifier_path``,
``_surface_replace_classifier``, ``_surface_input_size``). Their defaults read the common
attributes (``stem``, ``stages``, ``feature_info``, a ``head`` module, a backbone-catalog ``spec``),
so a class only overrides what it lays out differently. Methods a class (or a base class after the
mixin, such as timm's ``get_classifier``/``reset_classifier``) already implements keep priority.

BatchNorm policies when freezing (``bn=``): ``"eval"`` keeps frozen BatchNorm layers in eval mode,
also under ``model.train()`` (statistics fixed); ``"frozen"`` replaces them by
:class:`~torchvision_customizer.layers.FrozenBatchNorm2d` (state-dict keys unchanged except
``num_batches_tracked``); ``"train"`` lets their statistics keep updating.

Example:
    >>> model = Stem(32) >> Stage(64, blocks=1) >> Head(10)          # doctest: +SKIP
    >>> model.freeze_backbone(unfreeze_stages=[0]).count_parameters(trainable_only=True)  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import BlockValueError, TVCError

__all__ = ["BN_POLICIES", "ModelSurface"]

#: what ``freeze(..., bn=...)`` may do with the frozen BatchNorm layers
BN_POLICIES = ("eval", "frozen", "train")
#: parameter names never weight-decayed: tokens, position tables, and scales (layer scale, preservation gates)
_NO_DECAY_NAMES = ("class_token", "pos_embedding", "cls_token", "pos_embed", "relative_position_bias_table",
                   "logit_scale", "gamma")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _set_child(root: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    parent._modules[name] = new


class ModelSurface:
    """Mixin: the shared model protocol (see the module docstring). Mix it in before ``nn.Module``."""

    # =================================================================== hooks
    def _surface_stem(self) -> nn.Module | None:
        """The stem module (``None`` or a module without parameters when there is none)."""
        stem = getattr(self, "stem", None)
        return stem if isinstance(stem, nn.Module) else None

    def _surface_stages(self) -> list[nn.Module]:
        """The stages in order (stage ``i`` is element ``i``)."""
        stages = getattr(self, "stages", None)
        if stages is None:
            raise TVCError(f"{type(self).__name__} has no stages", where=f"{type(self).__name__}.stages",
                           hint="a ModelSurface class provides `stages` or overrides _surface_stages()")
        return list(stages)

    def _surface_stage_info(self) -> list[tuple[int | None, int]]:
        """Declared ``(channels, total stride)`` of each stage, read from ``feature_info``."""
        info = getattr(self, "feature_info", None)
        if info is None:
            raise TVCError(f"{type(self).__name__} declares no feature_info", where=type(self).__name__,
                           hint="provide feature_info or override _surface_stage_info()")
        out: list[tuple[int | None, int]] = []
        for item in info:
            if isinstance(item, dict):
                out.append((item.get("num_chs"), int(item.get("reduction", 1))))
            else:
                out.append((getattr(item, "channels", None), int(getattr(item, "stride", 1))))
        return out

    def _surface_classifier_path(self) -> str | None:
        """Dotted path of the final classifier layer (``None`` for a head-less model)."""
        if getattr(self, "features_only", False):
            return None
        spec = self.__dict__.get("_tvc_spec")  # backbone-catalog models (HybridModel) name it
        path = getattr(spec, "classifier", None)
        if isinstance(path, str):
            return path
        head = getattr(self, "head", None)
        prefix = ""
        scope: nn.Module = self  # type: ignore[assignment]
        if isinstance(head, nn.Module) and any(m is head for m in self._modules.values()):  # type: ignore[attr-defined]
            prefix, scope = "head.", head
        last = None
        for name, m in scope.named_modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                last = name
        if last is None:
            return None
        return (prefix + last).rstrip(".")

    def _surface_replace_classifier(self, num_classes: int) -> None:
        """Put a freshly initialized final layer with ``num_classes`` outputs in place of the old one."""
        path = self._surface_classifier_path()
        if path is None:
            raise TVCError(f"{type(self).__name__} has no classifier to reset", where="reset_classifier",
                           hint="a features_only / head-less model has no classifier")
        old = self.get_submodule(path)  # type: ignore[attr-defined]
        build = self.__dict__.get("_tvc_build")
        spec = self.__dict__.get("_tvc_spec")
        if isinstance(build, dict) and spec is not None:
            # catalog model: the builder's own resize (keeps a dropout the builder put on it, records it)
            from ..hybrid.builder import _restructure

            drop = old._modules.get("drop")
            _restructure(self, spec, num_classes=num_classes, in_chans=3,  # type: ignore[arg-type]
                         dropout=drop.p if isinstance(drop, nn.Dropout) else None)
            return
        dd = {"device": old.weight.device, "dtype": old.weight.dtype}
        if isinstance(old, nn.Linear):
            new: nn.Module = nn.Linear(old.in_features, num_classes, bias=old.bias is not None, **dd)
        elif isinstance(old, nn.Conv2d):
            new = nn.Conv2d(old.in_channels, num_classes, old.kernel_size, old.stride, old.padding,
                            bias=old.bias is not None, **dd)
        else:
            raise TVCError("cannot resize this classifier", where=path, got=type(old).__name__,
                           expected="an nn.Linear or nn.Conv2d final layer")
        _set_child(self, path, new)  # type: ignore[arg-type]

    def _surface_input_size(self) -> tuple[int, int, int]:
        """Default ``(C, H, W)`` for :meth:`summary`: the model's ``input_shape`` or ``(C, 224, 224)``."""
        shape = getattr(self, "input_shape", None)
        if isinstance(shape, tuple) and len(shape) == 3:
            return shape  # type: ignore[return-value]
        for m in self.modules():  # type: ignore[attr-defined]
            if isinstance(m, nn.Conv2d):
                return (m.in_channels, 224, 224)
        return (3, 224, 224)

    # =================================================================== shape and stages
    @property
    def num_stages(self) -> int:
        """Number of stages (numbered 0 .. num_stages - 1; the stem is not a stage)."""
        return len(self._surface_stages())

    @property
    def stage_channels(self) -> list[int | None]:
        """Declared output channels of each stage (what :meth:`get_stage_outputs` returns)."""
        return [c for c, _ in self._surface_stage_info()]

    @property
    def stage_strides(self) -> list[int]:
        """Declared total stride (spatial reduction from the input) of each stage's output."""
        return [s for _, s in self._surface_stage_info()]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map: the stem, then every stage (no head)."""
        stem = self._surface_stem()
        if stem is not None:
            x = stem(x)
        for stage in self._surface_stages():
            x = stage(x)
        return x

    def get_stage_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each stage's output, stage 0 first (the stem is not a stage)."""
        stem = self._surface_stem()
        if stem is not None:
            x = stem(x)
        outs = []
        for stage in self._surface_stages():
            x = stage(x)
            outs.append(x)
        return outs

    # =================================================================== counting and reports
    def count_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (only those with ``requires_grad`` when ``trainable_only``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)  # type: ignore[attr-defined]

    def _group_of_params(self) -> dict[int, Any]:
        """``id(param) -> "stem" | stage index``; parameters not listed belong to the head."""
        groups: dict[int, Any] = {}
        stem = self._surface_stem()
        if stem is not None:
            for p in stem.parameters():
                groups[id(p)] = "stem"
        for i, stage in enumerate(self._surface_stages()):
            for p in stage.parameters():
                groups.setdefault(id(p), i)
        return groups

    def explain(self) -> str:
        """Stem, each stage (declared channels and stride) and head, with parameter counts."""
        groups = self._group_of_params()
        per: dict[Any, list[int]] = {}
        for p in self.parameters():  # type: ignore[attr-defined]
            tot = per.setdefault(groups.get(id(p), "head"), [0, 0])
            tot[0] += p.numel()
            tot[1] += p.numel() if p.requires_grad else 0
        total, trainable = self.count_parameters(), self.count_parameters(trainable_only=True)
        lines = [f"{type(self).__name__}: {total:,} parameters, {trainable:,} trainable"]
        st = per.get("stem", [0, 0])
        lines.append(f"  stem: [{st[0]:,} params, {st[1]:,} trainable]")
        for i, (c, s) in enumerate(self._surface_stage_info()):
            n = per.get(i, [0, 0])
            lines.append(f"  stage {i}: channels={c} stride={s} [{n[0]:,} params, {n[1]:,} trainable]")
        h = per.get("head", [0, 0])
        lines.append(f"  head: {self._surface_classifier_path() or 'none'} [{h[0]:,} params, {h[1]:,} trainable]")
        return "\n".join(lines)

    def summary(self, input_size: Sequence[int] | None = None) -> Any:
        """Per-part output shapes, parameters and FLOPs (``torch.utils.flop_counter``) for ``input_size``."""
        from ..utils.summary import model_summary

        return model_summary(self, tuple(input_size) if input_size is not None  # type: ignore[arg-type]
                             else self._surface_input_size())

    # =================================================================== classifier
    def get_classifier(self) -> nn.Module | None:
        """The final classifier layer (``None`` when the model has no head)."""
        native = getattr(super(), "get_classifier", None)  # e.g. timm's own
        if native is not None:
            return native()
        path = self._surface_classifier_path()
        return None if path is None else self.get_submodule(path)  # type: ignore[attr-defined]

    def reset_classifier(self, num_classes: int, *args: Any, **kwargs: Any) -> ModelSurface:
        """Replace the final layer by a fresh one with ``num_classes`` outputs; the rest keeps its weights.

        ``to_recipe()`` and ``save()`` describe the new head afterwards. Extra arguments go to a
        native implementation (timm's ``global_pool``); models without one accept none.
        """
        native = getattr(super(), "reset_classifier", None)  # e.g. timm's own
        if native is not None:
            native(num_classes, *args, **kwargs)
        else:
            if args or kwargs:
                raise BlockValueError("reset_classifier takes only num_classes here", where="reset_classifier",
                                      got={"args": args, **kwargs}, expected="reset_classifier(num_classes)")
            if not _is_int(num_classes) or num_classes < 1:
                raise BlockValueError("num_classes must be a positive integer", where="reset_classifier",
                                      expected="an integer >= 1", got=num_classes)
            self._surface_replace_classifier(num_classes)
        build = self.__dict__.get("_tvc_build")
        if isinstance(build, dict):  # recorded build arguments feed to_recipe()
            build["num_classes"] = num_classes
        return self

    # =================================================================== freezing
    def _check_stage_indices(self, stages: Any, where: str) -> list[int]:
        n = self.num_stages
        if stages is None:
            return []
        if _is_int(stages):
            stages = [stages]
        if not isinstance(stages, (list, tuple, range)) or not all(_is_int(i) for i in stages):
            raise BlockValueError("stage indices must be integers", where=where, expected=f"ints in 0..{n - 1}",
                                  got=stages)
        bad = [i for i in stages if not -n <= i < n]
        if bad:
            raise BlockValueError("stage index out of range", where=where,
                                  expected=f"0..{n - 1} (or -{n}..-1) for {n} stages", got=bad[0])
        return sorted({i % n for i in stages})

    def freeze(self, stages: Any = None, bn: str = "eval") -> ModelSurface:
        """Freeze the stem and the given stages (all stages when ``stages`` is ``None``); the head stays trainable.

        Replaces any earlier freeze state. ``bn`` is the BatchNorm policy (``"eval"``, ``"frozen"``,
        ``"train"``; see the module docstring).
        """
        n = self.num_stages
        chosen = list(range(n)) if stages is None else self._check_stage_indices(stages, "freeze(stages=...)")
        keep = [i for i in range(n) if i not in chosen]
        return self.freeze_backbone(unfreeze_stages=keep, bn=bn)  # type: ignore[no-any-return]

    def freeze_backbone(self, unfreeze_stages: Any = None, bn: str = "eval") -> ModelSurface:
        """Freeze the stem and every stage except ``unfreeze_stages``; the head stays trainable."""
        if bn not in BN_POLICIES:
            raise BlockValueError("unknown BatchNorm policy", where="freeze_backbone(bn=...)",
                                  expected="one of " + ", ".join(BN_POLICIES), got=bn)
        keep = set(self._check_stage_indices(unfreeze_stages, "unfreeze_stages"))
        self.unfreeze_all()
        parts = [m for m in [self._surface_stem()] if m is not None]
        parts += [s for i, s in enumerate(self._surface_stages()) if i not in keep]
        names = {id(m): name for name, m in self.named_modules()}  # type: ignore[attr-defined]
        frozen_bn: list[str] = []
        for part in parts:
            for p in part.parameters():
                p.requires_grad_(False)
            for m in part.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) in names:
                    frozen_bn.append(names[id(m)])
        if bn == "eval":
            for name in frozen_bn:
                self.get_submodule(name).eval()  # type: ignore[attr-defined]
            self.__dict__["_surface_frozen_bn"] = frozen_bn
        elif bn == "frozen":
            from ..layers import FrozenBatchNorm2d

            swapped = []
            for name in frozen_bn:
                old = self.get_submodule(name)  # type: ignore[attr-defined]
                if not isinstance(old, nn.BatchNorm2d) or old.running_mean is None:
                    continue
                new = FrozenBatchNorm2d(old.num_features, eps=old.eps, device=old.running_mean.device,
                                        dtype=old.running_mean.dtype)
                with torch.no_grad():
                    if old.weight is not None:
                        new.weight.copy_(old.weight)
                        new.bias.copy_(old.bias)
                    new.running_mean.copy_(old.running_mean)
                    new.running_var.copy_(old.running_var)
                _set_child(self, name, new)  # type: ignore[arg-type]
                swapped.append((name, old))
            self.__dict__["_surface_bn_swapped"] = swapped
        self.__dict__["_surface_freeze"] = {"unfreeze_stages": sorted(keep), "bn": bn}
        return self

    def unfreeze_all(self) -> ModelSurface:
        """Make every parameter trainable again and release the BatchNorm policy."""
        for name, old in self.__dict__.pop("_surface_bn_swapped", []):
            cur = self.get_submodule(name)  # type: ignore[attr-defined]
            old = old.to(device=cur.running_mean.device, dtype=cur.running_mean.dtype)
            with torch.no_grad():  # statistics may have been loaded into the frozen copy meanwhile
                if old.weight is not None:
                    old.weight.copy_(cur.weight)
                    old.bias.copy_(cur.bias)
                old.running_mean.copy_(cur.running_mean)
                old.running_var.copy_(cur.running_var)
            old.train(self.training)  # type: ignore[attr-defined]
            _set_child(self, name, old)  # type: ignore[arg-type]
        for name in self.__dict__.pop("_surface_frozen_bn", []):
            self.get_submodule(name).train(self.training)  # type: ignore[attr-defined]
        for p in self.parameters():  # type: ignore[attr-defined]
            p.requires_grad_(True)
        self.__dict__.pop("_surface_freeze", None)
        return self

    def train(self, mode: bool = True) -> ModelSurface:
        super().train(mode)  # type: ignore[misc]
        if mode:
            for name in self.__dict__.get("_surface_frozen_bn", ()):
                self.get_submodule(name).eval()  # type: ignore[attr-defined]
        return self

    # =================================================================== optimizer groups
    def param_groups(self, lr: float, layer_decay: float | None = None, weight_decay: float = 0.0,
                     no_decay_norm_and_bias: bool = True, no_weight_decay: Iterable[str] = ()
                     ) -> list[dict[str, Any]]:
        """Optimizer parameter groups with layer-wise learning-rate decay by stage (trainable parameters only).

        Layers are numbered stem = 0, stage ``i`` = ``i + 1``, head = ``num_stages + 1``; each gets
        ``lr * layer_decay ** (num_stages + 1 - layer)`` (the head gets ``lr``). With
        ``no_decay_norm_and_bias`` (and ``weight_decay > 0``), biases and norm weights (1-D tensors)
        and position/class tokens get no weight decay; so do names in ``no_weight_decay``.

        Example:
            >>> opt = torch.optim.AdamW(model.param_groups(1e-3, layer_decay=0.7, weight_decay=0.05))  # doctest: +SKIP
        """
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or lr <= 0:
            raise BlockValueError("lr must be a positive number", where="param_groups", expected="lr > 0", got=lr)
        if layer_decay is not None and (not isinstance(layer_decay, (int, float)) or isinstance(layer_decay, bool)
                                        or not 0 < layer_decay <= 1):
            raise BlockValueError("layer_decay must be in (0, 1]", where="param_groups",
                                  expected="0 < layer_decay <= 1", got=layer_decay)
        if not isinstance(weight_decay, (int, float)) or isinstance(weight_decay, bool) or weight_decay < 0:
            raise BlockValueError("weight_decay must be >= 0", where="param_groups", expected=">= 0", got=weight_decay)
        skip = (*_NO_DECAY_NAMES, *no_weight_decay)
        n = self.num_stages
        groups = self._group_of_params()
        buckets: dict[tuple[int, bool], dict[str, Any]] = {}
        for name, p in self.named_parameters():  # type: ignore[attr-defined]
            if not p.requires_grad:
                continue
            g = groups.get(id(p), "head")
            layer = 0 if g == "stem" else n + 1 if g == "head" else int(g) + 1
            exempt = (no_decay_norm_and_bias and p.ndim <= 1) or any(name == s or name.endswith("." + s)
                                                                     for s in skip)
            decay = weight_decay > 0 and not exempt
            scale = 1.0 if layer_decay is None else float(layer_decay) ** (n + 1 - layer)
            key = (layer, decay)
            if key not in buckets:
                label = "stem" if layer == 0 else "head" if layer == n + 1 else f"stage{layer - 1}"
                buckets[key] = {"params": [], "lr": lr * scale, "lr_scale": scale,
                                "weight_decay": weight_decay if decay else 0.0,
                                "name": f"{label}{'' if decay or weight_decay == 0 else '_no_decay'}",
                                "param_names": []}
            buckets[key]["params"].append(p)
            buckets[key]["param_names"].append(name)
        return [buckets[k] for k in sorted(buckets)]

    # =================================================================== write-back
    def to_recipe(self) -> Any:
        """The recipe that rebuilds this architecture (each model class provides it)."""
        raise TVCError(f"{type(self).__name__} cannot be written as a recipe", where=f"{type(self).__name__}.to_recipe",
                       hint="build the model from a recipe, the >> composer or HybridBuilder")

    def save(self, path: str | os.PathLike[str], *, metadata: dict[str, str] | None = None) -> Any:
        """Write the model to one self-describing safetensors file (``weights.save_model``); returns the path.

        ``weights.load_model(path)`` rebuilds it from the stored recipe.
        """
        from ..weights import save_model

        return save_model(self, path, metadata=metadata)  # type: ignore[arg-type]
