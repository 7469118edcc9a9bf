"""The documentation site builds with warnings as errors, and every example in it runs.

Extraction (README.md and docs/*.md; the generated pages under docs/reference/ are not scanned):

* every fenced block opens with three backticks and a language at the start of a line, and closes
  with three backticks alone on a line (indented fences are refused, so none can hide);
* ``python`` blocks are executed, each in a fresh namespace, with the current directory a fresh
  temporary folder that holds a copy of ``examples/``. README's python blocks are left to
  ``tests/test_readme.py`` (run once, not twice) and only counted here;
* ``bash``/``console`` blocks: every command (``tvc ...``, or ``$ tvc ...`` in a console block,
  where the other lines are output) runs in-process through typer's ``CliRunner`` and must exit
  0, unless the line ends with ``# exits with status N``. In a console block every output line
  shown must appear in the real output (whitespace collapsed, the temporary folder's path removed;
  a line ending in ``...`` shows only the start of a line).
  A line that is not a ``tvc`` command (``pip install``, ``torchrun``) is refused before anything
  runs: such a block must be marked as an exemption;
* ``yaml`` blocks are parsed with ``yaml.safe_load``; when the first line is ``# file: NAME`` the
  text is written to that file, and a complete recipe (one with ``stem``/``stages``/``head``,
  ``backbone`` or ``extends``) must pass ``tvc validate``;
* ``text`` and ``ebnf`` blocks are not executed; any other language is an error;
* files that a page includes with ``--8<-- "FILE"`` (pymdownx.snippets; ``COMPATIBILITY.md``) are
  scanned as pages of their own.

Markers, in an HTML comment on the line(s) just above a fence:

* ``<!-- continue -->``: the block continues the previous executed block of the same page (same
  namespace, same folder), so a page can build something once and use it in later blocks;
* ``<!-- no-run: REASON; raises NAME -->``: an exemption. The block is run anyway, alone, as an
  ``xfail(strict=True, raises=NAME)``: it must fail with exactly that error, so a marker can not
  outlive its reason.

The counts are checked against a plain count of fence lines in the sources, so an extractor that
finds nothing (or misses a block) fails.
"""

from __future__ import annotations

import linecache
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
EXAMPLES = ROOT / "examples"
#: pymdownx.snippets includes (``--8<-- "COMPATIBILITY.md:2:"``), paths relative to the repository root
_SNIPPET = re.compile(r'^--8<--\s+"([^":]+)(?::[^"]*)?"\s*$', flags=re.M)


def _pages() -> list[Path]:
    pages = [README, *sorted(DOCS.glob("*.md"))]
    included = sorted({ROOT / m for p in pages[1:] for m in _SNIPPET.findall(p.read_text(encoding="utf-8"))})
    return pages + [p for p in included if p not in pages]


PAGES = _pages()

PYTHON = ("python",)
SHELL = ("bash", "console")
YAML = ("yaml",)
NOT_RUN = ("text", "ebnf")
RUNNABLE = PYTHON + SHELL + YAML
#: a floor, so that a broken extractor and a broken plain count can not agree on zero
MIN_BLOCKS = 50

_OPEN = re.compile(r"^```([A-Za-z0-9_+-]+)[^\n`]*$")
_MARK = re.compile(r"^<!--\s*(.*?)\s*-->$")
_NO_RUN = re.compile(r"^no-run:\s*(?P<reason>.+?);\s*raises\s+(?P<error>[A-Za-z_][\w.]*)$")
_EXIT = re.compile(r"#\s*exits with status (\d+)\s*$")


class NotATvcCommand(Exception):
    """A shell line in the docs that the test harness does not run (not a ``tvc`` command)."""


class DocsCommandFailed(AssertionError):
    """A ``tvc`` command of the docs exited with an unexpected status or printed something else."""


@dataclass
class Block:
    page: str
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marks: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def cont(self) -> bool:
        return "continue" in self.marks

    @property
    def no_run(self) -> tuple[str, str] | None:
        for mark in self.marks:
            m = _NO_RUN.match(mark)
            if m:
                return m["reason"], m["error"]
        return None


