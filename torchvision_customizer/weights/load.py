"""Partial loading with a full report, key matching and model-to-model transfer.

:func:`partial_load` fills a model from a state dict, a file or another model and returns a
:class:`~torchvision_customizer.weights.report.LoadReport` saying what happened to every tensor.
Matching, in order:

1. wrapper prefixes (``module.``, ``_orig_mod.``, ``model.``, ``backbone.``) are stripped from source
   keys when that makes more keys match (``report.prefix_stripped``);
2. exact key with the same shape -> ``loaded``;
3. adaptation rules (``adapt=True``, see :mod:`.rules`) -> ``adapted`` with the rule's name;
4. an optional ``key_map`` renames the source keys that are left;
5. whatever remains is ``shape_mismatched``, ``missing`` or ``unexpected``; a module with a
   mismatched tensor is never half-loaded.

Tensors that are not loaded keep the model's own initialization unless ``init_new_layers`` names a
scheme, which then touches only what the report lists in ``newly_initialized`` and never zeroes a
norm scale. Nothing is changed when ``strict`` (or ``ignore_mismatch=False``) raises.

Example:
    >>> import torchvision
    >>> model = torchvision.models.resnet18(num_classes=10)
    >>> report = partial_load(model, "resnet18.safetensors")  # doctest: +SKIP
    >>> report.shape_mismatched  # doctest: +SKIP
    [('fc.weight', (1000, 512), (10, 512)), ('fc.bias', (1000,), (10,))]
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import WeightLoadingError, closest
from ._files import load_state_dict_file, unwrap_checkpoint
from .report import LoadReport
from .rules import (
    INIT_SCHEMES,
    INPUT_CONV_MODES,
    KEEP_INIT_ATTR,
    adapt_input_conv,
    can_adapt_input_conv,
    find_input_conv,
    init_tensor_,
    module_of,
    modules_to_keep_whole,
    norm_kind,
    norm_swap,
    resolve_input_conv_mode,
    source_norm_kind,
)
from .sources import ResolvedWeights

__all__ = [
    "WRAPPER_PREFIXES",
    "count_matching_params",
    "get_layer_shapes",
    "match_state_dict",
    "partial_load",
    "transfer_weights",
]

#: Prefixes that training wrappers add to every key (DDP/DataParallel, torch.compile, Lightning, ...).
WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.", "backbone.")

KeyMap = Mapping[str, str] | Sequence[tuple["str | re.Pattern[str]", str]]


# ------------------------------------------------------------------ inputs
def _unwrap_model(model: Any, where: str = "model") -> nn.Module:
    if not isinstance(model, nn.Module):
        raise WeightLoadingError(f"{where} must be an nn.Module", where=where, expected="a torch.nn.Module",
                                 got=type(model).__name__)
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif type(model).__name__ == "OptimizedModule" and isinstance(getattr(model, "_orig_mod", None),
                                                                      nn.Module):
            model = model._orig_mod  # torch.compile wrapper: load into the module it wraps
        else:
            return model


def _read_source(source: Any, where: str = "source") -> tuple[dict[str, Any], str]:
    """Source -> (flat dict, description)."""
    if isinstance(source, nn.Module):
        return dict(_unwrap_model(source, where).state_dict()), f"module {type(source).__name__}"
    if isinstance(source, ResolvedWeights):
        sd = source.state_dict()
        if sd is None:
            raise WeightLoadingError("there are no weights to load", where=where,
                                     expected="resolved weights other than weights=None", got=source.name,
                                     hint="skip the load when weights is None")
        return sd, source.name
    if isinstance(source, (str, os.PathLike, bytes)):
        return load_state_dict_file(source), str(os.fsdecode(source) if isinstance(source, bytes) else source)
    if isinstance(source, Mapping):
        sd = unwrap_checkpoint(source)
        bad = [k for k in sd if not isinstance(k, str)]
        if bad:
            raise WeightLoadingError("state dict keys must be strings", where=where,
                                     expected="a dict of 'dotted.name' -> tensor", got=bad[:5])
        return dict(sd), "state dict"
    raise WeightLoadingError(
        "unsupported weights source", where=where,
        expected="a state dict, a path to a .safetensors/.pth file, or an nn.Module",
        got=type(source).__name__,
        hint="for torchvision weights by tag use resolve_weights(name, 'DEFAULT').state_dict()")


def _split_tensors(sd: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], list[str]]:
    tensors: dict[str, torch.Tensor] = {}
    other: list[str] = []
    for k, v in sd.items():
        if isinstance(v, torch.Tensor):
            tensors[k] = v
        else:
            other.append(k)
    return tensors, other


def _strip_prefixes(keys: Iterable[str], target: Mapping[str, Any]) -> tuple[dict[str, str], str | None]:
    """Source key -> name after stripping the wrapper prefixes that make more keys match the target.

    Chains (``module._orig_mod.``) count as one prefix; the chain that makes the most keys match wins
    (the shortest on a tie), and the search repeats while it still adds matches.
    """
    names = {k: k for k in keys}
    applied: list[str] = []
    while True:
        taken = set(names.values())
        counts: dict[str, int] = {}
        for n in taken:
            if n in target:
                continue
            chain, rest = "", n
            while True:
                p = next((p for p in WRAPPER_PREFIXES if rest.startswith(p)), None)
                if p is None:
                    break
                chain, rest = chain + p, rest[len(p):]
                if rest in target and rest not in taken:
                    counts[chain] = counts.get(chain, 0) + 1
        if not counts:
            return names, ", ".join(applied) or None
        best = min(counts, key=lambda c: (-counts[c], len(c), c))
        for k, n in names.items():
            if n not in target and n.startswith(best) and n[len(best):] not in taken:
                names[k] = n[len(best):]
        applied.append(best)


def _check_key_map(key_map: Any) -> tuple[dict[str, str] | None, list[tuple[re.Pattern[str], str]] | None]:
    if key_map is None:
        return None, None
    if isinstance(key_map, Mapping):
        for s, t in key_map.items():
            if not isinstance(s, str) or not isinstance(t, str):
                raise WeightLoadingError("key_map entries must map str to str", where=f"key_map[{s!r}]",
                                         expected="{'source.key': 'model.key'}", got=(s, t))
        return dict(key_map), None
    if isinstance(key_map, (list, tuple)):
        rules: list[tuple[re.Pattern[str], str]] = []
        for i, pair in enumerate(key_map):
            if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                    or not isinstance(pair[0], (str, re.Pattern)) or not isinstance(pair[1], str)):
                raise WeightLoadingError("key_map rules must be (regex, replacement) pairs",
                                         where=f"key_map[{i}]", expected="(r'^encoder\\.', 'backbone.')",
                                         got=pair)
            try:
                rules.append((re.compile(pair[0]), pair[1]))
            except re.error as exc:
                raise WeightLoadingError("invalid regular expression in key_map", where=f"key_map[{i}]",
                                         expected="a valid Python regex", got=pair[0], hint=str(exc)) from None
        return None, rules
    raise WeightLoadingError("key_map has the wrong type", where="key_map",
                             expected="a dict of exact renames or a list of (regex, replacement) pairs",
                             got=type(key_map).__name__)


def _check_init(init_new_layers: Any) -> str | None:
    if init_new_layers is None:
        return None
    if init_new_layers == "zero":  # the older release's spelling
        return "zeros"
    if not isinstance(init_new_layers, str) or init_new_layers not in INIT_SCHEMES:
        raise WeightLoadingError("unknown init_new_layers scheme", where="init_new_layers",
                                 expected="None (keep the model's own init) or one of " + ", ".join(INIT_SCHEMES),
                                 got=init_new_layers, suggestions=closest(str(init_new_layers), INIT_SCHEMES))
    return init_new_layers


# -------------------------------------------------------------------- core
class _Plan:
    """Bookkeeping of one load: which source key fills which model key, and why not."""

    def __init__(self, target: Mapping[str, torch.Tensor], tensors: Mapping[str, torch.Tensor]) -> None:
        self.target = target
        self.tensors = tensors
        self.pairs: dict[str, str] = {}  # model key -> source key
        self.rule: dict[str, str] = {}  # model key -> rule name (adapted)
        self.new_values: dict[str, torch.Tensor] = {}  # model key -> adapted tensor
        self.kept: dict[str, str] = {}  # model key -> why it keeps its value (not missing)
        self.dropped: dict[str, str] = {}  # source key -> reason
        self.key_map_applied: dict[str, str] = {}

    def claim(self, model_key: str, src_key: str, where: str) -> None:
        other = self.pairs.get(model_key)
        if other is not None and other != src_key:
            raise WeightLoadingError(
                "two source keys map to the same model key", where=where,
                expected="each model key filled at most once", got=f"{other!r} and {src_key!r} -> {model_key!r}",
                hint="make the key_map / layer_mapping one-to-one")
        self.pairs[model_key] = src_key


def _apply_renames(plan: _Plan, names: dict[str, str], renames: Mapping[str, str]) -> None:
    """Explicit renames (transfer_weights' layer_mapping), applied before exact matching."""
    for src, tgt in renames.items():
        plan.claim(tgt, src, f"layer_mapping ({src!r})")
        plan.key_map_applied[src] = tgt
        names[src] = tgt


def _apply_key_map(plan: _Plan, names: dict[str, str], key_map: Any) -> None:
    exact, rules = _check_key_map(key_map)
    target = plan.target
    by_name = {n: k for k, n in names.items()}
    leftover = [k for k, n in names.items() if n not in target]
    if exact is not None:
        for src, tgt in exact.items():
            orig = src if src in names else by_name.get(src)
            where = f"key_map[{src!r}]"
            if orig is None:
                raise WeightLoadingError("key_map entry matches no source key", where=where,
                                         expected="a key of the source state dict", got=src,
                                         suggestions=closest(src, list(names.values()) + list(names)),
                                         hint="key_map keys are source keys; values are model keys")
            if tgt not in target:
                raise WeightLoadingError("key_map entry renames to a key the model does not have", where=where,
                                         expected="a key of the model's state dict", got=tgt,
                                         suggestions=closest(tgt, target))
            if names[orig] in target:  # already matched by name: the key map is not needed for it
                continue
            plan.claim(tgt, orig, where)
            plan.key_map_applied[orig] = tgt
        return
    if rules is None:
        return
    hits = [0] * len(rules)
    into_model = [0] * len(rules)
    example: list[str | None] = [None] * len(rules)
    for orig in leftover:
        name = names[orig]
        for i, (pat, repl) in enumerate(rules):
            if pat.search(name) is None:
                continue
            hits[i] += 1
            new = pat.sub(repl, name)
            example[i] = example[i] or f"{name!r} -> {new!r}"
            if new in target:
                into_model[i] += 1
                plan.claim(new, orig, f"key_map[{i}] ({pat.pattern!r})")
                plan.key_map_applied[orig] = new
            break
    every = list(names) + list(names.values())
    for i, (pat, _repl) in enumerate(rules):
        where = f"key_map[{i}] ({pat.pattern!r})"
        if not hits[i] and not any(pat.search(k) for k in every):
            raise WeightLoadingError("key_map rule matches no source key", where=where,
                                     expected="a regex that matches some source keys",
                                     got=pat.pattern, hint="source keys look like: " + ", ".join(
                                         repr(k) for k in list(names.values())[:3]))
        if hits[i] and not into_model[i]:
            raise WeightLoadingError("key_map rule renames keys, but to none the model has", where=where,
                                     expected="renamed keys that exist in the model", got=example[i],
                                     hint="model keys look like: " + ", ".join(repr(k) for k in list(target)[:3]))


def _apply_norm_rules(plan: _Plan, names: dict[str, str], modules: dict[str, nn.Module],
                      also_in_source: Iterable[str] = ()) -> None:
    # keys excluded from a transfer still tell what kind of norm the source had
    src_names = set(names.values()) | set(plan.pairs) | set(also_in_source)
    by_name = {n: k for k, n in names.items()}
    paired_sources = set(plan.pairs.values())
    for path, mod in modules.items():
        kind = norm_kind(mod)
        if kind is None:
            continue
        skind = source_norm_kind(path, src_names)
        if skind is None or skind == kind:
            continue
        prefix = f"{path}." if path else ""
        leaves = [leaf for leaf in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
                  if prefix + leaf in plan.target]
        rule, drop, keep = norm_swap(skind, kind, type(mod).__name__, leaves)
        for leaf in leaves:
            key = prefix + leaf
            if rule is not None and key in plan.pairs:
                plan.rule[key] = rule
        for leaf, reason in drop.items():
            src = by_name.get(prefix + leaf)
            if src is not None and src not in paired_sources:
                plan.dropped[src] = reason
        for leaf, reason in keep.items():
            if prefix + leaf not in plan.pairs:
                plan.kept[prefix + leaf] = reason


def _keep_init_owner(key: str, modules: Mapping[str, nn.Module]) -> str | None:
    """The innermost non-root module on ``key``'s path that asks to keep its own init."""
    parts = module_of(key).split(".") if module_of(key) else []
    found = None
    for i in range(1, len(parts) + 1):
        path = ".".join(parts[:i])
        mod = modules.get(path)
        if mod is not None and (getattr(mod, KEEP_INIT_ATTR, False) or getattr(type(mod), "block_name", "")):
            found = f"{type(mod).__name__} at {path!r}"
    return found


def _load(model: nn.Module, raw: Mapping[str, Any], desc: str, *, strict: bool, ignore_mismatch: bool,
          key_map: Any, init_new_layers: Any, adapt: bool, input_conv_mode: str, dry_run: bool,
          renames: Mapping[str, str] | None = None, excluded: Mapping[str, str] | None = None) -> LoadReport:
    scheme = _check_init(init_new_layers)
    if input_conv_mode not in INPUT_CONV_MODES:
        raise WeightLoadingError("unknown input_conv_mode", where="input_conv_mode",
                                 expected="one of " + ", ".join(INPUT_CONV_MODES), got=input_conv_mode,
                                 suggestions=closest(str(input_conv_mode), INPUT_CONV_MODES))
    tensors, non_tensor = _split_tensors(raw)
    target = model.state_dict()
    report = LoadReport(source=desc, non_tensor=non_tensor, num_model_tensors=len(target),
                        num_source_tensors=len(tensors) + len(excluded or {}))
    plan = _Plan(target, tensors)
    names = {k: k for k in tensors}
    if renames:
        _apply_renames(plan, names, renames)
    rest, prefix = _strip_prefixes([k for k in tensors if k not in plan.key_map_applied], target)
    names.update(rest)
    report.prefix_stripped = prefix
    for orig, name in rest.items():
        if name in target and name not in plan.pairs:
            plan.pairs[name] = orig
    if key_map is not None:
        _apply_key_map(plan, names, key_map)

    modules: dict[str, nn.Module] | None = None
    first_conv = None
    if adapt:
        modules = dict(model.named_modules())
        _apply_norm_rules(plan, names, modules, excluded or ())
        first_conv = find_input_conv(model)

    # classify every pair in model order
    status: dict[str, str] = {}  # model key -> "loaded" | rule name
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
    values: dict[str, torch.Tensor] = {}
    for key in target:
        src = plan.pairs.get(key)
        if src is None:
            continue
        s = tensors[src]
        ss, ms = tuple(s.shape), tuple(target[key].shape)
        if ss == ms:
            values[key] = s
            status[key] = plan.rule.get(key, "loaded")
        elif adapt and key == first_conv and can_adapt_input_conv(ss, ms):
            mode = resolve_input_conv_mode(ms[1], input_conv_mode)
            values[key] = adapt_input_conv(s, ms[1], mode)
            status[key] = f"input_conv_{mode}"
        else:
            mismatched.append((key, ss, ms))

    newly: dict[str, str] = {}
    for key, why in modules_to_keep_whole([m[0] for m in mismatched], list(values)).items():
        del values[key]
        del status[key]
        reason = (f"model init (kept: {why} does not fit, and {module_of(key)!r} is never half-loaded)")
        newly[key] = reason
        plan.dropped[plan.pairs[key]] = f"not loaded into {key!r}: {why} does not fit " \
                                        f"and {module_of(key)!r} is never half-loaded"

    used = {plan.pairs[k] for k in values}
    mismatched_src = {plan.pairs[k] for k, _, _ in mismatched}
    report.loaded = [k for k, s in status.items() if s == "loaded"]
    report.adapted = {k: s for k, s in status.items() if s != "loaded"}
    report.matched = {k: plan.pairs[k] for k in status}
    report.shape_mismatched = mismatched
    report.missing = [k for k in target if k not in plan.pairs and k not in plan.kept]
    report.dropped = dict(plan.dropped)
    if excluded:
        report.dropped.update(excluded)
    report.unexpected = [k for k in tensors if k not in used and k not in mismatched_src
                         and k not in plan.dropped]
    report.key_map_applied = {s: t for s, t in plan.key_map_applied.items()}
    for key in target:
        if key not in values:
            newly.setdefault(key, plan.kept.get(key, "model init (kept)"))
    report.newly_initialized = {k: newly[k] for k in target if k in newly}

    if strict:
        report.raise_if()
    elif not ignore_mismatch:
        report.raise_if(missing=False, unexpected=False, mismatched=True)
    if dry_run:
        return report

    if values:
        # keep the per-module version metadata: some torchvision modules (MNASNet) migrate by it
        values = OrderedDict(values)
        values._metadata = getattr(model.state_dict(), "_metadata", None)  # type: ignore[attr-defined]
        result = model.load_state_dict(values, strict=False)
        if result.unexpected_keys:  # a module hook refused a key we matched: say so, do not hide it
            for k in result.unexpected_keys:
                report.newly_initialized[k] = "model init (kept: the module's load hook refused the tensor)"
    if scheme is not None:
        if modules is None:
            modules = dict(model.named_modules())
        for key in list(report.newly_initialized):
            if key in plan.kept:
                continue
            owner = _keep_init_owner(key, modules)
            if owner is not None:
                report.newly_initialized[key] = f"model init (kept: deliberate init of {owner})"
                continue
            mod = modules.get(module_of(key))
            if mod is None:
                continue
            report.newly_initialized[key] = init_tensor_(target[key], mod, key.rpartition(".")[2], scheme)
    return report


# ------------------------------------------------------------------ public
def partial_load(model: nn.Module, source: Any, *, strict: bool = False, ignore_mismatch: bool = True,
                 key_map: KeyMap | None = None, init_new_layers: str | None = None, adapt: bool = True,
                 input_conv_mode: str = "auto", dry_run: bool = False) -> LoadReport:
    """Load what fits from ``source`` into ``model`` and report what happened to every tensor.

    Args:
        model: the model to fill (a DataParallel/DDP/``torch.compile`` wrapper is looked through).
        source: a state dict (or a training checkpoint dict holding ``state_dict``/``model``/
            ``model_state_dict``), a path to a ``.safetensors``/``.pt``/``.pth``/``.bin`` file, an
            ``nn.Module``, or a :class:`~torchvision_customizer.weights.ResolvedWeights`.
        strict: raise :class:`WeightLoadingError` (carrying the report, model unchanged) when any
            tensor is missing, unexpected or shape-mismatched.
        ignore_mismatch: with ``False``, raise on shape mismatches only (model unchanged).
        key_map: renames for source keys that match nothing by name: a dict of exact renames
            ``{"source.key": "model.key"}`` or a list of ``(regex, replacement)`` pairs (the first
            pair whose regex matches a key renames it).
        init_new_layers: ``None`` (default: tensors not loaded keep the model's own init) or
            ``"kaiming"``, ``"xavier"``, ``"normal"``, ``"zeros"`` for the tensors listed in
            ``report.newly_initialized``; norm scales become 1 (never 0), biases 0; tensors inside
            registered blocks or modules marked ``_tvc_keep_init`` keep their deliberate init.
        adapt: apply the adaptation rules (input channels of the first conv, norm swaps).
        input_conv_mode: ``"auto"``, ``"sum"``, ``"zeros"`` or ``"repeat"`` (see ``adapt_input_conv``).
        dry_run: compute the report without changing the model.

    Returns:
        The :class:`LoadReport`. dtype and device follow the model. Non-tensor source entries
        (``"epoch": 3``) are listed in ``report.non_tensor`` and never raise.
    """
    model = _unwrap_model(model)
    raw, desc = _read_source(source)
    return _load(model, raw, desc, strict=strict, ignore_mismatch=ignore_mismatch, key_map=key_map,
                 init_new_layers=init_new_layers, adapt=adapt, input_conv_mode=input_conv_mode, dry_run=dry_run)


def _as_tensors(obj: Any, where: str) -> dict[str, torch.Tensor]:
    return _split_tensors(_read_source(obj, where)[0])[0]


def _tokens(key: str) -> set[str]:
    return set(key.split("."))


def match_state_dict(source: Any, target: Any, fuzzy: bool = False, **legacy: Any) -> dict[str, str]:
    """Pair source keys with target keys: exact name and shape first; with ``fuzzy=True`` the rest by shape.

    Fuzzy pairing looks only at keys left unpaired: two keys can pair when their shapes and their last
    token (``weight``, ``bias``, ``running_mean``, ...) are equal; pairs with the most shared dotted
    tokens win, ties go to the closest relative position, then to source order. One-to-one and
    deterministic. ``source``/``target``: state dicts, files or modules.

    Returns:
        source key -> target key.
    """
    if legacy:
        if set(legacy) != {"fuzzy_match"}:
            raise WeightLoadingError("match_state_dict got an unexpected argument", where="match_state_dict",
                                     expected="source, target, fuzzy", got=sorted(legacy))
        fuzzy = bool(legacy["fuzzy_match"])  # the older release's name
    src = _as_tensors(source, "source")
    tgt = _as_tensors(target, "target")
    out = {k: k for k, v in src.items() if k in tgt and tgt[k].shape == v.shape}
    if not fuzzy:
        return out
    rest_s = [k for k in src if k not in out]
    taken = set(out.values())
    rest_t = [k for k in tgt if k not in taken]
    groups: dict[tuple[tuple[int, ...], str], tuple[list[int], list[int]]] = {}
    for i, k in enumerate(rest_s):
        groups.setdefault((tuple(src[k].shape), k.rpartition(".")[2]), ([], []))[0].append(i)
    for j, k in enumerate(rest_t):
        g = groups.get((tuple(tgt[k].shape), k.rpartition(".")[2]))
        if g is not None:
            g[1].append(j)
    ns, nt = max(len(rest_s), 1), max(len(rest_t), 1)
    for s_idx, t_idx in groups.values():
        if not t_idx:
            continue
        cands = []
        for i in s_idx:
            ts = _tokens(rest_s[i])
            for j in t_idx:
                score = len(ts & _tokens(rest_t[j]))
                cands.append((-score, abs(i / ns - j / nt), i, j))
        cands.sort()
        used_s: set[int] = set()
        used_t: set[int] = set()
        for _, _, i, j in cands:
            if i in used_s or j in used_t:
                continue
            used_s.add(i)
            used_t.add(j)
            out[rest_s[i]] = rest_t[j]
    return {k: out[k] for k in src if k in out}


def _compile_patterns(patterns: Any, where: str) -> list[re.Pattern[str]]:
    if patterns is None:
        return []
    if isinstance(patterns, (str, re.Pattern)):
        patterns = [patterns]
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p))
        except (re.error, TypeError) as exc:
            raise WeightLoadingError("invalid pattern", where=where, expected="a regular expression",
                                     got=p, hint=str(exc)) from None
    return out


