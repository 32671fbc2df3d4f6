"""Tokens for MAESTRO-style text formats (``.m`` mappings, hardware files, 2018 pragmas).

MAESTRO splits each line on space, tab and the characters ``, - > ( ) : ;`` and drops
empty tokens, so ``K: 64``, ``K 64`` and ``K:64,`` are the same and
``TemporalMap(Sz(R),1) Y;`` reads ``TemporalMap Sz R 1 Y``. This lexer keeps those rules
with three deliberate differences, each accepting text MAESTRO misreads:

* ``-`` between two word characters stays inside the word, so a layer named
  ``Conv2d-1`` keeps its name (MAESTRO reads ``Conv2d`` and ``1``);
* ``-`` directly before a digit at the start of a token makes a negative number, so
  ``K: -4`` is reported as a non-positive size instead of silently read as 4;
* ``{`` and ``}`` are always tokens of their own, and ``//`` starts a comment anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .source import SourceSpan, SpecError

__all__ = ["Token", "read_source", "tokenize"]

_SEPARATORS = frozenset(",:;()>")
_BRACES = frozenset("{}")


@dataclass(frozen=True, slots=True)
class Token:
    """A word of the input and where it is."""

    text: str
    span: SourceSpan

    @property
    def is_int(self) -> bool:
        """Whether the token is an integer literal (possibly negative)."""
        body = self.text[1:] if self.text.startswith("-") else self.text
        return body.isascii() and body.isdigit()


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_'."


def tokenize(
    text: str, path: str, *, first_line: int = 1, display: list[str] | None = None
) -> list[Token]:
    """Split ``text`` into tokens with 1-based line/column spans.

    ``first_line`` numbers the first line of ``text`` (for text cut out of a larger
    file); ``display`` gives the lines to show under diagnostics when ``text`` was
    blanked out around the part to read.
    """
    tokens: list[Token] = []
    for index, raw_line in enumerate(text.splitlines()):
        line_no = first_line + index
        line = raw_line
        i = 0
        n = len(line)
        start = -1

        shown = display[index] if display is not None else line

        def flush(end: int, line_no: int = line_no, line: str = line, shown: str = shown) -> None:
            nonlocal start
            if start >= 0:
                word = line[start:end]
                tokens.append(Token(word, SourceSpan(path, line_no, start + 1, len(word), shown)))
                start = -1

        while i < n:
            ch = line[i]
            if ch == "/" and line.startswith("//", i):
                flush(i)
                break
            if ch.isspace() or ch in _SEPARATORS:
                flush(i)
            elif ch in _BRACES:
                flush(i)
                tokens.append(Token(ch, SourceSpan(path, line_no, i + 1, 1, shown)))
            elif ch == "-":
                inside_word = start >= 0 and i + 1 < n and _is_word_char(line[i + 1])
                negative = start < 0 and i + 1 < n and line[i + 1].isdigit()
                if inside_word:
                    pass
                elif negative:
                    start = i
                else:
                    flush(i)
            elif start < 0:
                start = i
            i += 1
        flush(n)
    return tokens


def read_source(path: str | Path) -> str:
    """Read an input file as text; unreadable or non-UTF-8 files give a SpecError."""
    shown = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise SpecError.at(None, f"{shown}: no such file") from None
    except IsADirectoryError:
        raise SpecError.at(None, f"{shown}: is a directory, expected a file") from None
    except OSError as exc:
        raise SpecError.at(None, f"{shown}: cannot read ({exc.strerror})") from None
    return decode_source(data, shown)


def decode_source(data: bytes, path: str) -> str:
    """Decode UTF-8 input, pointing at the first byte that is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        line_bytes = data.splitlines()[line - 1] if data.splitlines() else b""
        shown = line_bytes.decode("utf-8", errors="replace")
        raise SpecError.at(
            SourceSpan(path, line, col, 1, shown),
            f"byte 0x{data[exc.start]:02x} is not valid UTF-8 text",
        ) from None
