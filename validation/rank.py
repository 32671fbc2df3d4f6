"""Rank fidelity: does a model order mappings as the simulator does?

Kendall's tau-b between a model's runtimes and the simulated ones: over the mappings of
one layer (does the model pick the same winner?) and over a whole set of scenarios.
``tau = (concordant - discordant) / sqrt((n0 - ties_model) (n0 - ties_truth))`` with
``n0 = n (n - 1) / 2`` pairs; 1 is the same order, -1 the reverse, undefined (None) when
either side has every value equal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol

from metronome.spec.results import LayerResult

from .document import Block, Heading, Paragraph, Table

__all__ = ["RANKED_ENGINES", "kendall_tau", "rank_blocks", "rank_fidelity"]


class CaseLike(Protocol):
    """What the rank section reads of a validated layer."""

    scenario: str
    results: dict[str, LayerResult]


def kendall_tau(model: Sequence[float], truth: Sequence[float]) -> float | None:
    """Kendall's tau-b of two equally long sequences (O(n^2): groups are small)."""
    if len(model) != len(truth):
        raise ValueError("kendall_tau needs sequences of the same length")
    n = len(model)
    concordant = discordant = ties_model = ties_truth = 0
    for i in range(n):
        for j in range(i + 1, n):
            dm = model[i] - model[j]
            dt = truth[i] - truth[j]
            if dm == 0:
                ties_model += 1
            if dt == 0:
                ties_truth += 1
            if dm == 0 or dt == 0:
                continue
            if (dm > 0) == (dt > 0):
                concordant += 1
            else:
                discordant += 1
    pairs = n * (n - 1) // 2
    denominator = math.sqrt((pairs - ties_model) * (pairs - ties_truth))
    if denominator == 0:
        return None
    return (concordant - discordant) / denominator


def rank_fidelity(
    groups: Mapping[str, Sequence[tuple[float, float]]],
) -> dict[str, float | None]:
    """Per group of (model, truth) runtimes, tau over its members (None below two
    members or when one side is constant), plus ``"*"``: tau over every pair pooled."""
    out: dict[str, float | None] = {}
    pooled_model: list[float] = []
    pooled_truth: list[float] = []
    for name in sorted(groups):
        pairs = groups[name]
        pooled_model += [m for m, _ in pairs]
        pooled_truth += [t for _, t in pairs]
        out[name] = (
            kendall_tau([m for m, _ in pairs], [t for _, t in pairs]) if len(pairs) >= 2 else None
        )
    out["*"] = kendall_tau(pooled_model, pooled_truth) if len(pooled_model) >= 2 else None
    return out


RANKED_ENGINES: tuple[str, ...] = ("analytic-maestro", "analytic", "analytic-refined")
"""The analytic models ranked against each simulation."""


def rank_blocks(cases: Sequence[CaseLike]) -> list[Block]:
    """The report's rank-fidelity section: per analytic model and simulator policy, the
    mean Kendall tau over the layers simulated under several mappings or hardware
    variants of one scenario, and tau over every layer of the run pooled."""
    rows: list[tuple[str, ...]] = []
    for policy in ("realistic", "maestro"):
        truth_engine = f"sim-{policy}"
        for engine in RANKED_ENGINES:
            groups: dict[str, list[tuple[float, float]]] = {}
            for case in cases:
                model, truth = case.results.get(engine), case.results.get(truth_engine)
                if model is None or truth is None:
                    continue
                groups.setdefault(case.scenario, []).append(
                    (float(model.runtime_cycles), float(truth.runtime_cycles))
                )
            if not groups:
                continue
            taus = rank_fidelity(groups)
            pooled = taus.pop("*")
            defined = [t for t in taus.values() if t is not None]
            mean = sum(defined) / len(defined) if defined else None
            rows.append(
                (
                    f"{engine}~{truth_engine}",
                    _fmt(mean),
                    str(len(defined)),
                    _fmt(min(defined) if defined else None),
                    _fmt(pooled),
                )
            )
    if not rows:
        return []
    return [
        Heading("Rank fidelity (Kendall tau of runtimes)", 2),
        Paragraph(
            "Does the model order mappings as the simulator does (does it pick the same"
            " winner)? Per scenario, tau between the model's and the simulated runtimes over"
            " its layers and variants; then over every layer of the run."
        ),
        Table(
            ("comparison", "mean tau per scenario", "scenarios", "lowest", "tau over all"),
            tuple(rows),
        ),
    ]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
