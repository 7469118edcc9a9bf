"""Training: ``Trainer``, datasets, metrics, callbacks, checkpoints and ``torchrun`` support.

Example:
    >>> from torchvision_customizer.train import Trainer, digits_loaders
    >>> train, val = digits_loaders(image_size=32)                          # doctest: +SKIP
    >>> metrics = Trainer(model, seed=0).fit(train, val, epochs=5, lr=3e-3)  # doctest: +SKIP
"""

from __future__ import annotations

from .callbacks import (
    HOOKS,
    BestCheckpoint,
    Callback,
    CSVLogger,
    EarlyStopping,
    MissingDependencyError,
    TensorBoardLogger,
)
from .checkpoint import load_checkpoint, save_checkpoint
from .data import (
    DatasetNotFoundError,
    DigitsDataset,
    digits_loaders,
    digits_split,
    fit_cifar10,
    fit_cifar100,
    fit_digits,
    fit_folder,
    fit_mnist,
    infer_input,
    quick_train,
)
from .distributed import convert_sync_batchnorm
from .metrics import TrainingMetrics
from .rng import seed_everything
from .trainer import Trainer, TrainState, evaluate

__all__ = [
    "HOOKS",
    "BestCheckpoint",
    "CSVLogger",
    "Callback",
    "DatasetNotFoundError",
    "DigitsDataset",
    "EarlyStopping",
    "MissingDependencyError",
    "TensorBoardLogger",
    "TrainState",
    "Trainer",
    "TrainingMetrics",
    "convert_sync_batchnorm",
    "digits_loaders",
    "digits_split",
    "evaluate",
    "fit_cifar10",
    "fit_cifar100",
    "fit_digits",
    "fit_folder",
    "fit_mnist",
    "infer_input",
    "load_checkpoint",
    "quick_train",
    "save_checkpoint",
    "seed_everything",
]
