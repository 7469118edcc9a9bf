"""Behaviour tests for the convolution / mobile / multi-branch blocks.

depthwise, coord_conv, conv3d, blur_pool, mbconv, fused_mbconv, convnext_block, ghost_bottleneck,
repvgg, shuffle_block, fire: paper semantics, parameter counts and outputs against the
torchvision / timm equivalents (weights copied across), legacy keywords, bad-input errors.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchvision_customizer import registry
from torchvision_customizer.blocks import (
    BlurPoolConv,
    Conv3DBlock,
    ConvNeXtBlock,
    CoordConv,
    DepthwiseBlock,
    FireModule,
    FusedMBConv,
    GhostBottleneck,
    MBConv,
    RepVGGBlock,
    SEBlock,
    ShuffleBlock,
    channel_shuffle,
)
from torchvision_customizer.errors import BlockArgumentError, BlockValueError

tv_effnet = pytest.importorskip("torchvision.models.efficientnet")


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def randomize_bn(m: nn.Module) -> None:
    """Non-trivial BN statistics and affine parameters, so eval-mode comparisons mean something."""
    g = torch.Generator().manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
                mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
                if mod.weight is not None:
                    mod.weight.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
                    mod.bias.copy_(torch.randn(mod.num_features, generator=g) * 0.1)


def copy_in_order(src: nn.Module, dst: nn.Module) -> None:
    """Copy ``src``'s state dict into ``dst`` tensor by tensor, in registration order (same numel)."""
    s = [v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")]
    d = [(k, v) for k, v in dst.state_dict().items() if not k.endswith("num_batches_tracked")]
    assert len(s) == len(d), (len(s), len(d))
    new = {}
    for v, (k, w) in zip(s, d):
        assert v.numel() == w.numel(), (k, v.shape, w.shape)
        new[k] = v.reshape(w.shape).clone()
    dst.load_state_dict(new, strict=False)


def assert_same_function(ref: nn.Module, ours: nn.Module, x: torch.Tensor, atol: float = 1e-5) -> None:
    randomize_bn(ref)
    copy_in_order(ref, ours)
    ref.eval()
    ours.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=atol)


# ----------------------------------------------------------------------------- depthwise
def test_depthwise_structure_and_timm_param_count() -> None:
    from timm.models._efficientnet_blocks import DepthwiseSeparableConv

    ours = DepthwiseBlock(16, 32, stride=2)
    ref = DepthwiseSeparableConv(16, 32, dw_kernel_size=3, stride=2, pw_act=True)
    assert n_params(ours) == n_params(ref)
    assert ours.conv_dw.conv.groups == 16 and ours.conv_dw.conv.stride == (2, 2)
    assert ours(torch.randn(2, 16, 9, 9)).shape == (2, 32, 5, 5)


def test_depthwise_residual_and_legacy_add_residual() -> None:
    block = DepthwiseBlock(16, add_residual=True, activation="relu6", norm_type="batch").eval()
    assert block.has_skip and isinstance(block.conv_pw.act, nn.ReLU6)
    nn.init.zeros_(block.conv_pw.bn.weight)  # the branch now outputs relu6(0) = 0
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(block(x), x)
    with pytest.raises(BlockValueError, match="stride=2"):
        DepthwiseBlock(16, 16, stride=2, residual=True)
    with pytest.raises(BlockValueError, match="out_channels=32"):
        DepthwiseBlock(16, 32, residual=True)
    with pytest.raises(BlockValueError, match="4"):
        DepthwiseBlock(16, kernel_size=4)


# ----------------------------------------------------------------------------- coord_conv
def test_coord_conv_coordinate_channels() -> None:
    block = CoordConv(3, 8, with_r=True)
    x = torch.zeros(2, 3, 5, 7)
    c = block.add_coords(x)
    assert c.shape == (2, 6, 5, 7)
    xs, ys, r = c[:, 3], c[:, 4], c[:, 5]
    torch.testing.assert_close(xs[0, 0], torch.linspace(-1, 1, 7))  # x varies along the width
    torch.testing.assert_close(ys[0, :, 0], torch.linspace(-1, 1, 5))  # y along the height
    torch.testing.assert_close(r, torch.sqrt(xs**2 + ys**2))
    assert r[0, 2, 3].abs() < 1e-6  # centre
    assert block.conv.in_channels == 6 and CoordConv(3, 8).conv.in_channels == 5
    assert block(torch.randn(2, 3, 5, 7)).shape == (2, 8, 5, 7)
    assert CoordConv(3, 8, stride=2)(torch.randn(1, 3, 9, 9)).shape == (1, 8, 5, 5)


