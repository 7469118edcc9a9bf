"""HybridBuilder / HybridModel: the seed example, key stability, freezing, recipes, checkpoints, bad input.

Pretrained weights are never downloaded: tests write seeded torchvision checkpoints into a
temporary ``$TORCH_HOME/hub/checkpoints/<file name of the weights enum's url>``.
"""

from __future__ import annotations

import copy
import os
import pickle
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
import torchvision
from torch import nn

from torchvision_customizer.blocks.se import SEBlock
from torchvision_customizer.errors import (
    BackboneError,
    BlockArgumentError,
    BlockValueError,
    PatchError,
    RecipeError,
    UnknownComponentError,
    WeightLoadingError,
)
from torchvision_customizer.hybrid import (
    HybridBuilder,
    HybridModel,
    PatchedBlock,
    PatchPlan,
    build_from_recipe,
    create_hybrid,
    extract_tiers,
    get_backbone_info,
    list_backbones,
)
from torchvision_customizer.hybrid.patch import apply_patches, iter_patches
from torchvision_customizer.layers import FrozenBatchNorm2d
from torchvision_customizer.weights import load_model, partial_load, save_model


# ------------------------------------------------------------------------------ helpers
def _checkpoint_file(home: Path, name: str, tag: str = "DEFAULT") -> Path:
    enum_cls = torchvision.models.get_model_weights(name)
    enum = enum_cls.DEFAULT if tag == "DEFAULT" else enum_cls[tag]
    d = home / "hub" / "checkpoints"
    d.mkdir(parents=True, exist_ok=True)
    return d / os.path.basename(urlparse(enum.url).path)


def _seed_checkpoint(home: Path, name: str, tag: str = "DEFAULT", seed: int = 1, **kw) -> dict:
    """A seeded torchvision state dict at the cache path of ``name``'s weights ``tag``."""
    torch.manual_seed(seed)
    enum_cls = torchvision.models.get_model_weights(name)
    enum = enum_cls.DEFAULT if tag == "DEFAULT" else enum_cls[tag]
    model = torchvision.models.get_model(name, weights=None, num_classes=len(enum.meta["categories"]), **kw)
    _calibrate(model)
    sd = model.state_dict()
    torch.save(sd, _checkpoint_file(home, name, tag))
    return sd


def _calibrate(model: nn.Module) -> None:
    """A few train-mode forwards so BatchNorm statistics are not the trivial 0/1."""
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 3, 64, 64))
    model.eval()


@pytest.fixture
def torch_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def _r18(**kw) -> HybridModel:
    kw.setdefault("weights", None)
    kw.setdefault("num_classes", 10)
    return HybridBuilder().from_torchvision("resnet18", **kw)


X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))


# ----------------------------------------------------------------------- seed example
def test_seed_example_runs_verbatim_and_keeps_every_pretrained_tensor(torch_home) -> None:
    sd = _seed_checkpoint(torch_home, "resnet50", "IMAGENET1K_V2")
    model = HybridBuilder().from_torchvision("resnet50", weights="IMAGENET1K_V2",
                                             patches={"layer4": {"wrap": "se"}}, num_classes=100)
    assert isinstance(model, torchvision.models.ResNet) and isinstance(model, HybridModel)
    msd = model.state_dict()
    for k, v in sd.items():
        if not k.startswith("fc."):
            assert torch.equal(msd[k], v), k
    assert isinstance(model.layer4[3], PatchedBlock) and isinstance(model.layer4[3].block, SEBlock)
    rep = model.load_report
    new_keys = sorted(k for k in msd if k.startswith("layer4.3."))
    assert sorted(rep.missing) == new_keys
    assert [k for k, _, _ in rep.shape_mismatched] == ["fc.weight", "fc.bias"]
    assert not rep.unexpected and len(rep.loaded) == len(sd) - 2
    assert "IMAGENET1K_V2" in rep.source
    model.eval()
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 100)
    # the pretrained function is kept: same features as torchvision's own pretrained model
    tv = torchvision.models.resnet50(weights="IMAGENET1K_V2").eval()
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(X), tv.layer4(tv.layer3(tv.layer2(tv.layer1(
            tv.maxpool(tv.relu(tv.bn1(tv.conv1(X)))))))), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "mobilenet_v3_small"])
