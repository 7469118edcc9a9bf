"""Reading state dicts from files, safely.

``.safetensors`` files are read with :func:`safetensors.torch.load_file` (no code can run);
``.pt``/``.pth``/``.bin``/``.ckpt`` files with ``torch.load(..., weights_only=True)``, passed
explicitly so that ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` cannot turn the unpickler back into the
unsafe one (torch lets that variable override only a call that leaves ``weights_only`` unset).
A file with another suffix is recognised by its first bytes.

Every failure is a :class:`WeightLoadingError` naming the path.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import WeightLoadingError

__all__ = ["CHECKPOINT_WRAPPER_KEYS", "load_state_dict_file", "unwrap_checkpoint"]

#: A checkpoint dict holding one of these keys (first found wins) is unwrapped to its value.
CHECKPOINT_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")

_SAFETENSORS_SUFFIXES = (".safetensors",)
_TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".tar")

# what torch.load / the weights-only unpickler raise on a bad or unsafe file
_TORCH_LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, KeyError,
                      AttributeError, ImportError, IndexError, TypeError, zipfile.BadZipFile)


def unwrap_checkpoint(obj: Any) -> Any:
    """Return ``obj['state_dict']`` / ``obj['model_state_dict']`` / ``obj['model']`` when ``obj`` is
    a training checkpoint dict holding a state dict under that key; otherwise ``obj`` itself."""
    if isinstance(obj, Mapping):
        for key in CHECKPOINT_WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and not isinstance(inner, torch.Tensor):
                return inner
    return obj


def _check_path(path: Any, what: str = "weights file") -> Path:
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise WeightLoadingError(f"a {what} path must be a str or os.PathLike",
                                 expected="a path such as 'weights.safetensors'", got=type(path).__name__)
    p = Path(path).expanduser()
    if not p.exists():
        parent = p.parent
        hint = (f"the folder {str(parent)!r} does not exist" if not parent.exists()
                else "check the file name; files there: "
                + ", ".join(sorted(c.name for c in parent.iterdir())[:8]))
        raise WeightLoadingError(f"{what} not found", where=str(p), expected="an existing file",
                                 got=str(path), hint=hint)
    if p.is_dir():
        raise WeightLoadingError(f"{what} is a directory", where=str(p), expected="a file, not a directory",
                                 got=str(path),
                                 hint="pass the .safetensors / .pth file inside it")
    return p


def _sniff(p: Path) -> str:
    """'safetensors', 'torch' or 'unknown' from the first bytes of the file."""
    with open(p, "rb") as f:
        head = f.read(9)
    if head[:4] == b"PK\x03\x04" or head[:2] == b"\x80\x02":  # zip (torch.save) or legacy pickle
        return "torch"
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 100_000_000:
        return "safetensors"
    return "unknown"


def load_state_dict_file(path: str | os.PathLike[str], *, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a state dict from a ``.safetensors`` or ``.pt``/``.pth``/``.bin`` file, safely.

    A training checkpoint dict holding ``state_dict``/``model_state_dict``/``model`` is unwrapped.
    ``torch.load`` always gets ``weights_only=True``: a pickle that would run code is refused.

    Raises:
        WeightLoadingError: the path is missing, a directory, truncated, corrupted, not a state
            dict, or holds objects other than tensors and plain containers.

    Example:
        >>> sd = load_state_dict_file("resnet18.safetensors")  # doctest: +SKIP
    """
    p = _check_path(path)
    suffix = p.suffix.lower()
    fmt = ("safetensors" if suffix in _SAFETENSORS_SUFFIXES
           else "torch" if suffix in _TORCH_SUFFIXES else _sniff(p))
    if fmt == "unknown":
        raise WeightLoadingError(
            "cannot tell the format of the weights file", where=str(p),
            expected="a .safetensors file or a torch.save file (.pt, .pth, .bin, .ckpt)", got=p.name,
            hint="rename it with the right suffix if it is one of these")
    if fmt == "safetensors":
        obj: Any = _load_safetensors(p, map_location)
    else:
        obj = _load_torch(p, map_location)
    obj = unwrap_checkpoint(obj)
    if not isinstance(obj, Mapping):
        raise WeightLoadingError("the file does not hold a state dict", where=str(p),
                                 expected="a dict of name -> tensor (or a checkpoint dict with 'state_dict')",
                                 got=type(obj).__name__,
                                 hint="save weights with model.state_dict(), not the model object")
    return dict(obj)


def _load_safetensors(p: Path, map_location: Any) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    device = _device_str(map_location, p)
    try:
        return load_file(str(p), device=device)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightLoadingError(
            "cannot read the safetensors file (truncated or corrupted?)", where=str(p),
            expected="a complete .safetensors file", got=f"{type(exc).__name__}: {exc}",
            hint="download or save it again; a partial copy cannot be loaded") from None


def _load_torch(p: Path, map_location: Any) -> Any:
    try:
        return torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightLoadingError(
            "refused to unpickle the file: it holds objects other than tensors and plain containers",
            where=str(p), expected="a state dict saved with torch.save(model.state_dict())",
            got=first,
            hint="weights are always read with weights_only=True, which cannot run code; if you "
                 "trust the file, re-save its state dict as .safetensors in a separate script") from None
    except _TORCH_LOAD_ERRORS as exc:
        raise WeightLoadingError(
            "cannot read the torch weights file (truncated or corrupted?)", where=str(p),
            expected="a complete file written by torch.save", got=f"{type(exc).__name__}: {exc}",
            hint="download or save it again; a partial copy cannot be loaded") from None


def _device_str(map_location: Any, p: Path) -> str:
    if map_location is None:
        return "cpu"
    if isinstance(map_location, (str, torch.device)):
        return str(map_location)
    raise WeightLoadingError("safetensors files take a device as map_location", where=str(p),
                             expected="a device string or torch.device such as 'cpu'",
                             got=map_location)