def transfer_weights(source_model: Any, target_model: nn.Module, include_patterns: Any = None,
                     exclude_patterns: Any = None, layer_mapping: Mapping[str, str] | None = None, *,
                     strict: bool = False, adapt: bool = True) -> LoadReport:
    """Copy selected tensors from ``source_model`` into ``target_model``; nothing else is touched.

    Args:
        source_model: a module, state dict or weights file.
        target_model: the module to fill.
        include_patterns: regexes; only source keys matching one (``re.search``) are transferred.
        exclude_patterns: regexes; source keys matching one are not transferred.
        layer_mapping: ``{"source.module": "target.module"}`` renames applied to whole dotted
            prefixes (or exact keys) before matching, e.g. ``{"layer4": "stage4"}``.

    Excluded source keys are listed in ``report.dropped``; target tensors that receive nothing keep
    their values bit for bit (no re-initialization).
    """
    model = _unwrap_model(target_model, "target_model")
    raw, desc = _read_source(source_model, "source_model")
    inc = _compile_patterns(include_patterns, "include_patterns")
    exc = _compile_patterns(exclude_patterns, "exclude_patterns")
    kept: dict[str, Any] = {}
    excluded: dict[str, str] = {}
    for k, v in raw.items():
        if inc and not any(p.search(k) for p in inc):
            if isinstance(v, torch.Tensor):
                excluded[k] = "not transferred: matches no include pattern"
        elif any(p.search(k) for p in exc):
            if isinstance(v, torch.Tensor):
                excluded[k] = "not transferred: matches an exclude pattern"
        else:
            kept[k] = v
    renames: dict[str, str] = {}
    if layer_mapping is not None:
        if not isinstance(layer_mapping, Mapping):
            raise WeightLoadingError("layer_mapping must be a dict", where="layer_mapping",
                                     expected="{'source.prefix': 'target.prefix'}", got=type(layer_mapping).__name__)
        target_keys = model.state_dict().keys()
        for sp, tp in layer_mapping.items():
            if not isinstance(sp, str) or not isinstance(tp, str):
                raise WeightLoadingError("layer_mapping entries must map str to str",
                                         where=f"layer_mapping[{sp!r}]", expected="str -> str", got=(sp, tp))
            hit = [k for k in kept if isinstance(kept[k], torch.Tensor) and (k == sp or k.startswith(sp + "."))]
            if not hit:
                raise WeightLoadingError("layer_mapping entry matches no transferred source key",
                                         where=f"layer_mapping[{sp!r}]", expected="a source module or key",
                                         got=sp, suggestions=closest(sp, {module_of(k) for k in raw}))
            mapped = {k: tp + k[len(sp):] for k in hit}
            if not any(t in target_keys for t in mapped.values()):
                raise WeightLoadingError("layer_mapping entry maps to no key of the target",
                                         where=f"layer_mapping[{sp!r}]", expected="a target module or key",
                                         got=tp, suggestions=closest(tp, {module_of(k) for k in target_keys}))
            for k, t in mapped.items():
                if k in renames:
                    raise WeightLoadingError("two layer_mapping entries rename the same key",
                                             where=f"layer_mapping[{sp!r}]", expected="disjoint prefixes",
                                             got=k)
                renames[k] = t
    return _load(model, kept, desc, strict=strict, ignore_mismatch=True, key_map=None, init_new_layers=None,
                 adapt=adapt, input_conv_mode="auto", dry_run=False, renames=renames, excluded=excluded)


def get_layer_shapes(model: Any) -> dict[str, tuple[int, ...]]:
    """State-dict key -> shape for every tensor (parameters and buffers) of a module or state dict."""
    return {k: tuple(v.shape) for k, v in _as_tensors(model, "model").items()}


def count_matching_params(source: Any, target: Any) -> tuple[int, int, float]:
    """How many of ``source``'s tensors have a same-named, same-shaped tensor in ``target``.

    Returns:
        ``(matching, total, ratio)`` where ``total`` counts the source's tensors (parameters and
        buffers, as in its state dict).
    """
    src = get_layer_shapes(source)
    tgt = get_layer_shapes(target)
    matching = sum(1 for k, s in src.items() if tgt.get(k) == s)
    return matching, len(src), (matching / len(src) if src else 0.0)
