"""The backbone catalog: every torchvision classification model, split into stem, stages and head.

One stage numbering everywhere (``unfreeze_stages``, ``out_indices``, ``model.stages[i]``,
``get_stage_outputs``, ``param_groups``, YAML recipes): stages count from 0 and the stem is not a
stage. The table below is checked in (tests compare every declared channel count and stride with
a real forward pass); it is never derived from a forward pass at run time.

How each family is split (paths are torchvision's own module paths):

============== ===================================== ==============================================
family         stem                                  stages
============== ===================================== ==============================================
resnet         conv1, bn1, relu, maxpool             layer1 .. layer4
regnet         stem                                  trunk_output.block1 .. block4
shufflenet     conv1, maxpool                        stage2, stage3, stage4, conv5 (final 1x1 conv)
mnasnet        layers.0-2                            layers.3-7 (separable), layers.8 .. 13, layers.14-16
mobilenet_v2   features.0                            groups of equal width, then features.18
mobilenet_v3   features.0                            groups of equal width, then the final 1x1 conv
efficientnet   features.0                            features.1 .. features.N (the last is the 1x1 conv)
convnext       features.0                            features.1; each later stage with its downsample
densenet       features.conv0 .. pool0               denseblock1; transition_i + denseblock_i+1; norm5
vgg            convs before the first max-pool       each stage opens with a max-pool; the last pool
                                                     belongs to the head
alexnet        features.0-1                          features.2-4, features.5-7, features.8-11
googlenet      conv1, maxpool1, conv2, conv3         (maxpool2, 3a, 3b), (maxpool3, 4a-4e), (maxpool4, 5a, 5b)
inception_v3   Conv2d_1a .. maxpool2                 Mixed_5*, Mixed_6*, Mixed_7*
squeezenet     features.0-1                          each stage opens with a max-pool
vit            conv_proj, class_token, pos_embedding one stage per encoder layer (the last with encoder.ln)
swin           features.0 (patch embedding)          features.1; merging + blocks; the last with norm
maxvit         stem                                  blocks.0 .. blocks.3
============== ===================================== ==============================================

The head is the final classifier layer (``classifier``) plus whatever runs between the last stage
and it (``head_parts``). Resizing the head replaces only the final layer, so pretrained hidden
layers stay: VGG/AlexNet's classifier MLP, ConvNeXt's LayerNorm, MobileNetV3's hidden layer,
MaxViT's pre-logits. GoogLeNet's and Inception-v3's auxiliary heads are dropped (as torchvision
does for pretrained weights).

Layouts: ``nchw`` maps; ``nhwc`` for Swin (channels last inside ``features``); ``tokens`` for ViT
(``(N, 1 + h*w, C)`` with a class token). Blocks that expect ``(N, C, H, W)`` maps are adapted to
the other two layouts by the patch engine. ``features_only`` outputs are always NCHW maps.
"""

from __future__ import annotations

import fnmatch
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BackboneError, closest

__all__ = [
    "BackboneSpec",
    "Family",
    "FAMILIES",
    "CATALOG",
    "get_backbone_spec",
    "list_backbones",
    "expand_paths",
    "get_path",
]


# ------------------------------------------------------------------------------------ helpers
def get_path(root: nn.Module, path: str) -> Any:
    """The module or parameter at a dotted ``path`` (``""`` is ``root``); raises ``AttributeError``."""
    obj: Any = root
    if not path:
        return obj
    for part in path.split("."):
        if isinstance(obj, nn.Module) and part in obj._modules:
            obj = obj._modules[part]
        elif isinstance(obj, nn.Module) and part in obj._parameters:
            obj = obj._parameters[part]
        elif isinstance(obj, nn.Module) and part in obj._buffers:
            obj = obj._buffers[part]
        else:
            raise AttributeError(path)
        if obj is None:
            raise AttributeError(path)
    return obj


def expand_paths(text: str) -> tuple[str, ...]:
    """``"features.2-4,avgpool"`` -> ``("features.2", "features.3", "features.4", "avgpool")``."""
    out: list[str] = []
    for item in text.split(","):
        item = item.strip()
        head, _, last = item.rpartition(".")
        if "-" in last and all(p.isdigit() for p in last.split("-")):
            lo, hi = (int(p) for p in last.split("-"))
            out.extend(f"{head}.{i}" if head else str(i) for i in range(lo, hi + 1))
        elif item:
            out.append(item)
    return tuple(out)


