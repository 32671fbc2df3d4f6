"""Step records: what one global step moves and computes, derived from the PEs' tiles.

A record is translation-invariant (see :mod:`sim.schedule`), so the fast path computes it
once per geometry key; the full path computes it for every step. Counting rules:

* a PE's L1 receives the part of its tile it does not already hold (``l1_writes``); it
  holds its previous tile, plus, under ``l1_keeps_reusable_data``, the tiles of the
  innermost enclosing loop that revisits them when that loop body's footprint fits;
* one L2 read serves every PE that needs an element in the same step (``multicast``);
* partial sums leave a PE every step, or when its output tile moves on; spatially reduced
  partial sums are merged for free or travel separately to an adder tree at L2.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, log2, prod

import numpy as np

from spec.hardware import Hardware

from .geometry import Geometry, StepTiles
from .loopnest import LoopNest
from .options import Policy

__all__ = ["Footprint", "RecordBuilder", "StepRecord"]


@dataclass(frozen=True, slots=True)
class Footprint:
    """Elements of one tensor touched by a step, relative to the step's base: a boolean
    canvas whose corner is ``rel_lo``."""

    rel_lo: tuple[int, ...]
    canvas: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class StepRecord:
    """Everything one global step does, independent of where it sits in the tensors."""

    rid: int
    compute_cycles: tuple[int, ...]
    involved: tuple[bool, ...]
    egress: tuple[bool, ...]
    macs: int
    active_pes: int
    l1_writes: tuple[int, int, int]
    l1_reads: tuple[int, int, int]
    delivered: tuple[int, int]
    bus_in_elems: int
    bus_out_elems: int
    out_elems: int
    adder_cycles: int
    footprints: tuple[Footprint | None, Footprint | None, Footprint | None]
    occupancy_peak: int
    next_fits: bool
    l1_overflow: bool


def _volume(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.prod(np.maximum(hi - lo, 0), axis=0)


def _intersection(a_lo, a_hi, b_lo, b_hi) -> np.ndarray:
    return _volume(np.maximum(a_lo, b_lo), np.minimum(a_hi, b_hi))


def _paint(
    lo: np.ndarray, hi: np.ndarray, pes: np.ndarray, minus: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Count canvas over the bounding box of the chosen PEs' rectangles (minus, per PE,
    what it already holds). Returns ``(corner, counts)`` or ``None`` if empty."""
    chosen = [p for p in np.flatnonzero(pes) if np.all(hi[:, p] > lo[:, p])]
    if not chosen:
        return None
    corner = lo[:, chosen].min(axis=1)
    top = hi[:, chosen].max(axis=1)
    counts = np.zeros(tuple(int(x) for x in top - corner), dtype=np.int32)
    for p in chosen:
        box = tuple(
            slice(int(a), int(b)) for a, b in zip(lo[:, p] - corner, hi[:, p] - corner, strict=True)
        )
        if minus is None:
            counts[box] += 1
            continue
        mask = np.ones(tuple(int(x) for x in hi[:, p] - lo[:, p]), dtype=bool)
        h_lo = np.maximum(minus[0][:, p], lo[:, p]) - lo[:, p]
        h_hi = np.minimum(minus[1][:, p], hi[:, p]) - lo[:, p]
        if np.all(h_hi > h_lo):
            mask[tuple(slice(int(a), int(b)) for a, b in zip(h_lo, h_hi, strict=True))] = False
        counts[box] += mask
    return corner, counts


