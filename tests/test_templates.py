"""Templates: recipes as data, torchvision fidelity, and a fluent Template whose methods really apply."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from torchvision_customizer.blocks import SEBlock
from torchvision_customizer.errors import RecipeError, TVCError
from torchvision_customizer.recipe import Recipe, build_recipe, list_templates
from torchvision_customizer.templates import (
    Template,
    densenet,
    efficientnet,
    get_template_recipe,
    mobilenet,
    resnet,
    template_state_dict_to_torchvision,
    torchvision_state_dict_to_template,
    vgg,
)

SCRATCH = [n for n in list_templates() if n != "hybrid_resnet_se"]
#: templates whose layout deliberately departs from torchvision (see their YAML comments)
LAYOUT_ONLY = {"mobilenet_v3_small", "mobilenet_v3_large", "mobilenet_v1", "resnet_base", "efficientnet_base"}


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_the_issue_templates_ship() -> None:
    wanted = {"resnet_base", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2",
              "resnext50_32x4d", "vgg11", "vgg13", "vgg16", "vgg19", "vgg16_bn", "mobilenet_v2",
              "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "densenet121", "convnext_tiny",
              "hybrid_resnet_se", "efficientnet_base"}
    assert wanted <= set(list_templates())


@pytest.mark.parametrize("name", SCRATCH)
def test_template_is_data_that_builds_round_trips_and_holds_no_torchvision_model(name: str) -> None:
    recipe = get_template_recipe(name)
    spec = recipe.to_spec(deep=False)
    again = Recipe.from_yaml(Recipe.from_spec(spec).to_yaml()).to_spec(deep=False)
    assert again == spec
    model = build_recipe(spec, device="meta")
    assert not [type(m) for m in model.modules() if type(m).__module__.startswith("torchvision.models")]
    if name not in LAYOUT_ONLY and hasattr(torchvision.models, name):
        with torch.device("meta"):
            ref = getattr(torchvision.models, name)(weights=None)
        assert _params(model) == _params(ref), name


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "vgg16_bn", "mobilenet_v2", "efficientnet_b0"])
def test_fidelity_bar_parameter_counts(name: str) -> None:
    ours = Template(name).build(device="meta")
    with torch.device("meta"):
        ref = getattr(torchvision.models, name)(weights=None)
    assert _params(ours) == _params(ref)


def _calibrated_torchvision(name: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    ref = getattr(torchvision.models, name)(weights=None)
    with torch.no_grad():  # a few train-mode passes give non-trivial BatchNorm statistics
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.uniform_(m.weight, 0.5, 1.5)
                nn.init.uniform_(m.bias, -0.2, 0.2)
        ref.train()
        for _ in range(3):
            ref(torch.randn(4, 3, 96, 96))
    return ref.eval()


@pytest.mark.parametrize(("name", "layers"), [("resnet18", 18), ("resnet50", 50)])
def test_resnet_templates_load_torchvision_state_dicts_exactly(name: str, layers: int) -> None:
    ref = _calibrated_torchvision(name, seed=layers)
    sd = ref.state_dict()
    converted = torchvision_state_dict_to_template(sd)
    assert len(converted) == len(sd)
    ours = Template.resnet(layers).build().eval()
    result = ours.load_state_dict(converted, strict=True)
    assert not result.missing_keys and not result.unexpected_keys  # every tensor loaded
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    back = template_state_dict_to_torchvision(ours.state_dict())
    assert back.keys() == sd.keys()
    assert all(torch.equal(back[k], sd[k]) for k in sd)


def test_densenet_key_mapping_both_ways() -> None:
    ref = _calibrated_torchvision("densenet121", seed=121)
    ours = Template.densenet(121).build().eval()
    ours.load_state_dict(torchvision_state_dict_to_template(ref.state_dict(), family="densenet"), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-4)
    assert template_state_dict_to_torchvision(ours.state_dict(), "densenet").keys() == ref.state_dict().keys()


def test_key_mapping_rejects_unknown_keys() -> None:
    with pytest.raises(TVCError, match="has no resnet mapping"):
        torchvision_state_dict_to_template({"features.0.weight": torch.zeros(1)})


def test_docs_chain_really_applies() -> None:
    model = Template.resnet(50).replace_activation("swish").add_attention("se").build(num_classes=10)
    block = model.stages[0][0]
    assert isinstance(block.act1, nn.SiLU) and isinstance(model.stem.act, nn.SiLU)
    assert sum(isinstance(m, SEBlock) for m in model.modules()) == 16
    assert model.head.fc.out_features == 10


def test_every_fluent_method_changes_the_model() -> None:
    base = Template.resnet(18).build(device="meta")
    cases = {
        "replace_norm": Template.resnet(18).replace_norm("group"),
        "add_attention": Template.resnet(18).add_attention("eca", stages=[3]),
        "modify_stage": Template.resnet(18).modify_stage(1, blocks=3, attention="se"),
        "set_stem": Template.resnet(18).set_stem(channels=32, pool=None),
        "set_head": Template.resnet(18).set_head(hidden=[256]),
        "use_dropout": Template.resnet(18).use_dropout(0.3),
        "scale_channels": Template.resnet(18).scale_channels(0.5),
        "scale_depth": Template.resnet(18).scale_depth(2),
        "replace_activation": Template.resnet(18).replace_activation("gelu"),
    }
    for name, t in cases.items():
        model = t.build(device="meta")
        assert repr(model) != repr(base), name
    assert any(isinstance(m, nn.GroupNorm) for m in cases["replace_norm"].build(device="meta").modules())
    assert any(isinstance(m, nn.Dropout) for m in cases["use_dropout"].build(device="meta").modules())
    assert len(cases["modify_stage"].build(device="meta").stages[1]) == 3


def test_fluent_errors_are_not_no_ops() -> None:
    with pytest.raises(RecipeError, match="no attention slot"):
        Template.vgg(16).add_attention("se", stages=[0])
    with pytest.raises(RecipeError, match="nothing to change"):
        Template.vgg(16).add_attention("se")
    with pytest.raises(TVCError, match="unknown activation 'swishh'"):
        Template.resnet(18).replace_activation("swishh")
    with pytest.raises(RecipeError, match="out of range"):
        Template.resnet(18).modify_stage(7, blocks=1)
    with pytest.raises(RecipeError, match="has no argument 'bogus'"):
        Template.resnet(18).modify_stage(0, bogus=1)
    with pytest.raises(RecipeError, match="no resnet19 template"):
        Template.resnet(19)


def test_functions() -> None:
    m = resnet(18, num_classes=10, use_se=True, input_shape=(3, 32, 32)).eval()
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert sum(isinstance(x, SEBlock) for x in m.modules()) == 8
    assert vgg(11, num_classes=5, use_batchnorm=False, channel_scale=0.25).head.fc.out_features == 5
    assert mobilenet(2, num_classes=7, width_multiplier=0.5).num_classes == 7
    assert efficientnet("b0", num_classes=3).head.fc.out_features == 3
    assert densenet(121, num_classes=4).num_classes == 4
    assert resnet(18, zero_init_residual=True).stages[0][0].bn2.weight.abs().sum() == 0
    assert Template.efficientnet("b1").spec.input_shape == (3, 240, 240)
