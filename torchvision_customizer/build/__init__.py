"""The one builder: specs -> modules (used by recipes, YAML, templates and ``>>``)."""

from __future__ import annotations

from .builder import build_model, check_spec
from .layers import block_module, head_layers, stage_layers, stem_layers

__all__ = ["block_module", "build_model", "check_spec", "head_layers", "stage_layers", "stem_layers"]