def test_pretrained_model_equals_torchvisions_own(torch_home, name) -> None:
    """num_classes=None keeps the pretrained head: logits equal torchvision(weights=...)."""
    kw = {"aux_logits": True, "init_weights": False, "transform_input": True} if name == "googlenet" else {}
    _seed_checkpoint(torch_home, name, **kw)
    ours = HybridBuilder().from_torchvision(name, weights="DEFAULT").eval()
    tv = torchvision.models.get_model(name, weights="DEFAULT").eval()
    assert ours.state_dict().keys() == tv.state_dict().keys()
    with torch.no_grad():
        torch.testing.assert_close(ours(X), tv(X), rtol=0, atol=1e-5)
    assert ours.load_report.ok or name == "googlenet"  # googlenet: aux heads dropped, reported unexpected
    if name == "googlenet":
        assert all(k.startswith(("aux1.", "aux2.")) for k in ours.load_report.unexpected)
        assert "drop_aux" in [m.op for m in ours.modifications]


def test_in_chans_keeps_the_rgb_response(torch_home) -> None:
    _seed_checkpoint(torch_home, "resnet18")
    rgb = HybridBuilder().from_torchvision("resnet18", weights="DEFAULT").eval()
    four = HybridBuilder().from_torchvision("resnet18", weights="DEFAULT", in_chans=4).eval()
    assert four.load_report.adapted == {"conv1.weight": "input_conv_zeros"}
    x4 = torch.cat([X, torch.zeros(2, 1, 64, 64)], 1)
    with torch.no_grad():
        torch.testing.assert_close(four(x4), rgb(X), rtol=0, atol=1e-5)
    gray = HybridBuilder().from_torchvision("resnet18", weights="DEFAULT", in_chans=1).eval()
    g = X[:, :1]
    with torch.no_grad():
        torch.testing.assert_close(gray(g), rgb(g.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-4)
    assert "in_chans" in [m.op for m in four.modifications]


def test_head_resize_keeps_pretrained_head_parts(torch_home) -> None:
    sd = _seed_checkpoint(torch_home, "mobilenet_v3_small")
    m = HybridBuilder().from_torchvision("mobilenet_v3_small", weights="DEFAULT", num_classes=5, dropout=0.1)
    assert torch.equal(m.classifier[0].weight, sd["classifier.0.weight"])  # the hidden layer stays
    assert m.classifier[3].out_features == 5 and m.classifier[2].p == 0.1
    assert [k for k, _, _ in m.load_report.shape_mismatched] == ["classifier.3.weight", "classifier.3.bias"]


def test_dropout_on_a_family_without_one_adds_no_key() -> None:
    m = _r18(dropout=0.3)
    assert set(m.state_dict()) == set(torchvision.models.resnet18(num_classes=10).state_dict())
    assert isinstance(m.fc.drop, nn.Dropout) and m.fc.drop.p == 0.3
    assert "dropout" in [x.op for x in m.modifications]


# ----------------------------------------------------------------------- key stability
def _patched_r18(**kw) -> HybridModel:
    return _r18(patches={"layer4": {"wrap": "se"},
                         "layer3.1.conv2": {"wrap": {"block": "cbam_block", "params": {"rd_ratio": 0.25}}},
                         "layer2": {"inject_before": "eca"},
                         "layer1.0": {"inject_after": "coord_attention"}}, **kw)


def test_key_stability_separately_seeded_torchvision_state_dict() -> None:
    torch.manual_seed(0)
    model = _patched_r18()
    torch.manual_seed(123)
    source_model = torchvision.models.resnet18(num_classes=10)
    _calibrate(source_model)
    source = source_model.state_dict()
    report = partial_load(model, source)
    msd = model.state_dict()
    for k, v in source.items():
        assert torch.equal(msd[k], v), k
    new_modules = [p for p, _, rec in iter_patches(model) if rec["op"] in ("wrap", "inject_before")]
    assert sorted(new_modules) == ["layer1.0.coord_attention", "layer2.0.pre_eca", "layer3.1.conv2.cbam_block",
                                   "layer4.2"]
    new_keys = sorted(k for k in msd if any(k.startswith(p + ".") for p in new_modules))
    assert sorted(report.missing) == new_keys
    assert not report.unexpected and not report.shape_mismatched
    # and the patched model computes the source model's function
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(X), source_model(X), rtol=0, atol=1e-5)


