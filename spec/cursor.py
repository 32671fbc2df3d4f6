"""A position in a token list: what the recursive-descent parsers of the MAESTRO
mapping and hardware files (:mod:`metronome.spec.maestro`) and of the 2018 pragmas
(:mod:`metronome.spec.pragma`) read their input through, so both report a missing token the
same way, at the same place."""

from __future__ import annotations

from .lexer import Token, tokenize
from .source import SourceSpan, SpecError

__all__ = ["TokenCursor", "end_of_text"]


def end_of_text(text: str, path: str) -> SourceSpan:
    """The position just past the last character of ``text`` (line 1 when empty)."""
    lines = text.splitlines() or [""]
    return SourceSpan(path, len(lines), len(lines[-1]) + 1, 1, lines[-1])


class TokenCursor:
    """Tokens, the index of the next one, and where the input ends (for errors)."""

    def __init__(self, tokens: list[Token], eof: SourceSpan) -> None:
        self.tokens = tokens
        self.pos = 0
        self.eof = eof

    @classmethod
    def over_text(cls, text: str, path: str) -> TokenCursor:
        """A cursor at the first token of ``text``."""
        return cls(tokenize(text, path), end_of_text(text, path))

    def peek(self) -> Token | None:
        """The next token, or None at the end."""
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def peek_span(self) -> SourceSpan:
        """Where the next token is, or the end of the input."""
        token = self.peek()
        return token.span if token is not None else self.eof

    def skip(self) -> None:
        """Move past the token :meth:`peek` returned."""
        self.pos += 1

    def next(self, expected: str) -> Token:
        """Take the next token; at the end, an error saying ``expected`` was expected."""
        token = self.peek()
        if token is None:
            raise SpecError.at(self.eof, f"unexpected end of file, expected {expected}")
        self.pos += 1
        return token

    def expect(self, text: str, context: str) -> Token:
        """Take the next token, which must be ``text`` (``context`` says where)."""
        token = self.next(f"'{text}' {context}")
        if token.text != text:
            raise SpecError.at(token.span, f"expected '{text}' {context}, found '{token.text}'")
        return token

    def at(self, text: str) -> bool:
        """Whether the next token is ``text``."""
        token = self.peek()
        return token is not None and token.text == text
