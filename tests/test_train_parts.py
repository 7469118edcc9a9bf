"""Training parts: metrics, checkpoint files, callbacks, datasets and loader sharding."""

from __future__ import annotations

import csv
import gzip
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from torchvision_customizer.errors import TrainingError
from torchvision_customizer.train import (
    BestCheckpoint,
    Callback,
    CSVLogger,
    DatasetNotFoundError,
    DigitsDataset,
    EarlyStopping,
    MissingDependencyError,
    TensorBoardLogger,
    Trainer,
    TrainingMetrics,
    digits_split,
    fit_folder,
    fit_mnist,
    infer_input,
    load_checkpoint,
    quick_train,
    save_checkpoint,
)
from torchvision_customizer.train import distributed as D


def tiny(classes: int = 3, in_ch: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, classes))


def loader(n: int = 24, classes: int = 3) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % classes
    return DataLoader(TensorDataset(torch.randn(n, 3, 8, 8, generator=g) + y.view(-1, 1, 1, 1), y), batch_size=8)


# -- metrics -----------------------------------------------------------------------------------
def test_metrics_on_an_empty_history(tmp_path: Path) -> None:
    m = TrainingMetrics()
    assert m.summary() == "No epochs recorded yet."
    assert m.best_epoch is None and m.best_val_acc is None and m.last is None and len(m) == 0
    assert m.plot(tmp_path / "empty.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert TrainingMetrics.from_json(m.to_json()).records == []


def test_metrics_record_report_and_round_trip(tmp_path: Path) -> None:
    m = TrainingMetrics()
    m.update(train_loss=1.0, train_acc=0.5, val_loss=0.9, val_acc=0.6, lr=1e-3, epoch_time=1.5, step=10)
    m.update(train_loss=0.5, train_acc=0.8, val_loss=0.7, val_acc=0.9, lr=5e-4, epoch_time=1.5, step=20)
    m.update(train_loss=0.4, train_acc=0.9, val_loss=0.8, val_acc=0.9, lr=1e-4, epoch_time=1.0, step=30)
    assert m.epochs == [1, 2, 3] and m.train_losses == [1.0, 0.5, 0.4] and m.val_accs == [0.6, 0.9, 0.9]
    assert (m.best_epoch, m.best_val_acc) == (2, 0.9)  # ties keep the earliest epoch
    assert "Best val acc 90.00% (epoch 2)" in m.summary() and "time 4.0s" in m.summary()
    back = TrainingMetrics.from_json(m.to_json(tmp_path / "m.json"))
    assert back.records == m.records and TrainingMetrics.from_json(tmp_path / "m.json").records == m.records
    rows = list(csv.DictReader(m.to_csv(tmp_path / "m.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and float(rows[1]["val_acc"]) == 0.9
    png = m.plot(tmp_path / "curves.png")
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000


def test_metrics_without_validation_report_no_best_epoch(tmp_path: Path) -> None:
    m = TrainingMetrics([{"train_loss": 1.0, "train_acc": 0.5}])
    assert m.best_epoch is None and "No validation set" in m.summary()  # 2.x: "0.00% (epoch 1)"
    assert m.to_csv(tmp_path / "m.csv").read_text().splitlines()[1].startswith("1,1.0,0.5,,,")
    with pytest.raises(TrainingError, match="records"):
        TrainingMetrics.from_dict({"epochs": []})


# -- checkpoint files ------------------------------------------------------------------------------
def test_checkpoint_round_trip_of_nested_state(tmp_path: Path) -> None:
    lin = nn.Linear(3, 2)
    tied = nn.Module()
    tied.a = lin
    tied.b = lin  # shared storage is accepted
    opt = torch.optim.AdamW(lin.parameters())
    lin(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {"model": tied.state_dict(), "opt": opt.state_dict(), "tuple": (1, 2.5, None, "x"),
             "ints": {3: "three", 4: torch.tensor([1, 2])}, "dtype": torch.bfloat16, "bytes": b"\x00\xff",
             "nan": float("inf"), "channels_last": torch.randn(1, 2, 3, 3).to(memory_format=torch.channels_last)}
    path = save_checkpoint(tmp_path / "c.safetensors", state)
    back = load_checkpoint(path)
    assert back["tuple"] == (1, 2.5, None, "x") and back["ints"][3] == "three"
    assert torch.equal(back["ints"][4], torch.tensor([1, 2])) and back["dtype"] is torch.bfloat16
    assert back["bytes"] == b"\x00\xff" and back["nan"] == float("inf")
    assert back["channels_last"].is_contiguous() and torch.equal(back["channels_last"], state["channels_last"])
    fresh = torch.optim.AdamW(nn.Linear(3, 2).parameters())
    fresh.load_state_dict(back["opt"])
    assert fresh.state_dict()["param_groups"] == opt.state_dict()["param_groups"]
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]


def test_checkpoint_errors_name_the_location(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=r"cannot be stored \(at model.fn\).*got 'function'"):
        save_checkpoint(tmp_path / "c.safetensors", {"model": {"fn": lambda: 0}})
    assert not list(tmp_path.iterdir())  # nothing half-written
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="not a readable safetensors checkpoint"):
        load_checkpoint(tmp_path / "junk.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(TrainingError, match="not a torchvision-customizer training checkpoint"):
        load_checkpoint(tmp_path / "plain.safetensors")
    with pytest.raises(TrainingError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_atomic_write_keeps_the_previous_file_when_writing_fails(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(tmp_path / "last.safetensors", {"step": 1})
    import torchvision_customizer.train.checkpoint as ck

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(ck.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2})
    assert load_checkpoint(path)["step"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]


# -- callbacks --------------------------------------------------------------------------------------
def test_callback_protocol_is_checked() -> None:
    class Typo:
        def on_epoch_ned(self, trainer: Any, epoch: int, logs: Any) -> None: ...

    with pytest.raises(TrainingError, match=r"unknown callback hook 'on_epoch_ned'.*did you mean 'on_epoch_end'"):
        Trainer(tiny(), device="cpu").fit(loader(), epochs=1, callbacks=[Typo()], progress=False)
    with pytest.raises(TrainingError, match="has no hook method"):
        Trainer(tiny(), device="cpu").fit(loader(), epochs=1, callbacks=[object()], progress=False)
    with pytest.raises(TrainingError, match=r"unknown metric 'val_accuracy'.*did you mean 'val_acc'"):
        EarlyStopping(monitor="val_accuracy")
    with pytest.raises(TrainingError, match="monitors 'val_loss' but fit\\(\\) has no val_loader"):
        Trainer(tiny(), device="cpu").fit(loader(), epochs=1, callbacks=[EarlyStopping()], progress=False)


def test_hooks_run_in_order_with_documented_arguments() -> None:
    calls: list[tuple[str, Any]] = []

    class Recorder(Callback):
        def on_fit_start(self, trainer: Trainer) -> None:
            calls.append(("fit_start", trainer.state.step))

        def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
            calls.append(("epoch_start", epoch))

        def on_step_end(self, trainer: Trainer, step: int, loss: float) -> None:
            calls.append(("step", (step, isinstance(loss, float))))

        def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, Any]) -> None:
            calls.append(("epoch_end", (epoch, sorted(logs))))

        def on_fit_end(self, trainer: Trainer, metrics: TrainingMetrics) -> None:
            calls.append(("fit_end", len(metrics)))

    Trainer(tiny(), device="cpu").fit(loader(), loader(), epochs=1, callbacks=[Recorder()], progress=False)
    keys = sorted(["train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_time", "step"])
    assert calls == [("fit_start", 0), ("epoch_start", 1), ("step", (1, True)), ("step", (2, True)),
                     ("step", (3, True)), ("epoch_end", (1, keys)), ("fit_end", 1)]


def test_early_stopping_stops_and_is_recorded() -> None:
    stop = EarlyStopping(monitor="train_loss", patience=1, min_delta=100.0)
    trainer = Trainer(tiny(), device="cpu")
    metrics = trainer.fit(loader(), epochs=10, callbacks=[stop], progress=False)
    # epoch 1 sets the best; epochs 2 and 3 do not improve; patience 1 tolerates one of them
    assert len(metrics) == 3 and metrics.stopped_early == 3 and stop.stopped_epoch == 3
    assert "Stopped early after epoch 3" in metrics.summary()


def test_best_checkpoint_and_csv_logger(tmp_path: Path) -> None:
    from safetensors import safe_open

    torch.manual_seed(0)
    model = tiny()
    best = BestCheckpoint(monitor="val_loss", restore_on_end=True)
    Trainer(model, device="cpu").fit(loader(), loader(), epochs=3, lr=0.05, checkpoint_dir=tmp_path,
                                     callbacks=[best, CSVLogger(tmp_path / "log.csv")], progress=False)
    with safe_open(str(tmp_path / "best.safetensors"), framework="pt") as fh:
        meta = fh.metadata()
        weights = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    assert meta["monitor"] == "val_loss" and int(meta["epoch"]) == best.best_epoch
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())  # restored on end
    rows = list(csv.DictReader((tmp_path / "log.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"] and float(rows[0]["val_loss"]) > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.safetensors", "last.safetensors", "log.csv"]


def test_tensorboard_logger_is_optional(tmp_path: Path) -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="pip install tensorboard") as err:
            TensorBoardLogger(tmp_path)
        assert isinstance(err.value, ImportError) and isinstance(err.value, TrainingError)
        return
    Trainer(tiny(), device="cpu").fit(loader(), epochs=1, callbacks=[TensorBoardLogger(tmp_path)], progress=False)
    assert list(tmp_path.glob("events.out.tfevents.*"))


# -- datasets ---------------------------------------------------------------------------------------
def test_digits_split_is_fixed_stratified_and_disjoint() -> None:
    train, test = digits_split()
    assert len(train) == 1437 and len(test) == 360 and not set(train) & set(test)
    assert digits_split() == (train, test) and digits_split(seed=1) != (train, test)
    ds = DigitsDataset("test")
    counts = torch.bincount(ds.targets, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # ~36 of each digit


@pytest.mark.parametrize(("size", "channels"), [(16, 1), (32, 3), (72, 3)])
def test_digits_dataset_images(size: int, channels: int) -> None:
    ds = DigitsDataset("train", image_size=size, channels=channels, augment=True)
    x, y = ds[5]
    assert x.shape == (channels, size, size) and x.dtype == torch.float32 and 0 <= int(y) <= 9
    assert float(x.min()) >= -1.0 - 1e-6 and float(x.max()) <= 1.0 + 1e-6
    with pytest.raises(TrainingError, match=r"unknown split 'tset'.*did you mean 'test'"):
        DigitsDataset("tset")


def test_infer_input_reads_declared_shape_and_first_conv() -> None:
    model = tiny(in_ch=1)
    assert infer_input(model) == (1, None)
    model.input_shape = (3, 48, 48)
    assert infer_input(model) == (3, 48)


def _write_idx(path: Path, data: torch.Tensor, magic: int) -> None:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in data.shape)
    with gzip.open(path.with_suffix(".gz"), "wb") as fh:  # torchvision also reads the plain file
        fh.write(header + data.to(torch.uint8).numpy().tobytes())
    path.write_bytes(header + data.to(torch.uint8).numpy().tobytes())


def test_fit_mnist_reads_the_torchvision_layout_and_errors_without_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"MNIST was not found.*MNIST/raw/.*download=True") as err:
        fit_mnist(tiny(classes=10, in_ch=1), data_dir=tmp_path, epochs=1)
    assert isinstance(err.value, FileNotFoundError)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", 16), ("t10k", 8)):
        _write_idx(raw / f"{split}-images-idx3-ubyte", torch.randint(0, 256, (n, 28, 28), generator=g), 2051)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", torch.arange(n) % 10, 2049)
    shapes: list[tuple[int, ...]] = []
    model = tiny(classes=10, in_ch=1)
    model[0].register_forward_pre_hook(lambda m, a: shapes.append(tuple(a[0].shape)))
    metrics = fit_mnist(model, data_dir=tmp_path, epochs=1, batch_size=8, device="cpu", progress=False)
    assert len(metrics) == 1 and shapes[0] == (8, 1, 32, 32)  # the 2.x size: 32


def test_fit_folder_with_a_split_and_with_train_val_dirs(tmp_path: Path) -> None:
    from PIL import Image

    for root in (tmp_path / "flat", tmp_path / "tv" / "train", tmp_path / "tv" / "val"):
        for c, color in enumerate(((255, 0, 0), (0, 0, 255))):
            (root / f"class{c}").mkdir(parents=True)
            for i in range(5):
                Image.new("RGB", (20, 20), color).save(root / f"class{c}" / f"{i}.png")
    for path in (tmp_path / "flat", tmp_path / "tv"):
        metrics = fit_folder(tiny(classes=2), path, epochs=1, batch_size=4, image_size=16, device="cpu",
                             progress=False)
        assert len(metrics) == 1 and metrics.val_accs[0] is not None
    with pytest.raises(DatasetNotFoundError, match="image folder not found"):
        fit_folder(tiny(), tmp_path / "nope", epochs=1)
    with pytest.raises(TrainingError, match="Trainer options given with an existing Trainer"):
        fit_folder(Trainer(tiny(), device="cpu"), tmp_path / "flat", epochs=1, seed=3)


def test_quick_train_names_and_errors(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=r"unknown dataset 'cifar-1O'.*did you mean 'cifar10'"):
        quick_train(tiny(classes=10), dataset="cifar-1O")
    with pytest.raises(DatasetNotFoundError, match=r"CIFAR10 was not found.*cifar-10-batches-py"):
        quick_train(tiny(classes=10), dataset="cifar10", data_dir=tmp_path, device="cpu")


# -- loader sharding ----------------------------------------------------------------------------------
def test_distribute_loader_shards_training_and_evaluation() -> None:
    ctx = D.DistContext(world_size=2, rank=1, local_rank=1, backend="gloo")
    base = DataLoader(TensorDataset(torch.arange(11.0)), batch_size=2, shuffle=True)
    train = D.distribute_loader(base, ctx, train=True, seed=5)
    assert isinstance(train.sampler, DistributedSampler) and train.sampler.shuffle and len(train.sampler) == 6
    evaluation = D.distribute_loader(DataLoader(TensorDataset(torch.arange(11.0)), batch_size=4), ctx, train=False,
                                     seed=0)
    assert list(evaluation.sampler) == [1, 3, 5, 7, 9] and len(evaluation) == 2  # no padding
    assert D.distribute_loader(base, D.DistContext(), train=True, seed=0) is base
    custom = DataLoader(TensorDataset(torch.arange(4.0)), sampler=[0, 1, 2, 3])
    with pytest.raises(TrainingError, match="custom sampler"):
        D.distribute_loader(custom, ctx, train=True, seed=0)


def test_torchrun_environment_without_rendezvous_is_our_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    for key in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(TrainingError, match=r"rendezvous variables are missing.*torchrun"):
        Trainer(tiny(), device="cpu")
    assert Trainer(tiny(), device="cpu", distributed=False).dist.world_size == 1