def test_coord_conv_sees_position() -> None:
    block = CoordConv(1, 1, kernel_size=1, norm_layer=None, act_layer=None)
    with torch.no_grad():
        block.conv.weight.zero_()
        block.conv.bias.zero_()
        block.conv.weight[0, 1] = 1.0  # read the x-coordinate channel only
    y = block(torch.zeros(1, 1, 4, 4))
    torch.testing.assert_close(y[0, 0, 0], torch.linspace(-1, 1, 4))


def test_coord_conv_dynamic_shapes() -> None:
    block = CoordConv(4, 8, with_r=True).eval()
    torch.testing.assert_close(block.add_coords(torch.zeros(1, 1, 1, 3))[0, 2, 0], torch.full((3,), -1.0))
    dim = torch.export.Dim
    program = torch.export.export(block, (torch.randn(2, 4, 8, 8),),
                                  dynamic_shapes={"x": {2: dim("h", min=2, max=64), 3: dim("w", min=2, max=64)}})
    x = torch.randn(2, 4, 5, 11)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), block(x))


def test_coord_conv_dtype_and_legacy_alias() -> None:
    block = registry.get("coordinate_conv")(4, 8, kernel=5).double()
    assert block.conv.kernel_size == (5, 5)
    assert block(torch.randn(1, 4, 6, 6, dtype=torch.float64)).dtype == torch.float64


# ----------------------------------------------------------------------------- conv3d
def test_conv3d_shapes_and_norms() -> None:
    assert Conv3DBlock.input_ndim == 5
    assert Conv3DBlock(16, 32, stride=2)(torch.randn(2, 16, 4, 8, 8)).shape == (2, 32, 2, 4, 4)
    assert isinstance(Conv3DBlock(16).bn, nn.BatchNorm3d)
    assert isinstance(Conv3DBlock(16, norm_layer="group").bn, nn.GroupNorm)
    inst = Conv3DBlock(16, norm_layer="instance").bn
    assert isinstance(inst, nn.InstanceNorm3d) and inst.affine
    assert isinstance(Conv3DBlock(16, norm_layer=None).bn, nn.Identity)
    assert Conv3DBlock(16, norm_layer=None).conv.bias is not None
    assert isinstance(Conv3DBlock(16, norm_layer=nn.BatchNorm2d).bn, nn.BatchNorm3d)
    with pytest.raises(BlockValueError, match="'layer'") as err:
        Conv3DBlock(16, norm_layer="layer")
    assert "'batch', 'group', 'instance'" in str(err.value)
    with pytest.raises(BlockValueError, match="4"):
        Conv3DBlock(16, kernel_size=4)


# ----------------------------------------------------------------------------- blur_pool
def test_blur_pool_filter_and_meta_reset() -> None:
    block = BlurPoolConv(16, 8)
    expected = torch.tensor([1.0, 2.0, 1.0])
    expected = torch.outer(expected, expected) / 16
    torch.testing.assert_close(block.filt[3, 0], expected)
    meta = BlurPoolConv(16, 8, device="meta").to_empty(device="cpu")
    meta.reset_parameters()
    torch.testing.assert_close(meta.filt, block.filt)
    assert "filt" not in block.state_dict()  # a constant, not a weight


def _identity_blur(channels: int, **kwargs) -> BlurPoolConv:
    block = BlurPoolConv(channels, kernel_size=1, norm_layer=None, act_layer=None, **kwargs)
    with torch.no_grad():  # the convolution is the identity, so the block is just the blur
        block.conv.weight.copy_(torch.eye(channels).reshape(channels, channels, 1, 1))
        block.conv.bias.zero_()
    return block


@pytest.mark.parametrize("filt_size", [3, 5])
def test_blur_pool_matches_timm_blurpool(filt_size: int) -> None:
    from timm.layers import BlurPool2d

    block = _identity_blur(4, filt_size=filt_size)
    x = torch.randn(2, 4, 9, 10)
    ref = BlurPool2d(4, filt_size=filt_size, stride=2)
    torch.testing.assert_close(block(x), ref(x))
    assert block(x).shape == (2, 4, 5, 5)


@pytest.mark.parametrize("filt_size", [1, 2, 4])
def test_blur_pool_other_filter_sizes(filt_size: int) -> None:
    x = torch.randn(1, 2, 9, 10)
    y = _identity_blur(2, filt_size=filt_size)(x)
    assert y.shape == (1, 2, 5, 5)  # ceil(H / 2), ceil(W / 2) for every filter size
    if filt_size == 1:
        torch.testing.assert_close(y, x[:, :, ::2, ::2])
    if filt_size == 2:  # [1, 1] / 2 per axis, padded right/bottom (reflect)
        xp = torch.nn.functional.pad(x, (0, 1, 0, 1), mode="reflect")
        ref = torch.nn.functional.avg_pool2d(xp, 2, stride=2)
        torch.testing.assert_close(y, ref)