def _stages(text: str) -> tuple[tuple[str, ...], ...]:
    return tuple(expand_paths(s) for s in text.split("|"))


# ------------------------------------------------------------------------------ input prep
def _pre_identity(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return x


def _pre_transform_input(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    # GoogLeNet / Inception-v3: torchvision's own input transform (a no-op unless transform_input)
    return model._transform_input(x)


def _pre_vit(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    # (N, 3, H, W) -> (N, 1 + h*w, C): patchify, class token, position embedding, dropout
    x = model._process_input(x)
    x = torch.cat([model.class_token.expand(x.shape[0], -1, -1), x], dim=1)
    return model.encoder.dropout(x + model.encoder.pos_embedding)


# ---------------------------------------------------------------------------------- heads
def _head_pool_fc(model: nn.Module, spec: BackboneSpec, x: torch.Tensor) -> torch.Tensor:
    return model.fc(torch.flatten(model.avgpool(x), 1))


def _head_googlenet(model: nn.Module, spec: BackboneSpec, x: torch.Tensor) -> torch.Tensor:
    return model.fc(model.dropout(torch.flatten(model.avgpool(x), 1)))


def _head_mean_fc(model: nn.Module, spec: BackboneSpec, x: torch.Tensor) -> torch.Tensor:
    return model.fc(x.mean([2, 3]))


def _head_mean_classifier(model: nn.Module, spec: BackboneSpec, x: torch.Tensor) -> torch.Tensor:
    return model.classifier(x.mean([2, 3]))


def _head_pool_flat_classifier(model: nn.Module, spec: BackboneSpec, x: torch.Tensor) -> torch.Tensor:
    return model.classifier(torch.flatten(model.avgpool(x), 1))


def _head_vgg(model: nn.Module, spec: BackboneSpec, x: torch.Tensor) -> torch.Tensor:
    # the rest of ``features`` (its last max-pool, and any block a patch appended after it)
    start = int(spec.head_parts[0].rpartition(".")[2])
    for name, m in model.features.named_children():
        if not name.isdigit() or int(name) >= start:
            x = m(x)
    return model.classifier(torch.flatten(model.avgpool(x), 1))


def _head_mobilenet_v2(model: nn.Module, spec: BackboneSpec, x: torch.Tensor) -> torch.Tensor:
    return model.classifier(torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1))


def _head_convnext(model: nn.Module, spec: BackboneSpec, x: torch.Tensor) -> torch.Tensor:
    return model.classifier(model.avgpool(x))


def _head_densenet(model: nn.Module, spec: BackboneSpec, x: torch.Tensor) -> torch.Tensor:
    return model.classifier(torch.flatten(F.adaptive_avg_pool2d(F.relu(x), (1, 1)), 1))


def _head_squeezenet(model: nn.Module, spec: BackboneSpec, x: torch.Tensor) -> torch.Tensor:
    return torch.flatten(model.classifier(x), 1)


def _head_vit(model: nn.Module, spec: BackboneSpec, x: torch.Tensor) -> torch.Tensor:
    return model.heads(x[:, 0])


def _head_swin(model: nn.Module, spec: BackboneSpec, x: torch.Tensor) -> torch.Tensor:
    return model.head(model.flatten(model.avgpool(model.permute(x))))


def _head_maxvit(model: nn.Module, spec: BackboneSpec, x: torch.Tensor) -> torch.Tensor:
    return model.classifier(x)


# ------------------------------------------------------------------------------- families
@dataclass(frozen=True)
class Family:
    """How one torchvision model family is laid out (shared by its variants).

    Attributes:
        name: family name (``"resnet"``).
        tv_class: the torchvision class name (``"ResNet"``).
        classifier: path of the final layer that ``num_classes`` resizes.
        head_parts: modules between the last stage and the output (replaced by ``nn.Identity``
            when ``features_only=True``); per-model rows may override.
        first_conv: path of the first convolution (adapted for ``in_chans``).
        stem: default stem paths (modules, or parameters such as ViT's ``class_token``).
        stem_runs: whether ``forward_features`` runs the stem modules in order (False when the
            input preparation ``pre`` already does it, as for ViT).
        layout: layout of the stage outputs: ``nchw``, ``nhwc`` or ``tokens``.
        min_size: smallest square input side the family accepts (used by tests and the tracer).
        fixed_size: the input side must equal the size the model was built for (ViT, MaxViT).
        dropout: path of the dropout in front of the classifier that ``dropout=`` sets, if any.
        prefix_tokens: tokens before the patch tokens (ViT's class token).
        aux: auxiliary heads dropped at build time.
        pre: input preparation (``x -> stem input``).
        head_fn: ``(model, spec, last_stage_output) -> logits`` (mirrors torchvision's forward).
    """

    name: str
    tv_class: str
    classifier: str
    head_parts: tuple[str, ...]
    first_conv: str
    stem: tuple[str, ...] = ()
    stem_runs: bool = True
    layout: str = "nchw"
    min_size: int = 32
    fixed_size: bool = False
    dropout: str | None = None
    prefix_tokens: int = 0
    aux: tuple[str, ...] = ()
    pre: Callable[[nn.Module, torch.Tensor], torch.Tensor] = _pre_identity
    head_fn: Callable[[nn.Module, BackboneSpec, torch.Tensor], torch.Tensor] = _head_pool_fc


FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("resnet", "ResNet", "fc", ("avgpool", "fc"), "conv1", stem=("conv1", "bn1", "relu", "maxpool")),
    Family("regnet", "RegNet", "fc", ("avgpool", "fc"), "stem.0", stem=("stem",)),
    Family("shufflenet", "ShuffleNetV2", "fc", ("fc",), "conv1.0", stem=("conv1", "maxpool"),
           head_fn=_head_mean_fc),
    Family("mnasnet", "MNASNet", "classifier.1", ("classifier",), "layers.0", stem=expand_paths("layers.0-2"),
           dropout="classifier.0", head_fn=_head_mean_classifier),
    Family("mobilenet_v2", "MobileNetV2", "classifier.1", ("classifier",), "features.0.0", stem=("features.0",),
           dropout="classifier.0", head_fn=_head_mobilenet_v2),
    Family("mobilenet_v3", "MobileNetV3", "classifier.3", ("avgpool", "classifier"), "features.0.0",
           stem=("features.0",), dropout="classifier.2", head_fn=_head_pool_flat_classifier),
    Family("efficientnet", "EfficientNet", "classifier.1", ("avgpool", "classifier"), "features.0.0",
           stem=("features.0",), dropout="classifier.0", head_fn=_head_pool_flat_classifier),
    Family("convnext", "ConvNeXt", "classifier.2", ("avgpool", "classifier"), "features.0.0",
           stem=("features.0",), head_fn=_head_convnext),
    Family("densenet", "DenseNet", "classifier", ("classifier",), "features.conv0",
           stem=("features.conv0", "features.norm0", "features.relu0", "features.pool0"), head_fn=_head_densenet),
    Family("vgg", "VGG", "classifier.6", ("avgpool", "classifier"), "features.0", dropout="classifier.5",
           head_fn=_head_vgg),
    Family("alexnet", "AlexNet", "classifier.6", ("features.12", "avgpool", "classifier"), "features.0",
           stem=("features.0", "features.1"), min_size=63, dropout="classifier.3", head_fn=_head_vgg),
    Family("googlenet", "GoogLeNet", "fc", ("avgpool", "dropout", "fc"), "conv1.conv",
           stem=("conv1", "maxpool1", "conv2", "conv3"), dropout="dropout", aux=("aux1", "aux2"),
           pre=_pre_transform_input, head_fn=_head_googlenet),
    Family("inception", "Inception3", "fc", ("avgpool", "dropout", "fc"), "Conv2d_1a_3x3.conv",
           stem=("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
                 "Conv2d_4a_3x3", "maxpool2"),
           min_size=75, dropout="dropout", aux=("AuxLogits",), pre=_pre_transform_input, head_fn=_head_googlenet),
    Family("squeezenet", "SqueezeNet", "classifier.1", ("classifier",), "features.0",
           stem=("features.0", "features.1"), dropout="classifier.0", head_fn=_head_squeezenet),
    Family("vit", "VisionTransformer", "heads.head", ("heads",), "conv_proj",
           stem=("conv_proj", "class_token", "encoder.pos_embedding", "encoder.dropout"), stem_runs=False,
           layout="tokens", min_size=224, fixed_size=True, prefix_tokens=1, pre=_pre_vit, head_fn=_head_vit),
    Family("swin", "SwinTransformer", "head", ("permute", "avgpool", "flatten", "head"), "features.0.0",
           stem=("features.0",), layout="nhwc", head_fn=_head_swin),
    Family("maxvit", "MaxVit", "classifier.5", ("classifier",), "stem.0.0", stem=("stem",), min_size=224,
           fixed_size=True, head_fn=_head_maxvit),
)}