def test_wrap_placement_and_no_hooks() -> None:
    m = _patched_r18()
    assert isinstance(m.layer4[2], PatchedBlock)  # appended to the Sequential target
    assert isinstance(m.layer3[1].conv2, nn.Conv2d)  # keeps its class ...
    assert isinstance(m.layer3[1].conv2.cbam_block, PatchedBlock)  # ... and gains the block as a child
    assert "layer3.1.conv2.weight" in m.state_dict()
    for mod in m.modules():
        assert not mod._forward_hooks and not mod._forward_pre_hooks


def test_fx_export_and_compile_trace_a_patched_model() -> None:
    m = _patched_r18(replace_act="silu").eval()
    with torch.no_grad():
        y = m(X)
        g = torch.fx.symbolic_trace(m)
        torch.testing.assert_close(g(X), y)
        ep = torch.export.export(m, (X,))
        torch.testing.assert_close(ep.module()(X), y)
        compiled = torch.compile(m, backend="eager", fullgraph=True)
        torch.testing.assert_close(compiled(X), y)


def test_deepcopy_and_pickle_keep_the_patched_model() -> None:
    m = _patched_r18().eval()
    with torch.no_grad():
        y = m(X)
        for clone in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
            assert type(clone) is type(m)
            torch.testing.assert_close(clone(X), y)
            assert clone.modifications == m.modifications


# ------------------------------------------------------------------------- patch engine
def test_targets_globs_types_and_stages() -> None:
    plan = HybridBuilder().plan("resnet18", {"layer*.*.conv2": {"wrap": "eca"}})
    assert isinstance(plan, PatchPlan) and len(plan) == 8
    assert [c.target for c in plan][:2] == ["layer1.0.conv2", "layer1.1.conv2"]
    plan = HybridBuilder().plan("mobilenet_v2", {"features.[3-6]": {"wrap": "se"}})
    assert [c.target for c in plan] == ["features.3", "features.4", "features.5", "features.6"]
    plan = HybridBuilder().plan("resnet18", {"type:BatchNorm2d": {"replace": "group"}})
    assert len(plan) == 20 and all(c.kind == "norm" for c in plan)
    plan = HybridBuilder().plan("efficientnet_b0", {"stage:3": {"wrap": "cbam_block"}})
    assert plan[0].target == "features.4" and plan[0].new_path == "features.4.3"
    assert "features.4.3" in str(plan)


def test_top_level_targets_apply() -> None:
    m = _r18(patches={"conv1": {"wrap": "se"}, "layer4": {"wrap": "eca"}, "avgpool": {"inject_before": "gc"}})
    assert isinstance(m.conv1.se, PatchedBlock) and isinstance(m.layer4[2], PatchedBlock)
    assert isinstance(m.avgpool.pre_gc, PatchedBlock)
    assert sorted(x.target for x in m.modifications if x.op in ("wrap", "inject_before")) == [
        "avgpool", "conv1", "layer4"]
    with pytest.raises(PatchError, match="needs a feature map"):
        HybridBuilder().plan("resnet18", {"fc": {"wrap": "se"}})


def test_replace_keeps_stride_and_reuses_weights() -> None:
    torch.manual_seed(0)
    ref = _r18().eval()
    m = copy.deepcopy(ref)
    HybridBuilder().patch(m, {"layer2.0": {"replace": "residual"}})
    new = m.layer2[0]
    assert type(new).__name__ == "ResidualBlock" and new.stride == 2
    mod = next(x for x in m.modifications if x.op == "replace")
    assert "reused" in mod.detail
    # every BasicBlock tensor had a same-named counterpart: the function is unchanged
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(X), ref(X), rtol=0, atol=1e-5)


