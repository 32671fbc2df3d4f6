"""The stream of global steps, each with a *geometry key* and a translation.

A step record depends on the step's own tiles and on its neighbours' (what the PE held
before, whether its output tile moves on, whether the next tiles fit beside it). The
key captures all three: each top-level loop contributes its position class (first,
middle or last; the exact position for filter loops; the phase modulo the stride for
strided sliding loops), which fixes the edge clipping, which loop advanced and which
will advance next; the key is the step's own (classes, inner index, inner count) with
those of the previous and of the next step. Two steps with the same key see the same
three tiles up to one translation, so everything a record holds is the same: records
are computed once per key; the translation (``base``) places a record's footprints in
absolute tensor coordinates.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np

from metronome.spec.window import FILTER_OF, INPUT_OF, OUTPUT_OF

from .loopnest import LoopNest

__all__ = ["Segment", "Step", "StepStream"]

_BLOCK_LIMIT = 1 << 16
"""Most steps in one block of a segment."""
_CHUNK = 4096
"""Steps per segment where nothing repeats."""


@dataclass(frozen=True, slots=True)
class Step:
    """One global step: top-level loop positions, inner index, geometry key and base."""

    index: int
    top: int
    positions: tuple[int, ...]
    inner: int
    n_inner: int
    key: tuple[object, ...]
    base: dict[str, int]


@dataclass(frozen=True, slots=True)
class Segment:
    """Consecutive steps: one block of steps repeated ``count`` times, repetition ``b``
    advancing top-level loop ``loop`` by ``b`` positions and translating every step by
    ``b * delta``. Steps of a repetition have the keys (so the records) of the first:
    a repeated block lies strictly inside the loop's middle positions, so its
    neighbouring blocks are middle positions too."""

    steps: tuple[Step, ...]
    schedules: tuple[list[object], ...]
    count: int
    loop: int
    delta: dict[str, int]

    @property
    def total(self) -> int:
        """Number of steps."""
        return len(self.steps) * self.count

    def step_at(self, b: int, j: int) -> Step:
        """Step ``j`` of repetition ``b``."""
        first = self.steps[j]
        if b == 0:
            return first
        positions = list(first.positions)
        positions[self.loop] += b
        base = dict(first.base)
        for dim, d in self.delta.items():
            base[dim] = base.get(dim, 0) + b * d
        index = first.index + b * len(self.steps)
        return Step(index, first.top, tuple(positions), first.inner, first.n_inner, first.key, base)


class StepStream:
    """Enumerates the global steps of a loop nest in execution order."""

    def __init__(self, nest: LoopNest, *, memo: bool = True) -> None:
        self.nest = nest
        self.memo = memo
        self._inner: dict[tuple[object, ...], tuple[int, list[object]]] = {}
        self.trips = nest.top_trips
        self.loop_dims = nest.top_loop_dims()
        layer = nest.layer
        directives = nest.levels[0].directives
        units = nest.units[0]
        self._shift: list[dict[str, tuple[int, int]]] = []
        self._phase: list[int] = []
        exact_zone: list[tuple[int, int]] = []
        for loop, dim in zip(nest.top.loops, self.loop_dims, strict=True):
            step = nest.top.offsets[loop.directive]
            reach = nest.top.sizes[loop.directive]
            if directives[loop.directive].spatial:
                reach += (units - 1) * step
                step *= units
            exact_zone.append(self._zone(dim, step, reach, loop.trips))
            shift: dict[str, tuple[int, int]] = {}
            phase = 0
            if dim in ("R", "S"):
                phase = -1
            elif dim in OUTPUT_OF:
                stride = layer.stride(dim)
                shift[dim] = (step, 1)
                shift[OUTPUT_OF[dim]] = (step, stride)
                phase = stride if stride > 1 else 0
            elif dim in INPUT_OF:
                shift[dim] = (step, 1)
                shift[INPUT_OF[dim]] = (step * layer.stride(INPUT_OF[dim]), 0)
            else:
                shift[dim] = (step, 1)
            self._shift.append(shift)
            self._phase.append(phase)
        self._class_info = tuple(
            (trips - 1, phase, self._shift[j][dim][0] if phase > 1 else 0, *exact_zone[j])
            for j, (trips, phase, dim) in enumerate(
                zip(self.trips, self._phase, self.loop_dims, strict=True)
            )
        )
        # Per loop and position: its class and its contribution to the base.
        self._class_at = [
            [self._class_of(p, info) for p in range(trips)]
            for trips, info in zip(self.trips, self._class_info, strict=True)
        ]
        self._shift_at = [
            [
                tuple(
                    (dim, p * step // div if div > 1 else p * step)
                    for dim, (step, div) in shift.items()
                )
                for p in range(trips)
            ]
            for trips, shift in zip(self.trips, self._shift, strict=True)
        ]

    def _zone(self, dim: str, step: int, reach: int, trips: int) -> tuple[int, int]:
        """Positions ``[lo, hi]`` of a top-level loop whose tiles are translations of
        each other; positions outside get a class of their own. A sliding window is
        clipped at the layer's edge when a level splits the filter: a tile of input rows
        ``[a, a + reach)`` with filter rows anywhere in ``[0, R)`` holds every window it
        would hold elsewhere when ``a >= R - 1`` and ``a + reach <= Y - R + 1`` (with
        the whole filter, always). Ranges an inner level maps in
        output coordinates are kept absolute (:meth:`LoopNest._base`), so there every
        position is its own."""
        nest = self.nest
        sliding = dim in OUTPUT_OF or dim in INPUT_OF
        if sliding and nest._inner_maps_outputs:
            return trips, -1
        if dim not in OUTPUT_OF:
            return 0, trips - 1
        window = nest.layer.size(FILTER_OF[dim])
        split = any(
            d.dim == FILTER_OF[dim] and d.size < window
            for level in nest.levels
            for d in level.directives
        )
        if not split:
            # Every PE holds the whole filter: its windows are never clipped.
            return 0, trips - 1
        lo = -(-(window - 1) // step)
        hi = (nest.layer.size(dim) - window + 1 - reach) // step
        return lo, min(hi, trips - 1)

    @property
    def top_steps(self) -> int:
        """Number of top-level steps."""
        return int(np.prod(self.trips, dtype=np.int64))

    @staticmethod
    def _class_of(p: int, info: tuple[int, int, int, int, int]) -> object:
        """The class of position ``p`` of a top-level loop with ``info``."""
        last, phase, delta, lo, hi = info
        if phase == -1:
            return p
        cls = 0 if p == 0 else (2 if p == last else 1)
        if p < lo or p > hi:
            return (cls, (p * delta) % phase if phase > 1 else 0, p)
        return (cls, (p * delta) % phase) if phase > 1 else cls

    def _classes(self, positions: tuple[int, ...]) -> tuple[object, ...]:
        return tuple([table[p] for table, p in zip(self._class_at, positions, strict=True)])

    def base(self, positions: tuple[int, ...]) -> dict[str, int]:
        """Translation of this top-level step against its key's first occurrence."""
        base: dict[str, int] = {}
        for table, p in zip(self._shift_at, positions, strict=True):
            for dim, value in table[p]:
                base[dim] = base.get(dim, 0) + value
        return base

    def _top_step(self, positions: tuple[int, ...]) -> tuple[tuple[object, ...], int, list[object]]:
        """Classes, inner step count and schedules of a top-level step (per class when
        memoising)."""
        classes = self._classes(positions)
        cached = self._inner.get(classes) if self.memo else None
        if cached is None:
            # The scheduler passes each unit's schedule through without opening it.
            cached = cast("tuple[int, list[object]]", self.nest.inner_steps(positions))
            if self.memo:
                self._inner[classes] = cached
        return classes, cached[0], cached[1]

    def _neighbour(self, positions: tuple[int, ...], step: int) -> tuple[int, ...] | None:
        """The top-level positions one odometer step before (``-1``) or after (``+1``)."""
        pos = list(positions)
        for j in range(len(pos) - 1, -1, -1):
            pos[j] += step
            if 0 <= pos[j] < self.trips[j]:
                return tuple(pos)
            pos[j] = 0 if step > 0 else self.trips[j] - 1
        return None

    def _walk(
        self, positions: Iterable[tuple[int, ...]], before: tuple[int, ...] | None
    ) -> Iterator[tuple[tuple[int, ...], int, list[object], list[tuple[object, ...]]]]:
        """Top-level steps in order, each with its inner step count, schedules and the
        keys of its inner steps: each step's own (classes, inner, count) with its
        predecessor's and successor's (``None`` at the ends of the layer). ``before`` is
        the top-level step preceding the first one (``None`` at the start)."""
        prev = self._top_step(before) if before is not None else None
        it = iter(positions)
        cur_pos = next(it, None)
        cur = self._top_step(cur_pos) if cur_pos is not None else None
        while cur_pos is not None and cur is not None:
            nxt_pos = next(it, None)
            if nxt_pos is None:
                after = self._neighbour(cur_pos, 1)
                nxt = self._top_step(after) if after is not None else None
            else:
                nxt = self._top_step(nxt_pos)
            classes, n_inner, schedules = cur
            local = [(classes, inner, n_inner) for inner in range(n_inner)]
            first = (prev[0], prev[1] - 1, prev[1]) if prev is not None else None
            last = (nxt[0], 0, nxt[1]) if nxt is not None else None
            keys: list[tuple[object, ...]] = [
                (
                    classes,
                    inner,
                    n_inner,
                    local[inner - 1] if inner else first,
                    local[inner + 1] if inner + 1 < n_inner else last,
                )
                for inner in range(n_inner)
            ]
            yield cur_pos, n_inner, schedules, keys
            prev, cur, cur_pos = cur, nxt, nxt_pos

    def __iter__(self) -> Iterator[tuple[Step, list[object]]]:
        index = 0
        every = (tuple(int(p) for p in raw) for raw in np.ndindex(*self.trips))
        for top, (positions, n_inner, schedules, keys) in enumerate(self._walk(every, None)):
            base = self.base(positions)
            for inner in range(n_inner):
                yield Step(index, top, positions, inner, n_inner, keys[inner], base), schedules
                index += 1

    def _middle(self, j: int) -> tuple[int, int]:
        """First and last position of top-level loop ``j`` whose tiles are plain
        translations of their neighbours' (neither first nor last nor near an edge)."""
        last, _phase, _delta, lo, hi = self._class_info[j]
        return max(1, lo), min(last - 1, hi)

    def _run_loop(self) -> int | None:
        """The outermost top-level loop whose middle positions can repeat a block: at
        least 3 middle positions (all but the two outer ones have middle neighbours on
        both sides), a translation linear in its position, and a block (every position
        of the loops inside it) of at most ``_BLOCK_LIMIT`` steps."""
        zero = tuple(0 for _ in self.trips)
        n_inner = self.nest.inner_steps(zero)[0] if self.trips else 1
        for j in range(len(self.trips)):
            inside = int(np.prod(self.trips[j + 1 :], dtype=np.int64)) * n_inner
            first, last = self._middle(j)
            if last - first >= 2 and self._phase[j] == 0 and inside <= _BLOCK_LIMIT:
                return j
        return None

    def _block(
        self, index: int, top: int, head: tuple[int, ...], tail_trips: tuple[int, ...]
    ) -> tuple[list[Step], list[list[object]], int]:
        """Every step of the top-level positions ``head + (any inner position)``."""
        steps: list[Step] = []
        schedules: list[list[object]] = []
        tops = [head + tuple(int(p) for p in raw) for raw in np.ndindex(*tail_trips)]
        before = self._neighbour(tops[0], -1)
        for positions, n_inner, sched, keys in self._walk(tops, before):
            base = self.base(positions)
            for inner in range(n_inner):
                steps.append(Step(index, top, positions, inner, n_inner, keys[inner], base))
                schedules.append(sched)
                index += 1
            top += 1
        return steps, schedules, index

    def single_steps(self) -> Iterator[Segment]:
        """Every step as a segment of its own (for runs that need each step's tiles)."""
        for step, schedules in self:
            yield Segment((step,), (schedules,), 1, 0, {})

    def segments(self) -> Iterator[Segment]:
        """Every step in execution order, grouped into segments (see :class:`Segment`):
        the middle positions of one top-level loop whose neighbours are middle positions
        too form one segment per position of the loops around it; everything else comes
        one top-level step at a time."""
        j = self._run_loop()
        if j is None:
            # Nothing repeats: chunks of whole top-level steps, one segment each.
            chunk: tuple[list[Step], list[list[object]]] = ([], [])
            for step, scheds in self:
                chunk[0].append(step)
                chunk[1].append(scheds)
                if len(chunk[0]) >= _CHUNK and step.inner + 1 == step.n_inner:
                    yield Segment(tuple(chunk[0]), tuple(chunk[1]), 1, 0, {})
                    chunk = ([], [])
            if chunk[0]:
                yield Segment(tuple(chunk[0]), tuple(chunk[1]), 1, 0, {})
            return
        trips = self.trips
        inside = trips[j + 1 :]
        per_position = int(np.prod(inside, dtype=np.int64))
        delta = {dim: step for dim, (step, _div) in self._shift[j].items()}
        index = top = 0
        for raw in np.ndindex(*trips[:j]):
            outer = tuple(int(p) for p in raw)
            m0, m1 = self._middle(j)
            plan = [(p, 1) for p in range(m0 + 1)] + [(m0 + 1, m1 - m0 - 1)]
            plan += [(p, 1) for p in range(m1, trips[j])]
            second: Segment | None = None
            for p, count in plan:
                if p <= m0 or p > m1:
                    steps, block_scheds, end = self._block(index, top, (*outer, p), inside)
                    seg = Segment(tuple(steps), tuple(block_scheds), count, j, delta)
                    if p == m0:
                        second = seg
                else:
                    # Middle positions past the first: its block moved on, the edge
                    # steps' neighbour keys replaced.
                    assert second is not None
                    seg = self._moved(second, p - m0, top - second.steps[0].top, count)
                    if p == m1:
                        seg = self._with_last_key(seg)
                    end = index + len(seg.steps)
                yield seg
                index += (end - index) * count
                top += per_position * count

    def _moved(self, seg: Segment, b: int, tops: int, count: int) -> Segment:
        """Repetition ``b`` of ``seg``'s block (``tops`` top-level steps later) as a new
        segment of ``count`` repetitions, its first step preceded by a middle step."""
        m = len(seg.steps)
        steps = []
        for j in range(m):
            s = seg.step_at(b, j)
            steps.append(
                Step(s.index, s.top + tops, s.positions, s.inner, s.n_inner, s.key, s.base)
            )
        first = steps[0]
        key = (*first.key[:3], seg.steps[-1].key[:3], first.key[4])
        steps[0] = Step(
            first.index, first.top, first.positions, first.inner, first.n_inner, key, first.base
        )
        return Segment(tuple(steps), seg.schedules, count, seg.loop, seg.delta)

    def _with_last_key(self, seg: Segment) -> Segment:
        """``seg`` with its last step's successor key recomputed."""
        steps = list(seg.steps)
        s = steps[-1]
        after = self._neighbour(s.positions, 1)
        nxt = None
        if after is not None:
            classes, n_inner, _ = self._top_step(after)
            nxt = (classes, 0, n_inner)
        key = (*s.key[:4], nxt)
        steps[-1] = Step(s.index, s.top, s.positions, s.inner, s.n_inner, key, s.base)
        return Segment(tuple(steps), seg.schedules, seg.count, seg.loop, seg.delta)
