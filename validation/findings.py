"""What a validation run found, drawn from its cases: the headline errors, the largest
causes, the worst layers, where the network congests, which MAC counts are wrong, the
seed paper's findings and the hot spot. The report renders these; it computes nothing.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metronome.spec.energy import energy_table
from metronome.spec.names import Engine

from . import paper
from .congestion import CongestionFinding, congestion_findings
from .harness import RESIDUAL_CAUSE, Attribution, CaseResult, ValidationRun, truth_label
from .maccount import MacCheck, mac_check

if TYPE_CHECKING:
    from metronome.sim import SimResult
    from metronome.spec.hardware import Hardware

__all__ = [
    "Cause",
    "Findings",
    "Headline",
    "HotSpot",
    "PaperVerdicts",
    "WorstLayer",
    "find",
    "hot_spot_case",
]

HEADLINE_COMPARISONS: tuple[tuple[str, str], ...] = (
    ("analytic~sim-realistic", "closed form vs the realistic simulation"),
    ("analytic~sim-maestro", "closed form vs its own assumptions executed"),
    ("analytic-refined~sim-realistic", "refined closed form vs the realistic simulation"),
    ("analytic-maestro~sim-realistic", "MAESTRO's numbers vs the realistic simulation"),
    ("analytic-maestro~maestro", "our MAESTRO-compatible mode vs the MAESTRO binary"),
)
PAPER_SETS: tuple[tuple[str, str], ...] = (
    ("paper", "full-size VGG16 CONV1 and CONV11"),
    (
        "paper-small",
        "VGG16 CONV1 and CONV11 shrunk for speed (the findings are about full-size layers)",
    ),
)
PAPER_ENGINES: tuple[Engine, ...] = tuple(Engine(e) for e in paper.ENGINES)


@dataclass(frozen=True, slots=True)
class Headline:
    """One comparison's runtime error over the run."""

    comparison: str
    meaning: str
    cases: int
    exact: int
    median_abs_error: float | None
    worst_error: float | None
    worst_case: str


@dataclass(frozen=True, slots=True)
class Cause:
    """One cause of the runtime gap between the closed form and the simulation, by the
    layers whose largest cause it is (:func:`largest_cause`)."""

    cause: str
    cases: int
    """Layers whose largest cause it is."""
    abs_gap_cycles: float
    """The summed |runtime gap| of those layers."""
    share: float
    """Their part of the summed |runtime gap| of every explained layer."""


@dataclass(frozen=True, slots=True)
class WorstLayer:
    """A layer where the closed form's runtime is furthest from the realistic simulation."""

    case: str
    analytic_cycles: int
    simulated_cycles: int
    error: float
    largest_cause: str


@dataclass(frozen=True, slots=True)
class PaperVerdicts:
    """The seed paper's findings as one engine measures them on one set of layers."""

    tag: str
    title: str
    engine: Engine
    verdicts: tuple[tuple[str, bool, bool, tuple[str, ...], str], ...]
    """(claim, holds under the paper's conditions, holds on whole-layer figures with scalar
    L1 reads, the conditions whose removal alone flips the verdict, evidence) per
    finding (:func:`paper.attribute`)."""
    values: dict[str, dict[str, dict[str, float]]]
    """Dataflow label -> layer -> the quantities of Figs. 6 and 7."""


@dataclass(frozen=True, slots=True)
class HotSpot:
    """The most congested case, simulated in detail for its pictures."""

    case: str
    engine: Engine
    result: SimResult
    hardware: Hardware


@dataclass(frozen=True, slots=True)
class Findings:
    """Everything the report shows beyond the per-case tables."""

    headlines: tuple[Headline, ...]
    causes: tuple[Cause, ...]
    worst: tuple[WorstLayer, ...]
    congestion: tuple[CongestionFinding, ...]
    macs: MacCheck | None
    paper: tuple[PaperVerdicts, ...]
    hot_spot: HotSpot | None


def hot_spot_case(cases: Sequence[CaseResult]) -> tuple[CaseResult, Engine] | None:
    """The most congested case: the worst slowdown of a bandwidth sweep, else the
    layer whose busiest link is busiest."""
    congestion = congestion_findings(cases)
    if congestion:
        worst = max(congestion, key=lambda f: (f.worst_ratio, f.scenario, f.layer))
        chosen = None
        for case in cases:
            if (
                (case.scenario, case.layer) == (worst.scenario, worst.layer)
                and str(case.settings.get("topology", "bus")) == worst.topology
                and case.settings.get("noc_bw_elems_per_cycle") == worst.worst_bw
            ):
                chosen = (case, Engine.SIM_MAESTRO)
        if chosen is not None:
            return chosen
    busiest = [
        (float(c.results[e].flat().get("noc_max_link_utilization", 0)), c.name, c, e)
        for c in cases
        for e in (Engine.SIM_REALISTIC, Engine.SIM_MAESTRO)
        if e in c.results
    ]
    if not busiest:
        return None
    _, _, case, engine = max(busiest, key=lambda t: (t[0], t[1]))
    return case, engine


def _headlines(run: ValidationRun) -> tuple[Headline, ...]:
    out = []
    for comparison, meaning in HEADLINE_COMPARISONS:
        rows = [r for r in run.rows if r.comparison == comparison and r.metric == "runtime_cycles"]
        if not rows:
            continue
        defined = [r for r in rows if r.rel_error is not None]
        worst = max(defined, key=lambda r: abs(r.rel_error or 0.0), default=None)
        out.append(
            Headline(
                comparison=comparison,
                meaning=meaning,
                cases=len(rows),
                exact=sum(1 for r in rows if r.model == r.truth),
                median_abs_error=statistics.median(abs(r.rel_error or 0.0) for r in defined)
                if defined
                else None,
                worst_error=worst.rel_error if worst else None,
                worst_case=f"{worst.scenario}/{worst.layer}" if worst else "",
            )
        )
    return tuple(out)


