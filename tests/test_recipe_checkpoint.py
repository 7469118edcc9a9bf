"""Recipe models through ``weights.save_model``/``load_model``: the "recipe" rebuilder."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from torchvision_customizer.compose import Head, Stage, Stem
from torchvision_customizer.templates import Template

weights = pytest.importorskip("torchvision_customizer.weights")


def test_composed_model_saves_and_rebuilds(tmp_path: Path) -> None:
    model = (Stem(16, type="simple") >> Stage(32, pattern="residual+se", downsample=True)
             >> (Stage(8, blocks=1) | Stage(8, blocks=1, pattern="conv")) >> Head(3, dropout=0.1))
    path = weights.save_model(model, tmp_path / "m.safetensors")
    again = weights.load_model(path)
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(again.eval()(x), model.eval()(x), rtol=0, atol=0)
    assert again.to_recipe() == model.to_recipe()


def test_template_model_saves_and_rebuilds(tmp_path: Path) -> None:
    model = Template.resnet(18).add_attention("eca", stages=[3]).build(num_classes=4)
    again = weights.load_model(weights.save_model(model, tmp_path / "r18.safetensors"))
    assert again.spec == model.spec
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), model.state_dict().values()))
