"""The YAML ``training:`` section: the keyword arguments of ``Trainer.fit`` plus ``data``.

When :mod:`torchvision_customizer.train` is importable, the accepted keys are read from
``inspect.signature(Trainer.fit)`` (minus the loaders) plus ``data`` and ``batch_size``. Until the
trainer exists they are the documented list :data:`FIT_KEYS` (the ``fit`` signature of the trainer
issue). Values of the well-known keys are type-checked; unknown keys are errors with suggestions.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Mapping
from typing import Any

from ..errors import closest
from ..spec.issues import Collector, Path

__all__ = ["EXTRA_KEYS", "FIT_KEYS", "training_keys", "validate_training"]

#: documented ``Trainer.fit`` keyword arguments (used until the trainer module exists)
FIT_KEYS: tuple[str, ...] = (
    "epochs", "lr", "optimizer", "scheduler", "criterion", "warmup_epochs", "grad_clip",
    "accumulation_steps", "label_smoothing", "checkpoint_dir", "resume", "callbacks", "progress",
    "weight_decay",
)
#: keys the recipe adds for the data pipeline
EXTRA_KEYS: tuple[str, ...] = ("data", "batch_size")
_LOADERS = {"self", "train_loader", "val_loader", "loader"}


def training_keys() -> tuple[str, ...]:
    """Accepted ``training:`` keys: ``Trainer.fit``'s keyword arguments (or :data:`FIT_KEYS`) + data."""
    try:
        module = importlib.import_module("torchvision_customizer.train")
        fit = module.Trainer.fit
    except (ImportError, AttributeError):
        return FIT_KEYS + EXTRA_KEYS
    params = [n for n, p in inspect.signature(fit).parameters.items()
              if n not in _LOADERS and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return tuple(params) + tuple(k for k in EXTRA_KEYS if k not in params)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))


_CHECKS: dict[str, tuple[Any, str]] = {
    "epochs": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an integer >= 1"),
    "lr": (lambda v: _num(v) and v > 0, "a number > 0"),
    "warmup_epochs": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "an integer >= 0"),
    "grad_clip": (lambda v: v is None or (_num(v) and v > 0), "a number > 0 or null"),
    "accumulation_steps": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
                           "an integer >= 1"),
    "label_smoothing": (lambda v: _num(v) and 0 <= v < 1, "a number in [0, 1)"),
    "batch_size": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an integer >= 1"),
    "weight_decay": (lambda v: _num(v) and v >= 0, "a number >= 0"),
    "optimizer": (lambda v: v is None or isinstance(v, str), "an optimizer name (adamw, adam, sgd)"),
    "scheduler": (lambda v: v is None or isinstance(v, str), "a scheduler name (cosine, step, onecycle) or null"),
    "resume": (lambda v: isinstance(v, bool), "true or false"),
    "progress": (lambda v: isinstance(v, bool), "true or false"),
    "checkpoint_dir": (lambda v: v is None or isinstance(v, str), "a directory path or null"),
    "data": (lambda v: isinstance(v, (str, Mapping)), "a dataset name/path or a mapping"),
}


def validate_training(section: Any, c: Collector, path: Path = ("training",)) -> None:
    """Record every problem of a ``training:`` section in ``c``."""
    if section is None:
        return
    if not isinstance(section, Mapping):
        c.add(path, "type", "training must be a mapping of Trainer.fit arguments", got=section,
              expected="e.g. {epochs: 10, lr: 0.001}")
        return
    keys = training_keys()
    for key, value in section.items():
        if key not in keys:
            c.add((*path, key), "unknown_key", f"unknown training key {key!r}", got=key,
                  expected="one of " + ", ".join(keys), suggestions=closest(str(key), keys))
            continue
        check = _CHECKS.get(key)
        if check is not None and not check[0](value):
            c.add((*path, key), "value", f"bad value for training.{key}", got=value, expected=check[1])
