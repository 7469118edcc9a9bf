"""``validate_architecture``: check that a model (or an older-style config) is well formed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import CompositionError, RecipeError

__all__ = ["validate_architecture"]


def _model_of(obj: Any) -> nn.Module:
    if isinstance(obj, nn.Module):
        return obj
    from ..recipe import Recipe, build_recipe
    from ..spec.model import ModelSpec

    if isinstance(obj, (Recipe, ModelSpec)):
        return build_recipe(obj, device="meta")
    from ..recipe import load_yaml_config

    return build_recipe(Recipe.from_dict({k: v for k, v in load_yaml_config(obj).items()
                                          if k in ("name", "input_shape", "stem", "stages", "head",
                                                   "drop_path_rate")}), device="meta")


def validate_architecture(model: Any = None, input_shape: Sequence[int] = (3, 224, 224),
                          num_classes: int | None = None, num_conv_blocks: int | None = None,
                          channels: Any = "auto", **_legacy: Any) -> dict[str, Any]:
    """Check an architecture; return a report dict or raise our error with the problem.

    * With ``model`` (an ``nn.Module``, :class:`~torchvision_customizer.recipe.Recipe`,
      :class:`~torchvision_customizer.spec.ModelSpec` or YAML path): it runs one forward over
      ``input_shape`` (on the ``meta`` device for recipes) and checks the output has
      ``num_classes`` features. Report: ``valid``, ``output_shape``, ``params``.
    * Without a model (the older release's config check): ``num_conv_blocks`` halvings of
      ``input_shape`` must leave at least 1 pixel and ``channels`` must be ``"auto"`` or one
      positive width per block. Report: ``valid``, ``final_spatial``.
    """
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise RecipeError("input_shape must be (C, H, W) with positive integers", got=input_shape,
                          where="validate_architecture")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise RecipeError("num_classes must be a positive integer", got=num_classes, where="validate_architecture")
    if model is None:
        if num_conv_blocks is None or not isinstance(num_conv_blocks, int) or num_conv_blocks < 1:
            raise RecipeError("give a model, or num_conv_blocks >= 1", got=num_conv_blocks,
                              where="validate_architecture")
        bad_channels = channels != "auto" and (
            not isinstance(channels, (list, tuple)) or len(channels) != num_conv_blocks
            or not all(isinstance(c, int) and c > 0 for c in channels))
        if bad_channels:
            raise RecipeError("channels must be 'auto' or one positive width per conv block", got=channels,
                              where="validate_architecture", expected=f"{num_conv_blocks} positive integers")
        h, w = shape[1] >> num_conv_blocks, shape[2] >> num_conv_blocks
        if h < 1 or w < 1:
            raise RecipeError(f"{num_conv_blocks} downsampling blocks leave no pixels of a {shape[1]}x{shape[2]} "
                              "input", got=num_conv_blocks, where="validate_architecture",
                              expected=f"at most {min(shape[1], shape[2]).bit_length() - 1} blocks")
        return {"valid": True, "final_spatial": (h, w)}
    module = _model_of(model)
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            out = module(torch.zeros(1, *shape, device=device))
    except RuntimeError as exc:
        raise CompositionError(f"the model cannot run on input {shape}: {str(exc).splitlines()[0]}",
                               where="validate_architecture", got=shape) from None
    finally:
        module.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise CompositionError("the model does not return a tensor", got=type(out).__name__,
                               where="validate_architecture")
    if num_classes is not None and out.shape[-1] != num_classes:
        raise CompositionError("the model's output has the wrong number of classes", got=out.shape[-1],
                               expected=str(num_classes), where="validate_architecture")
    return {"valid": True, "output_shape": tuple(out.shape[1:]),
            "params": sum(p.numel() for p in module.parameters())}
