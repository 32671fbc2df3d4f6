"""The accuracy guard: every relative error of a run against a stored baseline.

The baseline maps each row key (scenario, variant, layer, comparison, metric) to the
absolute relative error it had when the baseline was written. A row *regresses* when its
error grows by more than the tolerance (an absolute amount of relative error, default
0.005 = half a percentage point), or when a defined error becomes undefined (the model
predicts something where the truth is 0). Rows new to the run or missing from it are
listed but do not fail the guard, so adding a scenario needs no baseline update first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metronome.spec.fileio import atomic_write_json
from metronome.spec.lexer import read_source
from metronome.spec.source import SourceSpan, SpecError

from .compare import MetricRow

__all__ = ["DEFAULT_TOLERANCE", "BaselineCheck", "Regression", "check", "load", "write"]

DEFAULT_TOLERANCE = 0.005
SCHEMA = "metronome-baseline/1"


@dataclass(frozen=True, slots=True)
class Regression:
    """A row whose error got worse than the baseline allows."""

    key: str
    stored: float | None
    current: float | None
    tolerance: float

    def describe(self) -> str:
        """One line for the terminal and the report."""

        def show(value: float | None) -> str:
            return "undefined" if value is None else f"{value:.4%}"

        return (
            f"{self.key}: |error| {show(self.stored)} -> {show(self.current)}"
            f" (tolerance {self.tolerance:.2%})"
        )


@dataclass(frozen=True, slots=True)
class BaselineCheck:
    """The outcome of comparing a run with a baseline."""

    regressions: tuple[Regression, ...]
    improved: tuple[str, ...]
    new_keys: tuple[str, ...]
    missing_keys: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when nothing regressed."""
        return not self.regressions


def _abs_error(row: MetricRow) -> float | None:
    error = row.rel_error
    return None if error is None else abs(error)


def write(path: str | Path, rows: list[MetricRow], tolerance: float = DEFAULT_TOLERANCE) -> None:
    """Store the current errors as the new baseline (atomically)."""
    entries = {row.key: _abs_error(row) for row in rows}
    atomic_write_json(path, {"schema": SCHEMA, "tolerance": tolerance, "errors": entries})


def load(path: str | Path) -> dict[str, Any]:
    """Read a baseline file; a missing or malformed file is a SpecError."""
    text = read_source(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.splitlines()
        line_text = lines[exc.lineno - 1] if exc.lineno <= len(lines) else ""
        span = SourceSpan(str(path), exc.lineno, exc.colno, 1, line_text)
        raise SpecError.at(span, f"invalid JSON: {exc.msg}") from None
    if (
        not isinstance(data, dict)
        or data.get("schema") != SCHEMA
        or not isinstance(data.get("errors"), dict)
    ):
        raise SpecError.at(None, f"{path}: not a Metronome baseline (expected schema {SCHEMA})")
    return data


def check(rows: list[MetricRow], baseline: dict[str, Any]) -> BaselineCheck:
    """Compare a run's rows with a loaded baseline."""
    tolerance = float(baseline.get("tolerance", DEFAULT_TOLERANCE))
    stored: dict[str, float | None] = baseline["errors"]
    current = {row.key: _abs_error(row) for row in rows}
    regressions, improved = [], []
    for key, now in current.items():
        if key not in stored:
            continue
        before = stored[key]
        if before is None:
            if now is not None:
                improved.append(key)
            continue
        if now is None or now > before + tolerance:
            regressions.append(Regression(key, before, now, tolerance))
        elif now < before - tolerance:
            improved.append(key)
    return BaselineCheck(
        regressions=tuple(regressions),
        improved=tuple(improved),
        new_keys=tuple(k for k in current if k not in stored),
        missing_keys=tuple(k for k in stored if k not in current),
    )
