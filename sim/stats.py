"""Counters of a run and their assembly into the shared result schema."""

from __future__ import annotations

from array import array
from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from spec.energy import AccessCounts, energy_table, l1_read_accesses
from spec.results import LayerResult, TensorCounts, make_tensors

from .coverage import Coverage
from .memory import L2Step
from .noc import PhaseOutcome
from .noc_report import NocReport, NocTotals, noc_report
from .steady import steady_state
from .timing import Transition
from .traffic import StepRecord

if TYPE_CHECKING:
    from .machine import Machine
    from .simulate import _Run

__all__ = ["Column", "Tally", "build_result"]


class Column:
    """An int64 column built from single values and whole numpy chunks."""

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._tail = array("q")
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, value: int) -> None:
        """Add one value."""
        self._tail.append(value)
        self._size += 1

    def extend(self, values: np.ndarray) -> None:
        """Add many values."""
        if self._tail:
            self._chunks.append(np.frombuffer(self._tail, dtype=np.int64).copy())
            self._tail = array("q")
        self._chunks.append(np.asarray(values, dtype=np.int64).ravel())
        self._size += self._chunks[-1].size

    def array(self) -> np.ndarray:
        """Everything, in order."""
        parts = [*self._chunks, np.frombuffer(self._tail, dtype=np.int64)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


class Tally:
    """Per-step counters. Traffic is summed per distinct record (count x record), so a
    record repeated a million times costs one dictionary increment per step."""

    def __init__(self, n_pes: int) -> None:
        self.n_pes = n_pes
        self.record_counts: Counter[int] = Counter()
        self.records: dict[int, StepRecord] = {}
        self.l2_misses = 0
        self.l2_rmw = 0
        self.l2_refetch = 0
        self.steps = 0
        self.down_busy = 0
        self.up_busy = 0
        self.offchip_busy = 0
        self.down_queue = 0
        self.up_queue = 0
        self.drain_waits = np.zeros(n_pes, dtype=np.int64)
        self.starts = Column()
        self.macs_at = Column()
        self.events = 0
        self.detailed_transitions = 0
        self.outcome_counts: Counter[int] = Counter()
        self.phase_at = Column()
        self.phase_busy: dict[int, dict[tuple[int, int], int]] = {}
        self.noc = NocTotals(({}, {}), ({}, {}))

    def add_step(self, rec: StepRecord, l2: L2Step) -> None:
        """Count one step's record and L2 outcome."""
        self.steps += 1
        self.record_counts[rec.rid] += 1
        if rec.rid not in self.records:
            self.records[rec.rid] = rec
        self.l2_misses += l2.misses
        self.l2_rmw += l2.rmw_reads
        self.l2_refetch += l2.output_refetches
        self.macs_at.append(rec.macs)

    def add_segment(
        self, recs: list[StepRecord], count: int, misses: int, rmw: int, refetch: int
    ) -> None:
        """Count a block of records repeated ``count`` times and its L2 totals."""
        self.steps += len(recs) * count
        for rec in recs:
            self.record_counts[rec.rid] += count
            if rec.rid not in self.records:
                self.records[rec.rid] = rec
        self.l2_misses += misses
        self.l2_rmw += rmw
        self.l2_refetch += refetch
        self.macs_at.extend(np.tile(np.array([r.macs for r in recs], dtype=np.int64), count))

    def add_repeats(self, block: list[tuple[Transition, int]], times: int, shift: int) -> None:
        """Count ``times`` repetitions of a block of fast-path transitions ``(transition,
        reference)``, repetition ``i`` (from 1) ``i * shift`` cycles after the block's own
        times; ``times=1, shift=0`` counts the block itself."""
        for tr, _ in block:
            self.outcome_counts[tr.down] += times
            if tr.up >= 0:
                self.outcome_counts[tr.up] += times
            self.down_busy += times * tr.down_cycles
            self.up_busy += times * tr.up_cycles
            self.offchip_busy += times * tr.offchip_cycles
            self.down_queue += times * tr.down_queue
            self.up_queue += times * tr.up_queue
            if tr.drain_waits is not None:
                self.drain_waits += times * np.asarray(tr.drain_waits, dtype=np.int64)
        first = np.array([ref + tr.compute_start + shift for tr, ref in block], dtype=np.int64)
        later = np.arange(times, dtype=np.int64)[:, None] * shift
        self.starts.extend(later + first[None, :])
        pairs = np.array([(tr.down, tr.up) for tr, _ in block], dtype=np.int64).ravel()
        self.phase_at.extend(np.tile(pairs, times))

    def take_outcomes(self, outcomes: list[PhaseOutcome]) -> None:
        """NoC totals of the fast path from the phase outcomes it counted."""
        self.noc = NocTotals.from_outcomes(self.outcome_counts, outcomes)
        self.phase_busy = {
            oid: {(outcomes[oid].plane, row[0]): row[2] for row in outcomes[oid].edges}
            for oid in self.outcome_counts
        }

    def take_machine(self, machine: Machine) -> None:
        """Copy what the SimPy machine measured."""
        self.down_busy = machine.stats.down_busy_cycles
        self.up_busy = machine.stats.up_busy_cycles
        self.noc = NocTotals.from_noc(machine.noc)
        self.phase_at = Column()
        for t in range(self.steps):
            tables = machine.stats.phase_busy_at.get(t, [])
            sigs = []
            for table in tables:
                sigs.append(len(self.phase_busy))
                self.phase_busy[len(self.phase_busy)] = table
            self.phase_at.extend(np.array([*sigs, -1, -1][:2]))
        self.offchip_busy = machine.stats.offchip_busy_cycles
        self.down_queue = machine.stats.down_queue_cycles
        self.up_queue = machine.stats.up_queue_cycles
        self.drain_waits = np.array([pe.drain_wait_cycles for pe in machine.pes], dtype=np.int64)
        self.starts = Column()
        self.starts.extend(np.array(machine.stats.compute_starts, dtype=np.int64))
        self.events = machine.env.scheduled

    def total(self, field: str) -> np.ndarray:
        """Sum of a record field over all steps (vector fields summed element-wise)."""
        acc: np.ndarray | int = 0
        for rid, count in self.record_counts.items():
            acc = acc + np.asarray(getattr(self.records[rid], field), dtype=np.int64) * count
        return np.asarray(acc, dtype=np.int64)


def _series(tally: Tally, runtime: int, capacity: int, bins: int) -> list[float]:
    """Utilisation per time bin: MACs whose step started computing in the bin over the
    bin's MAC capacity."""
    if runtime <= 0 or not len(tally.starts):
        return []
    width = -(-runtime // bins)
    starts = tally.starts.array()
    macs = tally.macs_at.array()
    sums = np.bincount(np.minimum(starts // width, bins - 1), weights=macs, minlength=bins)
    return [round(float(v) / (width * capacity), 6) for v in sums]


def build_result(
    run: _Run,
    cov: Coverage,
    runtime: int,
    network: str,
    layer_index: int,
    references: tuple[int, int],
) -> tuple[LayerResult, dict[str, object], NocReport]:
    """The shared result, the per-PE detail and the NoC report of one simulated layer;
    ``references`` are the runtimes on an instantaneous and on a contention-free NoC."""
    tally, hw, l2 = run.tally, run.hw, run.l2
    policy = run.options.policy
    n_pes = run.nest.num_pes
    macs = int(tally.total("macs"))
    l1_writes = tally.total("l1_writes")
    l1_reads = tally.total("l1_reads")
    delivered = tally.total("delivered")
    out_elems = int(tally.total("out_elems"))
    bus_in = int(tally.total("bus_in_elems"))
    bus_out = int(tally.total("bus_out_elems"))
    compute = tally.total("compute_cycles") if tally.records else np.zeros(n_pes, dtype=np.int64)
    active_pe_steps = int(tally.total("active_pes"))
    tensors = {
        "input": TensorCounts(
            l1_reads=int(l1_reads[0]),
            l1_writes=int(l1_writes[0]),
            l2_reads=int(delivered[0]),
            l2_writes=l2.fills[0],
        ),
        "weight": TensorCounts(
            l1_reads=int(l1_reads[1]),
            l1_writes=int(l1_writes[1]),
            l2_reads=int(delivered[1]),
            l2_writes=l2.fills[1],
        ),
        "output": TensorCounts(
            l1_reads=int(l1_reads[2]),
            l1_writes=int(l1_writes[2]),
            l2_reads=tally.l2_rmw,
            l2_writes=out_elems,
        ),
    }
    table = energy_table(run.options.energy_table)
    l1_read_count = sum(l1_read_accesses(int(n), hw.l1_read_width_elems) for n in l1_reads)
    l1_total = l1_read_count + int(l1_writes.sum())
    l2_total = sum(c.l2_reads + c.l2_writes for c in tensors.values())
    offchip_reads = sum(l2.offchip_reads)
    offchip_total = offchip_reads + l2.offchip_writes
    noc = noc_report(
        run.fabric,
        tally.noc,
        runtime,
        (
            tally.starts.array(),
            tally.phase_at.array(),
            tally.phase_busy,
            run.options.utilization_bins,
        ),
        hw.noc_arbitration,
    )
    energy = table.energy_nj(
        AccessCounts(
            macs=macs,
            l1_accesses=l1_total,
            l2_accesses=l2_total,
            noc_elem_hops=int(noc.metrics["noc_traversals_elem_hops"]),
            offchip_accesses=offchip_total,
        )
    )
    ideal, zero_load = references
    records = list(tally.records.values())
    peak_bw = max(
        (
            (r.bus_in_elems + r.bus_out_elems) / max(1, max(r.compute_cycles, default=0))
            for r in records
        ),
        default=0.0,
    )
    lanes = hw.simd_lanes
    busy = int(compute.sum())
    drain = tally.drain_waits
    wait = np.maximum(runtime - compute - drain, 0)
    metrics: dict[str, float | int] = {
        "l1_size_req_elems": max((r.occupancy_peak for r in records), default=0),
        "l2_size_req_elems": l2.peak_occupancy,
        "noc_bw_req_peak_elems_per_cycle": round(peak_bw, 6),
        "noc_bw_req_avg_elems_per_cycle": round((bus_in + bus_out) / runtime, 6)
        if runtime
        else 0.0,
        "offchip_bw_req_elems_per_cycle": round(offchip_total / runtime, 6) if runtime else 0.0,
        "energy_nj": round(energy, 9),
        "l1_read_accesses": l1_read_count,
        "avg_active_pes": round(busy / runtime, 6) if runtime else 0.0,
        "utilization": round(macs / (runtime * n_pes * lanes), 6) if runtime else 0.0,
        "macs_unique": cov.unique,
        "macs_redundant": cov.redundant,
        "macs_missing": cov.missing,
        "offchip_reads_elems": offchip_reads,
        "offchip_writes_elems": l2.offchip_writes,
        "offchip_output_refetch_elems": tally.l2_refetch,
        "l2_evicted_elems": l2.evictions,
        "noc_down_elems": bus_in,
        "noc_up_elems": noc.metrics.pop("noc_into_l2_elems"),
        "noc_down_busy_cycles": tally.down_busy,
        "noc_up_busy_cycles": tally.up_busy,
        "noc_queueing_cycles": tally.down_queue + tally.up_queue,
        "offchip_busy_cycles": tally.offchip_busy,
        "pe_compute_cycles_total": busy,
        "pe_wait_data_cycles_total": int(wait.sum()),
        "pe_wait_drain_cycles_total": int(drain.sum()),
        "pes_used": n_pes,
        "steps": tally.steps,
        "pe_steps": active_pe_steps,
        "l1_overflow_steps": int(sum(tally.record_counts[r.rid] for r in records if r.l1_overflow)),
        "simpy_events": tally.events,
        "steps_timed_in_detail": tally.detailed_transitions
        if run.options.fast_forward
        else tally.steps,
        "noc_forwarded_elems": int(tally.total("forwarded").sum()) if records else 0,
        "noc_multicast_deliveries_elems": int(tally.total("multicast_deliveries")),
        "runtime_noc_ideal_cycles": ideal,
        "runtime_noc_zero_load_cycles": zero_load,
        "runtime_split_compute_cycles": ideal,
        "runtime_split_transfer_cycles": zero_load - ideal,
        "runtime_split_queueing_cycles": runtime - zero_load,
        **noc.metrics,
        **dict(
            steady_state((tally.records[r], n) for r, n in tally.record_counts.items()).metrics()
        ),
    }
    notes = [f"policy {policy.name}; NoC: {_describe(run)}"]
    if cov.missing:
        notes.append(
            f"INCOMPLETE MAPPING: {cov.missing} of {cov.layer_macs} MACs are never performed"
        )
    if cov.redundant:
        notes.append(f"{cov.redundant} MAC executions are redundant (performed more than once)")
    if metrics["l1_overflow_steps"]:
        notes.append(
            f"L1 too small: {metrics['l1_overflow_steps']} steps need more than"
            f" {hw.l1_size_elems} elements in a PE"
        )
    if macs != cov.performed:
        notes.append(f"internal: step MACs {macs} != coverage {cov.performed}")
    result = LayerResult(
        engine=f"sim-{policy.name}",
        network=network,
        layer=run.layer.name,
        layer_index=layer_index,
        runtime_cycles=int(runtime),
        macs=macs,
        tensors=make_tensors(tensors),
        metrics=tuple(sorted(metrics.items())),
        notes=tuple(notes),
    )
    per_pe = {
        "compute_cycles": [int(v) for v in compute],
        "wait_data_cycles": [int(v) for v in wait],
        "wait_drain_cycles": [int(v) for v in drain],
        "utilization_series": _series(tally, runtime, n_pes * lanes, run.options.utilization_bins),
    }
    return result, per_pe, noc


def _describe(run: _Run) -> str:
    """One phrase for the NoC: ``full-duplex bus``, ``mesh 8x8 (XY), L2 at corner``..."""
    graph = run.fabric.graph
    name = run.fabric.name
    if name == "bus":
        return "full-duplex bus"
    if name == "mesh":
        cols, rows = graph.graph["shape"]
        return f"mesh {cols}x{rows} (XY), L2 at {run.hw.mesh_l2_position}"
    if name == "systolic":
        cols, rows = graph.graph["shape"]
        return f"systolic {cols}x{rows}"
    return f"{name} ({graph.number_of_nodes()} nodes, {graph.number_of_edges()} links)"
