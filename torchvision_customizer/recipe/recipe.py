"""``Recipe``: an architecture as three kinds of strings (stem, stages, head), and ``build_recipe``.

Example:
    >>> model = build_recipe(Recipe(stem="conv(64)", stages=["residual(64) x 2"], head="linear(10)"))
    >>> model(torch.randn(2, 3, 224, 224)).shape
    torch.Size([2, 10])

A ``Recipe`` is validated as a whole: :meth:`Recipe.to_spec` parses every string, checks every
name and argument (against the blocks' signatures), builds the model on the ``meta`` device and
runs one meta forward, then raises a single :class:`~torchvision_customizer.errors.RecipeError`
listing every problem with its location (``stages.1 at 1:14`` and a caret under the token).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import RecipeError
from ..spec.convert import model_from_dict
from ..spec.issues import Collector, Issue, RecipeValidationError
from ..spec.model import ModelSpec
from .format import format_head, format_stem, part_to_value, stage_to_value
from .training import validate_training

__all__ = ["Recipe", "build_recipe", "recipe_issues"]

RECIPE_FIELDS = ("name", "input_shape", "stem", "stages", "head", "description", "version", "training",
                 "drop_path_rate")


@dataclass
class Recipe:
    """A model as recipe strings (or dicts); see :mod:`torchvision_customizer.recipe.parser`.

    Args:
        stem: ``"conv(64)"`` (7x7/2 conv-BN-ReLU + 3x3/2 max-pool, ResNet's stem), ``"simple(32)"``,
            ``"patch(96, p=4)"``, ``None``/``"none"``; or a dict / :class:`StemSpec`.
        stages: stage strings such as ``"residual+se(96) x 4 | downsample"``, dicts, or specs.
        head: ``"linear(10)"``, ``"mlp(10, hidden=[512, 256], dropout=0.3)"``, ``None`` (headless).
        name: model name.
        input_shape: ``(C, H, W)`` (C feeds the stem).
        description, version: metadata kept in YAML.
        training: ``Trainer.fit`` keyword arguments plus ``data`` (validated).
        drop_path_rate: model-wide linear stochastic-depth schedule.
    """

    stem: Any = "conv(64)"
    stages: list[Any] = field(default_factory=list)
    head: Any = "linear(1000)"
    name: str = "CustomModel"
    input_shape: tuple[int, int, int] = (3, 224, 224)
    description: str = ""
    version: str | None = None
    training: dict[str, Any] | None = None
    drop_path_rate: float = 0.0

    # ------------------------------------------------------------------ validation
    def _model_data(self) -> dict[str, Any]:
        shape = self.input_shape
        return {"name": self.name, "input_shape": list(shape) if isinstance(shape, tuple) else shape,
                "stem": self.stem, "stages": self.stages, "head": self.head,
                "drop_path_rate": self.drop_path_rate}

    def _collect(self, c: Collector, *, deep: bool = True) -> ModelSpec | None:
        stem = self.stem
        data = self._model_data()
        if isinstance(stem, str) and stem.strip().lower() in ("none", "null", "identity", ""):
            data["stem"] = None
        head = self.head
        if isinstance(head, str) and head.strip().lower() in ("none", "null", "identity", ""):
            data["head"] = None
        if not isinstance(self.stages, (list, tuple)):
            c.add(("stages",), "type", "stages must be a list", got=self.stages,
                  expected="a list of stage strings, e.g. ['residual(64) x 2']")
            data["stages"] = []
        spec = model_from_dict(data, collector=c)
        validate_training(self.training, c)
        if spec is not None and not c:
            from ..build import check_spec

            check_spec(spec, c, build=deep)
        return spec if not c else None

    def validate(self, *, deep: bool = True) -> list[Issue]:
        """Every problem of this recipe (an empty list when valid); nothing is raised.

        ``deep`` also builds the model on the meta device, so block argument values are checked.
        """
        c = Collector()
        self._collect(c, deep=deep)
        return list(c.issues)

    def to_spec(self, *, deep: bool = True) -> ModelSpec:
        """The validated :class:`ModelSpec`; raises one error listing every located problem.

        ``deep`` (default) builds the model on the meta device to check every block's arguments.
        """
        c = Collector()
        spec = self._collect(c, deep=deep)
        c.raise_if_any(f"recipe {self.name!r}")
        return spec  # type: ignore[return-value]

    def build(self, num_classes: int | None = None, *, device: Any = None, dtype: Any = None) -> Any:
        """Build the model (``num_classes`` overrides the head's)."""
        return build_recipe(self, num_classes=num_classes, device=device, dtype=dtype)

    # ------------------------------------------------------------------ conversion
    @classmethod
    def from_spec(cls, spec: ModelSpec, **meta: Any) -> Recipe:
        """Canonical recipe strings for ``spec`` (branch stages and unspellable values stay dicts)."""
        return cls(stem=_checked(spec.stem, format_stem, "stem"),
                   stages=[stage_to_value(s) for s in spec.stages],
                   head=_checked(spec.head, format_head, "head"),
                   name=spec.name, input_shape=tuple(spec.input_shape), drop_path_rate=spec.drop_path_rate,
                   **meta)

    def to_dict(self) -> dict[str, Any]:
        """YAML-ready data (``stages`` as given: strings or dicts)."""
        d: dict[str, Any] = {"name": self.name}
        if self.version is not None:
            d["version"] = self.version
        if self.description:
            d["description"] = self.description
        d["input_shape"] = list(self.input_shape)
        d["stem"] = _plain(self.stem)
        d["stages"] = [_plain(s) for s in self.stages]
        d["head"] = _plain(self.head)
        if self.drop_path_rate:
            d["drop_path_rate"] = self.drop_path_rate
        if self.training:
            d["training"] = dict(self.training)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        """From :meth:`to_dict` data (unknown keys are errors with suggestions)."""
        from ..errors import closest

        if not isinstance(data, Mapping):
            raise RecipeError("a recipe must be a mapping", got=data, expected="a dict", where="Recipe.from_dict")
        c = Collector()
        for key in data:
            if key not in RECIPE_FIELDS:
                c.add((key,), "unknown_key", f"unknown recipe key {key!r}", got=key,
                      expected="one of " + ", ".join(RECIPE_FIELDS), suggestions=closest(str(key), RECIPE_FIELDS))
        c.raise_if_any("recipe")
        kw = dict(data)
        if "input_shape" in kw and isinstance(kw["input_shape"], list):
            kw["input_shape"] = tuple(kw["input_shape"])
        return cls(**kw)

    def to_yaml(self, path: Any = None) -> str:
        """YAML text of :meth:`to_dict`; also written to ``path`` when given."""
        from .yaml_io import dump_yaml

        text = dump_yaml(self.to_dict())
        if path is not None:
            from .yaml_io import _atomic_write

            _atomic_write(path, text)
        return text

    @classmethod
    def from_yaml(cls, source: Any) -> Recipe:
        """From a YAML file path or YAML text (macros and ``extends`` resolved)."""
        from .yaml_io import recipe_from_yaml

        return recipe_from_yaml(source)

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)


def _checked(spec: Any, fmt: Any, root: str) -> Any:
    """The string form of a stem/head spec if it parses back equal; else its dict form."""
    if spec is None:
        return None
    value = part_to_value(spec, fmt)
    if isinstance(value, str):
        from .parser import parse_head_into, parse_stem_into

        c = Collector()
        back = (parse_stem_into if root == "stem" else parse_head_into)(value, c, (root,))
        if c or back != spec:
            return spec.to_dict()
    return value


def _plain(value: Any) -> Any:
    from ..spec.model import HeadSpec, StageSpec, StemSpec
    from .format import stage_to_value

    if isinstance(value, StageSpec):
        return stage_to_value(value)
    if isinstance(value, StemSpec):
        return _checked(value, format_stem, "stem")
    if isinstance(value, HeadSpec):
        return _checked(value, format_head, "head")
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def recipe_issues(recipe: Recipe) -> list[Issue]:
    """Every located problem of ``recipe`` (empty when it builds)."""
    return recipe.validate()


def build_recipe(recipe: Any, *, num_classes: int | None = None, device: Any = None, dtype: Any = None) -> Any:
    """Build a model from a :class:`Recipe`, a recipe dict or a :class:`ModelSpec`.

    Returns a :class:`~torchvision_customizer.compose.ComposedModel` (``stem``, ``stages``,
    ``head``; ``explain()``, ``summary()``, ``to_recipe()`` ...).
    """
    from ..build import build_model

    if isinstance(recipe, ModelSpec):
        spec = recipe
    elif isinstance(recipe, Recipe):  # the real build below reports block errors, located
        spec = recipe.to_spec(deep=False)
    elif isinstance(recipe, Mapping):
        spec = Recipe.from_dict(recipe).to_spec(deep=False)
    else:
        raise RecipeError("build_recipe needs a Recipe", expected="a Recipe, a recipe dict or a ModelSpec",
                          got=type(recipe).__name__, where="build_recipe")
    if num_classes is not None:
        if spec.head is None:
            raise RecipeError("num_classes was given but the recipe has no head", got=num_classes,
                              where="build_recipe", hint="add a head, e.g. head='linear(10)'")
        spec = spec.replace(head=dataclasses.replace(spec.head, num_classes=num_classes))
    try:
        return build_model(spec, device=device, dtype=dtype)
    except RecipeValidationError:
        if isinstance(recipe, Recipe):
            recipe.to_spec(deep=True)  # the same problems, with positions in the recipe strings
        raise
