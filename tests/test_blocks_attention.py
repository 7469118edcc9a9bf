"""Behaviour tests of the attention blocks: paper semantics, timm equivalence, legacy names, errors."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from torchvision_customizer import registry
from torchvision_customizer.blocks.eca import eca_kernel_size
from torchvision_customizer.errors import BlockArgumentError, BlockValueError

timm_layers = pytest.importorskip("timm.layers")
from timm.layers.cbam import CbamModule, ChannelAttn, SpatialAttn  # noqa: E402
from timm.layers.eca import EcaModule  # noqa: E402
from timm.layers.global_context import GlobalContext  # noqa: E402
from timm.layers.squeeze_excite import EffectiveSEModule  # noqa: E402

ATTENTION = {
    "ese": ("effective_se", "ese_block"),
    "eca": ("eca_block", "ecablock", "efficient_channel"),
    "cbam_block": ("cbam", "cbamblock", "cbam_attention", "channel_spatial"),
    "channel_attention": ("ca", "channel_gate"),
    "spatial_attention": ("sa", "spatial_gate"),
    "gc": ("global_context", "gc_block", "gcnet"),
    "coord_attention": ("coordatt", "coordinate_attention", "ca_block"),
    "non_local": ("nonlocal", "non_local_block", "nl_block"),
    "simam": ("simam_block",),
    "sk": ("selective_kernel", "sk_block", "skconv"),
    "triplet_attention": ("triplet",),
    "scse": ("scse_block", "concurrent_se"),
    "mhsa": ("multihead_attention", "mha", "multihead", "self_attention"),
}


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def randomize(m: nn.Module) -> nn.Module:
    """Random weights and norm statistics, so that no gate or branch is trivially zero."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in list(m.named_parameters()) + list(m.named_buffers()):
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g) * 0.3)
    return m


# ----------------------------------------------------------------------------- registry & aliases


@pytest.mark.parametrize("name", sorted(ATTENTION))
def test_registered_with_aliases_and_channels_keyword(name: str) -> None:
    cls = registry.get(name)
    assert name in registry.list(category="attention")
    for alias in ATTENTION[name]:
        assert registry.get(alias) is cls, alias
    block = cls(channels=32)
    assert block.in_channels == block.out_channels == 32 and block.stride == 1
    y = block.eval()(torch.randn(2, 32, 6, 5))
    assert y.shape == (2, 32, 6, 5)


def test_cbam_readme_example() -> None:
    block = registry.get("cbam_block")(channels=256)
    assert block(torch.randn(2, 256, 8, 8)).shape == (2, 256, 8, 8)
    assert set(dict(block.named_children())) == {"channel", "spatial"}


@pytest.mark.parametrize("name", sorted(set(ATTENTION) - {"sk"}))
def test_usable_as_attn_layer_of_residual(name: str) -> None:
    block = registry.create("residual", 32, 32, attn_layer=name).eval()
    assert block(torch.randn(2, 32, 8, 8)).shape == (2, 32, 8, 8)


# ----------------------------------------------------------------------------- timm equivalence


@pytest.mark.parametrize("c", [64, 256])
def test_eca_matches_timm(c: int) -> None:
    ours, ref = registry.get("eca")(channels=c), EcaModule(channels=c)
    assert n_params(ours) == n_params(ref)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, c, 7, 5)
    torch.testing.assert_close(ours(x), ref(x))


def test_eca_adaptive_kernel_rule() -> None:
    # k = |log2(C)/2 + 1/2| made odd: the paper's table (k=3 for 64, 5 for 256..1024, 7 for 2048)
    assert eca_kernel_size(4) == 1  # the paper rule; timm clamps to 3 below 8 channels
    assert [eca_kernel_size(c) for c in (16, 64, 128, 256, 512, 1024, 2048)] == [3, 3, 5, 5, 5, 5, 7]
    for c in range(8, 4097, 37):
        assert registry.get("eca")(c).conv.kernel_size == EcaModule(channels=c).conv.kernel_size, c
    assert registry.get("eca")(64, kernel_size=9).conv.kernel_size == (9,)
    assert registry.get("eca")(64, kernel=5).conv.kernel_size == (5,)  # legacy name
    assert registry.get("eca")(256, gamma=1, beta=1).conv.kernel_size == (9,)


