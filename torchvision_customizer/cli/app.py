"""``tvc``: typer application. Commands only parse arguments and present results.

Errors from the library (our :class:`~torchvision_customizer.errors.TVCError` family) print as
one line on stderr with exit code 1; usage errors exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .._version import __version__
from ..errors import TVCError

app = typer.Typer(
    name="tvc",
    help="torchvision-customizer: customize pretrained torchvision models and build CNNs from blocks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

_state = {"debug": False}


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"tvc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug


@app.command("list-blocks")
def list_blocks(
    category: Annotated[str | None, typer.Option("--category", "-c",
                                                 help="Only this category (e.g. attention, activation, norm).")] = None,
) -> None:
    """List registered blocks (and the activation, norm and global-pool categories)."""
    from .. import registry

    categories = [category] if category else registry.categories()
    names_by_cat = {c: registry.list(category=c) for c in categories}  # validates the category
    table = Table(title="torchvision-customizer blocks", show_lines=False)
    for col in ("name", "category", "aliases", "summary"):
        table.add_column(col, overflow="fold")
    n_blocks = 0
    for cat in categories:
        reg = registry.registry_for(cat)
        for name in names_by_cat[cat]:
            entry = reg.entry(name)
            table.add_row(entry.name, entry.category, ", ".join(entry.aliases), entry.summary)
            n_blocks += reg is registry.BLOCKS
    console.print(table)
    console.print(f"{n_blocks} blocks" + ("" if category else
                  f" in {len(registry.BLOCKS.categories())} categories, plus "
                  f"{len(registry.ACTIVATIONS)} activations, {len(registry.NORMS)} norms, "
                  f"{len(registry.POOLS)} global pools"))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``tvc`` console script."""
    try:
        app(args=argv, standalone_mode=True)
    except TVCError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
