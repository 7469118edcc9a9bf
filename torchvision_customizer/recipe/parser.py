"""The recipe grammar: small parsers over :mod:`.lexer` tokens, producing specs with positions.

Grammar (whitespace is free; ``x3`` and ``x 3`` both repeat)::

    stage    := NAME ('+' NAME)* [ '(' args ')' ] [ 'x' INT ] ( '|' modifier (',' modifier)* )*
    stem     := NAME [ '(' args ')' ]           # conv(64), simple(32), patch(96, p=4), none
    head     := NAME [ '(' args ')' ]           # linear(10), mlp(10, hidden=[512, 256]), none
    args     := arg (',' arg)* [',']
    arg      := value | NAME '=' value
    modifier := NAME [ '=' value ]              # downsample, stride=2, drop_path=0.1, se=0.25, k=5
    value    := ['-'] INT | ['-'] FLOAT | STRING | NAME | '[' values ']' | '(' values ')'

Bare names are strings (``act=swish``) except ``True``/``False``/``None`` (also lower case and
``null``). Positional arguments: a stage takes one (``channels``), a stem up to three
(``channels, kernel_size, stride``), a head one (``num_classes``). Short names: ``k``
kernel_size, ``s`` stride, ``p`` padding (``patch_size`` for ``patch`` stems), ``g`` groups,
``e`` expansion/expand_ratio, ``r`` reduction, ``d`` dropout. ``downsample`` is ``stride=2``.

Problems are recorded as located issues (``stages.1 at 1:9`` plus the string with a caret).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..spec.convert import HEAD_KEYS, STEM_KEYS, head_from_value, stage_from_fields, stem_from_value
from ..spec.issues import Collector, Path, Span
from ..spec.model import HeadSpec, StageSpec, StemSpec
from .lexer import LexError, Token, tokenize

__all__ = [
    "ParseError",
    "parse_head",
    "parse_head_into",
    "parse_stage",
    "parse_stage_into",
    "parse_stem",
    "parse_stem_into",
]

_CONSTANTS = {"true": True, "false": False, "none": None, "null": None}
_REPEAT = re.compile(r"^x(\d+)$")
_NO_PART = ("none", "null", "identity", "")
_MAX_DEPTH = 16


class ParseError(Exception):
    """A syntax error at a token (internal; becomes a located Issue)."""

    def __init__(self, message: str, span: Span, expected: str | None = None, got: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.expected = expected
        self.got = got


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # ------------------------------------------------------------------ helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        t = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return t

    def expect(self, kind: str, what: str) -> Token:
        if self.tok.kind != kind:
            raise self.error(f"expected {what}", what)
        return self.next()

    def error(self, message: str, expected: str | None = None) -> ParseError:
        t = self.tok
        got = "end of text" if t.kind == "EOF" else t.text
        return ParseError(f"{message}, got {got!r}" if t.kind != "EOF" else f"{message}, got end of text",
                          t.span, expected)

    @staticmethod
    def join(a: Span, b: Span) -> Span:
        if b.line != a.line:
            return a
        return Span(a.line, a.col, b.offset + b.length - a.offset, a.offset, source=a.source)

    # ------------------------------------------------------------------ values
    def value(self) -> tuple[Any, Span]:
        t = self.tok
        if t.kind == "MINUS":
            self.next()
            num = self.tok
            if num.kind not in ("INT", "FLOAT"):
                raise self.error("expected a number after '-'", "a number")
            self.next()
            return -num.value, self.join(t.span, num.span)  # type: ignore[operator]
        if t.kind in ("INT", "FLOAT", "STRING"):
            self.next()
            return t.value, t.span
        if t.kind == "NAME":
            self.next()
            low = t.text.lower()
            return (_CONSTANTS.get(low, t.text)), t.span
        if t.kind in ("LBRACK", "LPAREN"):
            close = "RBRACK" if t.kind == "LBRACK" else "RPAREN"
            if self.depth >= _MAX_DEPTH:
                raise ParseError(f"lists are nested more than {_MAX_DEPTH} deep", t.span, "a flatter value")
            self.depth += 1
            self.next()
            items: list[Any] = []
            while self.tok.kind != close:
                v, _ = self.value()
                items.append(v)
                if self.tok.kind == "COMMA":
                    self.next()
                elif self.tok.kind != close:
                    raise self.error("expected ',' or the closing bracket", "',' or ']'")
            end = self.next()
            self.depth -= 1
            seq = items if close == "RBRACK" else tuple(items)
            return seq, self.join(t.span, end.span)
        raise self.error("expected a value", "a number, a name, a quoted string or a [list]")

    def args(self) -> tuple[list[tuple[Any, Span]], dict[str, tuple[Any, Span, Span]]]:
        """``'(' args ')'`` -> positional values and keyword ``name -> (value, value span, key span)``."""
        positional: list[tuple[Any, Span]] = []
        keywords: dict[str, tuple[Any, Span, Span]] = {}
        self.expect("LPAREN", "'('")
        while self.tok.kind != "RPAREN":
            if self.tok.kind == "NAME" and self.tokens[self.i + 1].kind == "EQ":
                key = self.next()
                self.next()
                v, vspan = self.value()
                if key.text in keywords:
                    raise ParseError(f"argument {key.text!r} is given twice", key.span, "each argument once")
                keywords[key.text] = (v, vspan, key.span)
            else:
                if keywords:
                    raise self.error("positional argument after keyword arguments", "NAME=VALUE")
                positional.append(self.value())
            if self.tok.kind == "COMMA":
                self.next()
            elif self.tok.kind != "RPAREN":
                raise self.error("expected ',' or ')'", "',' or ')'")
        self.next()
        return positional, keywords

    # ------------------------------------------------------------------ forms
    def call(self) -> tuple[Token, list[tuple[Any, Span]], dict[str, tuple[Any, Span, Span]]]:
        name = self.expect("NAME", "a name")
        if self.tok.kind == "LPAREN":
            pos, kw = self.args()
        else:
            pos, kw = [], {}
        return name, pos, kw

    def end(self) -> None:
        if self.tok.kind != "EOF":
            raise self.error("unexpected text after the definition", "end of text")


def _run(text: Any, c: Collector, path: Path, fn: Callable[[_Parser], Any]) -> Any:
    if not isinstance(text, str):
        c.add(path, "type", "expected a recipe string", got=text)
        return None
    try:
        return fn(_Parser(text))
    except (LexError, ParseError) as e:
        shown = None if e.expected is None or "expected" in e.message else e.expected
        c.add(path, "syntax", e.message, expected=shown, span=e.span)
        return None


def _whole(text: str) -> Span:
    stripped = text.strip()
    start = text.find(stripped[:1]) if stripped else 0
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1) + 1
    return Span(line, col, max(len(stripped.splitlines()[0]) if stripped else 1, 1), start, source=text)


# --------------------------------------------------------------------------------- stage
def parse_stage_into(text: Any, c: Collector, path: Path) -> StageSpec | None:
    """Parse one stage string, recording problems in ``c`` at ``path``; ``None`` on failure."""
    def go(p: _Parser) -> StageSpec | None:
        c.spans.setdefault(path, _whole(p.text))
        fields: dict[str, Any] = {}
        arg_paths: dict[str, Path] = {}

        def put(key: str, value: Any, span: Span, *extra: str) -> None:
            if key in fields:
                raise ParseError(f"{key!r} is given twice", span, "each argument once")
            fields[key] = value
            c.spans[(*path, key)] = span
            for e in extra:
                c.spans.setdefault((*path, e), span)
            arg_paths[key] = (*path, key)

        name = p.expect("NAME", "a block name (e.g. residual)")
        type_text, type_span = name.text, name.span
        if p.tok.kind == "PLUS":
            p.next()
            attn = p.expect("NAME", "an attention name after '+' (e.g. se)")
            type_text += "+" + attn.text
            c.spans[(*path, "attention")] = attn.span
            while p.tok.kind == "PLUS":
                p.next()
                more = p.expect("NAME", "an attention name after '+'")
                type_text += "+" + more.text
                type_span = p.join(name.span, more.span)
        c.spans[(*path, "type")] = type_span
        fields["type"] = type_text
        if p.tok.kind == "LPAREN":
            positional, keywords = p.args()
            if positional:
                put("channels", positional[0][0], positional[0][1])
                for _v, sp in positional[1:]:
                    raise ParseError("a stage takes one positional argument (its output channels)", sp,
                                     "NAME=VALUE for further arguments")
            for key, (v, vspan, kspan) in keywords.items():
                put(key, v, p.join(kspan, vspan))
        _parse_repeat(p, put)
        while p.tok.kind == "PIPE":
            p.next()
            while True:
                key = p.expect("NAME", "a modifier (e.g. downsample, stride=2, drop_path=0.1)")
                if p.tok.kind == "EQ":
                    p.next()
                    v, vspan = p.value()
                    put(key.text, v, p.join(key.span, vspan), *(("stride",) if key.text == "s" else ()))
                else:
                    put(key.text, True, key.span, *(("stride",) if key.text == "downsample" else ()))
                if p.tok.kind != "COMMA":
                    break
                p.next()
            if p.tok.kind == "NAME" and (p.tok.text == "x" or _REPEAT.match(p.tok.text)):
                raise p.error("the repeat 'x N' goes before the modifiers", "'|' or end of text")
        p.end()
        return stage_from_fields(fields, c, path, arg_paths)

    return _run(text, c, path, go)


def _parse_repeat(p: _Parser, put: Callable[..., None]) -> None:
    t = p.tok
    if t.kind == "TIMES" or (t.kind == "NAME" and t.text == "x"):
        p.next()
        v, vspan = p.value()
        if not isinstance(v, int) or isinstance(v, bool):
            raise ParseError("the repeat count must be an integer", vspan, "x N with N >= 1")
        put("blocks", v, p.join(t.span, vspan))
    elif t.kind == "NAME" and _REPEAT.match(t.text):
        p.next()
        put("blocks", int(t.text[1:]), t.span)
    else:
        return
    nt = p.tok
    if nt.kind == "TIMES" or (nt.kind == "NAME" and (nt.text == "x" or _REPEAT.match(nt.text))):
        raise p.error("the repeat 'x N' is given twice", "'|' or end of text")


# --------------------------------------------------------------------------------- stem / head
def _parse_part(text: Any, c: Collector, path: Path, what: str, positional_names: tuple[str, ...],
                keys: dict[str, str], shortcuts: Callable[[str], dict[str, str]],
                convert: Callable[[Any, Collector, Path], Any]) -> Any:
    def go(p: _Parser) -> Any:
        c.spans.setdefault(path, _whole(p.text))
        name, positional, keywords = p.call()
        p.end()
        if name.text.lower() in _NO_PART and not positional and not keywords:
            return None
        c.spans[(*path, "type")] = name.span
        data: dict[str, Any] = {"type": name.text}
        if len(positional) > len(positional_names):
            v, sp = positional[len(positional_names)]
            raise ParseError(f"{what} {name.text!r} takes at most {len(positional_names)} positional "
                             f"argument(s) ({', '.join(positional_names)})", sp, "NAME=VALUE")
        for (v, sp), key in zip(positional, positional_names):
            data[key] = v
            c.spans[(*path, key)] = sp
        table = shortcuts(name.text.lower())
        for key, (v, vspan, kspan) in keywords.items():
            full = table.get(key, key)
            if full in data:
                raise ParseError(f"argument {full!r} is given twice", kspan, "each argument once")
            data[full] = v
            span = p.join(kspan, vspan)
            c.spans[(*path, full)] = span
            if full in keys:
                c.spans[(*path, keys[full])] = span
        return convert(data, c, path)

    return _run(text, c, path, go)


def _stem_shortcuts(kind: str) -> dict[str, str]:
    if kind in ("patch", "patchify", "patch_embed"):
        return {"p": "patch_size"}
    return {"p": "padding"}


def parse_stem_into(text: Any, c: Collector, path: Path) -> StemSpec | None:
    """Parse a stem string (``conv(64)``, ``simple(32)``, ``patch(96, p=4)``, ``none``)."""
    return _parse_part(text, c, path, "stem", ("channels", "kernel_size", "stride"), STEM_KEYS,
                       _stem_shortcuts, stem_from_value)


def parse_head_into(text: Any, c: Collector, path: Path) -> HeadSpec | None:
    """Parse a head string (``linear(10)``, ``mlp(10, hidden=[512, 256], dropout=0.3)``, ``none``)."""
    return _parse_part(text, c, path, "head", ("num_classes",), HEAD_KEYS, lambda _k: {},
                       head_from_value)


# --------------------------------------------------------------------------------- standalone
def _standalone(text: Any, fn: Callable[[Any, Collector, Path], Any], root: str) -> Any:
    c = Collector()
    spec = fn(text, c, (root,))
    if spec is not None and not c:
        spec._check(c, (root,))
    c.raise_if_any(f"{root} {text!r}")
    return spec


def parse_stage(text: str) -> StageSpec:
    """Parse and validate one stage string.

    Example:
        >>> parse_stage("residual+se(96) x 4 | downsample").attention
        'se'
    """
    return _standalone(text, parse_stage_into, "stage")


def parse_stem(text: str) -> StemSpec | None:
    """Parse and validate a stem string (``None`` for ``"none"``)."""
    return _standalone(text, parse_stem_into, "stem")


def parse_head(text: str) -> HeadSpec | None:
    """Parse and validate a head string (``None`` for ``"none"``)."""
    return _standalone(text, parse_head_into, "head")
