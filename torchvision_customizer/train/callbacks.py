"""Callbacks: a small protocol for code that runs at fixed points of ``Trainer.fit``.

The protocol is duck-typed: any object with some of these methods is a callback. Subclassing
:class:`Callback` (whose methods do nothing) is optional. Hooks, in the order they run::

    on_fit_start(trainer)                      after setup and resume, before the first batch
    on_epoch_start(trainer, epoch)             epoch is 1-based
    on_step_end(trainer, step, loss)           after each optimizer step (and its step checkpoint);
                                               step is the global optimizer step, loss a float
    on_epoch_end(trainer, epoch, logs)         after validation and the epoch checkpoint; logs has
                                               train_loss, train_acc, val_loss, val_acc, lr, epoch_time, step
    on_fit_end(trainer, metrics)               also after early stopping; not after an exception

Set ``trainer.should_stop = True`` to stop after the current epoch (the flag is shared by all
processes under ``torchrun``). Callbacks run on every process; ``trainer.is_main_process`` tells
rank 0, where the built-in writers do their writing. A method whose name starts with ``on_`` but is
not a hook is an error at the start of ``fit`` (a typo would otherwise never run).
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TrainingError, closest

if TYPE_CHECKING:
    from .metrics import TrainingMetrics
    from .trainer import Trainer

__all__ = [
    "HOOKS",
    "Callback",
    "CSVLogger",
    "EarlyStopping",
    "BestCheckpoint",
    "MissingDependencyError",
    "TensorBoardLogger",
    "check_callbacks",
]

HOOKS = ("on_fit_start", "on_epoch_start", "on_step_end", "on_epoch_end", "on_fit_end")
LOG_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_time", "step")


class MissingDependencyError(TrainingError, ImportError):
    """An optional dependency is needed for what was asked (e.g. ``tensorboard``)."""


class Callback:
    """Base class with no-op hooks; see the module docstring for the protocol."""

    def on_fit_start(self, trainer: Trainer) -> None:
        """Called once after setup (and resume), before the first batch."""

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        """Called at the start of each epoch (1-based)."""

    def on_step_end(self, trainer: Trainer, step: int, loss: float) -> None:
        """Called after every optimizer step."""

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        """Called after each epoch's validation and checkpoint."""

    def on_fit_end(self, trainer: Trainer, metrics: TrainingMetrics) -> None:
        """Called once when ``fit`` returns normally."""


def check_callbacks(callbacks: Any) -> list[Any]:
    """Validate the ``callbacks`` argument: a sequence of objects with hook methods only."""
    if callbacks is None:
        return []
    if not isinstance(callbacks, (list, tuple)):
        callbacks = [callbacks]
    out = []
    for i, cb in enumerate(callbacks):
        names = [n for n in dir(cb) if n.startswith("on_") and callable(getattr(cb, n, None))]
        if not names:
            raise TrainingError("a callback has no hook method", where=f"callbacks[{i}]", got=type(cb).__name__,
                                expected="an object with one of " + ", ".join(HOOKS))
        for n in names:
            if n not in HOOKS:
                raise TrainingError(f"unknown callback hook {n!r}", where=f"callbacks[{i}] ({type(cb).__name__})",
                                    expected="one of " + ", ".join(HOOKS), suggestions=closest(n, HOOKS))
        out.append(cb)
    return out


def _monitor_mode(monitor: str, mode: str, owner: str) -> str:
    if monitor not in LOG_KEYS:
        raise TrainingError(f"unknown metric {monitor!r} to monitor", where=f"{owner}.monitor",
                            expected="one of " + ", ".join(LOG_KEYS), suggestions=closest(monitor, LOG_KEYS))
    if mode == "auto":
        return "min" if monitor.endswith("loss") else "max"
    if mode not in ("min", "max"):
        raise TrainingError("unknown mode", where=f"{owner}.mode", expected="'min', 'max' or 'auto'", got=mode)
    return mode


