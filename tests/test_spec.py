"""The typed spec: frozen, validated on construction, every problem collected and located."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from torchvision_customizer.errors import RecipeError
from torchvision_customizer.spec import (
    BlockSpec,
    FrozenDict,
    HeadSpec,
    ModelSpec,
    RecipeValidationError,
    StageSpec,
    StemSpec,
)


def _resnet_like() -> ModelSpec:
    return ModelSpec(
        name="net",
        input_shape=(3, 64, 64),
        stem=StemSpec("conv", 32),
        stages=(StageSpec("residual", 32, blocks=2), StageSpec("bottleneck", 128, blocks=2, stride=2,
                                                                attention="se", args={"expansion": 4})),
        head=HeadSpec("mlp", 10, hidden=(64,), dropout=0.1),
    )


def test_specs_are_frozen_and_hashable() -> None:
    spec = _resnet_like()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        spec.stages[1].args.x = 1  # type: ignore[attr-defined]
    assert isinstance(spec.stages[1].args, FrozenDict)
    assert hash(spec) == hash(_resnet_like())
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_stem_defaults_depend_on_type() -> None:
    conv = StemSpec("conv", 64)
    assert (conv.kernel_size, conv.stride, conv.padding, conv.pool, conv.act, conv.norm) == (7, 2, 3, "max", "relu",
                                                                                              "batch")
    assert conv.total_stride == 4
    simple = StemSpec("simple", 32)
    assert (simple.kernel_size, simple.stride, simple.pool) == (3, 1, None)
    patch = StemSpec("patch", 96, kernel_size=4)
    assert (patch.stride, patch.padding, patch.norm, patch.act) == (4, 0, "layer", None)
    assert StemSpec("standard", 64) == conv  # alias


def test_head_type_defaults_to_mlp_with_hidden() -> None:
    assert HeadSpec(num_classes=10).type == "linear"
    assert HeadSpec(num_classes=10, hidden=[256]).type == "mlp"
    assert HeadSpec(num_classes=10, hidden=[256]).hidden == (256,)


@pytest.mark.parametrize("spec", [
    _resnet_like(),
    ModelSpec(stem=None, stages=(StageSpec("conv", 16, blocks=2, pool="max"),), head=None),
    ModelSpec(stem=StemSpec("patch", 32, kernel_size=4), stages=(StageSpec("convnext_block", 64, stride=2),),
              head=HeadSpec("linear", 5, norm="layer", act=None), drop_path_rate=0.1),
    ModelSpec(stem=StemSpec("conv", 16), stages=(
        StageSpec("branch", branches=((StageSpec("conv", 8),), (StageSpec("conv", 8, args={"kernel_size": 5}),))),
        StageSpec("branch", branches=((), (StageSpec("residual", 16),)), merge="add"),
        StageSpec("dense", 32, blocks=3, stride=2, args={"growth_rate": 8}),
    ), head=HeadSpec("linear", 3, pool="gem")),
])
def test_round_trip_dict(spec: ModelSpec) -> None:
    data = spec.to_dict()
    assert ModelSpec.from_dict(data) == spec
    assert ModelSpec.from_dict(ModelSpec.from_dict(data).to_dict()) == spec


def test_every_problem_is_collected_with_its_path() -> None:
    bad = {
        "name": "broken",
        "stem": {"type": "conv", "channels": 0},
        "stagess": [],
        "stages": [
            {"type": "residul", "channels": 64},
            {"type": "residual", "channels": -3, "blocks": 0},
            {"type": "bottleneck", "channels": 256, "bogus": 1},
        ],
        "head": {"type": "softmax", "num_classes": 10},
    }
    with pytest.raises(RecipeValidationError) as info:
        ModelSpec.from_dict(bad)
    err = info.value
    paths = {".".join(map(str, i.path)) for i in err.issues}
    assert {"stem.channels", "stagess", "stages.0.type", "stages.1.channels", "stages.1.blocks",
            "stages.2.bogus", "head.type"} <= paths
    text = str(err)
    assert text.startswith(f"{len(err.issues)} problems in recipe 'broken':")
    assert "did you mean 'stages'" in text
    assert "did you mean 'residual'" in text
    assert "one of: " in text and "expansion" in text  # the accepted names of the block
    assert isinstance(err, RecipeError) and isinstance(err, ValueError)


def test_direct_construction_validates() -> None:
    with pytest.raises(RecipeError, match="channels"):
        StageSpec("residual", 0)
    with pytest.raises(RecipeError, match="unknown block 'residul'"):
        StageSpec("residul", 64)
    with pytest.raises(RecipeError, match="no attention slot"):
        StageSpec("conv", 64, attention="se")
    with pytest.raises(RecipeError, match="has no argument 'bogus'"):
        StageSpec("residual", 64, args={"bogus": 1})
    with pytest.raises(RecipeError, match="num_classes"):
        HeadSpec("linear", 0)


def test_block_specs_put_stride_on_the_first_block() -> None:
    st = StageSpec("residual", 128, blocks=3, stride=2, attention="eca", drop_path=0.1)
    blocks = st.block_specs(64)
    assert [b.stride for b in blocks] == [2, 1, 1]
    assert [(b.in_channels, b.out_channels) for b in blocks] == [(64, 128), (128, 128), (128, 128)]
    assert all(b.args["attn_layer"] == "eca" and b.args["drop_path"] == 0.1 for b in blocks)
    assert isinstance(blocks[0], BlockSpec)


def test_dense_stage_adds_a_transition_to_reach_its_channels() -> None:
    st = StageSpec("dense", 128, blocks=6, stride=2)
    dense, trans = st.block_specs(64)
    assert (dense.type, dense.args["num_layers"], dense.out_channels) == ("dense", 6, 64 + 6 * 32)
    assert (trans.type, trans.in_channels, trans.out_channels, trans.stride) == ("transition", 256, 128, 2)
    assert len(StageSpec("dense", 256, blocks=6).block_specs(64)) == 1  # channels reached, no transition


def test_shape_keeping_blocks_get_a_projection() -> None:
    st = StageSpec("convnext_block", 192, blocks=2, stride=2)
    assert st.needs_projection(96)
    assert [b.in_channels for b in st.block_specs(96)] == [192, 192]
    assert not StageSpec("residual", 192, stride=2).needs_projection(96)


def test_drop_path_rate_schedule_counts_only_blocks_with_drop_path() -> None:
    spec = ModelSpec(stem=StemSpec("conv", 16), stages=(
        StageSpec("residual", 16, blocks=2), StageSpec("conv", 32), StageSpec("residual", 32, blocks=2)),
        drop_path_rate=0.4)
    sched = spec.drop_path_schedule()
    assert sched[1] is None
    assert sched[0] == (0.0, 0.1) and sched[2] == (0.2, 0.30000000000000004)
    with pytest.raises(RecipeError, match="both set"):
        dataclasses.replace(spec, stages=(StageSpec("residual", 16, drop_path=0.1),))


def test_branch_checks() -> None:
    with pytest.raises(RecipeError, match="at least two paths"):
        StageSpec("branch", branches=((StageSpec("conv", 8),),))
    spec = ModelSpec(stem=StemSpec("conv", 16), stages=(
        StageSpec("branch", branches=((StageSpec("conv", 8),), (StageSpec("conv", 24),))),))
    assert spec.stage_channels() == [32]
    with pytest.raises(RecipeError, match="equal channels"):
        ModelSpec(stem=StemSpec("conv", 16), stages=(
            StageSpec("branch", branches=((StageSpec("conv", 8),), ()), merge="add"),))
