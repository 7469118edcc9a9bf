"""Trainer overhead: images/s of ``Trainer.fit`` against a minimal hand-written PyTorch loop.

Same model (a small BatchNorm CNN), same data (scikit-learn's digits, 1,437 training images
upscaled to 32x32, three channels, shuffled), same batch size, same optimizer (SGD, momentum 0.9,
weight decay 5e-4, constant learning rate). One timed call is one epoch; the sides alternate
(interleaved repetitions, medians). ``Trainer.fit`` also does what a real run needs: loss and
accuracy bookkeeping, first-batch checks, the epoch record. Target: ratio >= 0.95.

The Trainer builds named optimizers with ``fused=True``; a third side, the same hand-written loop
with a fused SGD, shows the ratio with that advantage removed (the Trainer's own overhead).

    OMP_NUM_THREADS=1 python benchmarks/bench_trainer.py [--reps 7] [--threads 1] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True),
        nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
        nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from torchvision_customizer.train import Trainer, digits_loaders

    train, _ = digits_loaders(image_size=args.image_size, batch_size=args.batch_size)
    n_images = len(train.dataset)

    # the hand-written loop
    plain = make_model().train()
    opt = torch.optim.SGD(plain.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    criterion = nn.CrossEntropyLoss()

    def loop_epoch() -> None:
        for x, y in train:
            opt.zero_grad(set_to_none=True)
            loss = criterion(plain(x), y)
            loss.backward()
            opt.step()

    fused = make_model().train()
    fused_opt = torch.optim.SGD(fused.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, fused=True)

    def fused_loop_epoch() -> None:
        for x, y in train:
            fused_opt.zero_grad(set_to_none=True)
            loss = criterion(fused(x), y)
            loss.backward()
            fused_opt.step()

    # the Trainer: one fit() call per epoch (a new optimizer each call, as a user's run would have)
    trainer = Trainer(make_model(), device="cpu")

    def trainer_epoch() -> None:
        trainer.fit(train, epochs=1, lr=0.01, optimizer="sgd", scheduler=None, progress=False)

    t = interleaved({"Trainer.fit": trainer_epoch, "hand-written loop": loop_epoch,
                     "hand-written loop, fused SGD": fused_loop_epoch}, reps=args.reps, warmup=1)
    ours, ref = n_images / t["Trainer.fit"], n_images / t["hand-written loop"]
    ref_fused = n_images / t["hand-written loop, fused SGD"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {args.batch_size}, "
          f"{args.image_size}x{args.image_size}x3, {n_images} images/epoch, medians of {args.reps} epochs each")
    print(f"Trainer.fit        {ours:8.1f} images/s")
    print(f"hand-written loop  {ref:8.1f} images/s")
    print(f"hand-written loop, fused SGD  {ref_fused:8.1f} images/s")
    print(f"ratio Trainer/loop = {ours / ref:.3f} (target >= 0.95); Trainer/fused loop = {ours / ref_fused:.3f}")


if __name__ == "__main__":
    main()
