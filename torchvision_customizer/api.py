"""One entry point for "a model from a file": a YAML recipe or a checkpoint written by ``save_model``.

These are the library functions the ``tvc`` commands call (the CLI only parses arguments and
prints results)::

    >>> from torchvision_customizer.api import load
    >>> model = load("examples/digits_resnet_se.yaml")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import RecipeError, TVCError

__all__ = [
    "RECIPE_SUFFIXES",
    "CHECKPOINT_SUFFIXES",
    "ModelSummary",
    "input_shape_of",
    "is_checkpoint",
    "load",
    "preprocess_meta",
    "summarize",
    "training_section",
    "validate",
]

RECIPE_SUFFIXES = (".yaml", ".yml")
CHECKPOINT_SUFFIXES = (".safetensors",)
PREPROCESS_KEY = "preprocess"


def _existing_file(source: str | os.PathLike[str]) -> Path:
    path = Path(source).expanduser()
    if path.is_dir():
        raise RecipeError("expected a file, got a directory", where=str(path),
                          expected="a .yaml recipe or a .safetensors checkpoint", got=str(path))
    if not path.is_file():
        raise RecipeError("file not found", where=str(path), expected="an existing .yaml recipe or "
                          ".safetensors checkpoint", got=str(path))
    if path.suffix.lower() not in RECIPE_SUFFIXES + CHECKPOINT_SUFFIXES:
        raise RecipeError("unsupported file type", where=str(path),
                          expected="one of " + ", ".join(RECIPE_SUFFIXES + CHECKPOINT_SUFFIXES),
                          got=path.suffix or "(no suffix)")
    return path


def is_checkpoint(source: str | os.PathLike[str]) -> bool:
    """True for a ``.safetensors`` checkpoint, False for a YAML recipe (the file must exist)."""
    return _existing_file(source).suffix.lower() in CHECKPOINT_SUFFIXES


def load(source: str | os.PathLike[str], *, num_classes: int | None = None) -> nn.Module:
    """Build the model a YAML recipe describes, or rebuild and load a ``save_model`` checkpoint.

    ``num_classes`` overrides the recipe's head; for a checkpoint it must be left unset (the saved
    head is part of the checkpoint).
    """
    path = _existing_file(source)
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        if num_classes is not None:
            raise RecipeError("num_classes cannot change a saved checkpoint's head", where=str(path),
                              got=num_classes, hint="rebuild from the recipe with --num-classes instead")
        from .weights import load_model

        return load_model(path)
    from .recipe import load_yaml_recipe

    return load_yaml_recipe(path, num_classes=num_classes)


def validate(source: str | os.PathLike[str]) -> nn.Module:
    """Parse and validate a recipe, then test-build it on the meta device (no memory, no weights I/O
    for ``weights: null``). Raises our error (``RecipeValidationError`` lists every problem)."""
    path = _existing_file(source)
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        raise RecipeError("validate takes a recipe, not a checkpoint", where=str(path),
                          expected="a .yaml recipe", got=path.suffix)
    from .recipe import load_yaml_config, load_yaml_recipe

    load_yaml_config(path, validate=True)  # every problem at once, located
    with torch.device("meta"):
        return load_yaml_recipe(path)


def training_section(source: str | os.PathLike[str]) -> dict[str, Any]:
    """The recipe's ``training:`` section (validated), or ``{}``; a checkpoint's saved one if any."""
    path = _existing_file(source)
    if path.suffix.lower() in CHECKPOINT_SUFFIXES:
        return {}
    from .recipe import load_yaml_config

    config = load_yaml_config(path, validate=True)
    return dict(config.get("training") or {})


def input_shape_of(model: nn.Module, default: tuple[int, int, int] = (3, 224, 224)) -> tuple[int, int, int]:
    """The (C, H, W) a model declares (recipe ``input_shape``, hybrid default size), else ``default``."""
    shape = getattr(model, "input_shape", None)
    if callable(shape):
        shape = shape()
    if shape:
        return tuple(int(s) for s in shape)  # type: ignore[return-value]
    return default


@dataclass
class ModelSummary:
    """Numbers a person checks after a build."""

    name: str
    params: int
    trainable: int
    flops: int | None
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...] | None
    patches: list[str] = field(default_factory=list)
    load_report: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def summarize(model: nn.Module, input_shape: tuple[int, ...] | None = None) -> ModelSummary:
    """Parameters, trainable parameters, forward FLOPs at ``input_shape`` and applied patches."""
    from .benchmark import count_flops

    shape = tuple(input_shape) if input_shape else input_shape_of(model)
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    flops = out_shape = None
    if not any(p.is_meta for p in model.parameters()):
        was_training = model.training
        model.eval()
        x = torch.zeros(1, *shape)
        flops = count_flops(model, x)
        with torch.no_grad():
            out = model(x)
        out_shape = tuple(out.shape) if isinstance(out, torch.Tensor) else None
        model.train(was_training)
    mods = getattr(model, "modifications", None) or []
    patches = [str(m) for m in mods]
    report = getattr(model, "load_report", None)
    return ModelSummary(
        name=str(getattr(model, "name", None) or getattr(model, "backbone_name", None) or type(model).__name__),
        params=params, trainable=trainable, flops=flops, input_shape=shape, output_shape=out_shape,
        patches=patches, load_report=None if report is None else _report_line(report))


def _report_line(report: Any) -> str:
    try:
        return (f"{len(report.loaded)} loaded, {len(report.adapted)} adapted, {len(report.missing)} missing, "
                f"{len(report.unexpected)} unexpected, {len(report.shape_mismatched)} shape-mismatched")
    except AttributeError:
        return str(report)


def preprocess_meta(source: str | os.PathLike[str]) -> dict[str, Any]:
    """The preprocessing saved with a checkpoint by ``tvc train`` (size, channels, mean, std, classes)."""
    from .weights.checkpoint import read_checkpoint_metadata

    meta = read_checkpoint_metadata(source)
    raw = meta.get(PREPROCESS_KEY)
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise TVCError("the checkpoint's preprocessing metadata is not valid JSON", where=str(source),
                       got=raw[:80]) from None
    return value if isinstance(value, dict) else {}


def save_pt(model: nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write ``{"state_dict": ..., "metadata": {...}}`` with ``torch.save`` (atomic; loadable with
    ``torch.load(path, weights_only=True)``). Prefer ``save_model`` (safetensors, rebuildable)."""
    import tempfile

    from .weights.checkpoint import describe_architecture

    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    kind, arch = describe_architecture(model)
    payload = {"state_dict": state, "metadata": {"kind": kind, "architecture": json.dumps(arch, default=str)}}
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", dir=final.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, final)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return final


