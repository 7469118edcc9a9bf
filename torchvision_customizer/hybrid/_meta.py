"""Building modules without allocating their weights (the meta device), and dynamic mixin classes.

``meta_params()`` makes every parameter registered inside it live on the meta device while all
other tensor code runs normally, so builders that compute with tensors (torchvision's RegNet
computes its widths with ``torch.round``) still work; ``torch.device("meta")`` alone cannot build
those. Buffers stay real (they are small and some are computed from data).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

__all__ = ["meta_params", "build_on_meta", "mixin_class", "swap_class", "rebuild_mixed"]

_LOCK = threading.RLock()


@contextlib.contextmanager
def meta_params() -> Iterator[None]:
    """Parameters registered inside this block are created on the meta device (no memory, no init)."""
    with _LOCK:
        original = nn.Module.register_parameter

        def register_parameter(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
            if param is not None and not param.is_meta:
                param = nn.Parameter(param.detach().to("meta"), requires_grad=param.requires_grad)
            original(self, name, param)

        nn.Module.register_parameter = register_parameter  # type: ignore[method-assign]
        try:
            # a device context set by a caller (load_model's rebuilders run under meta) must not
            # reach the builder's own tensor arithmetic: build on CPU, parameters go to meta
            with torch.device("cpu"):
                yield
        finally:
            nn.Module.register_parameter = original  # type: ignore[method-assign]


def build_on_meta(fn: Callable[..., nn.Module], *args: Any, **kwargs: Any) -> nn.Module:
    """Call a model builder with every parameter on the meta device (buffers stay real)."""
    with meta_params(), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        return fn(*args, **kwargs)


# --------------------------------------------------------------------- dynamic classes
_CLASSES: dict[tuple[type, type], type] = {}


def mixin_class(mixin: type, base: type) -> type:
    """``type(base.__name__, (mixin, base), ...)``, cached, so that instances stay ``isinstance`` of both."""
    key = (mixin, base)
    cls = _CLASSES.get(key)
    if cls is None:
        name = getattr(mixin, "_tvc_class_name", "{base}").format(base=base.__name__)
        cls = type(name, (mixin, base), {"__module__": mixin.__module__, "__qualname__": name,
                                          "_tvc_base": base})
        _CLASSES[key] = cls
    return cls


def swap_class(module: nn.Module, mixin: type) -> nn.Module:
    """Give ``module`` the class ``mixin + type(module)`` in place (no copy; keys unchanged)."""
    base = type(module)
    if isinstance(module, mixin):
        return module
    module.__class__ = mixin_class(mixin, base)
    return module


def rebuild_mixed(mixin: type, base: type) -> Any:
    """Unpickling helper: an empty instance of ``mixin + base`` (its state is set afterwards)."""
    cls = mixin_class(mixin, base)
    return cls.__new__(cls)
