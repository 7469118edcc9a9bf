"""The older release's ``torchvision_customizer.hybrid.weight_utils`` module path.

Everything here is the current :mod:`torchvision_customizer.weights` API under its older home
(no warning): ``partial_load`` (keeps a new layer's own initialization instead of zeroing BatchNorm
scales, takes files too, returns a full ``LoadReport``), ``transfer_weights`` (leaves untransferred
layers untouched), ``match_state_dict``, ``WeightLoadingReport`` (= ``LoadReport``),
``get_layer_shapes`` and ``count_matching_params``.
"""

from __future__ import annotations

from ..weights import (
    LoadReport,
    WeightLoadingReport,
    count_matching_params,
    get_layer_shapes,
    match_state_dict,
    partial_load,
    transfer_weights,
)

__all__ = [
    "LoadReport",
    "WeightLoadingReport",
    "count_matching_params",
    "get_layer_shapes",
    "match_state_dict",
    "partial_load",
    "transfer_weights",
]