def test_norm_and_activation_swaps_keep_parameters() -> None:
    torch.manual_seed(0)
    ref = _r18()
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(0.1)
    m = copy.deepcopy(ref)
    HybridBuilder().patch(m, {"type:BatchNorm2d": {"replace": "group"}, "type:ReLU": {"replace": "silu"}})
    assert not any(isinstance(x, (nn.BatchNorm2d, nn.ReLU)) for x in m.modules())
    assert isinstance(m.bn1, nn.GroupNorm) and torch.equal(m.bn1.weight, ref.bn1.weight)
    assert m.layer1[0].relu.inplace is True and isinstance(m.layer1[0].relu, nn.SiLU)
    assert set(m.state_dict()) == {k for k in ref.state_dict() if "running" not in k and "num_batches" not in k}


def test_convenience_swaps() -> None:
    m = _r18(replace_norm="frozen_batch", replace_act="relu6")
    assert isinstance(m.bn1, FrozenBatchNorm2d) and isinstance(m.relu, nn.ReLU6)


def test_multi_called_modules_are_refused_with_call_sites() -> None:
    with pytest.raises(PatchError, match="called 3 times") as err:
        HybridBuilder().plan("resnet50", {"layer1.0.relu": {"wrap": "se"}})
    assert "layer1.0" in str(err.value) and "256" in str(err.value)
    # activation swaps there are fine (shape-agnostic)
    assert len(HybridBuilder().plan("resnet50", {"layer1.0.relu": {"replace": "gelu"}})) == 1


def test_preserve_false_and_shape_changing_blocks() -> None:
    with pytest.raises(PatchError, match="changes the shape"):
        HybridBuilder().plan("resnet18", {"layer3": {"wrap": {"block": "conv", "params": {"out_channels": 64}}}})
    with pytest.raises(PatchError, match="does not run"):  # preserve=False: the rest of the model would break
        HybridBuilder().plan("resnet18", {"layer3": {"wrap": {"block": "conv", "params": {"out_channels": 64}}}},
                             preserve=False)


def test_inject_before_a_sequential_runs_on_its_input() -> None:
    torch.manual_seed(0)
    ref = _r18().eval()
    m = copy.deepcopy(ref)
    plan = HybridBuilder().patch(m, {"layer3": {"inject_before": "se"}}, preserve=False)
    assert plan[0].new_path == "layer3.0.pre_se"
    seen = []
    m.layer3[0].pre_se.register_forward_hook(lambda mod, a, o: seen.append(a[0].shape))
    m.eval()(X)
    assert seen == [(2, 128, 8, 8)]  # layer3's input (layer2's output), not layer3.0's output


def test_dry_run_reads_no_weights(torch_home) -> None:
    plan = HybridBuilder().from_torchvision("resnet50", weights="DEFAULT", patches={"layer4": {"wrap": "se"}},
                                            num_classes=100, dry_run=True)  # no file in TORCH_HOME: not read
    assert isinstance(plan, PatchPlan) and plan[0].new_path == "layer4.3" and plan[0].in_channels == 2048
    assert plan.new_params == sum(p.numel() for p in SEBlock(2048).parameters()) + 1


# ------------------------------------------------------------------------------ freezing
def test_freeze_backbone_keeps_new_modules_and_head_trainable() -> None:
    m = _patched_r18(freeze_backbone=True, unfreeze_stages=[3])
    trainable = {k for k, p in m.named_parameters() if p.requires_grad}
    for k, _ in m.named_parameters():
        expect = k.startswith(("fc.", "layer4.", "layer1.0.coord_attention.", "layer2.0.pre_eca.",
                               "layer3.1.conv2.cbam_block."))
        assert (k in trainable) == expect, k
    # frozen BatchNorm stays in eval under model.train(); its statistics do not move
    m.train()
    assert not m.bn1.training and not m.layer2[0].bn1.training and m.layer4[0].bn1.training
    before = m.layer2[0].bn1.running_mean.clone()
    m(X).sum().backward()
    assert torch.equal(m.layer2[0].bn1.running_mean, before)
    assert m.layer4[2].gamma.grad is not None and m.layer2[0].conv1.weight.grad is None
    m.unfreeze_all()
    m.train()
    assert m.bn1.training and all(p.requires_grad for p in m.parameters())


