"""Dense-prediction heads at their older-release home: ``SegmentationHead`` and ``DetectionHead``.

Both are composer parts with the role ``head``: ``Stem(64) >> Stage(128) >> SegmentationHead(21)``
binds them at once to the incoming channels (the older release built them lazily at the first
forward, so an optimizer created before it missed their parameters, and fx/export failed). Given
``in_channels=`` they are built on the spot. They have no recipe spelling, so ``to_recipe()`` on a
model that ends in one is a clear error.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import CompositionError
from ..layers import ConvNormAct, check_channels, check_int
from .parts import _SequentialPart

__all__ = ["DetectionHead", "SegmentationHead"]


class _DenseHead(_SequentialPart):
    role = "head"

    def _init_common(self, in_channels: int | None, device: Any, dtype: Any) -> None:
        self._factory = {"device": device, "dtype": dtype}
        if in_channels is not None:
            self._fixed_in = check_channels("in_channels", in_channels, type(self).__name__)
            self._bind_in_place(in_channels)

    @property
    def spec(self) -> Any:
        raise CompositionError(f"{type(self).__name__} has no recipe spelling", where=type(self).__name__,
                               hint="recipes end in a classification head; keep this model in Python or save it "
                                    "with torch.save(model.state_dict())")


class SegmentationHead(_DenseHead):
    """Per-pixel classes: ``3x3 conv-BN-ReLU (hidden_channels) -> 1x1 conv (num_classes) [-> bilinear upsample]``.

    Output ``(N, num_classes, H * upsample_factor, W * upsample_factor)``; children ``conv``,
    ``cls`` and ``upsample``.

    Example:
        >>> model = Stem(32) >> Stage(64, blocks=1) >> SegmentationHead(21, upsample_factor=4)  # doctest: +SKIP
    """

    def __init__(self, num_classes: int, in_channels: int | None = None, hidden_channels: int = 256,
                 upsample_factor: int = 1, *, device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.num_classes = check_channels("num_classes", num_classes, "SegmentationHead")
        self.hidden_channels = check_channels("hidden_channels", hidden_channels, "SegmentationHead")
        self.upsample_factor = check_int("upsample_factor", upsample_factor, owner="SegmentationHead")
        self.out_channels = num_classes
        self._init_common(in_channels, device, dtype)

    def _build(self, in_channels: int) -> None:
        layers: list[tuple[str, nn.Module]] = [
            ("conv", ConvNormAct(in_channels, self.hidden_channels, 3, **self._factory)),
            ("cls", nn.Conv2d(self.hidden_channels, self.num_classes, 1, **self._factory)),
        ]
        if self.upsample_factor > 1:
            layers.append(("upsample", nn.Upsample(scale_factor=self.upsample_factor, mode="bilinear",
                                                   align_corners=False)))
        self._add_layers(layers)

    def fresh(self) -> SegmentationHead:
        return SegmentationHead(self.num_classes, hidden_channels=self.hidden_channels,
                                upsample_factor=self.upsample_factor, **self._factory)

    def label(self) -> str:
        return f"SegmentationHead({self.num_classes})"


class DetectionHead(_DenseHead):
    """Anchor predictions: one 3x3 conv to ``num_anchors * (num_classes + 4)`` channels (scores, then box).

    Output ``(N, num_anchors * (num_classes + 4), H, W)`` as the older release documented; child ``conv``.
    """

    def __init__(self, num_classes: int, num_anchors: int = 9, in_channels: int | None = None, *,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.num_classes = check_channels("num_classes", num_classes, "DetectionHead")
        self.num_anchors = check_int("num_anchors", num_anchors, owner="DetectionHead")
        self.out_channels = num_anchors * (num_classes + 4)
        self._init_common(in_channels, device, dtype)

    def _build(self, in_channels: int) -> None:
        self._add_layers([("conv", nn.Conv2d(in_channels, self.out_channels, 3, padding=1,  # type: ignore[arg-type]
                                             **self._factory))])

    def fresh(self) -> DetectionHead:
        return DetectionHead(self.num_classes, self.num_anchors, **self._factory)

    def label(self) -> str:
        return f"DetectionHead({self.num_classes}, anchors={self.num_anchors})"
