"""Packaging: version single-sourced, documented top-level names importable, light import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import torchvision_customizer as tvc

DOCUMENTED = ["ConvBlock", "ResidualBlock", "SEBlock", "CBAMBlock", "ECABlock", "DropPath", "Mish", "GeM", "MBConv",
              "FusedMBConv", "DepthwiseBlock", "InceptionModule", "DenseConnectionBlock", "StandardBottleneck",
              "WideBottleneck", "get_activation", "get_normalization", "get_pooling", "registry", "__version__"]


@pytest.mark.parametrize("name", DOCUMENTED)
def test_documented_names_at_top_level(name: str) -> None:
    assert getattr(tvc, name) is not None
    assert name in tvc.__all__


def test_version_is_single_sourced() -> None:
    from importlib.metadata import version

    from torchvision_customizer._version import __version__

    assert tvc.__version__ == __version__ == version("torchvision-customizer")


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        tvc.NoSuchThing  # noqa: B018


def test_import_does_not_load_the_blocks_eagerly() -> None:
    code = "import sys, torchvision_customizer; print('torchvision_customizer.blocks' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
