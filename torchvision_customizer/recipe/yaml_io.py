"""YAML recipes: ``yaml.safe_load`` only, macros, ``extends`` and a schema that is enforced.

Document keys (anything else is an error with suggestions, e.g. ``stagess`` -> ``stages``)::

    name: my_net                    # model name
    version: "1.0"                  # free text
    description: ...                # free text
    input_shape: [3, 224, 224]
    extends: resnet_base            # a built-in template name, a path relative to this file,
                                    # or a list of them (applied in order)
    macros: {width: 64, act: swish} # "@width" anywhere a value is expected, also inside strings
    stem: conv(64)                  # or a dict {type: conv, channels: 64, norm: batch, ...}
    stages:                         # strings or dicts (type/pattern, channels, blocks, downsample,
      - residual+se(@width) x 2     #  attention, drop_path, pool, se, block arguments)
      - {pattern: residual, channels: 128, blocks: 2, downsample: true, attention: se, drop_path: 0.1}
      - branch: [["conv(64)"], ["conv(64, k=5)"]]   # parallel paths, concatenated (merge: add)
    head: mlp(10, hidden=[256], dropout=0.2)        # or {num_classes: 10, hidden: [256], dropout: 0.2}
    drop_path_rate: 0.1
    training: {epochs: 10, lr: 0.001, optimizer: adamw, data: digits}   # Trainer.fit arguments + data
    backbone: {name: resnet50, weights: null, patches: {...}}           # a hybrid model (no stem/stages)

Merge rules for ``extends``: mappings merge deeply (the extending file wins), lists (``stages``)
are replaced whole, ``macros`` merge key by key. A file that extends itself, directly or through
others, is an error listing the cycle. Macros may use other macros; an undefined macro is an error
naming it. Problems carry ``file:line`` and the dotted path; YAML syntax errors give the file, line
and column of the parser.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path as FsPath
from typing import Any

import yaml

from ..errors import RecipeError, UnknownComponentError, closest
from ..spec.issues import Collector, Path, RecipeValidationError, Span
from .recipe import Recipe

__all__ = [
    "DOCUMENT_KEYS",
    "RECIPE_SCHEMA",
    "build_from_config",
    "create_example_recipe",
    "create_recipe_from_template",
    "dump_yaml",
    "expand_macros",
    "get_template",
    "list_templates",
    "load_yaml_config",
    "load_yaml_recipe",
    "merge_recipes",
    "recipe_from_yaml",
    "save_yaml_recipe",
    "validate_recipe_config",
]

DOCUMENT_KEYS = ("name", "version", "description", "input_shape", "extends", "macros", "stem", "stages", "head",
                 "drop_path_rate", "training", "backbone")

#: A description of the document schema (informational; validation is done by the spec itself).
RECIPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "version": {"type": ["string", "number"]},
        "description": {"type": "string"},
        "input_shape": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 3, "maxItems": 3},
        "extends": {"type": ["string", "array"]},
        "macros": {"type": "object"},
        "stem": {"type": ["string", "object", "null"]},
        "stages": {"type": "array", "items": {"type": ["string", "object"]}},
        "head": {"type": ["string", "object", "null"]},
        "drop_path_rate": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        "training": {"type": "object"},
        "backbone": {"type": ["object", "string"]},
    },
}

_MACRO = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")
_TEMPLATE_PACKAGE = "torchvision_customizer.templates"


# --------------------------------------------------------------------------------- reading
def _error(origin: str | None, message: str, *, line: int | None = None, col: int | None = None,
           path: Path = (), code: str = "yaml", **kw: Any) -> RecipeValidationError:
    c = Collector(origin=origin, lines={path: line} if line is not None else None)
    span = Span(line, col or 1, 1) if line is not None and col is not None else None
    c.add(path, code, message, span=span, **kw)
    return RecipeValidationError(c.issues, title=f"YAML recipe {origin}" if origin else "YAML recipe")


def _parse_text(text: str, origin: str | None) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        col = mark.column + 1 if mark is not None else None
        where = f"{origin or '<text>'}:{line}:{col}" if line is not None else (origin or "<text>")
        raise _error(origin, f"invalid YAML at {where}: {exc.problem or exc}", line=line,
                     hint="check indentation, quotes and colons") from None
    except yaml.YAMLError as exc:
        raise _error(origin, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise _error(origin, "invalid YAML: nested too deeply to read", code="yaml",
                     hint="a recipe needs only a few levels of nesting") from None


def _line_map(text: str) -> dict[Path, int]:
    """Dotted path -> 1-based line of its key (or of the item, in a list), from the YAML node tree
    (no object construction)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return {}
    out: dict[Path, int] = {}

    def walk(node: Any, path: Path) -> None:
        if path:
            out.setdefault(path, node.start_mark.line + 1)  # a mapping key keeps its own line
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode):
                    out[(*path, k.value)] = k.start_mark.line + 1
                    walk(v, (*path, k.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                walk(v, (*path, i))

    if root is not None:
        walk(root, ())
    return out


def _read_file(path: FsPath) -> tuple[Any, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise _error(str(path), f"recipe file not found: {path}", code="file",
                     hint="check the path (relative paths in `extends` are relative to the extending file)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _error(str(path), f"cannot read {path}: {exc}", code="file") from None
    return _parse_text(text, str(path)), text


# --------------------------------------------------------------------------------- templates
def _template_files() -> dict[str, Any]:
    from importlib import resources

    try:
        root = resources.files(_TEMPLATE_PACKAGE) / "data"
    except ModuleNotFoundError:
        return {}
    if not root.is_dir():
        return {}
    return {entry.name[:-5]: entry for entry in root.iterdir() if entry.name.endswith(".yaml")}


def list_templates() -> list[str]:
    """Names of the built-in recipe templates (YAML files shipped in the package)."""
    return sorted(_template_files())


def _template_text(name: str) -> str:
    files = _template_files()
    key = name.strip().lower().replace("-", "_") if isinstance(name, str) else name
    if key not in files:
        raise UnknownComponentError(f"unknown template {name!r}", where="recipe templates",
                                    expected="one of " + ", ".join(sorted(files)),
                                    suggestions=closest(str(name), list(files)))
    return files[key].read_text(encoding="utf-8")


def get_template(name: str) -> dict[str, Any]:
    """The raw YAML data of a built-in template (its own ``extends`` not yet resolved)."""
    data = _parse_text(_template_text(name), f"template {name}")
    return copy.deepcopy(data)


# --------------------------------------------------------------------------------- merge / macros
def merge_recipes(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``: mappings merge deeply, lists and scalars are replaced."""
    out: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_recipes(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def expand_macros(config: Mapping[str, Any], *, origin: str | None = None,
                  lines: Mapping[Path, int] | None = None) -> dict[str, Any]:
    """Replace ``"@name"`` values (and ``@name`` inside strings) by ``macros[name]``.

    Macros may use other macros; a cycle or an undefined macro is an error naming it.
    """
    c = Collector(origin=origin, lines=lines)
    macros_raw = config.get("macros") or {}
    if not isinstance(macros_raw, Mapping):
        c.add(("macros",), "type", "macros must be a mapping", got=macros_raw, expected="{name: value}")
        c.raise_if_any("YAML recipe macros")
    resolved: dict[str, Any] = {}

    def resolve(name: str, stack: tuple[str, ...], path: Path) -> Any:
        if name in resolved:
            return resolved[name]
        if name in stack:
            c.add(("macros", name), "macro_cycle", "macros refer to each other in a cycle",
                  got=" -> ".join("@" + s for s in (*stack[stack.index(name):], name)))
            return None
        if name not in macros_raw:
            c.add(path, "undefined_macro", f"undefined macro '@{name}'", got="@" + name,
                  expected="a name defined under macros:" + (
                      " (" + ", ".join(sorted(macros_raw)) + ")" if macros_raw else " (none defined)"),
                  suggestions=closest(name, list(macros_raw)))
            return None
        value = subst(macros_raw[name], (*stack, name), ("macros", name))
        resolved[name] = value
        return value

    def subst(value: Any, stack: tuple[str, ...], path: Path) -> Any:
        if isinstance(value, str):
            whole = _MACRO.fullmatch(value.strip())
            if whole:
                return resolve(whole.group(1), stack, path)
            if "@" not in value:
                return value

            def repl(m: re.Match[str]) -> str:
                v = resolve(m.group(1), stack, path)
                if v is None:
                    return m.group(0)
                from .format import _Unspellable, format_value

                try:
                    return format_value(v)
                except _Unspellable:
                    c.add(path, "macro_value", f"macro '@{m.group(1)}' cannot be written inside a string",
                          got=v)
                    return m.group(0)

            return _MACRO.sub(repl, value)
        if isinstance(value, Mapping):
            return {k: subst(v, stack, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [subst(v, stack, (*path, i)) for i, v in enumerate(value)]
        return value

    out = {k: (v if k == "macros" else subst(v, (), (k,))) for k, v in config.items()}
    for name in macros_raw:
        resolve(name, (), ("macros", name))
    if "macros" in out:
        out["macros"] = dict(resolved)
    c.raise_if_any("YAML recipe macros" + (f" in {origin}" if origin else ""))
    return out


# --------------------------------------------------------------------------------- extends
def _resolve_extends(data: Any, origin: str, base_dir: FsPath | None, chain: tuple[str, ...],
                     lines: Mapping[Path, int]) -> dict[str, Any]:
    if data is None:
        raise _error(origin, "the recipe file is empty", expected="a mapping of recipe keys")
    if not isinstance(data, Mapping):
        raise _error(origin, "a recipe must be a mapping at the top level", got=data,
                     expected="keys such as name, stem, stages, head")
    ext = data.get("extends")
    if ext is None:
        return dict(data)
    parents = ext if isinstance(ext, list) else [ext]
    merged: dict[str, Any] = {}
    for i, parent in enumerate(parents):
        ppath: Path = ("extends",) if not isinstance(ext, list) else ("extends", i)
        if not isinstance(parent, str) or not parent.strip():
            raise _error(origin, "extends must name a template or a file", path=ppath, line=lines.get(ppath),
                         got=parent, expected="a template name or a relative path")
        key, pdata, porigin, pdir, plines = _load_parent(parent, origin, base_dir, ppath, lines)
        if key in chain:
            cycle = " -> ".join((*chain[chain.index(key):], key))
            raise _error(origin, "extends forms a cycle", path=ppath, line=lines.get(ppath), code="extends_cycle",
                         got=cycle, hint="remove one of the extends links")
        resolved = _resolve_extends(pdata, porigin, pdir, (*chain, key), plines)
        merged = merge_recipes(merged, resolved)
    child = {k: v for k, v in data.items() if k != "extends"}
    return merge_recipes(merged, child)


def _load_parent(parent: str, origin: str, base_dir: FsPath | None, ppath: Path,
                 lines: Mapping[Path, int]) -> tuple[str, Any, str, FsPath | None, dict[Path, int]]:
    looks_like_path = any(s in parent for s in ("/", "\\")) or parent.endswith((".yaml", ".yml"))
    if not looks_like_path and parent.strip().lower().replace("-", "_") in _template_files():
        name = parent.strip().lower().replace("-", "_")
        text = _template_text(name)
        return f"template:{name}", _parse_text(text, f"template {name}"), f"template {name}", None, {}
    if base_dir is None:
        base_dir = FsPath.cwd()
    candidate = FsPath(parent)
    if not candidate.is_absolute():
        candidate = base_dir / candidate
    if candidate.suffix not in (".yaml", ".yml") and not candidate.exists():
        candidate = candidate.with_name(candidate.name + ".yaml")
    if not candidate.exists():
        raise _error(origin, f"extends {parent!r}: no such template or file", path=ppath, line=lines.get(ppath),
                     code="extends", got=parent, expected="a template (" + ", ".join(list_templates()) +
                     ") or a path relative to the file", suggestions=closest(parent, list_templates()))
    resolved = candidate.resolve()
    data, text = _read_file(resolved)
    return str(resolved), data, str(resolved), resolved.parent, _line_map(text)


# --------------------------------------------------------------------------------- documents
def _load_document(source: Any) -> tuple[dict[str, Any], str, dict[Path, int]]:
    """Read, resolve ``extends`` and expand macros: ``(config, origin, line map)``."""
    if isinstance(source, Mapping):
        origin = "<dict>"
        data, base_dir, lines, key = dict(source), FsPath.cwd(), {}, "<dict>"
    elif isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source and
                                             source.strip().endswith((".yaml", ".yml"))):
        path = FsPath(source).resolve()
        data, text = _read_file(path)
        origin, base_dir, lines, key = str(path), path.parent, _line_map(text), str(path)
    elif isinstance(source, str):
        origin = "<text>"
        data, base_dir, lines, key = _parse_text(source, None), FsPath.cwd(), _line_map(source), "<text>"
    else:
        raise RecipeError("a YAML recipe must be a path, YAML text or a mapping", got=type(source).__name__,
                          where="load_yaml_config")
    merged = _resolve_extends(data, origin, base_dir, (key,), lines)
    return merged, origin, lines


def _check_document(config: Mapping[str, Any], c: Collector) -> None:
    for key in config:
        if key not in DOCUMENT_KEYS:
            c.add((key,), "unknown_key", f"unknown recipe key {key!r}", got=key,
                  expected="one of " + ", ".join(DOCUMENT_KEYS), suggestions=closest(str(key), DOCUMENT_KEYS))
    version = config.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, (str, int, float))):
        c.add(("version",), "type", "version must be a string or a number", got=version, expected="e.g. '1.0'")
    for key in ("name", "description"):
        value = config.get(key)
        if value is not None and not isinstance(value, str):
            c.add((key,), "type", f"{key} must be a string", got=value)
    if "backbone" in config:
        for key in ("stem", "stages"):
            if key in config:
                c.add((key,), "conflict", f"a backbone recipe has no {key!r}", got=key,
                      hint="use either backbone: (a hybrid model) or stem/stages/head (from scratch)")


def _recipe_of(config: Mapping[str, Any]) -> Recipe:
    kw = {k: config[k] for k in ("name", "input_shape", "stem", "stages", "head", "description", "version",
                                 "training", "drop_path_rate") if k in config}
    if isinstance(kw.get("input_shape"), list):
        kw["input_shape"] = tuple(kw["input_shape"])
    if "version" in kw and kw["version"] is not None:
        kw["version"] = str(kw["version"])
    if "description" in kw and kw["description"] is None:
        kw["description"] = ""
    kw.setdefault("stages", [])
    kw.setdefault("stem", None)
    kw.setdefault("head", None)
    return Recipe(**kw)


def _validate(config: Mapping[str, Any], origin: str, lines: Mapping[Path, int]) -> Recipe | None:
    c = Collector(origin=origin, lines=lines)
    _check_document(config, c)
    if "backbone" in config:
        c.raise_if_any(f"YAML recipe {origin}")
        return None
    _recipe_of(config)._collect(c)  # every problem at once, the document-level ones included
    c.raise_if_any(f"YAML recipe {origin}")
    return _recipe_of(config)


def load_yaml_config(path: Any, validate: bool = True, expand: bool = True) -> dict[str, Any]:
    """Read a YAML recipe: ``extends`` resolved, macros expanded, schema validated; the merged dict."""
    config, origin, lines = _load_document(path)
    if expand:
        config = expand_macros(config, origin=origin, lines=lines)
    if validate:
        _validate(config, origin, lines)
    return config


def recipe_from_yaml(source: Any) -> Recipe:
    """A :class:`Recipe` from a YAML path or text (scratch recipes only; see :func:`load_yaml_recipe`)."""
    config, origin, lines = _load_document(source)
    config = expand_macros(config, origin=origin, lines=lines)
    recipe = _validate(config, origin, lines)
    if recipe is None:
        raise RecipeError("this YAML describes a backbone (hybrid) model, not a Recipe", where=origin,
                          hint="use load_yaml_recipe(path) to build it")
    return recipe


def _hybrid_model(config: Mapping[str, Any], origin: str, num_classes: int | None, overrides: dict[str, Any]) -> Any:
    """Build a ``backbone:`` recipe with the hybrid builder (``torchvision_customizer.hybrid``)."""
    if importlib.util.find_spec("torchvision_customizer.hybrid") is None:
        raise RecipeError("backbone recipes need the hybrid builder, which is not available in this installation",
                          where=f"{origin}: backbone", got=config.get("backbone"),
                          hint="build from scratch with stem/stages/head")
    hybrid = importlib.import_module("torchvision_customizer.hybrid")
    recipe = {"backbone": config["backbone"]}
    if config.get("head") is not None:
        recipe["head"] = config["head"]
    if num_classes is not None:
        overrides = {**overrides, "num_classes": num_classes}
    return hybrid.build_from_recipe(recipe, **overrides)


def load_yaml_recipe(path: Any, num_classes: int | None = None, **overrides: Any) -> Any:
    """Build the model a YAML recipe describes.

    ``num_classes`` overrides the head; ``overrides`` replace top-level keys (``input_shape``,
    ``name``, ``head`` ...) before validation (for ``backbone`` recipes they go to the hybrid builder).
    """
    config, origin, lines = _load_document(path)
    config = expand_macros(config, origin=origin, lines=lines)
    if "backbone" in config:
        c = Collector(origin=origin, lines=lines)
        _check_document(config, c)
        c.raise_if_any(f"YAML recipe {origin}")
        return _hybrid_model(config, origin, num_classes, overrides)
    for key, value in overrides.items():
        if key not in DOCUMENT_KEYS:
            raise RecipeError(f"unknown override {key!r}", where="load_yaml_recipe", got=key,
                              expected="one of " + ", ".join(DOCUMENT_KEYS),
                              suggestions=closest(key, DOCUMENT_KEYS))
        config[key] = value
    recipe = _validate(config, origin, lines)
    if recipe is None:  # unreachable: backbone documents returned above
        raise RecipeError("not a scratch recipe", where=origin)
    return recipe.build(num_classes=num_classes)


def _atomic_write(path: Any, text: str) -> FsPath:
    target = FsPath(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def dump_yaml(data: Mapping[str, Any]) -> str:
    """YAML text with keys in their given order and short lists inline."""

    class _Dumper(yaml.SafeDumper):
        pass

    def _list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.Node:
        flow = all(isinstance(v, (int, float, bool)) or v is None for v in value)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)

    _Dumper.add_representer(list, _list)
    _Dumper.add_representer(tuple, lambda d, v: _list(d, list(v)))
    return yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)


def _as_config(config: Any) -> dict[str, Any]:
    from ..spec.model import ModelSpec

    if isinstance(config, Recipe):
        return config.to_dict()
    if isinstance(config, ModelSpec):
        return Recipe.from_spec(config).to_dict()
    to_recipe = getattr(config, "to_recipe", None)
    if callable(to_recipe):
        return to_recipe().to_dict()
    if isinstance(config, Mapping):
        return dict(config)
    raise RecipeError("cannot write this as a YAML recipe", got=type(config).__name__, where="save_yaml_recipe",
                      expected="a Recipe, ModelSpec, built model (with to_recipe) or dict")


def save_yaml_recipe(config: Any, path: Any, include_metadata: bool = True) -> FsPath:
    """Write a recipe (``Recipe``, ``ModelSpec``, a built model or a dict) to ``path`` (atomically)."""
    data = _as_config(config)
    text = dump_yaml(data)
    if include_metadata:
        from .._version import __version__

        text = f"# written by torchvision-customizer {__version__}\n" + text
    return _atomic_write(path, text)


def validate_recipe_config(config: Any, strict: bool = True) -> Any:
    """Validate a recipe dict (or path): ``True``, or -- with ``strict=False`` -- the list of issues."""
    try:
        load_yaml_config(config)
    except RecipeValidationError as err:
        if strict:
            raise
        return list(err.issues)
    return True if strict else []


def build_from_config(config: Any, num_classes: int | None = None) -> Any:
    """Build a model from a recipe dict (the YAML document form; ``extends`` relative to the cwd)."""
    return load_yaml_recipe(config, num_classes=num_classes)


def create_recipe_from_template(name: str, output_path: Any = None, **overrides: Any) -> dict[str, Any]:
    """A template's recipe with ``overrides`` merged deeply (``num_classes=`` sets the head), validated.

    Written to ``output_path`` when given.
    """
    config = {"extends": name}
    num_classes = overrides.pop("num_classes", None)
    resolved, _, _ = _load_document(config)
    resolved = merge_recipes(resolved, overrides)
    if num_classes is not None:
        head = resolved.get("head")
        if isinstance(head, str):
            from .parser import parse_head

            spec = parse_head(head)
            if spec is None:
                raise RecipeError("the template has no head to set num_classes on", where=f"template {name}")
            import dataclasses

            from .format import format_head

            resolved["head"] = format_head(dataclasses.replace(spec, num_classes=num_classes))
        elif isinstance(head, Mapping):
            resolved["head"] = {**head, "num_classes": num_classes}
        else:
            raise RecipeError("the template has no head to set num_classes on", where=f"template {name}")
    load_yaml_config(resolved)
    if output_path is not None:
        save_yaml_recipe(resolved, output_path)
    return resolved


def create_example_recipe(path: Any) -> FsPath:
    """Write a small, commented example recipe (a ResNet-SE for 10 classes) to ``path``."""
    text = (
        "# An example recipe: a small ResNet with squeeze-and-excitation, 10 classes.\n"
        "name: example_resnet_se\n"
        "version: '1.0'\n"
        "input_shape: [3, 64, 64]\n"
        "macros:\n"
        "  width: 32\n"
        "stem: simple(@width)\n"
        "stages:\n"
        "  - residual+se(@width) x 2\n"
        "  - residual+se(64) x 2 | downsample\n"
        "  - residual+se(128) x 2 | downsample, drop_path=0.05\n"
        "head: linear(10, dropout=0.2)\n"
        "training:\n"
        "  epochs: 5\n"
        "  lr: 0.001\n"
        "  optimizer: adamw\n"
        "  data: digits\n"
    )
    return _atomic_write(path, text)
