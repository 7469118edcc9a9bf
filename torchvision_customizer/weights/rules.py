"""Adaptation rules: small, pure functions that decide how a source tensor may fill a model tensor.

:func:`~torchvision_customizer.weights.partial_load` applies them (``adapt=True``) after exact
key-and-shape matching and records each use in ``LoadReport.adapted`` under the rule's name:

* ``input_conv_sum`` / ``input_conv_zeros`` / ``input_conv_repeat``: a 3-channel first convolution
  adapted to another number of input channels (:func:`adapt_input_conv`).
* ``norm_swap:<source kind>-><ModelNorm>``: BatchNorm <-> FrozenBatchNorm / GroupNorm / LayerNorm
  affine parameters (and running statistics where both sides keep them), see :func:`norm_swap`.

A classifier (or any module) whose weights do not fit is never half-loaded: see
:func:`modules_to_keep_whole`. How tensors that were not loaded may be re-initialized is
:func:`init_tensor_`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import torch
from torch import nn

from ..errors import WeightLoadingError, closest

__all__ = [
    "INIT_SCHEMES",
    "INPUT_CONV_MODES",
    "KEEP_INIT_ATTR",
    "adapt_input_conv",
    "can_adapt_input_conv",
    "find_input_conv",
    "init_tensor_",
    "module_of",
    "modules_to_keep_whole",
    "norm_kind",
    "norm_swap",
    "resolve_input_conv_mode",
    "source_norm_kind",
]

#: Modes of :func:`adapt_input_conv`.
INPUT_CONV_MODES = ("auto", "sum", "zeros", "repeat")
#: Schemes accepted by ``init_new_layers``.
INIT_SCHEMES = ("kaiming", "xavier", "normal", "zeros")
#: A module with this attribute set to True (or any registered block, i.e. a class with a
#: ``block_name``) keeps its own deliberate initialization (identity at init, zero gates) even when
#: ``init_new_layers`` is given.
KEEP_INIT_ATTR = "_tvc_keep_init"

_RGB = 3


# ---------------------------------------------------------------------------- keys
def module_of(key: str) -> str:
    """The dotted path of the module that owns a state-dict key (``"layer1.0.bn1"``; ``""`` for root)."""
    return key.rpartition(".")[0]


def modules_to_keep_whole(mismatched: Iterable[str], filled: Iterable[str]) -> dict[str, str]:
    """Filled keys that must not be loaded because a sibling tensor of the same module mismatched.

    A classifier whose ``weight`` changed shape but whose ``bias`` happens to fit (or the reverse)
    would otherwise be half-loaded. Root-level tensors (no module) are independent of each other.

    Returns:
        filled key -> the mismatched sibling key that rules it out.
    """
    bad: dict[str, str] = {}
    for key in mismatched:
        owner = module_of(key)
        if owner:
            bad.setdefault(owner, key)
    return {k: bad[module_of(k)] for k in filled if module_of(k) in bad}


# ---------------------------------------------------------------- input channels
def resolve_input_conv_mode(in_chans: int, mode: str = "auto") -> str:
    """The concrete mode for ``in_chans``: ``auto`` is ``sum`` for 1, ``zeros`` for > 3, ``repeat`` for 2."""
    if mode not in INPUT_CONV_MODES:
        raise WeightLoadingError("unknown input-conv adaptation mode", where="input_conv_mode",
                                 expected="one of " + ", ".join(INPUT_CONV_MODES), got=mode,
                                 suggestions=closest(str(mode), INPUT_CONV_MODES))
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
        raise WeightLoadingError("in_chans must be a positive integer", where="adapt_input_conv",
                                 expected="an int >= 1", got=in_chans)
    if mode == "auto":
        return "sum" if in_chans == 1 else "zeros" if in_chans > _RGB else "repeat"
    if mode == "sum" and in_chans != 1:
        raise WeightLoadingError("mode 'sum' folds RGB into one channel", where="adapt_input_conv",
                                 expected="in_chans=1", got=in_chans, hint="use mode='repeat' or 'zeros'")
    if mode == "zeros" and in_chans < _RGB:
        raise WeightLoadingError("mode 'zeros' keeps the RGB kernels and adds zero channels",
                                 where="adapt_input_conv", expected="in_chans >= 3", got=in_chans,
                                 hint="use mode='sum' (1 channel) or 'repeat'")
    return mode


def adapt_input_conv(weight: torch.Tensor, in_chans: int, mode: str = "auto") -> torch.Tensor:
    """Adapt a ``(out, 3, kh, kw)`` convolution kernel trained on RGB to ``in_chans`` inputs.

    Modes:
        ``sum`` (``in_chans=1``): the RGB kernels summed, so a gray image replicated to RGB gives
        the same response.
        ``zeros`` (``in_chans > 3``): RGB kernels kept and zero kernels appended, so the response to
        the first three channels is exactly the pretrained one and the extra channels start silent.
        ``repeat``: the RGB kernels tiled to ``in_chans`` and scaled by ``3 / in_chans``, so an
        input that repeats RGB gives the same response.
        ``auto``: ``sum`` for 1 channel, ``zeros`` for more than 3, ``repeat`` for 2.

    Returns a new tensor of shape ``(out, in_chans, kh, kw)`` and the input's dtype; the input is
    not modified. Computation is in float32 at least.

    Example:
        >>> w = torch.randn(8, 3, 3, 3)
        >>> adapt_input_conv(w, 1).shape
        torch.Size([8, 1, 3, 3])
    """
    if not isinstance(weight, torch.Tensor) or weight.dim() < 3 or weight.shape[1] != _RGB:
        raise WeightLoadingError("adapt_input_conv needs an RGB convolution kernel",
                                 where="adapt_input_conv", expected="a tensor of shape (out, 3, k...)",
                                 got=tuple(weight.shape) if isinstance(weight, torch.Tensor) else weight)
    mode = resolve_input_conv_mode(in_chans, mode)
    w = weight.detach()
    work = w.float() if w.is_floating_point() and w.dtype in (torch.float16, torch.bfloat16) else w
    if mode == "sum":
        out = work.sum(dim=1, keepdim=True)
    elif mode == "zeros":
        extra = work.new_zeros((work.shape[0], in_chans - _RGB, *work.shape[2:]))
        out = torch.cat([work, extra], dim=1)
    else:  # repeat
        reps = math.ceil(in_chans / _RGB)
        out = work.repeat(1, reps, *([1] * (work.dim() - 2)))[:, :in_chans] * (_RGB / in_chans)
    return out.to(weight.dtype).contiguous()


def can_adapt_input_conv(source_shape: tuple[int, ...], model_shape: tuple[int, ...]) -> bool:
    """True when a source kernel ``(out, 3, k...)`` fits ``(out, N != 3, k...)`` by :func:`adapt_input_conv`."""
    return (len(source_shape) == len(model_shape) >= 3 and source_shape[1] == _RGB
            and model_shape[1] != _RGB and source_shape[0] == model_shape[0]
            and source_shape[2:] == model_shape[2:])


def find_input_conv(model: nn.Module) -> str | None:
    """State-dict key of the first ungrouped convolution's weight (registration order), or None."""
    for name, mod in model.named_modules():
        if isinstance(mod, nn.modules.conv._ConvNd) and mod.groups == 1 and not mod.transposed:
            return f"{name}.weight" if name else "weight"
    return None


