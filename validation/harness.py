"""The validation run: both engines on every scenario, compared and explained.

For every layer of every scenario variant the harness runs the analytic model (fixed and
MAESTRO-compatible) and the simulator under each requested policy, then

* compares them metric by metric (:mod:`metronome.validation.compare`): ``analytic~sim-realistic``
  (how accurate is the closed form on realistic hardware?), ``analytic~sim-maestro`` (does
  the closed form compute its own assumptions right?) and ``analytic-maestro~maestro``
  where the scenario carries the MAESTRO binary's numbers;
* explains the gap between the closed form and the realistic simulation: it re-runs the
  simulator with one modelling switch at a time set to MAESTRO's assumption, and once
  with an unbounded NoC, and reports how much of each metric's gap each one accounts for;
  it re-runs the closed form with unbounded off-chip bandwidth and with each of its own
  timing assumptions (:data:`MODEL_ASSUMPTIONS`) switched off. What remains between
  ``sim-maestro`` and ``analytic`` is the closed form's own approximation of its
  assumptions (edge tiles, reuse it misses). A re-run is made only where its change can
  alter the result (:func:`_can_matter`);
* draws every finding (:mod:`metronome.validation.findings`), the hot spot's detailed simulation
  being one more job of the second round.

Everything runs as :class:`~metronome.validation.runner.Job` records through one job pool, in two
rounds: the engines, then the re-runs their differences call for.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metronome.spec.names import Engine
from metronome.spec.results import LayerResult
from metronome.spec.scenario import Scenario
from metronome.spec.source import Diagnostic, SpecError

from .compare import MetricRow, compare_layer, compare_values
from .dask_exec import DaskTarget
from .functional import FunctionalCheck
from .runner import (
    ENGINES,
    HotLink,
    Job,
    Outcome,
    Output,
    Probe,
    ProbeKind,
    Progress,
    RunOutcome,
    forget_scenarios,
    run_jobs,
    scenario_of,
)

if TYPE_CHECKING:
    from .cache import ResultCache
    from .findings import Findings

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
    results: dict[Engine, LayerResult] = field(default_factory=dict)
    hottest_link: dict[Engine, HotLink] = field(default_factory=dict)
    variant_index: int = 0
    reference: dict[str, float] = field(default_factory=dict)
    attributions: list[Attribution] = field(default_factory=list)
    maestro_bugs: list[Attribution] = field(default_factory=list)
    functional: FunctionalCheck | None = None

    @property
    def name(self) -> str:
        """``scenario[variant]/layer`` for tables."""
        variant = f"[{self.variant}]" if self.variant else ""
        return f"{self.scenario}{variant}/{self.layer}"

    def job(
        self, engine: Engine, probe: Probe | None = None, output: Output = Output.RESULT
    ) -> Job:
        """The job running ``engine`` (changed by ``probe``) on this case."""
        return Job(self.path, self.variant_index, self.layer_index, engine, probe, output)


@dataclass(slots=True)
class ValidationRun:
    """The outcome of ``metronome validate``: every case and every finding; the report
    only renders it."""

    scenarios: list[Scenario]
    cases: list[CaseResult]
    rows: list[MetricRow]
    seconds: dict[str, float]
    warnings: list[Diagnostic]
    findings: Findings | None = None


def _base_jobs(scenario: Scenario) -> list[Job]:
    jobs = []
    for v in range(len(scenario.variants())):
        for i in range(len(scenario.network.layers)):
            jobs += [Job(scenario.path, v, i, e) for e in ENGINES if e.is_analytic]
            jobs += [Job(scenario.path, v, i, Engine.sim(p)) for p in scenario.policies]
            if scenario.functional and v == 0:
                jobs.append(Job(scenario.path, v, i, Engine.SIM_REALISTIC, None, Output.FUNCTIONAL))
    return jobs


def truth_label(case: CaseResult) -> Engine:
    """The simulation the closed form is explained against: the realistic one, or the
    maestro-policy one in scenarios that run only that (the congestion sweeps)."""
    return Engine.SIM_REALISTIC if Engine.SIM_REALISTIC in case.results else Engine.SIM_MAESTRO


def _needs_explaining(case: CaseResult) -> bool:
    model, truth = case.results.get(Engine.ANALYTIC), case.results.get(truth_label(case))
    if model is None or truth is None or Engine.SIM_MAESTRO not in case.results:
        return False
    rows = compare_layer(case.scenario, case.variant, "x", model, truth)
    return any(
        r.metric in EXPLAINED_METRICS
        and (r.rel_error is None or abs(r.rel_error) > EXPLAIN_THRESHOLD)
        for r in rows
    )


def _bug_probes(case: CaseResult) -> list[Job]:
    """One fixed-model run per MAESTRO bug, that bug alone switched back on, and one
    MAESTRO-compatible run per bug, that bug alone fixed, for layers where MAESTRO's
    numbers differ from the fixed model's."""
    fixed, compat = case.results.get(Engine.ANALYTIC), case.results.get(Engine.ANALYTIC_MAESTRO)
    if fixed is None or compat is None:
        return []
    a, b = fixed.flat(), compat.flat()
    if all(a.get(m) == b.get(m) for m in EXPLAINED_METRICS):
        return []
    from metronome.analytic.deviations import DEVIATIONS

    return [
        case.job(engine, Probe(ProbeKind.MAESTRO_BUG, d.flag, engine is Engine.ANALYTIC))
        for engine in (Engine.ANALYTIC, Engine.ANALYTIC_MAESTRO)
        for d in DEVIATIONS
    ]


