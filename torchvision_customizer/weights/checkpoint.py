"""Safe, self-describing checkpoints: one safetensors file with the architecture in its metadata.

:func:`save_model` writes every tensor (made contiguous; aliased tensors cloned) and a description
of the architecture to a temporary file in the target folder, then renames it into place, so a
failed save leaves the previous file intact. :func:`load_model` rebuilds the architecture through
a rebuilder registered for its kind (``"torchvision"`` here; the recipe and hybrid builders
register ``"recipe"`` and ``"hybrid"``), on the meta device, and assigns the file's tensors to it
without allocating random weights first. :func:`build_and_load` does the same for any builder.

Metadata keys (all strings): ``tvc.format_version``, ``tvc.version`` (library version),
``tvc.arch.kind``, ``tvc.arch`` (JSON), optionally ``tvc.weights``, plus the caller's own keys.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._version import __version__
from ..errors import WeightLoadingError
from ..registry import Registry
from ._files import _check_path, load_state_dict_file
from .load import _load, _unwrap_model, partial_load
from .report import LoadReport

__all__ = [
    "FORMAT_VERSION",
    "build_and_load",
    "describe_architecture",
    "load_model",
    "load_state_dict_file",
    "read_checkpoint_metadata",
    "register_rebuilder",
    "save_model",
]

#: Version of the checkpoint layout written by :func:`save_model`.
FORMAT_VERSION = 1
_META_PREFIX = "tvc."

#: kind -> ``fn(arch: dict) -> nn.Module``. Built-in: "torchvision".
REBUILDERS = Registry("rebuilders", kind="checkpoint rebuilder")
#: modules whose import registers the rebuilder of a kind (imported on first need)
_REBUILDER_MODULES = {"recipe": "torchvision_customizer.recipe", "hybrid": "torchvision_customizer.hybrid"}


def register_rebuilder(kind: str, fn: Callable[[dict[str, Any]], nn.Module] | None = None, *,
                       meta_ok: bool = True, force: bool = False) -> Any:
    """Register how to rebuild an architecture of ``kind`` from its ``tvc.arch`` description.

    ``fn(arch)`` gets the decoded JSON dict that :func:`describe_architecture` produced and returns
    the module (weights are loaded afterwards). With ``meta_ok=True`` it is called under
    ``torch.device("meta")``, so no memory is spent on weights that are about to be replaced.
    Usable as a decorator: ``@register_rebuilder("recipe")``.
    """
    def deco(f: Callable[[dict[str, Any]], nn.Module]) -> Callable[[dict[str, Any]], nn.Module]:
        REBUILDERS.register(kind, f, category="rebuilder", force=force, meta_ok=meta_ok)
        return f

    return deco if fn is None else deco(fn)


# ------------------------------------------------------------------ describe
def _torchvision_candidates(model: nn.Module) -> list[str]:
    from torchvision import models

    mod = type(model).__module__
    if not mod.startswith("torchvision.models"):
        return []
    n_params = sum(p.numel() for p in model.parameters())
    heads = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if heads:  # as if the last linear layer had torchvision's 1000 classes
        head = heads[-1]
        n_params += (1000 - head.out_features) * (head.in_features + (head.bias is not None))
    scored = []
    for name in models.list_models():
        if models.get_model_builder(name).__module__ != mod:
            continue
        try:  # the published parameter count (1000 classes) tells which builder to try first
            published = models.get_model_weights(name).DEFAULT.meta.get("num_params", 0)
        except (ValueError, AttributeError, KeyError):
            published = 0
        scored.append((abs(published - n_params) if published else float("inf"), name))
    return [name for _, name in sorted(scored)]


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _build_tv(name: str, kwargs: Mapping[str, Any], *, meta: bool) -> nn.Module:
    from torchvision import models

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctx = torch.device("meta") if meta else contextlib.nullcontext()
        with ctx:
            return models.get_model(name, weights=None, **kwargs)


def _describe_torchvision(model: nn.Module) -> dict[str, Any] | None:
    """``{"builder": name, "kwargs": {"num_classes": n}}`` for an unmodified torchvision model."""
    want = _shapes(model)
    heads = [m for m in model.modules() if isinstance(m, nn.Linear)]
    first: dict[str, Any] = {}
    if heads and heads[-1].out_features != 1000:
        first = {"num_classes": heads[-1].out_features}
    for name in _torchvision_candidates(model):
        tried: list[dict[str, Any]] = []
        kwargs: dict[str, Any] | None = first
        while kwargs is not None and kwargs not in tried and len(tried) < 3:
            tried.append(kwargs)
            try:
                cand = _build_tv(name, kwargs, meta=True)
            except (TypeError, ValueError, RuntimeError, NotImplementedError):
                break
            if type(cand) is not type(model):
                break
            got = _shapes(cand)
            if got == want:
                return {"builder": name, "kwargs": kwargs}
            if got.keys() != want.keys():
                break
            diff = [k for k in want if want[k] != got[k]]
            kwargs = {"num_classes": int(want[diff[0]][0])} if want[diff[0]] else None
    return None


def describe_architecture(model: nn.Module) -> tuple[str, dict[str, Any]]:
    """``(kind, arch)``: what :func:`save_model` records so that :func:`load_model` can rebuild ``model``.

    In order: an explicit ``model._tvc_arch = {"kind": ..., ...}`` attribute; ``model.to_recipe()``
    (kind ``recipe`` unless the model says ``_tvc_arch_kind``), stored as YAML text or a dict; an
    unmodified torchvision model, matched against torchvision's builders (name and ``num_classes``).

    Raises:
        WeightLoadingError: none of these describes the model.
    """
    arch = getattr(model, "_tvc_arch", None)
    if isinstance(arch, Mapping) and isinstance(arch.get("kind"), str):
        payload = {k: v for k, v in arch.items() if k != "kind"}
        return arch["kind"], payload
    to_recipe = getattr(model, "to_recipe", None)
    if callable(to_recipe):
        recipe = to_recipe()
        kind = getattr(model, "_tvc_arch_kind", None) or "recipe"
        if isinstance(recipe, str):
            return kind, {"format": "yaml", "recipe": recipe}
        if callable(getattr(recipe, "to_yaml", None)):
            return kind, {"format": "yaml", "recipe": recipe.to_yaml()}
        if callable(getattr(recipe, "to_dict", None)):
            return kind, {"format": "dict", "recipe": recipe.to_dict()}
        if isinstance(recipe, Mapping):
            return kind, {"format": "dict", "recipe": dict(recipe)}
        raise WeightLoadingError("to_recipe() returned something that cannot be stored",
                                 where=type(model).__name__, expected="YAML text, a dict, or an object with "
                                 "to_yaml()/to_dict()", got=type(recipe).__name__)
    tv = _describe_torchvision(model)
    if tv is not None:
        return "torchvision", tv
    raise WeightLoadingError(
        "cannot describe this model's architecture for a self-describing checkpoint",
        where=type(model).__name__,
        expected="a model built by this library (with to_recipe()) or an unmodified torchvision model",
        got=f"{type(model).__module__}.{type(model).__name__}",
        hint="save its weights only: safetensors.torch.save_file(model.state_dict(), path), and load them "
             "with partial_load(model, path) into a model you build")


# ---------------------------------------------------------------------- save
def _tensors_for_saving(model: nn.Module) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    seen: set[tuple[str, int]] = set()
    for key, t in model.state_dict().items():
        if not isinstance(t, torch.Tensor):
            continue
        if t.is_meta:
            raise WeightLoadingError("cannot save a tensor on the meta device", where=key,
                                     expected="materialized weights", got="meta tensor",
                                     hint="load weights into the model (or call model.to_empty(device='cpu') "
                                          "and initialize it) before saving")
        t = t.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        storage = t.untyped_storage()
        ident = (str(t.device), storage.data_ptr())
        whole = storage.nbytes() == t.numel() * t.element_size() and t.storage_offset() == 0
        if ident in seen or not whole or not t.is_contiguous():
            t = t.contiguous().clone() if t.is_contiguous() else t.contiguous()
        elif t.numel():
            seen.add(ident)
        out[key] = t
    return out


def _metadata(model: nn.Module, metadata: Mapping[str, Any] | None) -> dict[str, str]:
    kind, arch = describe_architecture(model)
    try:
        arch_json = json.dumps(arch, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise WeightLoadingError("the architecture description is not JSON-serializable",
                                 where=type(model).__name__, expected="plain dicts, lists, strings, numbers",
                                 got=str(exc)) from None
    meta = {
        "format": "pt",
        f"{_META_PREFIX}format_version": str(FORMAT_VERSION),
        f"{_META_PREFIX}version": __version__,
        f"{_META_PREFIX}arch.kind": kind,
        f"{_META_PREFIX}arch": arch_json,
    }
    weights = getattr(model, "_tvc_weights", None)
    if weights is not None:
        meta[f"{_META_PREFIX}weights"] = str(weights)
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise WeightLoadingError("checkpoint metadata must map str to str", where=f"metadata[{k!r}]",
                                     expected="str -> str", got=(type(k).__name__, type(v).__name__),
                                     hint="encode other values with json.dumps")
        if k.startswith(_META_PREFIX) or k == "format":
            raise WeightLoadingError("metadata key is reserved", where=f"metadata[{k!r}]",
                                     expected=f"a key not starting with {_META_PREFIX!r}", got=k)
        meta[k] = v
    return meta


def save_model(model: nn.Module, path: str | os.PathLike[str], *,
               metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``model`` to one safetensors file that :func:`load_model` can rebuild, atomically.

    The tensors are saved contiguous (``channels_last`` included) with tied/aliased tensors
    cloned; the metadata holds the format version, the library version and the architecture (see
    :func:`describe_architecture`). The file is written next to ``path`` under a temporary name and
    renamed into place: a failed save leaves any previous file at ``path`` untouched.

    Returns:
        The path written.

    Example:
        >>> save_model(torchvision.models.resnet18(num_classes=10), "r18.safetensors")  # doctest: +SKIP
    """
    from safetensors.torch import save_file

    model = _unwrap_model(model)
    if not isinstance(path, (str, os.PathLike)):
        raise WeightLoadingError("checkpoint path must be a str or os.PathLike", where="save_model",
                                 expected="a path such as 'model.safetensors'", got=type(path).__name__)
    p = Path(path).expanduser()
    if p.is_dir():
        raise WeightLoadingError("checkpoint path is a directory", where=str(p),
                                 expected="a file path such as 'model.safetensors'", got=str(p))
    if not p.parent.is_dir():
        raise WeightLoadingError("the checkpoint's folder does not exist", where=str(p.parent),
                                 expected="an existing folder", got=str(p), hint="create it first")
    meta = _metadata(model, metadata)
    tensors = _tensors_for_saving(model)
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:8]}.tmp")
    done = False
    try:
        save_file(tensors, str(tmp), metadata=meta)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, p)
        done = True
    finally:
        if not done:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return p


