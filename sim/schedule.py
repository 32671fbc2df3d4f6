"""The stream of global steps, each with a *geometry key* and a translation.

Two steps with the same key see the same tiles up to a translation: every top-level loop
contributes its position class (first, middle or last; the exact position for filter
loops; the phase modulo the stride for strided sliding loops), which fixes the edge
clipping, which loop advanced and which will advance next. Everything a step record
holds is translation-invariant, so records are computed once per key; the translation
(``base``) places a record's footprints in absolute tensor coordinates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .loopnest import LoopNest

__all__ = ["Segment", "Step", "StepStream"]

_BLOCK_LIMIT = 1 << 16
"""Most steps in one block of a segment."""
_CHUNK = 4096
"""Steps per segment where nothing repeats."""

_OUTPUT_OF = {"Y": "Y'", "X": "X'"}
_INPUT_OF = {"Y'": "Y", "X'": "X"}


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
    ``b * delta``. Steps of a repetition have the keys (so the records) of the first."""

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
        for loop, dim in zip(nest.top.loops, self.loop_dims, strict=True):
            step = nest.top.offsets[loop.directive]
            if directives[loop.directive].spatial:
                step *= units
            shift: dict[str, tuple[int, int]] = {}
            phase = 0
            if dim in ("R", "S"):
                phase = -1
            elif dim in _OUTPUT_OF:
                stride = layer.stride(dim)
                shift[dim] = (step, 1)
                shift[_OUTPUT_OF[dim]] = (step, stride)
                phase = stride if stride > 1 else 0
            elif dim in _INPUT_OF:
                shift[dim] = (step, 1)
                shift[_INPUT_OF[dim]] = (step * layer.stride(_INPUT_OF[dim]), 0)
            else:
                shift[dim] = (step, 1)
            self._shift.append(shift)
            self._phase.append(phase)

    @property
    def top_steps(self) -> int:
        """Number of top-level steps."""
        return int(np.prod(self.trips, dtype=np.int64))

    def _classes(self, positions: tuple[int, ...]) -> tuple[object, ...]:
        out: list[object] = []
        for j, p in enumerate(positions):
            trips = self.trips[j]
            if self._phase[j] == -1:
                out.append(p)
                continue
            cls = 0 if p == 0 else (2 if p == trips - 1 else 1)
            if self._phase[j] > 1:
                delta = self._shift[j][self.loop_dims[j]][0]
                out.append((cls, (p * delta) % self._phase[j]))
            else:
                out.append(cls)
        return tuple(out)

    def base(self, positions: tuple[int, ...]) -> dict[str, int]:
        """Translation of this top-level step against its key's first occurrence."""
        base: dict[str, int] = {}
        for j, p in enumerate(positions):
            for dim, (step, div) in self._shift[j].items():
                value = p * step // div if div > 1 else p * step
                base[dim] = base.get(dim, 0) + value
        return base

    def __iter__(self) -> Iterator[tuple[Step, list[object]]]:
        index = 0
        for top, raw in enumerate(np.ndindex(*self.trips)):
            positions = tuple(int(p) for p in raw)
            classes = self._classes(positions)
            cached = self._inner.get(classes) if self.memo else None
            if cached is None:
                cached = self.nest.inner_steps(positions)
                if self.memo:
                    self._inner[classes] = cached
            n_inner, schedules = cached
            base = self.base(positions)
            for inner in range(n_inner):
                key = (classes, inner, n_inner)
                yield Step(index, top, positions, inner, n_inner, key, base), schedules
                index += 1

    def _run_loop(self) -> int | None:
        """The outermost top-level loop whose middle positions can repeat a block: at
        least 3 trips, a translation linear in its position, and a block (every position
        of the loops inside it) of at most ``_BLOCK_LIMIT`` steps."""
        zero = tuple(0 for _ in self.trips)
        n_inner = self.nest.inner_steps(zero)[0] if self.trips else 1
        for j, trips in enumerate(self.trips):
            inside = int(np.prod(self.trips[j + 1 :], dtype=np.int64)) * n_inner
            if trips >= 3 and self._phase[j] == 0 and inside <= _BLOCK_LIMIT:
                return j
        return None

    def _block(
        self, index: int, top: int, head: tuple[int, ...], tail_trips: tuple[int, ...]
    ) -> tuple[list[Step], list[list[object]], int]:
        """Every step of the top-level positions ``head + (any inner position)``."""
        steps: list[Step] = []
        schedules: list[list[object]] = []
        for raw in np.ndindex(*tail_trips):
            positions = head + tuple(int(p) for p in raw)
            classes = self._classes(positions)
            cached = self._inner.get(classes)
            if cached is None:
                cached = self._inner[classes] = self.nest.inner_steps(positions)
            n_inner, sched = cached
            base = self.base(positions)
            for inner in range(n_inner):
                key = (classes, inner, n_inner)
                steps.append(Step(index, top, positions, inner, n_inner, key, base))
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
        the middle positions of one top-level loop form one segment per position of the
        loops around it; everything else comes one top-level step at a time."""
        j = self._run_loop()
        if j is None:
            # Nothing repeats: chunks of whole top-level steps, one segment each.
            index = 0
            chunk: tuple[list[Step], list[list[object]]] = ([], [])
            for top, raw in enumerate(np.ndindex(*self.trips)):
                steps, scheds, index = self._block(index, top, tuple(int(p) for p in raw), ())
                chunk[0].extend(steps)
                chunk[1].extend(scheds)
                if len(chunk[0]) >= _CHUNK:
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
            for p, count in ((0, 1), (1, trips[j] - 2), (trips[j] - 1, 1)):
                steps, scheds, end = self._block(index, top, (*outer, p), inside)
                yield Segment(tuple(steps), tuple(scheds), count, j, delta)
                index += (end - index) * count
                top += per_position * count
