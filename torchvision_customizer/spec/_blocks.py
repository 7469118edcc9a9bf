"""What the spec knows about blocks: only their registered names and constructor signatures.

Recipe keyword arguments are checked against ``inspect.signature`` of the registered class
(STYLE P13). Short names (``k``, ``s``, ``p``, ``g``, ``e``, ``r``, ``d``) and the older release's
keyword names are mapped to each block's own parameter names, so ``e=6`` is ``expansion`` for a
bottleneck and ``expand_ratio`` for an MBConv.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from ..registry import ACTIVATIONS, BLOCKS, NORMS, POOLS

__all__ = [
    "RESERVED_ARGS",
    "SHORTCUTS",
    "ArgProblem",
    "accepted_names",
    "block_class",
    "block_params",
    "canonical_block",
    "is_activation",
    "is_block",
    "is_norm",
    "is_pool",
    "resolve_arg",
    "suggest_blocks",
    "takes",
]

#: recipe short names -> candidate parameter names, tried in order against the block's signature
SHORTCUTS: dict[str, tuple[str, ...]] = {
    "k": ("kernel_size",),
    "s": ("stride",),
    "p": ("padding",),
    "g": ("groups",),
    "e": ("expansion", "expand_ratio"),
    "r": ("reduction",),
    "d": ("dropout",),
}

#: arguments the builder sets itself from the stage (never given as block arguments)
RESERVED_ARGS = frozenset({"in_channels", "out_channels", "channels", "stride", "device", "dtype"})


class ArgProblem(Exception):
    """An argument cannot be mapped onto a block's signature (internal; becomes a located Issue)."""

    def __init__(self, code: str, message: str, *, expected: str | None = None,
                 suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.expected = expected
        self.suggestions = suggestions


def suggest_blocks(name: Any, category: str | None = None) -> list[str]:
    """Closest canonical block names (aliases matched, canonical names shown)."""
    from ..errors import closest

    if not isinstance(name, str):
        return []
    lookup = BLOCKS._lookup  # normalized name or alias -> canonical key
    BLOCKS._ensure_loaded()
    allowed = set(BLOCKS.list(category=category)) if category else None
    hits = closest(name.strip().lower().replace("-", "_"), list(lookup), n=6)
    out: list[str] = []
    for h in hits:
        canon = BLOCKS._entries[lookup[h]].name
        if canon not in out and (allowed is None or canon in allowed):
            out.append(canon)
    return out[:3]


def is_block(name: Any) -> bool:
    return isinstance(name, str) and name in BLOCKS


def canonical_block(name: str) -> str:
    return BLOCKS.canonical(name)


def block_class(name: str) -> Any:
    return BLOCKS.get(name)


@functools.cache
def _params_of(cls: Any) -> tuple[tuple[str, inspect.Parameter], ...]:
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return ()
    return tuple((n, p) for n, p in sig.parameters.items()
                 if n != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))


def block_params(name: str) -> dict[str, inspect.Parameter]:
    """Constructor parameters of the registered block ``name`` (no ``self``/``*args``/``**kw``)."""
    return dict(_params_of(block_class(name)))


def takes(name: str, param: str) -> bool:
    return param in block_params(name)


def accepted_names(name: str) -> list[str]:
    """The argument names a recipe may give the block ``name`` (its parameters, minus reserved ones)."""
    return [p for p in block_params(name) if p not in RESERVED_ARGS]


def _legacy() -> dict[str, Any]:
    from ..blocks import LEGACY_KWARGS  # the one table of older-release keyword names

    return LEGACY_KWARGS


def resolve_arg(block: str, key: str, value: Any) -> tuple[str, Any]:
    """Map a recipe argument onto block ``block``'s signature: ``(parameter name, value)``.

    Tries the key itself, then its short-name expansions, then the older release's names (with
    their value conversion, e.g. ``reduction=16`` -> ``rd_ratio=0.0625``). Raises
    :class:`ArgProblem` naming the accepted names when nothing matches.
    """
    params = block_params(block)
    legacy = _legacy()
    for cand in (*SHORTCUTS.get(key, ()), key):
        if cand in RESERVED_ARGS:
            continue
        if cand in params:
            return cand, value
        if cand in legacy and legacy[cand][0] in params:
            target, conv = legacy[cand]
            if conv is not None:
                try:
                    value = conv(value)
                except (TypeError, ZeroDivisionError, ValueError):
                    raise ArgProblem("value", f"cannot convert {key}={value!r} to {target!r}",
                                     expected="a positive number or a bool") from None
            return target, value
    accepted = accepted_names(block)
    if key in RESERVED_ARGS:
        raise ArgProblem("reserved_arg", f"argument {key!r} is set by the stage, not given to block {block!r}",
                         expected="channels as the first argument, stride via `stride=` or `downsample`")
    from ..errors import closest

    pool = accepted + [k for k, (t, _) in legacy.items() if t in params] + [
        s for s, cands in SHORTCUTS.items() if any(c in params for c in cands)]
    raise ArgProblem("unknown_arg", f"block {block!r} has no argument {key!r}",
                     expected="one of: " + ", ".join(accepted),
                     suggestions=tuple(closest(key, pool)))


def _in(registry: Any, name: Any) -> bool:
    if name is None:
        return True
    return isinstance(name, str) and (name.strip().lower() in ("none", "") or name in registry)


def is_activation(name: Any) -> bool:
    return _in(ACTIVATIONS, name)


def is_norm(name: Any) -> bool:
    return _in(NORMS, name)


def is_pool(name: Any) -> bool:
    return isinstance(name, str) and name in POOLS
