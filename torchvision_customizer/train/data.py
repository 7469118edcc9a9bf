"""Datasets for fine-tuning: scikit-learn's digits (bundled, no download), MNIST, CIFAR, folders.

* :class:`DigitsDataset` - the 1,797 real 8x8 handwritten digits that ship with scikit-learn,
  upscaled (bilinear) to the model's input size, 1 or 3 channels, split into train and held-out
  parts by a fixed, seeded, stratified split (:func:`digits_split`). No network access.
* ``fit_mnist``, ``fit_cifar10``, ``fit_cifar100`` read torchvision's on-disk layout under
  ``data_dir``; they download only with ``download=True``, and a missing dataset is a
  :class:`DatasetNotFoundError` naming the files to place.
* ``fit_folder`` trains on an ``ImageFolder`` tree (``path/<class>/<image>``, or ``path/train`` and
  ``path/val``).

Every ``fit_*`` takes a :class:`~.trainer.Trainer` or a model (then Trainer options such as
``device``, ``amp`` or ``seed`` may be passed too), infers input size and channels from the model
when it can (``input_shape``/``input_size`` attributes, the first convolution's ``in_channels``),
and forwards the remaining keyword arguments to :meth:`Trainer.fit`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from ..errors import TrainingError, closest
from .metrics import TrainingMetrics

__all__ = [
    "DATASETS",
    "DatasetNotFoundError",
    "DigitsDataset",
    "digits_loaders",
    "digits_split",
    "fit_cifar10",
    "fit_cifar100",
    "fit_digits",
    "fit_folder",
    "fit_mnist",
    "infer_input",
    "quick_train",
]

DATASETS = ("digits", "mnist", "cifar10", "cifar100")
_TRAINER_OPTIONS = ("device", "amp", "channels_last", "compile", "seed", "sync_bn", "distributed", "deterministic")
_IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


class DatasetNotFoundError(TrainingError, FileNotFoundError):
    """A dataset is not on disk (and downloading was not asked for, or failed)."""


# -- model introspection ---------------------------------------------------------------------
def infer_input(model: nn.Module) -> tuple[int | None, int | None]:
    """``(channels, image_size)`` the model declares or implies; ``None`` where unknown.

    Reads ``input_shape`` ``(C, H, W)``, ``input_size`` or timm's ``pretrained_cfg["input_size"]``,
    then the first module with an ``in_channels`` attribute.
    """
    channels = size = None
    for attr in ("input_shape", "input_size"):
        shape = getattr(model, attr, None)
        if isinstance(shape, (tuple, list)) and len(shape) == 3 and all(isinstance(v, int) for v in shape):
            channels, size = shape[0], shape[1]
            break
        if isinstance(shape, int):
            size = shape
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    if size is None and isinstance(cfg, dict) and isinstance(cfg.get("input_size"), (tuple, list)):
        channels, size = cfg["input_size"][0], cfg["input_size"][1]
    if channels is None:
        for module in model.modules():
            c = getattr(module, "in_channels", None)
            if isinstance(c, int) and c > 0:
                channels = c
                break
    return channels, size


def _as_trainer(obj: Any, kwargs: dict[str, Any], where: str) -> tuple[Any, dict[str, Any]]:
    from .trainer import Trainer

    options = {k: kwargs.pop(k) for k in _TRAINER_OPTIONS if k in kwargs}
    if isinstance(obj, Trainer):
        if options:
            raise TrainingError("Trainer options given with an existing Trainer", where=where, got=sorted(options),
                                hint="pass them to Trainer(...) instead")
        return obj, kwargs
    if isinstance(obj, nn.Module):
        return Trainer(obj, **options), kwargs
    raise TrainingError("expected a model or a Trainer", where=where, got=type(obj).__name__)


def _size_channels(trainer: Any, image_size: int | None, channels: int | None,
                   default_size: int, default_channels: int) -> tuple[int, int]:
    c, s = infer_input(trainer.model)
    size = image_size or s or default_size
    chans = channels or c or default_channels
    if chans not in (1, 3):
        raise TrainingError("images have 1 or 3 channels", where="channels", got=chans,
                            hint="pass channels=1 or channels=3 (the model's first layer takes this many)")
    return int(size), int(chans)


# -- digits ----------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise TrainingError("the digits dataset needs scikit-learn", where="DigitsDataset",
                            hint="pip install 'torchvision-customizer[train]'") from None
    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32).div_(16.0).unsqueeze(1)  # (1797, 1, 8, 8), [0, 1]
    return images, torch.tensor(data.target, dtype=torch.long)


@functools.lru_cache(maxsize=8)
def digits_split(test_size: float = 0.2, seed: int = 0) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Fixed, seeded, stratified ``(train_indices, test_indices)`` of the 1,797 digits."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_size < 1.0:
        raise TrainingError("test_size must be a fraction", where="digits_split", expected="0 < test_size < 1",
                            got=test_size)
    _, labels = _digits_arrays()
    idx = list(range(len(labels)))
    train, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=labels.numpy())
    return tuple(sorted(train)), tuple(sorted(test))


class DigitsDataset(Dataset):
    """scikit-learn's real 8x8 digits as ``(image [C, S, S], label)`` pairs.

    Args:
        split: ``"train"``, ``"test"`` (alias ``"val"``) or ``"all"``.
        image_size: output side ``S`` (bilinear upscaling from 8).
        channels: 1, or 3 (the gray image repeated).
        test_size: held-out fraction of the stratified split.
        seed: seed of the split (fixed by default, so every run holds out the same images).
        augment: random affine jitter (rotation 10 degrees, shift 10 %, scale 0.9-1.1), drawn
            from torch's global generator.

    Pixels are normalised to mean 0.5, std 0.5 (range [-1, 1]).

    Example:
        >>> ds = DigitsDataset("train", image_size=32)
        >>> ds[0][0].shape, len(ds)
        (torch.Size([3, 32, 32]), 1437)
    """

    num_classes = 10

    def __init__(self, split: str = "train", image_size: int = 32, channels: int = 3, test_size: float = 0.2,
                 seed: int = 0, augment: bool = False) -> None:
        splits = ("train", "test", "val", "all")
        if split not in splits:
            raise TrainingError(f"unknown split {split!r}", where="DigitsDataset(split=...)",
                                expected="one of " + ", ".join(splits), suggestions=closest(split, splits))
        if not isinstance(image_size, int) or image_size < 8:
            raise TrainingError("image_size must be an integer >= 8", where="DigitsDataset(image_size=...)",
                                got=image_size)
        if channels not in (1, 3):
            raise TrainingError("channels must be 1 or 3", where="DigitsDataset(channels=...)", got=channels)
        images, labels = _digits_arrays()
        if split == "all":
            index = torch.arange(len(labels))
        else:
            train, test = digits_split(test_size, seed)
            index = torch.tensor(train if split == "train" else test)
        self.images, self.targets = images[index], labels[index]
        self.image_size, self.channels = image_size, channels
        self._transform = None
        if augment:
            from torchvision.transforms import v2

            self._transform = v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))
        # upscale once when it is cheap to keep in memory; otherwise per item
        self._cache = self._resize(self.images) if image_size <= 64 else None

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = self._cache[i] if self._cache is not None else self._resize(self.images[i : i + 1])[0]
        if self._transform is not None:
            img = self._transform(img)
        img = (img - 0.5) / 0.5
        if self.channels == 3:
            img = img.expand(3, -1, -1)
        return img, self.targets[i]


def digits_loaders(image_size: int = 32, channels: int = 3, batch_size: int = 64, test_size: float = 0.2,
                   seed: int = 0, augment: bool = False, num_workers: int = 0) -> tuple[DataLoader, DataLoader]:
    """``(train_loader, test_loader)`` over the fixed stratified digits split (train shuffled)."""
    train = DigitsDataset("train", image_size, channels, test_size, seed, augment)
    test = DigitsDataset("test", image_size, channels, test_size, seed)
    return (DataLoader(train, batch_size=batch_size, shuffle=True, num_workers=num_workers),
            DataLoader(test, batch_size=max(batch_size, 256), shuffle=False, num_workers=num_workers))


def fit_digits(model: Any, epochs: int = 10, batch_size: int = 64, lr: float = 1e-3, image_size: int | None = None,
               channels: int | None = None, augment: bool = True, test_size: float = 0.2, split_seed: int = 0,
               num_workers: int = 0, **kwargs: Any) -> TrainingMetrics:
    """Fine-tune ``model`` (or a Trainer) on the digits; validates on the held-out split.

    Default input: the model's declared size, else 32; the model's input channels, else 3.
    """
    trainer, fit_kw = _as_trainer(model, dict(kwargs), "fit_digits")
    size, chans = _size_channels(trainer, image_size, channels, 32, 3)
    train, val = digits_loaders(size, chans, batch_size, test_size, split_seed, augment, num_workers)
    return trainer.fit(train, val, epochs=epochs, lr=lr, **fit_kw)


# -- torchvision datasets on disk ----------------------------------------------------------------
_LAYOUTS = {
    "mnist": "{d}/MNIST/raw/{{train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
             "t10k-labels-idx1-ubyte}}",
    "cifar10": "{d}/cifar-10-batches-py/{{data_batch_1 ... data_batch_5, test_batch, batches.meta}}",
    "cifar100": "{d}/cifar-100-python/{{train, test, meta}}",
}


def _open_torchvision(name: str, data_dir: str | os.PathLike[str], download: bool, transforms: Sequence[Any]) \
        -> list[Dataset]:
    from torchvision import datasets

    cls = {"mnist": datasets.MNIST, "cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
    layout = _LAYOUTS[name].format(d=Path(data_dir))
    out = []
    for train, tf in zip((True, False), transforms):
        try:
            out.append(cls(root=str(data_dir), train=train, download=download, transform=tf))
        except (RuntimeError, OSError) as err:  # torchvision: "Dataset not found"; offline: URLError
            action = "could not be downloaded" if download else "was not found"
            raise DatasetNotFoundError(
                f"{cls.__name__} {action}", where=str(data_dir), expected=f"the files {layout}",
                got=str(err).splitlines()[0][:200],
                hint="place the files there (torchvision's layout), or pass download=True when online") from err
    return out


def _fit_torchvision(name: str, model: Any, *, data_dir: Any, download: bool, epochs: int, batch_size: int,
                     lr: float, image_size: int | None, channels: int | None, augment: bool, num_workers: int,
                     kwargs: dict[str, Any]) -> TrainingMetrics:
    from torchvision.transforms import v2

    trainer, fit_kw = _as_trainer(model, dict(kwargs), f"fit_{name}")
    native, native_c = (28, 1) if name == "mnist" else (32, 3)
    size, chans = _size_channels(trainer, image_size, channels, 32 if name == "mnist" else native, native_c)
    if name == "mnist":
        mean, std = (0.1307,) * chans, (0.3081,) * chans
        aug = [v2.RandomAffine(degrees=10, translate=(0.1, 0.1))]
    else:
        mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
        if name == "cifar100":
            mean, std = (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
        if chans == 1:
            mean, std = (sum(mean) / 3,), (sum(std) / 3,)
        aug = [v2.RandomCrop(native, padding=4), v2.RandomHorizontalFlip()]

    def pipeline(train: bool) -> Any:
        steps: list[Any] = [v2.ToImage()]
        if train and augment:
            steps += aug
        if size != native:
            steps.append(v2.Resize((size, size), antialias=True))
        if chans != native_c:
            steps.append(v2.Grayscale(num_output_channels=chans) if chans == 1 else v2.RGB())
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
        return v2.Compose(steps)

    train_ds, test_ds = _open_torchvision(name, data_dir, download, (pipeline(True), pipeline(False)))
    train = DataLoader(train_ds, batch_size=batch_size, shuffle=True, num_workers=num_workers)
    val = DataLoader(test_ds, batch_size=max(batch_size, 256), shuffle=False, num_workers=num_workers)
    return trainer.fit(train, val, epochs=epochs, lr=lr, **fit_kw)


def fit_mnist(model: Any, epochs: int = 5, batch_size: int = 64, lr: float = 1e-3, data_dir: Any = "./data",
              download: bool = False, image_size: int | None = None, channels: int | None = None,
              augment: bool = True, num_workers: int = 0, **kwargs: Any) -> TrainingMetrics:
    """Train on MNIST from ``data_dir`` (torchvision layout); resized to the model's size, else 32."""
    return _fit_torchvision("mnist", model, data_dir=data_dir, download=download, epochs=epochs,
                            batch_size=batch_size, lr=lr, image_size=image_size, channels=channels, augment=augment,
                            num_workers=num_workers, kwargs=kwargs)


