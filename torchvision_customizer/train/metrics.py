"""``TrainingMetrics``: the per-epoch history of a ``fit`` run.

One record per finished epoch: train loss and accuracy, validation loss and accuracy (``None``
without a validation loader), learning rate at the end of the epoch, wall time, and the global
optimizer step reached. The history serialises to CSV and JSON (and back from JSON) and plots
to a PNG. Unlike the 2.x ``TrainingMetrics`` every accessor works on an empty history, and a run
without validation reports no "best validation accuracy" instead of a made-up 0 %.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import TrainingError

__all__ = ["TrainingMetrics"]

# column order of CSV output and of ``records``
FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_time", "step")


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


class TrainingMetrics:
    """Per-epoch history of a training run.

    The 2.x list attributes (``train_losses``, ``train_accs``, ``val_losses``, ``val_accs``,
    ``epoch_times``) and ``update``/``summary`` keep working. Accuracies are fractions in [0, 1].

    Attributes:
        records: one dict per epoch with the keys in :data:`FIELDS`.
        resumed_from_step: global step read from a checkpoint by ``fit(resume=True)``, else ``None``.
        steps_run: optimizer steps the last ``fit`` call actually ran.
        stopped_early: epoch at which a callback stopped training, else ``None``.

    Example:
        >>> m = TrainingMetrics()
        >>> m.update(epoch=1, train_loss=0.9, train_acc=0.7, val_loss=0.8, val_acc=0.75, lr=1e-3)
        >>> m.best_epoch, m.best_val_acc
        (1, 0.75)
    """

    def __init__(self, records: Iterable[dict[str, Any]] = ()) -> None:
        self.records: list[dict[str, Any]] = []
        self.resumed_from_step: int | None = None
        self.steps_run: int = 0
        self.stopped_early: int | None = None
        for rec in records:
            self.update(**rec)

    # -- recording -------------------------------------------------------------------------
    def update(self, train_loss: float, train_acc: float, val_loss: float | None = None,
               val_acc: float | None = None, lr: float | None = None, epoch_time: float | None = None,
               epoch: int | None = None, step: int | None = None) -> None:
        """Append one epoch. ``epoch`` defaults to the next number (1-based)."""
        epoch = len(self.records) + 1 if epoch is None else int(epoch)
        self.records.append({
            "epoch": epoch, "train_loss": _num(train_loss), "train_acc": _num(train_acc),
            "val_loss": _num(val_loss), "val_acc": _num(val_acc), "lr": _num(lr),
            "epoch_time": _num(epoch_time), "step": None if step is None else int(step),
        })

    # -- 2.x list views ----------------------------------------------------------------------
    def _column(self, key: str) -> list[Any]:
        return [r[key] for r in self.records]

    @property
    def epochs(self) -> list[int]:
        return self._column("epoch")

    @property
    def train_losses(self) -> list[float]:
        return self._column("train_loss")

    @property
    def train_accs(self) -> list[float]:
        return self._column("train_acc")

    @property
    def val_losses(self) -> list[float | None]:
        return self._column("val_loss")

    @property
    def val_accs(self) -> list[float | None]:
        return self._column("val_acc")

    @property
    def lrs(self) -> list[float | None]:
        return self._column("lr")

    @property
    def epoch_times(self) -> list[float | None]:
        return self._column("epoch_time")

    @property
    def has_validation(self) -> bool:
        return any(r["val_acc"] is not None for r in self.records)

    @property
    def best_epoch(self) -> int | None:
        """Epoch (1-based) of the best validation accuracy; ``None`` without validation."""
        scored = [(r["val_acc"], -i, r["epoch"]) for i, r in enumerate(self.records)
                  if r["val_acc"] is not None and not math.isnan(r["val_acc"])]
        return max(scored)[2] if scored else None  # ties: the earliest epoch

    @property
    def best_val_acc(self) -> float | None:
        best = self.best_epoch
        if best is None:
            return None
        return next(r["val_acc"] for r in self.records if r["epoch"] == best)

    @property
    def last(self) -> dict[str, Any] | None:
        return dict(self.records[-1]) if self.records else None

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (dict(r) for r in self.records)

    def __repr__(self) -> str:
        return f"TrainingMetrics(epochs={len(self)}, best_epoch={self.best_epoch})"

    # -- reporting ---------------------------------------------------------------------------
    def summary(self) -> str:
        """A short multi-line report; works on an empty history."""
        if not self.records:
            return "No epochs recorded yet."
        last = self.records[-1]
        total = sum(t for t in self.epoch_times if t is not None)
        lines = [f"Epochs: {len(self.records)} (last epoch {last['epoch']}, step {last['step']}), "
                 f"time {total:.1f}s"]
        lines.append(f"Final train loss {last['train_loss']:.4f}, train acc {last['train_acc']:.2%}")
        if last["val_acc"] is not None:
            lines.append(f"Final val loss {last['val_loss']:.4f}, val acc {last['val_acc']:.2%}")
        if self.best_epoch is not None:
            lines.append(f"Best val acc {self.best_val_acc:.2%} (epoch {self.best_epoch})")
        else:
            lines.append("No validation set: no best epoch.")
        if self.resumed_from_step is not None:
            lines.append(f"Resumed from step {self.resumed_from_step}; ran {self.steps_run} steps.")
        if self.stopped_early is not None:
            lines.append(f"Stopped early after epoch {self.stopped_early}.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"records": [dict(r) for r in self.records], "resumed_from_step": self.resumed_from_step,
                "steps_run": self.steps_run, "stopped_early": self.stopped_early,
                "best_epoch": self.best_epoch, "best_val_acc": self.best_val_acc}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingMetrics:
        if not isinstance(data, dict) or not isinstance(data.get("records"), list):
            raise TrainingError("not a TrainingMetrics dict", expected="a dict with a 'records' list",
                                got=type(data).__name__)
        out = cls(data["records"])
        out.resumed_from_step = data.get("resumed_from_step")
        out.steps_run = int(data.get("steps_run") or 0)
        out.stopped_early = data.get("stopped_early")
        return out

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The history as JSON text; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, path_or_text: str | os.PathLike[str]) -> TrainingMetrics:
        text = str(path_or_text)
        if not text.lstrip().startswith("{"):
            text = Path(path_or_text).read_text(encoding="utf-8")
        return cls.from_dict(json.loads(text))

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write one row per epoch (header included, empty cells for missing values)."""
        path = Path(path)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIELDS)
            writer.writeheader()
            for rec in self.records:
                writer.writerow({k: "" if rec[k] is None else rec[k] for k in FIELDS})
        return path

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Save loss and accuracy curves as a PNG (matplotlib's Agg renderer; pyplot is not used,
        so the caller's backend and figures are untouched).

        Raises:
            TrainingError: matplotlib is not installed (``pip install matplotlib``).
        """
        try:
            from matplotlib.figure import Figure
            from matplotlib.ticker import MaxNLocator
        except ImportError:
            raise TrainingError("plot() needs the optional matplotlib package", where="TrainingMetrics.plot",
                                hint="pip install 'torchvision-customizer[plot]'") from None
        fig = Figure(figsize=(10, 4))
        ax_loss, ax_acc = fig.subplots(1, 2)
        epochs = self.epochs
        for ax, key, title in ((ax_loss, "loss", "loss"), (ax_acc, "acc", "accuracy")):
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.plot(epochs, self._column(f"train_{key}"), marker="o", label="train")
            val = [(e, v) for e, v in zip(epochs, self._column(f"val_{key}")) if v is not None]
            if val:
                ax.plot([e for e, _ in val], [v for _, v in val], marker="o", label="val")
            if not self.records:
                ax.text(0.5, 0.5, "no epochs recorded", ha="center", va="center", transform=ax.transAxes)
            else:
                ax.legend()
        best = self.best_epoch
        if best is not None:
            ax_acc.axvline(best, color="grey", linestyle="--", linewidth=1)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, format="png")
        return path
