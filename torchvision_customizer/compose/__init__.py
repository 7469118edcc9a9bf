"""The ``>>`` composer: ``Stem(64) >> Stage(128, blocks=2) >> Head(10)``.

Parts are ``nn.Module``s that carry their spec and are built eagerly when ``>>`` binds them; the
result is a :class:`ComposedModel`. Functional forms: :func:`compose`, :func:`repeat`
(independent copies), :func:`branch` (channel concatenation), :func:`residual` (adds identity).
"""

from __future__ import annotations

from typing import Any

from ..blocks.transition import TransitionLayer  # older-release home of the DenseNet transition
from .compat import DetectionHead, SegmentationHead
from .model import (
    BranchedModule,
    Compose,
    ComposedModel,
    ComposedModule,
    FeatureInfo,
    Sequential,
    VisionModel,
    branch,
    chain,
    compose,
    repeat,
    residual,
)
from .parts import Branch, Head, Part, PatchStem, SimpleStem, Stage, Stem

__all__ = [
    "Branch",
    "BranchedModule",
    "Compose",
    "ComposedModel",
    "ComposedModule",
    "DetectionHead",
    "FeatureInfo",
    "Head",
    "Part",
    "PatchStem",
    "SegmentationHead",
    "Sequential",
    "SimpleStem",
    "Stage",
    "Stem",
    "TransitionLayer",
    "VisionModel",
    "branch",
    "build_vision_model",
    "chain",
    "compose",
    "repeat",
    "residual",
]


def build_vision_model(input_shape: tuple[int, int, int] = (3, 224, 224), num_classes: int = 1000,
                       stem_channels: int = 64, stage_channels: Any = (64, 128, 256, 512),
                       blocks_per_stage: Any = 2, pattern: str = "residual", **stage_kwargs: Any) -> ComposedModel:
    """Older-release helper: a ``conv`` stem, one stage per width (stride 2 from the second), a linear head.

    ``blocks_per_stage`` is an int or one int per stage; ``stage_kwargs`` (``attention``,
    ``drop_path``, ``act``, block arguments ...) go to every stage.
    """
    from ..build import build_model
    from ..spec.convert import model_from_dict

    widths = list(stage_channels)
    counts = list(blocks_per_stage) if isinstance(blocks_per_stage, (list, tuple)) else [blocks_per_stage] * len(widths)
    stages = [{"type": pattern, "channels": w, "blocks": n, **({"stride": 2} if i else {}), **stage_kwargs}
              for i, (w, n) in enumerate(zip(widths, counts))]
    spec = model_from_dict({"name": "VisionModel", "input_shape": list(input_shape),
                            "stem": {"type": "conv", "channels": stem_channels}, "stages": stages,
                            "head": {"type": "linear", "num_classes": num_classes}})
    return build_model(spec)
