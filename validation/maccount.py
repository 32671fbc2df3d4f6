"""Which engines count the wrong number of MACs, where the simulator makes it certain.

Where the simulator performs every MAC of a layer exactly once (none missing, none
redundant) the layer's MAC count is known for certain; a closed form reporting another
number is wrong there, and the harness's one-bug-at-a-time re-runs name the MAESTRO bug
behind it. Layers whose mapping computes points twice or never are left out: there the
"right" count depends on what one wants to count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from metronome.spec.names import Engine

if TYPE_CHECKING:
    from .harness import CaseResult

__all__ = ["MacCheck", "MacCount", "mac_check"]

MODELS: tuple[Engine, ...] = (Engine.ANALYTIC_MAESTRO, Engine.ANALYTIC)


@dataclass(frozen=True, slots=True)
class MacCount:
    """One exactly covered layer where some closed form's MAC count is wrong."""

    case: str
    executed_macs: int
    reported_macs: dict[str, int]
    causes: tuple[str, ...]
    """MAESTRO bugs that account for the MAESTRO-compatible count's error, with shares."""


@dataclass(frozen=True, slots=True)
class MacCheck:
    """The MAC-count verdict over a validation run."""

    exact_layers: int
    """Layers the simulator covers exactly once (the ones checked)."""
    wrong: dict[str, int]
    """Per closed form, how many of those it miscounts."""
    cases: tuple[MacCount, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    def summary(self) -> str:
        """One line for the terminal."""
        parts = [f"{name} wrong on {self.wrong[name]}" for name in MODELS if name in self.wrong]
        return (
            f"MAC counts on {self.exact_layers} layers the simulator covers exactly once: "
            + ", ".join(parts)
        )


def _executed(case: CaseResult) -> int | None:
    for label in (Engine.SIM_MAESTRO, Engine.SIM_REALISTIC):
        result = case.results.get(label)
        if result is None:
            continue
        flat = result.flat()
        if flat.get("macs_missing") == 0 and flat.get("macs_redundant") == 0:
            return int(result.macs)
        return None
    return None


def mac_check(cases: Sequence[CaseResult]) -> MacCheck | None:
    """The verdict, or None when no layer was simulated."""
    exact = 0
    wrong = dict.fromkeys(MODELS, 0)
    found: list[MacCount] = []
    seen: set[tuple[str, str]] = set()
    for case in cases:
        executed = _executed(case)
        # Sweep variants repeat the same layer and mapping: count it once.
        if executed is None or (case.path, case.layer) in seen:
            continue
        seen.add((case.path, case.layer))
        exact += 1
        reported = {m: int(case.results[m].macs) for m in MODELS if m in case.results}
        for model, macs in reported.items():
            wrong[model] += macs != executed
        if any(macs != executed for macs in reported.values()):
            causes = tuple(
                f"{a.cause} ({a.share:.0%})" if a.share is not None else a.cause
                for a in case.maestro_bugs
                if a.metric == "macs"
            )
            found.append(MacCount(case.name, executed, reported, causes))
    if not exact:
        return None
    return MacCheck(exact, wrong, tuple(found))
