"""Every documented name of the older release (field/older-release.md sections 1.1 and 1.2) still works.

One table row per name: where the older release documented it, a documented call, and a check of
what it does. Names kept only for compatibility must emit exactly one ``DeprecationWarning`` naming
the new spelling; current-API names must not warn. ``COMPATIBILITY.md`` lists the same names with
their status, and a test keeps the two in step.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from torchvision_customizer.compose import Head, Stage, Stem

TOP = "torchvision_customizer"
BLOCKS = f"{TOP}.blocks"
LAYERS = f"{TOP}.layers"
COMPOSE = f"{TOP}.compose"
RECIPE = f"{TOP}.recipe"
HYBRID = f"{TOP}.hybrid"
MARK = "kept only for compatibility"

# --------------------------------------------------------------------------------------------
# The names, extracted from ../shared/field/older-release.md.
# Section 1.1 (top-level __all__): the metadata row "`__version__` ... `__url__`" is the six names
# the older __init__ exports (__version__, __author__, __author_email__, __description__,
# __license__, __url__); every other row spells its names out: 6 + 44 = 50.
# Section 1.2 (subpackage-only exports), the names written out: blocks 20, layers 9 ("factories
# and registries" names none), compose 12, recipe 15, hybrid 7 ("and helpers" names none) = 63.
# 50 + 63 = 113.
SECTION_1_1 = [
    "__version__", "__author__", "__author_email__", "__description__", "__license__", "__url__",
    "registry", "Recipe", "build_recipe", "Stem", "Stage", "Head", "Compose", "Sequential", "VisionModel",
    "Template", "resnet", "vgg", "mobilenet", "densenet", "efficientnet", "ConvBlock", "ResidualBlock", "SEBlock",
    "DepthwiseBlock", "InceptionModule", "DenseConnectionBlock", "StandardBottleneck", "WideBottleneck",
    "get_activation", "get_normalization", "get_pooling", "print_model_summary", "get_model_flops",
    "validate_architecture", "HybridBuilder", "Trainer", "TrainingMetrics", "quick_train", "partial_load",
    "transfer_weights", "extract_tiers", "get_backbone_info", "CBAMBlock", "ECABlock", "DropPath", "Mish", "GeM",
    "MBConv", "FusedMBConv",
]
SECTION_1_2 = {
    "blocks": ["Conv3DBlock", "SuperConv2d", "SuperLinear", "GroupedBottleneck", "MultiScaleBottleneck",
               "AsymmetricBottleneck", "create_bottleneck", "ResidualStage", "ResidualSequence",
               "ResidualBottleneckStage", "ResidualArchitectureBuilder", "ResidualStageConfig", "ResidualConnector",
               "SkipConnectionBuilder", "MixedArchitectureBlock", "CoordConv", "GELUActivation", "SqueezeExcitation",
               "LayerScale", "ConvBNAct"],
    "layers": ["PoolingBlock", "StochasticPool2d", "LPPool2d", "ChannelAttention", "SpatialAttention",
               "ChannelSpatialAttention", "MultiHeadAttention", "PositionalEncoding", "AttentionBlock"],
    "compose": ["SimpleStem", "PatchStem", "TransitionLayer", "SegmentationHead", "DetectionHead",
                "build_vision_model", "ComposedModule", "BranchedModule", "compose", "repeat", "branch", "residual"],
    "recipe": ["parse_recipe", "parse_definition", "build_from_config", "validate_recipe_config", "expand_macros",
               "merge_recipes", "get_template", "RECIPE_SCHEMA", "ValidationError", "load_yaml_config",
               "load_yaml_recipe", "save_yaml_recipe", "list_templates", "create_recipe_from_template",
               "create_example_recipe"],
    "hybrid": ["match_state_dict", "HybridModel", "PatchSpec", "create_hybrid", "BACKBONE_CONFIGS", "BackboneInfo",
               "WeightLoadingReport"],
}
DOCUMENTED_NAMES = 113


@dataclass(frozen=True)
class Row:
    """``call(obj, tmp_path)`` runs the documented call; ``check(result)`` says it did the documented thing."""

    module: str
    name: str
    call: Callable[[Any, Path], Any]
    check: Callable[[Any], bool]
    warns: str | None = None  # a piece of the new spelling the one DeprecationWarning must name


def x(c: int = 3, s: int = 32, n: int = 2) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(n, c, s, s)


def shape(module: nn.Module, inp: torch.Tensor) -> tuple[int, ...]:
    module.eval()
    with torch.no_grad():
        return tuple(module(inp).shape)


def has(module: nn.Module, cls: type) -> bool:
    return any(isinstance(m, cls) for m in module.modules())


def raises(fn: Callable[[], Any], exc: type[BaseException]) -> BaseException | None:
    try:
        fn()
    except exc as e:
        return e
    return None


def _md(field: str) -> Any:
    return metadata.metadata("torchvision-customizer").get(field)


def _yaml(tmp: Path) -> Path:
    p = tmp / "r.yaml"
    p.write_text("name: tiny\nmacros:\n  w: 16\nstem: conv(16)\nstages:\n  - residual(@w) x 1\nhead: linear(10)\n")
    return p


def _tiny() -> nn.Module:
    return Stem(8, type="simple") >> Stage(8, blocks=1) >> Head(3)


def _fit(Trainer: Any, _t: Path) -> Any:
    from torch.utils.data import DataLoader, TensorDataset

    ds = TensorDataset(torch.randn(8, 3, 16, 16), torch.randint(0, 3, (8,)))
    return Trainer(_tiny(), device="cpu").fit(DataLoader(ds, batch_size=4), epochs=1, optimizer="adam",
                                              scheduler=None, progress=False)


def _partial_load(fn: Any, _t: Path) -> Any:
    src = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8))
    tgt = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.BatchNorm2d(8))
    report = fn(tgt, src.state_dict())
    return report, tgt, src


def _transfer(fn: Any, _t: Path) -> Any:
    src = nn.Sequential(nn.Conv2d(3, 8, 3))
    tgt = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 1))
    kept = tgt[1].weight.detach().clone()
    fn(src, tgt)
    return torch.equal(tgt[0].weight, src[0].weight) and torch.equal(tgt[1].weight, kept)


def _hybrid(**kw: Any) -> Any:
    from torchvision_customizer.hybrid import HybridBuilder

    return HybridBuilder().from_torchvision("resnet18", weights=None, num_classes=10, **kw)


def _builder_chain(B: Any, _t: Path) -> Any:
    return (B().add_initial_conv(3, 16).add_max_pool().add_stage(None, 32, 2)
            .add_stage(None, 64, 2, stride=2, use_bottleneck=True).add_global_avg_pool().build())


def _se_count(m: nn.Module) -> int:
    from torchvision_customizer.blocks import SEBlock

    return sum(isinstance(k, SEBlock) for k in m.modules())


ROWS: list[Row] = [
    # ------------------------------------------------------------------ 1.1: top level
    Row(TOP, "__version__", lambda v, t: v, lambda v: v == metadata.version("torchvision-customizer")),
    Row(TOP, "__author__", lambda v, t: v, lambda v: v == _md("Author")),
    Row(TOP, "__author_email__", lambda v, t: v, lambda v: v == (_md("Author-email") or "")),
    Row(TOP, "__description__", lambda v, t: v, lambda v: v == _md("Summary")),
    Row(TOP, "__license__", lambda v, t: v, lambda v: v == _md("License")),
    Row(TOP, "__url__", lambda v, t: v,
        lambda v: any(v in u for u in metadata.metadata("torchvision-customizer").get_all("Project-URL"))),
    Row(TOP, "registry", lambda r, t: (shape(r.get("cbam_block")(channels=256), x(256, 8)), r.list(), r.info("se"),
                                        r.categories()),
        lambda v: v[0] == (2, 256, 8, 8) and v[1] == sorted(v[1]) and "se" in str(v[2]) and "attention" in v[3]),
    Row(TOP, "Recipe", lambda R, t: shape(__import__(TOP).build_recipe(
        R(stem="conv(64)", stages=["residual(64) x 2"], head="linear(10)")), x()), lambda v: v == (2, 10)),
    Row(TOP, "build_recipe", lambda b, t: shape(b(__import__(TOP).Recipe(
        stem="conv(64)", stages=["residual(64) x 2"], head="linear(10)")), x()), lambda v: v == (2, 10)),
    Row(TOP, "Stem", lambda S, t: shape(S(64) >> Stage(128, blocks=2) >> Head(10), x()), lambda v: v == (2, 10)),
    Row(TOP, "Stage", lambda S, t: Stem(16) >> S(32, blocks=2, pattern="residual", downsample=True),
        lambda m: shape(m, x()) == (2, 32, 4, 4) and m.stages[0].stride == 2),
    Row(TOP, "Head", lambda H, t: H(10, dropout=0.5, in_channels=16), lambda h: has(h, nn.Dropout)),
    Row(TOP, "Compose", lambda C, t: shape(C((3, 32, 32), [Stem(16), Stage(32), Head(10)]), x()),
        lambda v: v == (2, 10)),
    Row(TOP, "Sequential", lambda S, t: shape(S(Stem(16), Stage(32), Head(10)), x()), lambda v: v == (2, 10)),
    Row(TOP, "VisionModel", lambda V, t: V(Stem(16), [Stage(32)], Head(10)),
        lambda m: shape(m, x()) == (2, 10) and m.count_parameters() > 0 and len(m.get_stage_outputs(x())) == 1),
    Row(TOP, "Template", lambda T, t: T.resnet(18).replace_activation("swish").add_attention("se")
        .build(num_classes=10),
        lambda m: _se_count(m) == 8 and has(m, nn.SiLU) and shape(m, x()) == (2, 10)),
    Row(TOP, "resnet", lambda f, t: f(18, num_classes=10),
        lambda m: shape(m, x()) == (2, 10) and sum(p.numel() for p in m.parameters())
        == sum(p.numel() for p in torchvision.models.resnet18(num_classes=10).parameters())),
    Row(TOP, "vgg", lambda f, t: shape(f(11, num_classes=10, channel_scale=0.25), x()), lambda v: v == (2, 10)),
    Row(TOP, "mobilenet", lambda f, t: (f(3, num_classes=10, mode="large"), f(3, num_classes=10, mode="small")),
        lambda ms: shape(ms[0], x()) == (2, 10)
        and sum(p.numel() for p in ms[0].parameters()) > 2 * sum(p.numel() for p in ms[1].parameters())),
    Row(TOP, "densenet", lambda f, t: shape(f(121, num_classes=10), x()), lambda v: v == (2, 10)),
    Row(TOP, "efficientnet", lambda f, t: shape(f("b0", num_classes=10), x()), lambda v: v == (2, 10)),
    Row(TOP, "ConvBlock", lambda C, t: shape(C(3, 16, kernel_size=3, activation="relu", use_batchnorm=True,
                                               dropout_rate=0.1, pooling_type="max"), x()),
        lambda v: v == (2, 16, 16, 16)),
    Row(TOP, "ResidualBlock", lambda R, t: R(64, 128, stride=2, downsample=True, activation="relu", norm_type="batch",
                                             use_se=True, se_reduction=16),
        lambda m: shape(m, x(64, 8)) == (2, 128, 4, 4) and _se_count(m) == 1),
    Row(TOP, "SEBlock", lambda S, t: shape(S(channels=64, reduction=16, activation="relu"), x(64, 8)),
        lambda v: v == (2, 64, 8, 8)),
    Row(TOP, "DepthwiseBlock", lambda D, t: shape(D(32, 64, kernel_size=3, stride=2, padding=1, activation="relu",
                                                    norm_type="batch", add_residual=False), x(32, 8)),
        lambda v: v == (2, 64, 4, 4)),
    Row(TOP, "InceptionModule", lambda M, t: shape(M(in_channels=192, out_1x1=64, out_3x3=128, out_5x5=32,
                                                     out_pool=32), x(192, 8)),
        lambda v: v == (2, 256, 8, 8)),
    Row(TOP, "DenseConnectionBlock", lambda D, t: shape(D(num_layers=4, in_channels=64, growth_rate=32), x(64, 8)),
        lambda v: v == (2, 192, 8, 8)),
    Row(TOP, "StandardBottleneck", lambda B, t: shape(B(in_channels=256, out_channels=256), x(256, 8)),
        lambda v: v == (2, 256, 8, 8)),
    Row(TOP, "WideBottleneck", lambda B, t: shape(B(in_channels=256, out_channels=256, width_multiplier=1.5),
                                                  x(256, 8)), lambda v: v == (2, 256, 8, 8)),
    Row(TOP, "get_activation", lambda f, t: [f(n) for n in ("relu", "gelu", "swish", "mish", "hardswish", "relu6")],
        lambda acts: isinstance(acts[2], nn.SiLU) and all(isinstance(a, nn.Module) for a in acts)),
    Row(TOP, "get_normalization", lambda f, t: shape(f("layer", 64), x(64, 8)), lambda v: v == (2, 64, 8, 8)),
    Row(TOP, "get_pooling", lambda f, t: shape(f("max", kernel_size=2), x()), lambda v: v == (2, 3, 16, 16)),
    Row(TOP, "print_model_summary", lambda f, t: f(_tiny(), (3, 16, 16), verbose=False),
        lambda s: s.total_params > 0 and len(s.rows) == 3),
    Row(TOP, "get_model_flops", lambda f, t: f(torchvision.models.resnet18(), (3, 64, 64)),
        lambda v: 2.5e8 < v < 3.5e8),  # 1 multiply-add = 2 FLOPs; 3.64 GFLOPs at 224 (older: 2.4e16)
    Row(TOP, "validate_architecture", lambda f, t: f(input_shape=(3, 32, 32), num_classes=10, num_conv_blocks=3),
        lambda r: r["valid"] is True),
    Row(TOP, "HybridBuilder", lambda H, t: H().from_torchvision("resnet18", weights=None, num_classes=10,
                                                                patches={"layer4": {"wrap": "se"}}),
        lambda m: shape(m, x()) == (2, 10) and _se_count(m.layer4) == 1),  # the wrap really applies
    Row(TOP, "Trainer", _fit, lambda m: len(m.train_losses) == 1),
    Row(TOP, "TrainingMetrics", lambda T, t: T().summary(), lambda s: "No epochs" in s),  # older: IndexError
    Row(TOP, "quick_train", lambda f, t: raises(lambda: f(_tiny(), dataset="cifar10", epochs=1, data_dir=t,
                                                          verbose=False), FileNotFoundError),
        lambda e: e is not None and "cifar-10-batches-py" in str(e)),  # offline: names the files, no URLError
    Row(TOP, "partial_load", _partial_load,
        lambda v: v[0].total_loaded == 7 and torch.equal(v[1][2].weight, torch.ones(8))),  # new BN keeps its init
    Row(TOP, "transfer_weights", _transfer, lambda ok: ok),  # untransferred layers stay untouched
    Row(TOP, "extract_tiers", lambda f, t: f(torchvision.models.resnet18()),
        lambda d: set(d) == {"stem", "stages", "head", "info"} and len(d["stages"]) == 4),
    Row(TOP, "get_backbone_info", lambda f, t: f(torchvision.models.resnet18()),
        lambda i: i.stage_channels == [64, 128, 256, 512] and "layer1" in i.summary()),
    Row(TOP, "CBAMBlock", lambda C, t: shape(C(channels=256, reduction=16, spatial_kernel=7), x(256, 8)),
        lambda v: v == (2, 256, 8, 8)),
    Row(TOP, "ECABlock", lambda E, t: shape(E(channels=512), x(512, 4)), lambda v: v == (2, 512, 4, 4)),
    Row(TOP, "DropPath", lambda D, t: D(drop_prob=0.5, scale_by_keep=True),
        lambda d: torch.equal(d.eval()(x()), x()) and set(d.train()(torch.ones(64, 1)).flatten().tolist()) <= {0, 2}),
    Row(TOP, "Mish", lambda M, t: M()(x()), lambda y: torch.allclose(y, x() * torch.tanh(F.softplus(x())))),
    Row(TOP, "GeM", lambda G, t: G(p=3.0, eps=1e-6, learnable=True),
        lambda g: shape(g, x(64, 8)) == (2, 64, 1, 1) and isinstance(g.p, nn.Parameter)),
    Row(TOP, "MBConv", lambda M, t: M(32, 64, expansion=4, stride=2),
        lambda m: shape(m, x(32, 16)) == (2, 64, 8, 8) and _se_count(m) == 1),
    Row(TOP, "FusedMBConv", lambda M, t: (M(32, 64, expansion=4, stride=2), M(32, 32, expansion=1)),
        lambda ms: shape(ms[0], x(32, 16)) == (2, 64, 8, 8)
        and sum(isinstance(m, nn.Conv2d) for m in ms[1].modules()) == 1),  # expansion 1: one conv
    # ------------------------------------------------------------------ 1.2: blocks
    Row(BLOCKS, "Conv3DBlock", lambda C, t: shape(C(3, 8), torch.randn(1, 3, 4, 8, 8)),
        lambda v: v == (1, 8, 4, 8, 8)),
    Row(BLOCKS, "SuperConv2d", lambda S, t: shape(S(in_channels=64, out_channels=128), x(64, 8)),
        lambda v: v == (2, 128, 8, 8), warns="ConvNormAct"),
    Row(BLOCKS, "SuperLinear", lambda S, t: S(in_features=512, out_features=10, activation="relu", dropout_rate=0.5),
        lambda m: shape(m, torch.randn(2, 512)) == (2, 10) and has(m, nn.Dropout), warns="nn.Linear"),
    Row(BLOCKS, "GroupedBottleneck", lambda G, t: shape(G(in_channels=256, out_channels=256), x(256, 8)),
        lambda v: v == (2, 256, 8, 8)),
    Row(BLOCKS, "MultiScaleBottleneck", lambda M, t: shape(M(in_channels=36, out_channels=36, use_dilation=True),
                                                           x(36, 8)),
        lambda v: v == (2, 36, 8, 8), warns="res2net"),  # odd bottleneck width: the older release crashed
    Row(BLOCKS, "AsymmetricBottleneck", lambda A, t: shape(A(in_channels=64, out_channels=128, stride=2), x(64, 8)),
        lambda v: v == (2, 128, 4, 4), warns="pattern='bottleneck'"),
    Row(BLOCKS, "create_bottleneck", lambda f, t: shape(f("wide", in_channels=64, out_channels=64,
                                                          width_multiplier=1.5), x(64, 8)),
        lambda v: v == (2, 64, 8, 8), warns="registry.get"),
    Row(BLOCKS, "ResidualStage", lambda R, t: shape(R(in_channels=64, out_channels=128, num_blocks=3, stride=2,
                                                      use_se=True), x(64, 8)),
        lambda v: v == (2, 128, 4, 4), warns="Stage(out_channels"),
    Row(BLOCKS, "ResidualSequence", lambda R, t: shape(R(in_channels=3, num_stages=4, blocks_per_stage=1,
                                                         channels_per_stage=[16, 32, 64, 128]), x()),
        lambda v: v == (2, 128, 4, 4), warns="build_vision_model"),
    Row(BLOCKS, "ResidualBottleneckStage", lambda R, t: shape(R(in_channels=64, out_channels=128, num_blocks=3,
                                                                bottleneck_types=["standard", "wide", "grouped"],
                                                                stride=2), x(64, 8)),
        lambda v: v == (2, 128, 4, 4), warns="Stage(out_channels"),
    Row(BLOCKS, "ResidualArchitectureBuilder", _builder_chain,
        lambda m: shape(m, x(3, 64)) == (2, 64, 1, 1), warns="Stem(...) >> Stage"),
    Row(BLOCKS, "ResidualStageConfig", lambda C, t: C(in_channels=64, out_channels=128, num_blocks=2, stride=2),
        lambda c: c.num_blocks == 2 and shape(c.build(), x(64, 8)) == (2, 128, 4, 4), warns="StageSpec"),
    Row(BLOCKS, "ResidualConnector", lambda R, t: R("projection", in_channels=64, out_channels=128, stride=2)(
        x(128, 4), x(64, 8)), lambda y: tuple(y.shape) == (2, 128, 4, 4) and bool((y >= 0).all()),
        warns="compose.residual"),
    Row(BLOCKS, "SkipConnectionBuilder", lambda S, t: S("residual", num_blocks=5, in_channels=64)([x(64, 8)] * 5),
        lambda y: torch.allclose(y, 5 * x(64, 8)), warns="compose.residual"),
    Row(BLOCKS, "MixedArchitectureBlock", lambda M, t: shape(M(num_layers=4, in_channels=64, out_channels=32,
                                                               mixed_patterns=["residual", "dense", "dense",
                                                                               "standard"]), x(64, 8)),
        lambda v: v == (2, 32, 8, 8), warns="Stage(...)"),  # dense layers and out_channels work now
    Row(BLOCKS, "CoordConv", lambda C, t: shape(C(64, 128, kernel_size=3, with_r=True), x(64, 8)),
        lambda v: v == (2, 128, 8, 8)),
    Row(BLOCKS, "GELUActivation", lambda G, t: G()(x()), lambda y: torch.allclose(y, F.gelu(x())), warns="nn.GELU"),
    Row(BLOCKS, "SqueezeExcitation", lambda S, t: S(256, reduction=8, activation="swish", gate_activation="hardsigmoid",
                                                    use_bn=True),
        lambda m: shape(m, x(256, 4)) == (2, 256, 4, 4) and has(m, nn.SiLU) and has(m, nn.Hardsigmoid)
        and has(m, nn.BatchNorm2d), warns="SEBlock("),
    Row(BLOCKS, "LayerScale", lambda L, t: L(dim=64, init_value=1e-5)(x(64, 4)),
        lambda y: torch.allclose(y, x(64, 4) * 1e-5)),  # NCHW maps (see COMPATIBILITY.md)
    Row(BLOCKS, "ConvBNAct", lambda C, t: C(64, 128, kernel_size=3, activation="swish"),
        lambda m: shape(m, x(64, 8)) == (2, 128, 8, 8) and has(m, nn.SiLU), warns="ConvNormAct"),
    # ------------------------------------------------------------------ 1.2: layers
    Row(LAYERS, "PoolingBlock", lambda P, t: P("max", kernel_size=2, dropout_rate=0.1),
        lambda p: shape(p, x(64)) == (2, 64, 16, 16) and p.calculate_output_size(32, 32) == (16, 16),
        warns="get_pooling"),
    Row(LAYERS, "StochasticPool2d", lambda P, t: P(kernel_size=2),
        lambda p: shape(p.train(), x(64).relu()) == (2, 64, 16, 16)
        and torch.equal(p.eval()(x(64)), F.max_pool2d(x(64), 2))),
    Row(LAYERS, "LPPool2d", lambda P, t: P(norm_type=2, kernel_size=2)(x(64)),
        lambda y: torch.allclose(y, nn.LPPool2d(2, 2)(x(64))), warns="torch.nn.LPPool2d"),
    Row(LAYERS, "ChannelAttention", lambda C, t: shape(C(channels=64, reduction=16), x(64, 8)),
        lambda v: v == (2, 64, 8, 8)),
    Row(LAYERS, "SpatialAttention", lambda S, t: shape(S(kernel_size=7), x(64, 8)), lambda v: v == (2, 64, 8, 8),
        warns="SpatialAttention(in_channels"),
    Row(LAYERS, "ChannelSpatialAttention", lambda C, t: shape(C(channels=64), x(64, 8)),
        lambda v: v == (2, 64, 8, 8), warns="CBAMBlock"),
    Row(LAYERS, "MultiHeadAttention", lambda M, t: M(embed_dim=256, num_heads=8)(torch.randn(2, 32, 256)),
        lambda v: tuple(v[0].shape) == (2, 32, 256) and tuple(v[1].shape) == (2, 8, 32, 32),
        warns="nn.MultiheadAttention"),
    Row(LAYERS, "PositionalEncoding", lambda P, t: (P(d_model=256, max_len=512), torch.randn(2, 32, 256)),
        lambda v: tuple((v[1] + v[0].eval()(v[1])).shape) == (2, 32, 256)),
    Row(LAYERS, "AttentionBlock", lambda A, t: shape(A(channels=64, use_channel=True, use_spatial=True,
                                                       use_cross=True), x(64, 8)),
        lambda v: v == (2, 64, 8, 8), warns="CBAMBlock"),
    # ------------------------------------------------------------------ 1.2: compose
    Row(COMPOSE, "SimpleStem", lambda S, t: S(32), lambda s: s.stride == 1 and shape(s, x()) == (2, 32, 32, 32)),
    Row(COMPOSE, "PatchStem", lambda P, t: shape(P(embed_dim=96, patch_size=16), x(3, 64)),
        lambda v: v == (2, 96, 4, 4)),
    Row(COMPOSE, "TransitionLayer", lambda T, t: shape(T(64, 32), x(64, 8)), lambda v: v == (2, 32, 4, 4)),
    Row(COMPOSE, "SegmentationHead", lambda S, t: shape(Stem(16) >> Stage(16, blocks=1) >> S(21, upsample_factor=4),
                                                        x()), lambda v: v == (2, 21, 32, 32)),
    Row(COMPOSE, "DetectionHead", lambda D, t: shape(Stem(16) >> D(3, num_anchors=9), x()),
        lambda v: v == (2, 9 * (3 + 4), 8, 8)),
    Row(COMPOSE, "build_vision_model", lambda b, t: shape(b((3, 32, 32), 10, stem_channels=16,
                                                            stage_channels=[16, 32], blocks_per_stage=1), x()),
        lambda v: v == (2, 10)),
    Row(COMPOSE, "ComposedModule", lambda C, t: (C, Stem(16) >> Stage(32)),
        lambda v: isinstance(v[1], v[0]) and "total params" in v[1].explain((3, 32, 32))),
    Row(COMPOSE, "BranchedModule", lambda B, t: (B, Stage(16) | Stage(24)),
        lambda v: isinstance(v[1], v[0]) and shape(Stem(16) >> v[1], x()) == (2, 40, 8, 8)),
    Row(COMPOSE, "compose", lambda c, t: shape(c(Stem(16), Stage(32), Head(10)), x()), lambda v: v == (2, 10)),
    Row(COMPOSE, "repeat", lambda r, t: r(Stage(32, in_channels=32, blocks=1), 3),
        lambda m: len(m.stages) == 3 and len({s[0].conv1.weight.data_ptr() for s in m.stages}) == 3),
    Row(COMPOSE, "branch", lambda b, t: shape(Stem(16) >> b(Stage(16), Stage(24)), x()),
        lambda v: v == (2, 40, 8, 8)),
    Row(COMPOSE, "residual", lambda r, t: shape(Stem(16) >> r(Stage(16, blocks=1)), x()),
        lambda v: v == (2, 16, 8, 8)),
    # ------------------------------------------------------------------ 1.2: recipe
    Row(RECIPE, "parse_recipe", lambda p, t: p(__import__(TOP).Recipe(stem="conv(16)", stages=["residual(16) x 2"],
                                                                      head="linear(10)")),
        lambda s: len(s.stages) == 1 and s.stages[0].blocks == 2),
    Row(RECIPE, "parse_definition", lambda p, t: p("residual(64) x 2 | downsample"),
        lambda s: s.type == "residual" and s.blocks == 2 and s.stride == 2),
    Row(RECIPE, "build_from_config", lambda b, t: shape(b({"stem": "conv(16)", "stages": ["residual(16) x 1"],
                                                           "head": "linear(10)"}), x()), lambda v: v == (2, 10)),
    Row(RECIPE, "validate_recipe_config", lambda v, t: (v({"stem": "conv(16)", "stages": ["residual(16)"],
                                                           "head": "linear(10)"}),
                                                         raises(lambda: v({"stagess": []}), ValueError)),
        lambda r: r[0] is True and r[1] is not None),  # unknown keys are errors now
    Row(RECIPE, "expand_macros", lambda e, t: e({"macros": {"w": 32},
                                                 "stages": [{"type": "residual", "channels": "@w"}]}),
        lambda c: c["stages"][0]["channels"] == 32),
    Row(RECIPE, "merge_recipes", lambda m, t: m({"head": {"num_classes": 10, "dropout": 0.1}, "stages": [1, 2]},
                                                {"head": {"num_classes": 5}, "stages": [3]}),
        lambda c: c == {"head": {"num_classes": 5, "dropout": 0.1}, "stages": [3]}),
    Row(RECIPE, "get_template", lambda g, t: g("resnet_base"), lambda c: "stages" in c and "stem" in c),
    Row(RECIPE, "RECIPE_SCHEMA", lambda s, t: s, lambda s: "properties" in s and "stages" in s["properties"]),
    Row(RECIPE, "ValidationError", lambda E, t: (E, raises(
        lambda: __import__(RECIPE, fromlist=["x"]).validate_recipe_config({"stagess": []}), ValueError)),
        lambda v: isinstance(v[1], v[0]) and "stagess" in str(v[1])),
    Row(RECIPE, "load_yaml_config", lambda f, t: f(_yaml(t)), lambda c: c["stages"] == ["residual(16) x 1"]),
    Row(RECIPE, "load_yaml_recipe", lambda f, t: shape(f(_yaml(t)), x()), lambda v: v == (2, 10)),
    Row(RECIPE, "save_yaml_recipe", lambda f, t: (f({"stem": "conv(16)", "stages": ["residual(16)"],
                                                     "head": "linear(10)"}, t / "s.yaml"), t),
        lambda v: Path(v[0]).exists() and __import__(RECIPE, fromlist=["x"]).load_yaml_config(v[0])["head"]
        == "linear(10)"),
    Row(RECIPE, "list_templates", lambda f, t: f(),
        lambda names: {"resnet_base", "efficientnet_base", "hybrid_resnet_se"} <= set(names)),
    Row(RECIPE, "create_recipe_from_template", lambda f, t: (f("resnet_base", t / "c.yaml"), t / "c.yaml"),
        lambda v: "stages" in v[0] and v[1].exists()),
    Row(RECIPE, "create_example_recipe", lambda f, t: f(t / "e.yaml"),
        lambda p: "stages" in __import__(RECIPE, fromlist=["x"]).load_yaml_config(p)),
    # ------------------------------------------------------------------ 1.2: hybrid
    Row(f"{HYBRID}.weight_utils", "match_state_dict",
        lambda m, t: m(torchvision.models.resnet18().state_dict(), torchvision.models.resnet18(num_classes=10)),
        lambda d: "layer1.0.conv1.weight" in d and "fc.weight" not in d),
    Row(HYBRID, "HybridModel", lambda H, t: (H, _hybrid()),
        lambda v: isinstance(v[1], v[0]) and isinstance(v[1], torchvision.models.ResNet)),
    Row(f"{HYBRID}.patch_spec", "PatchSpec", lambda P, t: P("inject", "se", {"rd_ratio": 0.25}, position="before"),
        lambda p: p.as_patch() == {"inject_before": {"block": "se", "params": {"rd_ratio": 0.25}}},
        warns="patch dict"),  # position is honoured now
    Row(HYBRID, "create_hybrid", lambda c, t: c("resnet18", num_classes=10, weights=None,
                                                patches={"layer4": {"wrap": "eca"}}),
        lambda m: shape(m, x()) == (2, 10) and "eca" in m.explain()),
    Row(f"{HYBRID}.extractor", "BACKBONE_CONFIGS", lambda c, t: c,
        lambda c: c["resnet50"]["stages"] == [["layer1"], ["layer2"], ["layer3"], ["layer4"]] and len(c) >= 47,
        warns="CATALOG"),
    Row(HYBRID, "BackboneInfo", lambda B, t: (B, __import__(HYBRID, fromlist=["x"]).get_backbone_info(
        torchvision.models.mobilenet_v3_small())),
        lambda v: isinstance(v[1], v[0]) and len(v[1].stage_channels) > 1),  # multi-stage split, FPN-ready
    Row(f"{HYBRID}.weight_utils", "WeightLoadingReport", lambda W, t: (W, _partial_load(
        __import__(f"{HYBRID}.weight_utils", fromlist=["x"]).partial_load, t)[0]),
        lambda v: isinstance(v[1], v[0]) and v[1].load_ratio > 0 and "loaded" in v[1].summary()),
]


def _row_id(row: Row) -> str:
    return f"{row.module.removeprefix(TOP) or '.'}:{row.name}"


def _ours(records: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in records if issubclass(w.category, DeprecationWarning) and MARK in str(w.message)]


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_documented_name(row: Row, tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        obj = getattr(importlib.import_module(row.module), row.name)
        result = row.call(obj, tmp_path)
    ours = _ours(records)
    if row.warns is None:
        assert not ours, f"{row.name} is current API and must not warn: {ours[0].message}"
    else:
        assert len(ours) == 1, [str(w.message) for w in ours]
        assert row.warns in str(ours[0].message) and row.name.split(".")[0] in str(ours[0].message)
        assert ours[0].filename == __file__  # attributed to the caller, not to the library
    assert row.check(result), f"{row.name}: the documented call did not do the documented thing"


def test_deprecated_names_warn_with_pytest_warns() -> None:
    from torchvision_customizer.blocks import SuperConv2d

    with pytest.warns(DeprecationWarning, match="use ConvNormAct"):
        SuperConv2d(3, 8)


def test_table_covers_every_documented_name() -> None:
    names = [*SECTION_1_1, *(n for group in SECTION_1_2.values() for n in group)]
    assert len(names) == len(set(names)) == DOCUMENTED_NAMES
    assert len(ROWS) == DOCUMENTED_NAMES
    assert sorted(r.name for r in ROWS) == sorted(names)
    assert len({(r.module, r.name) for r in ROWS}) == DOCUMENTED_NAMES


def test_compatibility_md_lists_every_name_with_a_status() -> None:
    text = (Path(__file__).resolve().parents[1] / "COMPATIBILITY.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \| ([^|]+) \|", text, flags=re.M)
    listed = {name: status.strip() for name, _, status in rows}
    assert sorted(listed) == sorted(r.name for r in ROWS)
    for row in ROWS:
        status = listed[row.name]
        assert status == "same" or status.startswith(("better: ", "compat shim: ")), (row.name, status)
        assert status.startswith("compat shim: ") == (row.warns is not None), (row.name, status)


# -------------------------------------------------------------------------- behaviour details
def test_unknown_activations_raise_instead_of_silently_using_relu() -> None:
    from torchvision_customizer.blocks import ConvBNAct, SqueezeExcitation
    from torchvision_customizer.errors import UnknownComponentError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(UnknownComponentError, match="swishh"):
            SqueezeExcitation(64, activation="swishh")
        with pytest.raises(UnknownComponentError, match="sigmod"):
            SqueezeExcitation(64, gate_activation="sigmod")
        with pytest.raises(UnknownComponentError, match="gelu2"):
            ConvBNAct(3, 8, activation="gelu2")
        assert not any(isinstance(m, nn.ReLU) for m in ConvBNAct(3, 8, activation=None).modules())


def test_stochastic_pool_samples_in_proportion_to_activations() -> None:
    from torchvision_customizer.layers import StochasticPool2d

    torch.manual_seed(0)
    window = torch.tensor([[0.0, 1.0], [3.0, 0.0]]).expand(4000, 1, 2, 2)
    out = StochasticPool2d(2).train()(window).flatten()
    assert set(out.unique().tolist()) <= {1.0, 3.0}
    assert abs((out == 3).float().mean().item() - 0.75) < 0.03
    assert StochasticPool2d(2).train()(torch.zeros(1, 1, 2, 2)).item() == 0.0


def test_bad_old_style_arguments_are_located_errors() -> None:
    from torchvision_customizer.blocks import ResidualArchitectureBuilder, ResidualConnector, ResidualSequence
    from torchvision_customizer.errors import BlockValueError, CompositionError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(BlockValueError, match="projection"):
            ResidualConnector("identity", 64, 128)
        with pytest.raises(BlockValueError, match="stride schedule"):
            ResidualSequence(3, 2, 1, [8, 16], stride_schedule="latter")
        with pytest.raises(CompositionError, match="channel mismatch"):
            ResidualArchitectureBuilder().add_initial_conv(3, 16).add_stage(32, 64, 1)


def test_residual_stage_keeps_its_stride_and_attention() -> None:
    from torchvision_customizer.blocks import ResidualStage

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        late = ResidualStage(64, 64, 2, stride=2, downsample_first=False)  # the older release dropped the stride
        se = ResidualStage(64, 128, 2, use_se=True)  # ... and ignored use_se in bottleneck stages
    assert shape(late, x(64, 8)) == (2, 64, 4, 4) and late.blocks[1].stride == 2
    assert _se_count(se) == 2


def test_compat_modules_register_nothing_and_shadow_nothing() -> None:
    import pkgutil

    import torchvision_customizer.blocks as blocks
    from torchvision_customizer import registry
    from torchvision_customizer.blocks import compat

    registered = {registry.get(n) for n in registry.BLOCKS.list()}
    shims = {getattr(compat, n) for n in compat.__all__}
    assert not registered & shims
    for info in pkgutil.iter_modules(blocks.__path__):
        if info.name.startswith("_") or info.name == "compat":
            continue
        other = importlib.import_module(f"{blocks.__name__}.{info.name}")
        assert not set(getattr(other, "__all__", ())) & set(compat.__all__), info.name
    for name in compat.__all__:
        assert getattr(blocks, name) is getattr(compat, name)


def test_layers_import_does_not_import_blocks() -> None:
    code = "import sys, torchvision_customizer.layers; print('torchvision_customizer.blocks' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
