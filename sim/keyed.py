"""Segments whose repetitions differ only in their end steps' geometry keys.

A loop's first and last middle positions are segments of their own: their first (last)
step's key names a neighbour of another class (the loop's first or last position) than
the other middle positions' do. Their own classes, inner index and tiles are the others'
translated, so the L1s see the same touches translated, and a bulk repetition covers
them like any other; only the records, memoised on the key, must be looked up under each
step's own key. :class:`KeyedSegment` joins such positions with the middle ones: each
repetition reports its own keys, and the fast path rebuilds (replays) the records of the
end steps whose key differs from the logged repetition's (:func:`end_steps`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .l1 import L1Residency, LogBlock, LogEntry
from .schedule import Segment, Step

__all__ = [
    "KeyedSegment",
    "end_steps",
    "evicted_outputs",
    "joined",
    "keyed",
    "moved_base",
    "reach",
    "widened",
]

Ends = tuple[tuple[object, ...], tuple[object, ...]]
"""The geometry keys of a repetition's first and last step."""


@dataclass(frozen=True, slots=True)
class KeyedSegment(Segment):
    """A segment whose first repetition is ``steps``, its repetitions ``1 .. count - 2``
    those steps moved with the first and last step's keys ``middle``, and its last one
    with ``last`` (every other step keeps its key; ``None``: the first repetition's)."""

    middle: Ends | None = None
    last: Ends | None = None

    def step_at(self, b: int, j: int) -> Step:
        """Step ``j`` of repetition ``b``, with its own key."""
        s = Segment.step_at(self, b, j)
        if b == 0 or 0 < j < len(self.steps) - 1:
            return s
        ends = self.last if b == self.count - 1 else self.middle
        if ends is None:
            return s
        key = ends[0] if j == 0 else ends[1]
        return Step(s.index, s.top, s.positions, s.inner, s.n_inner, key, s.base)

    def ends(self, b: int) -> Ends:
        """The keys of repetition ``b``'s first and last step (:meth:`step_at`'s, without
        building the steps)."""
        own = None
        if b > 0:
            own = self.last if b == self.count - 1 else self.middle
        if own is None:
            return (self.steps[0].key, self.steps[-1].key)
        return (own[0], own[0] if len(self.steps) == 1 else own[1])


def moved_base(base: dict[str, int], delta: dict[str, int], times: int) -> dict[str, int]:
    """``base`` moved by ``times`` x ``delta`` (a dimension only ``delta`` names starts
    at 0)."""
    out = dict(base)
    for d, v in delta.items():
        out[d] = out.get(d, 0) + times * v
    return out


def _follows(a: Step, b: Step, loop: int, reps: int, m: int, delta: dict[str, int]) -> bool:
    """Whether ``b`` is ``a`` ``reps`` repetitions (of ``m`` steps moving ``loop`` by one
    position and the base by ``delta``) later, with the same classes and inner index."""
    moved = (*a.positions[:loop], a.positions[loop] + reps, *a.positions[loop + 1 :])
    if b.positions != moved or b.index != a.index + reps * m or b.key[:3] != a.key[:3]:
        return False
    # Mostly both bases name the same dimensions: one dict comparison.
    if moved_base(a.base, delta, reps) == b.base:
        return True
    dims = set(a.base) | set(b.base) | set(delta)
    return all(b.base.get(d, 0) == a.base.get(d, 0) + reps * delta.get(d, 0) for d in dims)


def _alike(a: Segment, b: Segment, reps: int, loop: int, delta: dict[str, int]) -> bool:
    """Whether ``b``'s block is ``a``'s ``reps`` repetitions later (same schedules, the
    keys of every step but the first and last the same)."""
    m = len(a.steps)
    if len(b.steps) != m or not m:
        return False
    for j, (s, t) in enumerate(zip(a.steps, b.steps, strict=True)):
        if not _follows(s, t, loop, reps, m, delta):
            return False
        if 0 < j < m - 1 and s.key != t.key:
            return False
        sa, sb = a.schedules[j], b.schedules[j]
        if not (sa is sb or sa == sb):
            return False
    return True


