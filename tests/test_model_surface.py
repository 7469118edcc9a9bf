"""One model surface: every model kind this library returns answers the same protocol.

The parametrized :func:`test_protocol` runs every ``ModelSurface`` call over a composed model, a
template (recipe) model, a patched torchvision hybrid and (with timm installed) a timm hybrid.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from torchvision_customizer.compose import ComposedModel, Head, SegmentationHead, Stage, Stem
from torchvision_customizer.errors import BlockValueError, TVCError
from torchvision_customizer.layers import FrozenBatchNorm2d
from torchvision_customizer.models import ModelSurface
from torchvision_customizer.weights import load_model

SIZE = 64
KINDS = ["composed", "template", "hybrid", "timm"]


def _build(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "composed":
        return (Stem(16, type="simple") >> Stage(24, blocks=1, downsample=True)
                >> Stage(32, blocks=1, downsample=True) >> Head(10))
    if kind == "template":
        from torchvision_customizer import templates

        return templates.resnet(18, num_classes=10)
    from torchvision_customizer.hybrid import HybridBuilder

    if kind == "hybrid":
        return HybridBuilder().from_torchvision("resnet18", weights=None, num_classes=10,
                                                patches={"layer3": {"wrap": "se"}})
    pytest.importorskip("timm")
    return HybridBuilder().from_timm("resnet18", num_classes=10)


def _bns(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _trainable(module: nn.Module) -> set[bool]:
    return {p.requires_grad for p in module.parameters()}


@pytest.mark.parametrize("kind", KINDS)
def test_protocol(kind: str, tmp_path) -> None:
    model = _build(kind)
    assert isinstance(model, ModelSurface)
    x = torch.randn(2, 3, SIZE, SIZE)
    model.eval()

    # counting, explain, summary
    total = sum(p.numel() for p in model.parameters())
    assert model.count_parameters() == total == model.count_parameters(trainable_only=True)
    text = model.explain()
    assert isinstance(text, str) and f"{total:,}" in text
    summary = model.summary((3, SIZE, SIZE))
    assert summary.total_params == total and summary.output_shape == (10,) and summary.total_flops > 0

    # stages (from 0, stem excluded) with declared channels and strides
    n = model.num_stages
    assert n == len(model.stages) >= 2
    outs = model.get_stage_outputs(x)
    assert len(outs) == n == len(model.stage_channels) == len(model.stage_strides)
    for out, c, s in zip(outs, model.stage_channels, model.stage_strides):
        assert tuple(out.shape) == (2, c, math.ceil(SIZE / s), math.ceil(SIZE / s))
    torch.testing.assert_close(model.forward_features(x), outs[-1])
    assert model.features_only is False

    # classifier
    clf = model.get_classifier()
    assert isinstance(clf, nn.Linear) and clf.out_features == 10
    before = {k: v.clone() for k, v in model.state_dict().items() if k.split(".")[0] not in ("head", "fc")}
    model.reset_classifier(5)
    assert model(x).shape == (2, 5) and model.get_classifier().out_features == 5
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())  # only the classifier changed

    # freezing: freeze(stages=...), freeze_backbone(unfreeze_stages=...), unfreeze_all
    model.freeze(stages=[0])
    model.train()
    assert _trainable(model.stem) <= {False} and _trainable(model.stages[0]) == {False}
    assert _trainable(model.stages[1]) == {True} and _trainable(model.get_classifier()) == {True}
    assert not any(m.training for m in _bns(model.stages[0]))  # frozen BatchNorm stays in eval
    assert all(m.training for m in _bns(model.stages[1]))
    model.freeze_backbone(unfreeze_stages=[n - 1])
    assert _trainable(model.stages[0]) == {False} and _trainable(model.stages[n - 1]) == {True}
    assert 0 < model.count_parameters(trainable_only=True) < model.count_parameters()
    model.unfreeze_all()
    assert model.count_parameters(trainable_only=True) == model.count_parameters()
    assert all(m.training for m in _bns(model))

    # parameter groups: layer-wise lr decay, no decay on norms and biases
    groups = model.param_groups(1e-3, layer_decay=0.5, weight_decay=0.05)
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    lrs = {g["name"]: g["lr"] for g in groups}
    assert lrs["head"] == pytest.approx(1e-3) and lrs["stem"] == pytest.approx(1e-3 * 0.5 ** (n + 1))
    assert lrs["stage0"] == pytest.approx(1e-3 * 0.5 ** n)
    for g in groups:
        if g["weight_decay"] == 0:
            assert all(p.ndim <= 1 for p in g["params"])
    opt = torch.optim.AdamW(groups)
    model(x).sum().backward()
    opt.step()

    # write-back: the recipe and a self-describing file that rebuilds the (resized) model
    assert model.to_recipe()
    model.eval()
    path = model.save(tmp_path / f"{kind}.safetensors")
    loaded = load_model(path)
    loaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_implementations_a_class_has_keep_priority() -> None:
    from torchvision_customizer.hybrid import HybridModel

    composed = _build("composed")
    assert type(composed).explain is ComposedModel.explain
    assert type(composed).summary is ComposedModel.summary
    assert HybridModel._group_of_params is not ModelSurface._group_of_params  # groups by name (tokens, gates)
    assert HybridModel.freeze_backbone is not ModelSurface.freeze_backbone


def test_timm_classifier_calls_go_to_timm() -> None:
    model = _build("timm")
    assert model.get_classifier() is model.fc
    model.reset_classifier(3)
    assert model.fc.out_features == 3 and model.num_classes == 3
    assert model.to_recipe()["head"]["num_classes"] == 3


def test_bn_policies_on_a_composed_model() -> None:
    model = _build("composed")
    keys = set(model.state_dict())
    stats = model.stem.bn.running_mean.clone()
    model.freeze(bn="frozen")
    assert isinstance(model.stem.bn, FrozenBatchNorm2d) and not _bns(model.stages)
    assert {k for k in model.state_dict() if not k.endswith("num_batches_tracked")} == \
        {k for k in keys if not k.endswith("num_batches_tracked")}
    model.unfreeze_all()
    assert isinstance(model.stem.bn, nn.BatchNorm2d) and torch.equal(model.stem.bn.running_mean, stats)
    model.freeze(bn="train")
    model.train()
    assert all(m.training for m in _bns(model)) and _trainable(model.stages) == {False}
    assert _trainable(model.head) == {True}


def test_bad_arguments_are_errors_naming_the_value() -> None:
    model = _build("composed")
    with pytest.raises(BlockValueError, match=r"0\.\.1"):
        model.freeze(stages=[7])
    with pytest.raises(BlockValueError, match="bogus"):
        model.freeze_backbone(bn="bogus")
    with pytest.raises(BlockValueError, match="positive"):
        model.reset_classifier(0)
    with pytest.raises(BlockValueError, match="lr"):
        model.param_groups(0)
    with pytest.raises(BlockValueError, match="layer_decay"):
        model.param_groups(1e-3, layer_decay=2)


def test_features_only_models_declare_their_maps() -> None:
    from torchvision_customizer.hybrid import HybridBuilder

    composed = _build("composed")
    composed.features_only = True
    hybrid = HybridBuilder().from_torchvision("resnet18", weights=None, features_only=True)
    x = torch.randn(1, 3, SIZE, SIZE)
    for model in (composed, hybrid):
        maps = model(x)
        assert [m.shape[1] for m in maps] == model.stage_channels
        assert [SIZE // m.shape[-1] for m in maps] == model.stage_strides
    assert hybrid.get_classifier() is None


class _Tiny(ModelSurface, nn.Module):
    """A model that only provides stem/stages/head/feature_info: every other call is the mixin's default."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU())
        self.stages = nn.Sequential(nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU()),
                                    nn.Sequential(nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU()))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 4))
        self.feature_info = [{"num_chs": 16, "reduction": 4}, {"num_chs": 32, "reduction": 8}]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def test_mixin_defaults_on_a_minimal_model(tmp_path) -> None:
    model = _Tiny()
    x = torch.randn(2, 3, 32, 32)
    assert [o.shape[1:] for o in model.get_stage_outputs(x)] == [(16, 8, 8), (32, 4, 4)]
    assert model.get_classifier() is model.head[2]
    model.reset_classifier(7)
    assert model(x).shape == (2, 7)
    assert "stage 1: channels=32 stride=8" in model.explain()
    assert model.summary().input_size == (1, 3, 224, 224)
    model.freeze_backbone(unfreeze_stages=-1)
    assert _trainable(model.stages[0]) == {False} and _trainable(model.stages[1]) == {True}
    groups = model.param_groups(0.1, weight_decay=0.01, no_decay_norm_and_bias=False)
    assert all(g["weight_decay"] == 0.01 for g in groups)
    with pytest.raises(TVCError, match="cannot be written as a recipe"):
        model.to_recipe()


def test_dense_heads_are_composed_but_not_recipes() -> None:
    model = Stem(16, type="simple") >> Stage(24, blocks=1) >> SegmentationHead(3, hidden_channels=8)
    assert model.get_classifier() is model.head.cls
    with pytest.raises(TVCError, match="no recipe spelling"):
        model.to_recipe()
