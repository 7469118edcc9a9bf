"""Registry-wide block tests: every registered block, at a small input, under every backend.

A new block is tested by registering it (and, if it needs more than ``in_channels=16``, setting
``example_kwargs`` on its class).
"""

from __future__ import annotations

import copy
import io

import pytest
import torch

from torchvision_customizer import registry

from ._blocks_util import build, example_input, expected_shape

BLOCKS = registry.list()
MIN_BLOCKS = 40


def test_enough_blocks_collected() -> None:
    assert len(BLOCKS) >= MIN_BLOCKS, f"only {len(BLOCKS)} blocks registered: {BLOCKS}"


@pytest.fixture(params=BLOCKS)
def block_name(request: pytest.FixtureRequest) -> str:
    return request.param


def _eval_pair(name: str) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    block = build(name).eval()
    x = example_input(block)
    with torch.no_grad():
        y = block(x)
    return block, x, y


def test_protocol_attributes(block_name: str) -> None:
    block = build(block_name)
    assert isinstance(block.stride, int) and block.stride >= 1
    assert block.layout in ("nchw", "nhwc", "tokens")
    assert block.out_channels is None or (isinstance(block.out_channels, int) and block.out_channels > 0)
    assert callable(block.reset_parameters)
    info = registry.info(block_name)
    assert info["name"] == block_name and info["summary"], "every block needs a docstring summary"


def test_forward_shape_and_finite(block_name: str) -> None:
    block, x, y = _eval_pair(block_name)
    assert tuple(y.shape) == expected_shape(block, x)
    assert torch.isfinite(y).all()


def test_backward_every_parameter_gets_a_gradient(block_name: str) -> None:
    block = build(block_name).train()
    x = example_input(block).requires_grad_(True)
    y = block(x)
    (y.float() ** 2).mean().backward()
    missing = [n for n, p in block.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    for n, p in block.named_parameters():
        assert torch.isfinite(p.grad).all(), n
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_fx_symbolic_trace_equals_eager(block_name: str) -> None:
    block, x, y = _eval_pair(block_name)
    traced = torch.fx.symbolic_trace(block)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), y, rtol=0, atol=0)


def test_compile_fullgraph(block_name: str) -> None:
    torch._dynamo.reset()
    block, x, y = _eval_pair(block_name)
    compiled = torch.compile(block, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), y, rtol=1e-5, atol=1e-5)


def test_torch_export(block_name: str) -> None:
    block, x, y = _eval_pair(block_name)
    program = torch.export.export(block, (x,))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), y, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_onnx_matches_onnxruntime(block_name: str) -> None:
    ort = pytest.importorskip("onnxruntime")
    block, x, y = _eval_pair(block_name)
    buf = io.BytesIO()
    torch.onnx.export(block, (x,), buf, opset_version=18, dynamo=False, input_names=["x"])
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    (out,) = sess.run(None, {"x": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), y, rtol=1e-4, atol=1e-4)


def test_channels_last_matches(block_name: str) -> None:
    block, x, y = _eval_pair(block_name)
    if x.ndim != 4 or block.layout != "nchw":
        pytest.skip("channels_last applies to 4-D NCHW inputs only")  # tokens / 3-D blocks
    block_cl = copy.deepcopy(block).to(memory_format=torch.channels_last)
    with torch.no_grad():
        y_cl = block_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(y_cl, y, rtol=1e-5, atol=1e-5)


def test_meta_device_then_reset_parameters(block_name: str) -> None:
    block = build(block_name, device="meta")
    assert all(p.is_meta for p in block.parameters())
    block = block.to_empty(device="cpu")
    block.reset_parameters()
    for name, buf in block.named_buffers():
        assert torch.isfinite(buf.float()).all(), name
        if name.endswith("running_var"):
            assert torch.equal(buf, torch.ones_like(buf)), name
    reference = build(block_name)
    ref_params = dict(reference.named_parameters())
    for name, p in block.named_parameters():
        assert torch.isfinite(p).all(), name
        assert p.shape == ref_params[name].shape
    y = block.eval()(example_input(block))
    assert torch.isfinite(y).all()


JIT_SMOKE = ["conv", "se", "residual", "bottleneck"]


@pytest.mark.parametrize("name", JIT_SMOKE)
def test_torchscript_smoke(name: str) -> None:
    block, x, y = _eval_pair(name)
    scripted = torch.jit.script(block)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), y)
