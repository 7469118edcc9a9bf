"""Activation, norm and pool factories; the legacy keyword table; bad input to blocks."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from torchvision_customizer import registry
from torchvision_customizer.blocks import LEGACY_KWARGS, ResidualBlock, SEBlock
from torchvision_customizer.errors import BlockArgumentError, BlockValueError, UnknownComponentError
from torchvision_customizer.layers import (
    FrozenBatchNorm2d,
    GroupNorm,
    LayerNorm2d,
    create_act,
    create_norm,
    create_pool,
    get_activation,
    get_normalization,
    get_pooling,
)

ACTS = registry.list(category="activation")
NORMS = registry.list(category="norm")


def test_every_documented_activation_and_norm_is_registered() -> None:
    documented = {"relu", "relu6", "leaky_relu", "prelu", "elu", "selu", "gelu", "silu", "mish", "hard_swish",
                  "hard_sigmoid", "sigmoid", "tanh", "identity"}
    assert documented <= set(ACTS)
    assert {"batch", "group", "layer", "instance", "frozen_batch", "none"} <= set(NORMS)
    assert registry.get("swish") is nn.SiLU and registry.get("bn") is nn.BatchNorm2d


@pytest.mark.parametrize("name", ACTS)
def test_activation_by_name_runs(name: str) -> None:
    act = create_act(name, inplace=True)
    x = torch.randn(2, 4, 3, 3)
    assert act(x.clone()).shape == x.shape


def test_activation_accepts_class_callable_and_rejects_unknown() -> None:
    assert isinstance(create_act(nn.GELU), nn.GELU)
    leaky = create_act(functools.partial(nn.LeakyReLU, 0.2))
    assert leaky.negative_slope == 0.2
    assert isinstance(create_act(None), nn.Identity)
    assert isinstance(get_activation("swish"), nn.SiLU)
    with pytest.raises(UnknownComponentError, match=r"'swishh'.*did you mean 'swish'"):
        create_act("swishh")
    with pytest.raises(BlockArgumentError, match="not a module instance"):
        create_act(nn.ReLU())


@pytest.mark.parametrize("name", NORMS)
def test_norm_by_name_works_on_nchw(name: str) -> None:
    norm = create_norm(name, 64).train()
    x = torch.randn(2, 64, 5, 5)
    assert norm(x).shape == x.shape


def test_layer_norm_is_channels_first_and_matches_manual() -> None:
    norm = get_normalization("layer", 8)
    assert isinstance(norm, LayerNorm2d)
    x = torch.randn(2, 8, 4, 4)
    mean = x.mean(1, keepdim=True)
    var = x.var(1, keepdim=True, unbiased=False)
    torch.testing.assert_close(norm(x), (x - mean) / torch.sqrt(var + norm.eps))
    assert isinstance(create_norm(nn.LayerNorm, 8), LayerNorm2d)  # torch class mapped, works on NCHW


def test_group_norm_rules() -> None:
    assert create_norm("group", 64).num_groups == 32
    assert create_norm("gn", 48).num_groups == 24  # largest divisor of 48 not above 32
    assert create_norm(functools.partial(GroupNorm, num_groups=4), 16).num_groups == 4
    with pytest.raises(BlockValueError, match="divisor of 30"):
        GroupNorm(30, num_groups=4)


def test_frozen_batchnorm_matches_batchnorm_eval_and_loads_its_state() -> None:
    bn = nn.BatchNorm2d(6)
    bn.train()(torch.randn(8, 6, 4, 4) * 3 + 1)  # non-trivial statistics
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    frozen = FrozenBatchNorm2d(6)
    frozen.load_state_dict(bn.state_dict())  # num_batches_tracked is accepted and dropped
    x = torch.randn(2, 6, 4, 4)
    torch.testing.assert_close(frozen(x), bn.eval()(x))
    assert not list(frozen.parameters())


def test_pools() -> None:
    x = torch.rand(2, 5, 4, 4) + 0.1
    torch.testing.assert_close(create_pool("avg")(x), x.mean((2, 3), keepdim=True))
    torch.testing.assert_close(create_pool("max", flatten=True)(x), x.amax((2, 3)))
    gem = create_pool("gem", p=1.0, learnable=False)
    torch.testing.assert_close(gem(x), x.mean((2, 3), keepdim=True))
    assert isinstance(get_pooling("max", 2), nn.MaxPool2d)
    assert get_pooling("adaptive_avg", output_size=2)(x).shape == (2, 5, 2, 2)
    assert isinstance(create_pool(None), nn.Identity)
    with pytest.raises(UnknownComponentError, match="'avgg'"):
        create_pool("avgg")


def test_legacy_keyword_names_are_translated() -> None:
    old = ResidualBlock(16, 32, activation="swish", norm_type="group", use_se=True, se_reduction=8)
    new = ResidualBlock(16, 32, act_layer="swish", norm_layer="group", attn_layer="se", se_ratio=1 / 8)
    assert str(old) == str(new)
    assert isinstance(old.act1, nn.SiLU) and isinstance(old.bn1, GroupNorm)
    assert isinstance(ResidualBlock(8, use_batchnorm=False).bn1, nn.Identity)
    se = SEBlock(channels=64, reduction=16, rd_divisor=1)
    assert se.fc1.out_channels == 4
    assert {"activation", "norm_type", "use_batchnorm", "reduction", "se_reduction"} <= set(LEGACY_KWARGS)


def test_unknown_and_duplicate_arguments_raise_with_accepted_names() -> None:
    with pytest.raises(BlockArgumentError, match=r"unexpected argument 'strid'.*did you mean 'stride'"):
        ResidualBlock(16, strid=2)
    with pytest.raises(TypeError):  # BlockArgumentError is a TypeError
        SEBlock(16, bogus=1)
    with pytest.raises(BlockArgumentError, match="twice"):
        ResidualBlock(16, activation="relu", act_layer="gelu")
    with pytest.raises(BlockArgumentError, match="in_channels"):
        ResidualBlock()  # missing required argument


@pytest.mark.parametrize(
    ("ctor", "match"),
    [
        (lambda: registry.create("conv", 0, 8), r"in_channels.*got 0"),
        (lambda: registry.create("conv", 8, -4), r"out_channels.*got -4"),
        (lambda: registry.create("conv", 8, 8, kernel_size=4), r"kernel_size.*odd.*got 4"),
        (lambda: SEBlock(8, reduction=32), r"reduction is larger than the number of channels.*got 32"),
        (lambda: registry.create("conv", 8, 8, dropout=1.5), r"dropout.*got 1.5"),
        (lambda: registry.create("bottleneck", 16, 30), r"multiple of 4.*got 30"),
        (lambda: registry.create("conv", 8, 8, stride=1.5), r"stride.*int.*got 1.5"),
    ],
)
def test_impossible_values_raise_with_the_value(ctor, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises((BlockValueError, BlockArgumentError), match=match):
        ctor()
