"""Self-describing safetensors checkpoints, atomic saves, corrupted files and unsafe pickles."""

from __future__ import annotations

import copy
import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import safetensors.torch
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

from torchvision_customizer._version import __version__
from torchvision_customizer.errors import WeightLoadingError
from torchvision_customizer.weights import (
    FORMAT_VERSION,
    build_and_load,
    describe_architecture,
    load_model,
    load_state_dict_file,
    partial_load,
    read_checkpoint_metadata,
    register_rebuilder,
    save_model,
)

REPO = Path(__file__).resolve().parents[1]


@functools.cache
def _r18(seed: int, num_classes: int) -> nn.Module:
    torch.manual_seed(seed)
    return torchvision.models.resnet18(num_classes=num_classes)


def r18(seed: int = 0, num_classes: int = 10) -> nn.Module:
    return copy.deepcopy(_r18(seed, num_classes))


def assert_same_tensors(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert not sb[k].is_meta, k
        assert torch.equal(sa[k], sb[k]), k


class TinyTied(nn.Module):
    """Tied weights, a non-persistent buffer and a self-description of a custom kind."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.enc = nn.Linear(width, width)
        self.dec = nn.Linear(width, width)
        self.dec.weight = self.enc.weight
        self.register_buffer("scale", torch.full((width,), 2.0), persistent=False)
        self._tvc_arch = {"kind": "test_tiny", "width": width}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(self.enc(x)) * self.scale


register_rebuilder("test_tiny", lambda arch: TinyTied(arch["width"]), force=True)


# ------------------------------------------------------------------ round trips
def test_torchvision_model_round_trip(tmp_path: Path) -> None:
    model = r18(1)
    path = save_model(model, tmp_path / "r18.safetensors", metadata={"note": "hello"})
    meta = read_checkpoint_metadata(path)
    assert meta["tvc.format_version"] == str(FORMAT_VERSION) and meta["tvc.version"] == __version__
    assert meta["tvc.arch.kind"] == "torchvision" and meta["note"] == "hello"
    assert json.loads(meta["tvc.arch"]) == {"builder": "resnet18", "kwargs": {"num_classes": 10}}
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.fc.out_features == 10
    assert_same_tensors(model, loaded)
    assert loaded.load_report.ok and loaded.load_report.load_ratio == 1.0
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded.eval()(x))
    # a loaded model can be saved again (it remembers its description)
    again = load_model(save_model(loaded, tmp_path / "again.safetensors"))
    assert_same_tensors(model, again)


def test_channels_last_and_tied_weights_round_trip(tmp_path: Path) -> None:
    model = r18(2).to(memory_format=torch.channels_last)
    assert not model.conv1.weight.is_contiguous()
    assert_same_tensors(model, load_model(save_model(model, tmp_path / "cl.safetensors")))

    torch.manual_seed(0)
    tiny = TinyTied(4)
    loaded = load_model(save_model(tiny, tmp_path / "tiny.safetensors"))
    assert_same_tensors(tiny, loaded)
    assert loaded.dec.weight is loaded.enc.weight  # still tied
    assert torch.equal(loaded.scale, torch.full((4,), 2.0))  # non-persistent buffer rebuilt, not meta
    x = torch.randn(2, 4)
    assert torch.equal(tiny(x), loaded(x))


def test_recipe_models_are_described_by_their_recipe(tmp_path: Path) -> None:
    class Recipe:
        def to_yaml(self) -> str:
            return "stem: conv(8)\n"

    class Built(nn.Sequential):
        _tvc_arch_kind = "test_recipe"

        def __init__(self) -> None:
            super().__init__(nn.Conv2d(3, 8, 3))

        def to_recipe(self) -> Recipe:
            return Recipe()

    seen = []

    def rebuild(arch: dict) -> nn.Module:
        seen.append(arch)
        return Built()

    register_rebuilder("test_recipe", rebuild, force=True)
    assert describe_architecture(Built()) == ("test_recipe", {"format": "yaml", "recipe": "stem: conv(8)\n"})
    torch.manual_seed(0)
    model = Built()
    loaded = load_model(save_model(model, tmp_path / "recipe.safetensors"))
    assert seen == [{"format": "yaml", "recipe": "stem: conv(8)\n"}]
    assert_same_tensors(model, loaded)


def test_undescribable_models_are_refused_with_a_hint(tmp_path: Path) -> None:
    patched = r18(3)
    patched.layer4 = nn.Sequential(*patched.layer4, nn.Identity(), nn.Conv2d(512, 512, 1))
    with pytest.raises(WeightLoadingError, match=r"cannot describe.*ResNet.*save_file\(model.state_dict\(\)"):
        save_model(patched, tmp_path / "p.safetensors")
    with pytest.raises(WeightLoadingError, match=r"cannot describe"):
        save_model(nn.Linear(2, 2), tmp_path / "l.safetensors")
    assert not list(tmp_path.iterdir())  # nothing written


def test_bad_metadata_and_paths(tmp_path: Path) -> None:
    model = r18(4)
    with pytest.raises(WeightLoadingError, match=r"reserved"):
        save_model(model, tmp_path / "a.safetensors", metadata={"tvc.arch": "x"})
    with pytest.raises(WeightLoadingError, match=r"str to str.*json.dumps"):
        save_model(model, tmp_path / "a.safetensors", metadata={"epoch": 3})  # type: ignore[dict-item]
    with pytest.raises(WeightLoadingError, match=r"is a directory"):
        save_model(model, tmp_path)
    with pytest.raises(WeightLoadingError, match=r"folder does not exist"):
        save_model(model, tmp_path / "no" / "a.safetensors")
    with pytest.raises(WeightLoadingError, match=r"not found"):
        load_model(tmp_path / "missing.safetensors")


# ---------------------------------------------------------------- atomicity
def test_failed_save_leaves_previous_file_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.safetensors"
    first = r18(5)
    save_model(first, path)
    good = path.read_bytes()
    real_save = safetensors.torch.save_file

    def crash_midway(tensors: dict, filename: str, metadata: dict | None = None) -> None:
        real_save(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as f:
            f.truncate(os.path.getsize(filename) // 2)  # half written
        raise OSError("No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", crash_midway)
    with pytest.raises(OSError, match="No space left"):
        save_model(r18(6), path)
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]  # temp file removed
    monkeypatch.undo()
    assert_same_tensors(first, load_model(path))


# ------------------------------------------------------------- corrupted files
def test_truncated_or_corrupted_or_foreign_files(tmp_path: Path) -> None:
    path = save_model(r18(7), tmp_path / "m.safetensors")
    data = path.read_bytes()
    for name, content in (("trunc.safetensors", data[: len(data) // 3]), ("head.safetensors", data[:6]),
                          ("junk.safetensors", b"not a checkpoint at all")):
        bad = tmp_path / name
        bad.write_bytes(content)
        with pytest.raises(WeightLoadingError, match=r"truncated or corrupted.*" + name):
            load_model(bad)
        with pytest.raises(WeightLoadingError, match=name):
            load_state_dict_file(bad)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(WeightLoadingError, match=r"no architecture description.*partial_load"):
        load_model(plain)
    for meta, pattern in (({"tvc.arch.kind": "nope", "tvc.format_version": "1", "tvc.arch": "{}"},
                           r"no rebuilder registered.*'nope'.*torchvision"),
                          ({"tvc.arch.kind": "torchvision", "tvc.format_version": "99", "tvc.arch": "{}"},
                           r"format version not supported.*upgrade"),
                          ({"tvc.arch.kind": "torchvision", "tvc.format_version": "1", "tvc.arch": "{"},
                           r"architecture description is corrupted")):
        f = tmp_path / "meta.safetensors"
        save_file({"w": torch.zeros(2)}, str(f), metadata=meta)
        with pytest.raises(WeightLoadingError, match=pattern):
            load_model(f)


def test_state_dict_file_formats(tmp_path: Path) -> None:
    sd = {"w": torch.arange(4.0)}
    torch.save({"model": sd, "epoch": 1}, tmp_path / "ckpt.pt")
    assert torch.equal(load_state_dict_file(tmp_path / "ckpt.pt")["w"], sd["w"])
    torch.save(sd, tmp_path / "noext")  # recognised by its first bytes
    assert torch.equal(load_state_dict_file(tmp_path / "noext")["w"], sd["w"])
    torch.save(sd, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    assert torch.equal(load_state_dict_file(tmp_path / "legacy.pth")["w"], sd["w"])
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(WeightLoadingError, match=r"does not hold a state dict.*'list'"):
        load_state_dict_file(tmp_path / "list.pt")
    (tmp_path / "text.weights").write_text("hello")
    with pytest.raises(WeightLoadingError, match=r"cannot tell the format"):
        load_state_dict_file(tmp_path / "text.weights")
    with pytest.raises(WeightLoadingError, match=r"str or os.PathLike"):
        load_state_dict_file(3)  # type: ignore[arg-type]


# --------------------------------------------------------------- meta build
def test_build_and_load_on_meta_device(tmp_path: Path) -> None:
    src = r18(8, num_classes=1000)
    path = tmp_path / "w.safetensors"
    save_file(src.state_dict(), str(path))
    for builder in (torchvision.models.resnet18, "resnet18"):
        model = build_and_load(builder, path)
        assert_same_tensors(src, model)
        assert model.load_report.ok
    with pytest.raises(WeightLoadingError) as info:
        build_and_load("resnet18", path, num_classes=10)
    assert info.value.report.shape_mismatched
    model = build_and_load("resnet18", path, num_classes=10, strict=False)
    assert [k for k, _, _ in model.load_report.shape_mismatched] == ["fc.weight", "fc.bias"]
    assert not any(t.is_meta for t in model.state_dict().values())
    assert torch.equal(model.layer1[0].conv1.weight, src.layer1[0].conv1.weight)


# ------------------------------------------------------------- unsafe pickles
class Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def _evil(tmp_path: Path, name: str, legacy: bool = False) -> tuple[Path, Path]:
    marker = tmp_path / f"{name}.marker"
    path = tmp_path / f"{name}.pth"
    torch.save({"w": torch.zeros(2), "x": Payload(marker)}, path, _use_new_zipfile_serialization=not legacy)
    return path, marker


def test_the_payload_is_live(tmp_path: Path) -> None:
    path, marker = _evil(tmp_path, "control")
    torch.load(path, weights_only=False)  # what an unsafe loader would do
    assert marker.exists()


@pytest.mark.parametrize("legacy", [False, True])
def test_unsafe_pickle_is_refused(tmp_path: Path, legacy: bool) -> None:
    path, marker = _evil(tmp_path, "evil", legacy)
    with pytest.raises(WeightLoadingError, match=r"refused to unpickle.*evil.pth.*weights_only=True"):
        load_state_dict_file(path)
    with pytest.raises(WeightLoadingError):
        partial_load(nn.Linear(2, 2), path)
    assert not marker.exists()


def test_unsafe_pickle_refused_even_with_force_no_weights_only_env(tmp_path: Path) -> None:
    path, marker = _evil(tmp_path, "evil_env")
    legacy, legacy_marker = _evil(tmp_path, "evil_env_legacy", legacy=True)
    control, control_marker = _evil(tmp_path, "control_env")
    code = textwrap.dedent(f"""
        import torch, sys
        from torch import nn
        from torchvision_customizer.errors import WeightLoadingError
        from torchvision_customizer.weights import load_state_dict_file, partial_load, resolve_weights
        for p in ({str(path)!r}, {str(legacy)!r}):
            for load in (load_state_dict_file, lambda p: partial_load(nn.Linear(2, 2), p),
                         lambda p: resolve_weights("resnet18", p).state_dict()):
                try:
                    load(p)
                except WeightLoadingError:
                    pass
                else:
                    sys.exit("loaded an unsafe pickle")
        torch.load({str(control)!r})  # no weights_only argument: the env var makes this unsafe
        print("refused")
    """)
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "refused" in out.stdout
    assert control_marker.exists()  # the env var is really in effect in that process
    assert not marker.exists() and not legacy_marker.exists()
