"""Specs back to recipe text: the inverse of :mod:`.parser`.

``format_stage(parse_stage(s))`` is a canonical spelling of ``s`` (full argument names, repeat as
``x N``, ``| downsample`` for stride 2). A value the grammar cannot spell (a string with both quote
kinds, ``inf``) makes the stage fall back to its dict form, so every spec can be written out.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..spec.issues import Collector
from ..spec.model import HeadSpec, StageSpec, StemSpec

__all__ = ["format_head", "format_stage", "format_stem", "format_value", "part_to_value", "stage_to_value"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_WORDS = {"true", "false", "none", "null", "x"}


class _Unspellable(Exception):
    pass


def format_value(v: Any) -> str:
    """One value in recipe syntax (raises ``_Unspellable`` for values the grammar cannot hold)."""
    if v is None:
        return "None"
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise _Unspellable(v)
        return repr(v)
    if isinstance(v, str):
        if _IDENT.match(v) and v.lower() not in _RESERVED_WORDS and not re.match(r"^x\d+$", v):
            return v
        if "\n" in v:
            raise _Unspellable(v)
        if "'" not in v:
            return f"'{v}'"
        if '"' not in v:
            return f'"{v}"'
        raise _Unspellable(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    raise _Unspellable(v)


def _call(name: str, positional: list[Any], keywords: dict[str, Any]) -> str:
    args = [format_value(p) for p in positional] + [f"{k}={format_value(v)}" for k, v in keywords.items()]
    return f"{name}({', '.join(args)})"


def format_stage(spec: StageSpec) -> str:
    """``StageSpec`` -> ``"residual+se(96) x 4 | downsample"`` (branch stages cannot be strings)."""
    if spec.type == "branch":
        raise _Unspellable(spec)
    name = spec.type + (f"+{spec.attention}" if spec.attention else "")
    text = _call(name, [spec.channels], dict(spec.args))
    if spec.blocks != 1:
        text += f" x {spec.blocks}"
    mods = []
    if spec.stride == 2:
        mods.append("downsample")
    elif spec.stride != 1:
        mods.append(f"stride={format_value(spec.stride)}")
    if spec.drop_path:
        mods.append(f"drop_path={format_value(spec.drop_path)}")
    if spec.pool is not None:
        mods.append(f"pool={format_value(spec.pool)}")
    return text + "".join(f" | {m}" for m in mods)


def stage_to_value(spec: StageSpec) -> Any:
    """The most readable form that parses back to ``spec``: a string, else a dict."""
    if spec.type == "branch":
        return {"branch": [[stage_to_value(s) for s in path] for path in spec.branches],
                **({"merge": spec.merge} if spec.merge != "concat" else {})}
    try:
        text = format_stage(spec)
    except _Unspellable:
        return spec.to_dict()
    from .parser import parse_stage_into

    c = Collector()
    back = parse_stage_into(text, c, ("stage",))
    return text if not c and back == spec else spec.to_dict()


def format_stem(spec: StemSpec | None) -> str:
    """``StemSpec`` -> ``"conv(64)"`` / ``"patch(96, p=4)"`` (``"none"`` for no stem)."""
    if spec is None:
        return "none"
    d = spec.to_dict()
    kind = d.pop("type")
    channels = d.pop("channels")
    kw: dict[str, Any] = {}
    if kind == "patch":
        if "kernel_size" in d:
            kw["p"] = d.pop("kernel_size")
        if spec.stride == spec.kernel_size:
            d.pop("stride", None)
    for key in ("kernel_size", "stride", "padding", "pool", "act", "norm", "in_channels"):
        if key in d:
            kw[key] = d.pop(key)
    return _call(kind, [channels], kw)


def format_head(spec: HeadSpec | None) -> str:
    """``HeadSpec`` -> ``"linear(10)"`` / ``"mlp(10, hidden=[512, 256], dropout=0.3)"``."""
    if spec is None:
        return "none"
    d = spec.to_dict()
    kind = d.pop("type")
    n = d.pop("num_classes")
    return _call(kind, [n], d)


def part_to_value(spec: Any, fmt: Any) -> Any:
    try:
        return fmt(spec)
    except _Unspellable:
        return spec.to_dict() if spec is not None else None
