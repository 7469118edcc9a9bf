"""Blocks against their timm / torchvision equivalents: eval forward and one train step.

Same input shapes, same parameter counts (checked before timing), interleaved repetitions,
medians. Prints ``block shape mode: ours/anchor ratio``. Target: every ratio <= 1.05.

    OMP_NUM_THREADS=2 python benchmarks/bench_blocks.py [--reps 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import eval_fn, interleaved, param_count, train_fn

from torchvision_customizer import registry


def pairs(c: int) -> dict[str, Callable[[], tuple[nn.Module, nn.Module, str]]]:
    """name -> factory of (ours, anchor, anchor description), built only when selected."""
    import timm.layers as tl
    from timm.layers.cbam import CbamModule
    from torchvision.models.convnext import CNBlock
    from torchvision.models.efficientnet import MBConv as TvMBConv
    from torchvision.models.efficientnet import MBConvConfig
    from torchvision.models.resnet import Bottleneck

    ln = functools.partial(nn.LayerNorm, eps=1e-6)
    return {
        "se": lambda: (registry.create("se", c), tl.SEModule(c), "timm SEModule"),
        "eca": lambda: (registry.create("eca", c), tl.EcaModule(channels=c), "timm EcaModule"),
        "cbam_block": lambda: (registry.create("cbam_block", c), CbamModule(c), "timm CbamModule"),
        "mbconv": lambda: (registry.create("mbconv", c, c, expand_ratio=4.0, kernel_size=3),
                           TvMBConv(MBConvConfig(4, 3, 1, c, c, 1), 0.0, nn.BatchNorm2d), "torchvision MBConv"),
        "bottleneck": lambda: (registry.create("bottleneck", c, c), Bottleneck(c, c // 4), "torchvision Bottleneck"),
        "convnext_block": lambda: (registry.create("convnext_block", c), CNBlock(c, 1e-6, 0.0, ln),
                                   "torchvision CNBlock"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, reps={args.reps}, medians")
    worst = 0.0
    for shape in [(8, 256, 56, 56), (8, 2048, 7, 7)]:
        x = torch.randn(*shape)
        for name, factory in pairs(shape[1]).items():
            if args.only and name not in args.only:
                continue
            ours, anchor, anchor_name = factory()
            n_ours, n_anchor = param_count(ours), param_count(anchor)
            if n_ours != n_anchor:
                raise SystemExit(f"{name}: parameter counts differ: ours {n_ours} vs {anchor_name} {n_anchor}")
            for mode, make in (("eval", eval_fn), ("train", train_fn)):
                t = interleaved({"ours": make(ours, x), "anchor": make(anchor, x)}, reps=args.reps)
                ratio = t["ours"] / t["anchor"]
                worst = max(worst, ratio)
                print(f"{name:15s} {shape!s:18s} {mode:5s}: ours/{anchor_name} = {ratio:.3f} "
                      f"({t['ours'] * 1e3:.1f} ms vs {t['anchor'] * 1e3:.1f} ms, {n_ours} params)", flush=True)
    print(f"worst ratio: {worst:.3f}")


if __name__ == "__main__":
    main()