def joined(segments: Iterator[Segment]) -> Iterator[Segment]:
    """``segments`` with each run of a single repetition, a repeated segment and a single
    repetition that are one segment's repetitions (the loop's first and last middle
    positions around the others) joined into one :class:`KeyedSegment`."""
    window: list[Segment] = []
    for seg in segments:
        window.append(seg)
        if len(window) < 3:
            continue
        a, mid, c = window
        if (
            a.count == 1
            and c.count == 1
            and mid.count > 1
            and not isinstance(mid, KeyedSegment)
            and _alike(a, mid, 1, mid.loop, mid.delta)
            and _alike(mid, c, mid.count, mid.loop, mid.delta)
        ):
            inner = (mid.steps[0].key, mid.steps[-1].key)
            last = (c.steps[0].key, c.steps[-1].key)
            yield keyed(a.steps, a.schedules, mid.count + 2, mid.loop, mid.delta, inner, last)
            window = []
        else:
            yield window.pop(0)
    yield from window


def widened(
    steps: list[Step],
    scheds: list[list[object]],
    groups: list[tuple[int, int]],
    loop: int,
    span: tuple[int, int],
    delta: dict[str, int],
) -> tuple[int, int]:
    """The range of ``groups`` (positions of ``loop``) that repeat, ``span``, widened by
    one group on each side where that group is the repeating ones' neighbour moved and
    differs from them only in its end steps' keys (:class:`KeyedSegment`)."""
    a, z = span
    if a < 2 or z > len(groups) - 2 or z - a < 1:
        return span

    def block(g: int) -> Segment:
        lo, hi = groups[g]
        return Segment(tuple(steps[lo:hi]), tuple(scheds[lo:hi]), 1, loop, {})

    if _alike(block(a - 1), block(a), 1, loop, delta) and _alike(
        block(z - 1), block(z), 1, loop, delta
    ):
        return a - 1, z + 1
    return span


def keyed(
    steps: tuple[Step, ...],
    scheds: tuple[list[object], ...],
    count: int,
    loop: int,
    delta: dict[str, int],
    inner: Ends,
    last: Ends,
) -> Segment:
    """A segment of ``count`` repetitions of ``steps``: a :class:`KeyedSegment` when a
    later repetition's end keys (``inner``, ``last``) differ from the first's."""
    first = (steps[0].key, steps[-1].key)
    if first == inner == last:
        return Segment(steps, scheds, count, loop, delta)
    middle = None if inner == first else inner
    return KeyedSegment(steps, scheds, count, loop, delta, middle, None if last == first else last)


def end_steps(
    log: list[LogEntry | LogBlock], shift: np.ndarray
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """What a logged repetition's first and last step (``0`` and ``-1``: always stepped
    one at a time, so :data:`LogEntry` items) did: their hits, the outputs they sent home
    (sorted) and the output translation per repetition (``shift[2]``)."""
    out: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for j in (0, -1):
        entry = log[j]
        assert not isinstance(entry, LogBlock)
        touched, _, hit, done, vout, _ = entry
        out[j] = (hit, np.sort(np.concatenate([touched[done], vout])), shift[2])
    return out


def reach(l1: L1Residency, keys: np.ndarray, move: np.ndarray) -> np.ndarray:
    """Per output key (``pe * total + offset + flat index``), for how many repetitions
    moving the output coordinates by ``move`` each it stays inside the output tensor:
    that far its key translated by the repetitions' flat shift is the element moved, and
    a record that sends it home moves with the step (past it the flat key names
    another element, e.g. the next row's first, and the records differ)."""
    if not keys.size:
        return np.zeros(0, dtype=np.int64)
    shape = np.array(l1.space.shapes[2], dtype=np.int64)
    coords = np.array(np.unravel_index(keys % l1.total - l1.offsets[2], l1.space.shapes[2]))
    room = np.full(coords.shape, np.iinfo(np.int64).max, dtype=np.int64)
    up, down = move > 0, move < 0
    room[up] = (shape[up, None] - 1 - coords[up]) // move[up, None]
    room[down] = coords[down] // -move[down, None]
    return np.asarray(room.min(axis=0), dtype=np.int64)


def evicted_outputs(log: list[LogEntry | LogBlock]) -> np.ndarray | None:
    """The output keys a logged repetition evicted (``None``: a block does not say)."""
    parts: list[np.ndarray] = []
    for e in log:
        if not isinstance(e, LogBlock):
            parts.append(e[4])
        elif e.evicted is not None:
            parts.append(e.evicted % e.span)
        elif e.flat is not None:
            parts.append(e.arrays()[5])
        else:
            return None
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
