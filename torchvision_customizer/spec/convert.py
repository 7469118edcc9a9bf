"""Plain data (dicts from YAML or :meth:`ModelSpec.to_dict`) -> validated specs.

One function per spec kind; each takes a :class:`~.issues.Collector` and the dotted path of its
value, records every problem (unknown keys with suggestions, wrong types, bad values) and keeps
going, so that one call reports all of them. Recipe strings are parsed by
:mod:`torchvision_customizer.recipe.parser`, which produces the same dicts plus source positions.

Accepted keys (aliases in brackets; older-release names included):

* model: ``name``, ``input_shape``, ``stem``, ``stages``, ``head``, ``drop_path_rate``;
* stem: ``type``, ``channels`` [out_channels], ``kernel_size`` [kernel, k], ``stride`` [s],
  ``padding``, ``pool``, ``act`` [activation, act_layer], ``norm`` [norm_type, norm_layer],
  ``in_channels``, ``patch_size`` (patch stems: kernel and stride);
* stage: ``type`` [pattern, block] (``residual+se`` sets ``attention``), ``channels``
  [out_channels], ``blocks`` [depth, num_blocks, n], ``stride`` [s], ``downsample`` (bool),
  ``attention`` [attn], ``drop_path``, ``pool``, ``se`` (-> ``se_ratio``), ``args`` (a dict of block
  arguments), ``branch`` + ``merge``; every other key is a block argument, checked against the
  block's signature (``k``/``e``/``r``/... short names and older names mapped);
* head: ``type``, ``num_classes`` [classes], ``hidden`` [hidden_dims], ``dropout`` [d,
  dropout_rate], ``pool``, ``pool_size``, ``act`` [activation], ``norm``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import closest
from ..registry import BLOCKS
from . import _blocks
from ._frozen import FrozenDict
from .issues import Collector, Path
from .model import HeadSpec, ModelSpec, StageSpec, StemSpec, deferred_validation

__all__ = [
    "HEAD_KEYS",
    "MODEL_KEYS",
    "STAGE_KEYS",
    "STEM_KEYS",
    "head_from_value",
    "model_from_dict",
    "stage_from_value",
    "stem_from_value",
]

MODEL_KEYS = ("name", "input_shape", "stem", "stages", "head", "drop_path_rate")

STEM_KEYS: dict[str, str] = {
    "type": "type", "channels": "channels", "out_channels": "channels", "kernel_size": "kernel_size",
    "kernel": "kernel_size", "k": "kernel_size", "stride": "stride", "s": "stride", "padding": "padding",
    "pool": "pool", "act": "act", "activation": "act", "act_layer": "act", "norm": "norm",
    "norm_type": "norm", "norm_layer": "norm", "in_channels": "in_channels", "patch_size": "patch_size",
}
HEAD_KEYS: dict[str, str] = {
    "type": "type", "num_classes": "num_classes", "classes": "num_classes", "hidden": "hidden",
    "hidden_dims": "hidden", "dropout": "dropout", "d": "dropout", "dropout_rate": "dropout",
    "pool": "pool", "pool_size": "pool_size", "act": "act", "activation": "act", "act_layer": "act",
    "norm": "norm", "norm_layer": "norm",
}
#: stage-level keys (everything else is a block argument)
STAGE_KEYS: dict[str, str] = {
    "type": "type", "pattern": "type", "block": "type", "channels": "channels",
    "out_channels": "channels", "blocks": "blocks", "depth": "blocks", "num_blocks": "blocks",
    "n": "blocks", "stride": "stride", "s": "stride", "downsample": "downsample",
    "attention": "attention", "attn": "attention", "drop_path": "drop_path", "pool": "pool",
    "se": "se", "args": "args", "branch": "branch", "branches": "branch", "merge": "merge",
}


def _mapping(c: Collector, path: Path, value: Any, what: str) -> Mapping[str, Any] | None:
    if not isinstance(value, Mapping):
        c.add(path, "type", f"{what} must be a mapping", got=value, expected="a dict of keys")
        return None
    bad = [k for k in value if not isinstance(k, str)]
    for k in bad:
        c.add((*path, k), "type", "keys must be strings", got=k)
    return value if not bad else {k: v for k, v in value.items() if isinstance(k, str)}


def _collect_keys(c: Collector, path: Path, data: Mapping[str, Any], table: Mapping[str, str],
                  what: str, *, extra: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """Map aliases onto canonical keys; unknown keys become issues with suggestions."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        canon = table.get(key)
        if canon is None:
            if extra is not None and extra(key):
                continue
            c.add((*path, key), "unknown_key", f"unknown {what} key {key!r}", got=key,
                  expected="one of " + ", ".join(sorted(set(table))),
                  suggestions=closest(key, list(table)))
            continue
        if canon in out:
            c.add((*path, key), "duplicate", f"{what} key {canon!r} is given twice", got=key)
            continue
        out[canon] = value
    return out