def _cause_family(cause: str) -> str:
    """A cause without its per-case detail (directive positions, hottest link)."""
    return cause.split(" (from ")[0].split("; hottest link")[0]


def _causes(cases: Sequence[CaseResult]) -> tuple[Cause, ...]:
    """Causes ranked by the runtime error of the layers they are the largest cause of."""
    total = 0.0
    summed: dict[str, float] = defaultdict(float)
    counted: dict[str, int] = defaultdict(int)
    for case in cases:
        if not any(a.metric == "runtime_cycles" for a in case.attributions):
            continue
        gap = float(
            case.results[Engine.ANALYTIC].runtime_cycles
            - case.results[truth_label(case)].runtime_cycles
        )
        best = _largest(case, gap)
        total += abs(gap)
        if best is not None:
            family = _cause_family(best.cause)
            summed[family] += abs(gap)
            counted[family] += 1
    if not total:
        return ()
    ranked = sorted(summed, key=lambda c: (-summed[c], c))
    return tuple(Cause(c, counted[c], summed[c], summed[c] / total) for c in ranked)


def _largest(case: CaseResult, gap: float) -> Attribution | None:
    """The named cause with the largest runtime effect; the residual (analytic vs
    sim-maestro) only when no named cause covers at least half of the gap."""
    causes = sorted(
        (a for a in case.attributions if a.metric == "runtime_cycles"),
        key=lambda a: (-abs(a.delta), a.cause),
    )
    named = [a for a in causes if a.cause != RESIDUAL_CAUSE]
    if named and gap and abs(named[0].delta) >= abs(gap) / 2:
        return named[0]
    return causes[0] if causes else None


def largest_cause(case: CaseResult, gap: float) -> str:
    """The largest cause of a layer's runtime gap, with its cycles and share, in words."""
    best = _largest(case, gap)
    if best is None:
        return "-"
    share = f" ({best.delta / gap:.0%} of the gap)" if gap else ""
    delta = f"{int(best.delta):,}" if float(best.delta).is_integer() else f"{best.delta:.4g}"
    return f"{best.cause}: {delta} cycles{share}"


def _worst(cases: Sequence[CaseResult], n: int = 8) -> tuple[WorstLayer, ...]:
    scored = []
    for case in cases:
        model = case.results.get(Engine.ANALYTIC)
        truth = case.results.get(Engine.SIM_REALISTIC)
        if model is None or truth is None or truth.runtime_cycles == 0:
            continue
        gap = model.runtime_cycles - truth.runtime_cycles
        error = gap / truth.runtime_cycles
        scored.append(
            WorstLayer(
                case.name,
                model.runtime_cycles,
                truth.runtime_cycles,
                error,
                largest_cause(case, gap),
            )
        )
    scored.sort(key=lambda w: (-abs(w.error), w.case))
    return tuple(scored[:n])


def _paper_values(result: Any, table: Any) -> dict[str, float]:
    parts = paper.energy_breakdown(result, table)
    return {
        "bw": paper.noc_bandwidth(result),
        "l1": paper.l1_all_pes(result),
        "throughput": paper.throughput(result),
        "mac": parts["mac"],
        "l1_energy": parts["l1"],
        "l2_energy": parts["l2"],
    }


def _paper(cases: Sequence[CaseResult]) -> tuple[PaperVerdicts, ...]:
    table = energy_table("maestro")
    out = []
    for tag, title in PAPER_SETS:
        chosen = [c for c in cases if tag in c.tags]
        if not set(paper.DATAFLOWS) <= {c.scenario.split("_", 1)[1] for c in chosen}:
            continue
        for engine in PAPER_ENGINES:
            results: dict[str, dict[str, Any]] = defaultdict(dict)
            for c in chosen:
                if engine in c.results:
                    results[c.scenario.split("_", 1)[1]][c.layer] = c.results[engine]
            try:
                evaluated = paper.evaluate(results, table)
            except KeyError:
                continue
            values = {
                paper.LABELS[flow]: {
                    layer: _paper_values(results[flow][layer], table) for layer in paper.LAYERS
                }
                for flow in paper.DATAFLOWS
            }
            hinges = paper.attribute(results, table)
            verdicts = tuple(
                (f.claim, r.holds, hinges[f.key][0], hinges[f.key][2], r.evidence)
                for f, r in evaluated
            )
            out.append(PaperVerdicts(tag, title, engine, verdicts, values))
    return tuple(out)


def find(run: ValidationRun, hot: tuple[CaseResult, Engine, SimResult | None] | None) -> Findings:
    """Every finding of ``run``; ``hot`` is the hot-spot case with its detailed run."""
    from .runner import job_hardware

    spot = None
    if hot is not None:
        case, engine, result = hot
        if result is not None:
            spot = HotSpot(case.name, engine, result, job_hardware(case.job(engine)))
    return Findings(
        headlines=_headlines(run),
        causes=_causes(run.cases),
        worst=_worst(run.cases),
        congestion=tuple(congestion_findings(run.cases)),
        macs=mac_check(run.cases),
        paper=_paper(run.cases),
        hot_spot=spot,
    )
