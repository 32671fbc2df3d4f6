"""L2 residency over a segment in batches (:meth:`L2Memory.segment`) equals accounting
it one step at a time (:meth:`L2Memory.step`), and a larger L2 holds a superset."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from metronome.sim import memory
from metronome.sim.memory import L2Memory
from metronome.sim.traffic import Footprint

_DIMS = (("X",), ("X",), ("X",))
_SIZE = 48


def _footprint(lo: int, mask: list[bool]) -> Footprint | None:
    if not any(mask):
        return None
    return Footprint((lo,), np.array(mask, dtype=bool))


@st.composite
def _streams(draw: st.DrawFn) -> tuple[list[tuple[Footprint | None, ...]], list[int], int, int]:
    """A block of steps (footprints of three 1-D tensors, bases), its move per
    repetition and repetition count."""
    m = draw(st.integers(1, 5))
    block = []
    for _ in range(m):
        fps = []
        for _t in range(3):
            lo = draw(st.integers(0, 6))
            mask = draw(st.lists(st.booleans(), min_size=1, max_size=5))
            fps.append(_footprint(lo, mask))
        block.append(tuple(fps))
    bases = [draw(st.integers(0, 8)) for _ in range(m)]
    return block, bases, draw(st.integers(0, 3)), draw(st.integers(1, 6))


def _by_steps(l2: L2Memory, block, bases, delta: int, count: int) -> list[tuple[int, int, int]]:
    out = []
    for b in range(count):
        for j, fps in enumerate(block):
            step = l2.step(b * len(block) + j, fps, {"X": bases[j] + b * delta}, _DIMS)
            out.append((step.misses + step.output_refetches, step.output_refetches, step.rmw_reads))
    return out


def _state(l2: L2Memory, steps: int) -> tuple[object, ...]:
    flushed = l2.finish(steps)
    return (
        flushed,
        l2.writes_at(0, steps).tolist(),
        [a.tolist() for a in l2.last_use],
        l2.written.tolist(),
        l2.offchip_reads,
        l2.offchip_writes,
        l2.evictions,
        l2.peak_occupancy,
        l2.occupancy,
    )


@settings(max_examples=300)
@given(_streams(), st.integers(1, 30), st.integers(1, 64))
def test_segment_equals_step_by_step(stream, capacity: int, batch: int) -> None:
    """Any block, capacity and batch length: per-step traffic and the final state agree."""
    block, bases, delta, count = stream
    shapes = ((_SIZE,), (_SIZE,), (_SIZE,))
    one = L2Memory(shapes, capacity)
    expected = _by_steps(one, block, bases, delta, count)
    seg = L2Memory(shapes, capacity)
    seg._batch_steps = batch
    got = seg.segment(0, list(block), [{"X": b} for b in bases], {"X": delta}, count, _DIMS)
    pairs = list(zip(got.reads().tolist(), got.refetches.tolist(), got.rmws.tolist(), strict=True))
    assert pairs == expected
    steps = len(block) * count
    assert _state(seg, steps) == _state(one, steps)
    # The held elements the batches kept listed are exactly the held ones, once each.
    if seg._held is not None:
        listed = np.sort(seg._held_stamps()[0])
        held = np.flatnonzero(np.concatenate([lu.ravel() for lu in seg.last_use]) >= 0)
        assert listed.tolist() == held.tolist()


@settings(max_examples=300)
@given(_streams(), st.integers(1, 30), st.integers(1, 64))
def test_segment_equals_step_by_step_with_the_oldest_listed(stream, capacity, batch) -> None:
    """As above with the victim search keeping the 1 x need oldest held elements listed for
    the next searches (:meth:`L2Memory._from_oldest`) whenever they are at most half the held
    ones, so that small L2s use them."""
    pool = memory._POOL
    memory._POOL = 1
    try:
        test_segment_equals_step_by_step.hypothesis.inner_test(stream, capacity, batch)
    finally:
        memory._POOL = pool


@settings(max_examples=200)
@given(st.lists(_streams(), min_size=2, max_size=4), st.integers(1, 30), st.integers(1, 64))
def test_consecutive_segments_in_one_pass_equal_step_by_step(streams, capacity, batch) -> None:
    """Consecutive segments (each its own block, bases, move and count) through L2 in one
    pass (:meth:`L2Memory.blocks`): the same per-step traffic and final state as stepping
    through all of them one step at a time."""
    shapes = ((_SIZE,), (_SIZE,), (_SIZE,))
    one = L2Memory(shapes, capacity)
    expected = []
    first = 0
    for block, bases, delta, count in streams:
        for b in range(count):
            for j, fps in enumerate(block):
                index = first + b * len(block) + j
                step = one.step(index, fps, {"X": bases[j] + b * delta}, _DIMS)
                expected.append(
                    (step.misses + step.output_refetches, step.output_refetches, step.rmw_reads)
                )
        first += len(block) * count
    joined = L2Memory(shapes, capacity)
    joined._batch_steps = batch
    got = joined.blocks(
        0,
        [
            (list(block), [{"X": b} for b in bases], {"X": delta}, count)
            for block, bases, delta, count in streams
        ],
        _DIMS,
    )
    pairs = list(zip(got.reads().tolist(), got.refetches.tolist(), got.rmws.tolist(), strict=True))
    assert pairs == expected
    assert (got.rmw, got.refetch) == (int(got.rmws.sum()), int(got.refetches.sum()))
    assert _state(joined, first) == _state(one, first)


@settings(max_examples=300)
@given(_streams(), st.integers(1, 30), st.integers(1, 8))
def test_a_larger_l2_holds_a_superset_after_every_step(stream, capacity: int, more: int) -> None:
    """LRU evicting exactly the excess keeps the ``capacity`` most recently used
    elements, so an L2 larger by any amount holds everything a smaller one holds after
    every step: no step misses, fetches back or writes back more."""
    block, bases, delta, count = stream
    shapes = ((_SIZE,), (_SIZE,), (_SIZE,))
    small, large = L2Memory(shapes, capacity), L2Memory(shapes, capacity + more)
    for b in range(count):
        for j, fps in enumerate(block):
            index = b * len(block) + j
            base = {"X": bases[j] + b * delta}
            a, z = small.step(index, fps, base, _DIMS), large.step(index, fps, base, _DIMS)
            assert z.misses <= a.misses
            assert z.output_refetches <= a.output_refetches
            for lu_small, lu_large in zip(small.last_use, large.last_use, strict=True):
                assert np.all(lu_large[lu_small >= 0] >= 0)
    steps = len(block) * count
    small.finish(steps)
    large.finish(steps)
    assert np.all(large.writes_at(0, steps + 1) <= small.writes_at(0, steps + 1))
