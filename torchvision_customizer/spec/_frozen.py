"""``FrozenDict``: an immutable, hashable mapping for the keyword arguments held by specs.

Specs are frozen dataclasses (STYLE P5); a plain ``dict`` field would stay mutable and make the
spec unhashable. Values are frozen recursively: lists and tuples become tuples, dicts become
``FrozenDict``. :meth:`FrozenDict.thaw` gives plain ``dict``/``list`` values back (for YAML and for
constructor calls).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["FrozenDict", "freeze", "thaw"]


def freeze(value: Any) -> Any:
    """Recursively turn lists/tuples into tuples and mappings into :class:`FrozenDict`."""
    if isinstance(value, Mapping):
        return value if isinstance(value, FrozenDict) else FrozenDict(value)
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of :func:`freeze`: tuples become lists and ``FrozenDict`` a plain ``dict``."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


class FrozenDict(Mapping[str, Any]):
    """An immutable ``str -> value`` mapping that keeps insertion order and is hashable."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        merged = dict(data or {}, **kwargs)
        object.__setattr__(self, "_data", {k: freeze(v) for k, v in merged.items()})
        object.__setattr__(self, "_hash", None)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            items = sorted(((str(k), _hashable(v)) for k, v in self._data.items()), key=lambda kv: kv[0])
            object.__setattr__(self, "_hash", hash(tuple(items)))
        return self._hash  # type: ignore[return-value]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._data) == dict(other)
        return NotImplemented

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FrozenDict is immutable")

    def __repr__(self) -> str:
        return f"FrozenDict({self._data!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (dict(self._data),))

    def thaw(self) -> dict[str, Any]:
        """A plain, mutable ``dict`` copy (nested tuples become lists)."""
        return thaw(self)


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value
