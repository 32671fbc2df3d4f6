"""Steady-state figures of a simulated layer (the seed paper's Fig. 6 conditions).

A *steady* step is one the simulator knows is interior: it is not the layer's first
step, as many PEs do MACs as in the busiest step of the layer, and every working PE's
MAC box has, in every loop dimension, the largest extent any PE has anywhere in the
layer (no loop of any level is at a clipped position). A dimension the array never
fills (3 input channels on 64 PEs) idles the same PEs in every step, so those steps stay
steady. Sums run over the steady steps' records, each step lasting its compute (the
busiest PE's MACs over the SIMD lanes): the roofline, no NoC or memory stall.
Definitions: docs/paper.md.
"""

from __future__ import annotations

from collections.abc import Iterable

from metronome.spec.results import SteadyState

from .traffic import StepRecord

__all__ = ["steady_state"]


def _full_extents(records: list[StepRecord]) -> tuple[int, ...]:
    """The largest MAC-box extent per loop dimension over the whole layer."""
    ranges = [r.mac_extents for r in records if r.mac_extents]
    return tuple(max(hi for _, hi in dim) for dim in zip(*ranges, strict=True)) if ranges else ()


def steady_state(counted: Iterable[tuple[StepRecord, int]]) -> SteadyState:
    """Sums over the steady steps among ``(record, steps it stands for)`` pairs."""
    pairs = list(counted)
    records = [r for r, _ in pairs]
    full = _full_extents(records)
    most = max((r.active_pes for r in records), default=0)
    steps = cycles = macs = noc = l2 = l1_all = 0
    for rec, count in pairs:
        interior = tuple(lo for lo, _ in rec.mac_extents) == full
        if rec.first or not interior or rec.active_pes != most or most == 0:
            continue
        steps += count
        cycles += count * max(rec.compute_cycles)
        macs += count * rec.macs
        noc += count * (rec.bus_in_elems + rec.bus_out_elems)
        l2 += count * (sum(rec.delivered) + rec.out_elems)
        l1_all = max(l1_all, rec.occupancy_total)
    return SteadyState(
        steps=steps,
        compute_cycles=cycles,
        macs=macs,
        noc_elems=noc,
        l2_elems=l2,
        l1_elems_all_pes=l1_all,
    )
