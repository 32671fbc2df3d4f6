"""Step records: what one global step moves and computes, derived from the PEs' tiles.

A record is translation-invariant (see :mod:`metronome.sim.schedule`), so the fast path computes it
once per geometry key; the full path computes it for every step. Counting rules:

* a PE's L1 receives the part of its tile it does not already hold (``l1_writes``): under
  ``l1_keeps_reusable_data`` what its L1 lacks (:mod:`metronome.sim.l1`, passed in as ``l1``),
  otherwise what its previous tile did not hold;
* one L2 read serves every PE that needs an element in the same step (``multicast``);
  with forwarding, an element a neighbour held in the previous step comes from it;
* partial sums leave a PE every step, when its output tile moves on, or (with ``l1``) when
  its L1 evicts them or is done with them; spatially reduced
  partial sums are merged for free or added on the way (:mod:`metronome.sim.phases`).

The flows themselves (who sends what to whom) come from :mod:`metronome.sim.flows`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from math import prod

import numpy as np

from metronome.spec.hardware import Hardware

from .flows import Demand, Flow, demand, merge, reduction_flows, refine
from .geometry import Geometry, StepTiles
from .l1_outcome import StepL1
from .loopnest import LoopNest
from .options import Policy

__all__ = ["Footprint", "Leaving", "RecordBuilder", "StepRecord"]

Leaving = tuple[np.ndarray, list[Flow], tuple[np.ndarray, np.ndarray] | None]
"""Partial sums leaving the PEs: how many per PE, their flows and their canvas (what
:func:`~metronome.sim.flows.refine` gives)."""

_DEMANDS_KEPT = 4096
"""Most memoised demands under residency (cleared when full)."""


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
    down_flows: tuple[Flow, ...]
    forwards: tuple[tuple[int, int, int], ...]
    forwarded: tuple[int, int]
    multicast_deliveries: int
    up_flows: tuple[Flow, ...]
    footprints: tuple[Footprint | None, Footprint | None, Footprint | None]
    occupancy_peak: int
    next_fits: bool
    l1_overflow: bool
    occupancy_total: int = 0
    """Elements of every PE's current tiles together (the whole array's L1 need)."""
    mac_extents: tuple[tuple[int, int], ...] = ()
    """(smallest, largest) extent of the working PEs' MAC boxes per loop dimension; a
    step whose smallest equals the layer's largest everywhere has no clipped tile."""
    first: bool = False
    """The layer's first step (its tiles all arrive at once)."""