def fit_cifar10(model: Any, epochs: int = 10, batch_size: int = 128, lr: float = 1e-3, data_dir: Any = "./data",
                download: bool = False, image_size: int | None = None, channels: int | None = None,
                augment: bool = True, num_workers: int = 0, **kwargs: Any) -> TrainingMetrics:
    """Train on CIFAR-10 from ``data_dir`` (crop + flip augmentation)."""
    return _fit_torchvision("cifar10", model, data_dir=data_dir, download=download, epochs=epochs,
                            batch_size=batch_size, lr=lr, image_size=image_size, channels=channels, augment=augment,
                            num_workers=num_workers, kwargs=kwargs)


def fit_cifar100(model: Any, epochs: int = 20, batch_size: int = 128, lr: float = 1e-3, data_dir: Any = "./data",
                 download: bool = False, image_size: int | None = None, channels: int | None = None,
                 augment: bool = True, num_workers: int = 0, **kwargs: Any) -> TrainingMetrics:
    """Train on CIFAR-100 from ``data_dir`` (crop + flip augmentation)."""
    return _fit_torchvision("cifar100", model, data_dir=data_dir, download=download, epochs=epochs,
                            batch_size=batch_size, lr=lr, image_size=image_size, channels=channels, augment=augment,
                            num_workers=num_workers, kwargs=kwargs)


