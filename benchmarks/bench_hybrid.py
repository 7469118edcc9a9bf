"""HybridBuilder: build time, build memory and the forward cost of a patched model.

(a) build time: ``HybridBuilder().from_torchvision("resnet50", weights=<local file>, patches=<2 wraps>)``
    against ``torchvision.models.resnet50(weights="IMAGENET1K_V2")`` reading the same file from a
    local ``$TORCH_HOME`` cache. Interleaved repetitions, medians. Target: ratio <= 1.2.
(b) memory: in a fresh process, the growth of resident memory above the post-import baseline after
    the build and one forward pass (so every page is touched), divided by the weights file size.
    Target <= 1.3x (the builder assigns the file's tensors to a meta-device model instead of
    allocating random weights first); torchvision's build-then-load is the anchor.
(c) forward: a ResNet-50 with SE wrapped into every bottleneck (``layer*.*.bn3``, reduction 16), whose
    parameter count equals timm's ``seresnet50`` (checked before timing), against ``seresnet50``.
    Eval forward, interleaved medians. Target: ratio <= 1.05. Measured with ``preserve=False`` (the
    plain block, exactly timm's parameter count) and ``preserve=True`` (+1 gate per block).

    OMP_NUM_THREADS=1 python benchmarks/bench_hybrid.py [--reps 7] [--threads 1] [--only build|memory|forward]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import eval_fn, interleaved, param_count

ROOT = Path(__file__).resolve().parents[1]
PATCHES = {"layer4": {"wrap": "se"}, "layer3": {"wrap": "cbam_block"}}


def _seed_files(tmp: Path) -> tuple[Path, Path]:
    """A seeded resnet50 state dict in a temp TORCH_HOME cache (.pth) and as .safetensors."""
    import torchvision
    from safetensors.torch import save_file
    from torchvision.models import ResNet50_Weights

    torch.manual_seed(0)
    sd = torchvision.models.resnet50().state_dict()
    pth = tmp / "hub" / "checkpoints" / os.path.basename(ResNet50_Weights.IMAGENET1K_V2.url)
    pth.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, pth)
    st = tmp / "resnet50.safetensors"
    save_file(sd, str(st))
    return pth, st


def build(reps: int) -> float:
    import torchvision

    from torchvision_customizer.hybrid import HybridBuilder

    with tempfile.TemporaryDirectory() as tmp:
        pth, _ = _seed_files(Path(tmp))
        os.environ["TORCH_HOME"] = tmp
        t = interleaved({
            "hybrid": lambda: HybridBuilder().from_torchvision("resnet50", weights=str(pth), patches=PATCHES),
            "torchvision": lambda: torchvision.models.resnet50(weights="IMAGENET1K_V2"),
        }, reps=reps, warmup=1)
    ratio = t["hybrid"] / t["torchvision"]
    print(f"(a) build: from_torchvision(resnet50, local file, 2 wraps) / torchvision.resnet50(weights=...) = "
          f"{ratio:.2f} ({t['hybrid'] * 1e3:.0f} ms vs {t['torchvision'] * 1e3:.0f} ms, medians of {reps}); "
          "target <= 1.2")
    return ratio


CHILD = r"""
import ctypes, gc, json, os, sys, time
def rss():
    fields = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
    return int(fields["VmRSS"].split()[0]) * 1024
def reset_peak():  # VmHWM := VmRSS (Linux >= 4.0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
def peak():
    fields = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
    return int(fields["VmHWM"].split()[0]) * 1024
import torch, torchvision
torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
from torchvision_customizer.hybrid import HybridBuilder
mode, path = sys.argv[1], sys.argv[2]
patches = json.loads(sys.argv[3])
# load lazily imported code once (block registry, weights package), so the baseline includes it
HybridBuilder().from_torchvision("resnet18", weights=None, patches=patches)
torchvision.models.resnet18()
gc.collect()
ctypes.CDLL("libc.so.6").malloc_trim(0)
base = rss()
reset_peak()
t0 = time.perf_counter()
if mode == "torchvision":
    model = torchvision.models.resnet50(weights="IMAGENET1K_V2")
else:
    model = HybridBuilder().from_torchvision("resnet50", weights=path, patches=patches)
