"""Weights: sources, partial loading with a full report, adaptation rules, safe checkpoints.

* :func:`partial_load` / :func:`transfer_weights` fill a model and return a :class:`LoadReport`;
* :func:`resolve_weights` turns ``None``, ``"DEFAULT"``, a tag, an enum, a path or a state dict
  into weights, offline-friendly (torchvision's cache, never a raw ``URLError``);
* :func:`save_model` / :func:`load_model` write and read self-describing safetensors checkpoints;
* every ``torch.load`` passes ``weights_only=True``.
"""

from __future__ import annotations

from ._files import load_state_dict_file, unwrap_checkpoint
from .checkpoint import (
    FORMAT_VERSION,
    build_and_load,
    describe_architecture,
    load_model,
    read_checkpoint_metadata,
    register_rebuilder,
    save_model,
)
from .load import (
    WRAPPER_PREFIXES,
    count_matching_params,
    get_layer_shapes,
    match_state_dict,
    partial_load,
    transfer_weights,
)
from .report import LoadReport, WeightLoadingReport
from .rules import KEEP_INIT_ATTR, adapt_input_conv
from .sources import ResolvedWeights, resolve_weights, weights_meta, weights_transforms

__all__ = [
    "FORMAT_VERSION",
    "KEEP_INIT_ATTR",
    "WRAPPER_PREFIXES",
    "LoadReport",
    "ResolvedWeights",
    "WeightLoadingReport",
    "adapt_input_conv",
    "build_and_load",
    "count_matching_params",
    "describe_architecture",
    "get_layer_shapes",
    "load_model",
    "load_state_dict_file",
    "match_state_dict",
    "partial_load",
    "read_checkpoint_metadata",
    "register_rebuilder",
    "resolve_weights",
    "save_model",
    "transfer_weights",
    "unwrap_checkpoint",
    "weights_meta",
    "weights_transforms",
]
