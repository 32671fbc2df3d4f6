"""Running the engines on scenarios, in parallel processes, each identical run once.

A :class:`Job` is one engine on one layer of one scenario variant, possibly changed by a
:class:`Probe` (one modelling switch, one MAESTRO bug, one bandwidth unbounded) to
measure what that change accounts for. Workers load each scenario once, run the job and
return a typed outcome; outcomes are keyed by job, so nothing depends on the order in
which processes finish.

Jobs whose runs are identical in content (the same layer dimensions, mapping, hardware,
engine and change; ResNet repeats its blocks, a bandwidth sweep's unbounded-NoC re-runs
coincide) run once: :func:`content_key` names that content, and the
:class:`~metronome.validation.cache.ResultCache` keeps outcomes under it between invocations.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Union

from metronome.spec.hardware import UNBOUNDED, Hardware
from metronome.spec.names import Engine
from metronome.spec.results import LayerResult
from metronome.spec.scenario import Scenario, load_scenario

from .dask_exec import DaskTarget, dask_map
from .functional import FunctionalCheck

if TYPE_CHECKING:
    from metronome.sim import SimResult

    from .cache import ResultCache

__all__ = [
    "ENGINES",
    "HotLink",
    "Job",
    "Outcome",
    "Output",
    "Probe",
    "ProbeKind",
    "Progress",
    "RunOutcome",
    "content_key",
    "forget_scenarios",
    "job_hardware",
    "run_jobs",
    "scenario_of",
]

ENGINES: tuple[Engine, ...] = tuple(Engine)
"""Every engine a validation run compares, in table order."""

ANALYTIC_OPTIONS: dict[Engine, dict[str, Any]] = {
    Engine.ANALYTIC_MAESTRO: {"maestro_compat": True},
    Engine.ANALYTIC_REFINED: {"model": "refined"},
}
"""The keyword arguments of :func:`metronome.analytic.analyze` that make each closed-form engine
(none: the fixed model)."""


class ProbeKind(StrEnum):
    """What a probe changes."""

    POLICY_SWITCH = "switch"
    """One switch of the simulator's policy set to ``value``."""
    MAESTRO_BUG = "bug"
    """One MAESTRO deviation of the closed form (:mod:`metronome.analytic.deviations`) set to
    ``value``: switched on in the fixed model, off in the MAESTRO-compatible one."""
    ASSUMPTION = "assumption"
    """One timing assumption of the closed form (:mod:`metronome.analytic.assumptions`) set."""
    UNBOUNDED_NOC = "noc"
    UNBOUNDED_OFFCHIP = "offchip"


@dataclass(frozen=True, slots=True)
class Probe:
    """One change to an engine's run, to measure what it accounts for."""

    kind: ProbeKind
    name: str = ""
    """The switch, bug flag or assumption changed (empty for the bandwidths)."""
    value: bool = True

    @property
    def label(self) -> str:
        """``name=value``, or ``noc=unbounded`` / ``offchip=unbounded``."""
        if self.kind in (ProbeKind.UNBOUNDED_NOC, ProbeKind.UNBOUNDED_OFFCHIP):
            return f"{self.kind.value}=unbounded"
        return f"{self.name}={self.value}"

    @property
    def sort_key(self) -> tuple[str, str, bool]:
        """Total order of probes."""
        return (self.kind.value, self.name, self.value)


class Output(StrEnum):
    """What a job returns."""

    RESULT = "result"
    """The layer result (a :class:`RunOutcome`)."""
    FUNCTIONAL = "functional"
    """The simulator's values against numpy's (a :class:`FunctionalCheck`)."""
    PICTURES = "pictures"
    """The whole :class:`metronome.sim.SimResult`, with its network and time series to draw."""


@dataclass(frozen=True, slots=True)
class Job:
    """One engine on one layer of one scenario variant."""

    scenario: str
    variant: int
    layer: int
    engine: Engine
    probe: Probe | None = None
    output: Output = Output.RESULT

    @property
    def label(self) -> str:
        """Engine name plus the change, e.g. ``sim-realistic+psum_writeback_every_step=True``."""
        extra = f"+{self.probe.label}" if self.probe else ""
        kind = "" if self.output is Output.RESULT else f" ({self.output.value})"
        return f"{self.engine.value}{extra}{kind}"

    @property
    def sort_key(self) -> tuple[object, ...]:
        """Total order of jobs: simulator runs (the long ones) first."""
        return (
            self.engine.is_analytic,
            self.scenario,
            self.variant,
            self.layer,
            self.engine.value,
            self.probe.sort_key if self.probe else (),
            self.output.value,
        )