def _bug_attributions(case: CaseResult, extra: dict[Job, LayerResult]) -> list[Attribution]:
    """How much of MAESTRO's difference from the fixed model each of its bugs makes: the
    fixed model with that bug alone switched on, or, for a bug that matters only together
    with others, MAESTRO with that bug alone fixed."""
    from metronome.analytic.deviations import DEVIATIONS

    fixed = case.results[Engine.ANALYTIC].flat()
    compat = case.results[Engine.ANALYTIC_MAESTRO].flat()
    out = []
    for metric in EXPLAINED_METRICS:
        gap = float(compat.get(metric, 0)) - float(fixed.get(metric, 0))
        if not gap:
            continue
        for d in DEVIATIONS:
            cause = f"MAESTRO bug {d.ident}: {d.title}" + _where(case, d.ident)
            on = extra.get(case.job(Engine.ANALYTIC, Probe(ProbeKind.MAESTRO_BUG, d.flag, True)))
            off = extra.get(
                case.job(Engine.ANALYTIC_MAESTRO, Probe(ProbeKind.MAESTRO_BUG, d.flag, False))
            )
            delta = float(on.flat()[metric]) - float(fixed[metric]) if on else 0.0
            if not delta and off is not None:
                delta = float(compat[metric]) - float(off.flat()[metric])
                cause += " (jointly with another bug; the share is what fixing it alone removes)"
            if delta:
                out.append(Attribution(metric, cause, delta, delta / gap))
    return out


def _reduces_spatially(case: CaseResult) -> bool:
    """Whether two PEs can hold partial sums of one output element at once: some spatial
    map splits a dimension the output lacks (a reduction or an input sliding dimension)
    or hands neighbouring units overlapping tiles. Only then can free spatial reduction
    change anything."""
    entry = scenario_of(case.path).network.layers[case.layer_index]
    out_dims = set(entry.layer.tensor("output").dims)
    return any(
        d.spatial and (d.dim not in out_dims or d.offset < d.size)
        for level in entry.require_mapping().level_directives()
        for d in level
    )


def _outputs_finish_within_a_step(case: CaseResult) -> bool:
    """Whether every output element is computed within one step: the maestro-policy
    simulation, which writes partial sums back every step, wrote each output element
    once and read none back. Then the realistic policy's partial sums leave at the same
    steps (their tile never stays for a next step), so writing back every step changes
    nothing."""
    maestro = case.results.get(Engine.SIM_MAESTRO)
    if maestro is None:
        return False
    entry = scenario_of(case.path).network.layers[case.layer_index]
    output = maestro.tensor("output")
    return output.l2_writes == entry.layer.tensor_elems("output") and output.l2_reads == 0


def _can_matter(case: CaseResult, probe: Probe) -> bool:
    """Whether ``probe`` can change this case's result at all (otherwise it is not run:
    its share of the gap is zero)."""
    if probe.name == "free_spatial_reduction":
        return _reduces_spatially(case)
    if probe.name == "psum_writeback_every_step":
        return not _outputs_finish_within_a_step(case)
    if probe.kind is ProbeKind.ASSUMPTION:  # both act on cluster levels below the top
        entry = scenario_of(case.path).network.layers[case.layer_index]
        return bool(entry.require_mapping().cluster_sizes)
    return True


def _explain_probes(case: CaseResult) -> list[Job]:
    jobs = []
    if Engine.SIM_REALISTIC in case.results:
        probes = [Probe(ProbeKind.POLICY_SWITCH, switch, value) for switch, _, value in ASSUMPTIONS]
        probes.append(Probe(ProbeKind.UNBOUNDED_NOC))
        jobs += [case.job(Engine.SIM_REALISTIC, p) for p in probes if _can_matter(case, p)]
    probes = [Probe(ProbeKind.UNBOUNDED_OFFCHIP)]
    probes += [Probe(ProbeKind.ASSUMPTION, name, False) for name, _ in MODEL_ASSUMPTIONS]
    jobs += [case.job(Engine.ANALYTIC, p) for p in probes if _can_matter(case, p)]
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
    hot = case.hottest_link.get(truth_label(case))
    if hot:
        words += f"; hottest link {hot.src}->{hot.dst} busy {hot.utilization:.0%}"
    return words


