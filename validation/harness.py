"""The validation run: both engines on every scenario, compared and explained.

For every layer of every scenario variant the harness runs the analytic model (fixed and
MAESTRO-compatible) and the simulator under each requested policy, then

* compares them metric by metric (:mod:`validation.compare`): ``analytic~sim-realistic``
  (how accurate is the closed form on realistic hardware?), ``analytic~sim-maestro`` (does
  the closed form compute its own assumptions right?) and ``analytic-maestro~maestro``
  where the scenario carries the MAESTRO binary's numbers;
* explains the gap between the closed form and the realistic simulation: it re-runs the
  simulator with one modelling switch at a time set to MAESTRO's assumption, and once
  with an unbounded NoC, and reports how much of each metric's gap each one accounts for;
  it re-runs the closed form with unbounded off-chip bandwidth and with each of its own
  timing assumptions (:data:`MODEL_ASSUMPTIONS`) switched off. What remains between
  ``sim-maestro`` and ``analytic`` is the closed form's own approximation of its
  assumptions (edge tiles, reuse it misses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spec.results import LayerResult
from spec.scenario import Scenario
from spec.source import Diagnostic, SpecError

from .compare import MetricRow, compare_layer, compare_values
from .dask_exec import DaskTarget
from .runner import Job, Progress, run_jobs, scenario_of

__all__ = [
    "ASSUMPTIONS",
    "MODEL_ASSUMPTIONS",
    "RESIDUAL_CAUSE",
    "Attribution",
    "CaseResult",
    "ValidationRun",
    "run_validation",
    "truth_label",
]

ASSUMPTIONS: tuple[tuple[str, str, bool], ...] = (
    ("psum_writeback_every_step", "partial sums written back to L2 every step", True),
    ("l1_keeps_reusable_data", "L1 holds only the current tile (no reuse of older data)", False),
    ("free_spatial_reduction", "free, instantaneous spatial reduction", True),
)
"""(simulator switch, MAESTRO's assumption in words, MAESTRO's setting)."""

MODEL_ASSUMPTIONS: tuple[tuple[str, str], ...] = (
    (
        "nested_fill_serialised",
        "the closed form pays each nested cluster's fill (its first ingress, then compute)"
        " in every step of the level above; executed, it overlaps the previous compute",
    ),
    (
        "nested_noc_charged",
        "the closed form charges every cluster level its own NoC delay, so data is paid"
        " for once per level it crosses; the simulated machine has one network from L2 to"
        " the PEs",
    ),
)
"""(analytic assumption switched off on its own, what it costs in words): assumptions
whose effect shows between the closed form and ``sim-maestro`` (the same assumptions
executed), measured as ``analytic - analytic with it off``."""

EXPLAINED_METRICS: tuple[str, ...] = (
    "runtime_cycles",
    "macs",
    "tensors.input.l2_reads",
    "tensors.weight.l2_reads",
    "tensors.output.l2_reads",
    "tensors.output.l2_writes",
)
EXPLAIN_THRESHOLD = 0.01
RESIDUAL_CAUSE = "closed form vs its own assumptions executed (analytic - sim-maestro)"
"""The whole gap between the closed form and ``sim-maestro``: what no single switch
names (edge tiles, reuse the closed form misses, its off-chip and fill models)."""


@dataclass(frozen=True, slots=True)
class Attribution:
    """How much of the gap between the closed form and the simulation (realistic, or
    maestro-policy where only that ran) one cause accounts for, for one metric."""

    metric: str
    cause: str
    delta: float
    share: float | None


@dataclass(slots=True)
class CaseResult:
    """Everything about one layer of one scenario variant."""

    scenario: str
    path: str
    variant: str
    layer: str
    layer_index: int
    tags: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    results: dict[str, LayerResult] = field(default_factory=dict)
    per_pe: dict[str, Any] = field(default_factory=dict)
    noc: dict[str, Any] = field(default_factory=dict)
    variant_index: int = 0
    reference: dict[str, float] = field(default_factory=dict)
    attributions: list[Attribution] = field(default_factory=list)
    maestro_bugs: list[Attribution] = field(default_factory=list)
    functional: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """``scenario[variant]/layer`` for tables."""
        variant = f"[{self.variant}]" if self.variant else ""
        return f"{self.scenario}{variant}/{self.layer}"


@dataclass(slots=True)
class ValidationRun:
    """The outcome of ``metronome validate``."""

    scenarios: list[Scenario]
    cases: list[CaseResult]
    rows: list[MetricRow]
    seconds: dict[str, float]
    warnings: list[Diagnostic]


def _base_jobs(scenario: Scenario) -> list[Job]:
    jobs = []
    for v in range(len(scenario.variants())):
        for i in range(len(scenario.network.layers)):
            jobs.append(Job(scenario.path, v, i, "analytic"))
            jobs.append(Job(scenario.path, v, i, "analytic-maestro"))
            jobs.append(Job(scenario.path, v, i, "analytic-refined"))
            jobs.extend(Job(scenario.path, v, i, f"sim-{p}") for p in scenario.policies)
            if scenario.functional and v == 0:
                jobs.append(Job(scenario.path, v, i, "sim-functional"))
    return jobs


def truth_label(case: CaseResult) -> str:
    """The simulation the closed form is explained against: the realistic one, or the
    maestro-policy one in scenarios that run only that (the congestion sweeps)."""
    return "sim-realistic" if "sim-realistic" in case.results else "sim-maestro"


def _needs_explaining(case: CaseResult) -> bool:
    model, truth = case.results.get("analytic"), case.results.get(truth_label(case))
    if model is None or truth is None or "sim-maestro" not in case.results:
        return False
    rows = compare_layer(case.scenario, case.variant, "x", model, truth)
    return any(
        r.metric in EXPLAINED_METRICS
        and (r.rel_error is None or abs(r.rel_error) > EXPLAIN_THRESHOLD)
        for r in rows
    )


def _bug_jobs(case: CaseResult, variant: int) -> list[Job]:
    """One fixed-model run per MAESTRO bug, that bug alone switched back on, for layers
    where MAESTRO's numbers differ from the fixed model's."""
    fixed, compat = case.results.get("analytic"), case.results.get("analytic-maestro")
    if fixed is None or compat is None:
        return []
    a, b = fixed.flat(), compat.flat()
    if all(a.get(m) == b.get(m) for m in EXPLAINED_METRICS):
        return []
    from analytic.deviations import DEVIATIONS

    alone = [
        Job(case.path, variant, case.layer_index, "analytic", ((d.flag, True),)) for d in DEVIATIONS
    ]
    removed = [
        Job(case.path, variant, case.layer_index, "analytic-maestro", ((d.flag, False),))
        for d in DEVIATIONS
    ]
    return alone + removed


def _bug_attributions(
    case: CaseResult, alone: dict[str, LayerResult], removed: dict[str, LayerResult]
) -> list[Attribution]:
    """How much of MAESTRO's difference from the fixed model each of its bugs makes: the
    fixed model with that bug alone switched on, or, for a bug that matters only together
    with others, MAESTRO with that bug alone fixed."""
    from analytic.deviations import DEVIATIONS

    fixed, compat = case.results["analytic"].flat(), case.results["analytic-maestro"].flat()
    out = []
    for metric in EXPLAINED_METRICS:
        gap = float(compat.get(metric, 0)) - float(fixed.get(metric, 0))
        if not gap:
            continue
        for d in DEVIATIONS:
            cause = f"MAESTRO bug {d.ident}: {d.title}" + _where(case, d.ident)
            on, off = alone.get(d.flag), removed.get(d.flag)
            delta = float(on.flat()[metric]) - float(fixed[metric]) if on else 0.0
            if not delta and off is not None:
                delta = float(compat[metric]) - float(off.flat()[metric])
                cause += " (jointly with another bug; the share is what fixing it alone removes)"
            if delta:
                out.append(Attribution(metric, cause, delta, delta / gap))
    return out


def _explain_jobs(case: CaseResult, variant: int) -> list[Job]:
    jobs = []
    if "sim-realistic" in case.results:
        jobs += [
            Job(case.path, variant, case.layer_index, "sim-realistic", ((switch, value),))
            for switch, _, value in ASSUMPTIONS
        ]
        jobs.append(Job(case.path, variant, case.layer_index, "sim-realistic", (), True))
    jobs.append(Job(case.path, variant, case.layer_index, "analytic", (), False, True))
    for assumption, _ in MODEL_ASSUMPTIONS:
        jobs.append(
            Job(
                case.path,
                variant,
                case.layer_index,
                "analytic",
                assumptions=((assumption, False),),
            )
        )
    return jobs


def _where(case: CaseResult, cause: str) -> str:
    """The directives behind ``cause`` in this layer's mapping, with their positions."""
    from .sites import describe_sites

    entry = scenario_of(case.path).network.layers[case.layer_index]
    return describe_sites(cause, entry.layer, entry.require_mapping())


