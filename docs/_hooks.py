"""MkDocs hooks: generate the blocks catalog and the CLI reference from the code before each build.

The generated pages are written to ``docs/reference/`` (git-ignored), so they cannot drift from
the registry or from the typer application.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).resolve().parent / "reference"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def blocks_markdown() -> str:
    from torchvision_customizer import registry

    lines = ["# Blocks catalog", "",
             f"{len(registry)} blocks, generated from `torchvision_customizer.registry`. Every block takes "
             "`in_channels` first, declares `out_channels` and `stride`, and accepts `act_layer` / `norm_layer` "
             "by name. Look one up with `registry.get(name)` or `registry.info(name)`.", ""]
    for category in registry.categories():
        lines += [f"## {category}", "", "| name | aliases | output | summary |", "|---|---|---|---|"]
        for name in registry.list(category=category):
            info = registry.info(name)
            aliases = ", ".join(f"`{a}`" for a in info["aliases"])
            lines.append(f"| `{name}` | {aliases} | {_cell(str(info['output']))} | {_cell(info['summary'])} |")
        lines.append("")
    return "\n".join(lines)


def cli_markdown() -> str:
    import typer
    from typer.testing import CliRunner

    from torchvision_customizer.cli import app

    runner = CliRunner()
    root = typer.main.get_command(app)
    names = sorted(getattr(root, "commands", {}))
    lines = ["# CLI reference", "", "Generated from the `tvc` typer application (`tvc CMD --help`).", ""]
    for title, args in [("tvc", ["--help"])] + [(f"tvc {n}", [n, "--help"]) for n in names]:
        result = runner.invoke(app, args, terminal_width=100, env={"NO_COLOR": "1", "TERM": "dumb"})
        if result.exit_code != 0:
            raise RuntimeError(f"`{title} --help` failed: {result.output}")
        lines += [f"## {title}", "", "```text", result.output.rstrip(), "```", ""]
    return "\n".join(lines)


def generate() -> None:
    REFERENCE.mkdir(exist_ok=True)
    (REFERENCE / "blocks.md").write_text(blocks_markdown())
    (REFERENCE / "cli.md").write_text(cli_markdown())


def on_pre_build(config: Any, **kwargs: Any) -> None:
    generate()
