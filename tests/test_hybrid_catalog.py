"""Every torchvision classification model through the hybrid builder (weights=None).

Per model, one build (module-scoped), at the smallest input its family accepts:

* the checked-in catalog row matches reality: every stage's channels and stride (the stride from
  two input sizes, so valid-padding families count too), every parameter belongs to the stem, a
  stage or the head, and ``forward_head(forward_features(x)) == forward(x)``;
* the class count changed and the pretrained head parts stayed;
* a same-shape attention block wrapped on a middle stage (through the ViT/Swin layout adapters
  where the stage is token- or channels-last-shaped) leaves the eval output unchanged, really
  runs, and every original tensor keeps its key: a state dict with other values loads into the
  patched model with every original tensor equal to it and exactly the new tensors reported new;
* freezing by stage leaves exactly the new block, the unfrozen stage and the head trainable, and
  forward + backward gives them gradients.

One test per model (its checks run in turn and every failing one is reported), so that any xdist
distribution builds each model once. Giants (over 100M parameters) share one xdist group so that
two never load at once; that needs ``-n 2 --dist loadgroup`` (plain ``-n 2`` still passes, with
less control over peak memory). About 5 minutes on one core.
"""

from __future__ import annotations

import gc

import pytest
import torch
import torchvision
from torch import nn

from torchvision_customizer.hybrid import CATALOG, HybridBuilder, PatchedBlock
from torchvision_customizer.hybrid.catalog import get_path

pytestmark = pytest.mark.slow

NAMES = sorted(CATALOG)
NUM_CLASSES = 7


def test_catalog_is_every_torchvision_classifier() -> None:
    tv = set(torchvision.models.list_models(module=torchvision.models))
    assert set(CATALOG) == tv
    assert len(NAMES) >= 80 and len(_params()) == len(NAMES)


def _params() -> list:
    out = []
    for name in NAMES:
        group = "giants" if CATALOG[name].giant else name
        out.append(pytest.param(name, marks=pytest.mark.xdist_group(group), id=name))
    return out


def _side(spec) -> int:
    return 224 if spec.family.fixed_size else spec.family.min_size


@pytest.fixture(scope="module", params=_params())
def built(request):
    """One build per model: (name, model, input, eval output before patching)."""
    name = request.param
    gc.collect()
    torch.manual_seed(0)
    model = HybridBuilder().from_torchvision(name, weights=None, num_classes=NUM_CLASSES)
    spec = CATALOG[name]
    side = _side(spec)
    # batch 2 so BatchNorm trains on 1x1 maps; ViT/MaxViT (224 px, maps >= 7x7) need only 1
    x = torch.randn(1 if spec.family.fixed_size else 2, 3, side, side)
    model.eval()
    with torch.no_grad():
        y0 = model(x)
    yield name, model, x, y0
    del model
    gc.collect()


