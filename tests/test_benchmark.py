"""The benchmark function: percentiles ordered, FLOPs exact, bad input rejected."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from torchvision_customizer.benchmark import BenchmarkError, benchmark, count_flops


def test_benchmark_reports_ordered_percentiles_and_exact_flops() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU())
    r = benchmark(model, input_size=(3, 16, 16), batch_size=2, iterations=7, warmup=1)
    lat = r.latency_ms
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert r.params == 8 * 3 * 9
    assert r.flops == 2 * (2 * 8 * 16 * 16) * (3 * 9)  # 2 FLOPs per multiply-add
    assert r.throughput == pytest.approx(2 / (lat["p50"] / 1e3))
    assert r.to_dict()["options"] == {"channels_last": False, "compile": False, "amp": False}


def test_resnet18_flops_are_the_known_figure() -> None:
    flops = count_flops(torchvision.models.resnet18().eval(), torch.randn(1, 3, 224, 224))
    assert 3.6e9 < flops < 3.7e9  # 1.82 GMACs: the older release reported 24 million GFLOPs


def test_channels_last_and_amp_options_run() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    r = benchmark(model, input_size=(3, 8, 8), iterations=2, warmup=0, channels_last=True, amp=True)
    assert r.options["channels_last"] and r.options["amp"]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"device": "tpu"}, "unknown device"),
    ({"iterations": 0}, "iterations"),
    ({"batch_size": -1}, "batch_size"),
    ({"input_size": (224, 224)}, "input_size"),
])
def test_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(BenchmarkError, match=match):
        benchmark(nn.Identity(), **kwargs)
