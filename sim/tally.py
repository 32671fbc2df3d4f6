"""The counters of a run, filled step by step (or a repeated block at a time) by the
SimPy machine's feed or the fast path, and read by :mod:`metronome.sim.stats`."""

from __future__ import annotations

from array import array
from collections import Counter
from typing import TYPE_CHECKING

import numpy as np

from .memory import L2Step
from .noc import PhaseOutcome
from .noc_report import NocTotals
from .timing import Transition
from .traffic import StepRecord

if TYPE_CHECKING:
    from .machine import Machine

__all__ = ["Column", "Tally"]


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
