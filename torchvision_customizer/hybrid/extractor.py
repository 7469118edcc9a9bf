"""The older release's ``torchvision_customizer.hybrid.extractor`` module path.

``extract_tiers``, ``get_backbone_info`` and ``BackboneInfo`` are the current helpers of
:mod:`.compat` (driven by the backbone catalog; current API, no warning). ``BACKBONE_CONFIGS`` is
kept only for compatibility: reading it warns once per access and names the new spelling,
:data:`~torchvision_customizer.hybrid.CATALOG` / :func:`~torchvision_customizer.hybrid.get_backbone_spec`.
It now covers every catalog backbone (the older table had 47 names, some of which failed to build).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..layers.compat import warn_deprecated
from .catalog import CATALOG
from .compat import BackboneInfo, extract_tiers, get_backbone_info

__all__ = ["BACKBONE_CONFIGS", "BackboneInfo", "extract_tiers", "get_backbone_info"]  # noqa: F822 - lazy, warns

_CACHE: dict[str, Mapping[str, Any]] = {}


def _backbone_configs() -> Mapping[str, Any]:
    """``{name: {"stem", "stages", "head", "stage_channels", "stage_strides"}}`` from the catalog (read-only)."""
    if "table" not in _CACHE:
        _CACHE["table"] = MappingProxyType({
            name: MappingProxyType({
                "stem": list(spec.stem),
                "stages": [list(s) for s in spec.stages],
                "head": list(dict.fromkeys([*spec.head_parts, spec.classifier])),
                "stage_channels": list(spec.channels),
                "stage_strides": list(spec.strides),
            })
            for name, spec in CATALOG.items()
        })
    return _CACHE["table"]


def __getattr__(name: str) -> Any:
    if name == "BACKBONE_CONFIGS":
        warn_deprecated("BACKBONE_CONFIGS", "torchvision_customizer.hybrid.CATALOG (or get_backbone_spec(name)), "
                        "whose rows give stem, stages, channels, strides and classifier", stacklevel=3)
        return _backbone_configs()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
