"""Export functions: ONNX verified in onnxruntime at the asked opset, torch.export, TorchScript."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from torchvision_customizer.errors import ExportError
from torchvision_customizer.export import to_onnx, to_torch_export, to_torchscript


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 4))


@pytest.mark.parametrize("opset", [18, 20])
def test_onnx_at_the_requested_opset_runs_in_onnxruntime(tmp_path: Path, opset: int) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    result = to_onnx(_model(), tmp_path / "m.onnx", opset=opset, input_size=(1, 3, 16, 16), dynamic_batch=True)
    assert result.path.is_file() and result.max_abs_diff is not None and result.max_abs_diff <= 1e-4
    proto = onnx.load(str(result.path))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [opset]
    assert not list(tmp_path.glob(".m.onnx.*")), "temp file left behind"


@pytest.mark.parametrize("opset", [11, 17, "18", True])
def test_onnx_rejects_old_or_malformed_opsets(tmp_path: Path, opset: object) -> None:
    with pytest.raises(ExportError, match=r"opset.*>= 18.*got"):
        to_onnx(_model(), tmp_path / "m.onnx", opset=opset)  # type: ignore[arg-type]
    assert not (tmp_path / "m.onnx").exists()


def test_torch_export_program_round_trips_with_dynamic_batch(tmp_path: Path) -> None:
    model = _model().eval()
    result = to_torch_export(model, tmp_path / "m.pt2", input_size=(3, 16, 16), dynamic_batch=True)
    program = torch.export.load(str(result.path))
    x = torch.randn(5, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x))


def test_torchscript_trace(tmp_path: Path) -> None:
    model = _model().eval()
    result = to_torchscript(model, tmp_path / "m.ts", input_size=(1, 3, 16, 16))
    loaded = torch.jit.load(str(result.path))
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_directory_as_output_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="directory"):
        to_torchscript(_model(), tmp_path)