def test_eca_hand_set_kernel() -> None:
    block = registry.get("eca")(8, kernel_size=3)
    with torch.no_grad():
        block.conv.weight.copy_(torch.tensor([[[0.0, 1.0, 0.0]]]))
    x = torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(block(x), x * torch.sigmoid(x.mean((2, 3), keepdim=True)))
    with torch.no_grad():
        block.conv.weight.copy_(torch.tensor([[[1.0, 0.0, 0.0]]]))  # each channel looks at its predecessor
    m = x.mean((2, 3))
    prev = torch.cat([torch.zeros(2, 1), m[:, :-1]], 1)  # zero padding at channel 0
    torch.testing.assert_close(block(x), x * torch.sigmoid(prev)[..., None, None])


@pytest.mark.parametrize("c", [64, 256])
def test_ese_matches_timm(c: int) -> None:
    ours, ref = registry.get("ese")(c), EffectiveSEModule(c)
    assert n_params(ours) == n_params(ref) == c * c + c
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, c, 5, 5)
    torch.testing.assert_close(ours(x), ref(x))


def test_ese_hard_sigmoid_gate() -> None:
    block = registry.get("ese")(8)
    with torch.no_grad():
        block.fc.weight.zero_()
        block.fc.bias.fill_(3.0)  # hard_sigmoid(3) = 1
    x = torch.randn(1, 8, 3, 3)
    torch.testing.assert_close(block(x), x)
    with torch.no_grad():
        block.fc.bias.zero_()  # hard_sigmoid(0) = 0.5
    torch.testing.assert_close(block(x), 0.5 * x)


