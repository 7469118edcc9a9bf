"""Located validation problems, collected and raised once (STYLE P7).

Every problem found while reading a recipe string, a YAML file or a spec is an :class:`Issue`
with a location (a dotted path such as ``stages.2.channels`` and, for text, ``line:col`` with a
caret under the offending token), a stable ``code``, the offending value, what was expected and
the closest valid names. A :class:`Collector` gathers them; :meth:`Collector.raise_if_any` raises
one :class:`RecipeValidationError` (a :class:`~torchvision_customizer.errors.RecipeError`) whose
message starts with a count header and lists every problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import RecipeError

__all__ = ["MISSING", "Collector", "Issue", "Path", "RecipeValidationError", "Span", "format_path"]

Path = tuple[Any, ...]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: marker for "no offending value recorded"
MISSING: Any = _Missing()


@dataclass(frozen=True)
class Span:
    """A region of a source text: 1-based ``line`` and ``col``, and ``length`` characters."""

    line: int
    col: int
    length: int = 1
    #: 0-based offset of the region in the whole text
    offset: int = 0
    #: the text the span points into (shown with a caret in messages)
    source: str | None = field(default=None, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.line}:{self.col}"


def format_path(path: Path) -> str:
    """``("stages", 2, "channels")`` -> ``"stages.2.channels"`` (``"<root>"`` when empty)."""
    return ".".join(str(p) for p in path) if path else "<root>"


@dataclass(frozen=True)
class Issue:
    """One located problem.

    Args:
        path: where in the recipe (``("stages", 2, "channels")``).
        code: stable identifier (``unknown_block``, ``syntax``, ``value``, ``unknown_key``, ...).
        message: what is wrong, in one sentence.
        got: the offending value (``MISSING`` when there is none to show).
        expected: what a valid value looks like.
        suggestions: the closest valid names.
        hint: what to do next.
        span: position in ``source`` (recipe strings).
        source: the text the span refers to.
        origin: a file name (YAML) or ``None``.
    """

    path: Path
    code: str
    message: str
    got: Any = MISSING
    expected: str | None = None
    suggestions: tuple[str, ...] = ()
    hint: str | None = None
    span: Span | None = None
    source: str | None = None
    origin: str | None = None
    line: int | None = field(default=None, compare=False)

    @property
    def location(self) -> str:
        """``stages.2.channels``, with ``line:col`` (and the file) when known."""
        loc = format_path(self.path)
        if self.span is not None:
            loc += f" at {self.span}"
        if self.origin:
            where = self.origin if self.line is None else f"{self.origin}:{self.line}"
            loc += f" in {where}"
        return loc

    def snippet(self) -> str:
        """The source line with a caret under the span ('' when there is no source text)."""
        if self.span is None or self.source is None:
            return ""
        lines = self.source.splitlines() or [""]
        idx = min(max(self.span.line - 1, 0), len(lines) - 1)
        text = lines[idx]
        col = max(self.span.col - 1, 0)
        width = max(1, min(self.span.length, max(1, len(text) - col)))
        return f"    {text}\n    {' ' * col}{'^' * width}"

    def format(self) -> str:
        parts = [f"{self.location}: {self.message}"]
        detail = []
        if self.expected is not None:
            detail.append(f"expected {self.expected}")
        if self.got is not MISSING:
            detail.append(f"got {self.got!r}")
        if detail:
            parts.append(", ".join(detail))
        if self.suggestions:
            parts.append("did you mean " + ", ".join(repr(s) for s in self.suggestions) + "?")
        if self.hint:
            parts.append(self.hint)
        text = "; ".join(parts)
        snip = self.snippet()
        return f"{text}\n{snip}" if snip else text

    def with_prefix(self, prefix: Path) -> Issue:
        return replace(self, path=tuple(prefix) + tuple(self.path))


class RecipeValidationError(RecipeError):
    """A recipe, YAML file or spec has one or more problems; ``issues`` lists each, located.

    The message starts with a count header (``2 problems in recipe 'net':``) and shows every
    problem with its location, the offending value, the expected form and the closest names.
    """

    def __init__(self, issues: Iterable[Issue], *, title: str = "recipe") -> None:
        self.issues: tuple[Issue, ...] = tuple(issues)
        n = len(self.issues)
        header = f"{n} problem{'s' if n != 1 else ''} in {title}:"
        body = "\n".join(f"  {i + 1}. " + issue.format().replace("\n", "\n     ")
                         for i, issue in enumerate(self.issues))
        first = self.issues[0] if self.issues else None
        super().__init__(
            f"{header}\n{body}",
            where=first.location if first is not None and n == 1 else None,
        )

    def _format(self) -> str:  # the body already holds every location; keep it readable
        return self.message


class Collector:
    """Gathers :class:`Issue` objects, then raises them together."""

    def __init__(self, *, spans: Mapping[Path, Span] | None = None, origin: str | None = None,
                 lines: Mapping[Path, int] | None = None) -> None:
        self.issues: list[Issue] = []
        self.spans: dict[Path, Span] = dict(spans or {})
        self.lines: dict[Path, int] = dict(lines or {})
        self.origin = origin

    def __bool__(self) -> bool:
        return bool(self.issues)

    def __len__(self) -> int:
        return len(self.issues)

    def add(self, path: Path, code: str, message: str, *, got: Any = MISSING, expected: str | None = None,
            suggestions: Iterable[str] = (), hint: str | None = None, span: Span | None = None) -> None:
        """Record one problem at ``path``; its span is looked up from ``spans`` when not given."""
        path = tuple(path)
        if span is None:
            span = self._span_for(path)
        self.issues.append(Issue(path, code, message, got=got, expected=expected,
                                 suggestions=tuple(suggestions), hint=hint, span=span,
                                 source=span.source if span is not None else None, origin=self.origin,
                                 line=self._lookup(self.lines, path)))

    def extend(self, issues: Iterable[Issue]) -> None:
        self.issues.extend(issues)

    def _span_for(self, path: Path) -> Span | None:
        return self._lookup(self.spans, path)

    @staticmethod
    def _lookup(table: Mapping[Path, Any], path: Path) -> Any:
        for n in range(len(path), -1, -1):
            hit = table.get(path[:n])
            if hit is not None:
                return hit
        return None

    def raise_if_any(self, title: str = "recipe") -> None:
        if self.issues:
            raise RecipeValidationError(self.issues, title=title)
