"""``tvc``: typer application. Commands only parse arguments and present results.

Every command takes the recipe (or a ``.safetensors`` checkpoint where it makes sense) as a
positional path or as ``--yaml/-y``. Errors from the library (our
:class:`~torchvision_customizer.errors.TVCError` family) print as one message on stderr with exit
code 1; usage errors exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

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

RecipeArg = Annotated[Path | None, typer.Argument(help="Recipe (.yaml) or checkpoint (.safetensors).",
                                                  show_default=False)]
YamlOpt = Annotated[Path | None, typer.Option("--yaml", "-y", help="The recipe, as an option (2.x spelling).",
                                              show_default=False)]


def _source(recipe: Path | None, yaml: Path | None) -> Path:
    if recipe is not None and yaml is not None and recipe != yaml:
        raise typer.BadParameter(f"two recipes given: {recipe} and --yaml {yaml}")
    source = recipe or yaml
    if source is None:
        raise typer.BadParameter("missing the recipe: give it as RECIPE or --yaml/-y")
    return source


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


def _human(n: float | None, unit: str = "") -> str:
    if n is None:
        return "-"
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= div:
            return f"{n / div:.2f}{suffix}{unit}"
    return f"{n:.0f}{unit}"


def _print_summary(summary: Any) -> None:
    table = Table(show_header=False, title=f"model {summary.name}")
    table.add_column("key", style="bold")
    table.add_column("value")
    table.add_row("parameters", f"{summary.params:,}")
    table.add_row("trainable", f"{summary.trainable:,}")
    table.add_row("input", "x".join(str(s) for s in summary.input_shape))
    table.add_row("output", "-" if summary.output_shape is None else str(tuple(summary.output_shape)))
    table.add_row("FLOPs (one image)", _human(summary.flops))
    table.add_row("patches", "\n".join(summary.patches) or "none")
    if summary.load_report:
        table.add_row("weights", summary.load_report)
    console.print(table)


# --------------------------------------------------------------------------- build
@app.command()
def build(
    recipe: RecipeArg = None,
    yaml: YamlOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to save the model.")] = None,
    num_classes: Annotated[int | None, typer.Option("--num-classes", min=1, help="Override the head.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f",
                                     help="safetensors (rebuildable by load_model), pt, onnx, torchscript or "
                                          "export (.pt2).")] = "safetensors",
    opset: Annotated[int, typer.Option(help="ONNX opset (>= 18).")] = 18,
) -> None:
    """Build a recipe, print a one-screen summary and save a self-describing checkpoint."""
    from .. import api

    source = _source(recipe, yaml)
    model = api.load(source, num_classes=num_classes)
    summary = api.summarize(model)
    _print_summary(summary)
    if output is None:
        output = Path(f"{Path(source).stem}.{_SUFFIX.get(fmt, fmt)}")
    written = _save(model, output, fmt, summary.input_shape, opset=opset, dynamic_batch=True)
    console.print(f"saved {fmt} to {written}")


_SUFFIX = {"safetensors": "safetensors", "pt": "pt", "onnx": "onnx", "torchscript": "ts", "export": "pt2"}


def _save(model: Any, output: Path, fmt: str, input_shape: tuple[int, ...], *, opset: int,
          dynamic_batch: bool) -> Path:
    from ..errors import ExportError, closest

    size = (1, *input_shape)
    if fmt == "safetensors":
        from ..weights import save_model

        return save_model(model, output)
    if fmt == "pt":
        from ..api import save_pt

        return save_pt(model, output)
    if fmt == "onnx":
        from ..export import to_onnx

        return to_onnx(model, output, opset=opset, input_size=size, dynamic_batch=dynamic_batch).path
    if fmt == "torchscript":
        from ..export import to_torchscript

        return to_torchscript(model, output, input_size=size).path
    if fmt == "export":
        from ..export import to_torch_export

        return to_torch_export(model, output, input_size=size, dynamic_batch=dynamic_batch).path
    raise ExportError(f"unknown format {fmt!r}", where="--format", expected="one of " + ", ".join(_SUFFIX),
                      got=fmt, suggestions=closest(fmt, list(_SUFFIX)))


# ------------------------------------------------------------------------ validate
@app.command()
def validate(
    recipe: RecipeArg = None,
    yaml: YamlOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Also fail on warnings-level findings "
                                                          "(none are defined: every problem is an error).")]
    = False,
) -> None:
    """Parse, validate and test-build a recipe on the meta device; list every problem with its location."""
    from .. import api
    from ..spec.issues import RecipeValidationError

    source = _source(recipe, yaml)
    try:
        model = api.validate(source)
    except RecipeValidationError as exc:
        err_console.print(f"[bold red]invalid:[/] {source}", highlight=False)
        err_console.print(str(exc), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    params = sum(p.numel() for p in model.parameters())
    console.print(f"valid: {source} builds ({params:,} parameters)", highlight=False)
    del strict  # every finding is already an error


# ---------------------------------------------------------------------- info / explain
def _explain(recipe: Path | None, yaml: Path | None, input_size: int | None) -> None:
    from .. import api

    source = _source(recipe, yaml)
    model = api.load(source)
    shape = api.input_shape_of(model)
    if input_size is not None:
        shape = (shape[0], input_size, input_size)
    explain = getattr(model, "explain", None)
    if callable(explain):
        try:
            text = explain(shape)
        except TypeError:
            text = explain()
        console.print(text, highlight=False, markup=False)
    _print_summary(api.summarize(model, shape))


@app.command()
def info(recipe: RecipeArg = None, yaml: YamlOpt = None,
         input_size: Annotated[int | None, typer.Option(help="Image side for output sizes and FLOPs.")] = None) -> None:
    """Stage table (channels, strides, output sizes, params), patches and load report."""
    _explain(recipe, yaml, input_size)


@app.command()
def explain(recipe: RecipeArg = None, yaml: YamlOpt = None,
            input_size: Annotated[int | None, typer.Option(help="Image side for output sizes and FLOPs.")]
            = None) -> None:
    """Same as ``info``."""
    _explain(recipe, yaml, input_size)


# ------------------------------------------------------------------------ benchmark
@app.command()
def benchmark(
    recipe: RecipeArg = None,
    yaml: YamlOpt = None,
    device: Annotated[str, typer.Option(help="cpu, cuda[:N] or auto.")] = "cpu",
    batch_size: Annotated[int, typer.Option(min=1)] = 1,
    input_size: Annotated[int | None, typer.Option(help="Image side (default: the recipe's).")] = None,
    warmup: Annotated[int, typer.Option(min=0)] = 5,
    iterations: Annotated[int, typer.Option(min=1)] = 50,
    channels_last: Annotated[bool, typer.Option("--channels-last")] = False,
    compile: Annotated[bool, typer.Option("--compile")] = False,
    amp: Annotated[bool, typer.Option("--amp", help="bf16 autocast on CPU, fp16 on CUDA.")] = False,
    compare: Annotated[str | None, typer.Option(help="A torchvision model to time side by side.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Latency percentiles (device-synchronized), throughput, peak memory, params and FLOPs."""
    from .. import api
    from ..benchmark import benchmark as run_benchmark

    source = _source(recipe, yaml)
    model = api.load(source)
    shape = api.input_shape_of(model)
    if input_size is not None:
        shape = (shape[0], input_size, input_size)
    opts = {"input_size": shape, "batch_size": batch_size, "device": device, "warmup": warmup,
            "iterations": iterations, "channels_last": channels_last, "compile": compile, "amp": amp}
    results = {"model": run_benchmark(model, **opts)}
    if compare:
        results[compare] = run_benchmark(_torchvision_model(compare), **opts)
    if as_json:
        payload: dict[str, Any] = {k: v.to_dict() for k, v in results.items()}
        if compare:
            payload["ratio_p50"] = results["model"].latency_ms["p50"] / results[compare].latency_ms["p50"]
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table(title=f"benchmark ({results['model'].device}, batch {batch_size}, "
                        f"{'x'.join(map(str, shape))}, {iterations} iterations, {results['model'].threads} threads)")
    for col in ("model", "p50 ms", "p90 ms", "p99 ms", "img/s", "peak MB", "params", "FLOPs"):
        table.add_column(col, justify="right" if col != "model" else "left")
    for name, r in results.items():
        label = str(source) if name == "model" else name
        table.add_row(label, f"{r.latency_ms['p50']:.2f}", f"{r.latency_ms['p90']:.2f}", f"{r.latency_ms['p99']:.2f}",
                      f"{r.throughput:.1f}", f"{r.peak_memory_mb:.1f}", _human(r.params), _human(r.flops))
    console.print(table)
    if compare:
        ratio = results["model"].latency_ms["p50"] / results[compare].latency_ms["p50"]
        console.print(f"p50 latency ratio (ours / {compare}): {ratio:.3f}")


