"""Small helpers shared by layers and blocks: value checks, rounding, device/dtype kwargs."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..errors import BlockArgumentError, BlockValueError

__all__ = ["check_channels", "check_float", "check_int", "check_kernel", "dd_kwargs", "make_divisible"]


def dd_kwargs(device: Any = None, dtype: torch.dtype | None = None) -> dict[str, Any]:
    """``{"device": device, "dtype": dtype}``: the factory kwargs every child receives."""
    return {"device": device, "dtype": dtype}


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round ``value`` to a multiple of ``divisor`` without going below ``round_limit * value``.

    The rounding rule of the MobileNet/EfficientNet reference code (torchvision ``_make_divisible``).
    """
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < round_limit * value:
        new += divisor
    return new


def _where(owner: str | None, name: str) -> str:
    return f"{owner}.{name}" if owner else name


def check_int(name: str, value: Any, *, minimum: int = 1, maximum: int | None = None,
              owner: str | None = None) -> int:
    """Validate an integer argument; bools and floats are rejected."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise BlockArgumentError(f"argument {name!r} must be an integer", where=_where(owner, name),
                                 expected="int", got=value)
    hi = "" if maximum is None else f" and <= {maximum}"
    if value < minimum or (maximum is not None and value > maximum):
        raise BlockValueError(f"argument {name!r} is out of range", where=_where(owner, name),
                              expected=f"an integer >= {minimum}{hi}", got=value)
    return value


def check_channels(name: str, value: Any, owner: str | None = None) -> int:
    """Channels must be a positive integer."""
    return check_int(name, value, minimum=1, owner=owner)


def check_float(name: str, value: Any, *, lo: float = 0.0, hi: float = math.inf, lo_open: bool = False,
                hi_open: bool = False, owner: str | None = None) -> float:
    """Validate a real number inside ``[lo, hi]`` (open ends on request)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BlockArgumentError(f"argument {name!r} must be a number", where=_where(owner, name),
                                 expected="float", got=value)
    bad = (value < lo or value > hi or (lo_open and value == lo) or (hi_open and value == hi)
           or math.isnan(value))
    if bad:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise BlockValueError(f"argument {name!r} is out of range", where=_where(owner, name),
                              expected=f"a number in {left}{lo}, {hi}{right}", got=value)
    return float(value)


def check_kernel(name: str, value: Any, *, odd: bool = True, owner: str | None = None) -> int:
    """A kernel size: positive int, odd unless ``odd=False``."""
    check_int(name, value, minimum=1, owner=owner)
    if odd and value % 2 == 0:
        raise BlockValueError(f"argument {name!r} must be odd so that 'same' padding is symmetric",
                              where=_where(owner, name), expected="an odd integer (1, 3, 5, 7, ...)",
                              got=value)
    return value