# -- image folders ---------------------------------------------------------------------------
def fit_folder(model: Any, path: str | os.PathLike[str], epochs: int = 10, batch_size: int = 32, lr: float = 1e-3,
               val_path: str | os.PathLike[str] | None = None, val_split: float = 0.2, split_seed: int = 0,
               image_size: int | None = None, channels: int | None = None, augment: bool = True,
               num_workers: int = 0, **kwargs: Any) -> TrainingMetrics:
    """Train on an ``ImageFolder`` tree.

    Validation: ``val_path`` if given, else ``path/val`` when ``path/train`` and ``path/val`` exist,
    else a seeded stratified ``val_split`` of ``path`` (0 for none). Train transforms: random resized
    crop (scale 0.7-1) and horizontal flip; validation: resize to 1.14x and center crop; ImageNet
    normalisation. Default size: the model's, else 224.
    """
    from torchvision import datasets
    from torchvision.transforms import v2

    trainer, fit_kw = _as_trainer(model, dict(kwargs), "fit_folder")
    size, chans = _size_channels(trainer, image_size, channels, 224, 3)
    root = Path(path)
    if not root.is_dir():
        raise DatasetNotFoundError("image folder not found", where=str(root),
                                   expected="a directory path/<class>/<image> (or path/train and path/val)")
    if val_path is None and (root / "train").is_dir() and (root / "val").is_dir():
        root, val_path = root / "train", root / "val"
    mean, std = _IMAGENET if chans == 3 else ((0.449,), (0.226,))
    gray = [v2.Grayscale(num_output_channels=1)] if chans == 1 else []
    train_tf = v2.Compose([v2.ToImage(), *gray,
                           *([v2.RandomResizedCrop(size, scale=(0.7, 1.0), antialias=True), v2.RandomHorizontalFlip()]
                             if augment else [v2.Resize((size, size), antialias=True)]),
                           v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])
    val_tf = v2.Compose([v2.ToImage(), *gray, v2.Resize(round(size / 0.875), antialias=True),
                         v2.CenterCrop(size), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])

    def open_folder(p: Path, tf: Any) -> Any:
        try:
            return datasets.ImageFolder(str(p), transform=tf)
        except FileNotFoundError as err:
            raise DatasetNotFoundError("no images found", where=str(p),
                                       expected="class sub-folders holding images", got=str(err)[:200]) from None

    train_ds: Dataset = open_folder(root, train_tf)
    val_ds: Dataset | None = None
    if val_path is not None:
        val_ds = open_folder(Path(val_path), val_tf)
        if val_ds.classes != train_ds.classes:  # type: ignore[attr-defined]
            raise TrainingError("train and val folders have different classes", where=str(val_path),
                                expected=train_ds.classes, got=val_ds.classes)  # type: ignore[attr-defined]
    elif val_split:
        from sklearn.model_selection import train_test_split

        targets = train_ds.targets  # type: ignore[attr-defined]
        idx = list(range(len(targets)))
        tr, va = train_test_split(idx, test_size=val_split, random_state=split_seed, stratify=targets)
        val_ds = Subset(open_folder(root, val_tf), sorted(va))
        train_ds = Subset(train_ds, sorted(tr))
    train = DataLoader(train_ds, batch_size=batch_size, shuffle=True, num_workers=num_workers)
    val = None if val_ds is None else DataLoader(val_ds, batch_size=batch_size, shuffle=False,
                                                 num_workers=num_workers)
    return trainer.fit(train, val, epochs=epochs, lr=lr, **fit_kw)


