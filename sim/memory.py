"""The shared L2 and the off-chip memory behind it, tracked element by element.

L2 fetches an input or weight element from off-chip the first time a step needs it and
keeps it until evicted. When the elements held exceed the capacity, L2 evicts the least
recently used ones (inputs and weights by last L2 read, outputs by last write) down to
7/8 of its capacity in one batch; evicted outputs are written off-chip and fetched back
if a later partial sum must be added to them. At the end every output still in L2 is
written off-chip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spec.hardware import Hardware

from .traffic import Footprint

__all__ = ["L2Memory", "L2Step", "OffchipTiming"]

_EVICT_TO = 7 / 8


@dataclass(frozen=True, slots=True)
class OffchipTiming:
    """How long a fetch from off-chip memory into L2 takes."""

    latency_cycles: int
    elems_per_cycle: int

    @classmethod
    def of(cls, hw: Hardware) -> OffchipTiming:
        """The off-chip timing of ``hw``."""
        return cls(hw.offchip_latency_cycles, hw.offchip_bw_elems_per_cycle)

    def offchip_cycles(self, n_elems: int) -> int:
        """Cycles to bring ``n_elems`` from off-chip into L2 (0 for nothing)."""
        if n_elems <= 0:
            return 0
        return self.latency_cycles + -(-n_elems // self.elems_per_cycle)


@dataclass(frozen=True, slots=True)
class L2Step:
    """What L2 did for one step: off-chip elements fetched before distribution, output
    elements read for read-modify-write, and output elements fetched back from off-chip."""

    misses: int
    rmw_reads: int
    output_refetches: int


class L2Memory:
    """Residency of every tensor element in L2, with LRU eviction in batches."""

    def __init__(self, shapes: tuple[tuple[int, ...], ...], capacity_elems: int) -> None:
        self.shapes = shapes
        self.capacity = capacity_elems
        self.last_use = [np.full(shape, -1, dtype=np.int64) for shape in shapes]
        self.written = np.zeros(shapes[2], dtype=bool)
        self.sizes = [int(np.prod(shape)) for shape in shapes]
        self.resident = [0, 0, 0]
        self.never_evicts = sum(self.sizes) <= capacity_elems
        self.occupancy = 0
        self.peak_occupancy = 0
        self.offchip_reads = [0, 0, 0]
        self.offchip_writes = 0
        self.fills = [0, 0, 0]
        self.evictions = 0

    @staticmethod
    def _view(array: np.ndarray, corner: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
        return array[tuple(slice(c, c + n) for c, n in zip(corner, shape, strict=True))]

    def step(
        self, index: int, footprints: tuple[Footprint | None, ...], base: dict[str, int], dims
    ) -> L2Step:
        """Account one step: fetch missing inputs/weights, write its outputs."""
        misses = 0
        for t in range(2):
            fp = footprints[t]
            if fp is None or (self.never_evicts and self.resident[t] == self.sizes[t]):
                continue
            corner = tuple(r + base.get(d, 0) for r, d in zip(fp.rel_lo, dims[t], strict=True))
            view = self._view(self.last_use[t], corner, fp.canvas.shape)
            missing = fp.canvas & (view < 0)
            n = int(missing.sum())
            if n:
                misses += n
                self.resident[t] += n
                self.occupancy += n
                self.offchip_reads[t] += n
                self.fills[t] += n
            if not self.never_evicts:
                view[fp.canvas] = index
            elif n:
                view[missing] = index
        rmw = refetch = 0
        fp = footprints[2]
        if fp is not None:
            corner = tuple(r + base.get(d, 0) for r, d in zip(fp.rel_lo, dims[2], strict=True))
            view = self._view(self.last_use[2], corner, fp.canvas.shape)
            written = self._view(self.written, corner, fp.canvas.shape)
            again = fp.canvas & written
            rmw = int(again.sum())
            gone = again & (view < 0)
            refetch = int(gone.sum())
            fresh = int((fp.canvas & (view < 0)).sum())
            self.offchip_reads[2] += refetch
            self.resident[2] += fresh
            self.occupancy += fresh
            view[fp.canvas] = index
            written[fp.canvas] = True
        self.peak_occupancy = max(self.peak_occupancy, self.occupancy)
        if self.occupancy > self.capacity:
            self._evict()
        return L2Step(misses, rmw, refetch)

    def _evict(self) -> None:
        target = int(self.capacity * _EVICT_TO)
        excess = self.occupancy - target
        stamps = np.concatenate([a.ravel() for a in self.last_use])
        resident = np.flatnonzero(stamps >= 0)
        order = resident[np.argsort(stamps[resident], kind="stable")][:excess]
        offsets = np.cumsum([0, *self.sizes])
        for t in range(3):
            chosen = order[(order >= offsets[t]) & (order < offsets[t + 1])] - offsets[t]
            if chosen.size == 0:
                continue
            flat = self.last_use[t].reshape(-1)
            flat[chosen] = -1
            self.resident[t] -= chosen.size
            if t == 2:
                self.offchip_writes += int(chosen.size)
        self.occupancy -= int(order.size)
        self.evictions += int(order.size)

    def finish(self) -> None:
        """Write every output still held in L2 off-chip."""
        self.offchip_writes += int((self.last_use[2] >= 0).sum())
