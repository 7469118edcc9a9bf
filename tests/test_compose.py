"""The ``>>`` composer: eager binding, channel inference, independent copies, the model surface."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from torchvision_customizer import registry
from torchvision_customizer.blocks import SEBlock
from torchvision_customizer.compose import (
    Branch,
    Compose,
    ComposedModel,
    Head,
    PatchStem,
    Sequential,
    SimpleStem,
    Stage,
    Stem,
    VisionModel,
    branch,
    build_vision_model,
    compose,
    repeat,
    residual,
)
from torchvision_customizer.errors import CompositionError, RecipeError
from torchvision_customizer.recipe import build_recipe
from torchvision_customizer.utils import get_model_flops


def test_seed_composer_example_verbatim() -> None:
    model = Stem(64) >> Stage(128, blocks=2) >> Head(10)
    # every parameter exists before the first forward: an optimizer sees the head
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    n_opt = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n_opt == model.count_parameters() > 0
    assert not any(isinstance(m, nn.modules.lazy.LazyModuleMixin) for m in model.modules())
    assert model(torch.randn(2, 3, 224, 224)).shape == (2, 10)
    assert isinstance(model, ComposedModel) and isinstance(model, nn.Module)


def test_channels_flow_and_declared_attributes() -> None:
    model = Stem(32, type="simple") >> Stage(64, blocks=2, downsample=True) >> Stage(96, pattern="bottleneck",
                                                                                    blocks=1) >> Head(5)
    assert [s.in_channels for s in model.stages] == [32, 64]
    assert [s.out_channels for s in model.stages] == [64, 96]
    assert model.stages[0].stride == 2 and model.stages[0][0].stride == 2 and model.stages[0][1].stride == 1
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 5)


def test_channel_mismatch_names_both_sides_and_numbers() -> None:
    with pytest.raises(CompositionError) as info:
        Stem(64) >> Stage(128, in_channels=32)
    msg = str(info.value)
    assert "Stem" in msg and "Stage" in msg and "64" in msg and "32" in msg
    with pytest.raises(CompositionError, match=r"64.*16"):
        Stem(64) >> SEBlock(16)


def test_unbound_part_raises_clearly() -> None:
    stage = Stage(128)
    assert not stage.bound and sum(p.numel() for p in stage.parameters()) == 0
    with pytest.raises(CompositionError, match="unbound"):
        stage(torch.randn(1, 64, 8, 8))
    bound = Stage(128, in_channels=64)
    assert bound(torch.randn(1, 64, 8, 8)).shape == (1, 128, 8, 8)


def test_same_part_in_two_chains_has_independent_weights() -> None:
    stage = Stage(32, blocks=1)
    a = Stem(16, type="simple") >> stage >> Head(2)
    b = Stem(16, type="simple") >> stage >> Head(2)
    wa = a.stages[0][0].conv1.weight
    wb = b.stages[0][0].conv1.weight
    assert wa.data_ptr() != wb.data_ptr()
    c = Stem(8, type="simple") >> stage  # another width: a fresh copy bound to 8
    assert c.stages[0].in_channels == 8
    head = Head(3)
    m1, m2 = (Stem(8, type="simple") >> head), (Stem(8, type="simple") >> head)
    assert m1.head.fc.weight.data_ptr() != m2.head.fc.weight.data_ptr()


def test_repeat_and_mul_make_independent_copies() -> None:
    model = Stem(16, type="simple") >> Stage(16, blocks=1) * 3 >> Head(2)
    assert len(model.stages) == 3
    ptrs = {s[0].conv1.weight.data_ptr() for s in model.stages}
    assert len(ptrs) == 3
    conv = nn.Conv2d(4, 4, 3, padding=1)
    conv.in_channels, conv.out_channels = 4, 4
    seq = repeat(conv, 2)
    assert seq.stages[0].weight.data_ptr() != seq.stages[1].weight.data_ptr() != conv.weight.data_ptr()


def test_branch_concatenates_and_residual_adds_identity() -> None:
    model = Stem(16, type="simple") >> (Stage(8, blocks=1) | Stage(24, blocks=1, pattern="conv")) >> Head(3)
    assert model.stages[0].out_channels == 32
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 3)
    body = Stage(16, blocks=1, pattern="conv", in_channels=16).eval()
    res = residual(body)
    net = (Stem(16, type="simple") >> res).eval()
    x = torch.randn(1, 3, 8, 8)
    feat = net.stem(x)
    torch.testing.assert_close(net(x), feat + body(feat))
    tri = branch(Stage(4, blocks=1), Stage(4, blocks=1), Stage(4, blocks=1))
    assert len((Stem(8, type="simple") >> tri).stages[0].paths) == 3
    with pytest.raises(CompositionError, match="equal channels"):
        Stem(8, type="simple") >> residual(Stage(16, blocks=1))


def test_any_module_that_declares_out_channels_can_join() -> None:
    model = Stem(16, type="simple") >> registry.create("se", 16) >> Head(3)
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 3)
    with pytest.raises(CompositionError, match="does not declare out_channels"):
        Stem(16) >> nn.ReLU() >> Head(3)
    with pytest.raises(CompositionError, match="instantiate it"):
        Stem(16) >> SEBlock
    with pytest.raises(CompositionError, match="nothing can follow the head"):
        Stem(16) >> Head(3) >> Stage(8)
    with pytest.raises(CompositionError, match="Stem must come first"):
        Stage(16, in_channels=3) >> Stem(16)


def test_head_dropout_is_really_present() -> None:
    model = Stem(16) >> Head(10, dropout=0.5)
    drops = [m for m in model.head.modules() if isinstance(m, nn.Dropout)]
    assert len(drops) == 1 and drops[0].p == 0.5
    mlp = Stem(16) >> Head(10, hidden=[32, 16], dropout=0.3)
    assert [m.out_features for m in mlp.head.modules() if isinstance(m, nn.Linear)] == [32, 16, 10]
    assert sum(isinstance(m, nn.Dropout) for m in mlp.head.modules()) == 2
    vgg_like = Stem(16) >> Head(10, hidden=[64], pool_size=7)
    assert vgg_like.head.mlp[0].in_features == 16 * 49


@pytest.mark.parametrize("pattern", sorted(
    set(registry.list(category="residual")) | set(registry.list(category="mobile"))))
def test_every_residual_and_mobile_pattern_composes(pattern: str) -> None:
    example = dict(getattr(registry.get(pattern), "example_kwargs", {}))
    channels = example.pop("out_channels", 32)
    extra = {k: v for k, v in example.items() if k not in ("stride", "in_channels")}
    stage = Stage(channels, blocks=2, pattern=pattern, downsample=True, **extra)
    model = (Stem(16, type="simple") >> stage >> Head(3)).eval()
    assert model.stages[0].out_channels == channels and model.stages[0].stride == 2
    feats = model.get_stage_outputs(torch.randn(1, 3, 16, 16))
    assert feats[0].shape == (1, channels, 8, 8)


@pytest.mark.parametrize("attention", ["se", "eca", "cbam_block"])
def test_attention_suffix_fills_the_single_slot(attention: str) -> None:
    model = Stem(16, type="simple") >> Stage(16, blocks=2, pattern=f"residual+{attention}") >> Head(2)
    cls = registry.get(attention)
    assert sum(isinstance(m, cls) for m in model.modules()) == 2
    mb = Stem(16, type="simple") >> Stage(24, blocks=2, pattern="mbconv+se") >> Head(2)
    assert sum(isinstance(m, SEBlock) for m in mb.modules()) == 2  # MBConv's own SE, never a second one


def test_dense_stage_honours_channels_and_downsample() -> None:
    model = Stem(16, type="simple") >> Stage(24, blocks=3, pattern="dense", downsample=True, growth_rate=8) >> Head(2)
    st = model.stages[0]
    assert (st.out_channels, st.stride) == (24, 2)
    assert st[0].out_channels == 16 + 3 * 8 and st.transition.out_channels == 24
    assert model.get_stage_outputs(torch.randn(1, 3, 16, 16))[0].shape == (1, 24, 8, 8)


def test_model_surface() -> None:
    model = Stem(16, type="simple") >> Stage(32, downsample=True) >> Stage(64, downsample=True) >> Head(4)
    x = torch.randn(2, 3, 32, 32)
    assert model.forward_features(x).shape == (2, 64, 8, 8)
    outs = model.get_stage_outputs(x)
    assert [(o.shape[1], 32 // o.shape[-1]) for o in outs] == [(f.channels, f.stride) for f in model.feature_info]
    model.features_only = True
    assert len(model(x)) == 2
    model.features_only = False
    text = model.explain((3, 32, 32))
    assert "stage 1" in text and "32 -> 64" in text and "64x8x8" in text and "total params" in text
    for p in model.stem.parameters():
        p.requires_grad_(False)
    assert model.count_parameters(trainable_only=True) == model.count_parameters() - sum(
        p.numel() for p in model.stem.parameters())
    summary = model.summary((3, 32, 32))
    assert summary.total_flops == get_model_flops(model, (3, 32, 32)) > 0
    assert "FLOPs" in str(summary)


def test_to_recipe_rebuilds_identically() -> None:
    model = (Stem(16, type="simple") >> Stage(32, pattern="residual+se", downsample=True, drop_path=0.1)
             >> (Stage(8, blocks=1) | Stage(8, blocks=1, pattern="conv", kernel_size=5)) >> Head(3, dropout=0.2))
    recipe = model.to_recipe()
    assert "residual+se(32) x 2 | downsample | drop_path=0.1" in recipe.stages
    again = build_recipe(recipe)
    assert [(k, v.shape) for k, v in again.state_dict().items()] == [
        (k, v.shape) for k, v in model.state_dict().items()]
    again.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(again.eval()(x), model.eval()(x))
    assert "branch" in recipe.to_yaml()


def test_to_recipe_refuses_plain_modules() -> None:
    model = Stem(16, type="simple") >> registry.create("se", 16)
    with pytest.raises(CompositionError, match="cannot be written"):
        model.to_recipe()


def test_fx_and_compile() -> None:
    model = (Stem(16, type="simple") >> Stage(16, pattern="residual+se") >> (Stage(8, blocks=1) | Stage(8, blocks=1))
             >> Head(3)).eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        ref = model(x)
        torch.testing.assert_close(torch.fx.symbolic_trace(model)(x), ref, rtol=0, atol=0)
        torch._dynamo.reset()
        torch.testing.assert_close(torch.compile(model, backend="eager", fullgraph=True)(x), ref)


def test_older_release_names() -> None:
    layers = [Stem(16), Stage(32, blocks=1), Head(10)]
    for model in (Compose((3, 64, 64), layers), Sequential(Stem(16), Stage(32, blocks=1), Head(10)),
                  VisionModel(Stem(16), [Stage(32, blocks=1)], Head(10)), compose(Stem(16), Head(10))):
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)
    vm = build_vision_model((3, 32, 32), 10, stem_channels=16, stage_channels=[16, 32], blocks_per_stage=[1, 2])
    assert vm(torch.randn(1, 3, 32, 32)).shape == (1, 10) and len(vm.stages[1]) == 2
    assert SimpleStem(8).stride == 1 and PatchStem(32, patch_size=4).stride == 4
    assert isinstance(Stage(8, blocks=1) | Stage(8, blocks=1), Branch)


def test_part_argument_errors_are_ours() -> None:
    with pytest.raises(RecipeError, match="unknown block 'residul'"):
        Stage(64, pattern="residul")
    with pytest.raises(RecipeError, match="has no argument 'bogus'"):
        Stage(64, bogus=1)
    with pytest.raises(RecipeError, match="num_classes"):
        Head(0)
    with pytest.raises(RecipeError, match="unknown stem pool"):
        Stem(64, pool="mean")
    with pytest.raises(CompositionError, match="repeat count"):
        Stage(8) * 0


@pytest.mark.slow
def test_export_onnx_and_channels_last(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = (Stem(16, type="simple") >> Stage(16, pattern="residual+se") >> (Stage(8, blocks=1) | Stage(8, blocks=1))
             >> Head(3)).eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        ref = model(x)
        torch.testing.assert_close(torch.export.export(model, (x,)).module()(x), ref)
        path = tmp_path / "m.onnx"
        torch.onnx.export(model, (x,), str(path), opset_version=18, dynamo=True)
        session = ort.InferenceSession(str(path))
        out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        torch.testing.assert_close(torch.from_numpy(out), ref, rtol=1e-4, atol=1e-4)
        model = model.to(memory_format=torch.channels_last)
        torch.testing.assert_close(model(x.to(memory_format=torch.channels_last)), ref, rtol=1e-5, atol=1e-5)
