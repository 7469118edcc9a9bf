"""Optimizers and learning-rate schedules by name, built from trainable parameters only.

Names: optimizers ``adamw`` (weight decay 0.01), ``adam`` (no decay), ``sgd`` (momentum 0.9,
Nesterov off, weight decay 5e-4); schedules ``cosine``, ``step``, ``onecycle`` or ``None``. Every
schedule steps once per optimizer step and honours ``warmup_epochs`` (a linear ramp to ``lr``):

* ``cosine``: cosine decay from ``lr`` to 0 over the steps after warmup;
* ``step``: multiply by 0.1 every ``max(1, epochs // 3)`` epochs after warmup (the 2.x trainer
  divided by zero below 3 epochs);
* ``onecycle``: :class:`torch.optim.lr_scheduler.OneCycleLR` peaking at ``lr`` (2.x peaked at
  ``10 * lr``), its warm-up fraction ``warmup_epochs / epochs`` (default 0.3);
* ``None``: constant ``lr`` after warmup.

Named optimizers use PyTorch's fused implementation (``fused=True``) when every parameter is a
floating-point tensor on the CPU or CUDA: on one CPU thread a fused AdamW step over ResNet-18 is
about 6x faster than the default one.

A model may define ``param_groups(lr=..., [weight_decay=...])`` returning optimizer groups (e.g.
layer-wise learning-rate decay); frozen parameters are removed from them and empty groups dropped.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR, ReduceLROnPlateau

from ..errors import TrainingError, closest

__all__ = ["OPTIMIZERS", "SCHEDULERS", "build_optimizer", "build_scheduler", "trainable_param_groups"]

OPTIMIZERS: dict[str, tuple[type[Optimizer], dict[str, Any]]] = {
    "adamw": (torch.optim.AdamW, {"weight_decay": 0.01}),
    "adam": (torch.optim.Adam, {"weight_decay": 0.0}),
    "sgd": (torch.optim.SGD, {"momentum": 0.9, "weight_decay": 5e-4}),
}
SCHEDULERS = ("cosine", "step", "onecycle", "none")


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    params = inspect.signature(fn).parameters
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def trainable_param_groups(model: nn.Module, lr: float, weight_decay: float | None,
                           layer_decay: float | None = None) -> list[dict[str, Any]]:
    """Optimizer groups holding only parameters with ``requires_grad``.

    ``weight_decay`` (when not ``None``) and ``layer_decay`` are passed to ``model.param_groups``
    when it takes them; ``layer_decay`` without such a method is an error.
    """
    groups_fn = getattr(model, "param_groups", None)
    if layer_decay is not None and not (callable(groups_fn) and _accepts(groups_fn, "layer_decay")):
        raise TrainingError("layer_decay needs a model whose param_groups() takes layer_decay",
                            where="fit(layer_decay=...)", got=type(model).__name__,
                            hint="build the model with HybridBuilder, or pass optimizer groups yourself")
    if callable(groups_fn):
        kwargs: dict[str, Any] = {"lr": lr}
        if weight_decay is not None and _accepts(groups_fn, "weight_decay"):
            kwargs["weight_decay"] = weight_decay
        if layer_decay is not None:
            kwargs["layer_decay"] = layer_decay
        groups = groups_fn(**kwargs)
        if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) and "params" in g for g in groups):
            raise TrainingError("model.param_groups() must return a list of dicts with 'params'",
                                where=f"{type(model).__name__}.param_groups", got=type(groups).__name__)
        out = []
        for g in groups:
            kept = [p for p in g["params"] if p.requires_grad]
            if kept:
                out.append({**g, "params": kept})
    else:
        kept = [p for p in model.parameters() if p.requires_grad]
        out = [{"params": kept}] if kept else []
    if not out:
        n_frozen = sum(p.numel() for p in model.parameters())
        raise TrainingError("the model has no trainable parameters", where=type(model).__name__,
                            expected="at least one parameter with requires_grad=True",
                            got=f"{n_frozen} frozen parameter values",
                            hint="unfreeze some layers (e.g. the head) before fit()")
    return out


def _name(value: str, choices: tuple[str, ...] | list[str], what: str) -> str:
    key = value.strip().lower().replace("-", "").replace("_", "")
    if key not in choices:
        raise TrainingError(f"unknown {what} {value!r}", where=f"fit({what}=...)",
                            expected="one of " + ", ".join(repr(c) for c in choices),
                            suggestions=closest(value, choices))
    return key


def build_optimizer(spec: Any, model: nn.Module, lr: float, weight_decay: float | None,
                    layer_decay: float | None = None) -> tuple[Optimizer, str]:
    """An optimizer from a name, an ``Optimizer`` subclass or an instance; returns it and its name.

    For a named optimizer the effective weight decay (given, else the name's default) is passed to
    the model's ``param_groups``, which may exempt norms and biases from it.
    """
    if isinstance(spec, Optimizer):
        if layer_decay is not None:
            raise TrainingError("layer_decay cannot apply to an optimizer instance", where="fit(layer_decay=...)",
                                hint="pass the optimizer by name or class")
        return spec, type(spec).__name__
    if isinstance(spec, type) and issubclass(spec, Optimizer):
        groups = trainable_param_groups(model, lr, weight_decay, layer_decay)
        kwargs = {} if weight_decay is None else {"weight_decay": weight_decay}
        return spec(groups, lr=lr, **kwargs), spec.__name__
    if not isinstance(spec, str):
        raise TrainingError("optimizer must be a name, an Optimizer class or an Optimizer instance",
                            where="fit(optimizer=...)", expected="'adamw', 'adam', 'sgd' or torch.optim.Optimizer",
                            got=spec)
    key = _name(spec, list(OPTIMIZERS), "optimizer")
    cls, defaults = OPTIMIZERS[key]
    kwargs = dict(defaults)
    if weight_decay is not None:
        kwargs["weight_decay"] = weight_decay
    groups = trainable_param_groups(model, lr, kwargs["weight_decay"], layer_decay)
    params = [p for g in groups for p in g["params"]]
    if "fused" in inspect.signature(cls.__init__).parameters and all(
            p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params):
        try:
            return cls(groups, lr=lr, fused=True, **kwargs), key
        except RuntimeError:  # a device/dtype this torch build has no fused kernel for
            pass
    return cls(groups, lr=lr, **kwargs), key


def _lambda(warm: int, total: int, kind: str, step_size: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if kind == "cosine":
            progress = (step - warm) / max(1, total - warm)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        if kind == "step":
            return 0.1 ** ((step - warm) // step_size)
        return 1.0

    return factor


def build_scheduler(spec: Any, optimizer: Optimizer, *, epochs: int, steps_per_epoch: int,
                    warmup_epochs: float) -> tuple[Any, str]:
    """A per-optimizer-step schedule; returns ``(scheduler or None, name)``."""
    warm = round(warmup_epochs * steps_per_epoch)
    total = epochs * steps_per_epoch
    if isinstance(spec, (LRScheduler, ReduceLROnPlateau)):
        if spec.optimizer is not optimizer:
            raise TrainingError("the scheduler belongs to another optimizer", where="fit(scheduler=...)",
                                hint="build it on the optimizer you pass as fit(optimizer=...)")
        return spec, type(spec).__name__
    if spec is None:
        key = "none"
    elif isinstance(spec, str):
        key = _name(spec, SCHEDULERS, "scheduler")
    else:
        raise TrainingError("scheduler must be a name, None or an LRScheduler instance", where="fit(scheduler=...)",
                            expected="'cosine', 'step', 'onecycle', None or torch.optim.lr_scheduler.LRScheduler",
                            got=spec)
    if key == "onecycle":
        has_momentum = "momentum" in optimizer.defaults or "betas" in optimizer.defaults
        pct = warmup_epochs / epochs if warmup_epochs > 0 else 0.3
        sched = OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total,
                           pct_start=min(max(pct, 1e-6), 1 - 1e-6), cycle_momentum=has_momentum)
        return sched, key
    if key == "none" and warm == 0:
        return None, key
    step_size = max(1, epochs // 3) * steps_per_epoch
    return LambdaLR(optimizer, _lambda(warm, total, key, step_size)), key
