"""Acceptance: models fine-tune on scikit-learn's real digits to >= 95 % held-out accuracy.

The held-out split is fixed, seeded and stratified (360 of 1,797 images, 36 per digit); inputs
are the 8x8 digits upscaled to 16x16, three channels, no augmentation. Measured on one CPU thread
while the 2-core machine was shared (load average ~5): hand-written CNN ~10 s, recipe-built
model ~19 s, patched ResNet-18 ~39 s (each under a minute; roughly half that on an idle machine).
The settings reach 97.5-99.7 % over seeds 0-2.
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


@pytest.mark.slow
def test_patched_torchvision_resnet18_reaches_target_on_digits() -> None:
    from torchvision_customizer.hybrid import HybridBuilder

    torch.manual_seed(0)
    model = HybridBuilder().from_torchvision("resnet18", weights=None, patches={"layer3": {"wrap": "se"}},
                                             num_classes=10)
    # fused AdamW keeps the 11M-parameter update cheap on one CPU thread; 16x16 inputs (layer3 at 1x1)
    metrics = fit_digits(model, epochs=4, lr=3e-3, batch_size=64, image_size=16, augment=False, device="cpu",
                         seed=0, progress=False)
    assert metrics.val_accs[-1] >= TARGET, metrics.summary()


def test_hybrid_layer_decay_reaches_the_optimizer() -> None:
    from torch.utils.data import DataLoader, Subset

    from torchvision_customizer.hybrid import HybridBuilder
    from torchvision_customizer.train import DigitsDataset

    model = HybridBuilder().from_torchvision("resnet18", weights=None, num_classes=10)
    model.requires_grad_(False)
    model.layer4.requires_grad_(True)
    model.fc.requires_grad_(True)
    trainer = Trainer(model, device="cpu")
    data = DataLoader(Subset(DigitsDataset("train", image_size=16), range(8)), batch_size=8)
    trainer.fit(data, epochs=1, lr=0.1, layer_decay=0.5, scheduler=None, progress=False)
    lrs = sorted({round(g["lr"], 6) for g in trainer.optimizer.param_groups})
    assert lrs == [0.05, 0.1]  # layer4 (last stage) gets lr * 0.5, the head lr; frozen stages no group
    in_opt = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert not any(id(p) in in_opt for p in model.layer1.parameters())
