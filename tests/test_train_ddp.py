"""Multi-process training through torchrun: 2 CPU processes, gloo, DistributedDataParallel.

A GroupNorm model (no batch statistics), no dropout, no augmentation, 20 SGD steps with a
per-process batch of 8: the weights must equal a plain single-process loop over the same global
batches of 16 within 1e-5. The ranks report that the model was wrapped in DDP, that each saw a
disjoint half of the samples, and that the epoch metrics were averaged over both.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import DataLoader

from torchvision_customizer.errors import TrainingError
from torchvision_customizer.train import Trainer, convert_sync_batchnorm, load_checkpoint

SCRIPT = textwrap.dedent('''
    import json, os, sys
    from pathlib import Path

    import torch
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data import DataLoader, Dataset
    from safetensors.torch import save_file
    from torchvision_customizer.train import Trainer


    class Recorded(Dataset):
        def __init__(self, n, seed):
            g = torch.Generator().manual_seed(seed)
            self.x = torch.randn(n, 3, 8, 8, generator=g)
            self.y = torch.randint(0, 5, (n,), generator=g)
            self.seen = []

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            self.seen.append(int(i))
            return self.x[i], self.y[i]


    def make_model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GroupNorm(2, 8), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))


    if __name__ == "__main__":
        torch.set_num_threads(1)
        out = Path(sys.argv[1])
        train, val = Recorded(320, 0), Recorded(51, 1)
        model = make_model()
        trainer = Trainer(model, seed=0)
        metrics = trainer.fit(DataLoader(train, batch_size=8), DataLoader(val, batch_size=16), epochs=1, lr=0.05,
                              optimizer="sgd", scheduler=None, checkpoint_dir=out / "ckpt", progress=True)
        rank = trainer.dist.rank
        (out / f"rank{rank}.json").write_text(json.dumps({
            "ddp": isinstance(trainer.train_module, DistributedDataParallel),
            "world_size": trainer.dist.world_size, "backend": trainer.dist.backend,
            "train_seen": sorted(train.seen), "samples_seen": trainer.state.samples_seen,
            "steps": trainer.state.step, "metrics": metrics.to_dict()}))
        if rank == 0:
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "weights.safetensors"))
''')


def _reference(namespace: dict[str, object]) -> tuple[nn.Module, float, float, float]:
    """Plain single-process SGD over global batches of 16; returns model, mean train loss, val loss/acc."""
    train, val = namespace["Recorded"](320, 0), namespace["Recorded"](51, 1)  # type: ignore[operator]
    model = namespace["make_model"]()  # type: ignore[operator]
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loss_sum = 0.0
    for x, y in DataLoader(train, batch_size=16):
        loss = nn.functional.cross_entropy(model(x), y)
        loss_sum += float(loss.detach()) * len(y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model(val.x)
    correct = int((out.argmax(1) == val.y).sum())
    return model, loss_sum / 320, float(nn.functional.cross_entropy(out, val.y)), correct / 51


@pytest.mark.slow
def test_torchrun_two_cpu_processes_match_single_process(tmp_path: Path) -> None:
    script = tmp_path / "ddp_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(tmp_path)], capture_output=True, text=True, timeout=120, env=env,
                          check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]

    for r in ranks:
        assert r["ddp"] and r["world_size"] == 2 and r["backend"] == "gloo"
        assert r["steps"] == 20 and r["samples_seen"] == 160
    seen0, seen1 = set(ranks[0]["train_seen"]), set(ranks[1]["train_seen"])
    assert len(seen0) == len(seen1) == 160 and not seen0 & seen1 and seen0 | seen1 == set(range(320))
    # metrics are averaged over the ranks, so both report the same numbers
    rec0, rec1 = ranks[0]["metrics"]["records"][0], ranks[1]["metrics"]["records"][0]
    assert {k: v for k, v in rec0.items() if k != "epoch_time"} == {k: v for k, v in rec1.items() if k != "epoch_time"}
    # logging and checkpoints on rank 0 only; the checkpoint holds both ranks' RNG states
    assert (proc.stdout + proc.stderr).count("epoch 1/1") == 1
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["last.safetensors"]
    assert set(load_checkpoint(tmp_path / "ckpt" / "last.safetensors")["ranks"]) == {"0", "1"}

    namespace: dict[str, object] = {"__name__": "ddp_script"}
    exec(compile(SCRIPT, str(script), "exec"), namespace)
    model, train_loss, val_loss, val_acc = _reference(namespace)
    got = load_file(str(tmp_path / "weights.safetensors"))
    for key, want in model.state_dict().items():
        torch.testing.assert_close(got[key], want, atol=1e-5, rtol=0, msg=key)
    assert abs(rec0["train_loss"] - train_loss) < 1e-5
    assert abs(rec0["val_loss"] - val_loss) < 1e-5 and abs(rec0["val_acc"] - val_acc) < 1e-9


def test_sync_bn_converts_and_cpu_run_gives_our_error() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    model[1].running_mean.fill_(0.5)
    converted = convert_sync_batchnorm(model)
    assert isinstance(converted[1], nn.SyncBatchNorm)
    assert not any(type(m) is nn.BatchNorm2d for m in converted.modules())
    assert torch.equal(converted[1].running_mean, torch.full((4,), 0.5))
    with pytest.raises(TrainingError, match="sync_bn=True needs CUDA") as err:
        Trainer(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)), device="cpu", sync_bn=True)
    assert "SyncBatchNorm on the CPU" in str(err.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA-only path: SyncBatchNorm runs on GPUs")
def test_sync_bn_on_cuda_trains() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 2))
    trainer = Trainer(model, device="cuda", sync_bn=True)
    assert any(isinstance(m, nn.SyncBatchNorm) for m in trainer.model.modules())
    data = torch.utils.data.TensorDataset(torch.randn(16, 3, 8, 8), torch.randint(0, 2, (16,)))
    metrics = trainer.fit(DataLoader(data, batch_size=8), epochs=1, progress=False)
    assert len(metrics) == 1