@dataclass(frozen=True, slots=True)
class HotLink:
    """The busiest link of a simulated network."""

    src: str
    dst: str
    utilization: float


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """A layer result, and for the simulator its busiest link."""

    result: LayerResult
    hottest_link: HotLink | None = None


Outcome = Union[RunOutcome, FunctionalCheck, "SimResult"]
"""A :class:`RunOutcome`, a :class:`FunctionalCheck` or (``Output.PICTURES``) a
:class:`metronome.sim.SimResult`."""

_SCENARIOS: dict[str, Scenario] = {}


def forget_scenarios() -> None:
    """Parse every scenario afresh from now on (its file may have changed)."""
    _SCENARIOS.clear()


def scenario_of(path: str) -> Scenario:
    """The scenario at ``path``, parsed once per process (per validation run)."""
    cached = _SCENARIOS.get(path)
    if cached is None:
        cached = _SCENARIOS[path] = load_scenario(path)
    return cached


def job_hardware(job: Job) -> Hardware:
    """The hardware a job runs on (its variant, with any bandwidth unbounded)."""
    _, hardware = scenario_of(job.scenario).variants()[job.variant]
    if job.probe and job.probe.kind is ProbeKind.UNBOUNDED_NOC:
        hardware = hardware.with_changes(noc_bw_elems_per_cycle=UNBOUNDED)
    if job.probe and job.probe.kind is ProbeKind.UNBOUNDED_OFFCHIP:
        hardware = hardware.with_changes(offchip_bw_elems_per_cycle=UNBOUNDED)
    return hardware


def content_key(job: Job) -> str:
    """A digest of everything the job's outcome depends on. Names (scenario, network,
    layer, position) are left out of plain results, which carry them only as labels
    (:func:`_relabel` puts them back), so identical layers share one run."""
    scenario = scenario_of(job.scenario)
    entry = scenario.network.layers[job.layer]
    layer = entry.layer
    hardware = job_hardware(job)
    parts: list[object] = [
        job.engine.value,
        job.probe.label if job.probe else "",
        job.output.value,
        layer.type.value,
        layer.sizes,
        (layer.stride_y, layer.stride_x),
        tuple(sorted(layer.declared)),
        layer.keyword,
        str(entry.require_mapping()),
        tuple((f.name, getattr(hardware, f.name)) for f in fields(hardware) if f.compare),
    ]
    if job.output is not Output.RESULT:
        parts += [scenario.name, scenario.network.name, entry.name, job.layer]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _relabel(outcome: Outcome, job: Job) -> Outcome:
    """A shared plain result with this job's names."""
    if not isinstance(outcome, RunOutcome):
        return outcome
    scenario = scenario_of(job.scenario)
    result = replace(
        outcome.result,
        network=scenario.network.name,
        layer=scenario.network.layers[job.layer].layer.name,
        layer_index=job.layer,
    )
    return replace(outcome, result=result)


def run_job(job: Job) -> Outcome:
    """Run one job. Imports each engine only when needed."""
    if job.engine.is_analytic:
        return RunOutcome(_analyze(job))
    if job.output is Output.FUNCTIONAL:
        return _functional(job)
    simulated = _simulate(job)
    if job.output is Output.PICTURES:
        return simulated
    hot = simulated.noc.get("hottest_links")
    link = None
    if isinstance(hot, list) and hot:
        top: dict[str, Any] = hot[0]
        link = HotLink(str(top["src"]), str(top["dst"]), float(top["utilization"]))
    return RunOutcome(simulated.layer, link)


