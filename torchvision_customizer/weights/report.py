"""``LoadReport``: what a weight load did to every tensor, as data.

Every model tensor ends up in exactly one of ``loaded``, ``adapted``, ``shape_mismatched`` or
``missing`` (plus ``newly_initialized`` saying what it holds now when it was not loaded), and every
source tensor is used, ``dropped`` by a named rule, ``shape_mismatched`` or ``unexpected``. Nothing
is only logged (STYLE P11; the older release's ``WeightLoadingReport`` showed five mismatches).

``WeightLoadingReport`` is the same class under the older release's name; its older field names
(``total_loaded``, ``skipped_missing``, ...) are read-only views of the fields here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import WeightLoadingError

__all__ = ["LoadReport", "WeightLoadingReport"]

Shape = tuple[int, ...]


@dataclass(eq=False)
class LoadReport:
    """The outcome of :func:`~torchvision_customizer.weights.partial_load` (or a checkpoint load).

    Attributes:
        loaded: model keys filled from a source tensor of the same shape.
        adapted: model key -> name of the adaptation rule that filled it
            (``input_conv_sum``, ``norm_swap:batch->GroupNorm``, ...).
        missing: model keys with no source tensor.
        unexpected: source keys (as named in the source) that nothing used.
        shape_mismatched: ``(model key, source shape, model shape)`` that no rule could adapt.
        newly_initialized: model key -> what it holds now, for every model tensor not loaded
            (``"model init (kept)"``, ``"kaiming_normal"``, ``"ones (norm scale)"``, ...).
        non_tensor: source keys whose values were not tensors (ignored).
        dropped: source key -> why a rule or the no-half-loading guard deliberately left it out.
        prefix_stripped: wrapper prefix removed from source keys (``"module."``), if any.
        key_map_applied: source key -> model key, for renames done by the ``key_map``.
        matched: model key -> source key, for every loaded or adapted tensor.
        source: a description of the source (path, ``"state dict"``, ``"module ResNet"``).
        num_model_tensors: tensors in the model's state dict.
        num_source_tensors: tensor entries in the source.
    """

    loaded: list[str] = field(default_factory=list)
    adapted: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatched: list[tuple[str, Shape, Shape]] = field(default_factory=list)
    newly_initialized: dict[str, str] = field(default_factory=dict)
    non_tensor: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    prefix_stripped: str | None = None
    key_map_applied: dict[str, str] = field(default_factory=dict)
    matched: dict[str, str] = field(default_factory=dict)
    source: str = "state dict"
    num_model_tensors: int = 0
    num_source_tensors: int = 0

    # ----------------------------------------------------------------- ratios
    @property
    def load_ratio(self) -> float:
        """Fraction of the model's tensors filled from the source (loaded or adapted)."""
        if not self.num_model_tensors:
            return 0.0
        return (len(self.loaded) + len(self.adapted)) / self.num_model_tensors

    @property
    def source_ratio(self) -> float:
        """Fraction of the source's tensors that filled a model tensor (loaded or adapted)."""
        if not self.num_source_tensors:
            return 0.0
        return len(set(self.matched.values())) / self.num_source_tensors

    @property
    def ok(self) -> bool:
        """True when nothing is missing, unexpected or shape-mismatched."""
        return not (self.missing or self.unexpected or self.shape_mismatched)

    # ------------------------------------------------ older release's names
    @property
    def total_loaded(self) -> int:
        """Older name: number of model tensors filled from the source (loaded + adapted)."""
        return len(self.loaded) + len(self.adapted)

    @property
    def total_skipped(self) -> int:
        """Older name: missing + unexpected + shape-mismatched entries."""
        return len(self.missing) + len(self.unexpected) + len(self.shape_mismatched)

    @property
    def skipped_shape_mismatch(self) -> list[tuple[str, Shape, Shape]]:
        """Older name of :attr:`shape_mismatched` (a copy)."""
        return list(self.shape_mismatched)

    @property
    def skipped_missing(self) -> list[str]:
        """Older name of :attr:`missing` (a copy)."""
        return list(self.missing)

    @property
    def skipped_unexpected(self) -> list[str]:
        """Older name of :attr:`unexpected` (a copy)."""
        return list(self.unexpected)

    # ------------------------------------------------------------ checking
    def problems(self, *, missing: bool = True, unexpected: bool = True,
                 mismatched: bool = True) -> dict[str, list[str]]:
        """The selected problem categories that are not empty, as lists of keys."""
        out: dict[str, list[str]] = {}
        if missing and self.missing:
            out["missing"] = list(self.missing)
        if unexpected and self.unexpected:
            out["unexpected"] = list(self.unexpected)
        if mismatched and self.shape_mismatched:
            out["shape-mismatched"] = [f"{k} (source {tuple(s)}, model {tuple(m)})"
                                       for k, s, m in self.shape_mismatched]
        return out

    def raise_if(self, missing: bool = True, unexpected: bool = True, mismatched: bool = True) -> LoadReport:
        """Raise :class:`WeightLoadingError` (carrying this report) if a selected category is not empty.

        Returns the report itself otherwise, so ``partial_load(...).raise_if(unexpected=False)`` chains.
        """
        problems = self.problems(missing=missing, unexpected=unexpected, mismatched=mismatched)
        if not problems:
            return self
        counts = ", ".join(f"{len(v)} {k}" for k, v in problems.items())
        shown = []
        for kind, keys in problems.items():
            more = f" ... and {len(keys) - 5} more" if len(keys) > 5 else ""
            shown.append(f"{kind}: " + ", ".join(keys[:5]) + more)
        raise WeightLoadingError(
            f"weights do not fit the model: {counts}",
            where=self.source,
            expected="every model tensor filled and every source tensor used"
            + ("" if mismatched else " (shape mismatches allowed)"),
            got="; ".join(shown),
            hint="the full list is in err.report.summary(); pass strict=False to load what fits, "
                 "or a key_map to rename keys",
            report=self,
        )

    # -------------------------------------------------------------- output
    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict of every field plus ``load_ratio``, ``source_ratio`` and ``ok``."""
        return {
            "source": self.source,
            "loaded": list(self.loaded),
            "adapted": dict(self.adapted),
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
            "shape_mismatched": [[k, list(s), list(m)] for k, s, m in self.shape_mismatched],
            "newly_initialized": dict(self.newly_initialized),
            "non_tensor": list(self.non_tensor),
            "dropped": dict(self.dropped),
            "prefix_stripped": self.prefix_stripped,
            "key_map_applied": dict(self.key_map_applied),
            "matched": dict(self.matched),
            "num_model_tensors": self.num_model_tensors,
            "num_source_tensors": self.num_source_tensors,
            "load_ratio": self.load_ratio,
            "source_ratio": self.source_ratio,
            "ok": self.ok,
        }

    def summary(self) -> str:
        """A readable table: a header with the ratios, then every entry, grouped by category."""
        filled = len(self.loaded) + len(self.adapted)
        used = len(set(self.matched.values()))
        lines = [
            f"LoadReport for {self.source}",
            f"  model tensors filled: {filled}/{self.num_model_tensors} ({self.load_ratio:.1%})",
            f"  source tensors used:  {used}/{self.num_source_tensors} ({self.source_ratio:.1%})",
            f"  status: {'ok' if self.ok else 'INCOMPLETE (see missing / unexpected / shape mismatched)'}",
        ]
        if self.prefix_stripped:
            lines.append(f"  prefix stripped from source keys: {self.prefix_stripped!r}")

        def section(title: str, rows: Iterable[tuple[str, ...]]) -> None:
            rows = list(rows)
            if not rows:
                return
            lines.append(f"{title} ({len(rows)}):")
            width = max(len(r[0]) for r in rows)
            for r in rows:
                rest = "  ".join(r[1:])
                lines.append(f"  {r[0]:<{width}}  {rest}".rstrip())

        section("loaded", ((k, self._from(k)) for k in self.loaded))
        section("adapted", ((k, f"[{rule}]", self._from(k)) for k, rule in self.adapted.items()))
        section("shape mismatched", ((k, f"source {tuple(s)}", f"model {tuple(m)}")
                                     for k, s, m in self.shape_mismatched))
        section("missing", ((k,) for k in self.missing))
        section("newly initialized", self.newly_initialized.items())
        section("unexpected", ((k,) for k in self.unexpected))
        section("dropped by a rule", self.dropped.items())
        section("key map applied", ((s, f"-> {t}") for s, t in self.key_map_applied.items()))
        section("non-tensor source entries", ((k,) for k in self.non_tensor))
        return "\n".join(lines)

    def _from(self, key: str) -> str:
        src = self.matched.get(key)
        return "" if src is None or src == key else f"<- {src}"

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (f"LoadReport(loaded={len(self.loaded)}, adapted={len(self.adapted)}, "
                f"missing={len(self.missing)}, unexpected={len(self.unexpected)}, "
                f"shape_mismatched={len(self.shape_mismatched)}, "
                f"newly_initialized={len(self.newly_initialized)}, load_ratio={self.load_ratio:.3f}, "
                f"source_ratio={self.source_ratio:.3f}, source={self.source!r})")


#: The older release's name for :class:`LoadReport` (the same class).
WeightLoadingReport = LoadReport