def _torchvision_model(name: str) -> Any:
    import torchvision

    from ..errors import BackboneError, closest

    names = torchvision.models.list_models(module=torchvision.models)
    if name not in names:
        raise BackboneError(f"unknown torchvision model {name!r}", where="--compare", got=name,
                            suggestions=closest(name, names))
    return torchvision.models.get_model(name, weights=None)


# --------------------------------------------------------------------------- export
@app.command()
def export(
    recipe: RecipeArg = None,
    yaml: YamlOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The file to write.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="onnx, export (.pt2), torchscript or safetensors.")]
    = "onnx",
    opset: Annotated[int, typer.Option(help="ONNX opset (>= 18).")] = 18,
    dynamic_batch: Annotated[bool, typer.Option("--dynamic-batch", help="Make the batch dimension dynamic.")]
    = False,
    input_size: Annotated[int | None, typer.Option(help="Image side (default: the recipe's).")] = None,
) -> None:
    """Export a recipe or checkpoint; ONNX files are checked and compared with onnxruntime (atol 1e-4)."""
    from .. import api

    source = _source(recipe, yaml)
    if output is None:
        raise typer.BadParameter("missing --output/-o FILE")
    model = api.load(source)
    shape = api.input_shape_of(model)
    if input_size is not None:
        shape = (shape[0], input_size, input_size)
    written = _save(model, output, fmt, shape, opset=opset, dynamic_batch=dynamic_batch)
    extra = f", opset {opset}, verified in onnxruntime" if fmt == "onnx" else ""
    console.print(f"exported {fmt} to {written}{extra}", highlight=False)


