"""``HybridModel``: a torchvision (or timm) model that keeps its class and keys and gains a toolkit.

``HybridModel`` is a mixin: the builder gives the already-built torchvision model the class
``HybridModel + <its class>`` (``isinstance`` holds for both; no wrapper, no ``model.`` prefix),
so its state-dict keys stay exactly torchvision's for the original tensors and its ``forward`` is
torchvision's own. On top it adds:

* ``stem`` / ``stages`` / ``head``: read-only views (no tensor is registered twice);
* ``forward_features``, ``forward_head``, ``get_stage_outputs`` and ``features_only`` outputs;
* ``freeze_backbone(unfreeze_stages=None, bn="eval"|"frozen"|"train")``, ``unfreeze_all()``;
* ``count_parameters``, ``param_groups(lr, layer_decay=..., weight_decay=...)``, ``explain()``;
* ``load_report``, ``modifications`` (derived from the modules), ``to_recipe()``, ``backbone_name``.

Stage numbering is the catalog's: from 0, stem excluded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import BlockValueError, TVCError
from ..models.surface import ModelSurface
from ._meta import rebuild_mixed
from .catalog import BackboneSpec, get_path
from .patch import iter_patches, normalize_patches

__all__ = ["HybridModel", "Modification", "BN_POLICIES"]

BN_POLICIES = ("eval", "frozen", "train")
_VIEWS = ("stem", "stages", "head")


@dataclass(frozen=True)
class Modification:
    """One change found in the model (read from the modules themselves, not from the request).

    Attributes:
        op: ``wrap``, ``inject_before``, ``replace``, ``head``, ``in_chans``, ``dropout``, ``drop_aux``.
        target: the original module path.
        path: where the new (or changed) module lives.
        block: the block / norm / activation name (or a description).
        old: the class that was there.
        params: parameters of the new module (0 for removals).
        detail: extra facts (identity init, weights reused, adapter ...).
    """

    op: str
    target: str
    path: str
    block: str
    old: str
    params: int
    detail: str = ""

    def __str__(self) -> str:
        verb = {"wrap": "Wrapped", "inject_before": "Injected before", "replace": "Replaced",
                "head": "Resized head", "in_chans": "Adapted input conv", "dropout": "Set dropout",
                "drop_aux": "Dropped auxiliary head"}.get(self.op, self.op)
        tail = f" ({self.detail})" if self.detail else ""
        if self.op in ("wrap", "inject_before"):
            return f"{verb} {self.target} with {self.block} -> {self.path} (+{self.params:,} params){tail}"
        if self.op == "replace":
            return f"{verb} {self.target} ({self.old}) with {self.block}{tail}"
        return f"{verb} {self.target}: {self.block}{tail}"


def _count(params: Iterable[nn.Parameter], trainable_only: bool = False) -> int:
    return sum(p.numel() for p in params if p.requires_grad or not trainable_only)


class HybridModel(ModelSurface, nn.Module):
    """A customized torchvision model; see the module docstring. Built by ``HybridBuilder``.

    Example:
        >>> from torchvision_customizer import HybridBuilder  # doctest: +SKIP
        >>> model = HybridBuilder().from_torchvision("resnet18", weights=None,
        ...                                          patches={"layer4": {"wrap": "se"}}, num_classes=10)
        >>> isinstance(model, torchvision.models.ResNet), model.stages[3][-1].block  # doctest: +SKIP
        (True, SEBlock(...))
    """

    _tvc_class_name = "Hybrid{base}"
    _tvc_arch_kind = "hybrid"  # weights.save_model records to_recipe() under this kind

    # ------------------------------------------------------------------ adoption
    @classmethod
    def adopt(cls, model: nn.Module, spec: BackboneSpec, *, build: dict[str, Any], load_report: Any = None,
              weights_name: Any = None, timm: bool = False) -> HybridModel:
        """Turn ``model`` (built from ``spec``) into a ``HybridModel`` in place and return it."""
        from ._meta import swap_class

        swap_class(model, cls)
        m: HybridModel = model  # type: ignore[assignment]
        m.__dict__.update(
            _tvc_spec=spec,
            _tvc_stages=[list(s) for s in spec.stages],
            _tvc_timm=timm,
            _tvc_build=dict(build),
            _tvc_features_only=bool(build.get("features_only")),
            _tvc_out_indices=tuple(build.get("out_indices") or ()),
            _tvc_frozen_bn=[],
            _tvc_bn_swapped=[],
            _tvc_weights=weights_name,
            backbone_name=spec.name,
            load_report=load_report,
        )
        return m

    def __reduce_ex__(self, protocol: int) -> Any:
        return rebuild_mixed, (HybridModel, type(self)._tvc_base), self.__dict__  # type: ignore[attr-defined]

    def __setattr__(self, name: str, value: Any) -> None:
        # stem / stages / head are views; assigning one would register a second copy of its tensors
        if name in _VIEWS and name not in self._modules:
            raise AttributeError(f"{type(self).__name__}.{name} is a read-only view of the model's own modules; "
                                 f"change the modules themselves (e.g. with HybridBuilder().patch)")
        super().__setattr__(name, value)

    # --------------------------------------------------------------------- views
    @property
    def spec(self) -> BackboneSpec:
        """The catalog row this model follows (stem, stages, channels, strides, head)."""
        return self.__dict__["_tvc_spec"]

    @property
    def num_stages(self) -> int:
        return len(self._tvc_stages)

    @property
    def stage_paths(self) -> list[list[str]]:
        """Module paths of each stage (new blocks appended by patches included)."""
        return [list(s) for s in self._tvc_stages]

    def _view(self, paths: Sequence[str]) -> nn.Module:
        mods = [(p, get_path(self, p)) for p in paths]
        mods = [(p, m) for p, m in mods if isinstance(m, nn.Module)]
        if len(mods) == 1:
            return mods[0][1]
        # a fresh, unregistered container: reading it never duplicates state-dict keys
        return nn.Sequential(OrderedDict((p.replace(".", "_"), m) for p, m in mods))

    @property
    def stem(self) -> nn.Module:
        """The stem (a module, or an unregistered ``nn.Sequential`` view of its modules)."""
        own = self._modules.get("stem")
        if own is not None:
            return own
        return self._view(self.spec.stem)

    @property
    def stages(self) -> nn.ModuleList:
        """The stages, indexable (``model.stages[i]``); an unregistered view."""
        own = self._modules.get("stages")
        if own is not None:
            return own  # type: ignore[return-value]
        return nn.ModuleList([self._view(s) for s in self._tvc_stages])

    @property
    def head(self) -> nn.Module:
        """The classifier (the module ``num_classes`` resized)."""
        own = self._modules.get("head")
        if own is not None:
            return own
        return get_path(self, self.spec.classifier)

    @property
    def features_only(self) -> bool:
        return bool(self._tvc_features_only)

    @property
    def out_indices(self) -> tuple[int, ...]:
        return tuple(self._tvc_out_indices)

    @property
    def feature_info(self) -> list[dict[str, Any]]:
        """Per stage: ``{"index", "module", "num_chs", "reduction", "layout"}`` (timm's vocabulary)."""
        s = self.spec
        return [{"index": i, "module": p[-1], "num_chs": c, "reduction": r, "layout": s.layout}
                for i, (p, c, r) in enumerate(zip(self._tvc_stages, s.channels, s.strides))]

    # ------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> Any:  # type: ignore[override]
        # one tensor argument, so torch.fx can trace the model from its root
        if self._tvc_features_only:
            return self._features(x)
        return super().forward(x)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        idx = self._tvc_out_indices
        outs = self._stage_outputs(x, max(idx))
        return [self._to_nchw(outs[i]) for i in idx]

    def _stage_outputs(self, x: torch.Tensor, upto: int) -> list[torch.Tensor]:
        if self._tvc_timm:
            from ._timm import timm_stage_outputs

            return timm_stage_outputs(self, x, upto)
        fam = self.spec.family
        x = fam.pre(self, x)
        if fam.stem_runs:
            for p in self.spec.stem:
                m = get_path(self, p)
                if isinstance(m, nn.Module):
                    x = m(x)
        outs: list[torch.Tensor] = []
        for i, members in enumerate(self._tvc_stages):
            for p in members:
                x = get_path(self, p)(x)
            outs.append(x)
            if i >= upto:
                break
        return outs

    def _to_nchw(self, x: torch.Tensor) -> torch.Tensor:
        layout = self.spec.layout
        if self._tvc_timm or layout == "nchw":
            return x
        if layout == "nhwc":
            return x.permute(0, 3, 1, 2)
        p = self.spec.family.prefix_tokens
        side = self.image_size // self.patch_size  # ViT: fixed grid
        return x[:, p:].transpose(1, 2).reshape(x.shape[0], x.shape[2], side, side)

    def forward_features(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The last stage's output in the model's own layout (the input of ``forward_head``)."""
        if self._tvc_timm:  # timm's own (its forward calls it, with its own keyword arguments)
            return type(self)._tvc_base.forward_features(self, x, *args, **kwargs)  # type: ignore[attr-defined]
        return self._stage_outputs(x, self.num_stages - 1)[-1]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False, **kwargs: Any) -> torch.Tensor:
        """The head applied to ``forward_features(x)``; ``forward_head(forward_features(x)) == forward(x)``."""
        if self._tvc_timm:
            return type(self)._tvc_base.forward_head(self, x, pre_logits=pre_logits,  # type: ignore[attr-defined]
                                                     **kwargs)
        if pre_logits:
            raise TVCError("pre_logits is only available for timm models", where="forward_head",
                           expected="pre_logits=False", got=pre_logits)
        if self._tvc_features_only:
            raise TVCError("a features_only model has no head", where="forward_head",
                           hint="build it with features_only=False")
        return self.spec.family.head_fn(self, self.spec, x)

    def get_stage_outputs(self, x: torch.Tensor, nchw: bool = True) -> list[torch.Tensor]:
        """Every stage's output, stage 0 first (the stem is not a stage). NCHW maps unless ``nchw=False``."""
        outs = self._stage_outputs(x, self.num_stages - 1)
        return [self._to_nchw(o) for o in outs] if nchw else outs

    # ------------------------------------------------------------------ freezing
    def _groups(self) -> dict[str, Any]:
        """Module path -> group: ``"stem"``, a stage index, or ``"head"``."""
        out: dict[str, Any] = {}
        for p in self.spec.stem:
            out[p] = "stem"
        for i, members in enumerate(self._tvc_stages):
            for p in members:
                out[p] = i
        for p in self.spec.head_parts:
            out[p] = "head"
        out.setdefault(self.spec.classifier, "head")
        return out

    def _group_of(self, name: str, groups: dict[str, Any]) -> Any:
        parts = name.split(".")
        for k in range(len(parts), 0, -1):
            g = groups.get(".".join(parts[:k]))
            if g is not None:
                return g
        return "head"

    def _new_prefixes(self) -> list[str]:
        return [path for path, _, rec in iter_patches(self)
                if rec.get("op") in ("wrap", "inject_before", "replace", "in_chans", "head")]

    def _is_new(self, name: str, new: list[str]) -> bool:
        return any(name == p or name.startswith(p + ".") for p in new)

    def _check_stages(self, stages: Any, where: str) -> list[int]:
        n = self.num_stages
        if stages is None:
            return []
        if isinstance(stages, int) and not isinstance(stages, bool):
            stages = [stages]
        if not isinstance(stages, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool)
                                                             for i in stages):
            raise BlockValueError("stage indices must be integers", where=where, expected=f"ints in 0..{n - 1}",
                             got=stages)
        bad = [i for i in stages if not -n <= i < n]
        if bad:
            raise BlockValueError("stage index out of range", where=where,
                             expected=f"0..{n - 1} (or -{n}..-1) for {self.backbone_name}'s {n} stages",
                             got=bad[0])
        return sorted({i % n for i in stages})

    def freeze_backbone(self, unfreeze_stages: Any = None, bn: str = "eval") -> HybridModel:
        """Freeze the stem and stages (original tensors); new patch modules and the head stay trainable.

        Args:
            unfreeze_stages: stage indices (or one index) kept trainable (negative counts from the end).
            bn: BatchNorm layers in the frozen part: ``"eval"`` (kept in eval mode, statistics fixed,
                also under ``model.train()``), ``"frozen"`` (replaced by ``FrozenBatchNorm2d``; state-dict
                keys unchanged except ``num_batches_tracked``), ``"train"`` (statistics keep updating).

        The adapted first convolution of an ``in_chans != 3`` model counts as new (its extra
        channels start at zero and must train).
        """
        if bn not in BN_POLICIES:
            raise BlockValueError("unknown BatchNorm policy", where="freeze_backbone(bn=...)",
                             expected="one of " + ", ".join(BN_POLICIES), got=bn)
        keep = set(self._check_stages(unfreeze_stages, "unfreeze_stages"))
        self.unfreeze_all()
        groups = self._groups()
        new = self._new_prefixes()
        for name, p in self.named_parameters():
            g = self._group_of(name, groups)
            frozen = g != "head" and g not in keep and not self._is_new(name, new)
            p.requires_grad_(not frozen)
        frozen_bn = []
        for name, m in self.named_modules():
            if not isinstance(m, nn.modules.batchnorm._BatchNorm):
                continue
            g = self._group_of(name, groups) if name else "head"
            if g == "head" or g in keep or self._is_new(name, new):
                continue
            frozen_bn.append(name)
        if bn == "eval":
            self._tvc_frozen_bn = frozen_bn
            for name in frozen_bn:
                self.get_submodule(name).eval()
        elif bn == "frozen":
            from ..layers import FrozenBatchNorm2d

            swapped = []
            for name in frozen_bn:
                old = self.get_submodule(name)
                if not isinstance(old, nn.BatchNorm2d) or old.running_mean is None:
                    continue
                new_bn = FrozenBatchNorm2d(old.num_features, eps=old.eps, device=old.running_mean.device,
                                           dtype=old.running_mean.dtype)
                with torch.no_grad():
                    new_bn.weight.copy_(old.weight if old.weight is not None else torch.ones_like(new_bn.weight))
                    new_bn.bias.copy_(old.bias if old.bias is not None else torch.zeros_like(new_bn.bias))
                    new_bn.running_mean.copy_(old.running_mean)
                    new_bn.running_var.copy_(old.running_var)
                _replace(self, name, new_bn)
                swapped.append(name)
            self._tvc_bn_swapped = swapped
        self.__dict__["_tvc_freeze"] = {"unfreeze_stages": sorted(keep) if unfreeze_stages is not None else None,
                                        "bn": bn}
        return self

    def unfreeze_all(self) -> HybridModel:
        """Make every parameter trainable again and release the BatchNorm policy."""
        for name in self._tvc_bn_swapped:
            old = self.get_submodule(name)
            bn = nn.BatchNorm2d(old.num_features, eps=old.eps, device=old.running_mean.device,
                                dtype=old.running_mean.dtype)
            with torch.no_grad():
                bn.weight.copy_(old.weight)
                bn.bias.copy_(old.bias)
                bn.running_mean.copy_(old.running_mean)
                bn.running_var.copy_(old.running_var)
            bn.train(self.training)
            _replace(self, name, bn)
        self._tvc_bn_swapped = []
        for name in self._tvc_frozen_bn:
            self.get_submodule(name).train(self.training)
        self._tvc_frozen_bn = []
        for p in self.parameters():
            p.requires_grad_(True)
        self.__dict__.pop("_tvc_freeze", None)
        return self

    def train(self, mode: bool = True) -> HybridModel:
        super().train(mode)
        if mode:
            for name in self.__dict__.get("_tvc_frozen_bn", ()):
                self.get_submodule(name).eval()
        return self

    # ----------------------------------------------------------------- counting
    def count_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameters (only those with ``requires_grad`` when ``trainable_only``)."""
        return _count(self.parameters(), trainable_only)

    def _group_of_params(self) -> dict[int, Any]:
        """``ModelSurface`` hook: group every parameter by name (tokens and gates included), so the
        shared ``param_groups``/``explain`` see this model's stem, stages and head."""
        groups = self._groups()
        return {id(p): self._group_of(name, groups) for name, p in self.named_parameters()}

    # --------------------------------------------------------------- reporting
    @property
    def modifications(self) -> list[Modification]:
        """What was changed, read from the model: every patched/resized module, every dropped head."""
        out: list[Modification] = []
        for path, module, rec in iter_patches(self):
            op = rec.get("op", "?")
            detail = []
            if op in ("wrap", "inject_before"):
                gamma = getattr(module, "gamma", None)
                if isinstance(gamma, torch.Tensor):
                    detail.append("function-preserving gate" + (" (zero at init)" if gamma.is_meta or
                                                                 not bool(gamma.detach().abs().sum()) else ""))
                if getattr(module, "layout", "nchw") != "nchw":
                    detail.append(f"{module.layout} adapter")
            reused = rec.get("reused")
            if reused is not None:
                detail.append(f"reused {', '.join(reused) if isinstance(reused, list) else len(reused)}"
                              + ("" if isinstance(reused, list) else " tensors"))
            if rec.get("detail"):
                detail.append(rec["detail"])
            out.append(Modification(op=op, target=rec.get("target", path), path=path,
                                    block=str(rec.get("block", "")), old=str(rec.get("old", "")),
                                    params=sum(p.numel() for p in module.parameters()),
                                    detail=", ".join(detail)))
        for name in getattr(self.spec.family, "aux", ()):
            if name in self._modules and self._modules[name] is None:
                out.append(Modification("drop_aux", name, name, "removed", name, 0,
                                        "torchvision drops auxiliary heads of pretrained models too"))
        return out

    def explain(self) -> str:
        """A readable account: stages with channels/strides/params, patches, trainable counts, weights."""
        s = self.spec
        groups = self._groups()
        per: dict[Any, list[int]] = {}
        for name, p in self.named_parameters():
            g = self._group_of(name, groups)
            tot = per.setdefault(g, [0, 0])
            tot[0] += p.numel()
            tot[1] += p.numel() if p.requires_grad else 0
        total, trainable = self.count_parameters(), self.count_parameters(True)
        lines = [f"{type(self).__name__} ({self.backbone_name}): {total:,} parameters, {trainable:,} trainable",
                 f"  weights: {self._tvc_weights or 'random init'}"]
        st = per.get("stem", [0, 0])
        lines.append(f"  stem: {', '.join(s.stem)}  [{st[0]:,} params, {st[1]:,} trainable]")
        for i, members in enumerate(self._tvc_stages):
            c = per.get(i, [0, 0])
            shown = members if len(members) <= 3 else [members[0], "...", members[-1]]
            lines.append(f"  stage {i}: {', '.join(shown)}  channels={s.channels[i]} stride={s.strides[i]} "
                         f"[{c[0]:,} params, {c[1]:,} trainable]")
        h = per.get("head", [0, 0])
        head_desc = "removed (features_only)" if self._tvc_features_only else s.classifier
        lines.append(f"  head: {head_desc}  [{h[0]:,} params, {h[1]:,} trainable]")
        if self._tvc_features_only:
            lines.append(f"  features_only: out_indices={list(self._tvc_out_indices)}")
        mods = self.modifications
        lines.append(f"  modifications ({len(mods)}):")
        lines.extend(f"    - {m}" for m in mods)
        freeze = self.__dict__.get("_tvc_freeze")
        if freeze:
            lines.append(f"  frozen backbone: unfreeze_stages={freeze['unfreeze_stages']}, bn={freeze['bn']}")
        rep = self.load_report
        if rep is not None:
            lines.append(f"  load report: {len(rep.loaded)} loaded, {len(rep.adapted)} adapted, "
                         f"{len(rep.missing)} missing (new), {len(rep.shape_mismatched)} shape-mismatched, "
                         f"{len(rep.unexpected)} unexpected")
        return "\n".join(lines)

    # ------------------------------------------------------------------- recipe
    def _patch_spec(self) -> dict[str, Any]:
        """The patches, rebuilt from the model's patch records (as written: globs/type selectors kept)."""
        spec: dict[str, dict[str, Any]] = {}
        seen: set[tuple[Any, ...]] = set()
        for _, _, rec in iter_patches(self):
            if rec.get("op") not in ("wrap", "inject_before", "replace"):
                continue
            source, spelled, block = rec.get("source") or rec["target"], rec.get("spelled") or rec["op"], rec["block"]
            params = rec.get("params") or {}
            key = (source, spelled, block, repr(sorted(params.items())), rec["target"] if "*" not in source and
                   not source.startswith(("type:", "stage:")) else "")
            if key in seen:
                continue
            seen.add(key)
            value: Any = block if not params else {"block": block, "params": dict(params)}
            ops = spec.setdefault(source, {})
            if spelled in ops:
                prev = ops[spelled]
                ops[spelled] = [*prev, value] if isinstance(prev, list) else [prev, value]
            else:
                ops[spelled] = value
        normalize_patches(spec)  # must stay a valid spec
        return spec

    def to_recipe(self, path: Any = None) -> dict[str, Any]:
        """A ``backbone:`` recipe that rebuilds this model (``weights:`` is always written).

        With ``path``, the recipe is also written there as YAML. Patches come from the model's
        own patch records; freezing from the model's current freeze state.
        """
        b = self._tvc_build
        freeze = self.__dict__.get("_tvc_freeze")
        backbone: dict[str, Any] = {
            "name": self.backbone_name,
            "source": "timm" if self._tvc_timm else "torchvision",
            "weights": _weights_text(self._tvc_weights),
            "patches": self._patch_spec() or None,
            "preserve": b.get("preserve", True),
            "in_chans": b.get("in_chans", 3),
            "freeze_backbone": freeze is not None,
            "unfreeze_stages": freeze["unfreeze_stages"] if freeze else None,
            "bn": freeze["bn"] if freeze else "eval",
            "features_only": bool(self._tvc_features_only),
            "out_indices": list(self._tvc_out_indices) if self._tvc_features_only else None,
        }
        recipe: dict[str, Any] = {"backbone": backbone}
        if not self._tvc_features_only:
            recipe["head"] = {"num_classes": b.get("num_classes"), "dropout": b.get("dropout")}
        if path is not None:
            import yaml

            with open(path, "w", encoding="utf-8") as f:
                yaml.safe_dump(recipe, f, sort_keys=False)
        return recipe

    def to_yaml(self) -> str:
        """:meth:`to_recipe` as YAML text."""
        import yaml

        return yaml.safe_dump(self.to_recipe(), sort_keys=False)


def _weights_text(w: Any) -> Any:
    if w is None:
        return None
    return str(w)


def _replace(root: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    parent._modules[name] = new
