"""A run's counters assembled into the shared result schema: tensor counts, metrics
and notes."""

from __future__ import annotations

import numpy as np

from metronome.spec.energy import AccessCounts, energy_table, l1_read_accesses
from metronome.spec.results import LayerResult, TensorCounts, make_tensors

from .context import RunContext
from .coverage import Coverage
from .noc_report import NocReport, noc_report
from .steady import steady_state
from .tally import Tally

__all__ = ["build_result", "run_metrics", "run_notes", "tensor_counts"]


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
    run: RunContext,
    cov: Coverage,
    runtime: int,
    network: str,
    layer_index: int,
    references: tuple[int, int],
) -> tuple[LayerResult, dict[str, object], NocReport]:
    """The shared result, the per-PE detail and the NoC report of one simulated layer;
    ``references`` are the runtimes on an instantaneous and on a contention-free NoC."""
    tally, hw = run.tally, run.hw
    policy = run.options.policy
    n_pes = run.nest.num_pes
    macs = int(tally.total("macs"))
    tensors = tensor_counts(run)
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
    compute = tally.total("compute_cycles") if tally.records else np.zeros(n_pes, dtype=np.int64)
    wait = np.maximum(runtime - compute - tally.drain_waits, 0)
    metrics = run_metrics(run, cov, runtime, references, tensors, noc, compute, wait)
    result = LayerResult(
        engine=f"sim-{policy.name}",
        network=network,
        layer=run.layer.name,
        layer_index=layer_index,
        runtime_cycles=int(runtime),
        macs=macs,
        tensors=make_tensors(tensors),
        metrics=tuple(sorted(metrics.items())),
        notes=tuple(run_notes(run, cov, metrics, macs)),
    )
    lanes = hw.simd_lanes
    per_pe = {
        "compute_cycles": [int(v) for v in compute],
        "wait_data_cycles": [int(v) for v in wait],
        "wait_drain_cycles": [int(v) for v in tally.drain_waits],
        "utilization_series": _series(tally, runtime, n_pes * lanes, run.options.utilization_bins),
    }
    return result, per_pe, noc


def tensor_counts(run: RunContext) -> dict[str, TensorCounts]:
    """Per tensor: L1 reads and writes (from the step records), L2 reads and writes
    (deliveries, fills, partial sums and read-modify-write reads)."""
    tally, l2 = run.tally, run.l2
    l1_writes = tally.total("l1_writes")
    l1_reads = tally.total("l1_reads")
    delivered = tally.total("delivered")
    return {
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
            l2_writes=int(tally.total("out_elems")),
        ),
    }


def run_metrics(
    run: RunContext,
    cov: Coverage,
    runtime: int,
    references: tuple[int, int],
    tensors: dict[str, TensorCounts],
    noc: NocReport,
    compute: np.ndarray,
    wait: np.ndarray,
) -> dict[str, float | int]:
    """Every metric of the result: requirements, energy, utilisation, MAC coverage,
    off-chip and NoC traffic, per-PE totals, step counts and the runtime split. Takes
    the NoC's own metrics out of ``noc`` (``noc_into_l2_elems`` becomes
    ``noc_up_elems``)."""
    tally, hw, l2 = run.tally, run.hw, run.l2
    n_pes = run.nest.num_pes
    macs = int(tally.total("macs"))
    bus_in = int(tally.total("bus_in_elems"))
    bus_out = int(tally.total("bus_out_elems"))
    table = energy_table(run.options.energy_table)
    l1_read_count = sum(
        l1_read_accesses(c.l1_reads, hw.l1_read_width_elems) for c in tensors.values()
    )
    l1_total = l1_read_count + sum(c.l1_writes for c in tensors.values())
    l2_total = sum(c.l2_reads + c.l2_writes for c in tensors.values())
    offchip_reads = sum(l2.offchip_reads)
    offchip_total = offchip_reads + l2.offchip_writes
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
    busy = int(compute.sum())
    return {
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
        "utilization": round(macs / (runtime * n_pes * hw.simd_lanes), 6) if runtime else 0.0,
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
        "pe_wait_drain_cycles_total": int(tally.drain_waits.sum()),
        "pes_used": n_pes,
        "steps": tally.steps,
        "pe_steps": int(tally.total("active_pes")),
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


def run_notes(
    run: RunContext, cov: Coverage, metrics: dict[str, float | int], macs: int
) -> list[str]:
    """The result's notes: policy and NoC, incomplete or redundant mappings, L1
    overflow, and any disagreement between the steps' MACs and the coverage count."""
    notes = [f"policy {run.options.policy.name}; NoC: {_describe(run)}"]
    if cov.missing:
        notes.append(
            f"INCOMPLETE MAPPING: {cov.missing} of {cov.layer_macs} MACs are never performed"
        )
    if cov.redundant:
        notes.append(f"{cov.redundant} MAC executions are redundant (performed more than once)")
    if metrics["l1_overflow_steps"]:
        notes.append(
            f"L1 too small: {metrics['l1_overflow_steps']} steps need more than"
            f" {run.hw.l1_size_elems} elements in a PE"
        )
    if macs != cov.performed:
        notes.append(f"internal: step MACs {macs} != coverage {cov.performed}")
    return notes


def _describe(run: RunContext) -> str:
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
