"""``Recipe`` and ``build_recipe``: strings -> one validated spec -> one builder."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from torchvision_customizer.compose import ComposedModel, Head, Stage, Stem
from torchvision_customizer.errors import RecipeError
from torchvision_customizer.recipe import Recipe, build_from_config, build_recipe, parse_recipe
from torchvision_customizer.spec import ModelSpec


def test_seed_recipe_example_verbatim() -> None:
    model = build_recipe(Recipe(
        stem="conv(64)",
        stages=["residual(64) x 2"],
        head="linear(10)"
    ))
    assert isinstance(model, ComposedModel)
    assert model(torch.randn(2, 3, 224, 224)).shape == (2, 10)


def test_recipe_and_composer_build_the_same_model() -> None:
    a = build_recipe(Recipe(stem="conv(64)", stages=["residual(128) x 2"], head="linear(10)"))
    b = Stem(64) >> Stage(128, blocks=2) >> Head(10)
    assert [(k, v.shape) for k, v in a.state_dict().items()] == [(k, v.shape) for k, v in b.state_dict().items()]
    assert a.spec.stages == b.spec.stages and a.spec.head == b.spec.head and a.spec.stem == b.spec.stem


def test_all_problems_in_one_error_with_locations() -> None:
    recipe = Recipe(stem="conv(0)", stages=["residul(64) x 2", "residual(64) x 0", "bottleneck(256, r=4)"],
                    head="softmax(10)", training={"epochs": 0, "lrr": 0.1})
    with pytest.raises(RecipeError) as info:
        recipe.to_spec()
    msg = str(info.value)
    assert msg.startswith("7 problems in recipe 'CustomModel':"), msg
    for where in ("stem.channels at 1:6", "stages.0.type at 1:1", "stages.1.blocks at 1:14", "stages.2.r at 1:17",
                  "head.type at 1:1", "training.epochs", "training.lrr"):
        assert where in msg, (where, msg)
    assert "did you mean 'lr'" in msg and "did you mean 'residual'" in msg
    assert len(recipe.validate()) == 7


def test_block_value_errors_are_located_before_building() -> None:
    recipe = Recipe(stem="simple(16)", stages=["conv(32, k=4)"], head="linear(2)", input_shape=(3, 16, 16))
    issues = recipe.validate()
    assert len(issues) == 1 and issues[0].path[:2] == ("stages", 0)
    assert "must be odd" in issues[0].message
    with pytest.raises(RecipeError, match=r"stages\.0\.blocks\.0 at 1:1"):
        build_recipe(recipe)


def test_input_too_small_is_reported_at_input_shape() -> None:
    with pytest.raises(RecipeError, match=r"stem at 1:1: input_shape \(3, 32, 32\) is too small"):
        Recipe(stem="patch(16, p=64)", stages=[], head="linear(2)", input_shape=(3, 32, 32)).to_spec()
    with pytest.raises(RecipeError, match=r"stages\.3 at 1:1: input_shape \(3, 8, 8\) leaves no pixels"):
        Recipe(stem="simple(8)", stages=["conv(8) | pool=max"] * 4, head="linear(2)", input_shape=(3, 8, 8)).to_spec()


def test_dict_stages_and_older_keys() -> None:
    recipe = Recipe(
        stem={"type": "conv", "channels": 32, "norm_type": "group", "activation": "swish"},
        stages=[{"pattern": "residual", "channels": 32, "blocks": 2, "attention": "se", "drop_path": 0.1},
                {"pattern": "residual+eca", "channels": 64, "downsample": True, "args": {"downsample": True}}],
        head={"num_classes": 5, "hidden_dims": [32], "dropout": 0.2},
    )
    model = build_recipe(recipe)
    assert isinstance(model.stem.bn, nn.GroupNorm) and isinstance(model.stem.act, nn.SiLU)
    assert model.stages[0][0].drop_path.drop_prob == 0.1
    assert type(model.stages[1][0].attn).__name__ == "ECABlock"
    assert sum(isinstance(m, nn.Dropout) for m in model.head.modules()) == 1
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 5)


def test_headless_and_stemless() -> None:
    model = build_recipe(Recipe(stem=None, stages=["conv(8) | pool=max"], head=None, input_shape=(3, 16, 16)))
    assert not model.has_stem and not model.has_head
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 8, 8, 8)
    assert build_recipe(Recipe(stem="none", stages=["conv(8)"], head="none")).num_classes is None


def test_num_classes_override_and_errors() -> None:
    model = build_recipe(Recipe(stages=["residual(64)"], head="linear(10)"), num_classes=3)
    assert model.head.fc.out_features == 3
    with pytest.raises(RecipeError, match="no head"):
        build_recipe(Recipe(stages=["residual(64)"], head=None), num_classes=3)
    with pytest.raises(RecipeError, match="needs a Recipe"):
        build_recipe("residual(64)")


def test_round_trips() -> None:
    recipe = Recipe(stem="conv(32, k=3, s=2, pool=None)", stages=["res+se(32) x2 | s=2", "mbconv(48, e=6, k=5)"],
                    head="mlp(7, hidden=[64], d=0.1)", name="tiny", input_shape=(3, 64, 64))
    spec = recipe.to_spec()
    canon = Recipe.from_spec(spec)
    assert canon.stages == ["residual+se(32) x 2 | downsample", "mbconv(48, expand_ratio=6, kernel_size=5)"]
    assert canon.stem == "conv(32, kernel_size=3, pool=None)" and canon.head == "mlp(7, hidden=[64], dropout=0.1)"
    assert canon.to_spec() == spec
    assert Recipe.from_dict(canon.to_dict()).to_spec() == spec
    assert parse_recipe(recipe) == spec and parse_recipe(recipe.to_dict()) == spec
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    model = build_recipe(spec)
    assert model.to_recipe().to_spec() == spec


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(RecipeError, match="did you mean 'stages'"):
        Recipe.from_dict({"stem": "conv(64)", "stagess": []})


def test_build_from_config_older_name() -> None:
    model = build_from_config({"stem": "simple(8)", "stages": ["residual(8)"], "head": "linear(2)",
                               "input_shape": [3, 8, 8]})
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 2)


def test_error_messages_show_a_caret() -> None:
    with pytest.raises(RecipeError) as info:
        Recipe(stages=["residual(64) x 2", "residual+se(96, bogus=1) x 4"], head="linear(10)").to_spec()
    lines = str(info.value).splitlines()
    caret = next(i for i, line in enumerate(lines) if re.fullmatch(r"\s*\^+", line))
    assert lines[caret - 1].strip() == "residual+se(96, bogus=1) x 4"
    assert lines[caret - 1][lines[caret].index("^"):].startswith("bogus=1")
