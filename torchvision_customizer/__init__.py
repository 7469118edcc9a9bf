"""torchvision-customizer: customize pretrained torchvision models and build CNNs from blocks.

Customizing never destroys pretrained knowledge and never fails silently::

    >>> from torchvision_customizer import registry
    >>> block = registry.get("cbam_block")(channels=256)

Heavy names are imported lazily on first access, so ``import torchvision_customizer`` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import errors, registry
from ._version import __version__
from .errors import TVCError

# public name -> module that defines it (imported on first attribute access)
_LAZY: dict[str, str] = {
    # blocks
    "Block": "blocks",
    "ConvBlock": "blocks",
    "ResidualBlock": "blocks",
    "SEBlock": "blocks",
    "CBAMBlock": "blocks",
    "ECABlock": "blocks",
    "DropPath": "blocks",
    "MBConv": "blocks",
    "FusedMBConv": "blocks",
    "DepthwiseBlock": "blocks",
    "InceptionModule": "blocks",
    "DenseConnectionBlock": "blocks",
    "StandardBottleneck": "blocks",
    "WideBottleneck": "blocks",
    # recipes, composer, templates, utils
    "Recipe": "recipe",
    "build_recipe": "recipe",
    "load_yaml_recipe": "recipe",
    "save_yaml_recipe": "recipe",
    "Stem": "compose",
    "Stage": "compose",
    "Head": "compose",
    "Branch": "compose",
    "Compose": "compose",
    "Sequential": "compose",
    "VisionModel": "compose",
    "ComposedModel": "compose",
    "build_vision_model": "compose",
    "Template": "templates",
    "resnet": "templates",
    "vgg": "templates",
    "mobilenet": "templates",
    "densenet": "templates",
    "efficientnet": "templates",
    "print_model_summary": "utils",
    "get_model_flops": "utils",
    "validate_architecture": "utils",
    "ModelSpec": "spec",
    # weights
    "partial_load": "weights",
    "transfer_weights": "weights",
    "LoadReport": "weights",
    "WeightLoadingReport": "weights",
    "get_layer_shapes": "weights",
    "count_matching_params": "weights",
    "match_state_dict": "weights",
    "save_model": "weights",
    "load_model": "weights",
    "resolve_weights": "weights",
    # training
    "Trainer": "train",
    "TrainingMetrics": "train",
    "quick_train": "train",
    "fit_digits": "train",
    "fit_mnist": "train",
    "fit_cifar10": "train",
    "fit_cifar100": "train",
    "fit_folder": "train",
    # layers
    "Mish": "layers",
    "GeM": "layers",
    "get_activation": "layers",
    "get_normalization": "layers",
    "get_pooling": "layers",
    # hybrid (older-release top-level names)
    "HybridBuilder": "hybrid",
    "HybridModel": "hybrid",
    "create_hybrid": "hybrid",
    "list_backbones": "hybrid",
    "extract_tiers": "hybrid",
    "get_backbone_info": "hybrid",
    # package metadata (older-release top-level names; __version__ is imported above)
    "__author__": "models._about",
    "__author_email__": "models._about",
    "__description__": "models._about",
    "__license__": "models._about",
    "__url__": "models._about",
}

__all__ = ["TVCError", "__version__", "errors", "registry", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'torchvision_customizer' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