def _cbam_state_for_timm(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        k = k.replace("spatial.conv.", "spatial.conv.conv.").replace("spatial.bn.", "spatial.conv.bn.")
        out[k] = v
    return out


@pytest.mark.parametrize("c", [64, 256, 72])
def test_cbam_matches_timm(c: int) -> None:
    ours, ref = registry.get("cbam_block")(c), CbamModule(c, rd_ratio=1 / 16)
    assert n_params(ours) == n_params(ref)
    randomize(ours)
    ref.load_state_dict(_cbam_state_for_timm(ours.state_dict()))
    ours.eval(), ref.eval()
    x = torch.randn(2, c, 7, 6)
    torch.testing.assert_close(ours(x), ref(x))


def test_cbam_halves_match_timm() -> None:
    ca, ref_ca = registry.get("channel_attention")(64), ChannelAttn(64)
    assert n_params(ca) == n_params(ref_ca)
    ref_ca.load_state_dict(ca.state_dict())
    sa, ref_sa = randomize(registry.get("spatial_attention")(64)).eval(), SpatialAttn(7).eval()
    assert n_params(sa) == n_params(ref_sa) == 49 * 2 + 2
    ref_sa.load_state_dict({k.replace("conv.", "conv.conv.").replace("bn.", "conv.bn."): v
                            for k, v in sa.state_dict().items()})
    x = torch.randn(2, 64, 6, 6)
    torch.testing.assert_close(ca(x), ref_ca(x))
    torch.testing.assert_close(sa(x), ref_sa(x))
    cbam = randomize(registry.get("cbam")(64)).eval()
    ca.load_state_dict(cbam.channel.state_dict())
    sa.load_state_dict(cbam.spatial.state_dict())
    torch.testing.assert_close(cbam(x), sa.eval()(ca(x)))  # channel first, then spatial


def test_cbam_legacy_keywords_and_options() -> None:
    cbam = registry.get("cbam")(channels=64, reduction=8, spatial_kernel=3)
    assert cbam.channel.fc1.out_channels == 8
    assert cbam.spatial.conv.kernel_size == (3, 3)
    assert registry.get("cbam")(64, rd_channels=5).channel.fc1.out_channels == 5
    assert registry.get("cbam")(64, rd_divisor=8, rd_ratio=1 / 32).channel.fc1.out_channels == 8
    plain = registry.get("cbam")(64, norm_layer=None)
    assert isinstance(plain.spatial.bn, nn.Identity) and plain.spatial.conv.bias is not None
    assert registry.get("channel_attention")(32, reduction=4).fc1.out_channels == 8
    assert registry.get("spatial_attention")(32, kernel=3).conv.kernel_size == (3, 3)


def test_gc_matches_timm_add_fusion() -> None:
    c = 64
    ours = randomize(registry.get("gc")(c)).eval()
    ref = GlobalContext(c, fuse_add=True, fuse_scale=False, rd_ratio=1 / 16).eval()
    assert n_params(ours) == n_params(ref)
    sd = {k.replace("fc1", "mlp_add.fc1").replace("fc2", "mlp_add.fc2").replace("norm", "mlp_add.norm"): v
          for k, v in ours.state_dict().items()}
    ref.load_state_dict(sd)
    x = torch.randn(2, c, 7, 5)
    torch.testing.assert_close(ours(x), ref(x))


def test_gc_matches_timm_scale_fusion() -> None:
    c = 32
    ours = randomize(registry.get("gc")(c, fusion="scale", rd_ratio=1 / 8)).eval()
    ref = GlobalContext(c, fuse_add=False, fuse_scale=True, rd_ratio=1 / 8).eval()
    sd = {k.replace("fc1", "mlp_scale.fc1").replace("fc2", "mlp_scale.fc2")
          .replace("norm", "mlp_scale.norm"): v for k, v in ours.state_dict().items()}
    ref.load_state_dict(sd)
    x = torch.randn(2, c, 4, 6)
    torch.testing.assert_close(ours(x), ref(x))


def test_gc_identity_at_init_and_attention_pooling() -> None:
    block = registry.get("gc")(32).eval()
    x = torch.randn(2, 32, 5, 5)
    assert torch.equal(block(x), x)  # zero-initialized last conv, add fusion
    # constant attention logits: the softmax is uniform and attention pooling is average pooling
    with torch.no_grad():
        block.conv_attn.weight.zero_()
        block.conv_attn.bias.zero_()
    captured = {}
    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        captured["ctx"] = inputs[0]

    block.fc1.register_forward_hook(hook)
    block(x)
    torch.testing.assert_close(captured["ctx"], x.mean((2, 3), keepdim=True))  # uniform softmax = mean
    avg = registry.get("gc")(32, pool="avg")
    assert avg.conv_attn is None
    assert n_params(avg) == n_params(block) - 33


# ----------------------------------------------------------------------------- paper semantics


def _coord_reference(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[2:]
    x_h = F.adaptive_avg_pool2d(x, (h, 1))
    x_w = F.adaptive_avg_pool2d(x, (1, w)).permute(0, 1, 3, 2)
    y = m.act(m.bn1(m.conv1(torch.cat([x_h, x_w], dim=2))))
    y_h, y_w = torch.split(y, [h, w], dim=2)
    a_h = torch.sigmoid(m.conv_h(y_h))
    a_w = torch.sigmoid(m.conv_w(y_w.permute(0, 1, 3, 2)))
    return x * a_w * a_h


@pytest.mark.parametrize("c", [16, 64, 512])
def test_coord_attention_width_rule_and_reference(c: int) -> None:
    block = randomize(registry.get("coord_attention")(c)).eval()
    mip = max(8, c // 32)
    assert block.conv1.out_channels == mip
    assert n_params(block) == (c * mip + mip) + 2 * mip + 2 * (mip * c + c)
    x = torch.randn(2, c, 7, 5)
    torch.testing.assert_close(block(x), _coord_reference(block, x))
    assert registry.get("coord_attention")(512, reduction=16).conv1.out_channels == 32


def _non_local_reference(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    n, _, h, w = x.shape
    theta = m.theta(x).reshape(n, -1, h * w)  # (N, C', HW)
    phi = m.pool(m.phi(x)).reshape(n, theta.shape[1], -1)
    g = m.pool(m.g(x)).reshape(n, theta.shape[1], -1)
    f = torch.softmax(theta.transpose(1, 2) @ phi, dim=-1)  # (N, HW, HW')
    y = (f @ g.transpose(1, 2)).transpose(1, 2).reshape(n, -1, h, w)
    return x + m.norm(m.out_conv(y))


@pytest.mark.parametrize("sub_sample", [False, True])
def test_non_local_identity_at_init_then_reference(sub_sample: bool) -> None:
    block = registry.get("non_local")(32, sub_sample=sub_sample).eval()
    assert block.inter_channels == 16
    x = torch.randn(2, 32, 6, 6)
    assert torch.equal(block(x), x)
    assert torch.count_nonzero(block.norm.weight) == 0
    randomize(block)
    torch.testing.assert_close(block(x), _non_local_reference(block, x), rtol=1e-4, atol=1e-5)
    no_norm = registry.get("non_local")(32, norm_layer=None).eval()
    assert torch.equal(no_norm(x), x) and no_norm.out_conv.bias is not None


def test_simam_matches_paper_formula() -> None:
    block = registry.get("simam")(16)
    assert n_params(block) == 0
    x = torch.randn(2, 16, 5, 7)
    n = x.shape[2] * x.shape[3] - 1
    d = (x - x.mean(dim=[2, 3], keepdim=True)).pow(2)
    v = d.sum(dim=[2, 3], keepdim=True) / n
    ref = x * torch.sigmoid(d / (4 * (v + 1e-4)) + 0.5)
    torch.testing.assert_close(block(x), ref)
    assert registry.get("simam")().in_channels is None


def test_sk_structure_and_reference() -> None:
    c = 64
    block = randomize(registry.get("sk")(c)).eval()
    assert [p.conv.dilation for p in block.paths] == [(1, 1), (2, 2)]
    assert all(p.conv.groups == 32 for p in block.paths)
    d = max(c // 16, 32)
    assert block.fc_reduce.out_channels == d
    branch = 9 * c * c // 32 + 2 * c
    assert n_params(block) == 2 * branch + c * d + 2 * d + d * 2 * c
    x = torch.randn(2, c, 6, 6)
    u1, u2 = block.paths[0](x), block.paths[1](x)
    z = block.act(block.bn(block.fc_reduce((u1 + u2).mean((2, 3), keepdim=True))))
    logits = block.fc_select(z).reshape(2, 2, c, 1, 1)
    a = torch.exp(logits[:, 0]) / (torch.exp(logits[:, 0]) + torch.exp(logits[:, 1]))
    torch.testing.assert_close(block(x), u1 * a + u2 * (1 - a))
    # the L = 32 floor, then C / r above 512 channels
    assert registry.get("sk")(1024).fc_reduce.out_channels == 64
    assert registry.get("sk")(16).paths[0].conv.groups == 16  # cardinality capped at the channels


def test_sk_stride_and_more_branches() -> None:
    block = registry.get("sk")(32, stride=2, dilations=(1, 2, 3)).eval()
    assert block.stride == 2 and len(block.paths) == 3
    assert block(torch.randn(2, 32, 9, 9)).shape == (2, 32, 5, 5)


def _triplet_reference(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    def gate(module: nn.Module, t: torch.Tensor) -> torch.Tensor:
        z = torch.cat([t.max(1, keepdim=True)[0], t.mean(1, keepdim=True)], dim=1)
        return t * module(z)

    o1 = gate(m.cw, x.permute(0, 2, 1, 3).contiguous()).permute(0, 2, 1, 3)
    o2 = gate(m.hc, x.permute(0, 3, 2, 1).contiguous()).permute(0, 3, 2, 1)
    if m.hw is None:
        return 0.5 * (o1 + o2)
    return (o1 + o2 + gate(m.hw, x)) / 3


@pytest.mark.parametrize("spatial", [True, False])
def test_triplet_matches_permute_reference(spatial: bool) -> None:
    block = randomize(registry.get("triplet")(16, spatial=spatial)).eval()
    assert n_params(block) == (3 if spatial else 2) * (2 * 49 + 2)
    x = torch.randn(2, 16, 6, 9)
    torch.testing.assert_close(block(x), _triplet_reference(block, x))


@pytest.mark.parametrize("mode", ["add", "max"])
def test_scse_combination(mode: str) -> None:
    block = randomize(registry.get("scse")(32, mode=mode)).eval()
    x = torch.randn(2, 32, 5, 5)
    cse = x * torch.sigmoid(block.fc2(torch.relu(block.fc1(x.mean((2, 3), keepdim=True)))))
    sse = x * torch.sigmoid(block.conv_s(x))
    ref = cse + sse if mode == "add" else torch.maximum(cse, sse)
    torch.testing.assert_close(block(x), ref)
    assert registry.get("scse")(64, reduction=2).fc1.out_channels == 32


def test_mhsa_matches_torch_multihead_attention() -> None:
    c, heads = 32, 4
    block = registry.get("mhsa")(c, num_heads=heads, qkv_bias=True).eval()
    ref = nn.MultiheadAttention(c, heads, batch_first=True).eval()
    assert n_params(block) == n_params(ref)
    with torch.no_grad():
        ref.in_proj_weight.copy_(block.qkv.weight.flatten(1))
        ref.in_proj_bias.copy_(block.qkv.bias)
        ref.out_proj.weight.copy_(block.proj.weight.flatten(1))
        ref.out_proj.bias.copy_(block.proj.bias)
    x = torch.randn(2, c, 5, 3)
    tokens = x.flatten(2).transpose(1, 2)
    expected = ref(tokens, tokens, tokens, need_weights=False)[0].transpose(1, 2).reshape(x.shape)
    y = block(x)
    assert isinstance(y, torch.Tensor)
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)
    # no position encoding: permuting the positions permutes the output
    perm = torch.randperm(15)
    xp = x.flatten(2)[..., perm].reshape(x.shape)
    torch.testing.assert_close(block(xp).flatten(2), y.flatten(2)[..., perm], rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("name", "kwargs", "needle"), [
    ("spatial_attention", {"kernel_size": 6}, "6"),
    ("cbam", {"spatial_kernel": 4}, "4"),
    ("triplet", {"kernel_size": 2}, "2"),
    ("eca", {"kernel_size": 4}, "4"),
    ("cbam", {"reduction": 32}, "32"),
    ("channel_attention", {"rd_ratio": 1.5}, "1.5"),
    ("se", {"reduction": 32}, "32"),
    ("gc", {"fusion": "mul"}, "mul"),
    ("gc", {"pool": "max"}, "max"),
    ("scse", {"mode": "sum"}, "sum"),
    ("sk", {"dilations": (1,)}, "(1,)"),
    ("non_local", {"rd_ratio": 0.0}, "0.0"),
    ("simam", {"e_lambda": -1.0}, "-1.0"),
    ("eca", {"gamma": 0}, "0"),
])
def test_bad_values_raise_with_the_value(name: str, kwargs: dict, needle: str) -> None:
    with pytest.raises(BlockValueError) as err:
        registry.get(name)(16, **kwargs)
    assert needle in str(err.value)


def test_mhsa_heads_must_divide_channels() -> None:
    with pytest.raises(BlockValueError) as err:
        registry.get("mhsa")(30, num_heads=4)
    assert "4" in str(err.value) and "30" in str(err.value)


def test_sk_groups_must_divide_channels() -> None:
    with pytest.raises(BlockValueError, match="48"):
        registry.get("sk")(48)  # cardinality 32 does not divide 48
    assert registry.get("sk")(48, groups=16).paths[0].conv.groups == 16


def test_unknown_and_wrongly_typed_arguments() -> None:
    with pytest.raises(BlockArgumentError, match="spatial_kernel_sz"):
        registry.get("cbam")(16, spatial_kernel_sz=7)
    with pytest.raises(BlockArgumentError):
        registry.get("eca")(16.0)
    with pytest.raises(BlockArgumentError):
        registry.get("mhsa")(16, num_heads=2.0)


# ----------------------------------------------------------------------------- backends on variants

VARIANTS = [
    ("gc", {"zero_init_last": False}),
    ("gc", {"fusion": "scale", "pool": "avg"}),
    ("non_local", {"zero_init": False}),
    ("non_local", {"zero_init": False, "sub_sample": True}),
    ("coord_attention", {}),
    ("scse", {"mode": "max"}),
    ("triplet_attention", {"spatial": False}),
    ("sk", {"stride": 2, "dilations": (1, 2, 3), "groups": 4}),
    ("mhsa", {"num_heads": 2}),
]


def _variant(name: str, kwargs: dict) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    block = randomize(registry.get(name)(16, **kwargs)).eval()
    x = torch.randn(2, 16, 8, 6)  # non-square: catches H/W mix-ups
    with torch.no_grad():
        y = block(x)
    return block, x, y


@pytest.mark.parametrize(("name", "kwargs"), VARIANTS)
def test_variant_fx_compile_export_channels_last(name: str, kwargs: dict) -> None:
    block, x, y = _variant(name, kwargs)
    assert not torch.equal(y, x)
    with torch.no_grad():
        torch.testing.assert_close(torch.fx.symbolic_trace(block)(x), y, rtol=0, atol=0)
        torch._dynamo.reset()
        compiled = torch.compile(block, backend="eager", fullgraph=True)
        torch.testing.assert_close(compiled(x), y, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(torch.export.export(block, (x,)).module()(x), y, rtol=1e-5, atol=1e-5)
        cl = copy.deepcopy(block).to(memory_format=torch.channels_last)
        y_cl = cl(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(y_cl, y, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "kwargs"), VARIANTS)
def test_variant_onnx(name: str, kwargs: dict) -> None:
    ort = pytest.importorskip("onnxruntime")
    block, x, y = _variant(name, kwargs)
    buf = io.BytesIO()
    torch.onnx.export(block, (x,), buf, opset_version=18, dynamo=False, input_names=["x"])
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {"x": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), y, rtol=1e-4, atol=1e-4)


def test_gradients_reach_attention_path_once_trained() -> None:
    # identity-at-init blocks still train their embedding convolutions once the output norm moves
    block = registry.get("non_local")(16).train()
    with torch.no_grad():
        block.norm.weight.fill_(1.0)
    (block(torch.randn(2, 16, 4, 4)) ** 2).mean().backward()
    trained = [p for n, p in block.named_parameters() if n.startswith(("theta", "g."))]
    assert trained and all(float(p.grad.abs().sum()) > 0 for p in trained)
    assert math.isfinite(float(block.phi.weight.grad.sum()))
