"""Recipes: architectures as strings, dicts or YAML files, all producing one typed spec.

* :class:`Recipe` and :func:`build_recipe`: ``Recipe(stem="conv(64)", stages=["residual(64) x 2"],
  head="linear(10)")``; the grammar is documented in :mod:`.parser`.
* YAML (:mod:`.yaml_io`): :func:`load_yaml_recipe`, :func:`save_yaml_recipe`, macros, ``extends``,
  templates (:func:`list_templates`, :func:`get_template`, :func:`create_recipe_from_template`).
* Older-release names: :func:`parse_recipe`, :func:`parse_definition`, :func:`build_from_config`,
  :func:`validate_recipe_config`, :func:`expand_macros`, :func:`merge_recipes`,
  :func:`load_yaml_config`, :func:`create_example_recipe`, ``RECIPE_SCHEMA``, ``ValidationError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..spec.issues import RecipeValidationError
from ..spec.model import ModelSpec, StageSpec
from .format import format_head, format_stage, format_stem
from .parser import parse_head, parse_stage, parse_stem
from .recipe import Recipe, build_recipe
from .training import FIT_KEYS, training_keys
from .yaml_io import (
    DOCUMENT_KEYS,
    RECIPE_SCHEMA,
    build_from_config,
    create_example_recipe,
    create_recipe_from_template,
    dump_yaml,
    expand_macros,
    get_template,
    list_templates,
    load_yaml_config,
    load_yaml_recipe,
    merge_recipes,
    save_yaml_recipe,
    validate_recipe_config,
)

#: older-release name of the validation error (one located error listing every problem)
ValidationError = RecipeValidationError

__all__ = [
    "DOCUMENT_KEYS",
    "FIT_KEYS",
    "RECIPE_SCHEMA",
    "Recipe",
    "RecipeValidationError",
    "ValidationError",
    "build_from_config",
    "build_recipe",
    "create_example_recipe",
    "create_recipe_from_template",
    "dump_yaml",
    "expand_macros",
    "format_head",
    "format_stage",
    "format_stem",
    "get_template",
    "list_templates",
    "load_yaml_config",
    "load_yaml_recipe",
    "merge_recipes",
    "parse_definition",
    "parse_head",
    "parse_recipe",
    "parse_stage",
    "parse_stem",
    "save_yaml_recipe",
    "training_keys",
    "validate_recipe_config",
]


def parse_recipe(recipe: Any) -> ModelSpec:
    """Parse and validate a :class:`Recipe`, a recipe dict or YAML text/path into a :class:`ModelSpec`."""
    if isinstance(recipe, ModelSpec):
        return recipe
    if isinstance(recipe, Recipe):
        return recipe.to_spec()
    if isinstance(recipe, Mapping):
        return Recipe.from_dict(recipe).to_spec() if "extends" not in recipe and "macros" not in recipe \
            else Recipe.from_yaml(recipe).to_spec()
    return Recipe.from_yaml(recipe).to_spec()


def parse_definition(text: str) -> StageSpec:
    """Older-release name: parse one ``name(args) x N | modifiers`` stage definition."""
    return parse_stage(text)


def _rebuild_recipe(arch: dict[str, Any]) -> Any:
    """``weights.load_model`` rebuilder for kind ``"recipe"``: the stored recipe, built by the one builder."""
    recipe = arch.get("recipe")
    if arch.get("format") == "yaml":
        return build_recipe(Recipe.from_yaml(recipe))
    return build_recipe(Recipe.from_dict(recipe))  # type: ignore[arg-type]


def _register_rebuilder() -> None:
    """Let ``load_model`` rebuild recipe models (when the weights package is present)."""
    try:
        from ..weights.checkpoint import REBUILDERS, register_rebuilder
    except ImportError:  # a build of the package without weights/
        return
    if "recipe" not in REBUILDERS:
        register_rebuilder("recipe", _rebuild_recipe, meta_ok=True)


_register_rebuilder()
