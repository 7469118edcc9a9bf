"""Where weights come from: ``None``, ``"DEFAULT"``, a tag, an enum, a local file or a state dict.

torchvision weights are read from torchvision's own cache,
``$TORCH_HOME/hub/checkpoints/<basename of the enum's url>`` (``torch.hub.get_dir()``), so a user
online gets torchvision's usual download and a user offline gets an error naming the file to place
there, never a raw ``URLError``. Local files are read by
:func:`~torchvision_customizer.weights.load_state_dict_file` (``weights_only=True``).

Example:
    >>> rw = resolve_weights("resnet50", "IMAGENET1K_V2")
    >>> rw.kind, rw.file_name
    ('torchvision', 'resnet50-11ad3fa6.pth')
    >>> sd = rw.state_dict()  # doctest: +SKIP
"""

from __future__ import annotations

import http.client
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from ..errors import UnknownComponentError, WeightLoadingError, closest
from ._files import _check_path, load_state_dict_file, unwrap_checkpoint

__all__ = ["ResolvedWeights", "resolve_weights", "torchvision_cache_path", "weights_meta", "weights_transforms"]

_ENUM_NAME = re.compile(r"^(?P<cls>[A-Za-z_]\w*_Weights)\.(?P<tag>\w+)$")
_FILE_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".tar")
# torchvision checkpoints that predate a renaming of their keys (torchvision fixes them in the builder)
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def torchvision_cache_path(enum: Any) -> Path:
    """Where torchvision keeps (or would download) the file of a weights enum: respects ``$TORCH_HOME``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(enum.url).path)


@dataclass(frozen=True)
class ResolvedWeights:
    """Weights named by :func:`resolve_weights`, not yet read.

    Attributes:
        kind: ``"none"``, ``"torchvision"``, ``"file"`` or ``"state_dict"``.
        model_name: the torchvision model name asked for.
        enum: the torchvision ``WeightsEnum`` member (``kind == "torchvision"``).
        path: the file (the cache location for torchvision weights, present or not).
        file_name: the file's base name.
    """

    kind: str
    model_name: str
    enum: Any = None
    path: Path | None = None
    file_name: str | None = None
    _state: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        """A short description: ``ResNet50_Weights.IMAGENET1K_V2``, a path, ``state dict`` or ``none``."""
        if self.kind == "torchvision":
            return f"{type(self.enum).__name__}.{self.enum.name}"
        if self.kind == "file":
            return str(self.path)
        return "state dict" if self.kind == "state_dict" else "none"

    def state_dict(self) -> dict[str, Any] | None:
        """Read the weights (``None`` for ``kind == "none"``).

        Raises:
            WeightLoadingError: the file is missing, unreadable or unsafe; or torchvision weights
                are neither cached nor downloadable (the message names the file and where to put it).
        """
        if self.kind == "none":
            return None
        if self.kind == "state_dict":
            return dict(unwrap_checkpoint(self._state or {}))
        if self.kind == "file":
            return load_state_dict_file(self.path)  # type: ignore[arg-type]
        return _fix_torchvision_keys(self.model_name, _torchvision_state_dict(self.enum))

    def transforms(self) -> Any:
        """The preprocessing transforms of torchvision weights (``enum.transforms()``)."""
        return self._require_enum("transforms").transforms()

    @property
    def meta(self) -> dict[str, Any]:
        """torchvision's metadata (``categories``, ``num_params``, metrics, ...) plus name, url and file."""
        enum = self._require_enum("meta")
        out = dict(enum.meta)
        out.update(name=self.name, tag=enum.name, url=enum.url, file_name=self.file_name,
                   cache_path=str(self.path))
        return out

    def _require_enum(self, what: str) -> Any:
        if self.kind != "torchvision":
            raise WeightLoadingError(
                f"weights {what} are only known for torchvision weights", where=f"{self.model_name}",
                expected="weights given as 'DEFAULT', a tag or a WeightsEnum", got=self.name,
                hint=f"pass e.g. resolve_weights({self.model_name!r}, 'DEFAULT') to read its {what}")
        return self.enum


def _torchvision_state_dict(enum: Any) -> dict[str, Any]:
    path = torchvision_cache_path(enum)
    if path.is_file():
        return load_state_dict_file(path)
    try:
        sd = enum.get_state_dict(progress=False, check_hash=True, weights_only=True)
    except (OSError, http.client.HTTPException) as exc:  # URLError is an OSError
        raise WeightLoadingError(
            f"pretrained weights {type(enum).__name__}.{enum.name} are not in the torch hub cache "
            "and could not be downloaded",
            where=str(path), expected=f"the file {path.name} in {path.parent}",
            got=f"{type(exc).__name__}: {exc}",
            hint=f"download {enum.url} on a machine with internet and place it at {path} "
                 "(or point $TORCH_HOME at a folder holding hub/checkpoints/" + path.name
                 + "), pass a local weights file, or use weights=None") from None
    except RuntimeError as exc:  # hash mismatch of a fresh download
        raise WeightLoadingError("downloaded weights failed torchvision's integrity check", where=str(path),
                                 expected=f"the file published at {enum.url}", got=str(exc),
                                 hint="delete the partial file and try again") from None
    return dict(sd)


def _fix_torchvision_keys(model_name: str, sd: dict[str, Any]) -> dict[str, Any]:
    """Rename keys of torchvision files that torchvision's builders rename on load (DenseNet)."""
    if not model_name.startswith("densenet"):
        return sd
    out: dict[str, Any] = {}
    for k, v in sd.items():
        m = _DENSENET_OLD_KEY.match(k)
        out[m.group(1) + m.group(2) if m else k] = v
    return out