def _contention_cause(case: CaseResult) -> str:
    """Contention in the simulated network, with its hottest link."""
    words = (
        "contention: transfers queueing for busy links (the closed form's NoC is zero-load,"
        " one delay per step whatever the number of messages)"
    )
    hot = case.noc.get(truth_label(case), {}).get("hottest_links") or []
    if hot:
        top = hot[0]
        words += f"; hottest link {top['src']}->{top['dst']} busy {top['utilization']:.0%}"
    return words


def _attribute(case: CaseResult, extra: dict[str, LayerResult]) -> list[Attribution]:
    model = case.results["analytic"].flat()
    real = case.results[truth_label(case)].flat()
    maestro = case.results["sim-maestro"].flat()
    out = []
    causes = [(f"{words} ({switch})", extra.get(switch)) for switch, words, _ in ASSUMPTIONS]
    causes.append(
        ("finite NoC bandwidth and contention (zero-load / unbounded NoC)", extra.get("noc"))
    )
    offchip = extra.get("offchip")
    model_side = [
        (words + _where(case, assumption), extra.get(assumption))
        for assumption, words in MODEL_ASSUMPTIONS
        if extra.get(assumption) is not None
    ]
    for metric in EXPLAINED_METRICS:
        if metric not in model or metric not in real:
            continue
        gap = float(model[metric]) - float(real[metric])
        if gap == 0:
            continue
        for cause, result in causes:
            if result is None:
                continue
            delta = float(result.flat()[metric]) - float(real[metric])
            if delta:
                out.append(Attribution(metric, cause, delta, delta / gap))
        if offchip is not None:
            delta = float(model[metric]) - float(offchip.flat()[metric])
            if delta:
                out.append(
                    Attribution(
                        metric,
                        "the closed form's off-chip model (every step's L2 tiles refetched at the"
                        " off-chip bandwidth; the simulator fetches each element once)",
                        delta,
                        delta / gap,
                    )
                )
        if metric == "runtime_cycles" and "runtime_noc_zero_load_cycles" in real:
            # The simulator's own clock on a contention-free network: no extra run.
            delta = float(real["runtime_noc_zero_load_cycles"]) - float(real[metric])
            if delta:
                out.append(Attribution(metric, _contention_cause(case), delta, delta / gap))
        for cause, result in model_side:
            assert result is not None
            delta = float(model[metric]) - float(result.flat()[metric])
            if delta:
                out.append(Attribution(metric, cause, delta, delta / gap))
        own = float(model[metric]) - float(maestro[metric])
        if own:
            out.append(
                Attribution(
                    metric,
                    RESIDUAL_CAUSE,
                    own,
                    own / gap,
                )
            )
    return out