# ------------------------------------------------------------------------ norms
def norm_kind(module: nn.Module) -> str | None:
    """``"batch"`` (running statistics and a batch counter), ``"frozen_batch"`` (statistics, no
    counter), ``"affine"`` (scale and shift only: GroupNorm, LayerNorm, InstanceNorm, untracked
    BatchNorm) or None when ``module`` is not a normalization layer."""
    if isinstance(module, nn.modules.batchnorm._NormBase):
        if getattr(module, "running_mean", None) is not None:
            return "batch" if getattr(module, "num_batches_tracked", None) is not None else "frozen_batch"
        return "affine"
    if isinstance(module, (nn.GroupNorm, nn.LayerNorm)):
        return "affine"
    if "Norm" in type(module).__name__:  # torchvision.ops.FrozenBatchNorm2d and ours keep buffers only
        names = {n for n, _ in module.named_buffers(recurse=False)}
        if {"weight", "bias", "running_mean", "running_var"} <= names:
            return "frozen_batch"
    return None


def source_norm_kind(prefix: str, source_keys: Mapping[str, object] | set[str]) -> str | None:
    """The kind of norm a source module at ``prefix`` was, judged from its keys (see :func:`norm_kind`)."""
    p = f"{prefix}." if prefix else ""
    if p + "running_mean" in source_keys:
        return "batch" if p + "num_batches_tracked" in source_keys else "frozen_batch"
    if p + "weight" in source_keys or p + "bias" in source_keys:
        return "affine"
    return None