def test_blur_pool_constant_in_constant_out_and_errors() -> None:
    block = _identity_blur(3)
    y = block(torch.full((1, 3, 8, 8), 2.5))
    torch.testing.assert_close(y, torch.full((1, 3, 4, 4), 2.5))
    with pytest.raises(BlockValueError, match="'wrap'"):
        BlurPoolConv(3, pad_mode="wrap")


# ----------------------------------------------------------------------------- mbconv
@pytest.mark.parametrize("cfg", [(6, 3, 2, 16, 24), (1, 3, 1, 32, 16), (6, 5, 1, 40, 40), (4, 3, 1, 24, 24)])
def test_mbconv_matches_torchvision(cfg: tuple[int, int, int, int, int]) -> None:
    expand, k, s, cin, cout = cfg
    ref = tv_effnet.MBConv(tv_effnet.MBConvConfig(expand, k, s, cin, cout, 1), 0.0, nn.BatchNorm2d)
    ours = MBConv(cin, cout, stride=s, expand_ratio=expand, kernel_size=k)
    assert n_params(ours) == n_params(ref)
    assert_same_function(ref, ours, torch.randn(2, cin, 9, 9))
    assert ours.has_skip == ref.use_res_connect


def test_mbconv_widths_and_attention_options() -> None:
    block = MBConv(32, 16, expand_ratio=1)
    assert isinstance(block.conv_pw, nn.Identity) and block.hidden_channels == 32
    block = MBConv(16, 24, expand_ratio=6)
    assert block.hidden_channels == 96 and isinstance(block.se, SEBlock)
    assert block.se.fc1.out_channels == 4  # squeeze from the block input: 16 // 4
    assert isinstance(block.se.act, nn.SiLU) and isinstance(block.se.gate, nn.Sigmoid)
    assert isinstance(MBConv(16, use_se=False).se, nn.Identity)
    assert isinstance(MBConv(16, se_ratio=0.0).se, nn.Identity)
    assert MBConv(16, se_reduction=8).se.fc1.out_channels == 2  # legacy se_reduction=8 -> se_ratio 1/8
    assert MBConv(16, expansion=2).hidden_channels == 32
    eca = MBConv(16, attn_layer="eca").se
    assert type(eca).__name__ == "ECABlock" and eca.in_channels == 64  # on the hidden width


def test_mbconv_drop_path_only_with_skip() -> None:
    assert type(MBConv(16, drop_path=0.2).drop_path).__name__ == "DropPath"
    assert isinstance(MBConv(16, 24, drop_path=0.2).drop_path, nn.Identity)
    block = MBConv(16, drop_path=0.5).train()
    x = torch.randn(64, 16, 4, 4)
    torch.manual_seed(0)
    y = block(x)
    dropped = ((y - x).flatten(1).abs().amax(1) == 0).sum().item()
    assert 10 < dropped < 54  # whole samples keep only the shortcut


def test_mbconv_bad_inputs() -> None:
    with pytest.raises(BlockValueError, match=r"1\.5"):
        MBConv(16, se_ratio=1.5)
    with pytest.raises(BlockValueError, match="4"):
        MBConv(16, kernel_size=4)
    with pytest.raises(BlockValueError, match="-1"):
        MBConv(16, expand_ratio=-1.0)
    with pytest.raises(BlockArgumentError, match="attn"):
        MBConv(16, attn_layer=3)


# ----------------------------------------------------------------------------- fused_mbconv
@pytest.mark.parametrize("cfg", [(4, 3, 2, 24, 48), (1, 3, 1, 24, 24), (4, 3, 1, 48, 48)])
def test_fused_mbconv_matches_torchvision(cfg: tuple[int, int, int, int, int]) -> None:
    expand, k, s, cin, cout = cfg
    ref = tv_effnet.FusedMBConv(tv_effnet.FusedMBConvConfig(expand, k, s, cin, cout, 1), 0.0, nn.BatchNorm2d)
    ours = FusedMBConv(cin, cout, stride=s, expand_ratio=expand, kernel_size=k)
    assert n_params(ours) == n_params(ref)
    assert_same_function(ref, ours, torch.randn(2, cin, 9, 9))


