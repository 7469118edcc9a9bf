"""The typed model spec: one intermediate representation behind recipes, YAML and ``>>``.

See :mod:`torchvision_customizer.spec.model` for the semantics shared by every front end.
"""

from __future__ import annotations

from ._frozen import FrozenDict
from .convert import head_from_value, model_from_dict, stage_from_value, stem_from_value
from .issues import Collector, Issue, RecipeValidationError, Span
from .model import HEAD_TYPES, STEM_TYPES, BlockSpec, HeadSpec, ModelSpec, StageSpec, StemSpec

__all__ = [
    "HEAD_TYPES",
    "STEM_TYPES",
    "BlockSpec",
    "Collector",
    "FrozenDict",
    "HeadSpec",
    "Issue",
    "ModelSpec",
    "RecipeValidationError",
    "Span",
    "StageSpec",
    "StemSpec",
    "head_from_value",
    "model_from_dict",
    "stage_from_value",
    "stem_from_value",
]