def _enum_class(model_name: str) -> Any:
    from torchvision import models

    if not isinstance(model_name, str):
        raise WeightLoadingError("model_name must be a string", where="resolve_weights",
                                 expected="a torchvision model name such as 'resnet50'",
                                 got=type(model_name).__name__)
    names = models.list_models()
    if model_name not in names:
        raise UnknownComponentError(f"unknown torchvision model {model_name!r}", where="torchvision.models",
                                    expected="a name from torchvision.models.list_models()",
                                    suggestions=closest(model_name, names))
    return models.get_model_weights(model_name)


def _tag_error(model_name: str, enum_cls: Any, tag: str) -> UnknownComponentError:
    tags = ["DEFAULT", *[m.name for m in enum_cls]]
    return UnknownComponentError(
        f"unknown weights {tag!r} for {model_name!r}", where=enum_cls.__name__,
        expected="one of " + ", ".join(tags), suggestions=closest(tag, tags),
        hint="or a local .safetensors/.pth path, or weights=None")


def _from_enum(model_name: str, member: Any) -> ResolvedWeights:
    path = torchvision_cache_path(member)
    return ResolvedWeights("torchvision", model_name, enum=member, path=path, file_name=path.name)


def _looks_like_path(text: str) -> bool:
    return (os.sep in text or "/" in text or text.lower().endswith(_FILE_SUFFIXES) or text.startswith("~")
            or os.path.exists(text))


def resolve_weights(model_name: str, weights: Any) -> ResolvedWeights:
    """Name the weights for a torchvision model without reading them.

    Args:
        model_name: a torchvision model name (``"resnet50"``); only looked up when the weights are
            torchvision's.
        weights: ``None``; ``"DEFAULT"``; a tag (``"IMAGENET1K_V2"``, case-insensitive); a full enum
            name (``"ResNet50_Weights.IMAGENET1K_V2"``); a torchvision ``WeightsEnum`` member; a local
            path (str or ``Path``); or a state dict.

    Returns:
        A :class:`ResolvedWeights`; call ``.state_dict()`` to read it.

    Raises:
        UnknownComponentError: an unknown model name or tag (with the valid tags).
        WeightLoadingError: weights for another model, a missing file, a directory, a wrong type.
    """
    if weights is None:
        return ResolvedWeights("none", model_name)
    if isinstance(weights, Mapping):
        return ResolvedWeights("state_dict", model_name, _state=weights)
    if isinstance(weights, os.PathLike):
        p = _check_path(weights)
        return ResolvedWeights("file", model_name, path=p, file_name=p.name)
    from torchvision.models import WeightsEnum

    if isinstance(weights, WeightsEnum):
        enum_cls = _enum_class(model_name)
        if type(weights) is not enum_cls:
            raise WeightLoadingError(f"weights {type(weights).__name__}.{weights.name} are not for {model_name!r}",
                                     where="resolve_weights", expected=f"a member of {enum_cls.__name__}",
                                     got=f"{type(weights).__name__}.{weights.name}")
        return _from_enum(model_name, weights)
    if isinstance(weights, bool):
        raise WeightLoadingError("weights=True/False is not a weights name", where="weights",
                                 expected="None, 'DEFAULT', a tag, a WeightsEnum, a path or a state dict",
                                 got=weights, hint="use weights='DEFAULT' for pretrained, None for random init")
    if not isinstance(weights, str):
        raise WeightLoadingError("unsupported weights value", where="weights",
                                 expected="None, 'DEFAULT', a tag, a WeightsEnum, a path or a state dict",
                                 got=type(weights).__name__)
    text = weights.strip()
    m = _ENUM_NAME.match(text)
    if m and not text.lower().endswith(_FILE_SUFFIXES):
        enum_cls = _enum_class(model_name)
        if m.group("cls") != enum_cls.__name__:
            raise WeightLoadingError(f"weights {text!r} are not for {model_name!r}", where="resolve_weights",
                                     expected=f"{enum_cls.__name__}.<tag>", got=text,
                                     hint="tags: " + ", ".join(e.name for e in enum_cls))
        return _from_enum(model_name, _member(model_name, enum_cls, m.group("tag")))
    if _looks_like_path(text):
        p = _check_path(text)
        return ResolvedWeights("file", model_name, path=p, file_name=p.name)
    enum_cls = _enum_class(model_name)
    return _from_enum(model_name, _member(model_name, enum_cls, text))


def _member(model_name: str, enum_cls: Any, tag: str) -> Any:
    if tag.upper() == "DEFAULT":
        return enum_cls.DEFAULT
    by_name = {e.name: e for e in enum_cls}
    member = by_name.get(tag) or by_name.get(tag.upper())
    if member is None:
        raise _tag_error(model_name, enum_cls, tag) from None
    return member


def weights_transforms(model_name: str, weights: Any = "DEFAULT") -> Any:
    """The preprocessing transforms of torchvision weights (resize, crop, normalize)."""
    return resolve_weights(model_name, weights).transforms()


def weights_meta(model_name: str, weights: Any = "DEFAULT") -> dict[str, Any]:
    """torchvision's metadata for weights: ``categories``, ``num_params``, metrics, plus name/url/file."""
    return resolve_weights(model_name, weights).meta