def test_fused_mbconv_options() -> None:
    block = FusedMBConv(24, 24, expand_ratio=1)
    assert isinstance(block.conv_pwl, nn.Identity) and block.conv_exp.conv.kernel_size == (3, 3)
    assert isinstance(FusedMBConv(24).se, nn.Identity)  # SE off by default
    se = FusedMBConv(24, attn_layer="se").se
    assert isinstance(se, SEBlock) and se.in_channels == 96 and se.fc1.out_channels == 6
    assert isinstance(FusedMBConv(24, use_se=True).se, SEBlock)  # the legacy flag really adds SE
    assert isinstance(FusedMBConv(24, se_ratio=0.25, attn_layer=None).se, nn.Identity)
    assert FusedMBConv(24, 48, stride=2)(torch.randn(1, 24, 8, 8)).shape == (1, 48, 4, 4)


# ----------------------------------------------------------------------------- convnext_block
def test_convnext_matches_torchvision_cnblock() -> None:
    from torchvision.models.convnext import CNBlock

    ref = CNBlock(32, layer_scale=1e-6, stochastic_depth_prob=0.0)
    ours = ConvNeXtBlock(32)
    assert n_params(ours) == n_params(ref)
    with torch.no_grad():
        ref.layer_scale.fill_(0.5)  # make the branch visible
    assert_same_function(ref, ours, torch.randn(2, 32, 9, 9))


def test_convnext_identity_at_init_and_options() -> None:
    block = ConvNeXtBlock(channels=16).eval()
    torch.testing.assert_close(block.gamma, torch.full((16,), 1e-6))
    x = torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(block(x), x, rtol=0, atol=1e-4)
    no_ls = ConvNeXtBlock(16, layer_scale_init_value=None)
    assert no_ls.gamma is None and n_params(no_ls) == n_params(block) - 16
    assert ConvNeXtBlock(16, mlp_ratio=2.0).fc1.out_features == 32
    with pytest.raises(BlockArgumentError, match="out_channels"):
        ConvNeXtBlock(16, out_channels=32)
    with pytest.raises(BlockValueError, match="6"):
        ConvNeXtBlock(16, kernel_size=6)


# ----------------------------------------------------------------------------- ghost_bottleneck
@pytest.mark.parametrize("cfg", [(16, 48, 24, 2, 0.25), (16, 48, 16, 1, 0.0), (24, 72, 24, 1, 0.25),
                                 (16, 40, 40, 2, 0.0)])
def test_ghost_matches_timm(cfg: tuple[int, int, int, int, float]) -> None:
    from timm.models.ghostnet import GhostBottleneck as TimmGhost

    cin, mid, cout, s, se = cfg
    ref = TimmGhost(cin, mid, cout, dw_kernel_size=3, stride=s, se_ratio=se)
    ours = GhostBottleneck(cin, cout, stride=s, hidden_channels=mid, se_ratio=se, attn_layer="se" if se else None)
    assert n_params(ours) == n_params(ref)
    assert_same_function(ref, ours, torch.randn(2, cin, 9, 9))


def test_ghost_module_widths() -> None:
    block = GhostBottleneck(16, 15, expand_ratio=3.0)  # odd widths: concat then cut
    assert block.hidden_channels == 48
    assert block.ghost2.primary_conv.conv.out_channels == 8
    assert block(torch.randn(1, 16, 8, 8)).shape == (1, 15, 8, 8)
    odd = GhostBottleneck(16, hidden_channels=25)
    assert odd.ghost1.primary_conv.conv.out_channels == 13
    assert odd(torch.randn(1, 16, 8, 8)).shape == (1, 16, 8, 8)
    assert isinstance(GhostBottleneck(16).se, nn.Identity)
    assert isinstance(GhostBottleneck(16).shortcut, nn.Identity)
    assert isinstance(GhostBottleneck(16, 24).shortcut, nn.Sequential)
    with pytest.raises(BlockValueError, match="2"):
        GhostBottleneck(16, kernel_size=2)


# ----------------------------------------------------------------------------- repvgg
@pytest.mark.parametrize("kwargs", [{}, {"stride": 2}, {"out_channels": 32}, {"groups": 4},
                                    {"kernel_size": 5}, {"attn_layer": "se"}])
def test_repvgg_reparameterize_matches(kwargs: dict) -> None:
    block = RepVGGBlock(16, **kwargs)
    randomize_bn(block)
    block.eval()
    x = torch.randn(2, 16, 9, 9)
    with torch.no_grad():
        y = block(x)
        fused = block.reparameterize()
        assert fused is block and block.deploy and isinstance(block.rep, nn.Conv2d)
        torch.testing.assert_close(block(x), y, rtol=1e-5, atol=1e-5)
        assert block.reparameterize() is block  # idempotent
    traced = torch.fx.symbolic_trace(block)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), y, rtol=1e-5, atol=1e-5)


