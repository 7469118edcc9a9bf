"""The older release's ``PatchSpec`` (documented in ``torchvision_customizer.hybrid.builder``).

Kept only for compatibility: instantiating it warns and names the new spelling, a patch dict
``{target: {op: block}}`` / ``{target: {op: {"block": name, "params": {...}}}}`` that
``HybridBuilder`` takes directly. Unlike the older class, ``position`` is honoured
(``inject`` + ``position="before"`` is ``inject_before``), and the spec is validated at once by the
patch engine's own parser (unknown ops or positions, empty names and bad params are errors naming the field).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import PatchError, closest
from ..layers.compat import deprecated, warn_deprecated

__all__ = ["PatchSpec"]

_OPERATIONS = ("replace", "wrap", "inject", "inject_after", "inject_before")
_POSITIONS = ("before", "after", "replace")


_NEW = ("a patch dict {target: {'wrap': {'block': name, 'params': {...}}}} passed to "
        "HybridBuilder.from_torchvision(..., patches=...)")


@deprecated(_NEW)
class PatchSpec:
    """One patch operation: ``PatchSpec("wrap", "se", {"rd_ratio": 0.25})``; ``as_patch()`` gives the dict form.

    Attributes:
        operation: ``replace``, ``wrap``, ``inject``, ``inject_after`` or ``inject_before``.
        block_type: registered block name.
        params: block constructor arguments.
        position: ``before``, ``after`` or ``replace`` (``before`` turns an inject into ``inject_before``).
    """

    def __init__(self, operation: str, block_type: str, params: Mapping[str, Any] | None = None,
                 position: str = "after") -> None:
        self._setup(operation, block_type, params, position)

    def _setup(self, operation: str, block_type: str, params: Mapping[str, Any] | None, position: str) -> None:
        if operation not in _OPERATIONS:
            raise PatchError("unknown patch operation", where="PatchSpec.operation", got=operation,
                             expected="one of " + ", ".join(_OPERATIONS),
                             suggestions=closest(str(operation), _OPERATIONS))
        if position not in _POSITIONS:
            raise PatchError("unknown patch position", where="PatchSpec.position", got=position,
                             expected="one of " + ", ".join(_POSITIONS), suggestions=closest(str(position), _POSITIONS))
        if position == "before" and operation in ("replace", "wrap"):
            raise PatchError(f"position='before' does not apply to {operation!r}", where="PatchSpec.position",
                             got=position, hint="use operation='inject' with position='before'")
        if not isinstance(block_type, str) or not block_type.strip():
            raise PatchError("block_type must be a registered block name", where="PatchSpec.block_type",
                             got=block_type, expected="e.g. 'se'")
        if params is not None and (not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params)):
            raise PatchError("params must be a dict of keyword arguments", where="PatchSpec.params", got=params,
                             expected="{'rd_ratio': 0.25, ...}")
        self.operation, self.block_type, self.position = operation, block_type.strip(), position
        self.params = dict(params or {})

    @property
    def op(self) -> str:
        """The op spelling the patch engine takes."""
        if self.operation in ("inject", "inject_after") and self.position == "before":
            return "inject_before"
        return self.operation

    def as_patch(self) -> dict[str, Any]:
        """``{op: name}`` or ``{op: {"block": name, "params": {...}}}`` for ``patches={target: ...}``."""
        return {self.op: self.block_type if not self.params else {"block": self.block_type,
                                                                   "params": dict(self.params)}}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PatchSpec:
        """``{"wrap": "se"}`` or ``{"wrap": {"type" | "block": "se", "params": {...}, "position": ...}}``."""
        if not isinstance(d, Mapping):
            raise PatchError("a patch must be a dict", where="PatchSpec.from_dict", got=type(d).__name__,
                             expected="{'wrap': 'se'}")
        ops = [k for k in d if k in _OPERATIONS]
        unknown = [k for k in d if k not in _OPERATIONS]
        if unknown or len(ops) != 1:
            bad = unknown[0] if unknown else ops
            raise PatchError("a patch dict needs exactly one operation key", where="PatchSpec.from_dict", got=bad,
                             expected="one of " + ", ".join(_OPERATIONS),
                             suggestions=closest(str(bad), _OPERATIONS) if unknown else ())
        op = ops[0]
        value = d[op]
        warn_deprecated("PatchSpec.from_dict", _NEW)
        obj = cls.__new__(cls)
        if isinstance(value, str):
            obj._setup(op, value, None, "after")
            return obj
        if isinstance(value, Mapping):
            extra = set(value) - {"type", "block", "params", "position"}
            if extra:
                raise PatchError(f"unknown key {sorted(extra)[0]!r} in a patch", where=f"PatchSpec.from_dict[{op!r}]",
                                 expected="type/block, params, position", got=sorted(extra)[0])
            obj._setup(op, value.get("block", value.get("type", "")), value.get("params"),
                       value.get("position", "after"))
            return obj
        raise PatchError("unsupported patch value", where=f"PatchSpec.from_dict[{op!r}]", got=type(value).__name__,
                         expected="a block name or {'type': name, 'params': {...}}")

    def __repr__(self) -> str:
        return (f"PatchSpec(operation={self.operation!r}, block_type={self.block_type!r}, params={self.params!r}, "
                f"position={self.position!r})")
