"""resolve_weights: tags, enums, paths and state dicts, from a local TORCH_HOME; offline errors."""

from __future__ import annotations

import os
import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torchvision.models import ResNet18_Weights, ResNet50_Weights

from torchvision_customizer.errors import UnknownComponentError, WeightLoadingError
from torchvision_customizer.weights import resolve_weights, weights_meta, weights_transforms
from torchvision_customizer.weights.sources import torchvision_cache_path

R18_FILE = os.path.basename(ResNet18_Weights.IMAGENET1K_V1.url)


@pytest.fixture(scope="module")
def r18_sd() -> dict[str, torch.Tensor]:
    torch.manual_seed(42)
    return torchvision.models.resnet18().state_dict()


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    return home


@pytest.fixture
def cached_r18(torch_home: Path, r18_sd: dict[str, torch.Tensor]) -> Path:
    path = torch_home / "hub" / "checkpoints" / R18_FILE
    path.parent.mkdir(parents=True)
    torch.save(r18_sd, path)
    return path


@pytest.mark.parametrize("weights", ["DEFAULT", "default", "IMAGENET1K_V1", "imagenet1k_v1",
                                     "ResNet18_Weights.IMAGENET1K_V1", ResNet18_Weights.IMAGENET1K_V1,
                                     ResNet18_Weights.DEFAULT])
def test_torchvision_weights_load_exactly_the_cached_file(cached_r18: Path, r18_sd: dict[str, torch.Tensor],
                                                          weights: object) -> None:
    rw = resolve_weights("resnet18", weights)
    assert rw.kind == "torchvision" and rw.enum is ResNet18_Weights.IMAGENET1K_V1
    assert rw.path == cached_r18 and rw.file_name == R18_FILE
    assert rw.name == "ResNet18_Weights.IMAGENET1K_V1"
    sd = rw.state_dict()
    assert sd.keys() == r18_sd.keys()
    assert all(torch.equal(sd[k], r18_sd[k]) for k in r18_sd)


def test_cache_path_respects_torch_home(torch_home: Path) -> None:
    assert torchvision_cache_path(ResNet50_Weights.IMAGENET1K_V2) == (
        torch_home / "hub" / "checkpoints" / os.path.basename(ResNet50_Weights.IMAGENET1K_V2.url))


def test_offline_and_not_cached_gives_our_error_naming_the_file(torch_home: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "urlopen", unreachable)  # torchvision's own download path, no network
    rw = resolve_weights("resnet18", "DEFAULT")
    with pytest.raises(WeightLoadingError) as info:
        rw.state_dict()
    msg = str(info.value)
    assert not isinstance(info.value, urllib.error.URLError) and info.value.__cause__ is None
    expected_dir = torch_home / "hub" / "checkpoints"
    assert R18_FILE in msg and str(expected_dir) in msg
    assert "weights=None" in msg and ResNet18_Weights.IMAGENET1K_V1.url in msg and "URLError" in msg


def test_unknown_tag_lists_valid_tags_with_closest(torch_home: Path) -> None:
    with pytest.raises(UnknownComponentError) as info:
        resolve_weights("resnet50", "IMAGENET1K_V3")
    msg = str(info.value)
    assert "DEFAULT, IMAGENET1K_V1, IMAGENET1K_V2" in msg and "did you mean" in msg
    assert isinstance(info.value, KeyError)
    with pytest.raises(UnknownComponentError, match=r"unknown torchvision model 'resnet51'.*'resnet50'"):
        resolve_weights("resnet51", "DEFAULT")


def test_weights_of_another_model_are_refused(torch_home: Path) -> None:
    with pytest.raises(WeightLoadingError, match=r"not for 'resnet18'.*ResNet18_Weights"):
        resolve_weights("resnet18", "ResNet50_Weights.IMAGENET1K_V2")
    with pytest.raises(WeightLoadingError, match=r"not for 'resnet18'"):
        resolve_weights("resnet18", ResNet50_Weights.IMAGENET1K_V2)


def test_none_state_dict_and_local_paths(tmp_path: Path, r18_sd: dict[str, torch.Tensor]) -> None:
    none = resolve_weights("resnet18", None)
    assert none.kind == "none" and none.state_dict() is None
    sd = resolve_weights("resnet18", {"state_dict": r18_sd})
    assert sd.kind == "state_dict" and sd.state_dict().keys() == r18_sd.keys()
    f = tmp_path / "mine.safetensors"
    save_file(r18_sd, str(f))
    for w in (f, str(f)):
        rw = resolve_weights("my_custom_net", w)  # a path needs no torchvision name
        assert rw.kind == "file" and rw.path == f and rw.file_name == "mine.safetensors"
        got = rw.state_dict()
        assert all(torch.equal(got[k], r18_sd[k]) for k in r18_sd)


def test_bad_weights_values(tmp_path: Path) -> None:
    with pytest.raises(WeightLoadingError, match=r"not found.*nope.pth"):
        resolve_weights("resnet18", str(tmp_path / "nope.pth"))
    with pytest.raises(WeightLoadingError, match=r"is a directory"):
        resolve_weights("resnet18", tmp_path)
    with pytest.raises(WeightLoadingError, match=r"weights='DEFAULT'"):
        resolve_weights("resnet18", True)
    with pytest.raises(WeightLoadingError, match=r"unsupported weights value.*'float'"):
        resolve_weights("resnet18", 1.5)
    with pytest.raises(WeightLoadingError, match=r"model_name must be a string"):
        resolve_weights(None, "DEFAULT")  # type: ignore[arg-type]


def test_transforms_and_meta(torch_home: Path) -> None:
    meta = weights_meta("resnet50", "IMAGENET1K_V2")
    assert len(meta["categories"]) == 1000 and meta["num_params"] == 25557032
    assert meta["tag"] == "IMAGENET1K_V2" and meta["file_name"].endswith(".pth")
    t = weights_transforms("resnet50", "DEFAULT")
    img = torch.rand(3, 300, 280)
    assert t(img).shape == (3, 224, 224)
    with pytest.raises(WeightLoadingError, match=r"only known for torchvision weights.*'DEFAULT'"):
        weights_meta("resnet50", None)


def test_densenet_old_style_keys_are_renamed_like_torchvision(torch_home: Path) -> None:
    from torchvision.models import DenseNet121_Weights

    path = torchvision_cache_path(DenseNet121_Weights.DEFAULT)
    path.parent.mkdir(parents=True)
    old = {"features.denseblock1.denselayer1.norm.1.weight": torch.ones(2),
           "features.denseblock1.denselayer1.conv.2.weight": torch.ones(2), "classifier.bias": torch.ones(2)}
    torch.save(old, path)
    sd = resolve_weights("densenet121", "DEFAULT").state_dict()
    assert sorted(sd) == ["classifier.bias", "features.denseblock1.denselayer1.conv2.weight",
                          "features.denseblock1.denselayer1.norm1.weight"]


def test_partial_load_takes_resolved_weights(cached_r18: Path, r18_sd: dict[str, torch.Tensor]) -> None:
    from torchvision_customizer.weights import partial_load

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    report = partial_load(model, resolve_weights("resnet18", "DEFAULT"))
    assert report.source == "ResNet18_Weights.IMAGENET1K_V1"
    assert [k for k, _, _ in report.shape_mismatched] == ["fc.weight", "fc.bias"]
    assert all(torch.equal(model.state_dict()[k], r18_sd[k]) for k in report.loaded)
    with pytest.raises(WeightLoadingError, match=r"no weights to load"):
        partial_load(model, resolve_weights("resnet18", None))
