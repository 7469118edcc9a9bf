"""YAML recipes: safe_load only, macros, extends with cycle detection, an enforced schema, locations."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from torchvision_customizer.blocks import SEBlock
from torchvision_customizer.errors import RecipeError, TVCError
from torchvision_customizer.recipe import (
    Recipe,
    ValidationError,
    create_example_recipe,
    create_recipe_from_template,
    expand_macros,
    get_template,
    list_templates,
    load_yaml_config,
    load_yaml_recipe,
    merge_recipes,
    save_yaml_recipe,
    training_keys,
    validate_recipe_config,
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return p


def test_scratch_recipe_with_every_documented_key(tmp_path: Path) -> None:
    p = write(tmp_path, "net.yaml", """
        name: net
        version: 1.0
        description: every older scratch key works
        input_shape: [3, 32, 32]
        stem: {type: conv, channels: 16, kernel_size: 3, stride: 1, pool: null, norm: group, activation: swish}
        stages:
          - {pattern: residual, channels: 16, blocks: 2, attention: se, drop_path: 0.1}
          - {pattern: residual, channels: 32, blocks: 1, downsample: true}
          - residual+eca(32) | drop_path=0.05
        head: {num_classes: 10, hidden: [64], dropout: 0.3}
        training: {epochs: 2, lr: 0.01, optimizer: sgd, batch_size: 8, data: digits}
        """)
    model = load_yaml_recipe(p)
    assert sum(isinstance(m, SEBlock) for m in model.modules()) == 2
    assert model.stages[0][1].drop_path.drop_prob == 0.1
    assert isinstance(model.stem.bn, nn.GroupNorm) and isinstance(model.stem.act, nn.SiLU)
    assert [m.p for m in model.head.modules() if isinstance(m, nn.Dropout)] == [0.3]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert load_yaml_recipe(p, num_classes=3).head.fc.out_features == 3
    recipe = Recipe.from_yaml(p)
    assert recipe.training == {"epochs": 2, "lr": 0.01, "optimizer": "sgd", "batch_size": 8, "data": "digits"}
    assert recipe.version == "1.0"


def test_macros_anywhere_nested_and_inside_strings(tmp_path: Path) -> None:
    p = write(tmp_path, "m.yaml", """
        macros:
          width: 16
          wide: "@width"
          act: swish
          block: "residual+se(@wide, act_layer=@act) x 2"
        input_shape: [3, 16, 16]
        stem: {type: simple, channels: "@width"}
        stages: ["@block", {pattern: residual, channels: "@wide"}]
        head: linear(4)
        """)
    cfg = load_yaml_config(p)
    assert cfg["stem"]["channels"] == 16
    assert cfg["stages"][0] == "residual+se(16, act_layer=swish) x 2"
    model = load_yaml_recipe(p)
    assert isinstance(model.stages[0][0].act1, nn.SiLU)


def test_undefined_and_cyclic_macros(tmp_path: Path) -> None:
    p = write(tmp_path, "u.yaml", """
        macros: {width: 16}
        stem: simple(@widht)
        stages: []
        head: linear(2)
        """)
    with pytest.raises(RecipeError, match=r"undefined macro '@widht'.*did you mean 'width'") as info:
        load_yaml_recipe(p)
    assert "stem" in str(info.value) and "u.yaml:2" in str(info.value)
    with pytest.raises(RecipeError, match=r"cycle.*@a -> @b -> @a"):
        expand_macros({"macros": {"a": "@b", "b": "@a"}, "stem": "@a"})


def test_extends_templates_and_relative_paths_with_merge_rules(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path, "sub/base.yaml", """
        name: base
        extends: resnet18
        macros: {w: 8, act: relu}
        input_shape: [3, 32, 32]
        head: {type: linear, num_classes: 5, dropout: 0.1}
        """)
    child = write(tmp_path, "child.yaml", """
        extends: sub/base
        macros: {w: 16}
        stem: simple(@w)
        stages: ["residual(@w, act_layer=@act)"]
        head: {num_classes: 7}
        """)
    cfg = load_yaml_config(child)
    assert cfg["stages"] == ["residual(16, act_layer=relu)"]  # lists replaced, macros merged key by key
    assert cfg["head"] == {"type": "linear", "num_classes": 7, "dropout": 0.1}  # mappings merged deeply
    assert cfg["name"] == "base"
    model = load_yaml_recipe(child)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 7)
    r18 = load_yaml_recipe(write(tmp_path, "r.yaml", "extends: resnet18\n"), num_classes=4)
    assert len(r18.stages) == 4 and r18.head.fc.out_features == 4


def test_extends_cycles_are_errors_listing_the_cycle(tmp_path: Path) -> None:
    me = write(tmp_path, "self.yaml", "extends: self.yaml\nstem: conv(8)\n")
    with pytest.raises(RecipeError, match=r"extends forms a cycle.*self\.yaml -> .*self\.yaml"):
        load_yaml_config(me)
    write(tmp_path, "a.yaml", "extends: b\n")
    write(tmp_path, "b.yaml", "extends: c.yaml\n")
    write(tmp_path, "c.yaml", "extends: a\n")
    with pytest.raises(RecipeError, match=r"a\.yaml -> .*b\.yaml -> .*c\.yaml -> .*a\.yaml"):
        load_yaml_config(tmp_path / "a.yaml")
    with pytest.raises(RecipeError, match=r"no such template or file.*did you mean 'resnet18'"):
        load_yaml_config(write(tmp_path, "x.yaml", "extends: resnet19\n"))


def test_unknown_keys_at_every_level_with_suggestions(tmp_path: Path) -> None:
    p = write(tmp_path, "k.yaml", """
        name: k
        stem: {type: conv, chanels: 16}
        stagess: []
        stages:
          - {pattern: residual, channels: 16, atention: se}
        head: {num_classes: 2, dropuot: 0.1}
        training: {epochz: 3}
        """)
    with pytest.raises(ValidationError) as info:
        load_yaml_recipe(p)
    msg = str(info.value)
    for hint in ("'stages'", "'channels'", "'attention'", "'dropout'", "'epochs'"):
        assert f"did you mean {hint}" in msg, (hint, msg)
    assert "k.yaml:3" in msg  # stagess is on line 3
    assert len(info.value.issues) == 5


def test_wrong_types_and_syntax_errors_are_located(tmp_path: Path) -> None:
    p = write(tmp_path, "t.yaml", """
        stem: conv(64)
        stages:
          - {pattern: residual, channels: sixty-four}
        head: linear(2)
        input_shape: [3, 224]
        version: [1, 0]
        """)
    with pytest.raises(RecipeError) as info:
        load_yaml_recipe(p)
    msg = str(info.value)
    assert "stages.0.channels" in msg and "t.yaml:3" in msg and "input_shape" in msg and "t.yaml:6" in msg
    bad = write(tmp_path, "s.yaml", "stem: conv(64)\nstages: [residual(64)\nhead: linear(2)\n")
    with pytest.raises(RecipeError, match=r"invalid YAML at .*s\.yaml:\d+:\d+"):
        load_yaml_recipe(bad)
    with pytest.raises(RecipeError, match="empty"):
        load_yaml_recipe(write(tmp_path, "e.yaml", ""))
    with pytest.raises(RecipeError, match="nested too deeply"):
        load_yaml_recipe(write(tmp_path, "d.yaml", "name: " + "[" * 3000 + "]" * 3000 + "\n"))
    with pytest.raises(RecipeError, match="mapping at the top level"):
        load_yaml_recipe(write(tmp_path, "l.yaml", "- 1\n- 2\n"))


def test_python_tags_are_refused_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "owned"
    p = write(tmp_path, "evil.yaml", f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(RecipeError, match="invalid YAML"):
        load_yaml_recipe(p)
    assert not marker.exists()


def test_training_section_is_validated(tmp_path: Path) -> None:
    assert {"epochs", "lr", "optimizer", "scheduler", "data", "batch_size"} <= set(training_keys())
    p = write(tmp_path, "tr.yaml", """
        stem: simple(8)
        stages: []
        head: linear(2)
        training: {epochs: 0, lr: -1, label_smoothing: 2, optimizer: 3}
        """)
    with pytest.raises(RecipeError) as info:
        load_yaml_config(p)
    assert len(info.value.issues) == 4


def test_backbone_and_scratch_are_exclusive(tmp_path: Path) -> None:
    p = write(tmp_path, "h.yaml", "backbone: {name: resnet18, weights: null}\nstem: conv(64)\nhead: {num_classes: 2}\n")
    with pytest.raises(RecipeError, match="backbone recipe has no 'stem'"):
        load_yaml_recipe(p)


def test_backbone_recipes_build_with_the_hybrid_builder(tmp_path: Path) -> None:
    pytest.importorskip("torchvision_customizer.hybrid")
    model = load_yaml_recipe(write(tmp_path, "h.yaml", "extends: hybrid_resnet_se\n"), num_classes=3)
    assert model.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 3)
    with pytest.raises(RecipeError, match="backbone"):
        load_yaml_recipe(write(tmp_path, "b.yaml", "backbone: {name: resnet18, weightz: null}\n"))


def test_save_load_round_trip(tmp_path: Path) -> None:
    recipe = Recipe(stem="conv(32, k=3, s=2, pool=None)", stages=["residual+se(32) x 2", "mbconv(48, e=6) | s=2"],
                    head="mlp(5, hidden=[32], dropout=0.2)", name="rt", input_shape=(3, 64, 64),
                    training={"epochs": 1})
    path = save_yaml_recipe(recipe, tmp_path / "out" / "rt.yaml")
    assert path.read_text().startswith("# written by torchvision-customizer")
    again = Recipe.from_yaml(path)
    assert again.to_spec() == recipe.to_spec() and again.training == {"epochs": 1}
    model = load_yaml_recipe(path)
    save_yaml_recipe(model, tmp_path / "model.yaml")
    assert Recipe.from_yaml(tmp_path / "model.yaml").to_spec() == recipe.to_spec()
    assert Recipe.from_yaml(recipe.to_yaml()).to_spec() == recipe.to_spec()  # YAML text works too


def test_template_helpers(tmp_path: Path) -> None:
    assert "resnet50" in list_templates()
    assert get_template("resnet18")["extends"] == "resnet_base"
    cfg = create_recipe_from_template("resnet18", tmp_path / "r.yaml", num_classes=10, input_shape=[3, 64, 64])
    assert cfg["head"] == "linear(10)" and (tmp_path / "r.yaml").exists()
    assert load_yaml_recipe(tmp_path / "r.yaml").head.fc.out_features == 10
    with pytest.raises(TVCError, match="did you mean 'resnet18'"):
        get_template("resnet81")
    ex = create_example_recipe(tmp_path / "ex.yaml")
    assert load_yaml_recipe(ex)(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_validate_and_merge_helpers() -> None:
    good = {"stem": "simple(8)", "stages": ["residual(8)"], "head": "linear(2)"}
    assert validate_recipe_config(good) is True
    issues = validate_recipe_config({**good, "stages": ["residul(8)"]}, strict=False)
    assert len(issues) == 1 and issues[0].path == ("stages", 0, "type")
    assert merge_recipes({"a": {"b": 1, "c": [1]}, "d": 1}, {"a": {"c": [2]}}) == {"a": {"b": 1, "c": [2]}, "d": 1}