def run_validation(
    paths: list[Path],
    processes: int = 2,
    progress: Progress | None = None,
    dask: DaskTarget | None = None,
) -> ValidationRun:
    """Load, run, compare and explain every scenario in ``paths``."""
    scenarios: list[Scenario] = []
    problems: list[Diagnostic] = []
    for path in paths:
        try:
            scenarios.append(scenario_of(str(path)))
        except SpecError as exc:
            problems.extend(exc.diagnostics)
    if problems:
        raise SpecError(problems)
    for scenario in scenarios:
        for entry in scenario.network.layers:
            entry.require_mapping()
            for _, hw in scenario.variants():
                entry.require_mapping().units_per_level(hw.num_pes)
    by_path = {s.path: s for s in scenarios}
    payloads, seconds = run_jobs(
        [j for s in scenarios for j in _base_jobs(s)], processes, progress, dask
    )
    cases: dict[tuple[str, int, int], CaseResult] = {}
    for job, payload in payloads.items():
        scenario = by_path[job.scenario]
        key = (job.scenario, job.variant, job.layer)
        case = cases.get(key)
        if case is None:
            entry = scenario.network.layers[job.layer]
            case = cases[key] = CaseResult(
                scenario=scenario.name,
                path=scenario.path,
                variant=scenario.variants()[job.variant][0],
                layer=entry.name,
                layer_index=job.layer,
                tags=scenario.tags,
                settings=_settings(scenario, job.variant),
                variant_index=job.variant,
                reference=_reference(scenario, entry.name),
            )
        if "functional" in payload:
            case.functional = payload["functional"]
            continue
        case.results[job.label] = LayerResult.from_dict(payload["result"])
        if "per_pe" in payload:
            case.per_pe[job.label] = payload["per_pe"]
            case.noc[job.label] = payload["noc"]
    explain = [
        j
        for key, c in sorted(cases.items())
        if _needs_explaining(c)
        for j in _explain_jobs(c, key[1])
    ]
    explain += [j for key, c in sorted(cases.items()) for j in _bug_jobs(c, key[1])]
    more, more_seconds = run_jobs(explain, processes, progress, dask) if explain else ({}, {})
    seconds.update(more_seconds)
    extra: dict[tuple[str, int, int], dict[str, LayerResult]] = {}
    bugs: dict[tuple[str, int, int], dict[str, LayerResult]] = {}
    fixes: dict[tuple[str, int, int], dict[str, LayerResult]] = {}
    for job, payload in more.items():
        target = extra
        if job.engine == "analytic" and job.switches:
            target = bugs
        elif job.engine == "analytic-maestro":
            target = fixes
        if job.unbounded_noc:
            name = "noc"
        elif job.unbounded_offchip:
            name = "offchip"
        elif job.assumptions:
            name = job.assumptions[0][0]
        else:
            name = job.switches[0][0]
        target.setdefault((job.scenario, job.variant, job.layer), {})[name] = LayerResult.from_dict(
            payload["result"]
        )
    position = {str(p): i for i, p in enumerate(paths)}
    keys = sorted(cases, key=lambda k: (position.get(k[0], len(paths)), k[1], k[2]))
    rows: list[MetricRow] = []
    for key in keys:
        case = cases[key]
        if key in extra:
            case.attributions = _attribute(case, extra[key])
        if key in bugs:
            case.maestro_bugs = _bug_attributions(case, bugs[key], fixes.get(key, {}))
        rows.extend(_rows(case))
    warnings = [w for s in scenarios for e in s.network.layers for w in e.warnings]
    return ValidationRun(
        scenarios=scenarios,
        cases=[cases[k] for k in keys],
        rows=rows,
        seconds={j.label + f" {Path(j.scenario).stem}/{j.layer}": s for j, s in seconds.items()},
        warnings=warnings,
    )