_STATS = ("running_mean", "running_var")


def norm_swap(source_kind: str, model_kind: str, model_class: str,
              model_leaves: Iterable[str]) -> tuple[str | None, dict[str, str], dict[str, str]]:
    """How a norm's tensors transfer when the source norm and the model's norm differ in kind.

    Args:
        source_kind: :func:`source_norm_kind` of the source module.
        model_kind: :func:`norm_kind` of the model's module.
        model_class: the model module's class name (for the rule's name).
        model_leaves: the model module's state-dict leaf names (``weight``, ``bias``, ...).

    Returns:
        ``(rule, drop, keep)``: the rule name under which leaves present on both sides with equal
        shapes are loaded (``None``: they are plainly ``loaded``, the norms being the same function);
        source leaves deliberately dropped -> reason; model leaves that keep their own value by
        design -> reason. Anything else stays missing/unexpected.

    A source with running statistics but no batch counter into a BatchNorm is not a swap: it is
    what FrozenBatchNorm and torchvision's older checkpoints (which predate the counter) hold, so
    its tensors load plainly and the model keeps its own counter, as ``torch`` itself does.
    """
    leaves = set(model_leaves)
    stats = source_kind in ("batch", "frozen_batch")
    rule = None if (source_kind == "frozen_batch" and model_kind == "batch") else \
        f"norm_swap:{source_kind}->{model_class}"
    label = rule or "the source norm"
    drop: dict[str, str] = {}
    keep: dict[str, str] = {}
    if "num_batches_tracked" not in leaves and source_kind == "batch":
        drop["num_batches_tracked"] = f"{rule}: {model_class} has no batch counter"
    if model_kind == "affine" and stats:
        for s in _STATS:
            drop[s] = f"{rule}: {model_class} keeps no running statistics"
    if "num_batches_tracked" in leaves and source_kind != "batch":
        keep["num_batches_tracked"] = f"model value (kept: {label} has no batch counter)"
    return rule, drop, keep


# ----------------------------------------------------------------- initialization
def _is_norm(module: nn.Module) -> bool:
    return norm_kind(module) is not None or isinstance(module, nn.modules.instancenorm._InstanceNorm)


@torch.no_grad()
def init_tensor_(tensor: torch.Tensor, module: nn.Module, leaf: str, scheme: str) -> str:
    """Re-initialize one tensor of ``module`` in place by ``scheme``; return what it holds now.

    Norm layers are never zeroed: scale -> 1, shift -> 0, running mean -> 0, running variance -> 1,
    batch counter -> 0. Other biases -> 0. Weights with two or more dimensions -> ``scheme``
    (``kaiming``: normal, fan_out, ReLU gain; ``xavier``: uniform; ``normal``: std 0.01; ``zeros``).
    Anything else (1-D scales such as layer-scale gammas, embeddings, extra buffers) keeps the
    model's value, since no general rule fits it.
    """
    if scheme not in INIT_SCHEMES:
        raise WeightLoadingError("unknown init_new_layers scheme", where="init_new_layers",
                                 expected="None or one of " + ", ".join(INIT_SCHEMES), got=scheme,
                                 suggestions=closest(str(scheme), INIT_SCHEMES))
    if _is_norm(module):
        if leaf in ("weight", "running_var"):
            tensor.fill_(1)
            return "ones (norm scale)" if leaf == "weight" else "ones (running variance)"
        if leaf in ("bias", "running_mean", "num_batches_tracked"):
            tensor.zero_()
            return f"zeros (norm {leaf.replace('_', ' ')})" if leaf != "bias" else "zeros (norm shift)"
        return "model init (kept: no rule for this norm tensor)"
    if leaf == "bias" and tensor.is_floating_point():
        tensor.zero_()
        return "zeros (bias)"
    if leaf == "weight" and tensor.dim() >= 2 and tensor.is_floating_point():
        if scheme == "kaiming":
            nn.init.kaiming_normal_(tensor, mode="fan_out", nonlinearity="relu")
            return "kaiming_normal (fan_out, relu)"
        if scheme == "xavier":
            nn.init.xavier_uniform_(tensor)
            return "xavier_uniform"
        if scheme == "normal":
            nn.init.normal_(tensor, 0.0, 0.01)
            return "normal (std 0.01)"
        tensor.zero_()
        return "zeros"
    return f"model init (kept: no {scheme} rule for {leaf!r} of {type(module).__name__})"