def test_freeze_bn_frozen_and_train_policies() -> None:
    m = _r18(freeze_backbone=True, bn="frozen")
    assert isinstance(m.bn1, FrozenBatchNorm2d) and isinstance(m.layer4[1].bn2, FrozenBatchNorm2d)
    assert m.count_parameters(trainable_only=True) == m.fc.weight.numel() + m.fc.bias.numel()
    m.unfreeze_all()
    assert isinstance(m.bn1, nn.BatchNorm2d) and m.bn1.weight.requires_grad
    m = _r18(freeze_backbone=True, bn="train")
    m.train()
    assert m.bn1.training


def test_param_groups_layer_decay() -> None:
    m = _patched_r18()
    groups = m.param_groups(1.0, layer_decay=0.5, weight_decay=0.05)
    names = [n for g in groups for n in g["param_names"]]
    assert sorted(names) == sorted(k for k, _ in m.named_parameters())
    by = {g["name"]: g for g in groups}
    assert by["head"]["lr"] == 1.0 and by["stage3"]["lr"] == 0.5 and by["stem"]["lr"] == 0.5 ** 5
    assert by["stage3_no_decay"]["weight_decay"] == 0.0 and by["stage3"]["weight_decay"] == 0.05
    assert "layer4.2.gamma" in by["stage3_no_decay"]["param_names"]
    torch.optim.AdamW(groups)  # a valid optimizer spec


# -------------------------------------------------------------------------- features
def test_features_only_and_out_indices() -> None:
    m = _r18(num_classes=None, features_only=True, out_indices=[1, 3])
    outs = m.eval()(X)
    assert [o.shape for o in outs] == [(2, 128, 8, 8), (2, 512, 2, 2)]
    assert not any(k.startswith("fc.") for k in m.state_dict())
    vit = HybridBuilder().from_torchvision("vit_b_32", weights=None, features_only=True, out_indices=[-1])
    (fmap,) = vit.eval()(torch.randn(1, 3, 224, 224))
    assert fmap.shape == (1, 768, 7, 7)


def test_features_only_with_weights_reports_the_removed_head(torch_home) -> None:
    sd = _seed_checkpoint(torch_home, "resnet18")
    m = HybridBuilder().from_torchvision("resnet18", weights="DEFAULT", features_only=True, strict=True)
    assert sorted(m.load_report.unexpected) == ["fc.bias", "fc.weight"]
    assert torch.equal(m.layer4[1].conv2.weight, sd["layer4.1.conv2.weight"])
    assert len(m.eval()(X)) == 4


def test_stem_stages_head_views_do_not_duplicate_keys() -> None:
    m = _r18()
    keys = list(m.state_dict())
    assert len(m.stages) == 4 and m.stages[3] is m.layer4 and m.head is m.fc
    assert [n for n, _ in m.stem.named_children()] == ["conv1", "bn1", "relu", "maxpool"]
    assert list(m.state_dict()) == keys and m.backbone_name == "resnet18"
    assert "stage 3: layer4" in m.explain()
    with pytest.raises(AttributeError, match="read-only"):
        m.stages = nn.ModuleList()
    with pytest.raises(AttributeError):
        m.modifications = []
    r = HybridBuilder().from_torchvision("regnet_x_400mf", weights=None)
    assert r.stem is r._modules["stem"]  # torchvision's own child of that name
    r.stem = r.stem  # and it stays assignable


