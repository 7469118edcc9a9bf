"""Utilities: model summaries, exact FLOP counts, architecture checks.

``print_model_summary(model, input_shape)``, ``get_model_flops(model, input_shape)`` (exact, from
``torch.utils.flop_counter``; 1 multiply-add = 2 FLOPs) and ``validate_architecture``.
"""

from __future__ import annotations

from .summary import ModelSummary, SummaryRow, get_model_flops, model_summary, print_model_summary
from .validators import validate_architecture

__all__ = [
    "ModelSummary",
    "SummaryRow",
    "get_model_flops",
    "model_summary",
    "print_model_summary",
    "validate_architecture",
]