# --------------------------------------------------------------------------------- stem
def stem_from_value(value: Any, c: Collector, path: Path) -> StemSpec | None:
    """A :class:`StemSpec` from a dict (or an existing spec; ``None``/"none" means no stem)."""
    if isinstance(value, StemSpec) or value is None:
        return value
    if isinstance(value, str):
        from ..recipe.parser import parse_stem_into

        return parse_stem_into(value, c, path)
    data = _mapping(c, path, value, "stem")
    if data is None:
        return None
    kw = _collect_keys(c, path, data, STEM_KEYS, "stem")
    stem_type = kw.get("type", "conv")
    patch = kw.pop("patch_size", None)
    if patch is not None:
        if isinstance(stem_type, str) and stem_type.strip().lower() not in ("patch", "patchify", "patch_embed"):
            c.add((*path, "patch_size"), "unsupported", "patch_size is only for patch stems", got=patch)
        else:
            kw.setdefault("kernel_size", patch)
    with deferred_validation():
        return StemSpec(**kw)


# --------------------------------------------------------------------------------- head
def head_from_value(value: Any, c: Collector, path: Path) -> HeadSpec | None:
    """A :class:`HeadSpec` from a dict (or an existing spec; ``None`` means a headless model)."""
    if isinstance(value, HeadSpec) or value is None:
        return value
    if isinstance(value, str):
        from ..recipe.parser import parse_head_into

        return parse_head_into(value, c, path)
    data = _mapping(c, path, value, "head")
    if data is None:
        return None
    kw = _collect_keys(c, path, data, HEAD_KEYS, "head")
    if "num_classes" not in kw:
        c.add((*path, "num_classes"), "missing", "the head needs num_classes", expected="a positive integer")
        kw["num_classes"] = 1
    with deferred_validation():
        return HeadSpec(**kw)


# --------------------------------------------------------------------------------- stage
def split_attention(name: Any) -> tuple[Any, list[str]]:
    """``"residual+se"`` -> ``("residual", ["se"])``."""
    if not isinstance(name, str) or "+" not in name:
        return name, []
    head, *rest = [p.strip() for p in name.split("+")]
    return head, rest


def stage_from_value(value: Any, c: Collector, path: Path) -> StageSpec | None:
    """A :class:`StageSpec` from a dict (``{type, channels, blocks, ...}``) or an existing spec."""
    if isinstance(value, StageSpec):
        return value
    if isinstance(value, str):
        from ..recipe.parser import parse_stage_into

        return parse_stage_into(value, c, path)
    data = _mapping(c, path, value, "stage")
    if data is None:
        return None
    if "branch" in data or "branches" in data:
        return _branch_from(data, c, path)
    return stage_from_fields(data, c, path)