# ---------------------------------------------------------------------- load
def read_checkpoint_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of a safetensors file (empty dict when it has none)."""
    from safetensors import SafetensorError, safe_open

    p = _check_path(path, "checkpoint")
    try:
        with safe_open(str(p), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightLoadingError("cannot read the checkpoint (truncated or corrupted, or not safetensors?)",
                                 where=str(p), expected="a complete .safetensors file written by save_model",
                                 got=f"{type(exc).__name__}: {exc}",
                                 hint="save it again; a partial copy cannot be loaded") from None


def _rebuilder(kind: str, where: str) -> tuple[Callable[[dict[str, Any]], nn.Module], bool]:
    if kind not in REBUILDERS and kind in _REBUILDER_MODULES:
        import importlib

        with contextlib.suppress(ImportError):
            importlib.import_module(_REBUILDER_MODULES[kind])
    if kind not in REBUILDERS:
        raise WeightLoadingError(
            f"no rebuilder registered for architecture kind {kind!r}", where=where,
            expected="one of " + (", ".join(REBUILDERS.list()) or "(none)"), got=kind,
            hint="import the package that registers it (register_rebuilder), or build the model yourself "
                 "and use partial_load(model, path)")
    entry = REBUILDERS.entry(kind)
    return entry.obj, bool(entry.extra.get("meta_ok", True))


def _can_assign(model: nn.Module) -> bool:
    """True when every tensor of ``model`` is in its state dict exactly once (no ties, no
    non-persistent buffers), so assigning the file's tensors leaves nothing on the meta device."""
    keys = model.state_dict().keys()
    params = list(model.named_parameters(remove_duplicate=False))
    buffers = list(model.named_buffers(remove_duplicate=False))
    if len({id(p) for _, p in params}) != len(params) or len({id(b) for _, b in buffers}) != len(buffers):
        return False
    return len(params) + len(buffers) == len(keys) and all(n in keys for n, _ in buffers)


