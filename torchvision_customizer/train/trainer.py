"""``Trainer``: fine-tune any ``nn.Module`` classifier - resumable, reproducible, multi-process.

Example:
    >>> from torchvision_customizer.train import Trainer, digits_loaders
    >>> train, val = digits_loaders(image_size=32, batch_size=64)          # doctest: +SKIP
    >>> metrics = Trainer(model, seed=0).fit(train, val, epochs=5, lr=3e-3)  # doctest: +SKIP
    >>> print(metrics.summary())                                           # doctest: +SKIP

What the 2.x trainer got wrong, and what this one does instead:

* the optimizer is built inside ``fit`` after lazy modules are materialised, from trainable
  parameters only (or the model's own ``param_groups``), so heads train and frozen backbones work;
* bad input (unknown optimizer or scheduler names, ``epochs < 1``, nothing trainable, a loader
  yielding wrong shapes or labels) is a :class:`~torchvision_customizer.errors.TrainingError`
  before the first optimizer step;
* checkpoints, resume, seeding, AMP, ``channels_last``, ``torch.compile``, gradient clipping and
  accumulation, callbacks and ``torchrun`` are built in.

Checkpoints and resume
----------------------
With ``checkpoint_dir`` set, ``fit`` writes ``<checkpoint_dir>/last.safetensors`` atomically at the
end of every epoch, on ``KeyboardInterrupt`` (at the last finished optimizer step), and every
``checkpoint_every_n_steps`` optimizer steps when that is set. It holds the model, optimizer,
scheduler and grad-scaler states, the metrics so far, the position (epoch, batches consumed,
global step), the partial epoch sums and every process's RNG states - at the start of the epoch
and at the step. ``resume=True`` (or a checkpoint path) continues from it; a missing checkpoint
starts from scratch and says so.

The file is safetensors: the tensors in its body, every other value as JSON in its header (see
:mod:`.checkpoint`); loading it executes no code. Tensors are saved contiguous, so a
``channels_last`` model's checkpoint loads into a plain one.

A hard kill (SIGKILL, the OOM killer, a preempted node) cannot be caught, so only checkpoints
already on disk survive it. With epoch checkpoints alone, a resumed run restarts the interrupted
epoch from its beginning. To resume *inside* an epoch, set ``checkpoint_every_n_steps=N``: the
checkpoint also records the batches consumed in the epoch; the resumed run restores the
epoch-start RNG state, re-creates the loader's iterator (so the sampler draws the same
permutation), loads and discards the consumed batches (data loading only: no forward pass),
restores the step's RNG state and the epoch's partial loss/accuracy sums, and runs only the
remaining steps. With ``seed`` set, ``deterministic=True`` and ``num_workers=0`` (or workers whose
randomness comes only from the loader's base seed) the final weights and the metrics are bitwise
equal to an uninterrupted run. Resuming requires the same epochs, batches per epoch, accumulation,
world size, optimizer and scheduler names; anything else is an error, not a silent restart. Under
``torchrun`` each process's RNG state is stored (gathered to rank 0); the ``KeyboardInterrupt``
checkpoint, written without collectives, holds rank 0's only.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from ..errors import TrainingError, closest
from . import distributed as D
from .callbacks import check_callbacks
from .checkpoint import load_checkpoint, save_checkpoint
from .metrics import TrainingMetrics
from .optim import build_optimizer, build_scheduler, trainable_param_groups
from .rng import get_rng_state, seed_everything, set_rng_state

__all__ = ["TrainState", "Trainer", "evaluate"]

CHECKPOINT_NAME = "last.safetensors"
_AMP = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
        "half": torch.float16}


@dataclass
class TrainState:
    """Where a ``fit`` call stands (read it from callbacks).

    Attributes:
        epoch: current epoch, 1-based (0 before the first).
        step: global optimizer steps done (restored on resume).
        batch: batches consumed in the current epoch.
        resumed_from_step: global step read from a checkpoint, else ``None``.
        steps_run: optimizer steps this ``fit`` call ran.
        samples_seen: training samples this process has fed to the model (restored on resume).
    """

    epoch: int = 0
    step: int = 0
    batch: int = 0
    resumed_from_step: int | None = None
    steps_run: int = 0
    samples_seen: int = 0


def _resolve_device(device: Any, ctx: D.DistContext) -> torch.device:
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", ctx.local_rank if ctx.enabled else torch.cuda.current_device())
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise TrainingError("unknown device", where="Trainer(device=...)",
                            expected="'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device", got=device) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError("CUDA was asked for but is not available", where="Trainer(device=...)", got=str(dev),
                            hint="use device='cpu' or 'auto'")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", ctx.local_rank if ctx.enabled else torch.cuda.current_device())
    return dev


def _resolve_amp(amp: Any, device: torch.device) -> torch.dtype | None:
    if amp is None or amp is False:
        return None
    if amp is True:
        return torch.float16 if device.type == "cuda" else torch.bfloat16
    if isinstance(amp, torch.dtype):
        dtype = amp
    elif isinstance(amp, str) and amp.strip().lower() in _AMP:
        dtype = _AMP[amp.strip().lower()]
    else:
        raise TrainingError("unknown mixed-precision mode", where="Trainer(amp=...)",
                            expected="None, True, 'bf16' or 'fp16'", got=amp,
                            suggestions=closest(str(amp), list(_AMP)))
    if dtype not in (torch.bfloat16, torch.float16):
        raise TrainingError("unknown mixed-precision dtype", where="Trainer(amp=...)",
                            expected="torch.bfloat16 or torch.float16", got=str(dtype))
    if dtype == torch.float16 and device.type != "cuda":
        raise TrainingError("fp16 mixed precision needs CUDA", where="Trainer(amp=...)", got=f"fp16 on {device}",
                            hint="use amp='bf16' on the CPU")
    return dtype


def _resolve_compile(compile: Any) -> dict[str, Any] | None:
    if compile is None or compile is False:
        return None
    if compile is True:
        return {}
    if isinstance(compile, str):
        return {"backend": compile}
    if isinstance(compile, dict):
        return dict(compile)
    raise TrainingError("compile must be a bool, a backend name or torch.compile keyword arguments",
                        where="Trainer(compile=...)", got=compile)


def _split_batch(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    return batch, None


def _check_inputs(x: Any, y: Any, where: str, *, need_targets: bool = True) -> None:
    if not isinstance(x, torch.Tensor):
        raise TrainingError("the loader must yield (inputs, targets) tensor pairs", where=where,
                            expected="a tuple (inputs: Tensor[N, C, H, W], targets: Tensor[N])",
                            got=type(x).__name__)
    if x.ndim < 2 or not x.is_floating_point():
        raise TrainingError("inputs must be a floating-point batch", where=where,
                            expected="a float tensor [N, C, H, W]", got=f"{x.dtype} tensor of shape {tuple(x.shape)}")
    if not need_targets:
        return
    if not isinstance(y, torch.Tensor):
        raise TrainingError("the loader must yield (inputs, targets) tensor pairs", where=where,
                            expected="targets: a Tensor[N] of class indices", got=type(y).__name__)
    if y.shape[:1] != x.shape[:1]:
        raise TrainingError("inputs and targets disagree on the batch size", where=where,
                            expected=f"targets of length {x.shape[0]}", got=tuple(y.shape))
    if not ((y.ndim == 1 and not y.is_floating_point()) or (y.ndim == 2 and y.is_floating_point())):
        raise TrainingError("targets must be class indices or class probabilities", where=where,
                            expected="an integer Tensor[N] or a float Tensor[N, classes]",
                            got=f"{y.dtype} tensor of shape {tuple(y.shape)}")


def _check_outputs(out: Any, x: torch.Tensor, y: torch.Tensor | None, where: str) -> None:
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != x.shape[0]:
        got = f"shape {tuple(out.shape)}" if isinstance(out, torch.Tensor) else type(out).__name__
        raise TrainingError("the model must return class logits", where=where,
                            expected=f"a Tensor[{x.shape[0]}, classes] for inputs of shape {tuple(x.shape)}", got=got,
                            hint="end the model with a classification head (e.g. a flatten + linear layer)")
    if y is None:
        return
    classes = out.shape[1]
    if y.ndim == 2 and y.shape[1] != classes:
        raise TrainingError("target probabilities and logits disagree on the number of classes", where=where,
                            expected=f"targets of shape [N, {classes}]", got=tuple(y.shape))
    if y.ndim == 1 and y.numel() and (int(y.min()) < 0 or int(y.max()) >= classes):
        raise TrainingError("a target class is out of range for the model's head", where=where,
                            expected=f"labels in [0, {classes - 1}] ({classes} logits)",
                            got=f"labels in [{int(y.min())}, {int(y.max())}]",
                            hint="set the head's num_classes to the dataset's number of classes")


def _loader_generators(loader: Any) -> list[torch.Generator]:
    gens: list[torch.Generator] = []
    for obj in (loader, getattr(loader, "sampler", None), getattr(loader, "batch_sampler", None)):
        gen = getattr(obj, "generator", None)
        if isinstance(gen, torch.Generator) and all(gen is not g for g in gens):
            gens.append(gen)
    return gens


class Trainer:
    """Train, evaluate and predict with a classification model.

    Args:
        model: any ``nn.Module`` mapping a batch ``[N, C, H, W]`` to logits ``[N, classes]``.
        device: ``"auto"`` (CUDA when available, ``cuda:LOCAL_RANK`` under torchrun), ``"cpu"``,
            ``"cuda"``, ``"cuda:N"`` or a ``torch.device``.
        amp: mixed precision: ``None`` (off), ``"bf16"`` (CPU or CUDA autocast), ``"fp16"`` (CUDA
            autocast with a ``GradScaler``) or ``True`` (fp16 on CUDA, bf16 on CPU).
        channels_last: store weights and inputs in ``torch.channels_last``.
        compile: ``torch.compile`` the model: ``True``, a backend name (``"eager"``,
            ``"inductor"``, ...) or a dict of ``torch.compile`` keyword arguments.
        seed: seed Python, numpy and torch at the start of every ``fit`` (and the distributed
            sampler's shuffling).
        sync_bn: convert BatchNorm to SyncBatchNorm (CUDA only; needs torchrun to sync).
        distributed: ``"auto"`` (use torch.distributed when ``WORLD_SIZE > 1``), ``True`` or ``False``.
        deterministic: ``torch.use_deterministic_algorithms(True)`` during ``fit``.
    """

    def __init__(self, model: nn.Module, device: Any = "auto", amp: Any = None, channels_last: bool = False,
                 compile: Any = False, seed: int | None = None, *, sync_bn: bool = False,
                 distributed: bool | str = "auto", deterministic: bool = False) -> None:
        if not isinstance(model, nn.Module):
            raise TrainingError("Trainer needs an nn.Module", where="Trainer(model=...)", got=type(model).__name__)
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TrainingError("seed must be an integer or None", where="Trainer(seed=...)", got=seed)
        if distributed not in ("auto", True, False):
            raise TrainingError("distributed must be 'auto', True or False", where="Trainer(distributed=...)",
                                got=distributed)
        want_dist = distributed is True or (distributed == "auto" and D.env_world_size() > 1)
        probe = _resolve_device(device, D.DistContext())  # device type decides gloo vs nccl
        self.dist = D.setup_distributed(probe.type) if want_dist else D.DistContext()
        self.device = _resolve_device(device, self.dist)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        self.amp_dtype = _resolve_amp(amp, self.device)
        self.channels_last = bool(channels_last)
        self.compile_kwargs = _resolve_compile(compile)
        self.seed = seed
        self.deterministic = bool(deterministic)
        self.sync_bn = bool(sync_bn)
        if self.sync_bn:
            if self.device.type != "cuda":
                raise TrainingError("sync_bn=True needs CUDA devices", where="Trainer(sync_bn=...)",
                                    got=f"device {self.device}",
                                    hint="DistributedDataParallel refuses SyncBatchNorm on the CPU; "
                                         "use sync_bn=False (or GroupNorm) on CPU")
            model = D.convert_sync_batchnorm(model)
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.train_module: nn.Module | None = None  # DDP and/or compiled wrapper, built by fit
        self._eval_module: nn.Module | None = None
        self.state = TrainState()
        self.should_stop = False
        self.checkpoint_dir: Path | None = None
        self.has_validation = False
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.scaler: Any = None
        self.metrics = TrainingMetrics()

    # -- small properties ----------------------------------------------------------------------
    @property
    def is_main_process(self) -> bool:
        return self.dist.is_main

    @property
    def is_distributed(self) -> bool:
        return self.dist.enabled

    def _log(self, text: str, progress: bool) -> None:
        if progress and self.is_main_process:
            print(text, flush=True)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    # -- model wrapping ------------------------------------------------------------------------
    def _materialize_lazy(self, loader: Any) -> None:
        """Run one forward on a peeked batch if the model has lazy (uninitialised) parameters."""
        if not any(isinstance(p, nn.parameter.UninitializedParameter) for p in self.model.parameters()):
            return
        x, _ = self._peek(loader, "train_loader")
        was = self.model.training
        self.model.eval()
        with torch.no_grad(), self._autocast():
            self.model(self._to_device(x[:2]))
        self.model.train(was)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def _peek(self, loader: Any, where: str) -> tuple[torch.Tensor, Any]:
        """The first batch of ``loader``, drawn without disturbing any random-number generator."""
        snapshot = get_rng_state(_loader_generators(loader))
        try:
            batch = next(iter(loader))
        except StopIteration:
            raise TrainingError("the loader is empty", where=where, expected="at least one batch") from None
        finally:
            set_rng_state(snapshot, _loader_generators(loader))
        x, y = _split_batch(batch)
        _check_inputs(x, y, f"{where} (first batch)")
        return x, y

    def _wrap(self) -> None:
        if self.train_module is not None:
            return
        compiled = self.model
        if self.compile_kwargs is not None:
            compiled = torch.compile(self.model, **self.compile_kwargs)
        self._eval_module = compiled
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_module = DDP(compiled, device_ids=ids)
        else:
            self.train_module = compiled

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self, loader: Iterable[Any], criterion: nn.Module | None = None) -> tuple[float, float]:
        """Mean loss and top-1 accuracy (a fraction) over ``loader``; averaged over all processes.

        Under torchrun a ``DataLoader`` is sharded without padding, so each sample counts once.
        """
        criterion = nn.CrossEntropyLoss() if criterion is None else criterion
        self._wrap()
        loader = D.distribute_loader(loader, self.dist, train=False, seed=self.seed or 0)
        module = self._eval_module
        was = self.model.training
        self.model.eval()
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        correct = torch.zeros((), dtype=torch.float64, device=self.device)
        count = 0
        with torch.no_grad():
            for i, batch in enumerate(loader):
                x, y = _split_batch(batch)
                if i == 0:
                    _check_inputs(x, y, "evaluate (first batch)")
                x, y = self._to_device(x), y.to(self.device, non_blocking=True)
                with self._autocast():
                    out = module(x)
                if i == 0:
                    _check_outputs(out, x, y, "evaluate (first batch)")
                loss = criterion(out.float(), y)
                n = x.shape[0]
                loss_sum += loss.detach().double() * n
                correct += (out.argmax(1) == (y.argmax(1) if y.ndim == 2 else y)).sum()
                count += n
        self.model.train(was)
        total_loss, total_correct, total = D.all_reduce_sum([loss_sum.item(), correct.item(), count],
                                                            self.device, self.dist)
        if total == 0:
            raise TrainingError("the evaluation loader is empty", where="evaluate", expected="at least one batch")
        return total_loss / total, total_correct / total

    def predict(self, loader: Iterable[Any]) -> torch.Tensor:
        """Logits ``[N, classes]`` (on the CPU) for every batch of ``loader``.

        Batches may be bare inputs or ``(inputs, targets)`` pairs; class indices are
        ``predict(loader).argmax(1)``. Each process predicts the whole loader.
        """
        self._wrap()
        was = self.model.training
        self.model.eval()
        outs = []
        with torch.no_grad():
            for i, batch in enumerate(loader):
                x, _ = _split_batch(batch)
                if i == 0:
                    _check_inputs(x, None, "predict (first batch)", need_targets=False)
                x = self._to_device(x)
                with self._autocast():
                    out = self._eval_module(x)
                if i == 0:
                    _check_outputs(out, x, None, "predict (first batch)")
                outs.append(out.float().cpu())
        self.model.train(was)
        if not outs:
            return torch.empty(0, 0)
        return torch.cat(outs)

    # -- checkpoints ---------------------------------------------------------------------------
    def _rng_snapshot(self, loader: Any) -> dict[str, Any]:
        return get_rng_state(_loader_generators(loader))

    def _save(self, path: Path, position: dict[str, Any], rank_state: dict[str, Any], config: dict[str, Any],
              *, collective: bool = True) -> None:
        rank_state = _to_cpu(rank_state)
        ranks = D.all_gather_objects(rank_state, self.dist) if collective else [rank_state]
        if not self.is_main_process:
            return
        state = {
            "kind": "torchvision_customizer.train",
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "metrics": self.metrics.to_dict(),
            "position": position,
            "ranks": {str(i): r for i, r in enumerate(ranks)},
            "config": config,
        }
        save_checkpoint(path, state)

    def _load(self, path: Path, config: dict[str, Any]) -> dict[str, Any]:
        ckpt = load_checkpoint(path, map_location="cpu")
        if ckpt.get("kind") != "torchvision_customizer.train":
            raise TrainingError("not a Trainer checkpoint", where=str(path), got=ckpt.get("kind"))
        saved = ckpt["config"]
        diffs = {k: (saved.get(k), v) for k, v in config.items() if saved.get(k) != v}
        if diffs:
            detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in diffs.items())
            raise TrainingError("the checkpoint was written by a different training setup", where=str(path),
                                expected="the same " + ", ".join(diffs), got=detail,
                                hint="pass the same fit() arguments and launch, or resume=False")
        result = self.model.load_state_dict(ckpt["model"], strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise TrainingError("the checkpoint does not match the model", where=str(path),
                                expected="the same state-dict keys",
                                got=f"missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]}")
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt["scheduler"] is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler is not None and ckpt["scaler"] is not None:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.metrics = TrainingMetrics.from_dict(ckpt["metrics"])
        return ckpt

    # -- training ------------------------------------------------------------------------------
    def fit(self, train_loader: Iterable[Any], val_loader: Iterable[Any] | None = None, epochs: int = 10,
            lr: float = 1e-3, optimizer: Any = "adamw", scheduler: Any = "cosine",
            criterion: nn.Module | None = None, warmup_epochs: float = 0, grad_clip: float | None = None,
            accumulation_steps: int = 1, label_smoothing: float = 0.0, checkpoint_dir: Any = None,
            resume: bool | str | Path = False, callbacks: Iterable[Any] = (), progress: bool = True, *,
            weight_decay: float | None = None, layer_decay: float | None = None,
            checkpoint_every_n_steps: int | None = None, verbose: bool | None = None) -> TrainingMetrics:
        """Train for ``epochs`` epochs; returns the :class:`TrainingMetrics` history.

        Args:
            train_loader: yields ``(inputs, targets)``; must have a length.
            val_loader: evaluated after every epoch when given.
            epochs: total epochs (a resumed run counts those already done).
            lr: peak learning rate (per group when the model has ``param_groups``).
            optimizer: ``"adamw"``, ``"adam"``, ``"sgd"``, an ``Optimizer`` class or instance.
            scheduler: ``"cosine"``, ``"step"``, ``"onecycle"``, ``None`` or an ``LRScheduler`` on
                ``optimizer`` (stepped per optimizer step; ``ReduceLROnPlateau`` per epoch on the
                validation loss, else the training loss).
            criterion: the loss; default cross-entropy with ``label_smoothing``.
            warmup_epochs: linear warmup length (may be fractional).
            grad_clip: clip the global gradient norm to this value.
            accumulation_steps: batches per optimizer step.
            label_smoothing: for the default criterion.
            checkpoint_dir: where ``last.safetensors`` is written (see the module docstring).
            resume: ``True`` to continue from ``checkpoint_dir/last.safetensors``, or a checkpoint file
                or directory.
            callbacks: objects following the protocol of :mod:`.callbacks`.
            progress: print one line per epoch (rank 0 only).
            weight_decay: override the optimizer's default decay (passed to ``model.param_groups``).
            layer_decay: layer-wise learning-rate decay, passed to ``model.param_groups`` (hybrid models).
            checkpoint_every_n_steps: also checkpoint every N optimizer steps (mid-epoch resume).
            verbose: 2.x spelling of ``progress``.

        Raises:
            TrainingError: bad arguments, nothing trainable or bad batches - before the first step.
        """
        if verbose is not None:
            progress = bool(verbose)
        _check_int("epochs", epochs, 1)
        _check_int("accumulation_steps", accumulation_steps, 1)
        _check_number("lr", lr, lo=0.0, lo_open=True)
        _check_number("warmup_epochs", warmup_epochs, lo=0.0, hi=float(epochs))
        _check_number("label_smoothing", label_smoothing, lo=0.0, hi=1.0, hi_open=True)
        if grad_clip is not None:
            _check_number("grad_clip", grad_clip, lo=0.0, lo_open=True)
        if weight_decay is not None:
            _check_number("weight_decay", weight_decay, lo=0.0)
        if layer_decay is not None:
            _check_number("layer_decay", layer_decay, lo=0.0, hi=1.0, lo_open=True)
        if checkpoint_every_n_steps is not None:
            _check_int("checkpoint_every_n_steps", checkpoint_every_n_steps, 1)
        if criterion is None:
            criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        elif label_smoothing:
            raise TrainingError("label_smoothing applies to the default criterion only",
                                where="fit(label_smoothing=...)", got=label_smoothing,
                                hint="build your criterion with the smoothing you want")
        cbs = check_callbacks(list(callbacks) if callbacks is not None else [])
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        resume_path = self._resume_path(resume)
        if checkpoint_every_n_steps is not None and self.checkpoint_dir is None:
            raise TrainingError("checkpoint_every_n_steps needs a checkpoint_dir", where="fit(checkpoint_dir=...)")

        # data: shard under torchrun, measure, check the first batches before any step
        train_loader = D.distribute_loader(train_loader, self.dist, train=True, seed=self.seed or 0)
        if val_loader is not None:
            val_loader = D.distribute_loader(val_loader, self.dist, train=False, seed=self.seed or 0)
        try:
            batches_per_epoch = len(train_loader)  # type: ignore[arg-type]
        except TypeError:
            raise TrainingError("train_loader must have a length", where="fit(train_loader=...)",
                                expected="a DataLoader (or any iterable with __len__)",
                                got=type(train_loader).__name__) from None
        if batches_per_epoch == 0:
            raise TrainingError("train_loader is empty", where="fit(train_loader=...)", expected="at least one batch")
        steps_per_epoch = math.ceil(batches_per_epoch / accumulation_steps)

        prev_deterministic = torch.are_deterministic_algorithms_enabled()
        if self.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        try:
            if self.seed is not None:
                seed_everything(self.seed)
            self._materialize_lazy(train_loader)
            if isinstance(optimizer, torch.optim.Optimizer):
                trainable_param_groups(self.model, lr, weight_decay)  # raises when nothing is trainable
            self.optimizer, opt_name = build_optimizer(optimizer, self.model, lr, weight_decay, layer_decay)
            self.scheduler, sched_name = build_scheduler(scheduler, self.optimizer, epochs=epochs,
                                                         steps_per_epoch=steps_per_epoch,
                                                         warmup_epochs=float(warmup_epochs))
            self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
            self._wrap()
            self.has_validation = val_loader is not None
            if val_loader is not None:
                self._check_val(val_loader, criterion)
            config = {"epochs": epochs, "batches_per_epoch": batches_per_epoch,
                      "accumulation_steps": accumulation_steps, "world_size": self.dist.world_size,
                      "optimizer": opt_name, "scheduler": sched_name}
            return self._run(train_loader, val_loader, criterion, cbs, config, resume_path,
                             grad_clip=grad_clip, checkpoint_every_n_steps=checkpoint_every_n_steps,
                             progress=progress, steps_per_epoch=steps_per_epoch)
        finally:
            if self.deterministic:
                torch.use_deterministic_algorithms(prev_deterministic)

    def _resume_path(self, resume: Any) -> Path | None:
        if resume is False or resume is None:
            return None
        if resume is True:
            if self.checkpoint_dir is None:
                raise TrainingError("resume=True needs a checkpoint_dir", where="fit(resume=...)",
                                    hint="pass checkpoint_dir=..., or resume='path/to/last.safetensors'")
            return self.checkpoint_dir / CHECKPOINT_NAME
        path = Path(resume)
        if path.is_dir():
            path = path / CHECKPOINT_NAME
        if not path.is_file():
            raise TrainingError("checkpoint to resume from not found", where="fit(resume=...)", got=str(path))
        return path

    def _check_val(self, loader: Any, criterion: nn.Module) -> None:
        x, y = self._peek(loader, "val_loader")
        was = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), self._autocast():
                out = self._forward_checked(self._eval_module, self._to_device(x), "val_loader (first batch)")
            _check_outputs(out, x, y, "val_loader (first batch)")
        finally:
            self.model.train(was)

    @staticmethod
    def _forward_checked(module: nn.Module, x: torch.Tensor, where: str) -> Any:
        try:
            return module(x)
        except RuntimeError as err:
            msg = str(err).strip().splitlines()[0][:300]
            raise TrainingError("the model cannot run on the loader's inputs", where=where,
                                expected="inputs of the shape the model takes", got=tuple(x.shape),
                                hint=f"torch said: {msg}") from err

    def _run(self, train_loader: Any, val_loader: Any, criterion: nn.Module, cbs: list[Any],
             config: dict[str, Any], resume_path: Path | None, *, grad_clip: float | None,
             checkpoint_every_n_steps: int | None, progress: bool, steps_per_epoch: int) -> TrainingMetrics:
        epochs, batches = config["epochs"], config["batches_per_epoch"]
        acc_steps = config["accumulation_steps"]
        ckpt_path = None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT_NAME
        gens = _loader_generators(train_loader)
        self.metrics = TrainingMetrics()
        self.state = TrainState()
        self.should_stop = False
        start_epoch, skip, rank_resume = 0, 0, None
        if resume_path is not None:
            if resume_path.is_file():
                ckpt = self._load(resume_path, config)
                pos = ckpt["position"]
                start_epoch, skip = pos["epoch"], pos["batch"]
                self.state.step = self.state.resumed_from_step = pos["step"]
                self.metrics.resumed_from_step = pos["step"]
                rank_resume = ckpt["ranks"].get(str(self.dist.rank))
                if rank_resume is None:
                    self._log(f"checkpoint has no state for rank {self.dist.rank}; its RNG stays seeded", True)
                else:
                    self.state.samples_seen = rank_resume["samples_seen"]
                self._log(f"resumed from {resume_path} at epoch {start_epoch + 1}, batch {skip}, "
                          f"step {pos['step']}", progress)
            else:
                self._log(f"no checkpoint at {resume_path}; starting from scratch", progress)
        step_hooks = [cb.on_step_end for cb in cbs if hasattr(cb, "on_step_end")]
        for cb in cbs:
            if hasattr(cb, "on_fit_start"):
                cb.on_fit_start(self)
        module: Any = self.train_module
        opt: Any = self.optimizer
        sched, scaler = self.scheduler, self.scaler
        per_step_sched = sched is not None and not isinstance(sched, ReduceLROnPlateau)
        boundary: dict[str, Any] | None = None
        stepping = False  # between optimizer.step() and the new boundary: no consistent checkpoint
        epoch = start_epoch
        try:
            for epoch in range(start_epoch, epochs):
                self.state.epoch = epoch + 1
                for cb in cbs:
                    if hasattr(cb, "on_epoch_start"):
                        cb.on_epoch_start(self, epoch + 1)
                D.set_sampler_epoch(train_loader, epoch)
                loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
                correct = torch.zeros((), dtype=torch.float64, device=self.device)
                count = 0
                t0 = time.perf_counter()
                resuming = rank_resume is not None and epoch == start_epoch
                if resuming:
                    set_rng_state(rank_resume["rng_epoch_start"], gens)
                epoch_rng = self._rng_snapshot(train_loader) if ckpt_path is not None else None
                it: Iterator[Any] = iter(train_loader)
                first = 0
                if epoch == start_epoch and skip:
                    for _ in range(skip):  # replay the sampler: load and discard the consumed batches
                        next(it)
                    first = skip
                    if resuming:
                        set_rng_state(rank_resume["rng_now"], gens)
                        loss_sum += rank_resume["loss_sum"].to(self.device)
                        correct += rank_resume["correct"].to(self.device)
                        count = rank_resume["count"]
                self.model.train()
                self.state.batch = first
                if ckpt_path is not None:
                    boundary = self._boundary(epoch, first, loss_sum, correct, count, epoch_rng, train_loader)
                for b in range(first, batches):
                    batch = next(it)
                    x, y = _split_batch(batch)
                    checking = self.state.steps_run == 0 and b == first
                    if checking:
                        _check_inputs(x, y, "train_loader (first batch)")
                    x, y = self._to_device(x), y.to(self.device, non_blocking=True)
                    group_start = b - b % acc_steps
                    group = min(acc_steps, batches - group_start)
                    last_in_group = b == group_start + group - 1
                    sync = contextlib.nullcontext() if (last_in_group or not self.dist.enabled) else module.no_sync()
                    with sync:
                        with self._autocast():
                            out = self._forward_checked(module, x, "train_loader (first batch)") if checking \
                                else module(x)
                            if checking:
                                _check_outputs(out, x, y, "train_loader (first batch)")
                            loss = criterion(out, y)
                        scaled = loss / group if group > 1 else loss
                        if scaler is not None:
                            scaler.scale(scaled).backward()
                        else:
                            scaled.backward()
                    n = x.shape[0]
                    loss_sum.add_(loss.detach(), alpha=n)  # float64 running sums: exact across resumes
                    correct.add_((out.detach().argmax(1) == (y.argmax(1) if y.ndim == 2 else y)).sum())
                    count += n
                    self.state.samples_seen += n
                    self.state.batch = b + 1
                    if not last_in_group:
                        continue
                    stepping = True
                    if grad_clip is not None:
                        if scaler is not None:
                            scaler.unscale_(opt)
                        nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], grad_clip)
                    if scaler is not None:
                        scaler.step(opt)
                        scaler.update()
                    else:
                        opt.step()
                    opt.zero_grad(set_to_none=True)
                    if per_step_sched:
                        sched.step()
                    self.state.step += 1
                    self.state.steps_run += 1
                    if ckpt_path is not None:
                        boundary = self._boundary(epoch, b + 1, loss_sum, correct, count, epoch_rng, train_loader)
                        if (checkpoint_every_n_steps and self.state.step % checkpoint_every_n_steps == 0
                                and b + 1 < batches):
                            self._save(ckpt_path, boundary["position"], boundary["rank"], config)
                    stepping = False
                    if step_hooks:
                        value = float(loss.detach())
                        for hook in step_hooks:
                            hook(self, self.state.step, value)
                stop = self._end_epoch(epoch, loss_sum, correct, count, t0, train_loader, val_loader, criterion,
                                       cbs, ckpt_path, config, progress)
                if stop:
                    self.metrics.stopped_early = epoch + 1
                    self._log(f"stopped early after epoch {epoch + 1}", progress)
                    break
        except KeyboardInterrupt:
            if ckpt_path is not None and boundary is not None and not stepping:
                self._save(ckpt_path, boundary["position"], boundary["rank"], config, collective=False)
                self._log(f"interrupted: checkpoint written to {ckpt_path} at step {boundary['position']['step']}",
                          True)
            elif ckpt_path is not None:
                self._log("interrupted during an optimizer step: the last checkpoint on disk is kept", True)
            raise
        self.metrics.steps_run = self.state.steps_run
        for cb in cbs:
            if hasattr(cb, "on_fit_end"):
                cb.on_fit_end(self, self.metrics)
        return self.metrics

    def _boundary(self, epoch: int, batch: int, loss_sum: torch.Tensor, correct: torch.Tensor, count: int,
                  epoch_rng: dict[str, Any] | None, loader: Any) -> dict[str, Any]:
        """Everything a checkpoint written now needs beyond model/optimizer/scheduler state."""
        return {
            "position": {"epoch": epoch, "batch": batch, "step": self.state.step},
            "rank": {"rng_epoch_start": epoch_rng, "rng_now": self._rng_snapshot(loader),
                     "loss_sum": loss_sum.detach().clone(), "correct": correct.detach().clone(),  # no device sync
                     "count": count, "samples_seen": self.state.samples_seen},
        }

    def _end_epoch(self, epoch: int, loss_sum: torch.Tensor, correct: torch.Tensor, count: int, t0: float,
                   train_loader: Any, val_loader: Any, criterion: nn.Module, cbs: list[Any],
                   ckpt_path: Path | None, config: dict[str, Any], progress: bool) -> bool:
        epochs = config["epochs"]
        total_loss, total_correct, total = D.all_reduce_sum([loss_sum.item(), correct.item(), count],
                                                            self.device, self.dist)
        train_loss, train_acc = total_loss / max(total, 1), total_correct / max(total, 1)
        val_loss = val_acc = None
        if val_loader is not None:
            val_loss, val_acc = self.evaluate(val_loader, criterion)
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(val_loss if val_loss is not None else train_loss)
        lr = self.optimizer.param_groups[0]["lr"]
        elapsed = time.perf_counter() - t0
        self.metrics.update(epoch=epoch + 1, train_loss=train_loss, train_acc=train_acc, val_loss=val_loss,
                            val_acc=val_acc, lr=lr, epoch_time=elapsed, step=self.state.step)
        self.metrics.steps_run = self.state.steps_run
        if ckpt_path is not None:
            zero = torch.zeros((), dtype=torch.float64)
            rng = self._rng_snapshot(train_loader)  # the next epoch starts from here
            rank = {"rng_epoch_start": rng, "rng_now": rng, "loss_sum": zero, "correct": zero.clone(), "count": 0,
                    "samples_seen": self.state.samples_seen}
            self._save(ckpt_path, {"epoch": epoch + 1, "batch": 0, "step": self.state.step}, rank, config)
        logs = dict(self.metrics.records[-1])
        logs.pop("epoch")
        val_text = "" if val_acc is None else f"  val loss {val_loss:.4f} acc {val_acc:.2%}"
        self._log(f"epoch {epoch + 1}/{epochs}  train loss {train_loss:.4f} acc {train_acc:.2%}{val_text}  "
                  f"lr {lr:.2e}  {elapsed:.1f}s", progress)
        for cb in cbs:
            if hasattr(cb, "on_epoch_end"):
                cb.on_epoch_end(self, epoch + 1, logs)
        return D.broadcast_flag(self.should_stop, self.device, self.dist)

    # -- datasets (thin wrappers over .data) ----------------------------------------------------
    def fit_digits(self, **kwargs: Any) -> TrainingMetrics:
        """Fine-tune on scikit-learn's bundled digits; see :func:`~.data.fit_digits`."""
        from .data import fit_digits

        return fit_digits(self, **kwargs)

    def fit_mnist(self, **kwargs: Any) -> TrainingMetrics:
        """Train on MNIST from ``data_dir``; see :func:`~.data.fit_mnist`."""
        from .data import fit_mnist

        return fit_mnist(self, **kwargs)

    def fit_cifar10(self, **kwargs: Any) -> TrainingMetrics:
        """Train on CIFAR-10 from ``data_dir``; see :func:`~.data.fit_cifar10`."""
        from .data import fit_cifar10

        return fit_cifar10(self, **kwargs)

    def fit_cifar100(self, **kwargs: Any) -> TrainingMetrics:
        """Train on CIFAR-100 from ``data_dir``; see :func:`~.data.fit_cifar100`."""
        from .data import fit_cifar100

        return fit_cifar100(self, **kwargs)

    def fit_folder(self, path: Any, **kwargs: Any) -> TrainingMetrics:
        """Train on an ImageFolder tree; see :func:`~.data.fit_folder`."""
        from .data import fit_folder

        return fit_folder(self, path, **kwargs)


def evaluate(model: nn.Module, loader: Iterable[Any], criterion: nn.Module | None = None,
             device: Any = "auto") -> tuple[float, float]:
    """Mean loss and top-1 accuracy of ``model`` over ``loader`` (2.x ``evaluate``).

    The model is moved to ``device``.
    """
    return Trainer(model, device=device, distributed=False).evaluate(loader, criterion)


def _to_cpu(tree: Any) -> Any:
    if isinstance(tree, torch.Tensor):
        return tree.detach().cpu()
    if isinstance(tree, dict):
        return {k: _to_cpu(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_to_cpu(v) for v in tree)
    return tree


def _check_int(name: str, value: Any, lo: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < lo:
        raise TrainingError(f"{name} must be an integer >= {lo}", where=f"fit({name}=...)",
                            expected=f"an integer >= {lo}", got=value)


def _check_number(name: str, value: Any, lo: float | None = None, hi: float | None = None,
                  lo_open: bool = False, hi_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        lo_s = "" if lo is None else f"{'>' if lo_open else '>='} {lo}"
        hi_s = "" if hi is None else f"{'<' if hi_open else '<='} {hi}"
        raise TrainingError(f"{name} is out of range", where=f"fit({name}=...)",
                            expected=f"a number {' and '.join(s for s in (lo_s, hi_s) if s)}", got=value)