@dataclass(frozen=True)
class BackboneSpec:
    """One catalog row: a torchvision model name with its stem, stages and head.

    Attributes:
        name: torchvision model name.
        family: its :class:`Family`.
        stem: stem paths (modules or parameters).
        stages: per stage, the module paths it consists of, in forward order.
        channels: output channels of each stage (NCHW channel dimension).
        strides: output stride of each stage relative to the input.
        head_parts: modules between the last stage and the output.
        giant: over 100M parameters (tests keep these together, one at a time).
    """

    name: str
    family: Family
    stem: tuple[str, ...]
    stages: tuple[tuple[str, ...], ...]
    channels: tuple[int, ...]
    strides: tuple[int, ...]
    head_parts: tuple[str, ...]
    giant: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def classifier(self) -> str:
        return self.family.classifier

    @property
    def first_conv(self) -> str:
        return self.family.first_conv

    @property
    def layout(self) -> str:
        return self.family.layout

    def stage_table(self) -> list[dict[str, Any]]:
        """Rows of ``{index, paths, channels, stride, layout}``."""
        return [{"index": i, "paths": list(p), "channels": c, "stride": s, "layout": self.layout}
                for i, (p, c, s) in enumerate(zip(self.stages, self.channels, self.strides))]


# ----------------------------------------------------------------------------------- table
# name: (family, stages, channels, strides[, stem[, head_parts]]); stages use "|" between stages,
# "," within a stage and "a.2-4" for a.2, a.3, a.4. Checked against real forward passes by
# tests/test_hybrid_catalog.py.
_R4 = "layer1|layer2|layer3|layer4"
_REG = "trunk_output.block1|trunk_output.block2|trunk_output.block3|trunk_output.block4"
_SHUF = "stage2|stage3|stage4|conv5"
_MNAS = "layers.3-7|layers.8|layers.9|layers.10|layers.11|layers.12|layers.13|layers.14-16"
_EFF8 = "|".join(f"features.{i}" for i in range(1, 9))
_EFF7 = "|".join(f"features.{i}" for i in range(1, 8))
_CNX = "features.1|features.2-3|features.4-5|features.6-7"
_DNS = ("features.denseblock1|features.transition1,features.denseblock2|"
        "features.transition2,features.denseblock3|features.transition3,features.denseblock4,features.norm5")
