"""Every Python example in README.md runs (each in a fresh namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from torchvision_customizer import registry

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index: int) -> None:
    registry.list()  # load the built-ins first, so that cleaning up removes only what the example added
    before = set(registry.BLOCKS._entries)
    try:
        exec(compile(BLOCKS[index], f"README.md[python block {index}]", "exec"), {"__name__": "readme"})
    finally:
        for key in set(registry.BLOCKS._entries) - before:  # examples may register demo blocks
            registry.BLOCKS.unregister(key)


def test_readme_starts_with_the_three_commands() -> None:
    first = README.read_text().split("```", 2)[1]
    assert 'python -m pip install -e ".[dev]"' in first
    assert "\ntvc " in first
    assert "python -m pytest" in first
