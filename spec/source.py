"""Source positions and the one error type for bad input.

Every front end (MAESTRO ``.m``, the 2018 pragma language, YAML scenarios, command-line
flags) reports problems as a :class:`SpecError` carrying one or more :class:`Diagnostic`,
printed in the compiler format editors and CI annotators understand::

    mapping.m:14:21: error: SpatialMap names dimension 'Q', which is not a CONV dimension
        SpatialMap(1,1) Q;
                        ^
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Diagnostic", "SourceSpan", "SpecError", "SpecWarning"]


@dataclass(frozen=True, slots=True)
class SourceSpan:
    """A 1-based position in an input file, with the text of its line for display."""

    path: str
    line: int
    col: int
    length: int = 1
    line_text: str = field(default="", compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in the input: where, what, and optionally how to fix it."""

    message: str
    span: SourceSpan | None = None
    hint: str | None = None
    severity: str = "error"

    def render(self) -> str:
        """Format as ``path:line:col: error: message``, the source line and a caret."""
        where = f"{self.span}: " if self.span is not None else ""
        lines = [f"{where}{self.severity}: {self.message}"]
        if self.span is not None and self.span.line_text:
            text = self.span.line_text.expandtabs(1).rstrip("\n")
            lines.append(f"    {text}")
            width = max(1, self.span.length)
            lines.append("    " + " " * (self.span.col - 1) + "^" * width)
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


class SpecError(ValueError):
    """Bad input: one or more diagnostics, each pointing at the offending text."""

    def __init__(self, diagnostics: Diagnostic | list[Diagnostic] | tuple[Diagnostic, ...]):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = (diagnostics,)
        self.diagnostics: tuple[Diagnostic, ...] = tuple(diagnostics)
        super().__init__(self.render())

    @classmethod
    def at(cls, span: SourceSpan | None, message: str, hint: str | None = None) -> SpecError:
        """Build an error with a single diagnostic."""
        return cls(Diagnostic(message, span, hint))

    def render(self) -> str:
        """All diagnostics, one block each."""
        return "\n".join(d.render() for d in self.diagnostics)

    @property
    def first(self) -> Diagnostic:
        """The first diagnostic (the one tests usually check)."""
        return self.diagnostics[0]


class SpecWarning(UserWarning):
    """Input that is accepted but probably not what the user meant."""