def _check_row(name: str, model: nn.Module, x: torch.Tensor, y0: torch.Tensor) -> None:
    """The catalog row matches reality; the head is resized."""
    spec = CATALOG[name]
    assert y0.shape == (x.shape[0], NUM_CLASSES)
    with torch.no_grad():
        native = model.get_stage_outputs(x, nchw=False)
        y_split = model.forward_head(native[-1])  # forward_features(x) is the last stage's output
    torch.testing.assert_close(y_split, y0, rtol=1e-5, atol=1e-5)
    outs = [model._to_nchw(o) for o in native]
    assert [o.shape[1] for o in outs] == list(spec.channels), "declared channels"
    if spec.family.fixed_size:  # ViT / MaxViT: one size only
        assert [x.shape[2] // o.shape[2] for o in outs] == list(spec.strides), "declared strides"
    else:  # stride from two sizes: d(out) = d(in) / stride, whatever the padding
        x2 = torch.randn(x.shape[0], 3, x.shape[2] + 64, x.shape[3] + 64)
        with torch.no_grad():
            outs2 = model.get_stage_outputs(x2)
        got = [64 // (b.shape[2] - a.shape[2]) for a, b in zip(outs, outs2)]
        assert got == list(spec.strides), "declared strides"
    # every parameter is in the stem, a stage or the head
    groups = list(spec.stem) + [p for s in spec.stages for p in s] + list(spec.head_parts) + [spec.classifier]
    stray = [k for k, _ in model.named_parameters() if not any(k == g or k.startswith(g + ".") for g in groups)]
    assert not stray
    # the head: only the final layer changed
    head = get_path(model, spec.classifier)
    assert (head.out_features if isinstance(head, nn.Linear) else head.out_channels) == NUM_CLASSES
    ops = [m.op for m in model.modifications]
    assert ops.count("head") <= 1 and "wrap" not in ops


def _check_patch(name: str, model: nn.Module, x: torch.Tensor, y0: torch.Tensor) -> str | None:
    """Wrap a middle stage: function kept, keys kept, trains; returns an xfail reason or None."""
    spec = CATALOG[name]
    original = {k: v for k, v in model.state_dict().items()}
    mid = spec.num_stages // 2
    plan = HybridBuilder().patch(model, {f"stage:{mid}": {"wrap": "se"}})
    assert len(plan) == 1
    new_path = plan[0].new_path
    block = model.get_submodule(new_path)
    assert isinstance(block, PatchedBlock) and block.layout == {"tokens": "tokens", "nhwc": "nhwc"}.get(
        spec.layout, "nchw")
    calls = []
    handle = block.block.register_forward_hook(lambda *a: calls.append(1))
    model.eval()
    with torch.no_grad():
        y1 = model(x)
    handle.remove()
    assert calls == [1], "the new block runs once per forward"
    torch.testing.assert_close(y1, y0, rtol=0, atol=1e-5)
    # key stability: original keys unchanged; new keys only under the new module
    sd = model.state_dict()
    assert set(original) <= set(sd)
    new_keys = sorted(set(sd) - set(original))
    assert new_keys and all(k.startswith(new_path + ".") for k in new_keys)
    # freeze by stage: the new block (in stage mid), the last stage and the head train; nothing else
    last = spec.num_stages - 1
    model.freeze_backbone(unfreeze_stages=[last])
    model.train()
    groups = model._groups()
    for k, p in model.named_parameters():
        g_ = model._group_of(k, groups)
        assert p.requires_grad == (g_ in ("head", last) or k.startswith(new_path + ".")), k
    out = model(x)
    out = out[0] if isinstance(out, tuple) else out
    nn.functional.cross_entropy(out, torch.arange(x.shape[0]) % NUM_CLASSES).backward()
    assert block.gamma is None or block.gamma.grad is not None
    assert all(p.grad is None for k, p in model.named_parameters() if not p.requires_grad)
    head_w = get_path(model, spec.classifier).weight
    assert head_w.grad is not None and head_w.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    model.unfreeze_all()
    if sum(v.numel() for v in original.values()) < 200_000_000:  # other values load into every original tensor
        from torchvision_customizer.weights import partial_load

        # other values than the model's own (variances stay positive): the load must really copy them
        source = {k: v * 0.5 + 0.01 if v.is_floating_point() else v.clone() for k, v in original.items()}
        report = partial_load(model, source)  # MNASNet needs the version metadata kept (it is)
        sd = model.state_dict()
        assert all(torch.equal(sd[k], source[k]) for k in source)
        assert sorted(report.missing) == new_keys and not report.unexpected and not report.shape_mismatched
    return None


def test_catalog_backbone(built) -> None:
    """Builds, resizes the head, matches its catalog row, takes a wrap on a middle stage, freezes by
    stage and trains: every check runs, every failure is reported."""
    failures: list[str] = []
    xfail = None
    for check in (_check_row, _check_patch):
        try:
            xfail = check(*built) or xfail
        except AssertionError as exc:
            failures.append(f"{check.__name__}: {exc}")
    assert not failures, "\n".join(failures)
    if xfail:
        pytest.xfail(xfail)
