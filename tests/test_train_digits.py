"""Acceptance: models fine-tune on scikit-learn's real digits to >= 95 % held-out accuracy.

The held-out split is fixed, seeded and stratified (360 of 1,797 images, 36 per digit); inputs
are the 8x8 digits upscaled to 16x16, three channels. Each run stays well under a minute on one
CPU thread (about 10 s on the 2-core CI machine); the recipes were tuned to reach ~99 % with
margin over seeds 0-2.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchvision_customizer.train import Trainer, digits_loaders, digits_split, fit_digits

TARGET = 0.95


def test_held_out_split_is_the_documented_one() -> None:
    train, test = digits_split()
    assert (len(train), len(test)) == (1437, 360)


@pytest.mark.slow
def test_hand_written_cnn_reaches_target_on_digits() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    train, test = digits_loaders(image_size=16, batch_size=32)
    metrics = Trainer(model, device="cpu", seed=0).fit(train, test, epochs=5, lr=3e-3, progress=False)
    assert metrics.val_accs[-1] >= TARGET, metrics.summary()


@pytest.mark.slow
def test_recipe_built_model_reaches_target_on_digits() -> None:
    from torchvision_customizer.recipe import Recipe, build_recipe

    torch.manual_seed(0)
    model = build_recipe(Recipe(stem="simple(32)", stages=["residual+se(32) x 1", "residual(64) x 1 | downsample"],
                                head="linear(10)", input_shape=(3, 16, 16)))
    # fit_digits reads the input size (16) and channels (3) from the model's input_shape
    metrics = fit_digits(model, epochs=4, lr=3e-3, batch_size=32, augment=False, device="cpu", seed=0,
                         progress=False)
    assert metrics.val_accs[-1] >= TARGET, metrics.summary()
