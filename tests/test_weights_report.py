"""LoadReport as data: ratios, summary, to_dict, raise_if, and the older WeightLoadingReport names."""

from __future__ import annotations

import json

import pytest

from torchvision_customizer.errors import WeightLoadingError
from torchvision_customizer.weights import LoadReport, WeightLoadingReport


def make_report() -> LoadReport:
    return LoadReport(
        loaded=[f"layer.{i}.weight" for i in range(12)],
        adapted={"conv1.weight": "input_conv_zeros"},
        missing=[f"se.{i}.weight" for i in range(7)],
        unexpected=["aux.weight"],
        shape_mismatched=[("fc.weight", (1000, 512), (10, 512)), ("fc.bias", (1000,), (10,))],
        newly_initialized={"fc.weight": "model init (kept)"},
        non_tensor=["epoch"],
        dropped={"bn.num_batches_tracked": "norm_swap: no counter"},
        prefix_stripped="module.",
        key_map_applied={"old.w": "new.w"},
        matched={**{f"layer.{i}.weight": f"module.layer.{i}.weight" for i in range(12)},
                 "conv1.weight": "module.conv1.weight"},
        source="ckpt.pth",
        num_model_tensors=22,
        num_source_tensors=17,
    )


def test_ratios_and_ok() -> None:
    r = make_report()
    assert r.load_ratio == pytest.approx(13 / 22)
    assert r.source_ratio == pytest.approx(13 / 17)
    assert not r.ok
    assert LoadReport().ok and LoadReport().load_ratio == 0.0 and LoadReport().source_ratio == 0.0


def test_summary_lists_every_entry_grouped() -> None:
    text = make_report().summary()
    for key in [f"layer.{i}.weight" for i in range(12)] + [f"se.{i}.weight" for i in range(7)]:
        assert key in text  # nothing truncated
    for header in ("loaded (12):", "adapted (1):", "shape mismatched (2):", "missing (7):",
                   "newly initialized (1):", "unexpected (1):", "dropped by a rule (1):",
                   "key map applied (1):", "non-tensor source entries (1):"):
        assert header in text
    assert "source (1000, 512)  model (10, 512)" in text and "[input_conv_zeros]" in text
    assert "prefix stripped from source keys: 'module.'" in text
    assert "13/22" in text and "ckpt.pth" in text
    assert text.index("loaded (12)") < text.index("missing (7)") < text.index("unexpected (1)")
    assert str(make_report()) == text and "missing=7" in repr(make_report())


def test_to_dict_is_json_serializable() -> None:
    d = make_report().to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["shape_mismatched"][0] == ["fc.weight", [1000, 512], [10, 512]]
    assert d["ok"] is False and d["load_ratio"] == pytest.approx(13 / 22)
    assert set(d) >= {"loaded", "adapted", "missing", "unexpected", "newly_initialized", "non_tensor",
                      "prefix_stripped", "key_map_applied", "source_ratio"}


def test_raise_if_selects_categories_and_carries_the_report() -> None:
    r = make_report()
    with pytest.raises(WeightLoadingError) as info:
        r.raise_if()
    msg = str(info.value)
    assert info.value.report is r
    assert "7 missing, 1 unexpected, 2 shape-mismatched" in msg
    assert "se.0.weight" in msg and "... and 2 more" in msg and "(at ckpt.pth)" in msg
    assert "strict=False" in msg  # the hint
    with pytest.raises(WeightLoadingError, match=r"2 shape-mismatched; expected .*shape mismatches allowed|"
                                                 r"weights do not fit the model: 2 shape-mismatched"):
        r.raise_if(missing=False, unexpected=False)
    clean = LoadReport(loaded=["a"], num_model_tensors=1, num_source_tensors=1, matched={"a": "a"})
    assert clean.raise_if() is clean
    assert r.raise_if(missing=False, unexpected=False, mismatched=False) is r


def test_weight_loading_report_is_the_same_class_with_read_only_old_names() -> None:
    assert WeightLoadingReport is LoadReport
    r = make_report()
    assert r.total_loaded == 13
    assert r.total_skipped == 7 + 1 + 2
    assert r.skipped_missing == r.missing and r.skipped_missing is not r.missing
    assert r.skipped_unexpected == ["aux.weight"]
    assert r.skipped_shape_mismatch == r.shape_mismatched
    for name in ("total_loaded", "total_skipped", "skipped_missing", "skipped_unexpected",
                 "skipped_shape_mismatch"):
        with pytest.raises(AttributeError):
            setattr(r, name, 0)
