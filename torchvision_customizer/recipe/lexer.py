"""Tokenizer for recipe strings: every token keeps its line, column and length.

Tokens: names (``residual``, ``x4``, ``swish``), integers, floats (``0.25``, ``1e-3``), quoted
strings, and the punctuation ``( ) [ ] , = + - |`` (and the multiplication sign, as ``x``).
Nothing is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..spec.issues import Span

__all__ = ["LexError", "Token", "tokenize"]

PUNCT = {"(": "LPAREN", ")": "RPAREN", "[": "LBRACK", "]": "RBRACK", ",": "COMMA", "=": "EQ",
         "+": "PLUS", "-": "MINUS", "|": "PIPE", "\u00d7": "TIMES"}


@dataclass(frozen=True)
class Token:
    """A token: ``kind`` (``NAME``, ``INT``, ``FLOAT``, ``STRING``, punctuation or ``EOF``)."""

    kind: str
    text: str
    value: object
    span: Span


class LexError(Exception):
    """A character that starts no token, or an unterminated string (internal; becomes an Issue)."""

    def __init__(self, message: str, span: Span, expected: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.span = span
        self.expected = expected


def _digit(ch: str) -> bool:
    return "0" <= ch <= "9"  # ASCII only: str.isdigit() accepts '²', which int() rejects


def _is_name_start(ch: str) -> bool:
    return ch.isascii() and (ch.isalpha() or ch == "_")


def _is_name_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens (the last one is ``EOF``); raises :class:`LexError`."""
    tokens: list[Token] = []
    i, line, col, n = 0, 1, 1, len(text)

    def span(start: int, start_col: int, length: int) -> Span:
        return Span(line, start_col, max(length, 1), start, source=text)

    while i < n:
        ch = text[i]
        if ch == "\n":
            i, line, col = i + 1, line + 1, 1
            continue
        if ch in " \t\r":
            i, col = i + 1, col + 1
            continue
        start, start_col = i, col
        if _is_name_start(ch):
            while i < n and _is_name_char(text[i]):
                i += 1
            word = text[start:i]
            tokens.append(Token("NAME", word, word, span(start, start_col, i - start)))
        elif _digit(ch) or (ch == "." and i + 1 < n and _digit(text[i + 1])):
            i = _scan_number(text, i)
            word = text[start:i]
            if i < n and _is_name_start(text[i]) and text[i] not in "eE":
                raise LexError(f"malformed number {text[start:i + 1]!r}", span(start, start_col, i - start + 1),
                               "a number followed by a separator")
            is_float = any(c in word for c in ".eE")
            value: object = float(word) if is_float else int(word)
            tokens.append(Token("FLOAT" if is_float else "INT", word, value, span(start, start_col, i - start)))
        elif ch in "'\"":
            j = i + 1
            while j < n and text[j] != ch and text[j] != "\n":
                j += 1
            if j >= n or text[j] != ch:
                raise LexError("unterminated string", span(start, start_col, j - start), f"a closing {ch}")
            word = text[i + 1:j]
            i = j + 1
            tokens.append(Token("STRING", text[start:i], word, span(start, start_col, i - start)))
        elif ch in PUNCT:
            i += 1
            tokens.append(Token(PUNCT[ch], ch, ch, span(start, start_col, 1)))
        else:
            raise LexError(f"unexpected character {ch!r}", span(start, start_col, 1),
                           "a name, a number, a quoted string or one of ( ) [ ] , = + - |")
        col += i - start
    tokens.append(Token("EOF", "", None, Span(line, col, 1, n, source=text)))
    return tokens


def _scan_number(text: str, i: int) -> int:
    n = len(text)
    while i < n and _digit(text[i]):
        i += 1
    if i < n and text[i] == "." and not (i + 1 < n and _is_name_start(text[i + 1])):
        i += 1
        while i < n and _digit(text[i]):
            i += 1
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if j < n and _digit(text[j]):
            i = j
            while i < n and _digit(text[i]):
                i += 1
    return i
