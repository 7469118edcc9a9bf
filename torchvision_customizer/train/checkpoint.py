"""Checkpoint files: one safetensors file per checkpoint, written atomically.

A checkpoint is a tree of states (model, optimizer, scheduler, scaler, RNG, metrics, position).
Its tensors go into the safetensors body (contiguous, on CPU, so ``channels_last`` models save
the same bytes as contiguous ones); everything else - the optimizer's ``param_groups``, integer
step counts, RNG tuples, the metrics history - becomes JSON stored in the safetensors header
metadata under the key ``"tvc"``. One file means one atomic ``os.replace``: a process killed while
writing (even by SIGKILL) leaves the previous checkpoint intact and at most a ``*.tmp`` file.

Loading executes no code: safetensors for the tensors, ``json`` for the rest.

Encoding of the JSON tree: a tensor becomes ``{"__tensor__": key}``; a tuple becomes
``{"__tuple__": [...]}``; a dict with a non-string key becomes ``{"__items__": [[k, v], ...]}``;
bytes become ``{"__bytes__": hex}``; ``torch.dtype`` becomes ``{"__dtype__": name}``. Anything else
that JSON cannot hold is an error naming its location, never silently dropped.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import TrainingError

__all__ = ["FORMAT_VERSION", "load_checkpoint", "pack", "save_checkpoint", "unpack"]

FORMAT_VERSION = 1
_META_KEY = "tvc"
_SPECIAL = ("__tensor__", "__tuple__", "__items__", "__bytes__", "__dtype__")


def pack(tree: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """Return a JSON-able copy of ``tree``; its tensors are moved into ``tensors`` by path key."""
    if isinstance(tree, torch.Tensor):
        key = prefix or "tensor"
        if key in tensors:
            raise TrainingError("two tensors map to one checkpoint key", where=key)
        tensors[key] = tree.detach().to("cpu").contiguous()
        return {"__tensor__": key}
    if isinstance(tree, torch.dtype):
        return {"__dtype__": str(tree).removeprefix("torch.")}
    if isinstance(tree, bytes):
        return {"__bytes__": tree.hex()}
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, (list, tuple)):
        items = [pack(v, tensors, f"{prefix}.{i}" if prefix else str(i)) for i, v in enumerate(tree)]
        return {"__tuple__": items} if isinstance(tree, tuple) else items
    if isinstance(tree, dict):
        if all(isinstance(k, str) for k in tree) and not set(tree) & set(_SPECIAL):
            return {k: pack(v, tensors, f"{prefix}.{k}" if prefix else k) for k, v in tree.items()}
        return {"__items__": [[pack(k, tensors, f"{prefix}.key{i}"),
                               pack(v, tensors, f"{prefix}.{k}" if prefix else str(k))]
                              for i, (k, v) in enumerate(tree.items())]}
    if hasattr(tree, "item") and callable(tree.item):  # numpy scalars
        return pack(tree.item(), tensors, prefix)
    raise TrainingError("a checkpoint value cannot be stored", where=prefix or "<root>",
                        expected="tensors, numbers, strings, None, lists, tuples or dicts",
                        got=type(tree).__name__,
                        hint="give the object a state_dict() made of those types")


def unpack(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`pack`."""
    if isinstance(tree, list):
        return [unpack(v, tensors) for v in tree]
    if isinstance(tree, dict):
        if len(tree) == 1:
            (key, value), = tree.items()
            if key == "__tensor__":
                return tensors[value]
            if key == "__tuple__":
                return tuple(unpack(v, tensors) for v in value)
            if key == "__items__":
                return {unpack(k, tensors): unpack(v, tensors) for k, v in value}
            if key == "__bytes__":
                return bytes.fromhex(value)
            if key == "__dtype__":
                return getattr(torch, value)
        return {k: unpack(v, tensors) for k, v in tree.items()}
    return tree


def _dedupe_storage(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors sharing memory (tied weights): clone the later ones."""
    seen: set[tuple[int, int]] = set()
    out = {}
    for key, t in tensors.items():
        if t.numel() == 0:
            out[key] = t
            continue
        ident = (t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        out[key] = t.clone() if ident in seen else t
        seen.add(ident)
    return out


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then ``os.replace`` it in."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` (a tree of tensors and plain values) atomically to ``path``.

    Example:
        >>> save_checkpoint(tmp / "last.safetensors", {"model": model.state_dict(), "step": 3})  # doctest: +SKIP
    """
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    tree = pack(state, tensors)
    meta = json.dumps({"format": FORMAT_VERSION, "state": tree}, allow_nan=True)
    data = save(_dedupe_storage(tensors), metadata={_META_KEY: meta})
    return atomic_write_bytes(path, data)


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (no code is executed)."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise TrainingError("checkpoint file not found", where=str(path), expected="an existing file")
    try:
        with safe_open(str(path), framework="pt", device=str(map_location)) as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except SafetensorError as err:
        raise TrainingError("not a readable safetensors checkpoint", where=str(path), got=str(err)) from None
    if _META_KEY not in meta:
        raise TrainingError("not a torchvision-customizer training checkpoint", where=str(path),
                            expected=f"safetensors metadata key {_META_KEY!r}", got=sorted(meta))
    doc = json.loads(meta[_META_KEY])
    if doc.get("format") != FORMAT_VERSION:
        raise TrainingError("unsupported checkpoint format", where=str(path),
                            expected=f"format {FORMAT_VERSION}", got=doc.get("format"))
    return unpack(doc["state"], tensors)
