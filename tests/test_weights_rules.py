"""Adaptation rules: each small function, and each rule applied by partial_load."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
import torchvision
from torch import nn
from torchvision.ops import FrozenBatchNorm2d as TvFrozenBN

from torchvision_customizer.errors import WeightLoadingError
from torchvision_customizer.layers import FrozenBatchNorm2d, GroupNorm, LayerNorm2d
from torchvision_customizer.weights import adapt_input_conv, partial_load
from torchvision_customizer.weights.rules import (
    can_adapt_input_conv,
    find_input_conv,
    init_tensor_,
    module_of,
    modules_to_keep_whole,
    norm_kind,
    norm_swap,
    resolve_input_conv_mode,
    source_norm_kind,
)


@functools.cache
def _resnet(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return torchvision.models.resnet18().eval()


def resnet(seed: int, in_chans: int = 3) -> nn.Module:
    model = copy.deepcopy(_resnet(seed))
    if in_chans != 3:
        model.conv1 = nn.Conv2d(in_chans, 64, 7, 2, 3, bias=False)
    return model.eval()


# ------------------------------------------------------------ input conv
def test_adapt_input_conv_modes_values() -> None:
    torch.manual_seed(0)
    w = torch.randn(8, 3, 3, 3)
    w0 = w.clone()
    s = adapt_input_conv(w, 1)
    assert s.shape == (8, 1, 3, 3) and torch.allclose(s[:, 0], w.sum(1))
    z = adapt_input_conv(w, 5)
    assert torch.equal(z[:, :3], w) and torch.equal(z[:, 3:], torch.zeros(8, 2, 3, 3))
    r = adapt_input_conv(w, 6, mode="repeat")
    assert torch.allclose(r[:, :3], w * 0.5) and torch.allclose(r[:, 3:], w * 0.5)
    r2 = adapt_input_conv(w, 2)  # auto: repeat for 2 channels
    assert torch.allclose(r2, w[:, :2] * 1.5)
    assert torch.equal(w, w0)  # pure: the input is untouched
    h = adapt_input_conv(w.half(), 4)
    assert h.dtype == torch.float16 and h.is_contiguous()


def test_adapt_input_conv_rejects_bad_input() -> None:
    w = torch.randn(8, 3, 3, 3)
    with pytest.raises(WeightLoadingError, match=r"did you mean 'repeat'"):
        adapt_input_conv(w, 4, mode="repeet")
    with pytest.raises(WeightLoadingError, match=r"expected in_chans=1"):
        adapt_input_conv(w, 4, mode="sum")
    with pytest.raises(WeightLoadingError, match=r"in_chans >= 3"):
        adapt_input_conv(w, 2, mode="zeros")
    with pytest.raises(WeightLoadingError, match=r"positive integer"):
        adapt_input_conv(w, 0)
    with pytest.raises(WeightLoadingError, match=r"RGB convolution kernel.*\(8, 4, 3, 3\)"):
        adapt_input_conv(torch.randn(8, 4, 3, 3), 1)
    assert resolve_input_conv_mode(1) == "sum" and resolve_input_conv_mode(7) == "zeros"
    assert can_adapt_input_conv((8, 3, 3, 3), (8, 4, 3, 3))
    assert not can_adapt_input_conv((8, 3, 3, 3), (9, 4, 3, 3))
    assert not can_adapt_input_conv((8, 4, 3, 3), (8, 1, 3, 3))


def test_four_channel_model_with_zero_fourth_channel_is_exactly_the_rgb_model() -> None:
    rgb = resnet(1)
    model4 = resnet(2, in_chans=4)
    report = partial_load(model4, rgb.state_dict())
    assert report.adapted == {"conv1.weight": "input_conv_zeros"} and report.ok
    assert report.load_ratio == 1.0
    x = torch.randn(2, 3, 32, 32)
    x4 = torch.cat([x, torch.zeros(2, 1, 32, 32)], dim=1)
    with torch.no_grad():
        assert torch.equal(model4(x4), rgb(x))


def test_one_channel_and_repeat_modes_keep_the_response() -> None:
    rgb = resnet(1)
    gray_model = resnet(2, in_chans=1)
    assert partial_load(gray_model, rgb.state_dict()).adapted == {"conv1.weight": "input_conv_sum"}
    six = resnet(2, in_chans=6)
    report = partial_load(six, rgb.state_dict(), input_conv_mode="repeat")
    assert report.adapted == {"conv1.weight": "input_conv_repeat"}
    x = torch.randn(2, 3, 32, 32)
    gray = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(gray_model(gray), rgb(gray.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(six(torch.cat([x, x], 1)), rgb(x), rtol=1e-4, atol=1e-5)


def test_input_conv_rule_off_and_only_for_the_first_conv() -> None:
    rgb = resnet(1)
    model4 = resnet(2, in_chans=4)
    report = partial_load(model4, rgb.state_dict(), adapt=False)
    assert report.shape_mismatched == [("conv1.weight", (64, 3, 7, 7), (64, 4, 7, 7))]
    assert find_input_conv(model4) == "conv1.weight"
    seq = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Conv2d(4, 8, 3))
    src = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Conv2d(3, 8, 3))
    report = partial_load(seq, src.state_dict())
    assert [m[0] for m in report.shape_mismatched] == ["1.weight"]  # not the first conv: no rule
    with pytest.raises(WeightLoadingError, match=r"unknown input_conv_mode"):
        partial_load(seq, src.state_dict(), input_conv_mode="tile")


# -------------------------------------------------------------- classifier
def test_classifier_of_other_size_is_reported_reinitialised_never_half_loaded() -> None:
    src = resnet(1)
    torch.manual_seed(3)
    model = torchvision.models.resnet18(num_classes=10)
    fc_before = model.fc.weight.clone(), model.fc.bias.clone()
    report = partial_load(model, src.state_dict(), init_new_layers="normal")
    assert [k for k, _, _ in report.shape_mismatched] == ["fc.weight", "fc.bias"]
    assert report.newly_initialized == {"fc.weight": "normal (std 0.01)", "fc.bias": "zeros (bias)"}
    assert not torch.equal(model.fc.weight, fc_before[0]) and torch.equal(model.fc.bias, torch.zeros(10))
    assert report.load_ratio == pytest.approx((len(model.state_dict()) - 2) / len(model.state_dict()))


def test_modules_to_keep_whole() -> None:
    assert modules_to_keep_whole(["fc.weight"], ["fc.bias", "conv.weight"]) == {"fc.bias": "fc.weight"}
    assert modules_to_keep_whole(["pos_embed"], ["cls_token"]) == {}  # root tensors are independent
    assert module_of("layer1.0.bn1.weight") == "layer1.0.bn1" and module_of("cls_token") == ""


# -------------------------------------------------------------------- norms
def test_norm_kind_and_source_kind() -> None:
    assert norm_kind(nn.BatchNorm2d(4)) == "batch"
    assert norm_kind(nn.BatchNorm2d(4, track_running_stats=False)) == "affine"
    assert norm_kind(FrozenBatchNorm2d(4)) == "frozen_batch" and norm_kind(TvFrozenBN(4)) == "frozen_batch"
    assert norm_kind(GroupNorm(4)) == "affine" and norm_kind(LayerNorm2d(4)) == "affine"
    assert norm_kind(nn.Conv2d(1, 1, 1)) is None
    keys = {"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"}
    assert source_norm_kind("bn", keys) == "batch"
    assert source_norm_kind("bn", keys - {"bn.num_batches_tracked"}) == "frozen_batch"
    assert source_norm_kind("bn", {"bn.weight", "bn.bias"}) == "affine"
    assert source_norm_kind("bn", {"x.weight"}) is None
    rule, drop, keep = norm_swap("batch", "affine", "GroupNorm", ["weight", "bias"])
    assert rule == "norm_swap:batch->GroupNorm" and set(drop) == {"num_batches_tracked", "running_mean",
                                                                  "running_var"} and keep == {}
    rule, drop, keep = norm_swap("frozen_batch", "batch", "BatchNorm2d", ["weight", "num_batches_tracked"])
    assert rule is None and drop == {} and set(keep) == {"num_batches_tracked"}


def test_checkpoint_without_batch_counters_loads_plainly() -> None:
    """torchvision's older .pth files predate num_batches_tracked: not a norm swap, nothing missing."""
    src = {k: v for k, v in resnet(1).state_dict().items() if not k.endswith("num_batches_tracked")}
    report = partial_load(resnet(2), src, strict=True)
    assert report.adapted == {} and len(report.loaded) == len(src) and report.ok
    assert all("no batch counter" in v for v in report.newly_initialized.values())