def _assign_or_load(make: Callable[[bool], nn.Module], sd: dict[str, Any], desc: str, *, meta_ok: bool,
                    strict: bool, device: Any) -> tuple[nn.Module, LoadReport]:
    if meta_ok:
        model = make(True)
        report = _load(model, sd, desc, strict=strict, ignore_mismatch=True, key_map=None,
                       init_new_layers=None, adapt=False, input_conv_mode="auto", dry_run=True)
        if report.ok and not report.non_tensor and _can_assign(model):
            model.load_state_dict(sd, strict=True, assign=True)
            return model, report
    model = make(False)
    if device is not None and torch.device(device).type != "cpu":
        model = model.to(device)
    report = partial_load(model, sd, strict=strict, adapt=False)
    return model, report


def build_and_load(builder: Callable[..., nn.Module] | str, path: str | os.PathLike[str], *,
                   map_location: Any = "cpu", strict: bool = True, **kwargs: Any) -> nn.Module:
    """Build a model on the meta device and assign it the weights of a file (no random init first).

    ``builder`` is a callable or a torchvision model name; ``kwargs`` go to it. When the file does
    not fit exactly (``strict=False``) or the model has tied weights or non-persistent buffers, the
    model is built normally and filled by :func:`partial_load` instead. The report is attached as
    ``model.load_report``.
    """
    if isinstance(builder, str):
        name = builder

        def builder(**kw: Any) -> nn.Module:
            return _build_tv(name, kw, meta=False)
    if not callable(builder):
        raise WeightLoadingError("builder must be a callable or a torchvision model name", where="build_and_load",
                                 expected="e.g. torchvision.models.resnet50 or 'resnet50'",
                                 got=type(builder).__name__)
    sd = load_state_dict_file(path, map_location=map_location)

    def make(meta: bool) -> nn.Module:
        with torch.device("meta") if meta else contextlib.nullcontext():
            return builder(**kwargs)

    model, report = _assign_or_load(make, sd, str(path), meta_ok=True, strict=strict, device=map_location)
    model.load_report = report
    return model