# --------------------------------------------------------------------- recipes/checkpoints
def test_to_recipe_rebuilds_the_same_model(tmp_path) -> None:
    m = _patched_r18(replace_act="silu", freeze_backbone=True, unfreeze_stages=[2])
    recipe = m.to_recipe(tmp_path / "r.yaml")
    assert "weights" in recipe["backbone"] and recipe["backbone"]["weights"] is None
    assert recipe["backbone"]["patches"]["type:ReLU"] == {"replace": "silu"}
    text = (tmp_path / "r.yaml").read_text()
    assert "weights: null" in text
    import yaml

    again = build_from_recipe(yaml.safe_load(text))
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in m.state_dict().items()}
    assert [p.requires_grad for p in again.parameters()] == [p.requires_grad for p in m.parameters()]
    with pytest.raises(RecipeError, match="must state its weights"):
        build_from_recipe({"backbone": {"name": "resnet18"}})
    with pytest.raises(RecipeError, match="patchs"):
        build_from_recipe({"backbone": {"name": "resnet18", "weights": None, "patchs": {}}})


def test_save_model_load_model_round_trip_keeps_trained_new_blocks(tmp_path) -> None:
    m = _patched_r18()
    with torch.no_grad():
        for _, mod, _rec in iter_patches(m):
            if isinstance(mod, PatchedBlock):
                mod.gamma.fill_(0.5)  # as if trained
    m.eval()
    path = save_model(m, tmp_path / "m.safetensors")
    back = load_model(path)
    assert isinstance(back, HybridModel) and back.load_report.ok
    assert back.layer4[2].gamma.item() == 0.5  # saved weights win; identity init is not re-applied
    with torch.no_grad():
        torch.testing.assert_close(back.eval()(X), m(X))
    again = HybridBuilder().from_checkpoint(path)
    assert again.layer4[2].gamma.item() == 0.5


def test_from_checkpoint_plain_state_dict(tmp_path) -> None:
    m = _patched_r18()
    with torch.no_grad():
        m.layer4[2].gamma.fill_(0.25)
    torch.save(m.state_dict(), tmp_path / "sd.pth")
    patches = {"layer4": {"wrap": "se"}, "layer3.1.conv2": {"wrap": {"block": "cbam_block",
                                                                      "params": {"rd_ratio": 0.25}}},
               "layer2": {"inject_before": "eca"}, "layer1.0": {"inject_after": "coord_attention"}}
    back = HybridBuilder().from_checkpoint(tmp_path / "sd.pth", "resnet18", patches=patches, strict=True)
    assert back.fc.out_features == 10  # class count taken from the checkpoint
    assert back.layer4[2].gamma.item() == 0.25
    assert back.load_report.ok
    with pytest.raises(BlockValueError, match="backbone name"):
        HybridBuilder().from_checkpoint(tmp_path / "sd.pth")


# ------------------------------------------------------------------------------- compat
def test_extract_tiers_and_info_on_plain_torchvision_models() -> None:
    tv = torchvision.models.efficientnet_b0()
    tiers = extract_tiers(tv)
    assert tiers["info"].name == "efficientnet_b0" and len(tiers["stages"]) == 8
    assert tiers["stages"][0] is tv.features[1] and tiers["head"] is tv.classifier[1]
    info = get_backbone_info(torchvision.models.resnet34())
    assert info.name == "resnet34" and info.stage_channels == [64, 128, 256, 512]
    assert "stage 3" in info.summary() and info.total_params == 21_797_672
    assert list_backbones("resnet*")[:2] == ["resnet101", "resnet152"] and len(list_backbones()) == 80
    m = create_hybrid("resnet18", 10, weights=None, patches={"layer4": {"wrap": "se"}})
    assert m.fc.out_features == 10


def test_builder_holds_no_state() -> None:
    b = HybridBuilder()
    a = b.from_torchvision("resnet18", weights=None, patches={"layer4": {"wrap": "se"}})
    c = b.from_torchvision("resnet18", weights=None)
    assert len(a.modifications) == 1 and c.modifications == []


