"""Export a model: ONNX (verified in onnxruntime), ``torch.export`` programs, TorchScript (trace).

Example:
    >>> import torch
    >>> from torchvision_customizer.export import to_onnx
    >>> result = to_onnx(torch.nn.Conv2d(3, 8, 3), "conv.onnx", input_size=(1, 3, 32, 32))  # doctest: +SKIP
    >>> result.opset, result.max_abs_diff < 1e-4  # doctest: +SKIP
    (18, True)
"""

from .api import ExportResult, to_onnx, to_torch_export, to_torchscript

__all__ = ["ExportResult", "to_onnx", "to_torch_export", "to_torchscript"]