def load_model(path: str | os.PathLike[str], *, map_location: Any = "cpu", strict: bool = True) -> nn.Module:
    """Rebuild and load a model written by :func:`save_model`; the report is ``model.load_report``.

    Raises:
        WeightLoadingError: the file is missing, truncated or corrupted, was not written by
            :func:`save_model`, needs a newer library, or (``strict=True``) does not fit the rebuilt
            architecture.
    """
    p = _check_path(path, "checkpoint")
    meta = read_checkpoint_metadata(p)
    kind = meta.get(f"{_META_PREFIX}arch.kind")
    if kind is None:
        raise WeightLoadingError("the file has no architecture description", where=str(p),
                                 expected="a checkpoint written by save_model", got=sorted(meta)[:6],
                                 hint="build the model yourself and use partial_load(model, path)")
    version = meta.get(f"{_META_PREFIX}format_version", "")
    if not version.isdigit() or int(version) > FORMAT_VERSION:
        raise WeightLoadingError("checkpoint format version not supported", where=str(p),
                                 expected=f"format version <= {FORMAT_VERSION}", got=version,
                                 hint=f"written by torchvision-customizer {meta.get(_META_PREFIX + 'version')}; "
                                      "upgrade the library")
    try:
        arch = json.loads(meta.get(f"{_META_PREFIX}arch", ""))
    except json.JSONDecodeError as exc:
        raise WeightLoadingError("the architecture description is corrupted", where=str(p),
                                 expected="JSON", got=str(exc)) from None
    fn, meta_ok = _rebuilder(kind, str(p))
    sd = load_state_dict_file(p, map_location=map_location)

    def make(on_meta: bool) -> nn.Module:
        with torch.device("meta") if on_meta else contextlib.nullcontext():
            return fn(dict(arch))

    model, report = _assign_or_load(make, sd, str(p), meta_ok=meta_ok, strict=strict, device=map_location)
    weights = meta.get(f"{_META_PREFIX}weights")
    if weights is not None:
        model._tvc_weights = weights
    model.load_report = report
    return model


@register_rebuilder("torchvision")
def _rebuild_torchvision(arch: dict[str, Any]) -> nn.Module:
    from torchvision import models

    name = arch.get("builder")
    if name not in models.list_models():
        raise WeightLoadingError("unknown torchvision builder in the checkpoint", where="tvc.arch",
                                 expected="a name from torchvision.models.list_models()", got=name,
                                 hint="the file may come from a newer torchvision")
    model = _build_tv(name, arch.get("kwargs") or {}, meta=False)
    model._tvc_arch = {"kind": "torchvision", **arch}
    return model