t_build = time.perf_counter() - t0
gc.collect()
built, build_peak = rss(), peak()
model.eval()
with torch.no_grad():
    model(torch.randn(1, 3, 224, 224))
gc.collect()
print(json.dumps({"built": built - base, "build_peak": build_peak - base, "after_forward": rss() - base,
                  "build_s": t_build}))
"""


def memory() -> dict[str, float]:
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pth, st = _seed_files(Path(tmp))
        env = {**os.environ, "TORCH_HOME": tmp, "PYTHONPATH": str(ROOT), "BENCH_THREADS": str(torch.get_num_threads())}
        for mode, path in (("hybrid .pth", pth), ("hybrid .safetensors", st), ("torchvision", pth)):
            out = subprocess.run([sys.executable, "-c", CHILD, mode.split()[0], str(path), json.dumps(PATCHES)],
                                 env=env, capture_output=True, text=True, check=False)
            if out.returncode:
                raise SystemExit(f"{mode} child failed:\n{out.stderr}")
            r = json.loads(out.stdout.strip().splitlines()[-1])
            size = path.stat().st_size
            results[mode] = r["build_peak"] / size
            print(f"(b) {mode:20s} peak RSS growth during the build / file size = {r['build_peak'] / size:.2f}x; "
                  f"after the build {r['built'] / size:.2f}x; after one forward {r['after_forward'] / size:.2f}x "
                  f"({size / 2**20:.0f} MiB file; build {r['build_s']:.2f} s)")
    print("    target: hybrid peak <= 1.3x; anchor: torchvision build-then-load. The 'after one forward' figure "
          "also holds the allocator's cached activation memory (tens of MiB at 224 px), the same for both.")
    return results


def paired_ratio(a: object, b: object, reps: int, warmup: int = 2) -> tuple[float, float, float]:
    """Median over repetitions of time(a) / time(b), a and b run back to back (order alternating), so
    a slow period on a shared machine hits both sides of each ratio. Returns (ratio, median a, median b)."""
    import statistics
    import time

    for _ in range(warmup):
        a(), b()
    ratios, ta, tb = [], [], []
    for i in range(reps):
        pair = {}
        for name, fn in ((("a", a), ("b", b)) if i % 2 == 0 else (("b", b), ("a", a))):
            t0 = time.perf_counter()
            fn()
            pair[name] = time.perf_counter() - t0
        ratios.append(pair["a"] / pair["b"])
        ta.append(pair["a"])
        tb.append(pair["b"])
    return statistics.median(ratios), statistics.median(ta), statistics.median(tb)


def forward(reps: int, batch: int) -> dict[str, float]:
    import timm

    from torchvision_customizer.hybrid import HybridBuilder

    x = torch.randn(batch, 3, 224, 224)
    ref = timm.create_model("seresnet50")
    out: dict[str, float] = {}
    for preserve in (False, True):
        torch.manual_seed(0)
        ours = HybridBuilder().from_torchvision("resnet50", weights=None, patches={"layer*.*.bn3": {"wrap": "se"}},
                                                preserve=preserve)
        n_ours, n_timm = param_count(ours), param_count(ref)
        extra = 16 if preserve else 0  # one zero-initialized gate per bottleneck
        if n_ours != n_timm + extra:
            raise SystemExit(f"parameter counts differ: ours {n_ours:,} vs timm seresnet50 {n_timm:,}")
        ratio, t_ours, t_timm = paired_ratio(eval_fn(ours, x), eval_fn(ref, x), reps)
        out[f"preserve={preserve}"] = ratio
        print(f"(c) forward: resnet50 + SE in every bottleneck (preserve={preserve}, {n_ours:,} params) / "
              f"timm seresnet50 ({n_timm:,}) = {ratio:.3f} (median of {reps} back-to-back ratios; medians "
              f"{t_ours * 1e3:.0f} ms vs {t_timm * 1e3:.0f} ms, batch {batch}); target <= 1.05")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--only", choices=["build", "memory", "forward"])
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, reps={args.reps}, medians")
    if args.only in (None, "build"):
        build(args.reps)
    if args.only in (None, "memory"):
        memory()
    if args.only in (None, "forward"):
        forward(args.reps, args.batch)


if __name__ == "__main__":
    main()
