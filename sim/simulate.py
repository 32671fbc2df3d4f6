"""``simulate``: run one layer (or a network) and assemble the shared result schema."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import networkx as nx
import numpy as np

from spec.hardware import Hardware
from spec.layer import Layer
from spec.mapping import Mapping
from spec.network import Network
from spec.results import LayerResult, RunResult

from .coverage import coverage
from .fast import FastPath
from .functional import Functional, check_inputs
from .geometry import Geometry, StepTiles
from .l1 import EVICTIONS, L1Residency
from .loopnest import LoopNest
from .machine import Machine
from .memory import L2Memory, L2Step, OffchipTiming
from .noc import PhaseOracle, PhaseOutcome
from .options import SimOptions
from .phases import COLLECTION, DISTRIBUTION, Fabric, PhaseBuilder
from .schedule import Segment, Step, StepStream
from .stats import Tally, build_result
from .timing import IDEAL, Clock
from .topology import Router, build_topology, prepare_graph
from .traffic import RecordBuilder, StepRecord

__all__ = ["SimResult", "simulate", "simulate_network"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class SimResult:
    """A simulated layer: the shared :class:`spec.results.LayerResult` plus per-PE detail."""

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


class _Run:
    """One layer's execution: step stream, records, L2 and the tally."""

    def __init__(self, layer: Layer, mapping: Mapping, hw: Hardware, options: SimOptions) -> None:
        self.layer = layer
        self.hw = hw
        self.options = options
        self.nest = LoopNest(layer, mapping, hw.num_pes)
        self.geometry = Geometry(layer, self.nest.dims)
        n_pes = self.nest.num_pes
        if options.noc_graph is not None:
            graph = prepare_graph(options.noc_graph, hw, n_pes)
        else:
            graph = build_topology(hw, n_pes)
        self.fabric = Fabric(graph, header_cycles=hw.noc_header_cycles)
        self.phases = PhaseBuilder(self.fabric, hw, options.policy)
        router = self.phases.router
        self.builder = RecordBuilder(
            self.nest, self.geometry, hw, options.policy, _neighbours(router)
        )
        self.stream = StepStream(self.nest, memo=options.fast_forward)
        self.records: dict[tuple[object, ...], StepRecord] = {}
        shapes = self.geometry.tensor_sizes
        self.l2 = L2Memory(shapes, hw.l2_size_elems)
        self.tally = Tally(self.nest.num_pes)
        self.functional: Functional | None = None
        self._recent: dict[int, StepTiles] = {}
        self.l1: L1Residency | None = None
        self.segments: list[Segment] | None = None
        policy = options.policy
        if policy.l1_keeps_reusable_data:
            if options.l1_eviction not in EVICTIONS:
                raise ValueError(f"l1_eviction must be one of {EVICTIONS}")
            self.l1 = L1Residency(
                shapes,
                n_pes,
                hw.l1_size_elems,
                options.l1_eviction,
                psum_every_step=policy.psum_writeback_every_step,
                dims=self.geometry.tensor_dims,
                memo=options.fast_forward,
            )
            l1 = self.l1
            if options.fast_forward:
                self.segments = list(self.stream.segments())
                l1.classify(self._first_tiles(self.segments))
                steps = sum(len(seg.steps) * seg.count for seg in self.segments)
                l1.record_future(self._future_blocks(self.segments), steps)
            else:
                none = np.zeros(3, dtype=np.int64)
                blocks = [
                    (step.index, self.future_keys((step, sched)), none, 1, 1)
                    for step, sched in self.stream
                ]
                l1.record_future(blocks, blocks[-1][0] + 1 if blocks else 0)

    def _tiles(self, step: Step, schedules: list[object]) -> StepTiles:
        ranges = self.nest.pe_ranges(step.positions, step.inner, schedules)  # type: ignore[arg-type]
        return self.geometry.tiles(ranges)

    def _future_blocks(
        self, segments: list[Segment]
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray, int, int]]:
        """Per step of each segment's first repetition: its next-use keys and how they
        repeat (:meth:`L1Residency.record_future`)."""
        assert self.l1 is not None
        for seg in segments:
            shift = self.l1.shift_of(seg.delta)
            for s, sched in zip(seg.steps, seg.schedules, strict=True):
                yield s.index, self.future_keys((s, sched)), shift, len(seg.steps), seg.count

    def _first_tiles(self, segments: list[Segment]) -> Iterator[StepTiles]:
        """The tiles of each geometry key's first step, in order (a segment's
        repetitions have its first repetition's keys)."""
        seen: set[object] = set()
        for seg in segments:
            for step, schedules in zip(seg.steps, seg.schedules, strict=True):
                if step.key not in seen:
                    seen.add(step.key)
                    yield self._tiles(step, schedules)

    def _tiles_of(self, item: tuple[Step, list[object]]) -> StepTiles:
        """Tiles of a step, remembering the last few (each is asked for up to 3 times)."""
        step = item[0]
        hit = self._recent.get(step.index)
        if hit is None:
            if len(self._recent) > 4:
                self._recent.clear()
            hit = self._recent[step.index] = self._tiles(*item)
        return hit

    def _keys(self, item: tuple[Step, list[object]]):
        """The L1 working keys of a step (memoised per geometry key on the fast path)."""
        assert self.l1 is not None
        step = item[0]
        return self.l1.keys_of(step.key, step.base, self._lazy(item))

    def future_keys(self, item: tuple[Step, list[object]]) -> np.ndarray:
        """The keys of a step the L1s' next-touch queries ask about."""
        assert self.l1 is not None
        step = item[0]
        return self.l1.future_keys(step.key, step.base, self._lazy(item))

    def _lazy(self, item: tuple[Step, list[object]]) -> Callable[[], StepTiles]:
        return lambda: self._tiles_of(item)

    def residency_record(
        self,
        item: tuple[Step, list[object]],
        prev: tuple[Step, list[object]] | None,
        nxt: tuple[Step, list[object]] | None,
    ) -> StepRecord:
        """Step ``item``'s record under L1 residency: the L1s act, and the record is
        memoised on the geometry key and what the L1s did (relative to the tiles)."""
        assert self.l1 is not None
        step = item[0]
        out_base = np.array([step.base.get(d, 0) for d in self.geometry.tensor_dims[2]])
        following = self._keys(nxt) if nxt is not None else None
        l1 = self.l1.step(step.index, self._keys(item), following, out_base)
        key = (step.key, l1.signature)
        rec = self.records.get(key) if self.options.fast_forward else None
        if rec is None:
            rec = self.builder.build(
                self._tiles_of(prev) if prev is not None else None,
                self._tiles_of(item),
                self._tiles_of(nxt) if nxt is not None else None,
                step.key[0],  # type: ignore[arg-type]
                step.inner,
                step.base,
                self.l1.expand(l1),
            )
            if self.options.fast_forward:
                self.records[key] = rec
        return rec

    def feed(self, progress: Progress | None) -> Iterator[tuple[StepRecord, L2Step]]:
        """Records and L2 outcomes of every step, in order."""
        memo = self.options.fast_forward
        it = iter(self.stream)
        cur = next(it, None)
        prev_tiles: StepTiles | None = None
        cur_tiles: StepTiles | None = None
        prev_item: tuple[Step, list[object]] | None = None
        dims = self.geometry.tensor_dims
        total = self.stream.top_steps
        while cur is not None:
            nxt = next(it, None)
            step, schedules = cur
            rec = self.records.get(step.key) if memo and self.l1 is None else None
            if self.l1 is not None:
                rec = self.residency_record(cur, prev_item, nxt)
            elif rec is None:
                if cur_tiles is None:
                    cur_tiles = self._tiles(step, schedules)
                if prev_tiles is None and prev_item is not None:
                    prev_tiles = self._tiles(*prev_item)
                nxt_tiles = self._tiles(*nxt) if nxt is not None else None
                rec = self.builder.build(
                    prev_tiles,
                    cur_tiles,
                    nxt_tiles,
                    step.key[0],
                    step.inner,
                    step.base,  # type: ignore[arg-type]
                )
                if memo:
                    self.records[step.key] = rec
                prev_tiles, cur_tiles = cur_tiles, nxt_tiles
            else:
                prev_tiles = cur_tiles = None
            if self.functional is not None:
                self.functional.step(self._tiles(step, schedules), rec)
            l2 = self.l2.step(step.index, rec.footprints, step.base, dims)
            self.tally.add_step(rec, l2)
            if progress is not None and step.index % 4096 == 0:
                progress(step.top, total)
            yield rec, l2
            prev_item, cur = cur, nxt


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
    with _fewer_collections():
        return _simulate(layer, mapping, hardware, options, network, layer_index, progress, values)


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run with the garbage collector's first generation 100,000 allocations deep: a
    run allocates millions of small, long-lived objects (steps, keys, transitions), and
    the default threshold (700) spends a fifth of a large run's time collecting them."""
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], 100_000), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _simulate(
    layer: Layer,
    mapping: Mapping,
    hardware: Hardware,
    options: SimOptions | None,
    network: str,
    layer_index: int,
    progress: Progress | None,
    values: dict[str, np.ndarray] | None,
) -> SimResult:
    options = options or SimOptions()
    started = time.perf_counter()
    run = _Run(layer, mapping, hardware, options)
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
            stream = iter(run.segments)
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

    def __init__(self, run: _Run, timing: OffchipTiming, n_pes: int) -> None:
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


def _neighbours(router: Router) -> Callable[[int], tuple[int, ...]] | None:
    if not router.graph.graph.get("pe_links"):
        return None
    return router.neighbours


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
        layers=tuple(r.layer for r in results),  # type: ignore[misc]
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
