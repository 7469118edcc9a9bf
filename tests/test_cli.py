"""The ``tvc`` command line, in-process through typer's runner and once as the installed script."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from torchvision_customizer import __version__, registry
from torchvision_customizer.cli import app, main

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"tvc {__version__}"


def test_list_blocks_shows_every_block_and_the_layer_categories() -> None:
    result = runner.invoke(app, ["list-blocks"], terminal_width=250)
    assert result.exit_code == 0, result.output
    for name in registry.list():
        assert name in result.stdout
    assert f"{len(registry)} blocks" in result.stdout
    assert "activation" in result.stdout and "norm" in result.stdout
    assert "swish" in result.stdout  # aliases column


@pytest.mark.parametrize("category", ["attention", "activation", "norm", "residual"])
def test_list_blocks_by_category(category: str) -> None:
    result = runner.invoke(app, ["list-blocks", "--category", category], terminal_width=250)
    assert result.exit_code == 0, result.output
    names = registry.list(category=category)
    assert names and all(n in result.stdout for n in names)
    others = set(registry.list()) - set(names)
    first_column = {line.split("│")[1].strip() for line in result.stdout.splitlines() if line.count("│") > 2}
    assert not first_column & others


def test_unknown_category_is_a_one_line_error_with_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["list-blocks", "--category", "atention"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "atention" in err and "attention" in err and "Traceback" not in err


def test_usage_error_exits_2() -> None:
    result = runner.invoke(app, ["list-blocks", "--no-such-option"])
    assert result.exit_code == 2


@pytest.mark.skipif(shutil.which("tvc") is None, reason="the package is not installed as a script")
def test_installed_script_runs() -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(["tvc", "--version"], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and __version__ in out.stdout