_SWIN = "features.1|features.2-3|features.4-5|features.6-7,norm"
_GOOG = "maxpool2,inception3a,inception3b|maxpool3,inception4a,inception4b,inception4c,inception4d,inception4e|" \
        "maxpool4,inception5a,inception5b"
_INC = "Mixed_5b,Mixed_5c,Mixed_5d|Mixed_6a,Mixed_6b,Mixed_6c,Mixed_6d,Mixed_6e|Mixed_7a,Mixed_7b,Mixed_7c"
_S4 = (4, 8, 16, 32)


def _vit(depth: int) -> str:
    layers = [f"encoder.layers.encoder_layer_{i}" for i in range(depth)]
    layers[-1] += ",encoder.ln"
    return "|".join(layers)


def _vgg(pools: tuple[int, ...]) -> tuple[str, str, tuple[str, ...]]:
    """(stages, stem, head_parts) from the max-pool indices of ``features``."""
    stem = f"features.0-{pools[0] - 1}"
    stages = "|".join(f"features.{a}-{b - 1}" for a, b in itertools.pairwise(pools))
    return stages, stem, (f"features.{pools[-1]}", "avgpool", "classifier")


_ROWS: dict[str, tuple[Any, ...]] = {
    "alexnet": ("alexnet", "features.2-4|features.5-7|features.8-11", (192, 384, 256), (8, 16, 16)),
    "convnext_tiny": ("convnext", _CNX, (96, 192, 384, 768), _S4),
    "convnext_small": ("convnext", _CNX, (96, 192, 384, 768), _S4),
    "convnext_base": ("convnext", _CNX, (128, 256, 512, 1024), _S4),
    "convnext_large": ("convnext", _CNX, (192, 384, 768, 1536), _S4),
    "densenet121": ("densenet", _DNS, (256, 512, 1024, 1024), _S4),
    "densenet161": ("densenet", _DNS, (384, 768, 2112, 2208), _S4),
    "densenet169": ("densenet", _DNS, (256, 512, 1280, 1664), _S4),
    "densenet201": ("densenet", _DNS, (256, 512, 1792, 1920), _S4),
    "efficientnet_b0": ("efficientnet", _EFF8, (16, 24, 40, 80, 112, 192, 320, 1280), (2, 4, 8, 16, 16, 32, 32, 32)),
    "efficientnet_b1": ("efficientnet", _EFF8, (16, 24, 40, 80, 112, 192, 320, 1280), (2, 4, 8, 16, 16, 32, 32, 32)),
    "efficientnet_b2": ("efficientnet", _EFF8, (16, 24, 48, 88, 120, 208, 352, 1408), (2, 4, 8, 16, 16, 32, 32, 32)),
    "efficientnet_b3": ("efficientnet", _EFF8, (24, 32, 48, 96, 136, 232, 384, 1536), (2, 4, 8, 16, 16, 32, 32, 32)),
    "efficientnet_b4": ("efficientnet", _EFF8, (24, 32, 56, 112, 160, 272, 448, 1792), (2, 4, 8, 16, 16, 32, 32, 32)),
    "efficientnet_b5": ("efficientnet", _EFF8, (24, 40, 64, 128, 176, 304, 512, 2048), (2, 4, 8, 16, 16, 32, 32, 32)),
    "efficientnet_b6": ("efficientnet", _EFF8, (32, 40, 72, 144, 200, 344, 576, 2304), (2, 4, 8, 16, 16, 32, 32, 32)),
    "efficientnet_b7": ("efficientnet", _EFF8, (32, 48, 80, 160, 224, 384, 640, 2560), (2, 4, 8, 16, 16, 32, 32, 32)),
    "efficientnet_v2_s": ("efficientnet", _EFF7, (24, 48, 64, 128, 160, 256, 1280), (2, 4, 8, 16, 16, 32, 32)),
    "efficientnet_v2_m": ("efficientnet", _EFF8, (24, 48, 80, 160, 176, 304, 512, 1280), (2, 4, 8, 16, 16, 32, 32, 32)),
    "efficientnet_v2_l": ("efficientnet", _EFF8, (32, 64, 96, 192, 224, 384, 640, 1280), (2, 4, 8, 16, 16, 32, 32, 32)),
    "googlenet": ("googlenet", _GOOG, (480, 832, 1024), (8, 16, 32)),
    "inception_v3": ("inception", _INC, (288, 768, 2048), (8, 16, 32)),
    "maxvit_t": ("maxvit", "blocks.0|blocks.1|blocks.2|blocks.3", (64, 128, 256, 512), _S4),
    "mnasnet0_5": ("mnasnet", _MNAS, (8, 16, 24, 40, 48, 96, 160, 1280), (2, 4, 8, 16, 16, 32, 32, 32)),
    "mnasnet0_75": ("mnasnet", _MNAS, (16, 24, 32, 64, 72, 144, 240, 1280), (2, 4, 8, 16, 16, 32, 32, 32)),
    "mnasnet1_0": ("mnasnet", _MNAS, (16, 24, 40, 80, 96, 192, 320, 1280), (2, 4, 8, 16, 16, 32, 32, 32)),
    "mnasnet1_3": ("mnasnet", _MNAS, (24, 32, 56, 104, 128, 248, 416, 1280), (2, 4, 8, 16, 16, 32, 32, 32)),
    "mobilenet_v2": ("mobilenet_v2",
                     "features.1|features.2-3|features.4-6|features.7-10|features.11-13|features.14-16|"
                     "features.17|features.18",
                     (16, 24, 32, 64, 96, 160, 320, 1280), (2, 4, 8, 16, 16, 32, 32, 32)),
    "mobilenet_v3_large": ("mobilenet_v3",
                           "features.1|features.2-3|features.4-6|features.7-10|features.11-12|features.13-15|"
                           "features.16",
                           (16, 24, 40, 80, 112, 160, 960), (2, 4, 8, 16, 16, 32, 32)),
    "mobilenet_v3_small": ("mobilenet_v3",
                           "features.1|features.2-3|features.4-6|features.7-8|features.9-11|features.12",
                           (16, 24, 40, 48, 96, 576), (4, 8, 16, 16, 32, 32)),
    "regnet_x_400mf": ("regnet", _REG, (32, 64, 160, 400), _S4),
    "regnet_x_800mf": ("regnet", _REG, (64, 128, 288, 672), _S4),
    "regnet_x_1_6gf": ("regnet", _REG, (72, 168, 408, 912), _S4),
    "regnet_x_3_2gf": ("regnet", _REG, (96, 192, 432, 1008), _S4),
    "regnet_x_8gf": ("regnet", _REG, (80, 240, 720, 1920), _S4),
    "regnet_x_16gf": ("regnet", _REG, (256, 512, 896, 2048), _S4),
    "regnet_x_32gf": ("regnet", _REG, (336, 672, 1344, 2520), _S4),
    "regnet_y_400mf": ("regnet", _REG, (48, 104, 208, 440), _S4),
    "regnet_y_800mf": ("regnet", _REG, (64, 144, 320, 784), _S4),
    "regnet_y_1_6gf": ("regnet", _REG, (48, 120, 336, 888), _S4),
    "regnet_y_3_2gf": ("regnet", _REG, (72, 216, 576, 1512), _S4),
    "regnet_y_8gf": ("regnet", _REG, (224, 448, 896, 2016), _S4),
    "regnet_y_16gf": ("regnet", _REG, (224, 448, 1232, 3024), _S4),
    "regnet_y_32gf": ("regnet", _REG, (232, 696, 1392, 3712), _S4),
    "regnet_y_128gf": ("regnet", _REG, (528, 1056, 2904, 7392), _S4),
    "resnet18": ("resnet", _R4, (64, 128, 256, 512), _S4),
    "resnet34": ("resnet", _R4, (64, 128, 256, 512), _S4),
    "resnet50": ("resnet", _R4, (256, 512, 1024, 2048), _S4),
    "resnet101": ("resnet", _R4, (256, 512, 1024, 2048), _S4),
    "resnet152": ("resnet", _R4, (256, 512, 1024, 2048), _S4),
    "resnext50_32x4d": ("resnet", _R4, (256, 512, 1024, 2048), _S4),
    "resnext101_32x8d": ("resnet", _R4, (256, 512, 1024, 2048), _S4),
    "resnext101_64x4d": ("resnet", _R4, (256, 512, 1024, 2048), _S4),
    "wide_resnet50_2": ("resnet", _R4, (256, 512, 1024, 2048), _S4),
    "wide_resnet101_2": ("resnet", _R4, (256, 512, 1024, 2048), _S4),
    "shufflenet_v2_x0_5": ("shufflenet", _SHUF, (48, 96, 192, 1024), (8, 16, 32, 32)),
    "shufflenet_v2_x1_0": ("shufflenet", _SHUF, (116, 232, 464, 1024), (8, 16, 32, 32)),
    "shufflenet_v2_x1_5": ("shufflenet", _SHUF, (176, 352, 704, 1024), (8, 16, 32, 32)),
    "shufflenet_v2_x2_0": ("shufflenet", _SHUF, (244, 488, 976, 2048), (8, 16, 32, 32)),
    "squeezenet1_0": ("squeezenet", "features.2-5|features.6-10|features.11-12", (256, 512, 512), (4, 8, 16)),
    "squeezenet1_1": ("squeezenet", "features.2-4|features.5-7|features.8-12", (128, 256, 512), (4, 8, 16)),
    "swin_t": ("swin", _SWIN, (96, 192, 384, 768), _S4),
    "swin_s": ("swin", _SWIN, (96, 192, 384, 768), _S4),
    "swin_b": ("swin", _SWIN, (128, 256, 512, 1024), _S4),
    "swin_v2_t": ("swin", _SWIN, (96, 192, 384, 768), _S4),
    "swin_v2_s": ("swin", _SWIN, (96, 192, 384, 768), _S4),
    "swin_v2_b": ("swin", _SWIN, (128, 256, 512, 1024), _S4),
    "vgg11": ("vgg", *_vgg((2, 5, 10, 15, 20))),
    "vgg11_bn": ("vgg", *_vgg((3, 7, 14, 21, 28))),
    "vgg13": ("vgg", *_vgg((4, 9, 14, 19, 24))),
    "vgg13_bn": ("vgg", *_vgg((6, 13, 20, 27, 34))),
    "vgg16": ("vgg", *_vgg((4, 9, 16, 23, 30))),
    "vgg16_bn": ("vgg", *_vgg((6, 13, 23, 33, 43))),
    "vgg19": ("vgg", *_vgg((4, 9, 18, 27, 36))),
    "vgg19_bn": ("vgg", *_vgg((6, 13, 26, 39, 52))),
    "vit_b_16": ("vit", _vit(12), (768,) * 12, (16,) * 12),
    "vit_b_32": ("vit", _vit(12), (768,) * 12, (32,) * 12),
    "vit_l_16": ("vit", _vit(24), (1024,) * 24, (16,) * 24),
    "vit_l_32": ("vit", _vit(24), (1024,) * 24, (32,) * 24),
    "vit_h_14": ("vit", _vit(32), (1280,) * 32, (14,) * 32),
}
# VGG rows carry (stages, stem, head_parts) from _vgg; give them their channels and strides
for _n in [n for n in _ROWS if n.startswith("vgg")]:
    _fam, _st, _stem, _hp = _ROWS[_n]
    _ROWS[_n] = (_fam, _st, (128, 256, 512, 512), (2, 4, 8, 16), _stem, _hp)