def quick_train(model: nn.Module, dataset: str | os.PathLike[str] = "digits", epochs: int = 5, lr: float = 1e-3,
                batch_size: int | None = None, device: Any = "auto", verbose: bool = True,
                data_dir: Any = "./data", download: bool = False, **kwargs: Any) -> TrainingMetrics:
    """Train ``model`` on a named dataset (``digits``, ``mnist``, ``cifar10``, ``cifar100``) or a folder.

    The 2.x default was CIFAR-10 with a forced download; here it is the bundled digits.
    """
    kwargs = {"device": device, "progress": verbose, **kwargs}
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    name = str(dataset)
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key == "digits":
        return fit_digits(model, epochs=epochs, lr=lr, **kwargs)
    if key in ("mnist", "cifar10", "cifar100"):
        fn = {"mnist": fit_mnist, "cifar10": fit_cifar10, "cifar100": fit_cifar100}[key]
        return fn(model, epochs=epochs, lr=lr, data_dir=data_dir, download=download, **kwargs)
    if Path(name).is_dir():
        return fit_folder(model, name, epochs=epochs, lr=lr, **kwargs)
    raise TrainingError(f"unknown dataset {name!r}", where="quick_train(dataset=...)",
                        expected="'digits', 'mnist', 'cifar10', 'cifar100' or an image-folder path",
                        suggestions=closest(name, DATASETS))
