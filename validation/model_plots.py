"""The report's picture of the refined closed form: its runtime against both simulations
(the fixed model's scatter is drawn by :mod:`metronome.validation.report`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from . import plots
from .document import Block, Image
from .rank import CaseLike

__all__ = ["refined_scatter_blocks"]


def refined_scatter_blocks(cases: Sequence[CaseLike], out: Path) -> list[Block]:
    """``runtime_scatter_refined.png``: analytic-refined vs simulated runtime per layer."""
    points = []
    for case in cases:
        for policy in ("realistic", "maestro"):
            a, s = case.results.get("analytic-refined"), case.results.get(f"sim-{policy}")
            if a and s and a.runtime_cycles > 0 and s.runtime_cycles > 0:
                points.append((float(s.runtime_cycles), float(a.runtime_cycles), f"sim-{policy}"))
    if not points:
        return []
    name = "runtime_scatter_refined.png"
    plots.runtime_scatter(points, "analytic-refined vs simulated runtime, every layer", out / name)
    return [
        Image(
            name,
            "Runtime of the refined closed form against the simulator under both policies"
            " (log-log; the dashed line is y = x)",
        )
    ]
