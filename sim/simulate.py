"""``simulate``: run one layer (or a network) and assemble the shared result schema."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import networkx as nx
import numpy as np

from metronome.spec.hardware import Hardware
from metronome.spec.layer import Layer
from metronome.spec.mapping import Mapping
from metronome.spec.network import Network
from metronome.spec.results import LayerResult, RunResult

from .context import Progress, RunContext
from .coverage import coverage
from .fast import FastPath
from .functional import Functional, check_inputs
from .machine import Machine
from .memory import L2Step, OffchipTiming
from .noc import PhaseOracle, PhaseOutcome
from .options import SimOptions
from .phases import COLLECTION, DISTRIBUTION
from .schedule import Segment
from .stats import build_result
from .timing import IDEAL, Clock
from .traffic import StepRecord

__all__ = ["SimResult", "simulate", "simulate_network"]


@dataclass(frozen=True, slots=True)
class SimResult:
    """A simulated layer: the shared :class:`metronome.spec.results.LayerResult` plus per-PE
    detail."""

    layer: LayerResult
    per_pe: dict[str, object]
    wall_seconds: float
    output: np.ndarray | None = None
    noc: dict[str, object] = field(default_factory=dict)
    graph: nx.DiGraph | None = field(default=None, compare=False)
    link_utilization: dict[tuple[Hashable, Hashable], float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """The layer result with per-PE detail and the NoC section (never the wall time)."""
        data = self.layer.to_dict()
        data["per_pe"] = self.per_pe
        data["noc"] = self.noc
        return data


def simulate(
    layer: Layer,
    mapping: Mapping,
    hardware: Hardware,
    options: SimOptions | None = None,
    *,
    network: str = "",
    layer_index: int = 0,
    progress: Progress | None = None,
    values: dict[str, np.ndarray] | None = None,
) -> SimResult:
    """Simulate one layer under ``mapping`` on ``hardware``. With ``values`` (arrays
    ``input`` and ``weight``) the run also computes the layer's output through the
    simulated data movement (``SimResult.output``)."""
    with _fewer_collections() as settled:
        return _simulate(
            layer, mapping, hardware, options, network, layer_index, progress, values, settled
        )


@contextmanager
def _fewer_collections() -> Iterator[Callable[[], None]]:
    """Run with the garbage collector's first generation 100,000 allocations deep: a
    run allocates millions of small, long-lived objects (steps, keys, transitions), and
    the default threshold (700) spends a fifth of a large run's time collecting them.
    Yields ``settled``, to call once the run's long-lived structures exist (the steps
    of every segment, the next-touch table): the collector leaves the objects alive then
    alone (:func:`gc.freeze`) until the run ends, unless a caller froze objects of its
    own (those are left as they are)."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], 100_000), *before[1:])
    owner = gc.get_freeze_count() == 0
    try:
        yield gc.freeze if owner else _nothing
    finally:
        if owner:
            gc.unfreeze()
        gc.set_threshold(*before)


def _handed_over(segments: list[Segment]) -> Iterator[Segment]:
    """``segments`` in order, each dropped from the list as it is taken: its steps are
    freed once the fast path is done with it, not at the run's end (peak memory)."""
    segments.reverse()
    while segments:
        yield segments.pop()


def _nothing() -> None:
    return None