def stage_from_fields(data: Mapping[str, Any], c: Collector, path: Path,
                      arg_paths: Mapping[str, Path] | None = None) -> StageSpec | None:
    """Core of stage conversion, shared by dicts and parsed strings (``arg_paths``: key -> path)."""
    stage_kw: dict[str, Any] = {}
    block_kw: dict[str, Any] = {}
    for key, val in data.items():
        canon = STAGE_KEYS.get(key)
        if canon is None:
            block_kw[key] = val
        elif canon in stage_kw:
            c.add((*path, key), "duplicate", f"stage key {canon!r} is given twice", got=key)
        else:
            stage_kw[canon] = val
    raw_type = stage_kw.pop("type", None)
    if raw_type is None:
        c.add((*path, "type"), "missing", "the stage needs a block type", expected="e.g. type: residual")
        return None
    block, attentions = split_attention(raw_type)
    if not isinstance(block, str):
        c.add((*path, "type"), "type", "the block type must be a name", got=raw_type)
        return None
    known = block in BLOCKS
    if not known:
        c.add((*path, "type"), "unknown_block", f"unknown block {block!r}", got=block,
              expected="a registered block name (see registry.list())",
              suggestions=_blocks.suggest_blocks(block))
    else:
        block = BLOCKS.canonical(block)
    attention = stage_kw.pop("attention", None)
    if attentions:
        if len(attentions) > 1:
            c.add((*path, "type"), "value", "a block has one attention slot", got=raw_type,
                  expected=f"{block}+ATTENTION with a single attention name")
        if attention is not None:
            c.add((*path, "attention"), "duplicate", "attention is given twice", got=attention,
                  hint=f"keep either +{attentions[0]} or attention=")
        attention = attentions[0]
    if "downsample" in stage_kw:
        ds = stage_kw.pop("downsample")
        if ds is None:
            pass
        elif not isinstance(ds, bool):
            c.add((*path, "downsample"), "type", "downsample is a flag", got=ds, expected="true or false")
        elif ds:
            if "stride" in stage_kw and stage_kw["stride"] == 1:
                c.add((*path, "downsample"), "conflict", "downsample contradicts stride=1", got=True)
            stage_kw.setdefault("stride", 2)
    args: dict[str, Any] = {}
    nested = stage_kw.pop("args", None)
    if nested is not None:
        m = _mapping(c, (*path, "args"), nested, "args")
        if m:
            block_kw = {**m, **block_kw}
    se = stage_kw.pop("se", None)
    if se is not None:
        block_kw["se_ratio"] = se
    for key, val in block_kw.items():
        kpath = (arg_paths or {}).get(key, (*path, key))
        if not known:
            continue
        try:
            canon, conv = _blocks.resolve_arg(block, key, val)
        except _blocks.ArgProblem as p:
            sugg = p.suggestions
            if p.code == "unknown_arg":  # maybe a misspelled stage key (attention, downsample ...)
                sugg = tuple(closest(key, [*p.suggestions, *STAGE_KEYS]))
            c.add(kpath, p.code, p.message, got=val, expected=p.expected, suggestions=sugg)
            continue
        if canon == "attn_layer" and attention is not None:
            c.add(kpath, "duplicate", "attention is given twice", got=val)
            continue
        if canon in args:
            c.add(kpath, "duplicate", f"argument {canon!r} is given twice", got=key)
            continue
        args[canon] = conv
        if kpath in c.spans:
            c.spans.setdefault((*path, "args", canon), c.spans[kpath])
    for key in ("merge", "branch"):
        if key in stage_kw:
            stage_kw.pop(key)
            c.add((*path, key), "unknown_key", f"{key!r} is only valid in a branch stage", got=key,
                  hint="write a branch stage as {branch: [[...], [...]], merge: concat}")
    if "channels" not in stage_kw:
        c.add((*path, "channels"), "missing", f"stage {block!r} needs its output channels",
              expected=f"{block}(CHANNELS, ...)")
        stage_kw["channels"] = 1
    with deferred_validation():
        return StageSpec(block, attention=attention, args=FrozenDict(args), **stage_kw)


