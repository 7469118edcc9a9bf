"""Fuzzing the recipe grammar (hypothesis, derandomized, bounded).

* Random text: parsing either succeeds or raises our ``RecipeError`` -- never a raw ``TypeError``,
  ``KeyError``, ``RecursionError`` ... -- and every error carries a ``line:col`` location.
* Mutations of valid recipes: a mutation that parses (and validates) also builds, and its spec
  round-trips through YAML unchanged.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from torchvision_customizer import registry
from torchvision_customizer.errors import RecipeError
from torchvision_customizer.recipe import Recipe, build_recipe, parse_head, parse_stage, parse_stem
from torchvision_customizer.spec import RecipeValidationError

LOCATION = re.compile(r"\d+:\d+")
GRAMMAR = "abcdeikmnoprsuvx_0123456789()[],=+-|.'\" \u00d7\n"
FUZZ = settings(deadline=None, derandomize=True, max_examples=200, suppress_health_check=[HealthCheck.too_slow])

VALID_STAGES = [
    "residual(16) x 2",
    "residual+se(24, se_ratio=0.25) x 2 | downsample",
    "bottleneck(32, expansion=4) | stride=2",
    "mbconv(24, e=6, k=5) x 2 | drop_path=0.1",
    "mbconv+eca(16)",
    "conv(16, k=3, bias=True, d=0.1) | pool=max",
    "dense(32, growth_rate=8) x 3 | downsample",
    "convnext_block(32) | downsample",
    "sk(16, dilations=[1, 2])",
]
VALID_STEMS = ["conv(16, k=3, s=1, pool=None)", "simple(16)", "patch(16, p=2)", "conv(16)"]
VALID_HEADS = ["linear(10)", "linear(5, dropout=0.2)", "mlp(4, hidden=[32, 16], dropout=0.3)", "linear(3, pool=gem)"]


def _assert_ours(fn: object, text: str) -> None:
    try:
        fn(text)  # type: ignore[operator]
    except RecipeError as err:
        assert LOCATION.search(str(err)), str(err)
        if isinstance(err, RecipeValidationError):
            assert err.issues and all(i.span is not None for i in err.issues), str(err)


@FUZZ
@given(st.text(alphabet=GRAMMAR, max_size=40))
def test_random_stage_text_raises_only_located_recipe_errors(text: str) -> None:
    _assert_ours(parse_stage, text)


@FUZZ
@given(st.text(max_size=30))
def test_random_unicode_raises_only_located_recipe_errors(text: str) -> None:
    _assert_ours(parse_stage, text)
    _assert_ours(parse_stem, text)
    _assert_ours(parse_head, text)


VOCAB = sorted(set(registry.list()) | {"k", "s", "e", "g", "d", "p", "act", "act_layer", "norm_layer", "kernel_size",
                                         "stride", "groups", "dropout", "attn_layer", "se_ratio", "relu", "swish",
                                         "gelu", "batch", "group", "layer", "None", "True", "max", "avg", "hidden",
                                         "pool", "downsample", "drop_path", "linear", "mlp", "simple", "patch"})
SUFFIXES = [" | downsample", " | stride=2", " | drop_path=0.1", " | se=0.5", " x 3", " | pool=avg", " x 1",
            " | act=gelu", " | norm_layer=group", " | k=5"]
NUMBER = re.compile(r"-?\d+(\.\d+)?")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _mutate(text: str, data: st.DataObject) -> str:
    """Character edits plus grammar-aware ones (numbers, names, suffixes), 1 to 3 of them."""
    for _ in range(data.draw(st.integers(1, 3))):
        kind = data.draw(st.sampled_from(["insert", "delete", "replace", "swap"] + ["number", "name", "suffix"] * 3))
        i = data.draw(st.integers(0, max(len(text) - 1, 0)))
        ch = data.draw(st.sampled_from(GRAMMAR))
        if kind == "number" and NUMBER.search(text):
            spans = [m.span() for m in NUMBER.finditer(text)]
            a, b = data.draw(st.sampled_from(spans))
            value = data.draw(st.one_of(st.integers(-2, 70), st.sampled_from(["0.5", "1e-3", "2.0", "[1, 2]"])))
            text = text[:a] + str(value) + text[b:]
        elif kind == "name" and NAME.search(text):
            spans = [m.span() for m in NAME.finditer(text)]
            a, b = data.draw(st.sampled_from(spans))
            text = text[:a] + data.draw(st.sampled_from(VOCAB)) + text[b:]
        elif kind == "suffix":
            text += data.draw(st.sampled_from(SUFFIXES))
        elif kind == "insert":
            text = text[:i] + ch + text[i:]
        elif kind == "delete" and text:
            text = text[:i] + text[i + 1:]
        elif kind == "replace" and text:
            text = text[:i] + ch + text[i + 1:]
        elif len(text) > 1:
            j = data.draw(st.integers(0, len(text) - 1))
            chars = list(text)
            chars[i], chars[j] = chars[j], chars[i]
            text = "".join(chars)
    return text


@FUZZ
@given(st.data())
def test_mutations_that_parse_also_build_and_round_trip_through_yaml(data: st.DataObject) -> None:
    part = data.draw(st.sampled_from(["stage", "stem", "head"]))
    stem, stage, head = (data.draw(st.sampled_from(v)) for v in (VALID_STEMS, VALID_STAGES, VALID_HEADS))
    if part == "stage":
        stage = _mutate(stage, data)
    elif part == "stem":
        stem = _mutate(stem, data)
    else:
        head = _mutate(head, data)
    recipe = Recipe(stem=stem, stages=[stage], head=head, input_shape=(3, 32, 32))
    try:
        light = recipe.to_spec(deep=False)
    except RecipeError as err:
        event("rejected by the parser or the spec")
        assert LOCATION.search(str(err)), str(err)
        return
    # keep the meta builds bounded: a mutation may turn "x 2" into "x 2222"
    assume(sum(s.blocks for s in light.stages) <= 64)
    try:
        spec = recipe.to_spec()
    except RecipeError as err:
        event("rejected by a block (meta build)")
        assert LOCATION.search(str(err)), str(err)
        return
    event("valid: built and round-tripped")
    model = build_recipe(spec, device="meta")
    assert model.spec == spec
    text = Recipe.from_spec(spec).to_yaml()
    assert Recipe.from_yaml(text).to_spec() == spec
