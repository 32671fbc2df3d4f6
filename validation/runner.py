"""Running the engines on scenarios, in parallel processes.

A :class:`Job` is one engine on one layer of one scenario variant. Workers load each
scenario once, run the job and return plain data; results are keyed by job, so the
outcome does not depend on the order in which processes finish.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from spec.hardware import UNBOUNDED, Hardware
from spec.scenario import Scenario, load_scenario

from .dask_exec import DaskTarget, dask_map

if TYPE_CHECKING:
    from sim import SimResult

__all__ = ["ENGINES", "Job", "Progress", "job_hardware", "run_jobs", "simulate_job"]

ENGINES: tuple[str, ...] = (
    "analytic",
    "analytic-maestro",
    "analytic-refined",
    "sim-maestro",
    "sim-realistic",
)
MODEL_OF_ENGINE: dict[str, str] = {
    "analytic": "fixed",
    "analytic-maestro": "maestro",
    "analytic-refined": "refined",
}
"""The :data:`analytic.api.MODELS` entry each analytic engine runs."""


@dataclass(frozen=True, slots=True, order=True)
class Job:
    """One engine on one layer of one scenario variant, to compare or to attribute a
    difference: ``switches`` flips one modelling switch of the realistic simulator,
    turns one MAESTRO bug back on in the fixed analytic model, or fixes one in the
    MAESTRO-compatible one; ``assumptions`` changes one modelling assumption of the
    analytic model; ``unbounded_noc`` / ``unbounded_offchip`` run with that bandwidth
    unbounded."""

    scenario: str
    variant: int
    layer: int
    engine: str
    switches: tuple[tuple[str, bool], ...] = ()
    unbounded_noc: bool = False
    unbounded_offchip: bool = False
    assumptions: tuple[tuple[str, bool], ...] = ()
    """Modelling assumptions of the analytic model changed (:mod:`analytic.assumptions`)."""

    @property
    def label(self) -> str:
        """Engine name plus the changes, e.g. ``sim-realistic+psum_writeback_every_step=True``."""
        extra = [f"{k}={v}" for k, v in self.switches + self.assumptions]
        if self.unbounded_noc:
            extra.append("noc=unbounded")
        if self.unbounded_offchip:
            extra.append("offchip=unbounded")
        return self.engine + ("+" + ",".join(extra) if extra else "")


_SCENARIOS: dict[str, Scenario] = {}


def scenario_of(path: str) -> Scenario:
    """The scenario at ``path``, parsed once per process."""
    cached = _SCENARIOS.get(path)
    if cached is None:
        cached = _SCENARIOS[path] = load_scenario(path)
    return cached


def run_job(job: Job) -> dict[str, Any]:
    """Run one job; returns the layer result dict (and, for the simulator, per-PE
    detail). Imports each engine only when needed."""
    scenario = scenario_of(job.scenario)
    hardware = job_hardware(job)
    entry = scenario.network.layers[job.layer]
    mapping = entry.require_mapping()
    if job.engine.startswith("analytic"):
        import analytic
        from analytic.deviations import COMPAT, FIXED

        model = MODEL_OF_ENGINE[job.engine]
        base = COMPAT if model == "maestro" else FIXED
        quirks = replace(base, **dict(job.switches)) if job.switches else None
        assumptions = analytic.REFINED_ASSUMPTIONS if model == "refined" else analytic.Assumptions()
        result = analytic.analyze(
            entry.layer,
            mapping,
            hardware,
            network=scenario.network.name,
            layer_index=job.layer,
            quirks=quirks,
            assumptions=replace(assumptions, **dict(job.assumptions)),
            model=model,
        )
        return {"result": result.to_dict()}
    import sim

    if job.engine == "sim-functional":
        from . import functional

        values = functional.make_inputs(entry.layer, f"{scenario.name}/{entry.name}")
        simulated = sim.simulate(entry.layer, mapping, hardware, sim.SimOptions(), values=values)
        assert simulated.output is not None
        check = functional.compare(simulated.output, functional.reference(entry.layer, values))
        return {"functional": check.to_dict()}
    simulated = simulate_job(job)
    return {"result": simulated.layer.to_dict(), "per_pe": simulated.per_pe, "noc": simulated.noc}


def job_hardware(job: Job) -> Hardware:
    """The hardware a job runs on (its variant, with any bandwidth unbounded)."""
    _, hardware = scenario_of(job.scenario).variants()[job.variant]
    if job.unbounded_noc or job.unbounded_offchip:
        key = "noc_bw_elems_per_cycle" if job.unbounded_noc else "offchip_bw_elems_per_cycle"
        hardware = hardware.with_changes(**{key: UNBOUNDED})
    return hardware


def simulate_job(job: Job) -> SimResult:
    """Run a simulator job and return the whole :class:`sim.SimResult` (with its NoC
    graph, for pictures)."""
    import sim

    scenario = scenario_of(job.scenario)
    entry = scenario.network.layers[job.layer]
    policy = sim.POLICIES[job.engine.removeprefix("sim-")]
    if job.switches:
        policy = policy.with_switch(**dict(job.switches))
    return sim.simulate(
        entry.layer,
        entry.require_mapping(),
        job_hardware(job),
        sim.SimOptions(policy=policy),
        network=scenario.network.name,
        layer_index=job.layer,
    )


def _worker(job: Job) -> tuple[Job, dict[str, Any], float]:
    started = time.perf_counter()
    payload = run_job(job)
    return job, payload, time.perf_counter() - started


Progress = Callable[[int, int, Job], None]


def run_jobs(
    jobs: Iterable[Job],
    processes: int,
    progress: Progress | None = None,
    dask: DaskTarget | None = None,
) -> tuple[dict[Job, dict[str, Any]], dict[Job, float]]:
    """Run every job (in ``processes`` worker processes when more than one, or on
    ``dask``); returns the payloads and the wall seconds of each job (timings are for
    humans, never for result files)."""
    todo = sorted(set(jobs), key=lambda j: (not j.engine.startswith("sim"), j))
    results: dict[Job, dict[str, Any]] = {}
    seconds: dict[Job, float] = {}
    if dask is not None:
        for i, (job, payload, wall) in enumerate(dask_map(dask, _worker, todo), 1):
            results[job], seconds[job] = payload, wall
            if progress:
                progress(i, len(todo), job)
        return results, seconds
    if processes <= 1 or len(todo) <= 1:
        for i, job in enumerate(todo, 1):
            job, payload, wall = _worker(job)
            results[job], seconds[job] = payload, wall
            if progress:
                progress(i, len(todo), job)
        return results, seconds
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with context.Pool(processes=min(processes, os.cpu_count() or 1, len(todo))) as pool:
        for i, (job, payload, wall) in enumerate(pool.imap_unordered(_worker, todo), 1):
            results[job], seconds[job] = payload, wall
            if progress:
                progress(i, len(todo), job)
    return results, seconds