def _branch_from(data: Mapping[str, Any], c: Collector, path: Path) -> StageSpec | None:
    kw = _collect_keys(c, path, data, {"branch": "branch", "branches": "branch", "merge": "merge",
                                       "channels": "channels"}, "branch stage")
    paths = kw.get("branch")
    if not isinstance(paths, list):
        c.add((*path, "branch"), "type", "branch must be a list of paths", got=paths,
              expected="a list of lists of stages ([] is the identity)")
        return None
    branches: list[tuple[StageSpec, ...]] = []
    for i, p in enumerate(paths):
        if isinstance(p, (str, Mapping)):
            p = [p]
        if not isinstance(p, list):
            c.add((*path, "branch", i), "type", "a branch path must be a list of stages", got=p)
            continue
        stages = [stage_from_value(s, c, (*path, "branch", i, j)) for j, s in enumerate(p)]
        branches.append(tuple(s for s in stages if s is not None))
    with deferred_validation():
        return StageSpec("branch", channels=kw.get("channels"), branches=tuple(branches),
                         merge=kw.get("merge", "concat"))


# --------------------------------------------------------------------------------- model
def model_from_dict(data: Any, *, collector: Collector | None = None, path: Path = (),
                    extra_keys: tuple[str, ...] = (), title: str | None = None) -> ModelSpec:
    """Build a :class:`ModelSpec` from plain data, reporting every problem at once.

    ``extra_keys`` are top-level keys the caller handles (YAML metadata); with a ``collector``
    passed in, problems are recorded there and not raised.
    """
    c = collector if collector is not None else Collector()
    spec = _model_from(data, c, path, extra_keys)
    if spec is not None and not c:
        spec._check(c, path)
    if collector is None:
        name = data.get("name") if isinstance(data, Mapping) else None
        c.raise_if_any(title or (f"recipe {name!r}" if isinstance(name, str) else "recipe"))
    return spec  # type: ignore[return-value]


def _model_from(data: Any, c: Collector, path: Path, extra_keys: tuple[str, ...]) -> ModelSpec | None:
    m = _mapping(c, path, data, "recipe")
    if m is None:
        return None
    table = {k: k for k in MODEL_KEYS}
    kw = _collect_keys(c, path, m, table, "recipe", extra=lambda k: k in extra_keys)
    stem = stem_from_value(kw.get("stem", None), c, (*path, "stem")) if kw.get("stem") is not None else None
    stages_raw = kw.get("stages", [])
    stages: list[StageSpec] = []
    if not isinstance(stages_raw, (list, tuple)):
        c.add((*path, "stages"), "type", "stages must be a list", got=stages_raw,
              expected="a list of stage strings or dicts")
    else:
        for i, s in enumerate(stages_raw):
            st = stage_from_value(s, c, (*path, "stages", i))
            if st is not None:
                stages.append(st)
    head = head_from_value(kw.get("head"), c, (*path, "head")) if kw.get("head") is not None else None
    shape = kw.get("input_shape", (3, 224, 224))
    if isinstance(shape, list):
        shape = tuple(shape)
    if c:
        # still check the parts that converted, so that one run reports everything
        with deferred_validation():
            top = ModelSpec(name=kw.get("name", "CustomModel"), input_shape=shape,
                            drop_path_rate=kw.get("drop_path_rate", 0.0))
        top._check_top(c, path)
        for i, st in enumerate(stages):
            st._check(c, (*path, "stages", i))
        if stem is not None:
            stem._check(c, (*path, "stem"))
        if head is not None:
            head._check(c, (*path, "head"))
        _dedupe(c)
        return None
    with deferred_validation():
        return ModelSpec(name=kw.get("name", "CustomModel"), input_shape=shape, stem=stem,
                         stages=tuple(stages), head=head, drop_path_rate=kw.get("drop_path_rate", 0.0))


def _dedupe(c: Collector) -> None:
    seen: set[tuple[Any, ...]] = set()
    kept = []
    for issue in c.issues:
        key = (issue.path, issue.code, issue.message)
        if key not in seen:
            seen.add(key)
            kept.append(issue)
    c.issues[:] = kept
