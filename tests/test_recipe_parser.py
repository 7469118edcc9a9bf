"""The recipe grammar: tokens with positions, small parsers, typed specs, located errors."""

from __future__ import annotations

import re

import pytest

from torchvision_customizer.errors import RecipeError
from torchvision_customizer.recipe.format import format_head, format_stage, format_stem
from torchvision_customizer.recipe.lexer import tokenize
from torchvision_customizer.recipe.parser import parse_head, parse_stage, parse_stem
from torchvision_customizer.spec import HeadSpec, StageSpec, StemSpec

LOCATED = re.compile(r"\d+:\d+")


def test_tokens_keep_positions() -> None:
    toks = tokenize("residual(64)\n  x 2")
    assert [t.kind for t in toks] == ["NAME", "LPAREN", "INT", "RPAREN", "NAME", "INT", "EOF"]
    assert (toks[4].span.line, toks[4].span.col) == (2, 3)
    assert tokenize("1e-3")[0].value == 0.001


@pytest.mark.parametrize(("text", "expected"), [
    ("residual(64) x 2", StageSpec("residual", 64, blocks=2)),
    ("residual(64)x2", StageSpec("residual", 64, blocks=2)),
    ("residual(64) x2", StageSpec("residual", 64, blocks=2)),
    ("residual(64)\u00d72", StageSpec("residual", 64, blocks=2)),
    ("res(64)", StageSpec("residual", 64)),
    ("residual+se(96) x 4", StageSpec("residual", 96, blocks=4, attention="se")),
    ("residual(128) x 2 | downsample", StageSpec("residual", 128, blocks=2, stride=2)),
    ("residual(128) | stride=2", StageSpec("residual", 128, stride=2)),
    ("residual(128, s=2)", StageSpec("residual", 128, stride=2)),
    ("residual(128) | drop_path=0.1, se=0.25", StageSpec("residual", 128, drop_path=0.1, args={"se_ratio": 0.25})),
    ("mbconv+eca(40) x 2", StageSpec("mbconv", 40, blocks=2, attention="eca")),
    ("mbconv(24, e=6, k=5)", StageSpec("mbconv", 24, args={"expand_ratio": 6, "kernel_size": 5})),
    ("bottleneck(256, e=4)", StageSpec("bottleneck", 256, args={"expansion": 4})),
    ("mbconv(24, attn_layer=None, act=relu6)", StageSpec("mbconv", 24, args={"attn_layer": None,
                                                                             "act_layer": "relu6"})),
    ("conv(64, bias=True, d=0.1) | pool=max", StageSpec("conv", 64, pool="max", args={"bias": True,
                                                                                    "dropout": 0.1})),
    ("se(64, r=16)", StageSpec("se", 64, args={"rd_ratio": 1 / 16})),
    ("conv(64, padding='1', g=2)", StageSpec("conv", 64, args={"padding": "1", "groups": 2})),
    ("sk(64, dilations=[1, 2])", StageSpec("sk", 64, args={"dilations": (1, 2)})),
    ("dense(128) x 6 | downsample", StageSpec("dense", 128, blocks=6, stride=2)),
])
def test_stage_forms(text: str, expected: StageSpec) -> None:
    assert parse_stage(text) == expected


def test_values() -> None:
    st = parse_stage("residual(8, zero_init_last=true, act_layer=None, se_ratio=.5, norm_layer='batch')")
    assert st.args == {"zero_init_last": True, "act_layer": None, "se_ratio": 0.5, "norm_layer": "batch"}
    st = parse_stage("conv(8, padding=-1, dilation=2, bias=False, dropout=1e-1)")
    assert st.args == {"padding": -1, "dilation": 2, "bias": False, "dropout": 0.1}
    # the block's own `downsample` (force a projection) is reachable through a dict's `args`
    assert parse_stage("residual(8, downsample=None)").stride == 1


def test_stem_forms_and_semantics() -> None:
    conv = parse_stem("conv(64)")
    assert conv == StemSpec("conv", 64, kernel_size=7, stride=2, pool="max")
    assert parse_stem("conv(64, k=3, s=1, pool=None)") == StemSpec("conv", 64, kernel_size=3, stride=1, pool=None)
    assert parse_stem("conv(64, 3, 1)").kernel_size == 3
    assert parse_stem("simple(32)") == StemSpec("simple", 32)
    patch = parse_stem("patch(96, p=4)")
    assert (patch.kernel_size, patch.stride, patch.norm) == (4, 4, "layer")
    assert parse_stem("none") is None
    assert parse_stem("conv(32, norm=group, act=swish)").act == "swish"


def test_head_forms() -> None:
    assert parse_head("linear(10)") == HeadSpec("linear", 10)
    assert parse_head("linear(1000, dropout=0.2)").dropout == 0.2
    mlp = parse_head("mlp(10, hidden=[512, 256], dropout=0.3)")
    assert (mlp.type, mlp.hidden, mlp.dropout) == ("mlp", (512, 256), 0.3)
    assert parse_head("none") is None
    assert parse_head("linear(10, d=0.5)").dropout == 0.5