class _Monitor(Callback):
    """Shared logic: track the best value of one logged metric."""

    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0) -> None:
        self.mode = _monitor_mode(monitor, mode, type(self).__name__)
        self.monitor = monitor
        self.min_delta = abs(float(min_delta))
        self.best: float | None = None
        self.best_epoch: int | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.monitor.startswith("val_") and not trainer.has_validation:
            raise TrainingError(f"{type(self).__name__} monitors {self.monitor!r} but fit() has no val_loader",
                                where=f"{type(self).__name__}.monitor",
                                hint="pass val_loader=..., or monitor='train_loss'")

    def _improved(self, value: float | None) -> bool:
        if value is None or math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    Args:
        monitor: a key of the epoch logs (``val_loss``, ``val_acc``, ``train_loss``, ...).
        patience: epochs without improvement that are tolerated.
        min_delta: the smallest change that counts as an improvement.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (min for losses, max otherwise).
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0,
                 mode: str = "auto") -> None:
        super().__init__(monitor, mode, min_delta)
        if not isinstance(patience, int) or patience < 0:
            raise TrainingError("patience must be a non-negative integer", where="EarlyStopping.patience",
                                got=patience)
        self.patience = patience
        self.wait = 0
        self.stopped_epoch: int | None = None

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        value = logs.get(self.monitor)
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            trainer.should_stop = True


class BestCheckpoint(_Monitor):
    """Keep the model weights of the best epoch by ``monitor`` in one safetensors file.

    The file holds the model's state dict (torchvision key names, contiguous tensors) and, in its
    metadata, the epoch and the monitored value; it loads with ``safetensors.torch.load_file``.

    Args:
        path: file to write; default ``<checkpoint_dir>/best.safetensors`` of the ``fit`` call.
        monitor: a key of the epoch logs.
        mode: ``"min"``, ``"max"`` or ``"auto"``.
        restore_on_end: load the best weights back into the model when ``fit`` ends.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, monitor: str = "val_acc", mode: str = "auto",
                 restore_on_end: bool = False) -> None:
        super().__init__(monitor, mode)
        self.path = None if path is None else Path(path)
        self.restore_on_end = restore_on_end

    def on_fit_start(self, trainer: Trainer) -> None:
        super().on_fit_start(trainer)
        if self.path is None:
            if trainer.checkpoint_dir is None:
                raise TrainingError("BestCheckpoint needs a path or fit(checkpoint_dir=...)",
                                    where="BestCheckpoint.path")
            self.path = trainer.checkpoint_dir / "best.safetensors"
        if trainer.state.resumed_from_step is not None and self.best is None and self.path.is_file():
            # a resumed run keeps competing against the best weights already on disk
            from safetensors import safe_open

            with safe_open(str(self.path), framework="pt") as fh:
                meta = fh.metadata() or {}
            if meta.get("monitor") == self.monitor:
                self.best, self.best_epoch = float(meta["value"]), int(meta["epoch"])

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        value = logs.get(self.monitor)
        if not self._improved(value):
            return
        self.best, self.best_epoch = value, epoch
        if trainer.is_main_process:
            from safetensors.torch import save

            from .checkpoint import _dedupe_storage, atomic_write_bytes

            tensors = {k: v.detach().cpu().contiguous() for k, v in trainer.model.state_dict().items()}
            meta = {"epoch": str(epoch), "monitor": self.monitor, "value": repr(value)}
            atomic_write_bytes(self.path, save(_dedupe_storage(tensors), metadata=meta))

    def on_fit_end(self, trainer: Trainer, metrics: TrainingMetrics) -> None:
        if self.restore_on_end and self.path is not None and self.path.is_file():
            from safetensors.torch import load_file

            trainer.model.load_state_dict(load_file(str(self.path)))


class CSVLogger(Callback):
    """Append one row per epoch to a CSV file (header written when the file is new).

    A resumed run appends to the same file, so the file holds the whole history.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        if not trainer.is_main_process:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.is_file() or self.path.stat().st_size == 0
        with self.path.open("a", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow(("epoch", *LOG_KEYS))
            writer.writerow((epoch, *("" if logs.get(k) is None else logs[k] for k in LOG_KEYS)))


class TensorBoardLogger(Callback):
    """Write the epoch logs as TensorBoard scalars (needs the optional ``tensorboard`` package).

    Raises:
        MissingDependencyError: when ``tensorboard`` is not installed (at construction).
    """

    def __init__(self, log_dir: str | os.PathLike[str]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MissingDependencyError("TensorBoardLogger needs the optional 'tensorboard' package",
                                         where="TensorBoardLogger", hint="pip install tensorboard") from None
        self.log_dir = Path(log_dir)
        self._writer_cls = SummaryWriter
        self._writer: Any = None

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
        if not trainer.is_main_process:
            return
        if self._writer is None:
            self._writer = self._writer_cls(log_dir=str(self.log_dir))
        for key in LOG_KEYS:
            if logs.get(key) is not None and key != "step":
                self._writer.add_scalar(key.replace("_", "/", 1), logs[key], epoch)
        self._writer.flush()

    def on_fit_end(self, trainer: Trainer, metrics: TrainingMetrics) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
