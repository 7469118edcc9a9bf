"""MkDocs hooks: generate the blocks catalog, the backbone catalog and the CLI reference from the code.

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


def _paths(paths: list[str]) -> str:
    if len(paths) > 3:  # VGG-style stages: first .. last
        return f"`{paths[0]}` .. `{paths[-1]}` ({len(paths)} modules)"
    return ", ".join(f"`{p}`" for p in paths)


def backbones_markdown() -> str:
    from torchvision_customizer.hybrid import CATALOG, get_backbone_spec

    specs = [get_backbone_spec(name) for name in CATALOG]
    families: dict[str, list[Any]] = {}
    for spec in specs:
        families.setdefault(spec.family.name, []).append(spec)
    lines = ["# Backbone catalog", "",
             f"{len(specs)} torchvision classification models, generated from "
             "`torchvision_customizer.hybrid.CATALOG` (the checked-in table the hybrid builder uses; tests "
             "compare every declared channel count and stride with a real forward pass). Stages count from 0 "
             "and the stem is not a stage; the same numbering is used by `unfreeze_stages`, `out_indices`, "
             "`stage:N` patch targets, `model.stages[i]` and `get_stage_outputs`. Strides are the total "
             "reduction of the input at the end of each stage. The head is the final classifier layer plus "
             "what runs between the last stage and it; resizing the head (`num_classes=`) replaces only the "
             "final layer.", ""]
    for family, members in families.items():
        lines += [f"## {family}", "", "| backbone | stem | stages | channels | strides | head (final layer) | layout |",
                  "|---|---|---|---|---|---|---|"]
        previous: tuple[str, str, str] | None = None
        for spec in members:
            stem = _paths(list(spec.stem)) or "(none)"
            stages = "<br>".join(f"{row['index']}: {_paths(row['paths'])}" for row in spec.stage_table())
            head = ", ".join(f"`{p}`" for p in spec.head_parts) + f" (`{spec.classifier}`)"
            shown = [c if previous is None or c != previous[i] else "as above"
                     for i, c in enumerate((stem, stages, head))]
            previous = (stem, stages, head)
            chans = ", ".join(str(c) for c in spec.channels)
            strides = ", ".join(str(s) for s in spec.strides)
            lines.append(f"| `{spec.name}` | {shown[0]} | {shown[1]} | {chans} | {strides} | {shown[2]} | "
                         f"`{spec.layout}` |")
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
    (REFERENCE / "backbones.md").write_text(backbones_markdown())
    (REFERENCE / "cli.md").write_text(cli_markdown())


def on_pre_build(config: Any, **kwargs: Any) -> None:
    generate()
