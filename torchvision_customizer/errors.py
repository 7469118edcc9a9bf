"""The exception family of torchvision-customizer.

Every error raised for user input derives from :class:`TVCError` *and* from the builtin a
caller would naturally catch (``KeyError`` for unknown names, ``ValueError`` for bad values,
``TypeError`` for wrong argument names or types), so ``except ValueError`` keeps working.

Each message says what was expected, what was got, where, and the closest valid names::

    >>> from torchvision_customizer import registry
    >>> registry.get("cbam_blok")  # doctest: +SKIP
    UnknownComponentError: unknown block 'cbam_blok' (at registry 'blocks'); expected a registered
    name. Did you mean: 'cbam_block', 'cbam'?
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

__all__ = [
    "TVCError",
    "UnknownComponentError",
    "RegistryError",
    "BlockArgumentError",
    "BlockValueError",
    "RecipeError",
    "CompositionError",
    "PatchError",
    "WeightLoadingError",
    "BackboneError",
    "TrainingError",
    "ExportError",
    "PluginError",
    "closest",
]


def closest(name: str, choices: Iterable[str], n: int = 3, cutoff: float = 0.5) -> list[str]:
    """Return up to ``n`` names from ``choices`` closest to ``name`` (case-insensitive)."""
    choices = list(dict.fromkeys(choices))
    lowered = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(str(name).lower(), list(lowered), n=n, cutoff=cutoff)
    return [lowered[h] for h in hits]


class TVCError(Exception):
    """Base of every error this library raises for user input.

    Args:
        message: one-line statement of what went wrong.
        expected: what a valid value looks like.
        got: the offending value (shown with ``repr``).
        where: location: dotted key, ``line:col``, module path or file.
        hint: what to do next.
        suggestions: closest valid names, shown as "Did you mean".
    """

    def __init__(
        self,
        message: str,
        *,
        expected: str | None = None,
        got: Any = ...,
        where: str | None = None,
        hint: str | None = None,
        suggestions: Iterable[str] = (),
    ) -> None:
        self.message = message
        self.expected = expected
        self.got = got
        self.where = where
        self.hint = hint
        self.suggestions = list(suggestions)
        super().__init__(self._format())

    def _format(self) -> str:
        parts = [self.message]
        if self.where:
            parts[0] += f" (at {self.where})"
        detail = []
        if self.expected is not None:
            detail.append(f"expected {self.expected}")
        if self.got is not ...:
            detail.append(f"got {self.got!r}")
        if detail:
            parts.append(", ".join(detail))
        if self.suggestions:
            parts.append("did you mean " + ", ".join(repr(s) for s in self.suggestions) + "?")
        if self.hint:
            parts.append(self.hint)
        return "; ".join(parts)

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self._format()


class UnknownComponentError(TVCError, KeyError):
    """A name (block, activation, norm, template, backbone, ...) is not registered."""


class RegistryError(TVCError, ValueError):
    """A registration conflicts with an existing name or alias, or is malformed."""


class BlockArgumentError(TVCError, TypeError):
    """A constructor got an unknown argument name or an argument of the wrong type."""


class BlockValueError(TVCError, ValueError):
    """A constructor argument has an impossible value (channels <= 0, even kernel, ...)."""


class RecipeError(TVCError, ValueError):
    """A recipe string, YAML file or spec is invalid. May carry several located issues."""


class CompositionError(TVCError, ValueError):
    """Parts of a composed model do not fit together (e.g. channel mismatch in ``>>``)."""


class PatchError(TVCError, ValueError):
    """A patch names an unknown target, block or parameter, or cannot apply."""


class WeightLoadingError(TVCError, ValueError):
    """Weights could not be resolved or loaded; may carry a ``LoadReport`` as ``report``."""

    def __init__(self, message: str, *, report: Any = None, **kwargs: Any) -> None:
        self.report = report
        super().__init__(message, **kwargs)


class BackboneError(UnknownComponentError):
    """A backbone name is not in the catalog."""


class TrainingError(TVCError, ValueError):
    """Training was asked for something impossible (bad optimizer name, epochs < 1, ...)."""


class ExportError(TVCError, ValueError, RuntimeError):
    """Export to ONNX / torch.export / TorchScript was asked for something invalid, failed or did not verify."""


class PluginError(TVCError, ImportError):
    """A third-party plugin registered through entry points failed to load."""