def _simulate(
    layer: Layer,
    mapping: Mapping,
    hardware: Hardware,
    options: SimOptions | None,
    network: str,
    layer_index: int,
    progress: Progress | None,
    values: dict[str, np.ndarray] | None,
    settled: Callable[[], None],
) -> SimResult:
    options = options or SimOptions()
    started = time.perf_counter()
    run = RunContext(layer, mapping, hardware, options)
    settled()
    squeezed = False
    if values is not None:
        inp, weight, squeezed = check_inputs(layer, values)
        run.functional = Functional(layer, inp, weight)
    timing = OffchipTiming.of(hardware)
    n_pes = run.nest.num_pes
    round_robin = hardware.noc_arbitration == "round_robin"
    if options.fast_forward:
        fast = FastPath(run, timing, n_pes, round_robin=round_robin)
        stream = run.stream.segments() if run.functional is None else run.stream.single_steps()
        if run.functional is None and run.segments is not None:
            stream = _handed_over(run.segments)
        runtime, flushed = fast.execute(stream, progress)
        references = fast.references()
    else:
        # Write-backs are known once L2 has seen every step; then the machine runs.
        steps = list(run.feed(progress))
        flushed = run.l2.finish(len(steps))
        writes = run.l2.writes_at(0, len(steps)).tolist()
        feed = [(rec, replace(l2, writes=w)) for (rec, l2), w in zip(steps, writes, strict=True)]
        split = _Split(run, timing, n_pes)
        machine = Machine(
            n_pes,
            timing,
            run.fabric,
            run.phases,
            split.watch(iter(feed)),
            round_robin=round_robin,
        )
        runtime = machine.run()
        run.tally.take_machine(machine)
        references = split.ends()
    # The outputs last updated by the last step go off-chip once it is done.
    flush = timing.transfer_cycles(flushed)
    runtime += flush
    references = (references[0] + flush, references[1] + flush)
    run.tally.offchip_busy += flush
    cov = coverage(layer, mapping, hardware.num_pes)
    wall = time.perf_counter() - started
    result, per_pe, noc = build_result(run, cov, runtime, network, layer_index, references)
    output = None
    if run.functional is not None:
        output = run.functional.finish()
        if squeezed:
            output = output[0]
    return SimResult(
        layer=result,
        per_pe=per_pe,
        wall_seconds=wall,
        output=output,
        noc=noc.section,
        graph=run.fabric.graph,
        link_utilization=noc.utilization,
    )


class _Split:
    """The runtime split: the same steps timed on a contention-free NoC and on an
    instantaneous one, alongside the real run (fast recurrences, exact)."""

    def __init__(self, run: RunContext, timing: OffchipTiming, n_pes: int) -> None:
        self.run = run
        self.timing = timing
        self.zero = PhaseOracle(run.fabric, round_robin=False, contention=False)
        self.zero_clock = Clock(timing, n_pes)
        self.ideal_clock = Clock(timing, n_pes)
        self._zero: dict[int, tuple[PhaseOutcome, PhaseOutcome]] = {}

    def watch(
        self, feed: Iterator[tuple[StepRecord, L2Step]]
    ) -> Iterator[tuple[StepRecord, L2Step]]:
        """Pass the feed through, timing every step on both reference NoCs."""
        phases = self.run.phases
        for rec, l2 in feed:
            zero = self._zero.get(rec.rid)
            if zero is None:
                zero = self._zero[rec.rid] = (
                    self.zero.outcome(phases.phase(rec, DISTRIBUTION))[0],
                    self.zero.outcome(phases.phase(rec, COLLECTION))[0],
                )
            transfer = self.timing.transfer(*l2.traffic)
            self.zero_clock.advance(rec, transfer, *zero)
            self.ideal_clock.advance(rec, transfer, IDEAL, IDEAL)
            yield rec, l2

    def ends(self) -> tuple[int, int]:
        """Runtimes on the instantaneous and on the contention-free NoC."""
        return self.ideal_clock.end, self.zero_clock.end


def simulate_network(
    network: Network,
    hardware: Hardware,
    options: SimOptions | None = None,
    *,
    progress: Progress | None = None,
) -> tuple[RunResult, list[SimResult]]:
    """Simulate every layer of ``network``; the run result and the per-layer results."""
    options = options or SimOptions()
    results = []
    for index, entry in enumerate(network.layers):
        mapping = entry.require_mapping()
        results.append(
            simulate(
                entry.layer,
                mapping,
                hardware,
                options,
                network=network.name,
                layer_index=index,
                progress=progress,
            )
        )
    run = RunResult(
        engine=f"sim-{options.policy.name}",
        network=network.name,
        source=network.path,
        hardware=hardware_dict(hardware),
        layers=tuple(r.layer for r in results),
        info={
            "policy": options.policy.name,
            "fast_forward": options.fast_forward,
            "topology": results[0].noc.get("topology") if results else hardware.topology,
        },
    )
    return run, results


def hardware_dict(hw: Hardware) -> dict[str, object]:
    from dataclasses import fields

    return {f.name: getattr(hw, f.name) for f in fields(hw) if f.name != "source"} | {
        "source": hw.source
    }