#: models with more than 100M parameters: built one at a time in the catalog tests
GIANTS = frozenset({
    "convnext_large", "efficientnet_v2_l", "regnet_x_32gf", "regnet_y_32gf", "regnet_y_128gf",
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "vit_l_16", "vit_l_32", "vit_h_14", "wide_resnet101_2",
})


def _make_spec(name: str, row: tuple[Any, ...]) -> BackboneSpec:
    fam = FAMILIES[row[0]]
    stages = _stages(row[1])
    stem = expand_paths(row[4]) if len(row) > 4 and row[4] else fam.stem
    head_parts = tuple(row[5]) if len(row) > 5 else fam.head_parts
    return BackboneSpec(name=name, family=fam, stem=stem, stages=stages, channels=tuple(row[2]),
                        strides=tuple(row[3]), head_parts=head_parts, giant=name in GIANTS)


#: torchvision model name -> :class:`BackboneSpec`
CATALOG: dict[str, BackboneSpec] = {n: _make_spec(n, r) for n, r in sorted(_ROWS.items())}


def list_backbones(filter: str | None = None) -> list[str]:
    """Sorted catalog names, optionally filtered by an fnmatch pattern (``"resnet*"``)."""
    names = sorted(CATALOG)
    if filter is None:
        return names
    return [n for n in names if fnmatch.fnmatchcase(n, filter.lower())]


def get_backbone_spec(name: str) -> BackboneSpec:
    """The catalog row for ``name``; an unknown name lists the nearest names."""
    if not isinstance(name, str):
        raise BackboneError("backbone names must be strings", where="catalog", expected="a name such as "
                            "'resnet50'", got=name)
    spec = CATALOG.get(name.strip().lower())
    if spec is None:
        raise BackboneError(f"unknown backbone {name!r}", where="torchvision_customizer.hybrid catalog",
                            expected=f"one of {len(CATALOG)} torchvision classification models "
                                     "(list_backbones())",
                            suggestions=closest(name.strip().lower(), CATALOG, n=5, cutoff=0.4),
                            hint="timm models go through HybridBuilder().from_timm(name)") from None
    return spec
