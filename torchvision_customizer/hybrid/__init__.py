"""Customize any torchvision (or timm) classification model by path, function-preserving and key-stable.

>>> from torchvision_customizer.hybrid import HybridBuilder
>>> model = HybridBuilder().from_torchvision("resnet50", weights="IMAGENET1K_V2",
...                                          patches={"layer4": {"wrap": "se"}}, num_classes=100)  # doctest: +SKIP

* :mod:`.catalog`: every torchvision classification model split into stem / stages / head, with
  per-stage channels, strides and layouts (a checked-in table);
* :mod:`.patch`: targets (paths, globs, ``type:``, ``stage:``), ops (wrap, inject_before, replace),
  validation before any change, identity-at-init mixing, a dry-run plan;
* :mod:`.builder`: :class:`HybridBuilder` (``from_torchvision``, ``from_checkpoint``, ``from_timm``,
  ``plan``, ``list_backbones``);
* :mod:`.model`: :class:`HybridModel`, the mixin every built model gets;
* :mod:`.compat`: the older release's helpers (``extract_tiers``, ``get_backbone_info``,
  ``create_hybrid``, ``list_backbones``).

Importing this package registers the ``"hybrid"`` rebuilder of ``weights.load_model``.
"""

from __future__ import annotations

from ..weights import match_state_dict
from .builder import HybridBuilder, build_from_recipe
from .catalog import CATALOG, BackboneSpec, get_backbone_spec
from .compat import BackboneInfo, create_hybrid, extract_tiers, get_backbone_info, list_backbones
from .model import HybridModel, Modification
from .patch import PatchedBlock, PatchPlan, PlannedChange

#: the older release's name for the list of supported backbones
SUPPORTED_BACKBONES = tuple(CATALOG)

__all__ = [
    "CATALOG",
    "SUPPORTED_BACKBONES",
    "BackboneInfo",
    "BackboneSpec",
    "HybridBuilder",
    "HybridModel",
    "Modification",
    "PatchPlan",
    "PatchedBlock",
    "PlannedChange",
    "build_from_recipe",
    "create_hybrid",
    "extract_tiers",
    "get_backbone_info",
    "get_backbone_spec",
    "list_backbones",
    "match_state_dict",
]