@pytest.mark.parametrize(("text", "pattern", "caret_under"), [
    ("residual(64) x 0", r"blocks is out of range.*got 0", "x 0"),
    ("residual(64) x -1", r"blocks is out of range.*got -1", "x -1"),
    ("residul(64) x 2", r"unknown block 'residul'.*did you mean 'residual'", "residul"),
    ("residual(64, bogus=3)", r"block 'residual' has no argument 'bogus'; expected one of: .*norm_layer", "bogus=3"),
    ("residual(64) | bogus", r"has no argument 'bogus'", "bogus"),
    ("residual(64) x 2 x 3", r"repeat 'x N' is given twice", "x"),
    ("residual(64", r"expected ',' or '\)'", None),
    ("residual(64, 65)", r"one positional argument", "65"),
    ("residual(64) | downsample x 2", r"goes before the modifiers", "x"),
    ("conv+se(64)", r"no attention slot", "se"),
    ("mbconv+se+eca(64)", r"one attention slot", None),
    ("residual(64, k=3)", r"has no argument 'k'", "k=3"),
    ("residual(64) x 2.5", r"repeat count must be an integer", "2.5"),
    ("residual(64, act='x)", r"unterminated string", None),
    ("residual(64) $", r"unexpected character '\$'", "$"),
    ("residual(channels=0)", r"channels is out of range", "channels=0"),
    ("residual(64, downsample=True, stride=2) | downsample", r"given twice", "downsample"),
    ("", r"expected a block name", None),
    ("conv(8, padding=" + "[" * 5000 + "]" * 5000 + ")", r"nested more than 16 deep", "["),
])
def test_stage_errors_are_located(text: str, pattern: str, caret_under: str | None) -> None:
    with pytest.raises(RecipeError, match=pattern) as info:
        parse_stage(text)
    msg = str(info.value)
    assert LOCATED.search(msg), msg
    if caret_under is not None:
        line, caret = msg.splitlines()[-2:]
        col = caret.index("^")
        assert line[col:].startswith(caret_under), msg


@pytest.mark.parametrize(("text", "pattern"), [
    ("linear(0)", r"num_classes is out of range"),
    ("softmax(10)", r"unknown head type 'softmax'"),
    ("mlp(10)", r"needs hidden widths"),
    ("linear(10, hidden=[5])", r"no hidden layers"),
    ("mlp(10, hidden=[512, -1])", r"hidden.1"),
    ("linear(10, dropout=1.5)", r"dropout must be a probability"),
    ("linear(10, pool=mean3)", r"unknown head pool"),
    ("linear(10, foo=1)", r"unknown head key 'foo'"),
])
def test_head_errors(text: str, pattern: str) -> None:
    with pytest.raises(RecipeError, match=pattern) as info:
        parse_head(text)
    assert LOCATED.search(str(info.value))


@pytest.mark.parametrize(("text", "pattern"), [
    ("patchify(0, p=4)", r"channels is out of range"),
    ("conv(64, g=2)", r"unknown stem key 'g'"),
    ("convv(64)", r"unknown stem type 'convv'.*did you mean 'conv'"),
    ("conv(64, pool=min)", r"unknown stem pool 'min'"),
    ("conv(64, act=swishh)", r"unknown activation 'swishh'.*did you mean 'swish'"),
    ("conv(64, 7, 2, 3)", r"at most 3 positional"),
])
def test_stem_errors(text: str, pattern: str) -> None:
    with pytest.raises(RecipeError, match=pattern) as info:
        parse_stem(text)
    assert LOCATED.search(str(info.value))


@pytest.mark.parametrize("text", [
    "residual+se(96) x 4 | downsample", "bottleneck(256, expansion=4, groups=2, base_width=128) x 3 | stride=3",
    "mbconv(24, expand_ratio=6, kernel_size=5, attn_layer=None) | drop_path=0.05", "conv(64, bias=True) | pool=max",
    "conv(8, act_layer='True', padding=0)", "sk(64, dilations=[1, 2])", "residual(8, act_layer=\"it's\")",
])
def test_format_parses_back_equal(text: str) -> None:
    spec = parse_stage(text)
    assert parse_stage(format_stage(spec)) == spec


def test_format_stem_and_head() -> None:
    for text in ("conv(64)", "simple(32)", "patch(96, p=4)", "conv(32, kernel_size=3, stride=2, pool=None)"):
        assert parse_stem(format_stem(parse_stem(text))) == parse_stem(text)
    for text in ("linear(10)", "mlp(10, hidden=[512, 256], dropout=0.3)", "linear(5, norm=batch, pool=gem)"):
        assert parse_head(format_head(parse_head(text))) == parse_head(text)