def _bn_net(norm: type) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), norm(8), nn.ReLU())


def _trained_bn_net() -> nn.Module:
    torch.manual_seed(0)
    net = _bn_net(nn.BatchNorm2d)
    with torch.no_grad():
        net[1].weight.uniform_(0.5, 1.5)
        net[1].bias.uniform_(-1, 1)
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
        net[1].num_batches_tracked.fill_(7)
    return net.eval()


def test_batchnorm_to_frozen_batchnorm_and_back() -> None:
    src = _trained_bn_net()
    frozen = _bn_net(FrozenBatchNorm2d).eval()
    report = partial_load(frozen, src.state_dict(), strict=True)
    rule = "norm_swap:batch->FrozenBatchNorm2d"
    assert report.adapted == {f"1.{k}": rule for k in ("weight", "bias", "running_mean", "running_var")}
    assert report.loaded == ["0.weight"] and report.dropped == {
        "1.num_batches_tracked": f"{rule}: FrozenBatchNorm2d has no batch counter"}
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(frozen(x), src(x))

    back = _bn_net(nn.BatchNorm2d)
    report = partial_load(back, frozen.state_dict(), strict=True)  # the counter is not "missing"
    assert report.adapted == {} and len(report.loaded) == 5  # same function: plainly loaded
    assert "no batch counter" in report.newly_initialized["1.num_batches_tracked"]
    assert torch.equal(back[1].running_var, src[1].running_var)