class RecordBuilder:
    """Computes step records for one layer, mapping, hardware and policy."""

    def __init__(
        self, nest: LoopNest, geometry: Geometry, hardware: Hardware, policy: Policy
    ) -> None:
        self.nest = nest
        self.geometry = geometry
        self.hardware = hardware
        self.policy = policy
        self.lanes = hardware.simd_lanes
        self._count = 0
        n_loops = len(nest.top_trips)
        self.affects = [[True] * n_loops for _ in range(3)]
        self.fits = [[False] * n_loops for _ in range(3)]
        self.footprint = [[0] * n_loops for _ in range(3)]
        if policy.l1_keeps_reusable_data:
            self._reuse_analysis()

    def _tiles_at(self, positions: tuple[int, ...], inner: int | None) -> StepTiles:
        n_inner, schedules = self.nest.inner_steps(positions)
        index = n_inner - 1 if inner is None else inner
        return self.geometry.tiles(self.nest.pe_ranges(positions, index, schedules))

    def _reuse_analysis(self) -> None:
        """Which top-level loops change each tensor's tiles, and whether the body of each
        loop fits in L1 (found by executing the loop's first and last body steps)."""
        trips = self.nest.top_trips
        zero = tuple(0 for _ in trips)
        first = self._tiles_at(zero, 0)
        max_tile = [int(_volume(*first.tensors[t]).max(initial=0)) for t in range(3)]
        for j, n in enumerate(trips):
            if n > 1:
                moved = self._tiles_at(tuple(1 if i == j else 0 for i in range(len(trips))), 0)
                for t in range(3):
                    same = all(
                        np.array_equal(a, b)
                        for a, b in zip(first.tensors[t], moved.tensors[t], strict=True)
                    )
                    self.affects[t][j] = not same
            last = self._tiles_at(
                tuple(0 if i <= j else trips[i] - 1 for i in range(len(trips))), None
            )
            for t in range(2):
                lo = np.minimum(first.tensors[t][0], last.tensors[t][0])
                hi = np.maximum(first.tensors[t][1], last.tensors[t][1])
                footprint = int(_volume(lo, hi).max(initial=0))
                self.footprint[t][j] = footprint
                others = sum(2 * max_tile[o] for o in range(3) if o != t)
                self.fits[t][j] = footprint + others <= self.hardware.l1_size_elems
        self.max_tile = max_tile

    def retained(self, classes: tuple[object, ...]) -> tuple[int, int]:
        """Per input / weight: the L1 footprint kept from the previous iteration of an
        enclosing loop that revisits this step's tiles (0 when nothing is kept)."""
        if not self.policy.l1_keeps_reusable_data:
            return (0, 0)
        out = []
        for t in range(2):
            keep = 0
            for j in range(len(classes) - 1, -1, -1):
                c = classes[j]
                moved = (c[0] if isinstance(c, tuple) else c) != 0
                if moved and not self.affects[t][j]:
                    keep = self.footprint[t][j] if self.fits[t][j] else 0
                    break
            out.append(keep)
        return out[0], out[1]

    def build(
        self,
        prev: StepTiles | None,
        cur: StepTiles,
        nxt: StepTiles | None,
        classes: tuple[object, ...],
        inner: int,
        base: dict[str, int],
    ) -> StepRecord:
        """The record of step ``cur`` between ``prev`` and ``nxt`` (``None`` at the ends)."""
        policy, hw = self.policy, self.hardware
        active = cur.active
        retained = self.retained(classes)
        l1_writes = [0, 0, 0]
        delivered = [0, 0]
        footprints: list[Footprint | None] = [None, None, None]
        occupancy = np.zeros(active.size, dtype=np.int64)
        dims = self.geometry.tensor_dims
        for t in range(2):
            lo, hi = cur.tensors[t]
            size = _volume(lo, hi)
            occupancy += np.where(active, np.maximum(size, retained[t]), 0)
            if retained[t]:
                continue
            held = prev.tensors[t] if prev is not None else None
            new = size - (_intersection(lo, hi, *held) if held is not None else 0)
            l1_writes[t] = int(new[active].sum())
            painted = _paint(lo, hi, active & (new > 0), held)
            if painted is None:
                continue
            corner, counts = painted
            mask = counts > 0
            distinct = int(mask.sum())
            delivered[t] = distinct if hw.multicast else l1_writes[t]
            rel = tuple(int(c) - base.get(d, 0) for c, d in zip(corner, dims[t], strict=True))
            footprints[t] = Footprint(rel, mask)
        o_lo, o_hi = cur.tensors[2]
        o_size = _volume(o_lo, o_hi)
        occupancy += o_size
        has_out = active & (o_size > 0)
        if policy.psum_writeback_every_step or nxt is None:
            egress = has_out
        else:
            n_lo, n_hi = nxt.tensors[2]
            same = np.all((n_lo == o_lo) & (n_hi == o_hi), axis=0) & nxt.active
            egress = has_out & ~same
        bus_out = out_elems = adder = 0
        painted = _paint(o_lo, o_hi, egress, None)
        if painted is not None:
            corner, counts = painted
            out_elems = int((counts > 0).sum())
            fan_in = int(counts.max())
            if policy.free_spatial_reduction:
                bus_out = out_elems
            else:
                bus_out = int(o_size[egress].sum())
                if fan_in > 1:
                    adder = ceil(log2(fan_in)) * hw.adder_latency_cycles
            rel = tuple(int(c) - base.get(d, 0) for c, d in zip(corner, dims[2], strict=True))
            footprints[2] = Footprint(rel, counts > 0)
        next_need = 0
        if nxt is not None:
            next_need = _volume(*nxt.tensors[0]) + _volume(*nxt.tensors[1])
        peak = int(occupancy.max(initial=0))
        fits = bool(np.all(occupancy + next_need <= hw.l1_size_elems))
        macs = int(cur.macs.sum())
        cycles = tuple(int(-(-m // self.lanes)) for m in cur.macs.tolist())
        self._count += 1
        return StepRecord(
            rid=self._count,
            compute_cycles=cycles,
            involved=tuple(bool(a) for a in active.tolist()),
            egress=tuple(bool(e) for e in egress.tolist()),
            macs=macs,
            active_pes=int((cur.macs > 0).sum()),
            l1_writes=(l1_writes[0], l1_writes[1], macs),
            l1_reads=(macs, macs, macs),
            delivered=(delivered[0], delivered[1]),
            bus_in_elems=delivered[0] + delivered[1],
            bus_out_elems=bus_out,
            out_elems=out_elems,
            adder_cycles=adder,
            footprints=(footprints[0], footprints[1], footprints[2]),
            occupancy_peak=peak,
            next_fits=fits and policy.double_buffering,
            l1_overflow=peak > hw.l1_size_elems,
        )


def tensor_elems(geometry: Geometry) -> tuple[int, int, int]:
    """Sizes of the three tensors."""
    return tuple(prod(s) for s in geometry.tensor_sizes)  # type: ignore[return-value]
