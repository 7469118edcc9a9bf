"""Export functions. Each verifies its artifact against eager PyTorch before reporting success."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ExportError

__all__ = ["MIN_OPSET", "ExportResult", "to_onnx", "to_torch_export", "to_torchscript"]

MIN_OPSET = 18
_PROTOBUF_LIMIT = 1_800_000_000  # bytes; larger models keep their weights in a side file (<name>.data)


def _param_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


@dataclass
class ExportResult:
    """What was written and how it was checked."""

    path: Path
    format: str
    input_size: tuple[int, ...]
    opset: int | None = None
    max_abs_diff: float | None = None
    dynamic_batch: bool = False
    details: dict[str, Any] = field(default_factory=dict)


def _example(model: nn.Module, input_size: tuple[int, ...] | None, batch: int = 1) -> torch.Tensor:
    if input_size is None:
        shape = getattr(model, "input_shape", None) or (3, 224, 224)
        input_size = (batch, *shape)
    input_size = tuple(input_size)
    if len(input_size) == 3:
        input_size = (batch, *input_size)
    try:
        param = next(model.parameters())
        device, dtype = param.device, param.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    return torch.randn(*input_size, device=device, dtype=dtype)


def _publish(tmp: Path, final: Path) -> None:
    """Move the verified temp file into place with the usual permissions (mkstemp makes it 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, final)


def _atomic_target(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    final = Path(path)
    if final.is_dir():
        raise ExportError("the output path is a directory", where=str(final), expected="a file path", got=str(final))
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    return final, Path(tmp)


def to_onnx(model: nn.Module, path: str | os.PathLike[str], *, opset: int = MIN_OPSET,
            input_size: tuple[int, ...] | None = None, dynamic_batch: bool = False, atol: float = 1e-4,
            verify: bool = True) -> ExportResult:
    """Export to ONNX at ``opset`` (>= 18), check the file, and compare onnxruntime with eager.

    The file's ``opset_import`` is read back and must equal ``opset``; ``onnx.checker`` must pass;
    onnxruntime's output must match eager within ``atol``. Otherwise :class:`ExportError`.
    """
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < MIN_OPSET:
        raise ExportError("unsupported ONNX opset", where="opset", expected=f"an integer >= {MIN_OPSET}", got=opset,
                          hint="the exporter in torch 2.x targets opset 18 and newer")
    try:
        import onnx
    except ImportError:
        raise ExportError("ONNX export needs the 'onnx' package", expected="onnx installed",
                          hint='pip install "torchvision-customizer[export]"') from None
    model = model.eval()
    x = _example(model, input_size)
    final, tmp = _atomic_target(path)
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None
    if dynamic_batch and x.shape[0] < 2:
        x = torch.cat([x, x], 0)  # a batch of 1 would be specialized to a constant
    try:
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            expected = model(x)
            # the torch.export-based exporter (the supported one since torch 2.9)
            torch.onnx.export(model, (x,), str(tmp), opset_version=opset, dynamo=True, input_names=["input"],
                              output_names=["output"], dynamic_shapes=dynamic_shapes, verbose=False,
                              external_data=_param_bytes(model) > _PROTOBUF_LIMIT)
        proto = onnx.load(str(tmp))
        onnx.checker.check_model(proto)
        got_opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
        if got_opset != opset:
            raise ExportError("the written ONNX file has a different opset than asked", where=str(final),
                              expected=f"opset {opset}", got=got_opset)
        diff = None
        if verify:
            diff = _compare_onnxruntime(tmp, x, expected, atol, final)
            if dynamic_batch:
                x2 = torch.cat([x, x], 0)
                with torch.no_grad():
                    _compare_onnxruntime(tmp, x2, model(x2), atol, final)
        _publish(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(final, "onnx", tuple(x.shape), opset=opset, max_abs_diff=diff, dynamic_batch=dynamic_batch)


def _compare_onnxruntime(file: Path, x: torch.Tensor, expected: torch.Tensor, atol: float, where: Path) -> float:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError("verifying ONNX needs 'onnxruntime'", expected="onnxruntime installed",
                          hint='pip install "torchvision-customizer[export]" or pass verify=False') from None
    sess = ort.InferenceSession(str(file), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {"input": x.detach().cpu().float().numpy()})
    diff = (torch.from_numpy(out) - expected.detach().cpu().float()).abs().max().item()
    if not diff <= atol:
        raise ExportError("onnxruntime output differs from PyTorch", where=str(where), expected=f"max |diff| <= {atol}",
                          got=diff)
    return diff


def to_torch_export(model: nn.Module, path: str | os.PathLike[str], *, input_size: tuple[int, ...] | None = None,
                    dynamic_batch: bool = False, atol: float = 1e-5) -> ExportResult:
    """Write a ``torch.export`` program (``.pt2``), reload it and compare with eager."""
    model = model.eval()
    x = _example(model, input_size, batch=2 if dynamic_batch else 1)
    if dynamic_batch and x.shape[0] < 2:
        x = torch.cat([x, x], 0)  # a batch of 1 would be specialized to a constant
    final, tmp = _atomic_target(path)
    dynamic_shapes = None
    if dynamic_batch:
        dynamic_shapes = {_forward_arg_name(model): {0: torch.export.Dim("batch", min=1, max=1024)}}
    try:
        with torch.no_grad():
            expected = model(x)
            program = torch.export.export(model, (x,), dynamic_shapes=dynamic_shapes)
            torch.export.save(program, str(tmp))
            loaded = torch.export.load(str(tmp))
            diff = (loaded.module()(x) - expected).abs().max().item()
        if not diff <= atol:
            raise ExportError("the exported program differs from eager", where=str(final),
                              expected=f"max |diff| <= {atol}", got=diff)
        _publish(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(final, "export", tuple(x.shape), max_abs_diff=diff, dynamic_batch=dynamic_batch)


def _forward_arg_name(model: nn.Module) -> str:
    import inspect

    params = [p for p in inspect.signature(model.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return params[0].name if params else "x"


def to_torchscript(model: nn.Module, path: str | os.PathLike[str], *, input_size: tuple[int, ...] | None = None,
                   atol: float = 1e-5) -> ExportResult:
    """Best-effort TorchScript via ``torch.jit.trace`` (TorchScript is deprecated in torch 2.x)."""
    import warnings

    model = model.eval()
    x = _example(model, input_size)
    final, tmp = _atomic_target(path)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            expected = model(x)
            traced = torch.jit.trace(model, (x,))
            traced.save(str(tmp))
            loaded = torch.jit.load(str(tmp))
            diff = (loaded(x) - expected).abs().max().item()
        if not diff <= atol:
            raise ExportError("the traced TorchScript module differs from eager", where=str(final),
                              expected=f"max |diff| <= {atol}", got=diff)
        _publish(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportResult(final, "torchscript", tuple(x.shape), max_abs_diff=diff)