def _volume(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    volume: np.ndarray = np.prod(np.maximum(hi - lo, 0), axis=0)
    return volume


def _intersection(
    a_lo: np.ndarray, a_hi: np.ndarray, b_lo: np.ndarray, b_hi: np.ndarray
) -> np.ndarray:
    return _volume(np.maximum(a_lo, b_lo), np.minimum(a_hi, b_hi))


class RecordBuilder:
    """Computes step records for one layer, mapping, hardware and policy."""

    def __init__(
        self,
        nest: LoopNest,
        geometry: Geometry,
        hardware: Hardware,
        policy: Policy,
        neighbours: Callable[[int], tuple[int, ...]] | None = None,
    ) -> None:
        self.nest = nest
        self.neighbours = neighbours if policy.forwarding else None
        self.geometry = geometry
        self.hardware = hardware
        self.policy = policy
        self.lanes = hardware.simd_lanes
        self._count = 0
        self._demands: dict[bytes, tuple[np.ndarray, Demand]] = {}

    def copy(self, rec: StepRecord) -> StepRecord:
        """``rec`` with the id the next :meth:`build` would give (a record built from
        the same tiles relative to its base and the same L1 outcome)."""
        self._count += 1
        return replace(rec, rid=self._count)

    def build(
        self,
        prev: StepTiles | None,
        cur: StepTiles,
        nxt: StepTiles | None,
        classes: object,
        inner: int,
        base: dict[str, int],
        l1: StepL1 | None = None,
        *,
        first: bool | None = None,
        up: Leaving | None = None,
    ) -> StepRecord:
        """The record of step ``cur`` between ``prev`` and ``nxt`` (``None`` at the ends);
        ``l1``: what the L1s lacked and evicted at this step, under residency (then
        ``prev`` is read only where PEs forward, ``nxt`` not at all: either may be
        ``None``, with ``first`` saying whether the step is the layer's first). ``up``:
        the outputs leaving each PE and their flows and canvas, when known (then
        ``l1.egress`` is not read)."""
        policy, hw = self.policy, self.hardware
        active = cur.active
        l1_writes = [0, 0, 0]
        delivered = [0, 0]
        footprints: list[Footprint | None] = [None, None, None]
        occupancy = np.zeros(active.size, dtype=np.int64)
        dims = self.geometry.tensor_dims
        flows: list[Flow] = []
        forwards: list[tuple[int, int, int]] = []
        forwarded = [0, 0]
        for t in range(2):
            lo, hi = cur.tensors[t]
            size = _volume(lo, hi)
            occupancy += np.where(active, size, 0)
            held = prev.tensors[t] if prev is not None else None
            if l1 is not None:
                off = np.array([base.get(d, 0) for d in dims[t]], dtype=np.int64)[:, None]
                new, need = self._lacking(t, lo, hi, active, held, l1.missing[t], off)
            else:
                new = size - (_intersection(lo, hi, *held) if held is not None else 0)
                need = demand(lo, hi, active & (new > 0), held, self.neighbours, hw.multicast)
            l1_writes[t] = int(new[active].sum())
            if need.canvas is None:
                forwards.extend(need.forwards)
                forwarded[t] = need.forwarded
                continue
            corner, mask = need.canvas
            delivered[t] = need.l2_reads
            forwarded[t] = need.forwarded
            flows.extend(need.l2_flows)
            forwards.extend(need.forwards)
            rel = tuple(int(c) - base.get(d, 0) for c, d in zip(corner, dims[t], strict=True))
            footprints[t] = Footprint(rel, mask)
        o_lo, o_hi = cur.tensors[2]
        o_size = _volume(o_lo, o_hi)
        occupancy += o_size
        has_out = active & (o_size > 0)
        if up is not None:
            sent, up_flows, canvas = up
            egress = sent > 0
        elif l1 is not None:
            leaving = l1.egress
            egress = np.array([e is not None for e in leaving], dtype=bool)
            sent = np.array([_count(e) for e in leaving], dtype=np.int64)
            up_flows, canvas = refine([(p, *e) for p, e in enumerate(leaving) if e is not None])
        else:
            if policy.psum_writeback_every_step or nxt is None:
                egress = has_out
            else:
                n_lo, n_hi = nxt.tensors[2]
                same = np.all((n_lo == o_lo) & (n_hi == o_hi), axis=0) & nxt.active
                egress = has_out & ~same
            sent = np.where(egress, o_size, 0)
            up_flows, canvas = reduction_flows(o_lo, o_hi, egress)
        bus_out = out_elems = 0
        if canvas is not None:
            corner, mask = canvas
            out_elems = sum(n for _, n in up_flows)
            # Partial sums injected into the NoC (reduced for free, or one per PE).
            bus_out = out_elems if policy.free_spatial_reduction else int(sent.sum())
            rel = tuple(int(c) - base.get(d, 0) for c, d in zip(corner, dims[2], strict=True))
            footprints[2] = Footprint(rel, mask)
        next_need = 0
        if nxt is not None:
            next_need = _volume(*nxt.tensors[0]) + _volume(*nxt.tensors[1])
        peak = int(occupancy.max(initial=0))
        fits = bool(np.all(occupancy + next_need <= hw.l1_size_elems))
        if l1 is not None:
            fits = l1.next_fits
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
            down_flows=merge(flows),
            forwards=_merge_forwards(forwards),
            forwarded=(forwarded[0], forwarded[1]),
            multicast_deliveries=sum(n * len(pes) for pes, n in flows if len(pes) > 1),
            up_flows=tuple(up_flows),
            footprints=(footprints[0], footprints[1], footprints[2]),
            occupancy_peak=peak,
            next_fits=fits and policy.double_buffering,
            l1_overflow=peak > hw.l1_size_elems if l1 is None else l1.overflow,
            occupancy_total=int(occupancy[active].sum()),
            mac_extents=_mac_extents(cur),
            first=prev is None if first is None else first,
        )

    def _lacking(
        self,
        t: int,
        lo: np.ndarray,
        hi: np.ndarray,
        active: np.ndarray,
        held: tuple[np.ndarray, np.ndarray] | None,
        missing: list[np.ndarray | None],
        off: np.ndarray,
    ) -> tuple[np.ndarray, Demand]:
        """Under residency, tensor ``t``'s elements each PE lacks (``missing``: masks over
        its tile ``[lo, hi)``) and their :func:`demand`, memoised on the tiles relative to
        ``off`` (the step's base), the activity, the masks and, where PEs forward, the
        previous tiles relative to ``off``: flows and counts are translation-invariant,
        the canvas's corner is kept relative to ``off``."""
        key = self._demand_key(t, lo, hi, active, held, missing, off)
        hit = self._demands.get(key)
        if hit is None:
            new = np.array([0 if m is None else int(m.sum()) for m in missing])
            receivers = active & (new > 0)
            multicast = self.hardware.multicast
            need = demand(lo, hi, receivers, held, self.neighbours, multicast, missing)
            if need.canvas is not None:
                need = replace(need, canvas=(need.canvas[0] - off[:, 0], need.canvas[1]))
            if len(self._demands) >= _DEMANDS_KEPT:
                self._demands.clear()
            hit = self._demands[key] = (new, need)
        new, need = hit
        if need.canvas is not None:
            need = replace(need, canvas=(need.canvas[0] + off[:, 0], need.canvas[1]))
        return new, need

    def _demand_key(
        self,
        t: int,
        lo: np.ndarray,
        hi: np.ndarray,
        active: np.ndarray,
        held: tuple[np.ndarray, np.ndarray] | None,
        missing: list[np.ndarray | None],
        off: np.ndarray,
    ) -> bytes:
        """What :meth:`_lacking` is memoised on, as bytes."""
        parts = [bytes((t,)), (lo - off).tobytes(), (hi - off).tobytes(), active.tobytes()]
        if self.neighbours is not None and held is not None:
            parts += [(held[0] - off).tobytes(), (held[1] - off).tobytes()]
        # Mask bytes are 0 or 1: 2 separates PEs, 3 marks a PE lacking nothing.
        parts.append(b"\x02".join(b"\x03" if m is None else m.tobytes() for m in missing))
        return b"|".join(parts)


