"""Weight loading: speed of partial_load and memory of build-and-load, against plain torch/torchvision.

(a) speed: ``partial_load`` of a ResNet-152 state dict into a model that differs by a wrapped stage
    (``layer4`` followed by a same-shape gate block of our own) and a new 10-class head, against
    ``model.load_state_dict(sd, strict=False)`` on the unmodified model. Interleaved repetitions,
    medians. Target: ratio <= 1.5.
(b) memory: in a fresh process, the growth of resident memory above the post-import baseline,
    measured after one forward pass, divided by the size of the weights file. Ours: build on the
    meta device and assign the tensors of a safetensors file (``build_and_load``), and the same
    through ``save_model``/``load_model``. Anchor: torchvision's own build-then-load
    (``resnet152(weights="DEFAULT")`` from a local ``$TORCH_HOME`` cache), about 2.0x. Target <= 1.3x.

    OMP_NUM_THREADS=1 python benchmarks/bench_weights.py [--reps 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved

ROOT = Path(__file__).resolve().parents[1]


class Gate(nn.Module):
    """A same-shape SE-like block (new tensors, zero-init gate): the wrapped stage's extra part."""

    def __init__(self, c: int, r: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // r, 1)
        self.fc2 = nn.Conv2d(c // r, c, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x + self.gamma * x * s


def speed(reps: int) -> float:
    import torchvision

    from torchvision_customizer.weights import partial_load

    torch.manual_seed(0)
    sd = {k: v.clone() for k, v in torchvision.models.resnet152().state_dict().items()}
    plain = torchvision.models.resnet152()
    patched = torchvision.models.resnet152(num_classes=10)
    patched.layer4 = nn.Sequential(*patched.layer4, Gate(2048))  # appends at index 3: no key renamed

    report = partial_load(patched, sd)
    print(f"  report: {len(report.loaded)} loaded, {len(report.missing)} missing (the gate), "
          f"{len(report.shape_mismatched)} shape-mismatched (the head), load_ratio {report.load_ratio:.3f}")
    t = interleaved({
        "partial_load": lambda: partial_load(patched, sd),
        "load_state_dict": lambda: plain.load_state_dict(sd, strict=False),
    }, reps=reps)
    ratio = t["partial_load"] / t["load_state_dict"]
    print(f"(a) partial_load(patched resnet152) / load_state_dict(resnet152, strict=False) = {ratio:.3f} "
          f"({t['partial_load'] * 1e3:.1f} ms vs {t['load_state_dict'] * 1e3:.1f} ms, medians of {reps}); "
          "target <= 1.5")
    return ratio


CHILD = r"""
import gc, json, os, sys, time
def rss():
    fields = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024
import torch, torchvision
torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
from torchvision_customizer.weights import build_and_load, load_model
mode, path = sys.argv[1], sys.argv[2]
gc.collect()
base, _ = rss()
t0 = time.perf_counter()
if mode == "ours":
    model = build_and_load(torchvision.models.resnet152, path)
elif mode == "ours_checkpoint":
    model = load_model(path)
else:
    model = torchvision.models.resnet152(weights="DEFAULT")
t_load = time.perf_counter() - t0
model.eval()
with torch.no_grad():
    model(torch.randn(1, 3, 224, 224))
gc.collect()
now, peak = rss()
print(json.dumps({"growth": now - base, "peak_growth": peak - base, "load_s": t_load}))
"""


def memory() -> dict[str, float]:
    import torchvision
    from safetensors.torch import save_file
    from torchvision.models import ResNet152_Weights

    from torchvision_customizer.weights import save_model

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model = torchvision.models.resnet152()
        st = Path(tmp) / "resnet152.safetensors"
        save_file(model.state_dict(), str(st))
        ckpt = save_model(model, Path(tmp) / "resnet152_tvc.safetensors")
        home = Path(tmp) / "torch_home"
        pth = home / "hub" / "checkpoints" / os.path.basename(ResNet152_Weights.DEFAULT.url)
        pth.parent.mkdir(parents=True)
        torch.save(model.state_dict(), pth)
        del model
        env = {**os.environ, "TORCH_HOME": str(home), "PYTHONPATH": str(ROOT),
               "BENCH_THREADS": str(torch.get_num_threads())}
        for mode, path in (("ours", st), ("ours_checkpoint", ckpt), ("torchvision", pth)):
            out = subprocess.run([sys.executable, "-c", CHILD, mode, str(path)], env=env, capture_output=True,
                                 text=True, check=False)
            if out.returncode:
                raise SystemExit(f"{mode} child failed:\n{out.stderr}")
            r = json.loads(out.stdout.strip().splitlines()[-1])
            size = path.stat().st_size
            ratio = r["growth"] / size
            results[mode] = ratio
            print(f"(b) {mode:16s} RSS growth after one forward / file size = {ratio:.2f}x "
                  f"(peak {r['peak_growth'] / size:.2f}x; {r['growth'] / 2**20:.0f} MiB over a "
                  f"{size / 2**20:.0f} MiB file; load {r['load_s']:.2f} s)")
    print("    target: ours <= 1.3x; anchor: torchvision build-then-load ~2.0x")
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", choices=["speed", "memory"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, reps={args.reps}, medians")
    if args.only in (None, "speed"):
        speed(args.reps)
    if args.only in (None, "memory"):
        memory()


if __name__ == "__main__":
    main()
