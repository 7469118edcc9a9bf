"""The ``Registry`` class: strict, case-insensitive name -> component lookup.

Rules (see STYLE P1):

* names and aliases are matched case-insensitively, with ``-`` and ``_`` equivalent;
* registering a taken name or alias raises :class:`RegistryError` unless ``force=True``;
* an unknown name raises :class:`UnknownComponentError` listing up to three closest names;
* built-ins and entry-point plugins are loaded lazily, on first lookup or listing; a broken
  plugin is recorded by name in :attr:`Registry.plugin_errors` and never breaks the built-ins.

This module imports nothing else of the package except the errors.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from ..errors import RegistryError, UnknownComponentError, closest

__all__ = ["Registry", "RegistryEntry", "normalize_name"]


def normalize_name(name: str) -> str:
    """Canonical lookup form: lower case, ``-`` -> ``_``, surrounding spaces stripped."""
    return name.strip().lower().replace("-", "_")


@dataclass(frozen=True)
class RegistryEntry:
    """One registered component."""

    name: str
    obj: Any
    category: str
    aliases: tuple[str, ...] = ()
    summary: str = ""
    source: str = "builtin"
    extra: dict[str, Any] = field(default_factory=dict)


def _summary_of(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0].strip() if doc.strip() else ""


class Registry:
    """A strict registry of named components.

    Args:
        name: registry name used in messages (``"blocks"``, ``"activations"``, ...).
        kind: singular noun for messages (``"block"``).
        builtin_modules: modules imported lazily on first use; importing them registers the
            built-ins.
        entry_point_group: entry-point group scanned lazily for third-party components.
        default_category: category for components registered without one.

    Example:
        >>> reg = Registry("widgets", kind="widget")
        >>> @reg.register("knob", category="controls", aliases=["dial"])
        ... class Knob:
        ...     '''A knob.'''
        >>> reg.get("DIAL") is Knob
        True
    """

    def __init__(
        self,
        name: str,
        *,
        kind: str = "component",
        builtin_modules: Iterable[str] = (),
        entry_point_group: str | None = None,
        default_category: str = "other",
    ) -> None:
        self.name = name
        self.kind = kind
        self.default_category = default_category
        self._builtin_modules = tuple(builtin_modules)
        self._entry_point_group = entry_point_group
        self._entries: dict[str, RegistryEntry] = {}  # canonical normalized name -> entry
        self._lookup: dict[str, str] = {}  # normalized name or alias -> canonical normalized name
        self._loaded = not self._builtin_modules and entry_point_group is None
        self._loading = False
        self.plugin_errors: dict[str, str] = {}

    # ------------------------------------------------------------------ loading
    def _ensure_loaded(self) -> None:
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            for module in self._builtin_modules:
                importlib.import_module(module)
            if self._entry_point_group:
                self._load_plugins()
            self._loaded = True
        finally:
            self._loading = False

    def _load_plugins(self) -> None:
        for ep in metadata.entry_points(group=self._entry_point_group):
            try:
                obj = ep.load()
                if inspect.isclass(obj):
                    if normalize_name(ep.name) not in self._lookup:
                        self.register(ep.name, category="plugin", source=f"plugin:{ep.value}")(obj)
                elif callable(obj):
                    obj(self)
                # a module: importing it (ep.load) ran its registration decorators
            except (ImportError, AttributeError, TypeError, ValueError, RegistryError) as exc:
                # A broken plugin must not break the built-ins: record it by name, tell the user.
                self.plugin_errors[ep.name] = f"{type(exc).__name__}: {exc}"
                warnings.warn(
                    f"torchvision-customizer plugin {ep.name!r} ({ep.value}) failed to load and was "
                    f"skipped: {type(exc).__name__}: {exc}",
                    RuntimeWarning,
                    stacklevel=3,
                )

    # ------------------------------------------------------------ registration
    def register(
        self,
        name: str | None = None,
        obj: Any = None,
        *,
        category: str | None = None,
        aliases: Iterable[str] = (),
        force: bool = False,
        source: str = "builtin",
        **extra: Any,
    ) -> Any:
        """Register ``obj`` under ``name``; usable as a decorator or a plain call.

        ``@reg.register("se", category="attention", aliases=["squeeze_excitation"])`` or
        ``reg.register("se", SEBlock, category="attention")``. A taken name or alias raises
        :class:`RegistryError` unless ``force=True`` (which replaces the earlier entry).
        """
        if name is not None and not isinstance(name, str):
            if obj is None and callable(name):  # @reg.register without a name
                return self.register(None, name, category=category, aliases=aliases, force=force,
                                     source=source, **extra)
            raise RegistryError("registry names must be strings", expected="str", got=name,
                                where=f"registry {self.name!r}")
        if isinstance(aliases, str):
            aliases = (aliases,)
        aliases = tuple(aliases)

        def _do(target: Any) -> Any:
            self._ensure_loaded()  # a user name must be checked against the built-ins, even before first use
            reg_name = name if name is not None else getattr(target, "__name__", None)
            if not reg_name or not isinstance(reg_name, str):
                raise RegistryError("cannot infer a registry name", expected="a name",
                                    got=target, where=f"registry {self.name!r}")
            self._add(reg_name, target, category or self.default_category, aliases, force, source, extra)
            return target

        return _do if obj is None else _do(obj)

    def _add(self, name: str, obj: Any, category: str, aliases: tuple[str, ...], force: bool,
             source: str, extra: dict[str, Any]) -> None:
        key = normalize_name(name)
        if not key:
            raise RegistryError("registry names must be non-empty", expected="a non-empty name",
                                got=name, where=f"registry {self.name!r}")
        all_keys = [key] + [normalize_name(a) for a in aliases]
        if len(set(all_keys)) != len(all_keys):
            aliases = tuple(dict.fromkeys(a for a in aliases if normalize_name(a) != key))
            all_keys = list(dict.fromkeys(all_keys))
        for k in all_keys:
            owner = self._lookup.get(k)
            if owner is not None and owner != key and not force:
                raise RegistryError(
                    f"{self.kind} name {k!r} is already registered",
                    where=f"registry {self.name!r}",
                    expected="an unused name or alias",
                    got=name,
                    hint=f"it belongs to {self._entries[owner].name!r}; pass force=True to replace it",
                )
        if key in self._entries and not force:
            raise RegistryError(
                f"{self.kind} {name!r} is already registered",
                where=f"registry {self.name!r}",
                expected="an unused name",
                got=name,
                hint="pass force=True to replace it",
            )
        if key in self._entries:
            self._remove(key)
        for k in all_keys:
            owner = self._lookup.get(k)
            if owner is not None and owner != key:  # force=True: steal the alias
                old = self._entries[owner]
                if k == owner:
                    self._remove(owner)
                else:
                    self._entries[owner] = RegistryEntry(
                        old.name, old.obj, old.category,
                        tuple(a for a in old.aliases if normalize_name(a) != k),
                        old.summary, old.source, old.extra)
        entry = RegistryEntry(name, obj, category, aliases, _summary_of(obj), source, dict(extra))
        self._entries[key] = entry
        for k in all_keys:
            self._lookup[k] = key

    def _remove(self, key: str) -> None:
        self._entries.pop(key, None)
        for k in [k for k, v in self._lookup.items() if v == key]:
            del self._lookup[k]

    def unregister(self, name: str) -> None:
        """Remove a component and its aliases (mainly for tests and plugins)."""
        self._remove(self._canonical_key(name))

    # ------------------------------------------------------------------ lookup
    def _canonical_key(self, name: str) -> str:
        self._ensure_loaded()
        if not isinstance(name, str):
            raise UnknownComponentError(
                f"{self.kind} names must be strings", where=f"registry {self.name!r}",
                expected="a registered name", got=name)
        key = self._lookup.get(normalize_name(name))
        if key is None:
            names = list(self._lookup)
            shown = [self._entries[self._lookup[n]].name if n == self._lookup[n] else n
                     for n in closest(normalize_name(name), names)]
            hint = None
            if self.plugin_errors:
                hint = "plugins that failed to load: " + ", ".join(sorted(self.plugin_errors))
            raise UnknownComponentError(
                f"unknown {self.kind} {name!r}",
                where=f"registry {self.name!r}",
                expected=f"one of {len(self._entries)} registered names (see list())",
                suggestions=list(dict.fromkeys(shown)),
                hint=hint,
            ) from None
        return key

    def entry(self, name: str) -> RegistryEntry:
        """The :class:`RegistryEntry` for a name or alias."""
        return self._entries[self._canonical_key(name)]

    def get(self, name: str, **kwargs: Any) -> Any:
        """The registered class for ``name``; with keyword arguments, an instance of it."""
        obj = self.entry(name).obj
        return obj(**kwargs) if kwargs else obj

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Instantiate the component registered as ``name`` with the given arguments."""
        return self.entry(name).obj(*args, **kwargs)

    def canonical(self, name: str) -> str:
        """The canonical spelling of a name or alias."""
        return self.entry(name).name

    def list(self, pattern: str | None = None, *, category: str | None = None) -> list[str]:
        """Sorted canonical names, optionally filtered by fnmatch ``pattern`` and ``category``."""
        self._ensure_loaded()
        if category is not None:
            cats = self.categories()
            if category not in cats:
                raise UnknownComponentError(
                    f"unknown {self.kind} category {category!r}", where=f"registry {self.name!r}",
                    expected="one of " + ", ".join(cats), suggestions=closest(category, cats))
        names = [e.name for e in self._entries.values() if category is None or e.category == category]
        if pattern is not None:
            names = [n for n in names if fnmatch.fnmatch(n.lower(), pattern.lower())]
        return sorted(names)

    def categories(self) -> list[str]:
        """Sorted list of categories that hold at least one component."""
        self._ensure_loaded()
        return sorted({e.category for e in self._entries.values()})

    def aliases(self, name: str) -> tuple[str, ...]:
        return self.entry(name).aliases

    def info(self, name: str) -> dict[str, Any]:
        """Describe a component: canonical name, category, aliases, summary, parameters, output rule."""
        e = self.entry(name)
        params: dict[str, Any] = {}
        target = e.obj.__init__ if inspect.isclass(e.obj) else e.obj
        try:
            sig = inspect.signature(target)
        except (TypeError, ValueError):
            sig = None
        if sig is not None:
            for p in sig.parameters.values():
                if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    continue
                params[p.name] = None if p.default is inspect.Parameter.empty else p.default
        required = [k for k, p in (sig.parameters.items() if sig else [])
                    if k != "self" and p.default is inspect.Parameter.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        return {
            "name": e.name,
            "category": e.category,
            "aliases": list(e.aliases),
            "summary": e.summary,
            "parameters": params,
            "required": required,
            "output": getattr(e.obj, "OUTPUT_RULE", e.extra.get("output", "")),
            "source": e.source,
        }

    def entries(self, category: str | None = None) -> list[RegistryEntry]:
        return [self.entry(n) for n in self.list(category=category)]

    # ---------------------------------------------------------------- dunder
    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return isinstance(name, str) and normalize_name(name) in self._lookup

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __repr__(self) -> str:
        self._ensure_loaded()
        rows = [f"Registry({self.name!r}, {len(self._entries)} {self.kind}s)"]
        width = max((len(e.name) for e in self._entries.values()), default=4)
        for e in sorted(self._entries.values(), key=lambda e: (e.category, e.name)):
            alias = f" [{', '.join(e.aliases)}]" if e.aliases else ""
            rows.append(f"  {e.name:<{width}}  {e.category:<14}{alias}")
        return "\n".join(rows)