#: class names of the built-in datasets (folder datasets take theirs from the folder names)
_CLASSES = {
    "digits": [str(i) for i in range(10)],
    "mnist": [str(i) for i in range(10)],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
_NORMALIZE = {
    "digits": ((0.5,), (0.5,)),
    "mnist": ((0.1307,), (0.3081,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagefolder": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def _dataset_key(dataset: str) -> tuple[str, str | None]:
    from .errors import TrainingError, closest

    name = str(dataset).strip()
    if name.lower().startswith("imagefolder:"):
        return "imagefolder", name.split(":", 1)[1]
    key = name.lower().replace("-", "").replace("_", "")
    if key in ("digits", "mnist", "cifar10", "cifar100"):
        return key, None
    choices = ["digits", "mnist", "cifar10", "cifar100", "imagefolder:PATH"]
    raise TrainingError(f"unknown dataset {name!r}", where="data", expected="one of " + ", ".join(choices),
                        got=name, suggestions=closest(name, choices))


def preprocessing_for(dataset: str, size: int, channels: int, classes: list[str] | None = None) -> dict[str, Any]:
    """What ``tvc predict`` needs to feed an image like the training data: size, channels, mean, std, classes."""
    key, _ = _dataset_key(dataset)
    mean, std = _NORMALIZE[key]
    if len(mean) != channels:
        mean, std = (sum(mean) / len(mean),) * channels, (sum(std) / len(std),) * channels
    return {"dataset": key, "size": size, "channels": channels, "mean": list(mean), "std": list(std),
            "classes": classes or _CLASSES.get(key)}


def run_training(trainer: Any, dataset: str, *, data_dir: str | os.PathLike[str] = "./data",
                 **fit_kw: Any) -> tuple[Any, dict[str, Any]]:
    """Train on a named dataset at the model's declared input size; returns (metrics, preprocessing)."""
    from .train import data as D

    key, folder = _dataset_key(dataset)
    default = (3, 224, 224) if key == "imagefolder" else (3, 32, 32)
    channels, size, _ = input_shape_of(trainer.model, default)
    kw = {"image_size": size, "channels": channels, **fit_kw}
    classes = None
    if key == "digits":
        metrics = D.fit_digits(trainer, **kw)
    elif key == "imagefolder":
        root = Path(folder or "")
        metrics = D.fit_folder(trainer, root, **kw)
        base = root / "train" if (root / "train").is_dir() else root
        classes = sorted(d.name for d in base.iterdir() if d.is_dir())
    else:
        fn = {"mnist": D.fit_mnist, "cifar10": D.fit_cifar10, "cifar100": D.fit_cifar100}[key]
        metrics = fn(trainer, data_dir=data_dir, **kw)
    return metrics, preprocessing_for(dataset, size, channels, classes)


def load_images(paths: list[Path], meta: dict[str, Any], default_shape: tuple[int, int, int]) -> torch.Tensor:
    """Open, resize and normalize images the way the checkpoint's training data was fed."""
    from PIL import Image, UnidentifiedImageError
    from torchvision.transforms.functional import normalize, pil_to_tensor, resize

    channels = int(meta.get("channels", default_shape[0]))
    size = int(meta.get("size", default_shape[1]))
    mean = meta.get("mean", _NORMALIZE["imagefolder"][0] if channels == 3 else (0.449,))
    std = meta.get("std", _NORMALIZE["imagefolder"][1] if channels == 3 else (0.226,))
    gray_source = meta.get("dataset") in ("digits", "mnist")
    batch = []
    for path in paths:
        try:
            with Image.open(path) as img:
                img = img.convert("L" if gray_source or channels == 1 else "RGB")
                t = pil_to_tensor(img).float().div(255.0)
        except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
            raise TVCError("cannot read the image", where=str(path), expected="a PNG/JPEG file",
                           got=f"{type(exc).__name__}") from None
        if t.shape[0] != channels:
            t = t.expand(channels, -1, -1) if t.shape[0] == 1 else t.mean(0, keepdim=True)
        t = resize(t, [size, size], antialias=True)
        batch.append(normalize(t, list(mean), list(std)))
    return torch.stack(batch)
