"""The one builder: :class:`~torchvision_customizer.spec.ModelSpec` -> ``ComposedModel``.

Recipes, YAML files, templates and the ``>>`` composer all end here. :func:`build_model` builds
every part eagerly; :func:`check_spec` builds on the ``meta`` device (no memory, no compute) and
follows ``input_shape`` through every downsampling step, so that a recipe that validates builds.
"""

from __future__ import annotations

from typing import Any

import torch

from ..spec.issues import Collector, RecipeValidationError
from ..spec.model import LAYERED_BLOCKS, ModelSpec, StageSpec

__all__ = ["build_model", "check_spec"]


def build_model(spec: ModelSpec, *, device: Any = None, dtype: Any = None) -> Any:
    """Build a :class:`~torchvision_customizer.compose.ComposedModel` from a validated spec.

    Every block error is collected with its location (``stages.2.blocks.0``) and raised once.

    Example:
        >>> from torchvision_customizer.recipe import Recipe
        >>> model = build_model(Recipe(stem="conv(64)", stages=["residual(64) x 2"], head="linear(10)").to_spec())
    """
    from ..compose.model import ComposedModel
    from ..compose.parts import Branch, Head, Stage, Stem

    if not isinstance(spec, ModelSpec):
        from ..errors import RecipeError

        raise RecipeError("build_model needs a ModelSpec", expected="a ModelSpec (see Recipe.to_spec())",
                          got=type(spec).__name__, where="build_model")
    factory = {"device": device, "dtype": dtype}
    c = Collector()
    stem = Stem(spec=spec.stem, in_channels=spec.input_shape[0], **factory) if spec.stem is not None else None
    cin = stem.out_channels if stem is not None else spec.input_shape[0]
    stages: list[Any] = []
    for i, (st, rates) in enumerate(zip(spec.stages, spec.drop_path_schedule())):
        try:
            if st.type == "branch":
                part: Any = Branch(spec=st, **factory)
            else:
                part = Stage(spec=st, drop_path_schedule=rates, **factory)
                part._path = ("stages", i)
            part._bind_in_place(cin)
        except RecipeValidationError as err:
            c.extend(issue.with_prefix(("stages", i)) if issue.path[:1] != ("stages",) else issue
                     for issue in err.issues)
            cin = st.out_channels(cin)
            continue
        stages.append(part)
        cin = part.out_channels
    c.raise_if_any(f"recipe {spec.name!r}")
    head = Head(spec=spec.head, in_channels=cin, **factory) if spec.head is not None else None
    return ComposedModel(stem, stages, head, name=spec.name, input_shape=spec.input_shape,
                         drop_path_rate=spec.drop_path_rate)


def _stage_hw(st: StageSpec, h: int, cin: int) -> int:
    """Spatial size after a stage (same-padded blocks: ceil; pools and projections: floor)."""
    if st.type == "branch":
        sizes = []
        for path in st.branches:
            hh, c = h, cin
            for sub in path:
                hh, c = _stage_hw(sub, hh, c), sub.out_channels(c)
            sizes.append(hh)
        return min(sizes) if sizes else h
    if st.type in LAYERED_BLOCKS:
        h = h // st.stride if st.block_specs(cin)[-1].type != st.type else h
    elif st.needs_projection(cin):
        h = h // st.stride
    else:
        h = -(-h // st.stride)
    return h // 2 if st.pool else h


def _spatial_issues(spec: ModelSpec, c: Collector) -> None:
    """Report the first place where the feature map of ``input_shape`` becomes empty."""
    sizes = list(spec.input_shape[1:])
    cin = spec.input_shape[0]
    if spec.stem is not None:
        st = spec.stem
        sizes = [(x + 2 * st.padding - st.kernel_size) // st.stride + 1 for x in sizes]  # type: ignore[operator]
        if min(sizes) >= 1 and st.pool:
            sizes = [(x - 1) // 2 + 1 for x in sizes]
        cin = st.channels
        if min(sizes) < 1:
            c.add(("stem",), "shape", f"input_shape {tuple(spec.input_shape)} is too small for the stem",
                  got=list(spec.input_shape), hint="use a larger input or a smaller stem kernel/stride")
            return
    for i, st in enumerate(spec.stages):
        sizes = [_stage_hw(st, x, cin) for x in sizes]
        cin = st.out_channels(cin)
        if min(sizes) < 1:
            c.add(("stages", i), "shape", f"input_shape {tuple(spec.input_shape)} leaves no pixels after this stage",
                  got=list(spec.input_shape), hint="use a larger input or fewer downsampling steps")
            return


def check_spec(spec: ModelSpec, collector: Collector | None = None, *, build: bool = True,
               forward: bool = False) -> Collector:
    """Check that ``input_shape`` survives every downsampling and (``build``) that every block builds.

    The build runs on the meta device (no memory, no compute). Problems are added to ``collector``
    (located; block errors at ``stages.i.blocks.j``, a too-small input at the stage where the map
    becomes empty) instead of raised. ``forward=True`` also runs a meta-device forward (exact, but
    its first call imports ``torch._dynamo``, about 2 s).
    """
    c = collector if collector is not None else Collector()
    _spatial_issues(spec, c)
    if c or not (build or forward):
        return c
    try:
        model = build_model(spec, device="meta")
    except RecipeValidationError as err:
        for issue in err.issues:
            c.add(issue.path, issue.code, issue.message, got=issue.got, expected=issue.expected,
                  suggestions=issue.suggestions, hint=issue.hint)
        return c
    if not forward:
        return c
    model.eval()
    x = torch.empty(1, *spec.input_shape, device="meta")
    try:
        with torch.no_grad():
            model(x)
    except RuntimeError as exc:  # shape errors surface as RuntimeError from torch ops
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        c.add(("input_shape",), "shape", f"the model cannot run on input_shape {tuple(spec.input_shape)}: "
              f"{first}", got=list(spec.input_shape), hint="use a larger input or fewer downsampling steps")
    return c
