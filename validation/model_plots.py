"""The report's pictures of the other closed forms: the refined model's and MAESTRO's
runtime against both simulations, one scatter per model (the fixed model's scatter is
drawn by :mod:`metronome.validation.report`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from . import plots
from .document import Block, Image
from .rank import CaseLike

__all__ = ["MODEL_SCATTERS", "model_scatter_blocks"]

MODEL_SCATTERS: tuple[tuple[str, str, str], ...] = (
    ("analytic-refined", "refined", "the refined closed form"),
    ("analytic-maestro", "maestro", "MAESTRO's closed form (its numbers, bugs included)"),
)
"""(engine, file suffix, caption wording) of each model drawn here."""


def model_scatter_blocks(cases: Sequence[CaseLike], out: Path) -> list[Block]:
    """``runtime_scatter_<model>.png`` per model of :data:`MODEL_SCATTERS`: the model's
    runtime against the simulated runtime under each policy, one point per layer."""
    blocks: list[Block] = []
    for engine, suffix, wording in MODEL_SCATTERS:
        points = []
        for case in cases:
            for policy in ("realistic", "maestro"):
                a, s = case.results.get(engine), case.results.get(f"sim-{policy}")
                if a and s and a.runtime_cycles > 0 and s.runtime_cycles > 0:
                    points.append(
                        (float(s.runtime_cycles), float(a.runtime_cycles), f"sim-{policy}")
                    )
        if not points:
            continue
        name = f"runtime_scatter_{suffix}.png"
        plots.runtime_scatter(points, f"{engine} vs simulated runtime, every layer", out / name)
        blocks.append(
            Image(
                name,
                f"Runtime of {wording} against the simulator under both policies"
                " (log-log; the dashed line is y = x)",
            )
        )
    return blocks
