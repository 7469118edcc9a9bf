"""Function preservation over the whole block registry.

For every registered block that keeps the shape of its input (every attention block, and the
residual/mobile blocks built with equal channels), wrapping it into a pretrained-like ResNet-18:

* leaves the eval output unchanged (within 1e-5; in fact bit for bit);
* really runs the block (counted with a hook in the test, not in the model);
* gives every new parameter a non-zero gradient after one SGD step (the zero gate opens);
* with ``preserve=False`` changes the output (unless the block is the identity by its own init).

A block that changes the shape is refused with ``preserve=True`` unless the op is ``replace``.
The list is read from the registry at collection time, so a block registered later is covered.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from torchvision_customizer import registry
from torchvision_customizer.errors import PatchError
from torchvision_customizer.hybrid import HybridBuilder, PatchedBlock

C = 128  # resnet18 layer2 output channels
X = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(7))
ALL = registry.list()
ATTENTION = registry.list(category="attention")


def _params(name: str) -> dict:
    kw = dict(getattr(registry.get(name), "example_kwargs", {}) or {})
    kw.pop("in_channels", None)
    kw.pop("channels", None)
    return kw


def _same_shape(name: str) -> bool:
    try:
        block = registry.get(name)(in_channels=C, **_params(name)).eval()
        with torch.no_grad():
            return tuple(block(torch.randn(2, C, 8, 8)).shape) == (2, C, 8, 8)
    except (TypeError, ValueError, RuntimeError):
        return False


SAME = [n for n in ALL if _same_shape(n)]
CHANGING = [n for n in ALL if n not in SAME]


@pytest.fixture(scope="module")
def base() -> nn.Module:
    torch.manual_seed(0)
    model = HybridBuilder().from_torchvision("resnet18", weights=None, num_classes=10)
    model.train()
    with torch.no_grad():  # BatchNorm statistics that are not 0/1
        model(torch.randn(8, 3, 64, 64))
    return model.eval()


def test_registry_has_same_shape_attention_blocks() -> None:
    assert len(ATTENTION) >= 8
    assert set(ATTENTION) <= set(SAME), "every attention block keeps the shape"


@pytest.mark.parametrize("name", SAME)
def test_wrap_is_identity_at_init_and_trains(base, name) -> None:
    model = copy.deepcopy(base)
    with torch.no_grad():
        y0 = model(X)
    spec = {"block": name, "params": _params(name)}
    plan = HybridBuilder().patch(model, {"layer2": {"wrap": spec}})
    patched = model.get_submodule(plan[0].new_path)
    assert isinstance(patched, PatchedBlock)
    calls: list[int] = []
    patched.block.register_forward_hook(lambda *a: calls.append(1))
    model.eval()
    with torch.no_grad():
        y1 = model(X)
    assert calls == [1], "the block runs in the forward pass"
    torch.testing.assert_close(y1, y0, rtol=0, atol=1e-5)
    # one SGD step opens the gate; then every new parameter gets a gradient
    model.train()
    new = list(patched.parameters())
    if not new:
        pytest.skip(f"{name} has no parameters")
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    target = torch.arange(4) % 10
    for step in range(2):
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), target).backward()
        if step == 0:
            opt.step()
    dead = [n for n, p in patched.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient after one step: {dead}"


@pytest.mark.parametrize("name", SAME)
def test_preserve_false_changes_the_output(base, name) -> None:
    model = copy.deepcopy(base)
    with torch.no_grad():
        y0 = model(X)
    HybridBuilder().patch(model, {"layer2": {"wrap": {"block": name, "params": _params(name)}}}, preserve=False)
    torch.manual_seed(0)
    block = registry.get(name)(in_channels=C, **_params(name)).eval()
    probe = torch.randn(2, C, 8, 8)
    with torch.no_grad():
        if torch.allclose(block(probe), probe, rtol=0, atol=1e-4):  # gc, non_local; convnext's layer scale 1e-6
            pytest.skip(f"{name} is (nearly) the identity by its own initialization")
        y1 = model.eval()(X)
    assert (y1 - y0).abs().max() > 1e-4


@pytest.mark.parametrize("name", CHANGING or ["(none)"])
def test_shape_changing_block_needs_replace(name) -> None:
    if name == "(none)":
        pytest.skip("no shape-changing block registered")
    with pytest.raises(PatchError):
        HybridBuilder().plan("resnet18", {"layer2": {"wrap": {"block": name, "params": _params(name)}}})


def test_channel_gate_and_inject_before(base) -> None:
    model = copy.deepcopy(base)
    with torch.no_grad():
        y0 = model(X)
    plan = HybridBuilder().patch(model, {"layer3.0.conv1": {"inject_before": "se"}, "layer1": {"wrap": "cbam_block"}},
                                 preserve="channel")
    gates = [model.get_submodule(c.new_path).gamma.shape for c in plan]
    assert sorted(gates) == sorted([(1, 64, 1, 1), (1, 128, 1, 1)])
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(X), y0, rtol=0, atol=1e-5)


def test_token_and_channels_last_adapters() -> None:
    se = registry.get("se")(in_channels=32)
    tokens = PatchedBlock(se, layout="tokens", prefix_tokens=1, grid=(4, 4))
    x = torch.randn(2, 17, 32)
    torch.testing.assert_close(tokens(x), x)
    with torch.no_grad():
        tokens.gamma.fill_(1.0)
    y = tokens(x)
    assert torch.equal(y[:, 0], x[:, 0]) and not torch.equal(y[:, 1:], x[:, 1:])
    nhwc = PatchedBlock(registry.get("se")(in_channels=32), layout="nhwc", preserve=False)
    z = torch.randn(2, 5, 5, 32)
    ref = nhwc.block(z.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    torch.testing.assert_close(nhwc(z), ref)
