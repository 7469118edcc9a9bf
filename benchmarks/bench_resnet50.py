"""The recipe ResNet-50 against torchvision's ``resnet50`` and timm's ``resnet50``.

Eval forward and one SGD train step on an (8, 3, 224, 224) batch, interleaved repetitions,
medians; parameter counts are checked equal before timing. Prints ``ours/torchvision`` and
``ours/timm`` ratios (target: ours/torchvision <= 1.03 in both modes).

    OMP_NUM_THREADS=2 python benchmarks/bench_resnet50.py [--reps 7] [--batch 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import eval_fn, interleaved, param_count, train_fn

from torchvision_customizer.templates import Template


def models() -> dict[str, torch.nn.Module]:
    import timm
    import torchvision

    out = {"ours": Template.resnet(50).build(), "torchvision": torchvision.models.resnet50(weights=None)}
    out["timm"] = timm.create_model("resnet50", pretrained=False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    nets = models()
    counts = {k: param_count(m) for k, m in nets.items()}
    if len(set(counts.values())) != 1:
        raise SystemExit(f"parameter counts differ: {counts}")
    x = torch.randn(args.batch, 3, args.size, args.size)
    print(f"torch {torch.__version__}, torch.get_num_threads()={torch.get_num_threads()}, "
          f"input {tuple(x.shape)}, {args.reps} interleaved reps (+{args.warmup} warmup), medians; "
          f"{counts['ours']:,} parameters each", flush=True)
    for mode, make in (("eval", eval_fn), ("train", train_fn)):
        t = interleaved({k: make(m, x) for k, m in nets.items()}, reps=args.reps, warmup=args.warmup)
        print(f"{mode:5s}: ours {t['ours'] * 1e3:8.1f} ms | torchvision {t['torchvision'] * 1e3:8.1f} ms | "
              f"timm {t['timm'] * 1e3:8.1f} ms | ours/torchvision = {t['ours'] / t['torchvision']:.3f} | "
              f"ours/timm = {t['ours'] / t['timm']:.3f}", flush=True)


if __name__ == "__main__":
    main()
