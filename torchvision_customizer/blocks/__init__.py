"""The block library: one concept per file, every block registered in ``registry``.

Importing this package imports every block module in it (each registers its blocks) and
re-exports the names in each module's ``__all__``. Look blocks up by name through
``torchvision_customizer.registry``.
"""

from __future__ import annotations

import importlib
import pkgutil

from ._base import LEGACY_KWARGS, Block, register_block

__all__ = ["LEGACY_KWARGS", "Block", "register_block"]


def _import_all() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name in getattr(module, "__all__", ()):
            globals()[name] = getattr(module, name)
            __all__.append(name)


_import_all()
