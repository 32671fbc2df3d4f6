"""The L1s' next-touch questions asked in bulk, against asking them one at a time: the
repetition check (:meth:`metronome.sim.l1.L1Residency.future_repeats`) against its
definition, one next-touch search per repetition, and a repetition's queried keys
(:meth:`metronome.sim.context.RunContext.future_touches`) against each step's own."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from metronome.sim import REALISTIC, SimOptions
from metronome.sim.context import RunContext
from metronome.sim.l1 import L1Residency, _oldest_in
from metronome.sim.l1_touches import NEVER
from metronome.spec.hardware import Hardware
from metronome.spec.maestro import parse_mapping_text

from .test_functional_and_paths import _problems
from .test_l1_residency import MONO, PSUM, SWEEP

SIZES = (12, 12, 12)  # flat input, weight and output tensors


def _l1(eviction: str) -> L1Residency:
    return L1Residency(
        tuple((n,) for n in SIZES),
        2,
        8,
        eviction,
        psum_every_step=False,
        dims=(("A",), ("B",), ("C",)),
        memo=False,
    )


def _by_definition(
    l1: L1Residency,
    keys: np.ndarray,
    index: np.ndarray,
    shift: np.ndarray,
    m: int,
    times: int,
    first: int = 1,
) -> bool:
    """Each repetition ``first``..``times``'s translated keys searched on their own: their
    next touches are the first ones translated (under ``lru``: come or not alike)."""
    own = shift[l1.space.tensor(keys)]
    base = l1.touches.next_many(keys, index)
    for k in range(first, times + 1):
        found = l1.touches.next_many(keys + k * own, index + k * m)
        if l1.eviction == "lru":
            if not np.array_equal(found == NEVER, base == NEVER):
                return False
        elif not np.array_equal(found, np.where(base == NEVER, NEVER, base + k * m)):
            return False
    return True


@st.composite
def _touches(draw):
    """Recorded touches (a periodic part, so repetitions often agree, then noise) and the
    keys a repetition asks about, with their steps."""
    span = 2 * sum(SIZES)
    m = draw(st.integers(1, 3))
    shift = np.array([draw(st.integers(0, 2)) for _ in range(3)], dtype=np.int64)
    period = draw(st.lists(st.integers(0, span // 2 - 1), min_size=1, max_size=6))
    count = draw(st.integers(2, 6))
    blocks = []
    for k in range(count):
        for j, key in enumerate(period):
            tensor = int(np.searchsorted([SIZES[0], SIZES[0] + SIZES[1]], key % 36, "right"))
            moved = key + k * int(shift[tensor])
            if moved < span:
                blocks.append((k * m + j % m, moved))
    noise = draw(st.lists(st.tuples(st.integers(0, count * m), st.integers(0, span - 1))))
    asked = draw(st.lists(st.tuples(st.integers(0, m - 1), st.sampled_from(period)), max_size=8))
    return blocks + noise, asked, shift, m, draw(st.integers(1, count))


@settings(max_examples=400, deadline=None)
@given(_touches(), st.sampled_from(["lru", "optimal"]))
def test_repetition_check_equals_one_search_per_repetition(touches, eviction) -> None:
    recorded, asked, shift, m, times = touches
    l1 = _l1(eviction)
    steps = max(i for i, _ in recorded) + 1 + (times + 1) * m
    none = np.zeros(3, dtype=np.int64)
    l1.touches.record_future(
        ((i, np.array([key], dtype=np.int64), none, 1, 1) for i, key in recorded), steps
    )
    keys = np.array([key for _, key in asked], dtype=np.int64)
    index = np.array([i for i, _ in asked], dtype=np.int64)
    want = _by_definition(l1, keys, index, shift, m, times)
    event(f"repeats: {want}")
    assert l1.touches.future_repeats(keys, index, shift, m, times) == want
    # Only the last repetition asked (the others checked before).
    last = _by_definition(l1, keys, index, shift, m, times, times)
    event(f"last repeats: {last}, all: {want}")
    assert l1.touches.future_repeats(keys, index, shift, m, times, times) == last


@pytest.mark.parametrize("eviction", ["lru", "optimal"])
def test_repetition_check_from_a_later_repetition_skips_the_earlier_ones(eviction) -> None:
    # Output 24 moves by 1 a repetition of one step: asked at step 0, repetition k asks
    # about output 24 + k after step k. 24 is next touched at step 5, 25 never, 26 at
    # step 7 = 5 + 2: repetition 1 does not repeat the first, repetition 2 does.
    l1 = _l1(eviction)
    none = np.zeros(3, dtype=np.int64)
    touches = [(5, 24), (7, 26)]
    l1.touches.record_future(
        ((i, np.array([k], dtype=np.int64), none, 1, 1) for i, k in touches), 20
    )
    keys, index = np.array([24], dtype=np.int64), np.array([0], dtype=np.int64)
    shift = np.array([0, 0, 1], dtype=np.int64)
    assert not l1.touches.future_repeats(keys, index, shift, 1, 2)
    assert l1.touches.future_repeats(keys, index, shift, 1, 2, 2)


def _same_touches(layer, mapping, hw, eviction: str) -> None:
    """Every segment's repetitions ask about the keys their steps would, one by one."""
    run = RunContext(layer, mapping, hw, SimOptions(policy=REALISTIC, l1_eviction=eviction))
    assert run.segments is not None
    for seg in run.segments:
        for b in sorted({0, 1, seg.count - 1}):
            keys, index = run.future_touches(seg, b)
            pairs = [
                (int(k), s.index)
                for j in range(len(seg.steps))
                for s in [seg.step_at(b, j)]
                for k in run.future_keys((s, seg.schedules[j])).tolist()
            ]
            assert sorted(zip(keys.tolist(), index.tolist(), strict=True)) == sorted(pairs)


