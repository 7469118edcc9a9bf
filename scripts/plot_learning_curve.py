"""Train the digits example exactly as ``tvc train`` does and draw its learning curve.

Writes ``docs/img/digits_curve.png`` through ``TrainingMetrics.plot`` (one CPU thread, seed 0; about
15 seconds). Run from the repository root::

    OMP_NUM_THREADS=1 python scripts/plot_learning_curve.py [--recipe examples/digits_resnet_se.yaml] [--out ...]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", type=Path, default=ROOT / "examples" / "digits_resnet_se.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "digits_curve.png")
    args = parser.parse_args()

    os.environ.setdefault("MPLBACKEND", "Agg")
    import torch

    from torchvision_customizer import api
    from torchvision_customizer.train import Trainer

    torch.set_num_threads(1)
    section = api.training_section(args.recipe)  # the recipe's training: section, as tvc train reads it
    dataset = section.pop("data", None) or "digits"
    model = api.load(args.recipe)
    trainer = Trainer(model, device="cpu", seed=0)
    metrics, _ = api.run_training(trainer, dataset, progress=False,
                                  **{k: v for k, v in section.items() if v is not None})
    print(metrics.summary())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(f"wrote {metrics.plot(args.out)}")


if __name__ == "__main__":
    main()