def test_repvgg_deploy_keys_and_branches() -> None:
    block = RepVGGBlock(16)
    assert block.rep.identity is not None
    assert RepVGGBlock(16, stride=2).rep.identity is None
    assert RepVGGBlock(16, 32).rep.identity is None
    randomize_bn(block)
    block.eval()
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        y = block(x)
    state = block.reparameterize().state_dict()
    assert set(state) == {"rep.weight", "rep.bias"}
    deployed = RepVGGBlock(16, deploy=True).eval()
    deployed.load_state_dict(state)
    with torch.no_grad():
        torch.testing.assert_close(deployed(x), y, rtol=1e-5, atol=1e-5)


def test_repvgg_timm_param_count_and_errors() -> None:
    from timm.models.byobnet import RepVggBlock

    assert n_params(RepVGGBlock(16)) == n_params(RepVggBlock(16, 16))
    assert n_params(RepVGGBlock(16, 32, stride=2)) == n_params(RepVggBlock(16, 32, stride=2))
    with pytest.raises(BlockValueError, match="GroupNorm"):
        RepVGGBlock(16, norm_layer="group").reparameterize()
    with pytest.raises(BlockValueError, match="1"):
        RepVGGBlock(16, kernel_size=1)
    with pytest.raises(BlockValueError, match="3"):
        RepVGGBlock(16, 32, groups=3)


# ----------------------------------------------------------------------------- shuffle_block
@pytest.mark.parametrize("cfg", [(24, 116, 2), (116, 116, 1), (16, 16, 1)])
def test_shuffle_matches_torchvision(cfg: tuple[int, int, int]) -> None:
    from torchvision.models.shufflenetv2 import InvertedResidual

    cin, cout, s = cfg
    ref = InvertedResidual(cin, cout, s)
    ours = ShuffleBlock(cin, cout, stride=s)
    assert n_params(ours) == n_params(ref)
    assert_same_function(ref, ours, torch.randn(2, cin, 9, 9))


def test_channel_shuffle_equals_stack() -> None:
    a, b = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(channel_shuffle(torch.cat([a, b], 1), 2), torch.stack((a, b), 2).flatten(1, 2))
    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]


def test_shuffle_errors() -> None:
    with pytest.raises(BlockValueError, match="15"):
        ShuffleBlock(16, 15, stride=2)
    with pytest.raises(BlockValueError, match="32"):
        ShuffleBlock(16, 32, stride=1)
    assert registry.get("shuffle_unit") is ShuffleBlock


# ----------------------------------------------------------------------------- fire
def test_fire_matches_torchvision() -> None:
    from torchvision.models.squeezenet import Fire

    ref = Fire(96, 16, 64, 64)
    ours = FireModule(96, 128)
    assert ours.squeeze_channels == 16  # default out // 8
    assert n_params(ours) == n_params(ref)
    assert_same_function(ref, ours, torch.randn(2, 96, 9, 9))


def test_fire_options_and_errors() -> None:
    block = FireModule(16, 32, squeeze_channels=4, norm_layer="batch")
    assert block.squeeze.conv.bias is None and isinstance(block.squeeze.bn, nn.BatchNorm2d)
    assert FireModule(16, 2).squeeze_channels == 1
    with pytest.raises(BlockValueError, match="33"):
        FireModule(16, 33)
    assert registry.get("squeezenet_fire") is FireModule


# ----------------------------------------------------------------------------- registry names
@pytest.mark.parametrize("alias,cls", [
    ("dw", DepthwiseBlock), ("depthwise_separable", DepthwiseBlock), ("DepthwiseBlock", DepthwiseBlock),
    ("coordconv", CoordConv), ("CoordConv", CoordConv), ("conv3d_block", Conv3DBlock),
    ("blurpool", BlurPoolConv), ("antialiased_conv", BlurPoolConv), ("MBConv", MBConv),
    ("inverted_residual", MBConv), ("mbconv_block", MBConv), ("FusedMBConv", FusedMBConv),
    ("fused_inverted_residual", FusedMBConv), ("convnext", ConvNeXtBlock), ("ghost", GhostBottleneck),
    ("ghostnet_block", GhostBottleneck), ("repvgg_block", RepVGGBlock), ("shufflenet_block", ShuffleBlock),
    ("fire_module", FireModule),
])
def test_aliases(alias: str, cls: type) -> None:
    assert registry.get(alias) is cls