def _rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def extract(page: Path) -> list[Block]:
    """Every fenced block of ``page``, with the markers written just above it."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```") and line != line.lstrip():
            raise AssertionError(f"{_rel(page)}:{i + 1}: indented fence; the docs test can not see it")
        if line.startswith("```"):
            m = _OPEN.match(line)
            if m is None:
                raise AssertionError(f"{_rel(page)}:{i + 1}: a fence needs a language (```python, ```text ...)")
            start = i
            i += 1
            body: list[str] = []
            while i < len(lines) and lines[i].rstrip() != "```":
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise AssertionError(f"{_rel(page)}:{start + 1}: fence never closed")
            marks: list[str] = []
            j = start - 1
            while j >= 0 and not lines[j].strip():
                j -= 1
            while j >= 0 and _MARK.match(lines[j].strip()):
                marks.insert(0, _MARK.match(lines[j].strip())[1])  # type: ignore[index]
                j -= 1
            blocks.append(Block(_rel(page), start + 1, m[1].lower(), "\n".join(body) + "\n", marks))
        i += 1
    return blocks


ALL = [b for page in PAGES for b in extract(page)]


def _readme_python(b: Block) -> bool:
    return b.page == "README.md" and b.lang in PYTHON


EXEMPT = [b for b in ALL if b.lang in RUNNABLE and b.no_run]
RUN = [b for b in ALL if b.lang in RUNNABLE and not b.no_run and not _readme_python(b)]


def sessions() -> list[list[Block]]:
    """Executed blocks grouped into sessions (a block and the blocks that continue it)."""
    out: list[list[Block]] = []
    for b in RUN:
        if b.cont:
            if not out or out[-1][-1].page != b.page:
                raise AssertionError(f"{b.id}: <!-- continue --> with no executed block before it on the page")
            out[-1].append(b)
        else:
            out.append([b])
    return out


SESSIONS = sessions()


# ----------------------------------------------------------------------------- accounting
def test_every_fence_is_extracted_and_counted() -> None:
    plain = {p: len(re.findall(r"^```[A-Za-z0-9_+-]+", p.read_text(encoding="utf-8"), flags=re.M)) for p in PAGES}
    assert sum(plain.values()) == len(ALL)
    unknown = [b.id + " " + b.lang for b in ALL if b.lang not in RUNNABLE + NOT_RUN]
    assert not unknown, f"fences with a language the docs test does not know: {unknown}"
    fenced = sum(len(re.findall(r"^```(?:python|bash|console|yaml)\b", p.read_text(encoding="utf-8"), flags=re.M))
                 for p in PAGES)
    marked = sum(len(re.findall(r"^<!--\s*no-run:", p.read_text(encoding="utf-8"), flags=re.M)) for p in PAGES)
    readme_python = len(re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S))
    assert len(EXEMPT) == marked, "every no-run marker must sit right above a runnable fence"
    assert len(RUN) + readme_python == fenced - marked
    assert sum(len(s) for s in SESSIONS) == len(RUN)
    assert len(RUN) >= MIN_BLOCKS, f"only {len(RUN)} executed blocks: is the extractor broken?"


def test_readme_install_block_is_marked_and_not_executed() -> None:
    first = extract(README)[0]
    assert first.lang == "bash" and "pip install" in first.code and first.no_run is not None


def test_every_page_is_in_the_nav_and_every_nav_entry_exists() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["strict"] is True

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)
        elif isinstance(node, dict):
            for value in node.values():
                yield from walk(value)

    nav = set(walk(config["nav"]))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.glob("*.md")}
    assert pages <= nav, f"pages missing from the nav: {sorted(pages - nav)}"
    generated = {"reference/blocks.md", "reference/cli.md", "reference/backbones.md"}
    assert nav - pages == generated, f"nav entries without a page: {sorted(nav - pages - generated)}"


def test_included_files_exist_and_the_compatibility_table_skips_only_its_title() -> None:
    migration = (DOCS / "migration.md").read_text(encoding="utf-8")
    assert '--8<-- "COMPATIBILITY.md:2:"' in migration
    assert ROOT / "COMPATIBILITY.md" in PAGES
    first = (ROOT / "COMPATIBILITY.md").read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# "), "line 1 of COMPATIBILITY.md must be its title (the docs include it from line 2)"


def test_quick_start_recipe_is_the_shipped_example() -> None:
    shown = [b for b in extract(DOCS / "quickstart.md") if b.lang == "yaml" and "digits_resnet_se" in b.code]
    assert len(shown) == 1
    data = yaml.safe_load(shown[0].code)
    assert data == yaml.safe_load((EXAMPLES / "digits_resnet_se.yaml").read_text(encoding="utf-8"))


def test_figures_exist() -> None:
    for name in ("digits_curve.png", "benchmarks.png"):
        path = DOCS / "img" / name
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


# ----------------------------------------------------------------------------- the site
@pytest.mark.slow
def test_site_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                          "-d", str(site)], cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    for page in DOCS.glob("*.md"):
        html = site / ("index.html" if page.stem == "index" else f"{page.stem}/index.html")
        assert html.is_file(), html
    cli = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "tvc train" in cli and "tvc validate" in cli
    blocks = (site / "reference" / "blocks" / "index.html").read_text(encoding="utf-8")
    assert "cbam_block" in blocks


# ----------------------------------------------------------------------------- running blocks
def _collapse(text: str) -> str:
    return " ".join(text.split())


def _commands(block: Block) -> list[tuple[str, list[str]]]:
    """``(command line, expected output lines)`` of a shell block; refuses anything but ``tvc``."""
    out: list[tuple[str, list[str]]] = []
    lines = block.code.splitlines()
    joined: list[str] = []
    for line in lines:  # backslash continuations
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1] + " " + line.strip()
        else:
            joined.append(line)
    for line in joined:
        text = line.strip()
        if block.lang == "console":
            if text.startswith("$ "):
                out.append((text[2:].strip(), []))
            elif text and out:
                out[-1][1].append(text)
            continue
        if not text or text.startswith("#"):
            continue
        out.append((text, []))
    for command, _ in out:
        if not command.startswith("tvc "):
            raise NotATvcCommand(f"{block.id}: {command!r} is not a tvc command; the docs test runs only tvc")
    return out


def _run_shell(block: Block, cwd: Path) -> None:
    from typer.testing import CliRunner

    from torchvision_customizer.cli import app

    runner = CliRunner()
    for command, expected in _commands(block):
        m = _EXIT.search(command)
        status = int(m[1]) if m else 0
        args = shlex.split(command, comments=True)[1:]
        result = runner.invoke(app, args, terminal_width=1000, env={"NO_COLOR": "1", "COLUMNS": "1000"})
        output = result.output.replace(str(cwd) + os.sep, "").replace(str(cwd.resolve()) + os.sep, "")
        if result.exit_code != status:
            raise DocsCommandFailed(f"{block.id}: `{command}` exited {result.exit_code} (expected {status}):\n"
                                    f"{output}\n{result.exception!r}")
        have = _collapse(output)
        for want in expected:
            want = want.removesuffix("...")  # "digit.png: 8: ..." shows only the start of a line
            if _collapse(want) not in have:
                raise DocsCommandFailed(f"{block.id}: `{command}` did not print {want!r}; it printed:\n{output}")


def _run_yaml(block: Block, cwd: Path) -> None:
    data = yaml.safe_load(block.code)
    assert isinstance(data, (dict, list)), f"{block.id}: not a YAML mapping or list"
    first = block.code.splitlines()[0].strip()
    m = re.match(r"#\s*file:\s*(\S+)$", first)
    name = m[1] if m else "block.yaml"
    path = cwd / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(block.code, encoding="utf-8")
    if isinstance(data, dict) and ({"stem", "stages", "head"} <= set(data) or "backbone" in data or "extends" in data):
        _run_shell(Block(block.page, block.line, "bash", f"tvc validate {name}\n"), cwd)


def _run(block: Block, namespace: dict[str, Any], cwd: Path) -> None:
    if block.lang in PYTHON:
        linecache.cache[block.id] = (len(block.code), None, block.code.splitlines(True), block.id)  # tracebacks
        exec(compile(block.code, block.id, "exec"), namespace)
    elif block.lang in SHELL:
        _run_shell(block, cwd)
    else:
        _run_yaml(block, cwd)


@pytest.fixture
def docs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working folder with examples/, the process state restored afterwards."""
    from torchvision_customizer import registry

    shutil.copytree(EXAMPLES, tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    environ = dict(os.environ)
    registry.list()  # load the built-ins first, so that cleaning up removes only what a page added
    before = set(registry.BLOCKS._entries)
    threads = __import__("torch").get_num_threads()
    try:
        yield tmp_path
    finally:
        for key in set(registry.BLOCKS._entries) - before:
            registry.BLOCKS.unregister(key)
        os.environ.clear()
        os.environ.update(environ)
        __import__("torch").set_num_threads(threads)


#: sessions that take more than a few seconds on one CPU thread (training, the CLI's main job)
_SLOW_WORDS = ("fit_digits(", "tvc train", ".fit(", "quick_train(")


def _session_params() -> list[Any]:
    params = []
    for s in SESSIONS:
        slow = any(w in b.code for b in s for w in _SLOW_WORDS)
        params.append(pytest.param(s, id=s[0].id, marks=[pytest.mark.slow] if slow else []))
    return params


@pytest.mark.parametrize("session", _session_params())
def test_docs_example_runs(session: list[Block], docs_dir: Path) -> None:
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    for block in session:
        _run(block, namespace, docs_dir)


def _error_class(name: str) -> type[BaseException]:
    import builtins

    from torchvision_customizer import errors

    here = {"NotATvcCommand": NotATvcCommand, "DocsCommandFailed": DocsCommandFailed}
    cls = here.get(name) or getattr(errors, name, None) or getattr(builtins, name, None)
    if not (isinstance(cls, type) and issubclass(cls, BaseException)):
        raise AssertionError(f"unknown error {name!r} in a no-run marker")
    return cls


def _exempt_params() -> list[Any]:
    params = []
    for b in EXEMPT:
        reason, error = b.no_run  # type: ignore[misc]
        params.append(pytest.param(b, id=b.id, marks=pytest.mark.xfail(strict=True, raises=_error_class(error),
                                                                        reason=reason)))
    return params


@pytest.mark.parametrize("block", _exempt_params())
def test_docs_exemption_fails_as_documented(block: Block, docs_dir: Path) -> None:
    _run(block, {"__name__": "__docs__"}, docs_dir)
