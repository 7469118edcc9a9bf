"""The registries: one for blocks, small ones for activations, norms and global pools.

``torchvision_customizer.registry`` is the one public block registry. It behaves like a module
*and* like the block registry itself::

    >>> from torchvision_customizer import registry
    >>> block = registry.get("cbam_block")(channels=256)
    >>> "se" in registry, len(registry) >= 40
    (True, True)
    >>> registry.list(category="activation")[:3]
    ['elu', 'gelu', 'hard_sigmoid']

Blocks live in :data:`BLOCKS`; activations, norms and global pools live in their own registries
(:data:`ACTIVATIONS`, :data:`NORMS`, :data:`POOLS`), reachable here by category (``activation``,
``norm``, ``global_pool``) but not counted among the blocks. Third-party packages add blocks
through the entry-point group ``torchvision_customizer.blocks``.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from typing import Any

from ..errors import UnknownComponentError, closest
from ._registry import Registry, RegistryEntry, normalize_name

__all__ = [
    "ACTIVATIONS",
    "BLOCKS",
    "NORMS",
    "POOLS",
    "Registry",
    "RegistryEntry",
    "categories",
    "create",
    "get",
    "info",
    "list",
    "normalize_name",
    "register",
    "registry_for",
]

ENTRY_POINT_GROUP = "torchvision_customizer.blocks"

BLOCKS = Registry("blocks", kind="block", builtin_modules=("torchvision_customizer.blocks",),
                  entry_point_group=ENTRY_POINT_GROUP, default_category="custom")
ACTIVATIONS = Registry("activations", kind="activation",
                       builtin_modules=("torchvision_customizer.layers",), default_category="activation")
NORMS = Registry("norms", kind="norm", builtin_modules=("torchvision_customizer.layers",),
                 default_category="norm")
POOLS = Registry("global_pools", kind="global pool", builtin_modules=("torchvision_customizer.layers",),
                 default_category="global_pool")

_LAYER_REGISTRIES = {"activation": ACTIVATIONS, "norm": NORMS, "global_pool": POOLS}

_list = list  # the builtin, shadowed below by the public ``list`` function


def registry_for(category: str | None) -> Registry:
    """The registry that holds ``category`` (``activation``/``norm``/``global_pool`` or a block one)."""
    return _LAYER_REGISTRIES.get(category or "", BLOCKS)


def _find(name: str) -> Registry:
    if name in BLOCKS:
        return BLOCKS
    for reg in _LAYER_REGISTRIES.values():
        if name in reg:
            return reg
    everything = _list(BLOCKS._lookup)
    for reg in _LAYER_REGISTRIES.values():
        everything += _list(reg._lookup)
    raise UnknownComponentError(
        f"unknown component {name!r}",
        where="torchvision_customizer.registry",
        expected=f"a registered block ({len(BLOCKS)}) or activation/norm/global_pool name",
        got=name,
        suggestions=closest(normalize_name(name), everything),
        hint=("plugins that failed to load: " + ", ".join(sorted(BLOCKS.plugin_errors)))
        if BLOCKS.plugin_errors else "run `tvc list-blocks` to see every name",
    ) from None


def get(name: str, **kwargs: Any) -> Any:
    """The class registered as ``name`` (a block, or an activation/norm/pool); an instance if kwargs."""
    if not isinstance(name, str):
        raise UnknownComponentError("component names must be strings", expected="str", got=name,
                                    where="torchvision_customizer.registry")
    return _find(name).get(name, **kwargs)


def create(name: str, *args: Any, **kwargs: Any) -> Any:
    """Instantiate the component ``name`` with ``args``/``kwargs``."""
    return _find(name).create(name, *args, **kwargs)


def list(category: str | None = None, pattern: str | None = None) -> _list[str]:
    """Sorted canonical block names; ``category`` may also be ``activation``, ``norm``, ``global_pool``."""
    if category in _LAYER_REGISTRIES:
        return _LAYER_REGISTRIES[category].list(pattern)
    if category is not None and category not in BLOCKS.categories():
        cats = categories()
        raise UnknownComponentError(
            f"unknown category {category!r}", where="torchvision_customizer.registry",
            expected="one of " + ", ".join(cats), got=category, suggestions=closest(category, cats))
    return BLOCKS.list(pattern, category=category)


def categories() -> _list[str]:
    """Block categories followed by ``activation``, ``norm`` and ``global_pool``."""
    return BLOCKS.categories() + _list(_LAYER_REGISTRIES)


def info(name: str) -> dict[str, Any]:
    """Canonical name, category, aliases, summary, constructor parameters and output rule."""
    return _find(name).info(name)


def register(name: str | None = None, obj: Any = None, *, category: str | None = None,
             aliases: Any = (), force: bool = False) -> Any:
    """Register a block (or, with ``category='activation'|'norm'|'global_pool'``, a layer).

    Works as a decorator and as a plain call::

        @registry.register("my_gate", category="attention", aliases=["mygate"])
        class MyGate(nn.Module): ...
    """
    reg = registry_for(category)
    return reg.register(name, obj, category=category, aliases=aliases, force=force)


class _RegistryModule(types.ModuleType):
    """Lets ``torchvision_customizer.registry`` answer ``in``, ``len``, iteration and ``repr``."""

    def __contains__(self, name: object) -> bool:
        return name in BLOCKS

    def __len__(self) -> int:
        return len(BLOCKS)

    def __iter__(self) -> Iterator[str]:
        return iter(BLOCKS)

    def __repr__(self) -> str:
        return repr(BLOCKS)


sys.modules[__name__].__class__ = _RegistryModule