def _analyze(job: Job) -> LayerResult:
    from metronome import analytic
    from metronome.analytic.deviations import COMPAT, FIXED

    scenario = scenario_of(job.scenario)
    entry = scenario.network.layers[job.layer]
    options = ANALYTIC_OPTIONS.get(job.engine, {})
    probe = job.probe
    quirks = None
    if probe and probe.kind is ProbeKind.MAESTRO_BUG:
        base = COMPAT if options.get("maestro_compat") else FIXED
        quirks = replace(base, **{probe.name: probe.value})
    assumptions = None
    if probe and probe.kind is ProbeKind.ASSUMPTION:
        base_assumptions = (
            analytic.REFINED_ASSUMPTIONS
            if options.get("model") == "refined"
            else analytic.MAESTRO_ASSUMPTIONS
        )
        assumptions = replace(base_assumptions, **{probe.name: probe.value})
    return analytic.analyze(
        entry.layer,
        entry.require_mapping(),
        job_hardware(job),
        network=scenario.network.name,
        layer_index=job.layer,
        quirks=quirks,
        assumptions=assumptions,
        **options,
    )


def _functional(job: Job) -> FunctionalCheck:
    from metronome import sim

    from . import functional

    scenario = scenario_of(job.scenario)
    entry = scenario.network.layers[job.layer]
    values = functional.make_inputs(entry.layer, f"{scenario.name}/{entry.name}")
    simulated = sim.simulate(
        entry.layer, entry.require_mapping(), job_hardware(job), sim.SimOptions(), values=values
    )
    assert simulated.output is not None
    return functional.compare(simulated.output, functional.reference(entry.layer, values))


def _simulate(job: Job) -> SimResult:
    from metronome import sim

    scenario = scenario_of(job.scenario)
    entry = scenario.network.layers[job.layer]
    policy = sim.POLICIES[job.engine.policy]
    if job.probe and job.probe.kind is ProbeKind.POLICY_SWITCH:
        policy = policy.with_switch(**{job.probe.name: job.probe.value})
    return sim.simulate(
        entry.layer,
        entry.require_mapping(),
        job_hardware(job),
        sim.SimOptions(policy=policy),
        network=scenario.network.name,
        layer_index=job.layer,
    )


def _worker(job: Job) -> tuple[Job, Outcome, float]:
    started = time.perf_counter()
    outcome = run_job(job)
    return job, outcome, time.perf_counter() - started


Progress = Callable[[int, int, object], None]


def _execute(
    todo: list[Job], processes: int, progress: Progress | None, dask: DaskTarget | None
) -> Iterable[tuple[Job, Outcome, float]]:
    """Each job's outcome, as workers finish them."""
    if dask is not None:
        yield from dask_map(dask, _worker, todo)
    elif processes <= 1 or len(todo) <= 1:
        yield from map(_worker, todo)
    else:
        start = "fork" if sys.platform.startswith("linux") else "spawn"
        with multiprocessing.get_context(start).Pool(
            processes=min(processes, os.cpu_count() or 1, len(todo))
        ) as pool:
            yield from pool.imap_unordered(_worker, todo)


def run_jobs(
    jobs: Iterable[Job],
    processes: int,
    progress: Progress | None = None,
    dask: DaskTarget | None = None,
    cache: ResultCache | None = None,
    expected_cost: Callable[[Job], float] | None = None,
) -> tuple[dict[Job, Outcome], dict[Job, float]]:
    """Run every job (in ``processes`` worker processes when more than one, or on
    ``dask``), each distinct content once and none that ``cache`` holds; returns the
    outcomes and the wall seconds of each run (timings are for humans and for
    scheduling, never for result files). Runs start in decreasing ``expected_cost``, so
    that the longest do not come last and leave workers idle."""
    keyed = {job: content_key(job) for job in sorted(set(jobs), key=lambda j: j.sort_key)}
    shared: dict[str, Outcome] = {}
    todo: dict[str, Job] = {}
    for job, key in keyed.items():
        if key in shared or key in todo:
            continue
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            shared[key] = hit
        else:
            todo[key] = job
    seconds: dict[Job, float] = {}
    runs = list(todo.values())
    if expected_cost is not None:
        runs.sort(key=lambda j: (-expected_cost(j), j.sort_key))
    for i, (job, outcome, wall) in enumerate(_execute(runs, processes, progress, dask), 1):
        key = keyed[job]
        shared[key], seconds[job] = outcome, wall
        if cache is not None:
            cache.put(key, outcome)
        if progress:
            progress(i, len(runs), job.label)
    return {job: _relabel(shared[key], job) for job, key in keyed.items()}, seconds
