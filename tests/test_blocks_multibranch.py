"""Behaviour tests of the residual-variant, multi-branch, regularization and pooling blocks.

Paper semantics against timm / torchvision reference modules (same parameter count, and the same
output after loading the reference's weights), the documented defaults, legacy keywords and the
errors for impossible arguments.
"""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchvision_customizer import registry
from torchvision_customizer.blocks.dense import DenseConnectionBlock
from torchvision_customizer.blocks.dropblock import DropBlock
from torchvision_customizer.blocks.dropout import Dropout
from torchvision_customizer.blocks.inception import InceptionModule
from torchvision_customizer.blocks.layer_scale import LayerScale
from torchvision_customizer.blocks.pooling import AvgMaxPoolBlock, AvgPoolBlock, GeMPool, MaxPoolBlock
from torchvision_customizer.blocks.preact_residual import PreActResidualBlock
from torchvision_customizer.blocks.res2net import Res2NetBottleneck
from torchvision_customizer.blocks.transition import TransitionLayer
from torchvision_customizer.errors import BlockArgumentError, BlockValueError


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def randomize(m: nn.Module) -> nn.Module:
    """Random weights and norm statistics, so that a weight-loading comparison means something."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.1)
        for name, b in m.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0, 0.1)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
    return m.eval()


@pytest.mark.parametrize(("name", "cls"), [
    ("preact_residual", PreActResidualBlock), ("preact", PreActResidualBlock), ("preact_block", PreActResidualBlock),
    ("res2net", Res2NetBottleneck), ("res2net_block", Res2NetBottleneck), ("res2net_bottleneck", Res2NetBottleneck),
    ("inception", InceptionModule), ("inception_module", InceptionModule), ("inceptionmodule", InceptionModule),
    ("dense", DenseConnectionBlock), ("dense_block", DenseConnectionBlock), ("denseblock", DenseConnectionBlock),
    ("densenet", DenseConnectionBlock), ("denseconnectionblock", DenseConnectionBlock),
    ("transition", TransitionLayer), ("dense_transition", TransitionLayer), ("transition_layer", TransitionLayer),
    ("dropblock", DropBlock), ("DropBlock", DropBlock), ("drop_block", DropBlock),
    ("dropout", Dropout), ("dropout2d", Dropout), ("channel_dropout", Dropout),
    ("layer_scale", LayerScale), ("layerscale", LayerScale),
    ("gem", GeMPool), ("generalized_mean", GeMPool), ("gem_pool", GeMPool),
    ("avg_pool", AvgPoolBlock), ("avgpool", AvgPoolBlock), ("average_pool", AvgPoolBlock),
    ("max_pool", MaxPoolBlock), ("maxpool", MaxPoolBlock),
    ("avgmax_pool", AvgMaxPoolBlock), ("avg_max_pool", AvgMaxPoolBlock), ("adaptive_avgmax", AvgMaxPoolBlock),
])
def test_names_and_aliases(name: str, cls: type) -> None:
    assert registry.get(name) is cls


# --- configurations the registry-wide tests do not reach, under the graph backends -------------------

GRAPH_CASES = [
    lambda: PreActResidualBlock(16, 32, stride=2, attn_layer="se", se_ratio=0.25),
    lambda: Res2NetBottleneck(16, 64, stride=2),
    lambda: Res2NetBottleneck(64, 64, scale=1),
    lambda: InceptionModule(16, 8, 4, 8, 2, 4, 4),
    lambda: DenseConnectionBlock(16, num_layers=2, growth_rate=8, dropout=0.2),
    lambda: TransitionLayer(16, 24),
    lambda: MaxPoolBlock(16, kernel_size=3, stride=2, padding=1),
]


@pytest.mark.parametrize("make", GRAPH_CASES)
def test_graph_backends_on_other_configurations(make) -> None:  # type: ignore[no-untyped-def]
    block = randomize(make())
    x = torch.randn(2, block.in_channels, 8, 8)
    with torch.no_grad():
        y = block(x)
        torch.testing.assert_close(torch.fx.symbolic_trace(block)(x), y, rtol=0, atol=0)
        torch.testing.assert_close(torch.export.export(block, (x,)).module()(x), y, rtol=1e-5, atol=1e-5)
        torch._dynamo.reset()
        compiled = torch.compile(block, backend="eager", fullgraph=True)
        torch.testing.assert_close(compiled(x), y, rtol=1e-5, atol=1e-5)
    assert y.shape[1] == block.out_channels
    assert y.shape[-1] == -(-8 // block.stride)


# --- preact_residual ------------------------------------------------------------------------------------

def _timm_conv(cin: int, cout: int, k: int, stride: int = 1, dilation: int | None = 1, groups: int = 1,
               **kw: object) -> nn.Conv2d:
    dilation = dilation or 1
    return nn.Conv2d(cin, cout, k, stride, padding=k // 2 * dilation, dilation=dilation, groups=groups,
                     bias=False, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("cin", "cout", "stride"), [(64, 128, 2), (64, 64, 1), (32, 64, 1)])
def test_preact_matches_timm_preact_basic(cin: int, cout: int, stride: int) -> None:
    resnetv2 = pytest.importorskip("timm.models.resnetv2")
    from timm.layers import BatchNormAct2d

    ref = resnetv2.PreActBasic(cin, cout, stride=stride, conv_layer=_timm_conv, norm_layer=BatchNormAct2d,
                               proj_layer=functools.partial(resnetv2.DownsampleConv, preact=True,
                                                            conv_layer=_timm_conv))
    ours = PreActResidualBlock(cin, cout, stride=stride)
    assert n_params(ours) == n_params(ref)
    randomize(ref)
    renamed = {k.replace("norm1", "bn1").replace("norm2", "bn2").replace("downsample.conv", "downsample"): v
               for k, v in ref.state_dict().items()}
    ours.load_state_dict(renamed)
    x = torch.randn(2, cin, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), ref(x))


def test_preact_shortcut_is_raw_input_or_projection_of_preactivated_input() -> None:
    block = randomize(PreActResidualBlock(8, zero_init_last=True))
    block.reset_parameters()
    block.eval()
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)  # zero conv2: exactly the identity, no trailing activation
    proj = randomize(PreActResidualBlock(8, 16, stride=2, zero_init_last=True))
    proj.reset_parameters()
    proj.eval()
    with torch.no_grad():
        expected = proj.downsample(F.relu(proj.bn1(x)))
        torch.testing.assert_close(proj(x), expected)
    assert proj.downsample.kernel_size == (1, 1) and proj.downsample.bias is None


def test_preact_without_norm_leaves_the_input_untouched() -> None:
    block = PreActResidualBlock(8, norm_layer=None).eval()
    x = torch.randn(1, 8, 5, 5)
    x0 = x.clone()
    block(x)
    assert torch.equal(x, x0)


def test_preact_errors() -> None:
    with pytest.raises(BlockValueError, match="projection"):
        PreActResidualBlock(8, 16, downsample=False)
    with pytest.raises(BlockValueError, match="stride"):
        PreActResidualBlock(8, stride=0)
    assert PreActResidualBlock(8, downsample=True).downsample is not None
    assert PreActResidualBlock(8, use_downsample=True).downsample is not None  # legacy keyword


# --- res2net ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("cin", "stride"), [(256, 1), (64, 1), (64, 2), (256, 2)])
def test_res2net_matches_timm_bottle2neck(cin: int, stride: int) -> None:
    res2net = pytest.importorskip("timm.models.res2net")
    ds = None
    if stride != 1 or cin != 256:
        ds = nn.Sequential(nn.Conv2d(cin, 256, 1, stride, bias=False), nn.BatchNorm2d(256))
    ref = res2net.Bottle2neck(cin, 64, stride=stride, downsample=ds, base_width=26, scale=4,
                              norm_layer=nn.BatchNorm2d)
    ours = Res2NetBottleneck(cin, 256, stride=stride)
    assert n_params(ours) == n_params(ref)
    assert ours.width == 26 and ours.is_stage == (ds is not None)
    randomize(ref)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, cin, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), ref(x))


def test_res2net_hierarchy_by_hand() -> None:
    """y1 = K1(x1), y2 = K2(x2 + y1), y3 = K3(x3 + y2), y4 = x4 (no norm, identity activation)."""
    block = Res2NetBottleneck(8, 8, scale=4, base_width=128, expansion=4, norm_layer=None, act_layer=None)
    assert block.width == 4
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        mid = block.conv1(x)
        x1, x2, x3, x4 = mid.split(4, 1)
        y1 = block.convs[0](x1)
        y2 = block.convs[1](x2 + y1)
        y3 = block.convs[2](x3 + y2)
        expected = block.conv3(torch.cat([y1, y2, y3, x4], 1)) + x
        torch.testing.assert_close(block(x), expected)


def test_res2net_stage_block_pools_the_last_split() -> None:
    block = Res2NetBottleneck(16, 64, stride=2)
    assert isinstance(block.pool, nn.AvgPool2d) and block.pool.stride == 2
    assert isinstance(Res2NetBottleneck(64, 64).pool, nn.Identity)
    assert Res2NetBottleneck(16, 64, stride=2)(torch.randn(1, 16, 9, 9)).shape == (1, 64, 5, 5)


def test_res2net_errors() -> None:
    with pytest.raises(BlockValueError, match="expansion") as err:
        Res2NetBottleneck(16, 30)
    assert "30" in str(err.value)
    with pytest.raises(BlockValueError, match="split width") as err:
        Res2NetBottleneck(16, 8, base_width=10)
    assert "10" in str(err.value)
    with pytest.raises(BlockValueError, match="scale"):
        Res2NetBottleneck(16, scale=0)


# --- inception ------------------------------------------------------------------------------------------

def test_inception_matches_torchvision_googlenet_inception() -> None:
    googlenet = pytest.importorskip("torchvision.models.googlenet")
    ref = googlenet.Inception(192, 64, 96, 128, 16, 32, 32)
    ours = InceptionModule(192, 64, 96, 128, 16, 32, 32, kernel_5x5=3,
                           norm_layer=functools.partial(nn.BatchNorm2d, eps=1e-3))
    assert n_params(ours) == n_params(ref) == 155872
    assert ours.out_channels == 256
    randomize(ref)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 192, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), ref(x))
    # the paper's real 5x5 kernel: only the 16 -> 32 convolution grows (25 vs 9 taps)
    paper = InceptionModule(192, 64, 96, 128, 16, 32, 32)
    assert n_params(paper) - n_params(ours) == 16 * 32 * (25 - 9)


def test_inception_default_branch_rules() -> None:
    m = InceptionModule(64)
    assert m.branch_channels == (16, 16, 16, 16) and m.out_channels == 64
    assert m.branch2[0].conv.out_channels == 8 and m.branch3[0].conv.out_channels == 8
    m = InceptionModule(16, out_channels=32)
    assert m.branch_channels == (8, 8, 8, 8) and m.out_channels == 32
    assert m.branch2[0].conv.out_channels == 4
    m = InceptionModule(16, out_1x1=10)  # partial: the rest from in_channels // 4
    assert m.branch_channels == (10, 4, 4, 4) and m.out_channels == 22
    assert m(torch.randn(1, 16, 7, 7)).shape == (1, 22, 7, 7)
    m = InceptionModule(3)
    assert m.branch_channels == (1, 1, 1, 1) and m.branch3[0].conv.out_channels == 1


def test_inception_errors() -> None:
    with pytest.raises(BlockArgumentError, match="not both") as err:
        InceptionModule(16, out_1x1=8, out_channels=32)
    assert "out_1x1" in str(err.value)
    with pytest.raises(BlockValueError, match="multiple of 4") as err:
        InceptionModule(16, out_channels=30)
    assert "30" in str(err.value)
    with pytest.raises(BlockValueError, match="odd"):
        InceptionModule(16, kernel_5x5=4)
    with pytest.raises(BlockValueError, match="red_3x3"):
        InceptionModule(16, red_3x3=0)


# --- dense / transition -------------------------------------------------------------------------------

def test_dense_block_matches_torchvision() -> None:
    densenet = pytest.importorskip("torchvision.models.densenet")
    ref = densenet._DenseBlock(num_layers=6, num_input_features=64, bn_size=4, growth_rate=32, drop_rate=0)
    ours = DenseConnectionBlock(64, num_layers=6, growth_rate=32, bn_size=4)
    assert n_params(ours) == n_params(ref)
    assert ours.out_channels == 64 + 6 * 32
    randomize(ref)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        out = ours.eval()(x)
        torch.testing.assert_close(out, ref(x))
    assert torch.equal(out[:, :64], x)  # the input passes through as the first channels


def test_dense_legacy_keyword_calls() -> None:
    block = DenseConnectionBlock(num_layers=3, in_channels=24, growth_rate=8, dropout_rate=0.1)
    assert block.in_channels == 24 and block.out_channels == 48
    assert isinstance(block.denselayer3.drop, nn.Dropout) and block.denselayer3.drop.p == 0.1
    assert block.denselayer3.conv1.in_channels == 24 + 2 * 8


def test_dense_errors() -> None:
    with pytest.raises(BlockValueError, match="num_layers"):
        DenseConnectionBlock(16, num_layers=0)
    with pytest.raises(BlockValueError, match="dropout"):
        DenseConnectionBlock(16, dropout=1.0)


def test_transition_matches_torchvision() -> None:
    densenet = pytest.importorskip("torchvision.models.densenet")
    ref = densenet._Transition(256, 128)
    ours = TransitionLayer(256)
    assert ours.out_channels == 128 and ours.stride == 2
    assert n_params(ours) == n_params(ref)
    randomize(ref)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 256, 9, 9)  # odd size: both floor to 4x4
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), ref(x), rtol=1e-5, atol=1e-5)


def test_transition_options_and_errors() -> None:
    assert TransitionLayer(10, compression=0.3).out_channels == 3
    assert TransitionLayer(16, 8, stride=1)(torch.randn(1, 16, 5, 5)).shape == (1, 8, 5, 5)
    with pytest.raises(BlockValueError, match="no channel") as err:
        TransitionLayer(1)
    assert "0.5" in str(err.value)
    with pytest.raises(BlockValueError, match="compression"):
        TransitionLayer(16, compression=1.5)


# --- dropblock / dropout --------------------------------------------------------------------------------

def test_dropblock_identity_in_eval_and_at_zero() -> None:
    x = torch.randn(2, 4, 9, 9)
    assert DropBlock(4, drop_prob=0.5).eval()(x) is x
    assert DropBlock(4, drop_prob=0.0).train()(x) is x


def test_dropblock_drops_squares_and_normalizes() -> None:
    torch.manual_seed(0)
    block = DropBlock(drop_prob=0.2, block_size=5).train()
    x = torch.ones(4, 8, 64, 64)
    y = block(x)
    assert y.shape == x.shape
    dropped = y == 0
    rate = dropped.float().mean().item()
    assert 0.12 < rate < 0.22  # ~drop_prob inside, less near the borders
    # normalisation: kept activations rescaled so the mean is preserved exactly
    torch.testing.assert_close(y.mean(), torch.tensor(1.0))
    kept = y[~dropped]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / (1 - rate)), rtol=1e-4, atol=1e-4)
    # every dropped pixel lies in a dropped 5x5 square: eroding and re-dilating the mask keeps it
    d = dropped.float()
    eroded = -F.max_pool2d(-F.pad(d, (2, 2, 2, 2), value=1.0), 5, 1)
    reopened = F.max_pool2d(eroded, 5, 1, padding=2)
    assert torch.equal(reopened, d)


def test_dropblock_single_seed_makes_one_square() -> None:
    seeds = torch.zeros(1, 1, 9, 9)
    seeds[0, 0, 4, 4] = 1
    mask = F.max_pool2d(seeds, 3, 1, padding=1)
    assert mask.sum() == 9  # what drop_block grows each seed into
    block = DropBlock(drop_prob=0.999, block_size=3).train()
    assert block(torch.ones(1, 2, 3, 3)).shape == (1, 2, 3, 3)  # any size, even smaller than a block


def test_dropblock_errors() -> None:
    with pytest.raises(BlockValueError, match="odd") as err:
        DropBlock(block_size=4)
    assert "4" in str(err.value)
    with pytest.raises(BlockValueError, match="drop_prob"):
        DropBlock(drop_prob=1.0)
    with pytest.raises(BlockValueError, match="in_channels"):
        DropBlock(0)


def test_dropout_modes() -> None:
    torch.manual_seed(0)
    x = torch.ones(4, 32, 6, 6)
    assert torch.equal(Dropout(32, p=0.5).eval()(x), x)
    y = Dropout(32, p=0.5).train()(x)
    per_channel = y.flatten(2)
    assert ((per_channel == 0).all(-1) | (per_channel == 2).all(-1)).all()  # whole channels, scaled 1/(1-p)
    y = Dropout(p=0.5, channelwise=False).train()(x)
    per_channel = y.flatten(2)
    assert not ((per_channel == 0).all(-1) | (per_channel == 2).all(-1)).all()
    assert set(y.unique().tolist()) == {0.0, 2.0}
    assert isinstance(Dropout(p=0.1).drop, nn.Dropout2d)
    with pytest.raises(BlockValueError, match="p") as err:
        Dropout(p=1.5)
    assert "1.5" in str(err.value)


# --- layer_scale ----------------------------------------------------------------------------------------

def test_layer_scale_semantics_and_legacy_names() -> None:
    block = LayerScale(8)
    assert torch.equal(block.gamma, torch.full((8,), 1e-5))
    x = torch.randn(2, 8, 3, 3)
    with torch.no_grad():
        block.gamma.copy_(torch.arange(8.0))
    torch.testing.assert_close(block(x), x * torch.arange(8.0).view(1, 8, 1, 1))
    legacy = LayerScale(dim=8, init_value=0.1)
    assert legacy.in_channels == 8 and torch.allclose(legacy.gamma, torch.full((8,), 0.1))
    assert LayerScale(channels=4).in_channels == 4


def test_layer_scale_matches_timm_layerscale2d() -> None:
    layers = pytest.importorskip("timm.layers")
    ref = layers.LayerScale2d(16, init_values=1e-5)
    ours = LayerScale(16)
    assert n_params(ours) == n_params(ref)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 16, 4, 4)
    torch.testing.assert_close(ours(x), ref(x))


def test_layer_scale_meta_reset_restores_init_values() -> None:
    block = LayerScale(8, init_values=0.25, device="meta").to_empty(device="cpu")
    block.reset_parameters()
    assert torch.equal(block.gamma, torch.full((8,), 0.25))


# --- pooling --------------------------------------------------------------------------------------------

def test_gem_pool_reuses_layers_gem() -> None:
    from torchvision_customizer.layers import GeM

    x = torch.rand(2, 16, 8, 8)
    block = GeMPool(16, p=4.0)
    assert isinstance(block.pool, GeM) and block.output_size == 1
    torch.testing.assert_close(block(x), GeM(p=4.0)(x))
    torch.testing.assert_close(block(x), x.clamp(min=1e-6).pow(4).mean((2, 3), keepdim=True).pow(0.25))
    assert [n for n, _ in block.named_parameters()] == ["pool.p"]
    fixed = GeMPool(16, learnable=False)
    assert not list(fixed.parameters()) and "pool.p" in dict(fixed.named_buffers())
    torch.testing.assert_close(GeMPool(16, p=1.0)(x), x.mean((2, 3), keepdim=True))


def test_top_level_gem_is_still_the_layer() -> None:
    import torchvision_customizer as tvc
    from torchvision_customizer.layers.pools import GeM

    assert tvc.GeM is GeM
    import torchvision_customizer.blocks as blocks

    assert "GeM" not in blocks.__all__


def test_local_pools() -> None:
    x = torch.randn(2, 16, 9, 9)
    avg = AvgPoolBlock(16)
    assert avg.stride == 2
    torch.testing.assert_close(avg(x), F.avg_pool2d(x, 2))
    avg = AvgPoolBlock(16, kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
    torch.testing.assert_close(avg(x), F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False))
    mx = MaxPoolBlock(16, kernel_size=3, stride=2, padding=1)
    assert mx.stride == 2
    torch.testing.assert_close(mx(x), F.max_pool2d(x, 3, 2, 1))
    assert MaxPoolBlock(channels=16, kernel_size=3).stride == 3
    with pytest.raises(BlockValueError, match="padding") as err:
        MaxPoolBlock(16, kernel_size=2, padding=2)
    assert "2" in str(err.value)
    with pytest.raises(BlockValueError, match="stride"):
        AvgPoolBlock(16, stride=0)


def test_avgmax_pool() -> None:
    x = torch.randn(2, 16, 5, 7)
    block = AvgMaxPoolBlock(16)
    assert block.output_size == 1 and block.out_channels == 16
    torch.testing.assert_close(block(x), 0.5 * (x.mean((2, 3), keepdim=True) + x.amax((2, 3), keepdim=True)))
