"""Trainer: bad input before the first step, optimizer construction, options, resume in-process."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from torchvision_customizer.errors import TrainingError
from torchvision_customizer.train import Callback, Trainer, evaluate, load_checkpoint


def tiny(classes: int = 3, in_ch: int = 3, norm: str = "group") -> nn.Sequential:
    layer = nn.GroupNorm(2, 4) if norm == "group" else nn.BatchNorm2d(4)
    return nn.Sequential(nn.Conv2d(in_ch, 4, 3, padding=1), layer, nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, classes))


def data(n: int = 32, classes: int = 3, size: int = 8, channels: int = 3, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = torch.randn(n, channels, size, size, generator=g) + y.view(-1, 1, 1, 1).float()
    return TensorDataset(x, y)


def loader(n: int = 32, batch_size: int = 8, **kw: Any) -> DataLoader:
    return DataLoader(data(n, **kw), batch_size=batch_size)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_unchanged(model: nn.Module, before: dict[str, torch.Tensor]) -> None:
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed: an optimizer step ran before the error"


# -- bad input: our error, before the first optimizer step -------------------------------------
class Pairs(torch.utils.data.Dataset):
    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]


BAD_FIT = {
    "optimizer": ({"optimizer": "adamm"}, r"unknown optimizer 'adamm'.*did you mean 'adam'"),
    "optimizer-none": ({"optimizer": None}, r"optimizer must be a name"),
    "scheduler": ({"scheduler": "cosin"}, r"unknown scheduler 'cosin'.*did you mean 'cosine'"),
    "epochs": ({"epochs": 0}, r"epochs must be an integer >= 1.*got 0"),
    "lr": ({"lr": -1.0}, r"lr is out of range"),
    "warmup": ({"warmup_epochs": 5, "epochs": 2}, r"warmup_epochs is out of range"),
    "accumulation": ({"accumulation_steps": 0}, r"accumulation_steps must be an integer >= 1"),
    "smoothing+criterion": ({"criterion": nn.NLLLoss(), "label_smoothing": 0.1}, r"default criterion only"),
    "resume-no-dir": ({"resume": True}, r"resume=True needs a checkpoint_dir"),
    "every-n-no-dir": ({"checkpoint_every_n_steps": 2}, r"needs a checkpoint_dir"),
}


@pytest.mark.parametrize("case", list(BAD_FIT))
def test_bad_fit_arguments_raise_before_any_step(case: str) -> None:
    kwargs, match = BAD_FIT[case]
    model = tiny()
    before = snapshot(model)
    with pytest.raises(TrainingError, match=match):
        Trainer(model, device="cpu").fit(loader(), progress=False, **{"epochs": 1, **kwargs})
    assert_unchanged(model, before)


BAD_BATCHES = {
    "channels": (loader(channels=1), r"cannot run on the loader's inputs.*got \(8, 1, 8, 8\); torch said"),
    "labels": (loader(classes=5), r"target class is out of range.*labels in \[0, 2\].*labels in \[0, 4\]"),
    "bare-tensor": (DataLoader(torch.randn(8, 3, 8, 8), batch_size=4), r"\(inputs, targets\) tensor pairs"),
    "int-inputs": (DataLoader(Pairs([(torch.zeros(3, 8, 8, dtype=torch.long), 0)] * 4), batch_size=2),
                   r"inputs must be a floating-point batch"),
    "label-shape": (DataLoader(Pairs([(torch.zeros(3, 8, 8), torch.tensor([0, 1]))] * 4), batch_size=2),
                    r"targets must be class indices or class probabilities"),
    "empty": (DataLoader(data(0), batch_size=2), r"train_loader is empty"),
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_loader_with_wrong_batches_raises_before_any_step(case: str) -> None:
    bad, match = BAD_BATCHES[case]
    model = tiny()
    before = snapshot(model)
    with pytest.raises(TrainingError, match=match):
        Trainer(model, device="cpu").fit(bad, epochs=1, progress=False)
    assert_unchanged(model, before)


def test_bad_val_loader_is_caught_before_training() -> None:
    model = tiny()
    before = snapshot(model)
    with pytest.raises(TrainingError, match=r"cannot run.*val_loader \(first batch\)"):
        Trainer(model, device="cpu").fit(loader(), loader(channels=2), epochs=1, progress=False)
    assert_unchanged(model, before)


def test_model_without_trainable_parameters() -> None:
    model = tiny().requires_grad_(False)
    with pytest.raises(TrainingError, match=r"no trainable parameters.*unfreeze"):
        Trainer(model, device="cpu").fit(loader(), epochs=1, progress=False)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(TrainingError, match="no trainable parameters"):
        Trainer(model, device="cpu").fit(loader(), epochs=1, optimizer=opt, scheduler=None, progress=False)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"device": "cuda:0"} if not torch.cuda.is_available() else {"device": "nonsense"}, r"device"),
    ({"amp": "fp8"}, r"unknown mixed-precision mode"),
    ({"compile": 3}, r"compile must be"),
    ({"seed": "0"}, r"seed must be an integer"),
    ({"distributed": "yes"}, r"distributed must be"),
])
def test_bad_trainer_options(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(TrainingError, match=match):
        Trainer(tiny(), **kwargs)


def test_fp16_on_cpu_is_refused() -> None:
    with pytest.raises(TrainingError, match=r"fp16 mixed precision needs CUDA.*bf16"):
        Trainer(tiny(), device="cpu", amp="fp16")


# -- optimizer construction ---------------------------------------------------------------------
def test_frozen_backbone_trains_only_the_head() -> None:
    model = tiny()
    model[0].requires_grad_(False)
    before = snapshot(model)
    trainer = Trainer(model, device="cpu")
    trainer.fit(loader(), epochs=1, lr=0.1, progress=False)
    in_opt = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert all(id(p) not in in_opt for p in model[0].parameters())
    assert torch.equal(model[0].weight, before["0.weight"]) and not torch.equal(model[5].weight, before["5.weight"])


class WithGroups(nn.Sequential):
    def param_groups(self, lr: float, weight_decay: float = 0.0) -> list[dict[str, Any]]:
        return [{"params": list(self[0].parameters()), "lr": lr * 0.1, "weight_decay": weight_decay},
                {"params": list(self[5].parameters()), "lr": lr}]


def test_model_param_groups_are_used_and_frozen_parameters_dropped() -> None:
    model = WithGroups(*tiny())
    model[0].bias.requires_grad_(False)
    trainer = Trainer(model, device="cpu")
    trainer.fit(loader(), epochs=1, lr=0.1, optimizer="sgd", scheduler=None, weight_decay=0.0, progress=False)
    groups = trainer.optimizer.param_groups
    assert [g["lr"] for g in groups] == pytest.approx([0.01, 0.1])
    assert [len(g["params"]) for g in groups] == [1, 2]  # conv bias frozen, norm not in any group


def test_lazy_head_is_materialized_before_the_optimizer_and_trains() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(3))
    trainer = Trainer(model, device="cpu", seed=0)
    trainer.fit(loader(), epochs=1, lr=0.1, progress=False)
    head = model[3]
    assert isinstance(head, nn.Linear) and head.weight.shape == (3, 144)
    in_opt = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert id(head.weight) in in_opt and head.weight.grad is None  # zeroed after the step


# -- schedules ---------------------------------------------------------------------------------
class LrLog(Callback):
    """The learning rate each optimizer step used."""

    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_fit_start(self, trainer: Trainer) -> None:
        trainer.optimizer.register_step_pre_hook(lambda opt, a, k: self.lrs.append(opt.param_groups[0]["lr"]))


def _decreasing(values: list[float]) -> bool:
    return all(a > b for a, b in itertools.pairwise(values))


@pytest.mark.parametrize(("scheduler", "epochs", "check"), [
    ("cosine", 2, lambda lrs: lrs[0] == pytest.approx(0.1) and _decreasing(lrs) and lrs[-1] < 0.01),
    ("step", 2, lambda lrs: lrs == pytest.approx([0.1] * 4 + [0.01] * 4)),  # 2.x: ZeroDivisionError
    ("step", 3, lambda lrs: lrs == pytest.approx([0.1] * 4 + [0.01] * 4 + [0.001] * 4)),
    ("onecycle", 2, lambda lrs: max(lrs) == pytest.approx(0.1, rel=0.05) and lrs[0] < 0.01 and lrs[-1] < 0.01),
    (None, 2, lambda lrs: lrs == [0.1] * 8),
])
def test_schedulers_step_per_optimizer_step(scheduler: Any, epochs: int, check: Any) -> None:
    log = LrLog()
    Trainer(tiny(), device="cpu").fit(loader(), epochs=epochs, lr=0.1, scheduler=scheduler, callbacks=[log],
                                      progress=False)
    assert len(log.lrs) == 4 * epochs and check(log.lrs), log.lrs


def test_warmup_ramps_linearly_then_decays() -> None:
    log = LrLog()
    metrics = Trainer(tiny(), device="cpu").fit(loader(), epochs=3, lr=0.1, warmup_epochs=1, callbacks=[log],
                                                progress=False)
    assert log.lrs[:5] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])
    assert _decreasing(log.lrs[4:])
    assert metrics.lrs[0] == pytest.approx(0.1)  # recorded at the end of each epoch


def test_user_optimizer_and_scheduler_instances() -> None:
    model = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    log = LrLog()
    Trainer(model, device="cpu").fit(loader(), epochs=1, optimizer=opt, scheduler=sched, callbacks=[log],
                                     progress=False)
    assert log.lrs == pytest.approx([0.2, 0.2, 0.1, 0.1])
    other = torch.optim.SGD(tiny().parameters(), lr=0.1)
    with pytest.raises(TrainingError, match="belongs to another optimizer"):
        Trainer(model, device="cpu").fit(loader(), epochs=1, optimizer=opt,
                                         scheduler=torch.optim.lr_scheduler.StepLR(other, 1), progress=False)


# -- accumulation, clipping ------------------------------------------------------------------------
def _sgd_fit(batch_size: int, accumulation: int) -> nn.Module:
    torch.manual_seed(0)
    model = tiny()
    Trainer(model, device="cpu").fit(DataLoader(data(40), batch_size=batch_size), epochs=1, lr=0.1,
                                     optimizer="sgd", scheduler=None, accumulation_steps=accumulation,
                                     progress=False)
    return model


def test_accumulation_equals_the_larger_batch_including_a_short_last_group() -> None:
    big = _sgd_fit(16, 1)      # batches 16, 16, 8
    small = _sgd_fit(4, 4)     # 10 batches of 4 -> groups of 4, 4, 2 batches
    for (k, a), b in zip(big.state_dict().items(), small.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=k)


def test_grad_clip_bounds_the_global_norm() -> None:
    model = tiny()
    norms: list[float] = []
    trainer = Trainer(model, device="cpu")

    class Probe(Callback):
        def on_fit_start(self, trainer: Trainer) -> None:
            def hook(opt: Any, args: Any, kwargs: Any) -> None:
                grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
                norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))
            trainer.optimizer.register_step_pre_hook(hook)

    trainer.fit(loader(), epochs=1, lr=0.1, grad_clip=1e-3, callbacks=[Probe()], progress=False)
    assert len(norms) == 4 and max(norms) <= 1e-3 * (1 + 1e-4)


# -- AMP, channels_last, compile -----------------------------------------------------------------
def test_bf16_autocast_on_cpu() -> None:
    model = tiny()
    dtypes: set[torch.dtype] = set()
    model[0].register_forward_hook(lambda m, i, o: dtypes.add(o.dtype))
    metrics = Trainer(model, device="cpu", amp="bf16").fit(loader(), loader(), epochs=1, progress=False)
    assert dtypes == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert torch.isfinite(torch.tensor(metrics.train_losses)).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA-only path: fp16 autocast with a GradScaler")
def test_fp16_with_grad_scaler_on_cuda(tmp_path: Path) -> None:
    model = tiny()
    trainer = Trainer(model, device="cuda", amp="fp16")
    metrics = trainer.fit(loader(), loader(), epochs=2, checkpoint_dir=tmp_path, progress=False)
    assert trainer.scaler is not None and trainer.scaler.get_scale() > 0
    assert load_checkpoint(tmp_path / "last.safetensors")["scaler"] is not None
    assert torch.isfinite(torch.tensor(metrics.train_losses)).all()


def test_channels_last_inputs_weights_and_contiguous_checkpoint(tmp_path: Path) -> None:
    model = tiny(norm="batch")
    seen: list[bool] = []
    model[0].register_forward_pre_hook(lambda m, args: seen.append(args[0].is_contiguous(
        memory_format=torch.channels_last)))
    trainer = Trainer(model, device="cpu", channels_last=True)
    trainer.fit(loader(), epochs=1, checkpoint_dir=tmp_path, progress=False)
    assert seen and all(seen)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    saved = load_checkpoint(tmp_path / "last.safetensors")["model"]
    assert all(t.is_contiguous() for t in saved.values())
    fresh = tiny(norm="batch")
    fresh.load_state_dict(saved)
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, model.state_dict()[k])


def test_compile_with_a_configurable_backend_matches_eager() -> None:
    results = []
    for compile_opt in (False, "eager"):
        torch.manual_seed(0)
        model = tiny()
        trainer = Trainer(model, device="cpu", compile=compile_opt, seed=0)
        trainer.fit(loader(), epochs=1, lr=0.05, progress=False)
        results.append((trainer, snapshot(model)))
    (plain, plain_w), (compiled, compiled_w) = results
    assert isinstance(compiled.train_module, torch._dynamo.eval_frame.OptimizedModule)
    assert not isinstance(plain.train_module, torch._dynamo.eval_frame.OptimizedModule)
    for k in plain_w:
        torch.testing.assert_close(compiled_w[k], plain_w[k], atol=1e-6, rtol=1e-5)


# -- evaluate, predict ---------------------------------------------------------------------------
def test_evaluate_and_predict_match_a_manual_pass() -> None:
    model = tiny().eval()
    ds = data(20)
    with torch.no_grad():
        logits = model(ds.tensors[0])
    want_loss = float(nn.functional.cross_entropy(logits, ds.tensors[1]))
    want_acc = float((logits.argmax(1) == ds.tensors[1]).float().mean())
    loss, acc = Trainer(model, device="cpu").evaluate(DataLoader(ds, batch_size=6))
    assert loss == pytest.approx(want_loss, rel=1e-6) and acc == pytest.approx(want_acc)
    assert evaluate(model, DataLoader(ds, batch_size=7), device="cpu") == pytest.approx((loss, acc))
    preds = Trainer(model, device="cpu").predict(DataLoader(ds.tensors[0], batch_size=6))  # bare inputs
    torch.testing.assert_close(preds, logits)
    assert model.training is False  # evaluate/predict restore the mode they found


# -- interrupt, resume, metrics without validation -------------------------------------------------
class InterruptAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer: Trainer, step: int, loss: float) -> None:
        if step == self.step:
            raise KeyboardInterrupt


def _run(tmp: Path | None, callbacks: list[Any] = (), resume: bool = False, epochs: int = 2) -> tuple[Trainer, Any]:
    torch.manual_seed(3)
    model = nn.Sequential(*tiny(norm="batch")[:5], nn.Dropout(0.3), nn.Linear(4, 3))
    train = DataLoader(data(40), batch_size=8, shuffle=True)
    trainer = Trainer(model, device="cpu", seed=11)
    metrics = trainer.fit(train, epochs=epochs, lr=0.05, checkpoint_dir=tmp, resume=resume, callbacks=callbacks,
                          progress=False)
    return trainer, metrics


def test_keyboard_interrupt_writes_a_checkpoint_and_resume_matches(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, [InterruptAt(7)])
    ckpt = load_checkpoint(tmp_path / "last.safetensors")
    assert ckpt["position"] == {"epoch": 1, "batch": 2, "step": 7}  # 5 steps per epoch
    resumed, metrics = _run(tmp_path, resume=True)
    assert resumed.state.resumed_from_step == 7 and resumed.state.steps_run == 3
    assert metrics.resumed_from_step == 7 and "Resumed from step 7" in metrics.summary()
    reference, ref_metrics = _run(None)
    for k, v in reference.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[k], v), k
    assert [r["train_loss"] for r in metrics.records] == [r["train_loss"] for r in ref_metrics.records]
    assert metrics.best_epoch is None and "No validation set" in metrics.summary()


def test_resume_refuses_a_different_setup_and_a_finished_run_runs_nothing(tmp_path: Path) -> None:
    _run(tmp_path, epochs=1)
    with pytest.raises(TrainingError, match=r"different training setup.*epochs: checkpoint 1 vs now 2"):
        _run(tmp_path, resume=True, epochs=2)
    trainer, metrics = _run(tmp_path, resume=True, epochs=1)
    assert trainer.state.steps_run == 0 and len(metrics) == 1


def test_resume_without_a_checkpoint_starts_from_scratch_and_says_so(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    torch.manual_seed(0)
    Trainer(tiny(), device="cpu").fit(loader(), epochs=1, checkpoint_dir=tmp_path / "none", resume=True)
    assert "starting from scratch" in capsys.readouterr().out


def test_reduce_on_plateau_steps_per_epoch_on_the_monitored_loss() -> None:
    model = tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5, threshold=0.5)
    metrics = Trainer(model, device="cpu").fit(loader(), loader(), epochs=3, optimizer=opt, scheduler=plateau,
                                               progress=False)
    assert metrics.lrs == pytest.approx([0.01, 0.005, 0.0025])  # never 50 % better: halved each epoch


class WithLayerDecay(nn.Sequential):
    def param_groups(self, lr: float, layer_decay: float | None = None, weight_decay: float = 0.0) -> list[Any]:
        scale = 1.0 if layer_decay is None else layer_decay
        return [{"params": list(self[0].parameters()), "lr": lr * scale, "weight_decay": weight_decay},
                {"params": [p for m in list(self)[1:] for p in m.parameters()], "lr": lr, "weight_decay": 0.0}]


def test_layer_decay_and_weight_decay_reach_the_models_param_groups() -> None:
    trainer = Trainer(WithLayerDecay(*tiny()), device="cpu")
    trainer.fit(loader(), epochs=1, lr=0.1, layer_decay=0.5, scheduler=None, progress=False)
    groups = trainer.optimizer.param_groups
    assert [g["lr"] for g in groups] == pytest.approx([0.05, 0.1])
    assert [g["weight_decay"] for g in groups] == [0.01, 0.0]  # adamw's default decay went to param_groups
    with pytest.raises(TrainingError, match=r"layer_decay needs a model whose param_groups\(\) takes layer_decay"):
        Trainer(WithGroups(*tiny()), device="cpu").fit(loader(), epochs=1, layer_decay=0.5, progress=False)


def test_legacy_verbose_and_dataset_methods(capsys: pytest.CaptureFixture[str]) -> None:
    trainer = Trainer(tiny(classes=10), device="cpu", seed=0)
    metrics = trainer.fit_digits(epochs=1, image_size=8, batch_size=128, augment=False, verbose=True)
    assert len(metrics) == 1 and metrics.val_accs[0] is not None
    assert "epoch 1/1" in capsys.readouterr().out
    trainer.fit(loader(classes=10), epochs=1, verbose=False)
    assert capsys.readouterr().out == ""