def _attribute(case: CaseResult, extra: dict[Job, LayerResult]) -> list[Attribution]:
    model = case.results[Engine.ANALYTIC].flat()
    real = case.results[truth_label(case)].flat()
    maestro = case.results[Engine.SIM_MAESTRO].flat()
    out = []
    causes = [
        (
            f"{words} ({switch})",
            extra.get(
                case.job(Engine.SIM_REALISTIC, Probe(ProbeKind.POLICY_SWITCH, switch, value))
            ),
        )
        for switch, words, value in ASSUMPTIONS
    ]
    causes.append(
        (
            "finite NoC bandwidth and contention (zero-load / unbounded NoC)",
            extra.get(case.job(Engine.SIM_REALISTIC, Probe(ProbeKind.UNBOUNDED_NOC))),
        )
    )
    offchip = extra.get(case.job(Engine.ANALYTIC, Probe(ProbeKind.UNBOUNDED_OFFCHIP)))
    model_side = [
        (words + _where(case, assumption), result)
        for assumption, words in MODEL_ASSUMPTIONS
        if (
            result := extra.get(
                case.job(Engine.ANALYTIC, Probe(ProbeKind.ASSUMPTION, assumption, False))
            )
        )
        is not None
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
            delta = float(model[metric]) - float(result.flat()[metric])
            if delta:
                out.append(Attribution(metric, cause, delta, delta / gap))
        own = float(model[metric]) - float(maestro[metric])
        if own:
            out.append(Attribution(metric, RESIDUAL_CAUSE, own, own / gap))
    return out


def _macs(job: Job) -> float:
    """A first guess of a job's cost: the layer's MACs for the simulator (the closed
    form takes no time to speak of)."""
    if job.engine.is_analytic:
        return 0.0
    return float(scenario_of(job.scenario).network.layers[job.layer].layer.macs)


def _load(paths: list[Path]) -> list[Scenario]:
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
    return scenarios


def _cases(scenarios: list[Scenario], outcomes: dict[Job, Outcome]) -> dict[CaseKey, CaseResult]:
    by_path = {s.path: s for s in scenarios}
    cases: dict[CaseKey, CaseResult] = {}
    for job, outcome in outcomes.items():
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
        if isinstance(outcome, FunctionalCheck):
            case.functional = outcome
            continue
        assert isinstance(outcome, RunOutcome)
        case.results[job.engine] = outcome.result
        if outcome.hottest_link is not None:
            case.hottest_link[job.engine] = outcome.hottest_link
    return cases


CaseKey = tuple[str, int, int]


def run_validation(
    paths: list[Path],
    processes: int = 2,
    progress: Progress | None = None,
    dask: DaskTarget | None = None,
    cache: ResultCache | None = None,
) -> ValidationRun:
    """Load, run, compare and explain every scenario in ``paths`` and draw every
    finding from the results (two rounds of jobs: the engines, then the re-runs that
    explain their differences and the hot spot's detailed simulation)."""
    from .findings import find, hot_spot_case

    forget_scenarios()
    scenarios = _load(paths)
    base = [j for s in scenarios for j in _base_jobs(s)]
    outcomes, seconds = run_jobs(base, processes, progress, dask, cache, _macs)
    cases = _cases(scenarios, outcomes)
    position = {str(p): i for i, p in enumerate(paths)}
    keys = sorted(cases, key=lambda k: (position.get(k[0], len(paths)), k[1], k[2]))
    ordered = [cases[k] for k in keys]
    second = [j for c in ordered if _needs_explaining(c) for j in _explain_probes(c)]
    second += [j for c in ordered for j in _bug_probes(c)]
    hot = hot_spot_case(ordered)
    if hot is not None:
        second.append(hot[0].job(hot[1], None, Output.PICTURES))

    def measured(job: Job) -> float:
        """The re-run of a simulation takes about as long as the simulation did."""
        return seconds.get(replace(job, probe=None, output=Output.RESULT), 0.0)

    more, more_seconds = run_jobs(second, processes, progress, dask, cache, measured)
    seconds.update(more_seconds)
    extra = {j: o.result for j, o in more.items() if isinstance(o, RunOutcome)}
    rows: list[MetricRow] = []
    for case in ordered:
        if _needs_explaining(case):
            case.attributions = _attribute(case, extra)
        if _bug_probes(case):
            case.maestro_bugs = _bug_attributions(case, extra)
        rows.extend(_rows(case))
    warnings = [w for s in scenarios for e in s.network.layers for w in e.warnings]
    run = ValidationRun(
        scenarios=scenarios,
        cases=ordered,
        rows=rows,
        seconds={f"{j.label} {Path(j.scenario).stem}/{j.layer}": s for j, s in seconds.items()},
        warnings=warnings,
    )
    pictures = more.get(hot[0].job(hot[1], None, Output.PICTURES)) if hot else None
    run.findings = find(run, None if hot is None else (hot[0], hot[1], pictures))
    return run


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
    for analytic_engine in (Engine.ANALYTIC, Engine.ANALYTIC_REFINED, Engine.ANALYTIC_MAESTRO):
        model = case.results.get(analytic_engine)
        for engine in (Engine.SIM_MAESTRO, Engine.SIM_REALISTIC):
            truth = case.results.get(engine)
            if model is not None and truth is not None:
                rows.extend(
                    compare_layer(
                        case.scenario, case.variant, f"{analytic_engine}~{engine}", model, truth
                    )
                )
    compat = case.results.get(Engine.ANALYTIC_MAESTRO)
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
