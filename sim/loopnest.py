"""Execute a mapping's directives: cluster levels, loops, and every PE's index ranges per step.

The simulator runs all PEs in lock-step *global steps*. The top cluster level's loops
(one per directive; a SpatialMap contributes its fold loop) form an odometer over the
whole layer. At each top-level step every top-level unit runs the nest of the levels
below on its own tiles; the longest of those inner nests sets how many global steps the
top-level step lasts (units whose inner nest is shorter idle for the rest).

Ranges are half-open ``[lo, hi)`` over the layer's *held* dimensions
(:func:`held_dims`): every mappable dimension except the output coordinates ``Y'``/``X'``,
which are derived from the input rows and filter rows a PE holds (the sliding-window rule
in :mod:`metronome.sim.geometry`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from math import prod

import numpy as np

from metronome.spec.layer import Layer
from metronome.spec.mapping import MapDirective, Mapping
from metronome.spec.source import SpecError
from metronome.spec.window import (
    SLIDING_PAIRS,
    input_row,
    outputs_within,
    whole_windows_tile,
    window_rows,
)

__all__ = ["LevelPlan", "LoopNest", "PERanges", "held_dims"]

_OUT_OF = {out: (in_dim, filt) for in_dim, filt, out in SLIDING_PAIRS}
_FILTER_OF = {in_dim: filt for in_dim, filt, _ in SLIDING_PAIRS}


def held_dims(layer: Layer) -> tuple[str, ...]:
    """The dimensions whose ranges a PE holds (mappable dims without ``Y'``/``X'``)."""
    return tuple(d for d in layer.mappable_dims if d not in _OUT_OF)


@dataclass(frozen=True, slots=True)
class PERanges:
    """Every PE's range per held dimension at one global step: ``lo``/``hi`` have shape
    ``(n_dims, n_pes)``; ``active`` marks PEs that have work this step."""

    lo: np.ndarray
    hi: np.ndarray
    active: np.ndarray


@dataclass(frozen=True, slots=True)
class _Loop:
    """One loop of a level: the directive it comes from and its trip count."""

    directive: int
    trips: int


@dataclass(frozen=True, slots=True)
class LevelPlan:
    """One cluster level: its directives (stride applied) and its unit count."""

    index: int
    directives: tuple[MapDirective, ...]
    units: int


class _Level:
    """Evaluates one level's tiles for a given incoming range (one unit config)."""

    def __init__(self, nest: LoopNest, plan: LevelPlan, lo: np.ndarray, hi: np.ndarray) -> None:
        self.nest = nest
        self.plan = plan
        self.lo = lo
        self.hi = hi
        dim_index = nest.dim_index
        self.sizes: list[int] = []
        self.offsets: list[int] = []
        self.positions: list[int] = []
        for d in plan.directives:
            size, offset = d.size, d.offset
            if d.dim in _FILTER_OF:
                stride = nest.layer.stride(d.dim)
                fdim = dim_index[_FILTER_OF[d.dim]]
                r_extent = int(hi[fdim] - lo[fdim])
                if stride > 1 and size >= r_extent:
                    size, offset = whole_windows_tile(size, r_extent, stride)
            if d.dim in _OUT_OF:
                extent = self._derived_outputs(d.dim)[1]
            else:
                k = dim_index[d.dim]
                extent = int(hi[k] - lo[k])
            self.sizes.append(size)
            self.offsets.append(offset)
            self.positions.append(1 + -(-max(0, extent - size) // offset))
        spatial = [i for i, d in enumerate(plan.directives) if d.spatial]
        self.first_spatial = spatial[0] if spatial else None
        self.loops: list[_Loop] = []
        for i, d in enumerate(plan.directives):
            if d.spatial and i != self.first_spatial:
                continue
            trips = -(-self.positions[i] // plan.units) if d.spatial else self.positions[i]
            self.loops.append(_Loop(i, trips))

    def _derived_outputs(self, out_dim: str) -> tuple[int, int]:
        """First output index and count the level's incoming rows and filter rows give."""
        in_dim, f_dim = _OUT_OF[out_dim]
        k, f = self.nest.dim_index[in_dim], self.nest.dim_index[f_dim]
        stride = self.nest.layer.stride(in_dim)
        a, m = int(self.lo[k]), int(self.hi[k] - self.lo[k])
        b, n = int(self.lo[f]), int(self.hi[f] - self.lo[f])
        first, last = outputs_within(a, m, b, n, stride)
        first, last = max(0, first), min(self.nest.layer.size(out_dim) - 1, last)
        return first, max(0, last - first + 1)

    @property
    def trips(self) -> tuple[int, ...]:
        """Trip count of each loop, outermost first."""
        return tuple(loop.trips for loop in self.loops)

    def tiles(self, positions: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ranges ``(lo, hi)`` of shape ``(n_dims, units)`` and the active mask for the
        loop positions ``positions`` (one per loop)."""
        units = self.plan.units
        lo = np.repeat(self.lo[:, None], units, axis=1)
        hi = np.repeat(self.hi[:, None], units, axis=1)
        active = np.ones(units, dtype=bool)
        unit = np.arange(units)
        by_directive = {loop.directive: p for loop, p in zip(self.loops, positions, strict=True)}
        spatial_p = None
        if self.first_spatial is not None:
            spatial_p = by_directive[self.first_spatial] * units + unit
        outputs: list[tuple[str, np.ndarray, int, int]] = []
        for i, d in enumerate(self.plan.directives):
            p = (
                spatial_p
                if spatial_p is not None and d.spatial
                else np.full(units, by_directive[i])
            )
            active &= p < self.positions[i]
            if d.dim in _OUT_OF:
                outputs.append((d.dim, p, self.sizes[i], self.offsets[i]))
                continue
            k = self.nest.dim_index[d.dim]
            start = lo[k] + p * self.offsets[i]
            lo[k], hi[k] = np.minimum(start, hi[k]), np.minimum(start + self.sizes[i], hi[k])
        for out_dim, p, size, offset in outputs:
            in_dim, f_dim = _OUT_OF[out_dim]
            k, f = self.nest.dim_index[in_dim], self.nest.dim_index[f_dim]
            stride = self.nest.layer.stride(in_dim)
            first, count = self._derived_outputs(out_dim)
            o_lo = first + np.minimum(p * offset, count)
            o_hi = first + np.minimum(p * offset + size, count)
            b, n = lo[f], hi[f] - lo[f]
            lo[k] = input_row(o_lo, b, stride)
            hi[k] = np.where(o_hi > o_lo, lo[k] + window_rows(o_hi - o_lo, n, stride), lo[k])
        return lo, hi, active


class _SubSchedule:
    """The flattened lock-step schedule of one unit config at a level below the top:
    relative ranges of every PE under the unit, per inner step."""

    def __init__(self, steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> None:
        self.steps = steps


class LoopNest:
    """The executed loop nest of one layer under one mapping on ``num_pes`` PEs."""

    def __init__(self, layer: Layer, mapping: Mapping, num_pes: int) -> None:
        self.layer = layer
        self.mapping = mapping
        self.dims = held_dims(layer)
        self.dim_index = {d: i for i, d in enumerate(self.dims)}
        units = mapping.units_per_level(num_pes)
        plans = []
        for i, directives in enumerate(mapping.level_directives()):
            seen: set[str] = set()
            for d in directives:
                if d.dim in seen or (d.dim in _OUT_OF and _OUT_OF[d.dim][0] in seen):
                    raise SpecError.at(
                        d.span, f"the simulator needs one directive per dimension per level ({d})"
                    )
                if d.dim in ("Y", "X") and ("Y'" if d.dim == "Y" else "X'") in seen:
                    raise SpecError.at(d.span, f"level mixes {d.dim} and its output dimension")
                seen.add(d.dim)
            plans.append(LevelPlan(i, directives, units[i]))
        self.levels = tuple(plans)
        self.units = units
        self.pes_per_top_unit = prod(units[1:])
        self.num_pes = prod(units)
        full_lo = np.zeros(len(self.dims), dtype=np.int64)
        full_hi = np.array([layer.size(d) for d in self.dims], dtype=np.int64)
        self.top = _Level(self, self.levels[0], full_lo, full_hi)
        self._sub_cache: dict[tuple[int, tuple[int, ...]], _SubSchedule] = {}
        self._inner_maps_outputs = any(
            d.dim in _OUT_OF for plan in self.levels[1:] for d in plan.directives
        )

    # -- top level -------------------------------------------------------------------
    @property
    def top_trips(self) -> tuple[int, ...]:
        """Trip counts of the top level's loops, outermost first."""
        return self.top.trips

    def top_loop_dims(self) -> tuple[str, ...]:
        """The dimension each top-level loop walks."""
        return tuple(self.levels[0].directives[loop.directive].dim for loop in self.top.loops)

    def inner_steps(self, positions: tuple[int, ...]) -> tuple[int, list[_SubSchedule | None]]:
        """Global steps the top-level step ``positions`` lasts and each unit's schedule."""
        lo, hi, active = self.top.tiles(positions)
        if len(self.levels) == 1:
            return 1, []
        schedules: list[_SubSchedule | None] = []
        longest = 0
        for u in range(self.units[0]):
            if not active[u]:
                schedules.append(None)
                continue
            sched = self._sub_schedule(1, lo[:, u], hi[:, u])
            schedules.append(sched)
            longest = max(longest, len(sched.steps))
        return max(longest, 1), schedules

    def pe_ranges(
        self, positions: tuple[int, ...], inner: int, schedules: list[_SubSchedule | None]
    ) -> PERanges:
        """Every PE's ranges at inner step ``inner`` of top-level step ``positions``."""
        lo, hi, active = self.top.tiles(positions)
        if len(self.levels) == 1:
            return PERanges(lo, hi, active)
        n_sub = self.pes_per_top_unit
        n = self.num_pes
        out_lo = np.zeros((len(self.dims), n), dtype=np.int64)
        out_hi = np.zeros((len(self.dims), n), dtype=np.int64)
        out_act = np.zeros(n, dtype=bool)
        for u, sched in enumerate(schedules):
            if sched is None or inner >= len(sched.steps):
                continue
            rel_lo, rel_hi, act = sched.steps[inner]
            base = self._base(lo[:, u])
            out_lo[:, u * n_sub : (u + 1) * n_sub] = rel_lo + base[:, None]
            out_hi[:, u * n_sub : (u + 1) * n_sub] = rel_hi + base[:, None]
            out_act[u * n_sub : (u + 1) * n_sub] = act
        return PERanges(out_lo, out_hi, out_act)

    # -- inner levels ----------------------------------------------------------------
    def _base(self, lo: np.ndarray) -> np.ndarray:
        """The translation a config's relative ranges are stored against: the incoming
        low end, except filter dimensions (kept absolute) and input rows/columns (kept
        modulo the stride, or absolute when an inner level maps output coordinates,
        whose clipping at the layer's edge is absolute)."""
        base = lo.copy()
        for in_dim, f_dim in _OUT_OF.values():
            if in_dim in self.dim_index:
                k = self.dim_index[in_dim]
                base[k] = (
                    0 if self._inner_maps_outputs else lo[k] - lo[k] % self.layer.stride(in_dim)
                )
                base[self.dim_index[f_dim]] = 0
        return base

    def _sub_schedule(self, level: int, lo: np.ndarray, hi: np.ndarray) -> _SubSchedule:
        base = self._base(lo)
        rel_lo, rel_hi = lo - base, hi - base
        key = (level, (*rel_lo.tolist(), *rel_hi.tolist()))
        cached = self._sub_cache.get(key)
        if cached is not None:
            return cached
        lvl = _Level(self, self.levels[level], rel_lo, rel_hi)
        units = self.levels[level].units
        n_sub = prod(self.units[level + 1 :])
        steps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for positions in np.ndindex(*lvl.trips):
            t_lo, t_hi, t_act = lvl.tiles(tuple(int(p) for p in positions))
            if level == len(self.levels) - 1:
                steps.append((t_lo, t_hi, t_act))
                continue
            subs = [
                self._sub_schedule(level + 1, t_lo[:, u], t_hi[:, u]) if t_act[u] else None
                for u in range(units)
            ]
            longest = max((len(s.steps) for s in subs if s is not None), default=0)
            for inner in range(max(longest, 1)):
                s_lo = np.zeros((len(self.dims), units * n_sub), dtype=np.int64)
                s_hi = np.zeros_like(s_lo)
                s_act = np.zeros(units * n_sub, dtype=bool)
                for u, sub in enumerate(subs):
                    if sub is None or inner >= len(sub.steps):
                        continue
                    r_lo, r_hi, r_act = sub.steps[inner]
                    b = self._base(t_lo[:, u])
                    s_lo[:, u * n_sub : (u + 1) * n_sub] = r_lo + b[:, None]
                    s_hi[:, u * n_sub : (u + 1) * n_sub] = r_hi + b[:, None]
                    s_act[u * n_sub : (u + 1) * n_sub] = r_act
                steps.append((s_lo, s_hi, s_act))
        sched = _SubSchedule(steps)
        self._sub_cache[key] = sched
        return sched

    def iter_steps(
        self,
    ) -> Iterator[tuple[tuple[int, ...], int, int, list[_SubSchedule | None]]]:
        """Every global step in execution order."""
        for positions in np.ndindex(*self.top_trips):
            pos = tuple(int(p) for p in positions)
            n_inner, schedules = self.inner_steps(pos)
            for inner in range(n_inner):
                yield pos, inner, n_inner, schedules
