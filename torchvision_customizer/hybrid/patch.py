"""The patch engine: address any module of a model by path, and wrap, inject or replace it.

A patch is ``{target: {op: value}}``:

* ``target``: a dotted path (``layer4``, ``layer3.1.conv2``, ``features.5``), a glob matched one
  dotted segment at a time (``layer*.*.conv2``, ``features.[3-6]``; ``**`` spans segments), a type
  selector (``type:BatchNorm2d``, matching ``isinstance`` by class name) or a stage selector
  (``stage:2``, catalog numbering). Top-level targets work like any other.
* ``op``: ``wrap`` (the target's output goes through the block; ``inject`` and ``inject_after`` are
  aliases), ``inject_before`` (the block runs on the target's input), or ``replace``.
* ``value``: a registered name, ``{"type"|"block": name, "params": {...}}``, or a list of those.

Every target, block and parameter is resolved and checked before anything changes: the engine
traces the model once on the meta device (recording each module's call sites and shapes),
builds each new block on the meta device, runs it on the traced shape, applies the whole plan to
a meta copy and runs that forward too. An unknown target lists the nearest module paths, an
unknown block the nearest names, a wrong parameter the accepted ones.

Placement keeps every original state-dict key: a wrap on an ``nn.Sequential`` target appends the
block (``layer4`` -> ``layer4.3``); any other target keeps its class (a subclass made on the fly,
still ``isinstance`` of the original) and gains the block as a named child (``layer3.0.conv2.se``).
No forward hooks are used, so ``torch.fx`` and ``torch.export`` trace patched models.

Function preservation (``preserve=True``, the default): a wrapped or injected block is mixed in
as ``x + gamma * (block(x) - x)`` with ``gamma`` a learnable scalar (or per-channel vector with
``preserve="channel"``) initialized to zero, so the patched model computes exactly the pretrained
function at initialization; after one optimizer step ``gamma`` moves and the block trains. One
mechanism for every same-shape block, no per-block special cases.

``replace`` builds the new module for the target's traced input/output channels and stride
(a block that cannot keep the stride or the output shape is refused), reusing the old module's
tensors where names and shapes match (listed in the modification). Norm targets replaced by a norm
name (``{"type:BatchNorm2d": {"replace": "group"}}``) keep their affine parameters (and running
statistics where the new norm has them); activation targets replaced by an activation name
(``{"type:ReLU": {"replace": "silu"}}``) keep ``inplace``.

Modules that the model calls more than once (torchvision's Bottleneck calls ``self.relu`` three
times, at two widths) are detected by the trace; wraps, injections and block replacements there
are refused with the call sites named. Activation swaps are allowed (they are shape-agnostic).
"""

from __future__ import annotations

import copy
import fnmatch
import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import BlockArgumentError, BlockValueError, PatchError, TVCError, UnknownComponentError, closest
from ..registry import ACTIVATIONS, BLOCKS, NORMS
from ._meta import rebuild_mixed, swap_class

__all__ = [
    "OPS",
    "OP_ALIASES",
    "PatchOp",
    "PatchPlan",
    "PlannedChange",
    "PatchedBlock",
    "Trace",
    "apply_patches",
    "apply_plan",
    "iter_patches",
    "normalize_patches",
    "plan_patches",
    "trace_model",
    "resolve_target",
]

#: canonical ops
OPS = ("wrap", "inject_before", "replace")
#: spelling -> canonical op (``inject``/``inject_after`` are documented aliases of ``wrap``)
OP_ALIASES = {"wrap": "wrap", "inject": "wrap", "inject_after": "wrap", "inject_before": "inject_before",
              "replace": "replace"}
PRESERVE_MODES = (True, False, "scalar", "channel")
_WILDCARDS = set("*?[")


# ====================================================================================== specs
@dataclass(frozen=True)
class PatchOp:
    """One normalized patch operation.

    Attributes:
        target: the target as written (path, glob, ``type:`` or ``stage:`` selector).
        op: canonical op (``wrap``, ``inject_before``, ``replace``).
        block: registered name of the new block / norm / activation.
        params: constructor parameters given by the user.
        spelled: the op as the user spelled it (``inject_after`` ...).
        where: location in the patch spec, for messages.
    """

    target: str
    op: str
    block: str
    params: dict[str, Any] = field(default_factory=dict)
    spelled: str = ""
    where: str = ""

    def to_spec(self) -> dict[str, Any]:
        """``{op: name}`` or ``{op: {"block": name, "params": {...}}}`` (the documented form)."""
        value: Any = self.block if not self.params else {"block": self.block, "params": dict(self.params)}
        return {self.spelled or self.op: value}