# ---------------------------------------------------------------------------- train
@app.command()
def train(
    recipe: RecipeArg = None,
    yaml: YamlOpt = None,
    data: Annotated[str | None, typer.Option(help="digits, mnist, cifar10, cifar100 or imagefolder:PATH "
                                                  "(default: the recipe's training.data, else digits).")] = None,
    epochs: Annotated[int | None, typer.Option(min=1)] = None,
    batch_size: Annotated[int | None, typer.Option(min=1)] = None,
    lr: Annotated[float | None, typer.Option(min=0.0)] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for checkpoint, metrics and curve.")]
    = Path("runs/tvc"),
    data_dir: Annotated[Path, typer.Option(help="Root of mnist/cifar data on disk.")] = Path("./data"),
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the last checkpoint in OUTPUT.")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int | None, typer.Option(help="Seed for a reproducible run.")] = 0,
    progress: Annotated[bool, typer.Option("--progress/--no-progress")] = True,
) -> None:
    """Train a recipe (defaults from its ``training:`` section); writes model, metrics and a learning curve."""
    from .. import api
    from ..train import Trainer

    source = _source(recipe, yaml)
    section = api.training_section(source)
    model = api.load(source)
    dataset = data or section.pop("data", None) or "digits"
    section.pop("data", None)
    fit_kw: dict[str, Any] = {k: v for k, v in section.items() if v is not None}
    for key, value in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr)):
        if value is not None:
            fit_kw[key] = value
    output.mkdir(parents=True, exist_ok=True)
    fit_kw.update(checkpoint_dir=output / "checkpoints", resume=resume, progress=progress)
    trainer = Trainer(model, device=device, seed=seed)
    metrics, preprocess = api.run_training(trainer, dataset, data_dir=data_dir, **fit_kw)
    if not trainer.is_main_process:
        return
    from ..weights import save_model

    meta = {api.PREPROCESS_KEY: json.dumps(preprocess)}
    ckpt = save_model(model, output / "model.safetensors", metadata=meta)
    metrics.to_csv(output / "metrics.csv")
    metrics.to_json(output / "metrics.json")
    curve = metrics.plot(output / "curve.png")
    console.print(metrics.summary(), highlight=False)
    console.print(f"wrote {ckpt}, {output / 'metrics.csv'}, {output / 'metrics.json'}, {curve}", highlight=False)


# -------------------------------------------------------------------------- predict
@app.command()
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint from `tvc build` or `tvc train`.")],
    images: Annotated[list[Path], typer.Argument(help="Image files.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1)] = 3,
) -> None:
    """Print the top-k classes of each image, using the checkpoint's preprocessing and class names."""
    from .. import api

    model = api.load(checkpoint).eval()
    meta = api.preprocess_meta(checkpoint)
    batch = api.load_images(images, meta, default_shape=api.input_shape_of(model))
    import torch

    with torch.no_grad():
        probs = model(batch).softmax(-1)
    classes = meta.get("classes")
    k = min(top_k, probs.shape[-1])
    for path, row in zip(images, probs):
        values, idx = row.topk(k)
        ranked = ", ".join(f"{classes[i] if classes else i}: {v:.3f}" for v, i in zip(values.tolist(), idx.tolist()))
        console.print(f"{path}: {ranked}", highlight=False, soft_wrap=True)


# ------------------------------------------------------------------------- listings
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


@app.command("list-backbones")
def list_backbones(
    filter: Annotated[str | None, typer.Option("--filter", help="fnmatch pattern, e.g. 'resnet*'.")] = None,
) -> None:
    """List the torchvision backbones the hybrid builder supports (stages, channels, strides)."""
    from ..hybrid import list_backbones as backbones

    names = backbones(filter)
    table = Table(title=f"{len(names)} backbones")
    table.add_column("name")
    for name in names:
        table.add_row(name)
    console.print(table)


@app.command("list-templates")
def list_templates() -> None:
    """List the built-in recipe templates."""
    from ..recipe import list_templates as templates

    for name in templates():
        console.print(name, highlight=False)


@app.command("create-recipe")
def create_recipe(
    template: Annotated[str, typer.Option("--template", "-t", help="A name from `tvc list-templates`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The YAML file to write.")],
    num_classes: Annotated[int | None, typer.Option("--num-classes", min=1)] = None,
) -> None:
    """Write a template as an editable YAML recipe."""
    from ..recipe import create_recipe_from_template

    overrides: dict[str, Any] = {}
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    written = create_recipe_from_template(template, output_path=output, **overrides)
    console.print(f"wrote {written if isinstance(written, (str, Path)) else output}", highlight=False)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``tvc`` console script."""
    try:
        app(args=argv, standalone_mode=True)
    except TVCError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
