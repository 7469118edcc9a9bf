"""Resume after SIGKILL mid-epoch: bitwise equal to an uninterrupted run with the same seed.

The training script kills itself with SIGKILL from a callback right after the step checkpoint
at step 10 (inside epoch 2) was written; a second process resumes with ``resume=True``. The
uninterrupted reference runs in this process (same code, one thread, deterministic algorithms).
The run exercises what a resume must restore: AdamW state, a warmup+cosine schedule, gradient
accumulation with a short last group, gradient clipping, dropout and BatchNorm, random
augmentation drawn in the data loader, and a shuffled sampler.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import torch
from safetensors.torch import load_file

from torchvision_customizer.train import load_checkpoint

SCRIPT = textwrap.dedent('''
    import json, os, signal, sys
    from pathlib import Path

    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Dataset
    from safetensors.torch import save_file
    from torchvision_customizer.train import Callback, Trainer


    class NoisyShapes(Dataset):
        """Fixed images plus noise drawn from torch's global generator at load time (augmentation)."""

        def __init__(self, n, seed):
            g = torch.Generator().manual_seed(seed)
            self.y = torch.randint(0, 4, (n,), generator=g)
            self.x = torch.randn(n, 3, 10, 10, generator=g) * 0.5 + self.y.view(-1, 1, 1, 1) * 0.3

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            return self.x[i] + 0.2 * torch.randn(3, 10, 10), self.y[i]


    class KillAt(Callback):
        def __init__(self, step):
            self.step = step

        def on_step_end(self, trainer, step, loss):
            if step == self.step:
                os.kill(os.getpid(), signal.SIGKILL)


    def run(ckpt_dir, out_dir, kill_at=0):
        torch.set_num_threads(1)
        torch.manual_seed(1234)
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.2),
                              nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 4))
        loader = DataLoader(NoisyShapes(208, 0), batch_size=16, shuffle=True, num_workers=0)  # 13 batches
        val = DataLoader(NoisyShapes(64, 1), batch_size=64)
        trainer = Trainer(model, seed=7, deterministic=True)
        metrics = trainer.fit(loader, val, epochs=3, lr=3e-3, optimizer="adamw", scheduler="cosine",
                              warmup_epochs=1, grad_clip=1.0, accumulation_steps=2, checkpoint_dir=ckpt_dir,
                              checkpoint_every_n_steps=2, resume=True,
                              callbacks=[KillAt(kill_at)] if kill_at else [], progress=False)
        out = Path(out_dir)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "weights.safetensors"))
        (out / "result.json").write_text(json.dumps({
            "resumed_from_step": trainer.state.resumed_from_step, "steps_run": trainer.state.steps_run,
            "final_step": trainer.state.step, "metrics": metrics.to_dict()}))


    if __name__ == "__main__":
        run(sys.argv[1], sys.argv[2], int(sys.argv[3]))
''')

STEPS_PER_EPOCH = 7  # 13 batches, accumulation 2: six full groups and one short one
KILL_AT = 10


def _python(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=240,
                          env=env, check=False)


def test_sigkill_mid_epoch_then_resume_is_bitwise_equal(tmp_path: Path) -> None:
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)

    # 1. killed run: SIGKILL right after the step-10 checkpoint, in the middle of epoch 2
    ckpt_dir, out_dir = tmp_path / "ckpt", tmp_path / "out"
    out_dir.mkdir()
    killed = _python(script, str(ckpt_dir), str(out_dir), str(KILL_AT))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (out_dir / "result.json").exists()
    ckpt = load_checkpoint(ckpt_dir / "last.safetensors")
    assert ckpt["position"] == {"epoch": 1, "batch": 2 * (KILL_AT - STEPS_PER_EPOCH), "step": KILL_AT}
    assert [r["epoch"] for r in ckpt["metrics"]["records"]] == [1]
    assert not list(ckpt_dir.glob("*.tmp")) and not list(ckpt_dir.glob(".*.tmp"))

    # 2. resumed run
    resumed = _python(script, str(ckpt_dir), str(out_dir), "0")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads((out_dir / "result.json").read_text())
    total = 3 * STEPS_PER_EPOCH
    assert result["resumed_from_step"] == KILL_AT
    assert result["steps_run"] == total - KILL_AT
    assert result["final_step"] == total

    # 3. uninterrupted reference, in this process
    namespace: dict[str, object] = {"__name__": "train_script"}
    exec(compile(SCRIPT, str(script), "exec"), namespace)
    ref_ckpt, ref_out = tmp_path / "ref_ckpt", tmp_path / "ref_out"
    ref_out.mkdir()
    prev = torch.get_num_threads()
    try:
        namespace["run"](str(ref_ckpt), str(ref_out))  # type: ignore[operator]
    finally:
        torch.set_num_threads(prev)
    reference = json.loads((ref_out / "result.json").read_text())
    assert reference["resumed_from_step"] is None and reference["steps_run"] == total

    got, want = load_file(str(out_dir / "weights.safetensors")), load_file(str(ref_out / "weights.safetensors"))
    assert got.keys() == want.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key  # bitwise, buffers included
    # the metrics history is identical too (epoch times aside)
    strip = [{k: v for k, v in r.items() if k != "epoch_time"} for r in reference["metrics"]["records"]]
    assert [{k: v for k, v in r.items() if k != "epoch_time"} for r in result["metrics"]["records"]] == strip
