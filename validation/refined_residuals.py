"""What is left between the refined closed form and the realistic simulation, and why.

The refined model (docs/refined-model.md) already replaces every MAESTRO assumption the
harness attributes differences to, so its residuals are explained by what the simulation
measures beyond the model's terms: queueing for busy links (the model's network term is
a zero-queueing bound), a different MAC count (the case enumeration's own counting of
awkward mappings), steps whose tiles overflow L1, and partial L1 reuse (LRU keeping part
of a sweep larger than L1, where the model assumes all or nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

from metronome.spec.results import LayerResult

from .document import Block, Heading, Paragraph, Table
from .rank import CaseLike

__all__ = ["REFINED_THRESHOLD", "refined_residual_blocks", "residual_causes"]

REFINED_THRESHOLD = 0.02
"""Runtime |relative error| above which a layer's refined residual is explained."""


def _metric(result: LayerResult, name: str) -> float:
    try:
        return float(result.metric(name))
    except KeyError:
        return 0.0


def residual_causes(model: LayerResult, truth: LayerResult) -> list[str]:
    """The simulation's measurements that the refined model's terms leave out, in words,
    largest first where they are runtime shares."""
    causes: list[tuple[float, str]] = []
    runtime = max(truth.runtime_cycles, 1)
    queueing = _metric(truth, "runtime_split_queueing_cycles")
    if queueing > 0:
        causes.append(
            (queueing / runtime, f"link queueing {queueing / runtime:.0%} of the simulated runtime")
        )
    if model.macs != truth.macs:
        causes.append((1.0, f"MAC count {model.macs:,} vs {truth.macs:,} executed"))
    overflow = _metric(truth, "l1_overflow_steps")
    if overflow > 0:
        causes.append((0.5, f"{int(overflow):,} steps overflow L1"))
    for tensor in ("input", "weight"):
        m, t = model.tensor(tensor).l2_reads, truth.tensor(tensor).l2_reads
        if t and abs(m - t) / t > REFINED_THRESHOLD:
            causes.append((0.25, f"{tensor} L2 reads {m:,} vs {t:,} (partial L1 reuse, halos)"))
    causes.sort(key=lambda c: -c[0])
    return [text for _, text in causes] or ["pipeline fill and drain (no measured cause)"]


def refined_residual_blocks(cases: Sequence[CaseLike], limit: int = 15) -> list[Block]:
    """The report's section on the refined model's largest runtime residuals."""
    rows: list[tuple[float, tuple[str, ...]]] = []
    for case in cases:
        model, truth = case.results.get("analytic-refined"), case.results.get("sim-realistic")
        if model is None or truth is None or truth.runtime_cycles <= 0:
            continue
        error = (model.runtime_cycles - truth.runtime_cycles) / truth.runtime_cycles
        if abs(error) <= REFINED_THRESHOLD:
            continue
        name = f"{case.scenario}/{model.layer}"
        rows.append((abs(error), (name, f"{error:+.1%}", "; ".join(residual_causes(model, truth)))))
    if not rows:
        return []
    rows.sort(key=lambda r: -r[0])
    return [
        Heading("Refined model residuals (runtime, analytic-refined vs realistic)", 2),
        Paragraph(
            f"Layers where the refined closed form is more than {REFINED_THRESHOLD:.0%} off,"
            " with what the simulation measures beyond the model's terms"
            " (docs/refined-model.md, 'What it does not model')."
        ),
        Table(("layer", "error", "what the simulation shows"), tuple(r for _, r in rows[:limit])),
    ]
