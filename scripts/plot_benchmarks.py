"""Bar chart of the benchmark ratios reported on the Performance page (``docs/img/benchmarks.png``).

The figures are the ones measured with the scripts in ``benchmarks/`` on a shared 2-core CPU, one
intra-op thread, interleaved repetitions and medians (see docs/performance.md for each setup).
They are typed in here, not re-measured: timing on a loaded machine is noisy, and the page says so.

    python scripts/plot_benchmarks.py [--out docs/img/benchmarks.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: label -> (low, high): one measured ratio (low == high) or the range over several measurements
TIME = {
    "blocks vs timm / torchvision\n(SE, ECA, CBAM, MBConv, bottleneck,\nConvNeXt block; eval and train)": (0.90, 1.09),
    "recipe ResNet-50 vs torchvision,\neval forward": (0.976, 0.976),
    "recipe ResNet-50 vs torchvision,\ntrain step": (0.880, 0.880),
    "partial_load vs load_state_dict\n(ResNet-152)": (1.125, 1.125),
}
THROUGHPUT = {"Trainer.fit vs a hand-written\nloop (images/s)": (0.92, 1.13)}
MEMORY = {"ours: meta-device build\n+ assign": 1.16, "torchvision:\nbuild, then load": 2.02}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "benchmarks.png")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.8), layout="constrained",
                             gridspec_kw={"width_ratios": [1.6, 1.0, 0.9]})

    def ratio_panel(ax, data: dict[str, tuple[float, float]], title: str, xlabel: str) -> None:
        labels = list(data)
        for i, label in enumerate(labels):
            low, high = data[label]
            if high > low:  # a range of measurements
                ax.barh(i, high - low, left=low, height=0.4, color="#9ecae1", edgecolor="#3182bd")
                ax.text(high + 0.01, i, f"{low:.2f}-{high:.2f}", va="center", fontsize=9)
            else:
                ax.plot([low], [i], "o", color="#3182bd")
                ax.text(low + 0.01, i, f"{low:.3f}", va="center", fontsize=9)
        ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_ylim(max(len(labels) - 0.5, 1.0), -0.5 if len(labels) > 1 else -1.0)
        ax.set_xlim(0.8, 1.3)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)

    ratio_panel(axes[0], TIME, "Time, ours / reference", "ratio of median times (< 1: ours faster)")
    ratio_panel(axes[1], THROUGHPUT, "Throughput, ours / reference", "ratio of images/s (> 1: ours faster)")

    ax = axes[2]
    names = list(MEMORY)
    ax.bar(names, [MEMORY[n] for n in names], color=["#3182bd", "#bdbdbd"], width=0.5)
    for i, n in enumerate(names):
        ax.text(i, MEMORY[n] + 0.04, f"{MEMORY[n]:.2f}x", ha="center", fontsize=9)
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_ylim(0, 2.4)
    ax.set_title("Peak memory: build ResNet-152\n+ load weights, / file size", fontsize=10)
    ax.tick_params(axis="x", labelsize=8)

    fig.suptitle("Measured on a shared 2-core CPU, 1 thread, interleaved medians: noisy, see the Performance page",
                 fontsize=10)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    plt.close(fig)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
