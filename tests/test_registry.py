"""The registry: lookup rules, duplicates, suggestions, info, categories and plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from torch import nn

from torchvision_customizer import registry
from torchvision_customizer.errors import RegistryError, TVCError, UnknownComponentError
from torchvision_customizer.registry import Registry


def test_one_block_registry_with_builtin_categories() -> None:
    assert registry.BLOCKS is registry.registry_for("attention")
    assert len(registry) == len(registry.list()) >= 7
    assert registry.list() == sorted(registry.list())
    for cat in ("activation", "norm", "global_pool"):
        assert cat in registry.categories()
        assert not set(registry.list(category=cat)) & {"relu", "batch"} - set(registry.list(category=cat))
    assert "relu" not in registry.list() and "relu" in registry.list(category="activation")
    assert "batch" in registry.list(category="norm")


@pytest.mark.parametrize("spelling", ["se", "SE", "Se-Block", "squeeze_excitation", "SEBlock", " se "])
def test_lookup_is_case_insensitive_with_aliases(spelling: str) -> None:
    assert registry.get(spelling) is registry.get("se")
    assert spelling in registry


def test_get_with_kwargs_instantiates_and_create() -> None:
    block = registry.get("se", channels=32)
    assert isinstance(block, nn.Module) and block.out_channels == 32
    assert registry.create("conv", 3, 8).out_channels == 8


def test_unknown_name_suggests_closest() -> None:
    with pytest.raises(UnknownComponentError, match=r"'botleneck'.*did you mean 'bottleneck'"):
        registry.get("botleneck")
    with pytest.raises(KeyError):  # still a KeyError for old code
        registry.get("nope_nothing")
    with pytest.raises(TVCError):
        registry.get(3)  # type: ignore[arg-type]


def test_activation_and_norm_reachable_by_name() -> None:
    assert registry.get("swish") is nn.SiLU
    assert registry.get("relu6") is nn.ReLU6
    assert registry.info("gn")["name"] == "group"


def test_unknown_category_is_an_error() -> None:
    with pytest.raises(UnknownComponentError, match=r"'atention'.*did you mean 'attention'"):
        registry.list(category="atention")


def test_info_describes_a_block() -> None:
    info = registry.info("Residual")
    assert info["name"] == "residual" and info["category"] == "residual"
    assert "res" in info["aliases"]
    assert info["parameters"]["stride"] == 1 and "in_channels" in info["required"]
    assert info["summary"] and info["output"]


def test_duplicates_raise_unless_forced() -> None:
    reg = Registry("t", kind="thing")
    reg.register("a", int, aliases=("x",))
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("A", float)
    with pytest.raises(RegistryError, match="'x' is already registered"):
        reg.register("b", float, aliases=("X",))
    reg.register("a", float, force=True)
    assert reg.get("a") is float and "x" not in reg  # aliases belong to the registration
    with pytest.raises(ValueError):  # RegistryError is a ValueError
        registry.register("se", nn.Identity)


def test_register_as_decorator_and_call_and_unregister() -> None:
    reg = Registry("t", kind="thing")

    @reg.register("knob", category="controls", aliases=["dial"])
    class Knob:
        """A knob."""

    reg.register("slider", object, category="controls")
    assert reg.list() == ["knob", "slider"] and reg.list("k*") == ["knob"]
    assert reg.categories() == ["controls"]
    assert reg.info("dial")["summary"] == "A knob."
    assert "knob" in repr(reg) and "[dial]" in repr(reg)
    reg.unregister("dial")
    assert "knob" not in reg and "dial" not in reg


def test_force_register_into_global_registry_is_restorable() -> None:
    original = registry.get("simple_gate") if "simple_gate" in registry else None
    assert original is None

    @registry.register("simple_gate", category="attention")
    class SimpleGate(nn.Module):
        """Test gate."""

    try:
        assert registry.get("Simple-Gate") is SimpleGate
        assert "simple_gate" in registry.list(category="attention")
    finally:
        registry.BLOCKS.unregister("simple_gate")
    assert "simple_gate" not in registry


def _write_plugin(root: Path) -> None:
    pkg = root / "tvc_demo_plugin"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        import torch
        from torch import nn

        class PluginGate(nn.Module):
            """A plugin gate."""
            def __init__(self, in_channels):
                super().__init__()
                self.in_channels = self.out_channels = in_channels
                self.stride = 1
            def forward(self, x):
                return x * torch.sigmoid(x)

        def register_many(reg):
            reg.register("plugin_many", PluginGate, category="plugin")
    '''))
    dist = root / "tvc_demo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tvc-demo-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent('''
        [torchvision_customizer.blocks]
        plugin_gate = tvc_demo_plugin:PluginGate
        plugin_funcs = tvc_demo_plugin:register_many
        broken_plugin = tvc_missing_module_xyz:Nothing
    '''))


def test_entry_point_plugins_load_lazily_and_broken_ones_are_reported(tmp_path: Path) -> None:
    _write_plugin(tmp_path)
    code = textwrap.dedent('''
        import warnings
        from torchvision_customizer import registry
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cls = registry.get("plugin_gate")
        assert cls.__name__ == "PluginGate", cls
        assert registry.info("plugin_gate")["category"] == "plugin"
        assert "plugin_many" in registry
        assert "se" in registry and len(registry) > 7
        assert "broken_plugin" in registry.BLOCKS.plugin_errors
        assert "tvc_missing_module_xyz" in registry.BLOCKS.plugin_errors["broken_plugin"]
        assert any("broken_plugin" in str(w.message) for w in caught)
        try:
            registry.get("broken_plugin")
        except KeyError as e:
            assert "broken_plugin" in str(e)
        print("OK")
    ''')
    env = {**os.environ, "PYTHONPATH": str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "OK"