def _mac_extents(cur: StepTiles) -> tuple[tuple[int, int], ...]:
    """(min, max) MAC-box extent per loop dimension over the PEs that do MACs."""
    working = cur.macs > 0
    if not working.any():
        return ()
    extents = (cur.mac_hi - cur.mac_lo)[:, working]
    return tuple(
        (int(lo), int(hi)) for lo, hi in zip(extents.min(axis=1), extents.max(axis=1), strict=True)
    )


def _count(region: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None) -> int:
    """Elements of a ``(lo, hi, mask)`` region (mask ``None``: the whole box)."""
    if region is None:
        return 0
    lo, hi, mask = region
    return prod((hi - lo).tolist()) if mask is None else int(np.count_nonzero(mask))


def _merge_forwards(forwards: list[tuple[int, int, int]]) -> tuple[tuple[int, int, int], ...]:
    out: dict[tuple[int, int], int] = {}
    for q, p, n in forwards:
        out[q, p] = out.get((q, p), 0) + n
    return tuple((q, p, n) for (q, p), n in sorted(out.items()))


def tensor_elems(geometry: Geometry) -> tuple[int, int, int]:
    """Sizes of the three tensors."""
    return tuple(prod(s) for s in geometry.tensor_sizes)  # type: ignore[return-value]