def test_batchnorm_to_groupnorm_affine_params() -> None:
    src = _trained_bn_net()
    gn = _bn_net(lambda c: GroupNorm(c, num_groups=2))
    report = partial_load(gn, src.state_dict(), strict=True)
    assert report.adapted == {"1.weight": "norm_swap:batch->GroupNorm", "1.bias": "norm_swap:batch->GroupNorm"}
    assert set(report.dropped) == {"1.running_mean", "1.running_var", "1.num_batches_tracked"}
    assert report.ok and report.unexpected == []
    assert torch.equal(gn[1].weight, src[1].weight) and torch.equal(gn[1].bias, src[1].bias)
    # and back: GroupNorm -> BatchNorm has no statistics to give; they are reported missing
    bn = _bn_net(nn.BatchNorm2d)
    report = partial_load(bn, gn.state_dict())
    assert report.missing == ["1.running_mean", "1.running_var"]
    assert "1.num_batches_tracked" not in report.missing


# ------------------------------------------------------------- init_tensor_
def test_init_tensor_rules() -> None:
    bn = nn.BatchNorm2d(4)
    for leaf, want in (("weight", 1.0), ("bias", 0.0), ("running_var", 1.0), ("running_mean", 0.0)):
        t = getattr(bn, leaf)
        with torch.no_grad():
            t.fill_(5)
        init_tensor_(t.data, bn, leaf, "zeros")
        assert torch.equal(t.data, torch.full((4,), want)), leaf
    ln = LayerNorm2d(4)
    with torch.no_grad():
        ln.weight.fill_(3)
    assert init_tensor_(ln.weight.data, ln, "weight", "zeros") == "ones (norm scale)"
    conv = nn.Conv2d(2, 4, 3)
    assert init_tensor_(conv.weight.data, conv, "weight", "xavier") == "xavier_uniform"
    assert init_tensor_(conv.bias.data, conv, "bias", "kaiming") == "zeros (bias)"
    gamma = nn.Parameter(torch.full((4,), 1e-5))
    holder = nn.Module()
    holder.gamma = gamma
    assert init_tensor_(gamma.data, holder, "gamma", "zeros").startswith("model init (kept")
    assert torch.equal(gamma.data, torch.full((4,), 1e-5))
    with pytest.raises(WeightLoadingError, match=r"did you mean 'xavier'"):
        init_tensor_(conv.weight.data, conv, "weight", "xavir")