def _settings(scenario: Scenario, variant: int) -> dict[str, Any]:
    """The swept hardware fields of one variant, e.g. ``{"topology": "mesh"}``."""
    _, hardware = scenario.variants()[variant]
    return {name: getattr(hardware, name) for name, _ in scenario.sweep}


def _reference(scenario: Scenario, layer: str) -> dict[str, float]:
    for name, metrics in scenario.reference:
        if name == layer:
            return dict(metrics)
    return {}


def _rows(case: CaseResult) -> list[MetricRow]:
    rows: list[MetricRow] = []
    for engine in ("analytic", "analytic-refined", "analytic-maestro"):
        model = case.results.get(engine)
        for policy in ("maestro", "realistic"):
            truth = case.results.get(f"sim-{policy}")
            if model is not None and truth is not None:
                rows.extend(
                    compare_layer(
                        case.scenario, case.variant, f"{engine}~sim-{policy}", model, truth
                    )
                )
    compat = case.results.get("analytic-maestro")
    if compat is not None and case.reference:
        rows.extend(
            compare_values(
                scenario=case.scenario,
                variant=case.variant,
                layer=case.layer,
                layer_index=case.layer_index,
                comparison="analytic-maestro~maestro",
                model={k: float(v) for k, v in compat.flat().items()},
                truth=case.reference,
            )
        )
    return rows