def test_from_timm_same_surface() -> None:
    pytest.importorskip("timm")
    torch.manual_seed(0)
    m = HybridBuilder().from_timm("resnet18", num_classes=10)
    ref = copy.deepcopy(m).eval()
    HybridBuilder().patch(m, {"stage:2": {"wrap": "se"}})
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(X), ref(X), rtol=0, atol=1e-5)
    assert [s[0] for s in m.stage_paths] == ["layer1", "layer2", "layer3", "layer4"]
    f = HybridBuilder().from_timm("resnet18", features_only=True, out_indices=[0, 3])
    assert [o.shape[1] for o in f.eval()(X)] == [64, 512]
    vit = HybridBuilder().from_timm("vit_tiny_patch16_224", num_classes=10)
    ref = copy.deepcopy(vit).eval()
    plan = HybridBuilder().patch(vit, {"stage:5": {"wrap": "eca"}})
    assert plan[0].layout == "tokens" and plan[0].new_path == "blocks.5.eca"
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(vit.eval()(x), ref(x), rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(("kwargs", "error", "needle"), [
    ({"name": "resnet5"}, BackboneError, "resnet50"),
    ({"weights": "IMAGENET1K_V9"}, UnknownComponentError, "IMAGENET1K_V1"),
    ({"patches": {"layer5": {"wrap": "se"}}}, PatchError, "layer4"),
    ({"patches": {"layer3.9.conv2": {"wrap": "se"}}}, PatchError, "layer3.1"),
    ({"patches": {"layer4": {"wrap": "cbam_blok"}}}, PatchError, "cbam_block"),
    ({"patches": {"layer4": {"wrap": {"block": "se", "params": {"reductio": 8}}}}}, PatchError, "reduction"),
    ({"patches": {"layer4": {"wrap": {"block": "se", "params": {"channels": 256}}}}}, PatchError, "outputs 512"),
    ({"patches": {"layer4": {"wrapp": "se"}}}, PatchError, "wrap"),
    ({"patches": {"type:BatchNorm": {"replace": "group"}}}, PatchError, "BatchNorm2d"),
    ({"patches": {"layer1.0.bn1.weight": {"wrap": "se"}}}, PatchError, "tensor, not a module"),
    ({"patches": {"type:BatchNorm2d": {"replace": "gruop"}}}, PatchError, "group"),
    ({"freeze_backbone": True, "unfreeze_stages": [4]}, BlockValueError, "0..3"),
    ({"unfreeze_stages": [1]}, BlockValueError, "freeze_backbone=True"),
    ({"features_only": True, "num_classes": None, "out_indices": [0, 7]}, BlockValueError, "0..3"),
    ({"out_indices": [0]}, BlockValueError, "features_only=True"),
    ({"num_classes": 0}, BlockValueError, ">= 1"),
    ({"dropout": 1.5}, BlockValueError, "[0, 1)"),
    ({"in_chans": "3"}, BlockArgumentError, "integer"),
    ({"bn": "frozn", "freeze_backbone": True}, BlockValueError, "frozen"),
    ({"preserve": "yes"}, BlockValueError, "channel"),
])
def test_bad_input_fails_before_anything_is_built(torch_home, kwargs, error, needle) -> None:
    """Weights 'DEFAULT' with no file in TORCH_HOME: any error other than a missing file proves the
    check ran before the weights were read."""
    kw = {"name": "resnet18", "weights": "DEFAULT", "num_classes": 10, **kwargs}
    name = kw.pop("name")
    with pytest.raises(error) as err:
        HybridBuilder().from_torchvision(name, **kw)
    assert needle in str(err.value)
    assert not isinstance(err.value, WeightLoadingError)


def test_missing_weights_file_names_it(torch_home) -> None:
    with pytest.raises(WeightLoadingError) as err:
        HybridBuilder().from_torchvision("resnet18", weights="DEFAULT")
    assert "resnet18-f37072fd.pth" in str(err.value)


def test_apply_patches_on_any_module() -> None:
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, 8, 1))
    ref = copy.deepcopy(net).eval()
    plan = apply_patches(net, {"1": {"wrap": "se"}, "type:ReLU": {"replace": "gelu"}}, (1, 3, 16, 16))
    assert len(plan) == 2 and isinstance(net[1].se, PatchedBlock) and isinstance(net[2], nn.GELU)
    with pytest.raises(PatchError, match="stage selectors"):
        apply_patches(net, {"stage:0": {"wrap": "se"}}, (1, 3, 16, 16))
    assert ref(torch.randn(1, 3, 16, 16)).shape == (1, 8, 16, 16)