@pytest.mark.parametrize("eviction", ["lru", "optimal"])
@pytest.mark.parametrize("text", [MONO, SWEEP, PSUM])
def test_repetition_touches_equal_each_steps_own(text: str, eviction: str) -> None:
    entry = parse_mapping_text(text).layers[0]
    _same_touches(entry.layer, entry.mapping, Hardware(num_pes=16, l1_size_elems=100), eviction)


@settings(max_examples=30, deadline=None)
@given(_problems(), st.integers(3, 30), st.sampled_from(["lru", "optimal"]))
def test_repetition_touches_equal_each_steps_own_on_random_layers(problem, l1, eviction) -> None:
    layer, mapping, hw, _policy = problem
    _same_touches(layer, mapping, hw.with_changes(l1_size_elems=l1), eviction)


@st.composite
def _ranges(draw):
    """A state's last touches, ranges of it (back to back or with gaps), each range's
    count to evict and the positions leaving anyway."""
    size = draw(st.integers(1, 40))
    stamp = np.array(draw(st.lists(st.integers(0, 9), min_size=size, max_size=size)))
    cuts = sorted(set(draw(st.lists(st.integers(0, size), max_size=8))) | {0, size})
    ranges = [(a, b) for a, b in itertools.pairwise(cuts) if b > a]
    ranges = [r for r in ranges if draw(st.booleans())] or ranges[:1]
    k = [draw(st.integers(0, 12)) for _ in ranges]
    skip = np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)))
    return stamp, ranges, k, skip if draw(st.booleans()) else None


@settings(max_examples=400, deadline=None)
@given(_ranges())
def test_oldest_in_ranges_equals_sorting_each(case) -> None:
    # Each range's k least (last touch, position) not skipped, by range then that order.
    stamp, ranges, k, skip = case
    want = []
    for (a, b), n in zip(ranges, k, strict=True):
        mine = [i for i in range(a, b) if skip is None or not skip[i]]
        want += sorted(mine, key=lambda i: (stamp[i], i))[:n]
    lo = np.array([a for a, _ in ranges], dtype=np.int64)
    hi = np.array([b for _, b in ranges], dtype=np.int64)
    event("back to back" if np.array_equal(lo[1:], hi[:-1]) else "gaps")
    got = _oldest_in(stamp.astype(np.int64), lo, hi, np.array(k, dtype=np.int64), skip)
    assert got.tolist() == want
