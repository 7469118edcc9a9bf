"""partial_load, transfer_weights, match_state_dict: proofs on separately seeded checkpoints."""

from __future__ import annotations

import copy
import functools
import re
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from torchvision_customizer.errors import TVCError, WeightLoadingError
from torchvision_customizer.weights import (
    KEEP_INIT_ATTR,
    LoadReport,
    count_matching_params,
    get_layer_shapes,
    match_state_dict,
    partial_load,
    transfer_weights,
)


class Gate(nn.Module):
    """A same-shape block of our own: a 1x1 conv, a norm and a scalar gate."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 1)
        self.bn = nn.BatchNorm2d(c)
        self.scale = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.scale * self.bn(self.conv(x))


@functools.cache
def _seeded(seed: int, num_classes: int) -> nn.Module:
    torch.manual_seed(seed)
    return torchvision.models.resnet18(num_classes=num_classes)


def seeded(seed: int, num_classes: int = 1000) -> nn.Module:
    """A fresh copy of a resnet18 built under ``torch.manual_seed(seed)`` (built once per seed)."""
    return copy.deepcopy(_seeded(seed, num_classes))


@pytest.fixture(scope="module")
def source_sd() -> dict[str, torch.Tensor]:
    """A resnet18 checkpoint with its own seed, and non-default BN statistics."""
    sd = {k: v.clone() for k, v in seeded(1).state_dict().items()}
    g = torch.Generator().manual_seed(11)
    for k, v in sd.items():
        if k.endswith("running_mean") or k.endswith("running_var"):
            sd[k] = torch.rand(v.shape, generator=g) + 0.5
        elif k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(123)
    return sd


def patched_model(seed: int = 2) -> nn.Module:
    model = seeded(seed, num_classes=10)
    model.layer4 = nn.Sequential(*model.layer4, Gate(512))
    return model


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_partial_load_proof_every_tensor_accounted(source_sd: dict[str, torch.Tensor]) -> None:
    model = patched_model()
    before = snapshot(model)
    assert not torch.equal(before["conv1.weight"], source_sd["conv1.weight"])  # the seeds really differ
    report = partial_load(model, source_sd)
    after = model.state_dict()

    new_keys = [k for k in after if k.startswith("layer4.2.")]
    assert new_keys and report.missing == new_keys
    assert report.shape_mismatched == [("fc.weight", (1000, 512), (10, 512)), ("fc.bias", (1000,), (10,))]
    assert report.unexpected == [] and report.adapted == {} and report.non_tensor == []
    assert report.prefix_stripped is None
    assert set(report.newly_initialized) == set(new_keys) | {"fc.weight", "fc.bias"}
    assert all(v == "model init (kept)" for v in report.newly_initialized.values())
    # every model tensor is in exactly one category
    cats = [set(report.loaded), set(report.adapted), {k for k, _, _ in report.shape_mismatched},
            set(report.missing)]
    assert sum(len(c) for c in cats) == len(after) and set().union(*cats) == set(after)

    for k in report.loaded:
        assert torch.equal(after[k], source_sd[k]), k
    for k in after:
        if k not in report.loaded:
            assert torch.equal(after[k], before[k]), k
    assert report.load_ratio == pytest.approx(len(report.loaded) / len(after))
    assert report.source_ratio == pytest.approx((len(source_sd) - 2) / len(source_sd))
    assert report.matched == {k: k for k in report.loaded}
    assert not report.ok and isinstance(report, LoadReport)


def test_model_output_uses_the_loaded_weights(source_sd: dict[str, torch.Tensor]) -> None:
    ref = seeded(3)
    ref.load_state_dict(source_sd)
    model = seeded(2)
    assert partial_load(model, source_sd).ok
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(ref.eval()(x), model.eval()(x))


@pytest.mark.parametrize("prefix", ["module.", "_orig_mod.", "model.", "backbone.", "module._orig_mod."])
def test_wrapper_prefix_is_stripped_and_reported(source_sd: dict[str, torch.Tensor], prefix: str) -> None:
    model = seeded(2)
    sd = {prefix + k: v for k, v in source_sd.items()}
    sd[prefix + "extra.weight"] = torch.ones(2)
    report = partial_load(model, sd)
    assert report.prefix_stripped == prefix
    assert len(report.loaded) == len(source_sd)
    assert report.unexpected == [prefix + "extra.weight"]  # source keys keep their own names
    assert report.matched["conv1.weight"] == prefix + "conv1.weight"
    assert torch.equal(model.state_dict()["layer1.0.conv1.weight"], source_sd["layer1.0.conv1.weight"])


def test_prefix_not_stripped_when_it_matches_nothing_more() -> None:
    class Holder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = nn.Linear(2, 2)

    src = Holder()
    report = partial_load(Holder(), src.state_dict())
    assert report.prefix_stripped is None and report.ok


def test_wrapped_model_is_looked_through(source_sd: dict[str, torch.Tensor]) -> None:
    model = seeded(2)
    report = partial_load(nn.DataParallel(model), source_sd)
    assert report.ok and torch.equal(model.conv1.weight, source_sd["conv1.weight"])


def test_key_map_dict_and_regex() -> None:
    torch.manual_seed(0)
    src = {"enc.0.weight": torch.randn(4, 3), "enc.0.bias": torch.randn(4), "head.w": torch.randn(2, 4)}
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2, bias=False))
    report = partial_load(model, src, key_map=[(r"^enc\.0\.", "0."), (r"^head\.w$", "1.weight")])
    assert report.ok and report.key_map_applied == {"enc.0.weight": "0.weight", "enc.0.bias": "0.bias",
                                                    "head.w": "1.weight"}
    assert torch.equal(model[1].weight, src["head.w"]) and torch.equal(model[0].bias, src["enc.0.bias"])

    model2 = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2, bias=False))
    report = partial_load(model2, src, key_map={"enc.0.weight": "0.weight", "head.w": "1.weight"})
    assert report.loaded == ["0.weight", "1.weight"] and report.unexpected == ["enc.0.bias"]
    assert report.missing == ["0.bias"]
    assert "key map applied (2)" in report.summary()


def test_key_map_errors_name_the_entry() -> None:
    src = {"a.weight": torch.zeros(2, 2), "b.weight": torch.zeros(2, 2)}
    model = nn.Sequential(nn.Linear(2, 2, bias=False))
    with pytest.raises(WeightLoadingError, match=r"same model key.*'a.weight' and 'b.weight'"):
        partial_load(model, src, key_map={"a.weight": "0.weight", "b.weight": "0.weight"})
    with pytest.raises(WeightLoadingError, match=r"same model key"):
        partial_load(model, src, key_map=[(r"^[ab]\.", "0.")])
    with pytest.raises(WeightLoadingError, match=r"matches no source key \(at key_map\['c.weight'\]\)"):
        partial_load(model, src, key_map={"c.weight": "0.weight"})
    with pytest.raises(WeightLoadingError, match=r"matches no source key.*key_map\[0\].*source keys look like"):
        partial_load(model, src, key_map=[(r"^zzz", "0.")])
    with pytest.raises(WeightLoadingError, match=r"to none the model has.*'a.weight' -> 'x.weight'"):
        partial_load(model, src, key_map=[(r"^a\.", "x.")])
    with pytest.raises(WeightLoadingError, match=r"does not have.*did you mean '0.weight'"):
        partial_load(model, src, key_map={"a.weight": "0.weigth"})
    with pytest.raises(WeightLoadingError, match=r"invalid regular expression"):
        partial_load(model, src, key_map=[("(", "0.")])
    with pytest.raises(WeightLoadingError, match=r"wrong type"):
        partial_load(model, src, key_map="a->b")  # type: ignore[arg-type]
    with pytest.raises(WeightLoadingError, match=r"\(regex, replacement\) pairs"):
        partial_load(model, src, key_map=[("a",)])  # type: ignore[list-item]
    # nothing was loaded by the failed calls
    assert not torch.equal(model[0].weight, torch.zeros(2, 2))


def test_strict_raises_with_report_and_changes_nothing(source_sd: dict[str, torch.Tensor]) -> None:
    model = patched_model()
    before = snapshot(model)
    with pytest.raises(WeightLoadingError) as info:
        partial_load(model, source_sd, strict=True)
    err = info.value
    assert isinstance(err.report, LoadReport) and err.report.shape_mismatched and err.report.missing
    assert "shape-mismatched" in str(err) and "fc.weight" in str(err) and "err.report.summary()" in str(err)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert isinstance(err, ValueError) and isinstance(err, TVCError)


def test_ignore_mismatch_false_raises_on_mismatch_only(source_sd: dict[str, torch.Tensor]) -> None:
    with pytest.raises(WeightLoadingError, match=r"2 shape-mismatched"):
        partial_load(seeded(2, num_classes=10), source_sd, ignore_mismatch=False)
    model = seeded(2)
    model.layer4 = nn.Sequential(*model.layer4, Gate(512))
    report = partial_load(model, source_sd, ignore_mismatch=False)  # only missing keys: no error
    assert report.missing and not report.shape_mismatched


def test_strict_passes_on_exact_fit(source_sd: dict[str, torch.Tensor]) -> None:
    report = partial_load(seeded(2), source_sd, strict=True)
    assert report.ok and report.load_ratio == 1.0 and report.source_ratio == 1.0


def test_dtype_follows_the_model(source_sd: dict[str, torch.Tensor]) -> None:
    model = seeded(2).to(torch.bfloat16)
    report = partial_load(model, source_sd)
    assert report.ok
    assert model.conv1.weight.dtype == torch.bfloat16
    assert torch.equal(model.conv1.weight, source_sd["conv1.weight"].to(torch.bfloat16))
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in source_sd.items()}
    model32 = seeded(2)
    partial_load(model32, half)
    assert model32.fc.weight.dtype == torch.float32 and torch.equal(model32.fc.weight, half["fc.weight"].float())


def test_non_tensor_entries_are_reported_not_crashed_on() -> None:
    torch.manual_seed(0)
    model = nn.Linear(2, 2)
    src = {"weight": torch.randn(2, 2), "bias": torch.randn(2), "epoch": 3, "config": {"lr": 0.1}, "x": None}
    report = partial_load(model, src)
    assert report.non_tensor == ["epoch", "config", "x"] and report.ok
    assert "non-tensor source entries (3)" in report.summary()


def test_checkpoint_dict_and_module_and_files(tmp_path: Path, source_sd: dict[str, torch.Tensor]) -> None:
    assert partial_load(seeded(2), {"state_dict": source_sd, "epoch": 2}).ok
    assert partial_load(seeded(2), {"model_state_dict": source_sd, "optimizer": {}}).ok
    src_model = seeded(3)
    model = seeded(2)
    report = partial_load(model, src_model)
    assert report.ok and report.source == "module ResNet"
    assert torch.equal(model.layer3[1].bn2.running_var, src_model.layer3[1].bn2.running_var)
    st = tmp_path / "w.safetensors"
    save_file(source_sd, str(st))
    pth = tmp_path / "w.pth"
    torch.save({"state_dict": source_sd}, pth)
    for path in (st, str(pth)):
        model = seeded(2)
        report = partial_load(model, path)
        assert report.ok and report.source == str(path)
        assert all(torch.equal(v, source_sd[k]) for k, v in model.state_dict().items())


def test_bad_sources_give_our_error_with_path_and_hint(tmp_path: Path) -> None:
    model = nn.Linear(2, 2)
    with pytest.raises(WeightLoadingError, match=r"unsupported weights source.*got 'int'.*resolve_weights"):
        partial_load(model, 3)
    with pytest.raises(WeightLoadingError, match=r"must be an nn.Module"):
        partial_load({"weight": torch.zeros(2)}, {})  # type: ignore[arg-type]
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(WeightLoadingError, match=re.escape(str(missing)) + r".*check the file name"):
        partial_load(model, missing)
    with pytest.raises(WeightLoadingError, match=r"is a directory.*pass the .safetensors"):
        partial_load(model, tmp_path)
    bad = tmp_path / "bad.safetensors"
    save_file({"weight": torch.zeros(100, 100)}, str(bad))
    bad.write_bytes(bad.read_bytes()[:200])
    with pytest.raises(WeightLoadingError, match=r"truncated or corrupted.*" + re.escape(str(bad))):
        partial_load(model, bad)
    with pytest.raises(WeightLoadingError, match=r"keys must be strings"):
        partial_load(model, {1: torch.zeros(2)})


def test_module_never_half_loaded() -> None:
    torch.manual_seed(0)
    src = nn.Sequential(nn.Linear(8, 4), nn.Linear(4, 3)).state_dict()
    model = nn.Sequential(nn.Linear(8, 4), nn.Linear(6, 3))  # 1.weight mismatches, 1.bias would fit
    before = snapshot(model)
    report = partial_load(model, src)
    assert report.shape_mismatched == [("1.weight", (3, 4), (3, 6))]
    assert report.loaded == ["0.weight", "0.bias"]
    assert "never half-loaded" in report.newly_initialized["1.bias"]
    assert "1.bias" in report.dropped and report.unexpected == []
    assert torch.equal(model[1].bias, before["1.bias"])


def test_init_new_layers_touches_only_new_tensors_and_never_zeroes_norms(
        source_sd: dict[str, torch.Tensor]) -> None:
    model = patched_model()
    before = snapshot(model)
    report = partial_load(model, source_sd, init_new_layers="zeros")
    after = model.state_dict()
    assert torch.equal(after["layer4.2.bn.weight"], torch.ones(512))  # a norm scale is never zeroed
    assert torch.equal(after["layer4.2.bn.bias"], torch.zeros(512))
    assert torch.equal(after["layer4.2.conv.weight"], torch.zeros_like(before["layer4.2.conv.weight"]))
    assert report.newly_initialized["layer4.2.bn.weight"] == "ones (norm scale)"
    assert report.newly_initialized["fc.weight"] == "zeros"
    assert report.newly_initialized["layer4.2.scale"].startswith("model init (kept")
    for k in report.loaded:
        assert torch.equal(after[k], source_sd[k])
    untouched = set(after) - set(report.loaded) - set(report.newly_initialized)
    assert not untouched

    model = patched_model()
    before = snapshot(model)
    report = partial_load(model, source_sd, init_new_layers="kaiming")
    assert report.newly_initialized["fc.weight"].startswith("kaiming")
    assert not torch.equal(model.fc.weight, before["fc.weight"])
    with pytest.raises(WeightLoadingError, match=r"did you mean 'kaiming'"):
        partial_load(model, source_sd, init_new_layers="kaimng")


def test_init_new_layers_keeps_deliberate_init(source_sd: dict[str, torch.Tensor]) -> None:
    class MarkedGate(Gate):
        block_name = "marked"  # what every registered block carries

    for mark in ("attr", "block"):
        model = seeded(2, num_classes=10)
        gate = Gate(512) if mark == "attr" else MarkedGate(512)
        if mark == "attr":
            setattr(gate, KEEP_INIT_ATTR, True)
        model.layer4 = nn.Sequential(*model.layer4, gate)
        before = snapshot(model)
        report = partial_load(model, source_sd, init_new_layers="xavier")
        for k in ("layer4.2.conv.weight", "layer4.2.bn.weight", "layer4.2.scale"):
            assert torch.equal(model.state_dict()[k], before[k])
            assert "deliberate init" in report.newly_initialized[k]
        assert report.newly_initialized["fc.weight"] == "xavier_uniform"


def test_dry_run_changes_nothing(source_sd: dict[str, torch.Tensor]) -> None:
    model = seeded(2)
    before = snapshot(model)
    report = partial_load(model, source_sd, dry_run=True, init_new_layers="kaiming")
    assert report.ok
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_transfer_weights_touches_only_transferred(source_sd: dict[str, torch.Tensor]) -> None:
    target = seeded(2, num_classes=10)
    before = snapshot(target)
    report = transfer_weights(source_sd, target, include_patterns=[r"^layer[12]\."],
                              exclude_patterns=r"bn\d\.num_batches")
    after = target.state_dict()
    assert report.loaded and all(re.match(r"layer[12]\.", k) for k in report.loaded)
    assert report.adapted == {}
    assert not any(k.endswith("num_batches_tracked") and k.startswith("layer1.0.bn") for k in report.loaded)
    for k in after:
        if k in report.loaded:
            assert torch.equal(after[k], source_sd[k])
        else:
            assert torch.equal(after[k], before[k]), k  # bit for bit
    assert report.dropped["conv1.weight"] == "not transferred: matches no include pattern"
    assert report.dropped["layer1.0.bn1.num_batches_tracked"] == "not transferred: matches an exclude pattern"
    assert report.num_source_tensors == len(source_sd)


def test_transfer_weights_layer_mapping() -> None:
    torch.manual_seed(0)
    src = nn.Sequential()
    src.add_module("enc", nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    dst = nn.Sequential()
    dst.add_module("stem", nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    dst.add_module("enc", nn.Linear(2, 2))
    before = snapshot(dst)
    report = transfer_weights(src, dst, layer_mapping={"enc": "stem"})
    assert report.key_map_applied["enc.0.weight"] == "stem.0.weight"
    assert torch.equal(dst.stem[0].weight, src.enc[0].weight)
    assert torch.equal(dst.enc.weight, before["enc.weight"])
    with pytest.raises(WeightLoadingError, match=r"matches no transferred source key.*did you mean 'enc.0'"):
        transfer_weights(src, dst, layer_mapping={"enc.00": "stem"})
    with pytest.raises(WeightLoadingError, match=r"maps to no key of the target"):
        transfer_weights(src, dst, layer_mapping={"enc": "nowhere"})
    with pytest.raises(WeightLoadingError, match=r"invalid pattern"):
        transfer_weights(src, dst, include_patterns=["("])


def test_match_state_dict_exact_and_fuzzy() -> None:
    a = {"backbone.bn.weight": torch.zeros(4), "backbone.conv.weight": torch.zeros(4, 3, 3, 3),
         "fc.weight": torch.zeros(2, 4), "shared.bias": torch.zeros(4)}
    b = {"encoder.norm.weight": torch.zeros(4), "encoder.conv.weight": torch.zeros(4, 3, 3, 3),
         "fc.weight": torch.zeros(2, 4), "other.bias": torch.zeros(4), "other2.bias": torch.zeros(4)}
    assert match_state_dict(a, b) == {"fc.weight": "fc.weight"}
    fuzzy = match_state_dict(a, b, fuzzy=True)
    assert fuzzy == {"backbone.bn.weight": "encoder.norm.weight", "backbone.conv.weight": "encoder.conv.weight",
                     "fc.weight": "fc.weight", "shared.bias": "other2.bias"}  # closest relative position
    assert match_state_dict(a, b, fuzzy_match=True) == fuzzy  # the older release's keyword
    assert len(set(fuzzy.values())) == len(fuzzy)


def test_count_matching_params_and_layer_shapes() -> None:
    a = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    b = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(5))
    shapes = get_layer_shapes(a)
    assert shapes["0.weight"] == (4, 3) and shapes["1.running_mean"] == (4,)
    assert shapes["1.num_batches_tracked"] == ()
    matching, total, ratio = count_matching_params(a, b)
    assert (matching, total) == (3, 7) and ratio == pytest.approx(3 / 7)  # 0.w, 0.b, 1.num_batches_tracked
