"""Every ``tvc`` command, in-process through typer's runner, on the shipped examples and on broken input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from torchvision_customizer.cli import app

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
DIGITS = ROOT / "examples" / "digits_resnet_se.yaml"
runner = CliRunner()


def invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, [str(a) for a in args], terminal_width=200)


def test_examples_are_collected() -> None:
    assert len(EXAMPLES) >= 2 and DIGITS in EXAMPLES


@pytest.mark.parametrize("recipe", EXAMPLES, ids=lambda p: p.name)
def test_every_example_validates_builds_and_explains(recipe: Path, tmp_path: Path) -> None:
    result = invoke("validate", recipe)
    assert result.exit_code == 0, result.output
    assert "valid:" in result.stdout
    result = invoke("build", recipe, "-o", tmp_path / "m.safetensors")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.safetensors").is_file() and "parameters" in result.stdout
    result = invoke("explain", "--yaml", recipe)
    assert result.exit_code == 0, result.output
    assert "params" in result.stdout


def test_validate_reports_every_problem_with_location(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nstem: conv(64)\nstagess:\n  - residual(64) x 2\nhead: linear(10)\n")
    result = invoke("validate", bad)
    assert result.exit_code == 1
    assert "stagess" in result.output and "did you mean 'stages'" in result.output
    assert "bad.yaml:3" in result.output  # the line of the bad key


def test_build_checkpoint_reloads_to_equal_tensors(tmp_path: Path) -> None:
    from torchvision_customizer.weights import load_model

    out = tmp_path / "digits.safetensors"
    assert invoke("build", DIGITS, "-o", out).exit_code == 0
    reloaded = load_model(out)
    result = invoke("info", out)
    assert result.exit_code == 0, result.output
    assert "79,970" in result.stdout
    again = load_model(out)
    for (k, a), (k2, b) in zip(reloaded.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(a, b)


@pytest.mark.parametrize("fmt", ["onnx", "export", "torchscript", "safetensors", "pt"])
def test_export_formats(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"m.{fmt}"
    result = invoke("export", DIGITS, "-o", out, "--format", fmt, "--dynamic-batch")
    assert result.exit_code == 0, result.output
    assert out.is_file() and out.stat().st_size > 10_000
    if fmt == "onnx":
        import onnx
        import onnxruntime as ort

        proto = onnx.load(str(out))
        assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [18]
        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        (y,) = sess.run(None, {"input": np.zeros((3, 3, 16, 16), dtype=np.float32)})
        assert y.shape == (3, 10)
    if fmt == "pt":
        payload = torch.load(out, weights_only=True)
        assert "state_dict" in payload


def test_export_rejects_an_old_opset(tmp_path: Path) -> None:
    result = invoke("export", DIGITS, "-o", tmp_path / "m.onnx", "--opset", "11")
    assert result.exit_code == 1
    assert not (tmp_path / "m.onnx").exists()


def test_benchmark_json_with_comparison() -> None:
    result = invoke("benchmark", DIGITS, "--iterations", "3", "--warmup", "1", "--compare", "resnet18", "--json",
                    "--input-size", "32")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"model", "resnet18", "ratio_p50"}
    lat = data["model"]["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
    assert data["model"]["params"] == 79_970 and data["resnet18"]["params"] == 11_689_512


def test_benchmark_table_and_unknown_compare() -> None:
    result = invoke("benchmark", DIGITS, "--iterations", "2", "--warmup", "0")
    assert result.exit_code == 0 and "p50" in result.stdout
    result = invoke("benchmark", DIGITS, "--iterations", "2", "--compare", "resnet19")
    assert result.exit_code == 1


@pytest.mark.slow
def test_main_job_trains_digits_to_95_percent_and_predicts(tmp_path: Path) -> None:
    from PIL import Image
    from sklearn.datasets import load_digits

    out = tmp_path / "run"
    result = invoke("train", DIGITS, "--output", out, "--no-progress")
    assert result.exit_code == 0, result.output
    for name in ("model.safetensors", "metrics.csv", "metrics.json", "curve.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best_val_acc"] >= 0.95
    digits = load_digits()
    images = []
    for i in range(len(digits.target) - 20, len(digits.target)):  # any real digits
        path = tmp_path / f"d{i}_{digits.target[i]}.png"
        Image.fromarray((digits.images[i] * 255 / 16).astype(np.uint8)).save(path)
        images.append(path)
    result = invoke("predict", out / "model.safetensors", *images, "-k", "1")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if ": " in line]
    correct = sum(line.split(": ")[1].split(":")[0] == line.split("_")[-1].split(".")[0] for line in lines)
    assert len(lines) == 20 and correct >= 17


def test_listings_and_create_recipe(tmp_path: Path) -> None:
    result = invoke("list-templates")
    assert result.exit_code == 0 and "resnet50" in result.stdout
    out = tmp_path / "r18.yaml"
    result = invoke("create-recipe", "--template", "resnet18", "-o", out, "--num-classes", "7")
    assert result.exit_code == 0, result.output
    assert invoke("validate", out).exit_code == 0
    result = invoke("create-recipe", "--template", "resnet19", "-o", tmp_path / "x.yaml")
    assert result.exit_code == 1
    result = invoke("list-backbones", "--filter", "resnet*")
    assert result.exit_code == 0 and "resnet50" in result.stdout and "vgg16" not in result.stdout


def test_errors_are_one_line_with_exit_codes(tmp_path: Path) -> None:
    result = invoke("info", tmp_path / "missing.yaml")
    assert result.exit_code == 1
    assert invoke("no-such-command").exit_code == 2
    assert invoke("build").exit_code == 2  # no recipe given


@pytest.mark.skipif(shutil.which("tvc") is None, reason="the package is not installed as a script")
def test_installed_script_validates_an_example() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(["tvc", "validate", str(DIGITS)], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and "valid" in out.stdout
    out = subprocess.run(["tvc", "info", "nope.yaml"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 1 and "Traceback" not in out.stderr and "nope.yaml" in out.stderr