def _value_items(value: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(value, str):
        if not value.strip():
            raise PatchError("empty block name", where=where, expected="a registered name such as 'se'", got=value)
        return [(value.strip(), {})]
    if isinstance(value, Mapping):
        keys = set(value)
        name_keys = keys & {"type", "block", "name"}
        unknown = keys - {"type", "block", "name", "params"}
        if unknown:
            bad = sorted(unknown)[0]
            raise PatchError(f"unknown key {bad!r} in a patch value", where=where,
                             expected="keys 'block' (or 'type') and 'params'", got=bad,
                             suggestions=closest(bad, ["block", "type", "params"]),
                             hint="position is not a key: use the ops inject_before / inject_after")
        if len(name_keys) != 1:
            raise PatchError("a patch value needs exactly one block name", where=where,
                             expected="{'block': name, 'params': {...}} (or 'type': name)", got=dict(value))
        name = value[next(iter(name_keys))]
        params = value.get("params") or {}
        if not isinstance(name, str) or not name.strip():
            raise PatchError("block name must be a non-empty string", where=where, expected="e.g. 'se'", got=name)
        if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
            raise PatchError("params must be a dict of keyword arguments", where=f"{where}.params",
                             expected="{'rd_ratio': 0.25, ...}", got=params)
        return [(name.strip(), dict(params))]
    if isinstance(value, (list, tuple)):
        if not value:
            raise PatchError("empty list of blocks", where=where, expected="one or more block names", got=value)
        out: list[tuple[str, dict[str, Any]]] = []
        for i, v in enumerate(value):
            out.extend(_value_items(v, f"{where}[{i}]"))
        return out
    raise PatchError("unsupported patch value", where=where,
                     expected="a block name, {'block': name, 'params': {...}} or a list of those",
                     got=type(value).__name__)


def normalize_patches(patches: Any) -> list[PatchOp]:
    """Turn the user's patch spec into a list of :class:`PatchOp` (order kept).

    Accepts ``{target: {op: value, ...}}``; a list of ``{"target": t, "op": op, "block": name,
    "params": {...}}`` dicts; objects with ``target``/``op``/``block``/``params`` attributes (the
    spec package's ``PatchSpec``); ``None``.
    """
    if patches is None:
        return []
    ops: list[PatchOp] = []
    if isinstance(patches, Mapping):
        for target, body in patches.items():
            where = f"patches[{target!r}]"
            if not isinstance(target, str) or not target.strip():
                raise PatchError("patch targets must be non-empty strings", where="patches",
                                 expected="a module path, glob, 'type:Class' or 'stage:N'", got=target)
            if not isinstance(body, Mapping) or not body:
                raise PatchError("a patch must map ops to blocks", where=where,
                                 expected="{'wrap': 'se'} or {'replace': {'block': 'residual', 'params': {}}}",
                                 got=body)
            for op_name, value in body.items():
                canon = OP_ALIASES.get(op_name) if isinstance(op_name, str) else None
                if canon is None:
                    raise PatchError(f"unknown patch op {op_name!r}", where=where,
                                     expected="one of " + ", ".join(OP_ALIASES), got=op_name,
                                     suggestions=closest(str(op_name), OP_ALIASES),
                                     hint="position is not an op: use inject_before / inject_after")
                for name, params in _value_items(value, f"{where}.{op_name}"):
                    ops.append(PatchOp(target.strip(), canon, name, params, op_name, f"{where}.{op_name}"))
        return ops
    if isinstance(patches, (list, tuple)):
        for i, item in enumerate(patches):
            where = f"patches[{i}]"
            if isinstance(item, Mapping):
                get = item.get
                keys = set(item)
            else:
                def get(k: str, default: Any = None, _o: Any = item) -> Any:
                    return getattr(_o, k, default)
                keys = {k for k in ("target", "op", "block", "params") if hasattr(item, k)}
            unknown = keys - {"target", "op", "block", "type", "params"}
            if unknown:
                bad = sorted(unknown)[0]
                raise PatchError(f"unknown key {bad!r} in a patch", where=where,
                                 expected="keys target, op, block, params", got=bad,
                                 suggestions=closest(bad, ["target", "op", "block", "params"]))
            target, op_name = get("target"), get("op")
            block = get("block") or get("type")
            if not isinstance(target, str) or not target.strip():
                raise PatchError("a patch needs a target", where=f"{where}.target",
                                 expected="a module path, glob, 'type:Class' or 'stage:N'", got=target)
            canon = OP_ALIASES.get(op_name) if isinstance(op_name, str) else None
            if canon is None:
                raise PatchError(f"unknown patch op {op_name!r}", where=f"{where}.op",
                                 expected="one of " + ", ".join(OP_ALIASES), got=op_name,
                                 suggestions=closest(str(op_name), OP_ALIASES))
            for name, params in _value_items({"block": block, "params": get("params") or {}}, where):
                ops.append(PatchOp(target.strip(), canon, name, params, op_name, where))
        return ops
    raise PatchError("patches must be a dict or a list", where="patches",
                     expected="{'layer4': {'wrap': 'se'}} or [{'target': 'layer4', 'op': 'wrap', 'block': 'se'}]",
                     got=type(patches).__name__)


# ====================================================================================== trace
@dataclass(frozen=True)
class Call:
    """One call of a module during the trace."""

    caller: str
    inputs: tuple[tuple[int, ...] | None, ...]
    output: tuple[int, ...] | None


@dataclass
class Trace:
    """Call sites and shapes of every module in one meta-device forward pass."""

    calls: dict[str, list[Call]]
    input_shape: tuple[int, ...]

    def first(self, path: str) -> Call | None:
        c = self.calls.get(path)
        return c[0] if c else None


def _shape(x: Any) -> tuple[int, ...] | None:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else None


def trace_model(model: nn.Module, input_shape: Sequence[int]) -> Trace:
    """Run ``model`` (on the meta device, eval mode) once and record every module's calls.

    Hooks live only on this model and only during the call; they are removed before returning.
    """
    calls: dict[str, list[Call]] = {}
    stack: list[str] = []
    handles = []
    names = {id(m): n for n, m in model.named_modules(remove_duplicate=False)}

    def pre(mod: nn.Module, args: tuple[Any, ...]) -> None:
        stack.append(names.get(id(mod), "?"))

    def post(mod: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        path = stack.pop()
        caller = stack[-1] if stack else ""
        calls.setdefault(path, []).append(Call(caller, tuple(_shape(a) for a in args), _shape(out)))

    for _, m in model.named_modules():
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.empty(*input_shape, device="meta"))
    except (RuntimeError, ValueError, TypeError, AssertionError, IndexError, NotImplementedError) as exc:
        raise PatchError("the model does not run on the traced input", where=type(model).__name__,
                         expected=f"a forward pass on a tensor of shape {tuple(input_shape)}",
                         got=f"{type(exc).__name__}: {str(exc)[:300]}") from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return Trace(calls, tuple(input_shape))


# ================================================================================ the blocks
def _gamma_shape(preserve: Any, layout: str, channels: int | None) -> tuple[int, ...]:
    if preserve == "channel" and channels:
        return (1, channels, 1, 1) if layout == "nchw" else (channels,)
    return (1,)


class PatchedBlock(nn.Module):
    """A block inserted by a patch, adapted to the target's layout, optionally function-preserving.

    ``forward(x) = x + gamma * (block(x) - x)`` with ``gamma`` zero-initialized when preserving,
    else ``block(x)``. For ``nhwc`` targets (Swin) the block sees ``x.permute(0, 3, 1, 2)``; for
    ``tokens`` targets (ViT) it sees the patch tokens as an ``(N, C, h, w)`` map while the prefix
    (class) tokens pass through unchanged.

    Attributes:
        block: the registered block, built with the paper's default initialization.
        gamma: the zero-initialized mixing weight, or ``None`` with ``preserve=False``.
    """

    _tvc_keep_init = True  # weights.partial_load(init_new_layers=...) keeps the identity init

    def __init__(self, block: nn.Module, *, preserve: Any = True, layout: str = "nchw", prefix_tokens: int = 0,
                 grid: tuple[int, int] | None = None, channels: int | None = None,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        self.block = block
        self.layout = layout
        self.prefix_tokens = int(prefix_tokens)
        self.grid = tuple(grid) if grid is not None else None
        if preserve:
            self.gamma = nn.Parameter(torch.zeros(_gamma_shape(preserve, layout, channels),
                                                  device=device, dtype=dtype))
        else:
            self.register_parameter("gamma", None)

    def _run_block(self, x: torch.Tensor) -> torch.Tensor:
        if self.layout == "nhwc":  # (N, H, W, C) -> (N, C, H, W) -> block -> back
            return self.block(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        if self.layout == "tokens":  # (N, P + h*w, C): prefix tokens pass, patch tokens as a map
            p = self.prefix_tokens
            h, w = self.grid  # type: ignore[misc]
            tokens = x[:, p:]
            fmap = tokens.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)
            out = self.block(fmap).flatten(2).transpose(1, 2)
            return torch.cat([x[:, :p], out], dim=1)
        return self.block(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._run_block(x)
        if self.gamma is None:
            return y
        # x + gamma * (y - x) in one fused pass; exactly x while gamma == 0
        return torch.lerp(x, y, self.gamma.to(y.dtype))

    def extra_repr(self) -> str:
        parts = [f"layout={self.layout!r}"]
        if self.gamma is not None:
            parts.append(f"preserve=gamma{tuple(self.gamma.shape)}")
        if self.layout == "tokens":
            parts.append(f"prefix_tokens={self.prefix_tokens}, grid={self.grid}")
        return ", ".join(parts)


class _WrapMixin:
    """Mixed into the class of a wrapped (non-Sequential) module: runs its pre/post children.

    The module keeps its own class (``isinstance`` holds), parameters and children; only the new
    blocks are added, under the names in ``_tvc_pre`` / ``_tvc_post``.
    """

    _tvc_class_name = "{base}"
    _tvc_pre: tuple[str, ...] = ()
    _tvc_post: tuple[str, ...] = ()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._tvc_pre:
            x = args[0]
            for name in self._tvc_pre:
                x = self._modules[name](x)  # type: ignore[attr-defined]
            args = (x, *args[1:])
        out = super().forward(*args, **kwargs)  # type: ignore[misc]
        for name in self._tvc_post:
            out = self._modules[name](out)  # type: ignore[attr-defined]
        return out

    def __reduce_ex__(self, protocol: int) -> Any:
        return rebuild_mixed, (_WrapMixin, type(self)._tvc_base), self.__dict__  # type: ignore[attr-defined]


class _WrapContainerMixin(_WrapMixin):
    """:class:`_WrapMixin` for containers whose own ``forward`` iterates their children (DenseNet's
    ``_DenseBlock`` walks ``self.items()``): iteration, ``len`` and ``items`` skip the new blocks,
    while ``named_children`` / ``state_dict`` still see them."""

    def _tvc_visible(self) -> list[str]:
        hidden = set(self._tvc_pre) | set(self._tvc_post)
        return [k for k in self._modules if k not in hidden]  # type: ignore[attr-defined]

    def __iter__(self) -> Any:
        if isinstance(self, nn.ModuleDict):
            return iter(self._tvc_visible())
        return iter([self._modules[k] for k in self._tvc_visible()])  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self._tvc_visible())

    def keys(self) -> Any:
        return self._tvc_visible()

    def items(self) -> Any:
        return [(k, self._modules[k]) for k in self._tvc_visible()]  # type: ignore[attr-defined]

    def values(self) -> Any:
        return [self._modules[k] for k in self._tvc_visible()]  # type: ignore[attr-defined]

    def __reduce_ex__(self, protocol: int) -> Any:
        return rebuild_mixed, (_WrapContainerMixin, type(self)._tvc_base), self.__dict__  # type: ignore[attr-defined]


def _is_container(m: nn.Module) -> bool:
    return isinstance(m, (nn.Sequential, nn.ModuleList, nn.ModuleDict))


def _is_plain_sequential(m: nn.Module) -> bool:
    return isinstance(m, nn.Sequential) and type(m).forward is nn.Sequential.forward


# ==================================================================================== resolve
def _segments_match(pattern: list[str], path: list[str]) -> bool:
    if not pattern:
        return not path
    head = pattern[0]
    if head == "**":
        return any(_segments_match(pattern[1:], path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    return fnmatch.fnmatchcase(path[0], head) and _segments_match(pattern[1:], path[1:])


def _class_names(m: nn.Module) -> set[str]:
    out = set()
    for cls in type(m).__mro__:
        out.add(cls.__name__)
        out.add(f"{cls.__module__}.{cls.__qualname__}")
    return out


def _nearest_paths(target: str, paths: list[str], root: nn.Module) -> tuple[list[str], str | None]:
    suggestions = closest(target, paths, n=5, cutoff=0.5)
    parts = target.split(".")
    hint = None
    for i in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in paths:
            children = [n for n, _ in _named_children(root, prefix)]
            shown = ", ".join(f"{prefix}.{c}" for c in children[:12])
            hint = f"{prefix!r} has the children: {shown}" if children else f"{prefix!r} has no children"
            break
    if hint is None:
        top = [n for n, _ in root.named_children()]
        hint = "top-level modules: " + ", ".join(top[:16])
    return suggestions, hint


def _named_children(root: nn.Module, path: str) -> list[tuple[str, nn.Module]]:
    try:
        return list(root.get_submodule(path).named_children())
    except AttributeError:
        return []


def resolve_target(root: nn.Module, target: str, *, stages: Sequence[Sequence[str]] | None = None,
                   op: str = "wrap", where: str = "patches") -> list[str]:
    """Module paths that ``target`` addresses in ``root`` (never empty; raises :class:`PatchError`).

    ``stage:N`` addresses the last module of stage ``N`` for ``wrap``/``replace`` and its first
    module for ``inject_before``.
    """
    paths = [n for n, _ in root.named_modules() if n]
    path_set = set(paths)
    if target.startswith("stage:"):
        if stages is None:
            raise PatchError("stage selectors need a catalog backbone", where=where, got=target,
                             expected="a module path for models outside the catalog")
        text = target[len("stage:"):].strip()
        try:
            idx = int(text)
        except ValueError:
            raise PatchError("bad stage selector", where=where, expected="'stage:N' with an integer N",
                             got=target) from None
        n = len(stages)
        if not -n <= idx < n:
            raise PatchError("stage index out of range", where=where, expected=f"0..{n - 1} (or -{n}..-1)",
                             got=idx)
        members = [p for p in stages[idx] if p in path_set]
        if not members:
            raise PatchError(f"stage {idx} has no module to patch", where=where, got=target)
        return [members[0] if op == "inject_before" else members[-1]]
    if target.startswith("type:"):
        wanted = target[len("type:"):].strip()
        hits = [n for n, m in root.named_modules() if n and wanted in _class_names(m)]
        if not hits:
            present = sorted({type(m).__name__ for _, m in root.named_modules()})
            raise PatchError(f"no module of type {wanted!r} in the model", where=where,
                             expected="a class name present in the model", got=wanted,
                             suggestions=closest(wanted, present, n=5, cutoff=0.4),
                             hint="class names present: " + ", ".join(present[:20]))
        return hits
    if any(c in _WILDCARDS for c in target):
        pat = target.split(".")
        hits = [p for p in paths if _segments_match(pat, p.split("."))]
        if not hits:
            plain = "".join(c for c in target if c not in _WILDCARDS)
            suggestions, hint = _nearest_paths(plain, paths, root)
            raise PatchError(f"glob {target!r} matches no module", where=where,
                             expected="a pattern over dotted module paths ('*' stays within one segment, "
                                      "'**' spans segments)", got=target, suggestions=suggestions, hint=hint)
        return hits
    if target in path_set:
        return [target]
    names = {n for n, _ in root.named_parameters()} | {n for n, _ in root.named_buffers()}
    if target in names:
        owner = target.rpartition(".")[0] or "the model"
        raise PatchError(f"{target!r} is a tensor, not a module", where=where, expected="a module path",
                         got=target, hint=f"patch its module {owner!r} instead")
    suggestions, hint = _nearest_paths(target, paths, root)
    raise PatchError(f"no module at {target!r}", where=where, expected="an existing module path",
                     got=target, suggestions=suggestions, hint=hint)


# ===================================================================================== plans
@dataclass
class PlannedChange:
    """One change a plan makes (one target, one block).

    Attributes:
        target: the module path patched.
        op: canonical op.
        block: the new block / norm / activation name.
        old: class name of the module at ``target``.
        new: description of the new module.
        new_path: where the new module lives after the change.
        in_channels / out_channels: channels at the target (traced).
        layout: ``nchw`` / ``nhwc`` / ``tokens`` / ``vector``.
        new_params: parameters the change adds (the block plus its gate), or the replacement's
            parameter count for ``replace``.
        detail: what else to know (stride kept, weights reused, adapter used ...).
    """

    target: str
    op: str
    block: str
    old: str
    new: str
    new_path: str
    in_channels: int | None
    out_channels: int | None
    layout: str
    new_params: int
    detail: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    spelled: str = ""
    source: str = ""  # the target as the user wrote it
    kind: str = "block"  # block | norm | act
    _make: Callable[[nn.Module, Any, Any], nn.Module] | None = field(default=None, repr=False)
    _child: str = ""  # name of the new child in its container
    _container: str = ""  # path of the container the new child goes into
    _reshapes: bool = False  # the new block's output shape differs from its input's

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "op": self.op, "block": self.block, "old": self.old, "new": self.new,
                "new_path": self.new_path, "in_channels": self.in_channels, "out_channels": self.out_channels,
                "layout": self.layout, "new_params": self.new_params, "detail": self.detail}


@dataclass
class PatchPlan:
    """The list of changes a patch spec makes, computed without loading weights (a dry run).

    ``str(plan)`` is a diff-like table: one ``~`` line per change with the old and new module.
    """

    changes: list[PlannedChange]
    backbone: str = ""
    appended: list[tuple[str, str]] = field(default_factory=list)

    def __iter__(self) -> Any:
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def __getitem__(self, i: int) -> PlannedChange:
        return self.changes[i]

    @property
    def new_params(self) -> int:
        return sum(c.new_params for c in self.changes)

    def to_list(self) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.changes]

    def __str__(self) -> str:
        head = f"patch plan for {self.backbone or 'model'}: {len(self.changes)} change(s), " \
               f"{self.new_params:,} new parameters"
        rows = [head]
        for c in self.changes:
            ch = f"{c.in_channels}->{c.out_channels}" if c.in_channels != c.out_channels else f"{c.out_channels}"
            rows.append(f"~ {c.target}: {c.op} {c.block} [{c.old} -> {c.new}] at {c.new_path} "
                        f"(channels {ch}, {c.layout}, +{c.new_params:,} params){' - ' + c.detail if c.detail else ''}")
        return "\n".join(rows)

    __repr__ = __str__


@dataclass
class PlanContext:
    """What the planner needs to know about the model beyond its modules."""

    preserve: Any = True
    stages: Sequence[Sequence[str]] | None = None
    layout_of: Callable[[str, tuple[int, ...]], str] | None = None
    prefix_tokens: int = 0
    backbone: str = ""


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _accepts(ctor: Any) -> tuple[dict[str, inspect.Parameter], bool]:
    target = ctor.__init__ if inspect.isclass(ctor) else ctor
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return {}, True
    params = {k: p for k, p in sig.parameters.items() if k != "self"}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
    return params, var_kw


def _patch_error(exc: TVCError, op: PatchOp, target: str) -> PatchError:
    return PatchError(f"{op.spelled or op.op} {op.block!r} at {target!r}: {exc.message}", where=op.where,
                      expected=exc.expected, got=exc.got, suggestions=exc.suggestions, hint=exc.hint)


def _construct(op: PatchOp, target: str, ctor: Any, kwargs: dict[str, Any], device: Any, dtype: Any,
               args: tuple[Any, ...] = ()) -> nn.Module:
    params, var_kw = _accepts(ctor)
    kw = dict(kwargs)
    if device is not None and ("device" in params or var_kw):
        kw["device"] = device
        if dtype is not None:
            kw["dtype"] = dtype
    try:
        if device is not None and "device" not in kw:
            with torch.device(device):
                module = ctor(*args, **kw)
        else:
            module = ctor(*args, **kw)
    except (BlockArgumentError, BlockValueError, UnknownComponentError) as exc:
        raise _patch_error(exc, op, target) from None
    except TypeError as exc:
        accepted = [k for k, p in params.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        bad = [k for k in op.params if k not in params]
        raise PatchError(f"{op.spelled or op.op} {op.block!r} at {target!r}: {exc}", where=f"{op.where}.params",
                         expected="parameters: " + ", ".join(accepted), got=bad[0] if bad else sorted(op.params),
                         suggestions=closest(bad[0], accepted) if bad else ()) from None
    except (ValueError, RuntimeError) as exc:
        raise PatchError(f"{op.spelled or op.op} {op.block!r} at {target!r}: cannot build the block: {exc}",
                         where=f"{op.where}.params", got=dict(op.params)) from None
    if not isinstance(module, nn.Module):
        raise PatchError(f"{op.block!r} did not build an nn.Module", where=op.where, got=type(module).__name__)
    if dtype is not None and device is not None and "device" not in kw:
        module = module.to(dtype=dtype)
    return module


def _channel_kwargs(op: PatchOp, ctor: Any, channels: int, target: str) -> dict[str, Any]:
    """``in_channels=channels`` (or ``channels=``/``dim=``) plus the user's params, checked."""
    params, var_kw = _accepts(ctor)
    kw = dict(op.params)
    for alias in ("in_channels", "channels"):
        if alias in kw and kw[alias] is not None and kw[alias] != channels:
            raise PatchError(f"{op.block!r} is a same-shape block built for {kw[alias]} channels, but "
                             f"{target!r} outputs {channels}", where=f"{op.where}.params.{alias}",
                             expected=f"{alias}={channels} (or leave it out: it is inferred)", got=kw[alias])
    if any(a in kw for a in ("in_channels", "channels")):
        return kw
    for name in ("in_channels", "channels", "dim", "num_channels", "num_features"):
        if name in params:
            kw[name] = channels
            return kw
    if var_kw:
        kw["in_channels"] = channels
        return kw
    raise PatchError(f"block {op.block!r} takes no channel argument", where=op.where,
                     expected="a block taking in_channels (the block protocol)",
                     got=", ".join(params) or "no parameters")


def _run_meta(module: nn.Module, shape: tuple[int, ...], op: PatchOp, target: str) -> tuple[int, ...]:
    try:
        with torch.no_grad():
            was = module.training
            module.eval()
            out = module(torch.empty(*shape, device="meta"))
            module.train(was)
    except (RuntimeError, ValueError, TypeError, IndexError, AssertionError, NotImplementedError) as exc:
        raise PatchError(f"{op.spelled or op.op} {op.block!r} at {target!r}: the block does not run on the "
                         f"target's tensor of shape {shape}", where=op.where,
                         got=f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(out, torch.Tensor):
        raise PatchError(f"{op.block!r} returns {type(out).__name__}, not a tensor", where=op.where,
                         expected="a module returning one tensor")
    return tuple(out.shape)


def _layout(ctx: PlanContext, path: str, shape: tuple[int, ...]) -> str:
    if len(shape) == 3:
        return "tokens"
    if len(shape) == 4:
        return ctx.layout_of(path, shape) if ctx.layout_of else "nchw"
    return "vector" if len(shape) == 2 else f"{len(shape)}d"


def _map_shape(layout: str, shape: tuple[int, ...], prefix: int, op: PatchOp, target: str
               ) -> tuple[tuple[int, ...], int, tuple[int, int] | None]:
    """The NCHW shape the block sees, the channel count, and the token grid."""
    if layout == "nchw":
        return shape, shape[1], None
    if layout == "nhwc":
        n, h, w, c = shape
        return (n, c, h, w), c, None
    if layout == "tokens":
        n, t, c = shape
        side = math.isqrt(t - prefix)
        if side * side != t - prefix:
            raise PatchError(f"{target!r} outputs {t} tokens, which do not form a square grid after "
                             f"{prefix} prefix token(s)", where=op.where, expected="(N, prefix + h*w, C) tokens",
                             got=shape)
        return (n, c, side, side), c, (side, side)
    raise PatchError(f"{op.spelled or op.op} {op.block!r} needs a feature map, but {target!r} outputs a tensor "
                     f"of shape {shape}", where=op.where,
                     expected="(N, C, H, W) maps, (N, H, W, C) maps or (N, T, C) tokens",
                     got=shape, hint="patch a module inside the backbone, not the classifier")


_IDENTITY_CACHE: dict[tuple[Any, ...], bool] = {}


def _identity_at_init(ctor: Any, kwargs: dict[str, Any], shape: tuple[int, ...]) -> bool:
    """Whether a freshly built block returns its input unchanged (checked once on a small CPU input)."""
    try:
        key: tuple[Any, ...] = (ctor, repr(sorted(kwargs.items())), shape[1])
    except TypeError:
        key = (ctor, id(kwargs), shape[1])
    if key not in _IDENTITY_CACHE:
        state = torch.random.get_rng_state()
        try:
            torch.manual_seed(0)
            with torch.device("cpu"):  # also under a caller's meta-device context (load_model)
                block = ctor(**kwargs).eval()
            x = torch.randn(2, shape[1], *(min(s, 8) for s in shape[2:]), device="cpu")
            with torch.no_grad():
                y = block(x)
            _IDENTITY_CACHE[key] = isinstance(y, torch.Tensor) and y.shape == x.shape and torch.equal(y, x)
        except (RuntimeError, ValueError, TypeError, TVCError):
            _IDENTITY_CACHE[key] = False
        finally:
            torch.random.set_rng_state(state)
    return _IDENTITY_CACHE[key]


def _call_sites(calls: list[Call]) -> str:
    return "; ".join(f"from {c.caller or 'the model'!r} -> {c.output}" for c in calls)


def _is_norm(m: nn.Module) -> bool:
    from ..weights.rules import norm_kind

    return norm_kind(m) is not None or isinstance(m, (nn.modules.instancenorm._InstanceNorm, nn.LocalResponseNorm))


def _is_act(m: nn.Module) -> bool:
    act_classes = tuple(e.obj for e in ACTIVATIONS.entries() if inspect.isclass(e.obj) and e.obj is not nn.Identity)
    return isinstance(m, act_classes) or type(m).__module__ == "torch.nn.modules.activation"


def _norm_channels(m: nn.Module) -> int | None:
    for attr in ("num_features", "num_channels"):
        v = getattr(m, attr, None)
        if isinstance(v, int):
            return v
    shape = getattr(m, "normalized_shape", None)
    if shape:
        return int(shape[0])
    w = getattr(m, "weight", None)
    return int(w.shape[0]) if isinstance(w, torch.Tensor) and w.dim() == 1 else None


@torch.no_grad()
def _transfer_norm(old: nn.Module, new: nn.Module) -> list[str]:
    moved = []
    for name in ("weight", "bias", "running_mean", "running_var"):
        src, dst = getattr(old, name, None), getattr(new, name, None)
        if isinstance(src, torch.Tensor) and isinstance(dst, torch.Tensor) and src.shape == dst.shape:
            if dst.is_meta or src.is_meta:
                moved.append(name)
                continue
            dst.copy_(src)
            moved.append(name)
    if hasattr(old, "eps") and hasattr(new, "eps"):
        new.eps = old.eps
    return moved


@torch.no_grad()
def _transfer_weights(old: nn.Module, new: nn.Module) -> dict[str, str]:
    """Copy tensors of ``old`` into ``new`` where names (then shapes and leaf names) match."""
    from ..weights import match_state_dict

    old_sd, new_sd = old.state_dict(), new.state_dict()
    mapping = match_state_dict(old_sd, new_sd, fuzzy=True)
    out = {}
    for src, dst in mapping.items():
        s, d = old_sd[src], new_sd[dst]
        if s.shape != d.shape:
            continue
        if not (s.is_meta or d.is_meta):
            d.copy_(s)
        out[src] = dst
    return out


def _unique_child(module: nn.Module, base: str, taken: set[str]) -> str:
    name, i = base, 1
    while name in taken or name in module._modules or hasattr(module, name):
        name = f"{base}_{i}"
        i += 1
    taken.add(name)
    return name


def plan_patches(model: nn.Module, patches: Any, trace: Trace, ctx: PlanContext | None = None) -> PatchPlan:
    """Resolve and validate every patch against ``model`` (usually a meta-device skeleton).

    Nothing is changed. Each new block is built on the meta device and run on the traced shape.
    """
    ctx = ctx or PlanContext()
    if ctx.preserve not in PRESERVE_MODES:
        raise PatchError("bad preserve value", where="preserve", expected="True, False, 'scalar' or 'channel'",
                         got=ctx.preserve)
    ops = normalize_patches(patches)
    modules = dict(model.named_modules())
    changes: list[PlannedChange] = []
    replaced: dict[str, str] = {}
    names_taken: dict[str, set[str]] = {}
    appended: dict[str, int] = {}
    # replacements first (so a wrap on the same target wraps the new module), then pre, then wraps
    order = sorted(range(len(ops)), key=lambda i: (0 if ops[i].op == "replace" else 1, i))
    for i in order:
        op = ops[i]
        targets = resolve_target(model, op.target, stages=ctx.stages, op=op.op, where=op.where)
        for target in targets:
            for rp, who in replaced.items():
                if target.startswith(rp + ".") or (target == rp and op.op == "replace"):
                    raise PatchError(f"{target!r} is inside {rp!r}, which {who} replaces", where=op.where,
                                     expected="targets outside replaced modules", got=target)
            changes.append(_plan_one(model, modules, op, target, trace, ctx, names_taken, appended))
            if op.op == "replace":
                replaced[target] = op.where
    plan = PatchPlan(changes, ctx.backbone)
    # whole-model check (a block that changes the shape it is given, with preserve=False): apply the plan
    # to a meta copy and run it. Every other change was already checked to keep its target's shape.
    if any(c._reshapes for c in changes):
        probe = _meta_copy(model)
        apply_plan(probe, plan, device="meta")
        try:
            trace_model(probe, trace.input_shape)
        except PatchError as exc:
            raise PatchError("the patched model does not run", where="patches",
                             expected="every patch to keep the shapes the rest of the model expects",
                             got=exc.got, hint="a wrap must return the shape it receives; "
                             "use replace for shape-changing blocks") from None
    return plan


def _meta_copy(model: nn.Module) -> nn.Module:
    memo: dict[int, Any] = {}
    for t in list(model.parameters()) + list(model.buffers()):
        if not t.is_meta:
            memo[id(t)] = t.detach().to("meta") if not isinstance(t, nn.Parameter) else \
                nn.Parameter(t.detach().to("meta"), requires_grad=t.requires_grad)
    return copy.deepcopy(model, memo)


def _plan_one(model: nn.Module, modules: dict[str, nn.Module], op: PatchOp, target: str, trace: Trace,
              ctx: PlanContext, names_taken: dict[str, set[str]], appended: dict[str, int]) -> PlannedChange:
    module = modules[target]
    old = type(module).__name__
    calls = trace.calls.get(target, [])
    if not target:
        raise PatchError("the whole model cannot be patched", where=op.where, expected="a module inside it")
    if op.op == "replace":
        return _plan_replace(module, op, target, calls, ctx)
    # wrap / inject_before
    if not calls:
        raise PatchError(f"{target!r} is never called in the forward pass, so a block there would never run",
                         where=op.where, expected="a module the model calls", got=target)
    if len(calls) > 1:
        raise PatchError(f"{target!r} is called {len(calls)} times in one forward pass, so a block there would "
                         f"run at every call site with shared weights", where=op.where,
                         expected="a module called once", got=_call_sites(calls),
                         hint="patch a module called once instead (e.g. a norm or conv next to it)")
    call = calls[0]
    shape = call.output if op.op == "wrap" else (call.inputs[0] if call.inputs else None)
    if shape is None:
        what = "return" if op.op == "wrap" else "take"
        raise PatchError(f"{target!r} does not {what} a single tensor", where=op.where, expected="a tensor",
                         got="returns a non-tensor" if op.op == "wrap" else
                         f"input shapes {call.inputs} (None: not a tensor, e.g. a list of feature maps)",
                         hint="patch a module inside it, or the module that produces its input")
    layout = _layout(ctx, target, shape)
    prefix = ctx.prefix_tokens if layout == "tokens" else 0
    map_shape, channels, grid = _map_shape(layout, shape, prefix, op, target)
    try:
        ctor = BLOCKS.get(op.block)
    except UnknownComponentError as exc:
        raise _patch_error(exc, op, target) from None
    kwargs = _channel_kwargs(op, ctor, channels, target)
    probe = _construct(op, target, ctor, kwargs, "meta", None)
    out_shape = _run_meta(probe, map_shape, op, target)
    same = out_shape == map_shape
    if ctx.preserve and not same:
        raise PatchError(f"{op.block!r} changes the shape {map_shape} -> {out_shape}, so it cannot be mixed in "
                         f"function-preservingly", where=op.where,
                         expected="a same-shape block (attention, residual with equal channels ...)",
                         got=f"{op.block}({channels})", hint="use op 'replace' for shape-changing blocks, or "
                         "preserve=False")
    if not same and layout != "nchw":
        raise PatchError(f"{op.block!r} changes the shape of a {layout} tensor", where=op.where,
                         expected="a same-shape block", got=out_shape)
    # a block that is already the identity at init (GC, non-local: zero-initialized last layer) keeps
    # the function by itself; a zero gate on top would make a saddle where neither moves
    preserve = ctx.preserve if ctx.preserve and not _identity_at_init(ctor, kwargs, map_shape) else False
    wrapper = PatchedBlock(probe, preserve=preserve, layout=layout, prefix_tokens=prefix, grid=grid,
                           channels=channels, device="meta")
    new_params = _count(wrapper)
    canonical = BLOCKS.canonical(op.block)
    # placement
    if op.op == "wrap" and _is_plain_sequential(module):
        k = appended.get(target, 0)
        appended[target] = k + 1
        numeric = all(n.isdigit() for n in module._modules)
        taken = names_taken.setdefault(target, set(module._modules))
        child = str(len(module) + k) if numeric else _unique_child(module, canonical, taken)
        taken.add(child)
        container = target
    elif op.op == "inject_before" and _is_plain_sequential(module) and len(module):
        # the block runs on the Sequential's input: put it in front of its first child (no renumbering)
        first = next(iter(module._modules))
        container = f"{target}.{first}"
        inner = module._modules[first]
        taken = names_taken.setdefault(container, set(inner._modules))
        child = _unique_child(inner, f"pre_{canonical}", taken)
    else:
        container = target
        taken = names_taken.setdefault(target, set(module._modules))
        child = _unique_child(module, canonical if op.op == "wrap" else f"pre_{canonical}", taken)
    new_path = f"{container}.{child}"
    detail = []
    if layout != "nchw":
        detail.append(f"{layout} adapter")
    if preserve:
        detail.append("identity at init (gamma=0)")
    elif ctx.preserve:
        detail.append("identity at init by the block's own init (no gate)")
    params_ = dict(op.params)

    def make(target_module: nn.Module, device: Any, dtype: Any) -> nn.Module:
        block = _construct(op, target, ctor, kwargs, device, dtype)
        return PatchedBlock(block, preserve=preserve, layout=layout, prefix_tokens=prefix, grid=grid,
                            channels=channels, device=device, dtype=dtype)

    return PlannedChange(target=target, op=op.op, block=canonical, old=old,
                         new=f"{old} + {type(probe).__name__}", new_path=new_path, in_channels=channels,
                         out_channels=out_shape[1], layout=layout, new_params=new_params,
                         detail=", ".join(detail), params=params_, spelled=op.spelled, source=op.target,
                         kind="block", _make=make, _child=child, _container=container, _reshapes=not same)


def _plan_replace(module: nn.Module, op: PatchOp, target: str, calls: list[Call], ctx: PlanContext
                  ) -> PlannedChange:
    old = type(module).__name__
    call = calls[0] if calls else None
    in_shape = call.inputs[0] if call and call.inputs else None
    out_shape = call.output if call else None
    # norm swap
    if _is_norm(module) and op.block in NORMS:
        channels = _norm_channels(module)
        layout = _layout(ctx, target, out_shape) if out_shape else "nchw"
        if out_shape is not None and layout != "nchw":
            raise PatchError(f"norm swaps apply to NCHW feature maps; {target!r} ({old}) normalizes a {layout} "
                             f"tensor of shape {out_shape}", where=op.where, expected="a 2-D norm on (N, C, H, W)",
                             got=op.block)
        if channels is None:
            raise PatchError(f"cannot tell the channels of {target!r} ({old})", where=op.where)
        ctor = NORMS.get(op.block)
        probe = _construct(op, target, ctor, dict(op.params), "meta", None, (channels,))
        if out_shape is not None and _run_meta(probe, out_shape, op, target) != out_shape:
            raise PatchError(f"{op.block!r} changes the shape at {target!r}", where=op.where, got=out_shape)
        moved = _transfer_norm(module, probe)
        name = NORMS.canonical(op.block)

        def make_norm(target_module: nn.Module, device: Any, dtype: Any) -> nn.Module:
            new = _construct(op, target, ctor, dict(op.params), device, dtype, (channels,))
            got = _transfer_norm(target_module, new)
            new._tvc_transfer = got
            return new

        return PlannedChange(target, "replace", name, old, type(probe).__name__, target, channels, channels,
                             layout, _count(probe), "kept " + (", ".join(moved) if moved else "nothing")
                             + (" (running statistics dropped)" if "running_mean" not in moved
                                and getattr(module, "running_mean", None) is not None else ""),
                             dict(op.params), op.spelled, op.target, "norm", make_norm)
    # activation swap
    if _is_act(module) and op.block in ACTIVATIONS:
        ctor = ACTIVATIONS.get(op.block)
        params, var_kw = _accepts(ctor)
        kwargs = dict(op.params)
        if getattr(module, "inplace", False) and "inplace" in params and "inplace" not in kwargs:
            kwargs["inplace"] = True
        probe = _construct(op, target, ctor, kwargs, None, None)
        name = ACTIVATIONS.canonical(op.block)

        def make_act(target_module: nn.Module, device: Any, dtype: Any) -> nn.Module:
            new = _construct(op, target, ctor, kwargs, None, None)
            return new.to(device=device, dtype=dtype) if _count(new) else new

        detail = "shared by " + str(len(calls)) + " call sites" if len(calls) > 1 else ""
        return PlannedChange(target, "replace", name, old, type(probe).__name__, target, None, None,
                             _layout(ctx, target, out_shape) if out_shape else "any", _count(probe), detail,
                             dict(op.params), op.spelled, op.target, "act", make_act)
    if op.block not in BLOCKS:
        pools = [BLOCKS]
        if _is_norm(module):
            pools.insert(0, NORMS)
        if _is_act(module):
            pools.insert(0, ACTIVATIONS)
        names = [n for reg in pools for n in reg.list()]
        kind = "norm" if _is_norm(module) else "activation" if _is_act(module) else "block"
        raise PatchError(f"unknown {kind} {op.block!r} for replacing {target!r} ({old})", where=op.where,
                         expected="a registered " + " or ".join(r.kind for r in pools) + " name",
                         got=op.block, suggestions=closest(op.block, names, n=5))
    # block replacement
    if not calls:
        raise PatchError(f"{target!r} is never called in the forward pass", where=op.where,
                         expected="a module the model calls", got=target)
    if len(calls) > 1:
        raise PatchError(f"{target!r} is called {len(calls)} times in one forward pass; a replacement block "
                         "would need one fixed channel count", where=op.where, expected="a module called once",
                         got=_call_sites(calls))
    if in_shape is None or out_shape is None or len(in_shape) != 4 or len(out_shape) != 4 or \
            _layout(ctx, target, out_shape) != "nchw":
        raise PatchError(f"block replacement needs an NCHW map in and out; {target!r} maps {in_shape} -> "
                         f"{out_shape}", where=op.where, expected="(N, C, H, W) -> (N, C', H', W')",
                         got=(in_shape, out_shape))
    cin, cout = in_shape[1], out_shape[1]
    stride = max(1, round(in_shape[2] / out_shape[2])) if out_shape[2] else 1
    ctor = BLOCKS.get(op.block)
    params, var_kw = _accepts(ctor)
    kwargs = dict(op.params)
    kwargs.setdefault("in_channels", cin)
    if cout != cin or "out_channels" in params:
        if "out_channels" in params or var_kw:
            kwargs.setdefault("out_channels", cout)
        else:
            raise PatchError(f"{op.block!r} keeps its channel count, but {target!r} maps {cin} -> {cout} channels",
                             where=op.where, expected="a block taking out_channels", got=op.block)
    if stride != 1 or "stride" in params:
        if "stride" in params or var_kw:
            kwargs.setdefault("stride", stride)
        else:
            raise PatchError(f"{op.block!r} takes no stride, but {target!r} has stride {stride}; replacing it "
                             "would lose a downsampling step", where=op.where, expected="a block taking stride",
                             got=op.block)
    probe = _construct(op, target, ctor, kwargs, "meta", None)
    got = _run_meta(probe, in_shape, op, target)
    if got != out_shape:
        raise PatchError(f"{op.block!r} built as {op.block}({', '.join(f'{k}={v}' for k, v in kwargs.items())}) "
                         f"maps {in_shape} -> {got}, but {target!r} gives {out_shape}", where=op.where,
                         expected=f"output shape {out_shape}", got=got,
                         hint="adjust params (kernel_size, padding, stride) so the shapes agree")
    reused = _transfer_weights(module, probe)
    canonical = BLOCKS.canonical(op.block)

    def make_block(target_module: nn.Module, device: Any, dtype: Any) -> nn.Module:
        new = _construct(op, target, ctor, kwargs, device, dtype)
        new._tvc_reused = _transfer_weights(target_module, new)
        return new

    detail = f"stride {stride} kept; reuses {len(reused)} of {len(probe.state_dict())} tensors"
    return PlannedChange(target, "replace", canonical, old, type(probe).__name__, target, cin, cout, "nchw",
                         _count(probe), detail, dict(op.params), op.spelled, op.target, "block", make_block)


# ===================================================================================== apply
def _set_child(root: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    if name not in parent._modules:  # set_submodule could create a new attribute (pytorch issue 143441)
        raise PatchError(f"no module at {path!r}", where="apply_plan")
    parent._modules[name] = new


def _device_dtype(module: nn.Module, device: Any) -> tuple[Any, Any]:
    for t in list(module.parameters()) + list(module.buffers()):
        if t.is_floating_point():
            return (device or t.device), t.dtype
    return device, None


def apply_plan(model: nn.Module, plan: PatchPlan, *, device: Any = None) -> list[tuple[str, str]]:
    """Apply a validated plan to ``model`` (same structure as the planned one).

    Returns ``(container, child)`` for every block appended to an ``nn.Sequential``, so callers
    can keep their stage bookkeeping.
    """
    appended: list[tuple[str, str]] = []
    for c in plan.changes:
        target = model.get_submodule(c.target)
        dev, dtype = _device_dtype(target, device)
        if dev is None:
            dev, dtype = _device_dtype(model, device)
        new = c._make(target, dev, dtype)  # type: ignore[misc]
        record = {"op": c.op, "target": c.target, "block": c.block, "params": dict(c.params),
                  "spelled": c.spelled or c.op, "source": c.source, "old": c.old, "kind": c.kind}
        if c.op == "replace":
            reused = getattr(new, "_tvc_reused", None) or getattr(new, "_tvc_transfer", None)
            if reused is not None:
                record["reused"] = reused
            new._tvc_patch = record
            _set_child(model, c.target, new)
            continue
        new._tvc_patch = record
        container = model.get_submodule(c._container)
        if c._child in container._modules:
            raise PatchError(f"{c._container!r} already has a child {c._child!r}", where="apply_plan",
                             expected="a free name for the new block", got=c._child)
        if c.op == "wrap" and _is_plain_sequential(container):
            container.add_module(c._child, new)
            appended.append((c._container, c._child))
            continue
        swap_class(container, _WrapContainerMixin if _is_container(container) else _WrapMixin)
        container.add_module(c._child, new)
        if c.op == "wrap":
            container._tvc_post = (*container._tvc_post, c._child)
        else:
            container._tvc_pre = (c._child, *container._tvc_pre)
    return appended


def apply_patches(model: nn.Module, patches: Any, input_shape: Sequence[int], *, preserve: Any = True,
                  ctx: PlanContext | None = None) -> PatchPlan:
    """Patch any ``nn.Module`` in place: trace a meta copy on ``input_shape``, plan, validate, apply.

    Nothing changes when any patch is invalid. Returns the applied :class:`PatchPlan`; blocks
    appended to ``nn.Sequential`` containers are listed in ``plan.appended``.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 16, 3), nn.ReLU())
        >>> plan = apply_patches(net, {"0": {"wrap": "se"}}, (1, 3, 32, 32))
        >>> net[0].se.block.__class__.__name__
        'SEBlock'
    """
    ctx = ctx or PlanContext(preserve=preserve)
    skeleton = _meta_copy(model)
    trace = trace_model(skeleton, tuple(input_shape))
    plan = plan_patches(skeleton, patches, trace, ctx)
    plan.appended = apply_plan(model, plan)
    return plan


def iter_patches(model: nn.Module) -> Iterable[tuple[str, nn.Module, dict[str, Any]]]:
    """``(path, module, record)`` for every module a patch (or the builder) put into ``model``."""
    for name, m in model.named_modules():
        rec = m.__dict__.get("_tvc_patch")
        if rec is not None:
            yield name, m, rec
