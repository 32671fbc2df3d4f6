"""The L1s' bulk repetitions (:meth:`metronome.sim.l1.L1Residency.bulk_calm`) against stepping
through every repetition one step at a time: on random periodic touch streams, a bulk
that applies must leave the same state and must have claimed the hits and leaving outputs
the steps really had."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from metronome.sim.l1 import L1Residency, _Keys, _refreshed

SIZES = (40, 40, 40)  # flat input, weight and output tensors


def _l1(capacity: int, eviction: str, psum: bool) -> L1Residency:
    return L1Residency(
        tuple((n,) for n in SIZES),
        2,
        capacity,
        eviction,
        psum_every_step=psum,
        dims=(("A",), ("B",), ("C",)),
        memo=False,
    )


def _keys(l1: L1Residency, sets: list[list[list[int]]]) -> _Keys:
    """Working keys of one step: ``sets[p][t]`` the flat indices PE ``p`` touches."""
    keys = [
        p * l1.total + l1.offsets[t] + i
        for p, per in enumerate(sets)
        for t, idx in enumerate(per)
        for i in sorted(set(idx))
    ]
    flat = np.array(sorted(keys), dtype=np.int64)
    tensor = l1._tensor(flat) if flat.size else flat
    return _Keys(flat, tensor, [], np.zeros(0, dtype=np.int64))


@st.composite
def _streams(draw):
    m = draw(st.integers(1, 4))
    shift = [draw(st.integers(0, 2)) for _ in range(3)]
    count = draw(st.integers(3, 6))
    span = [n - s * count for n, s in zip(SIZES, shift, strict=True)]

    def tiles(top: list[int] | tuple[int, ...], most: int) -> list[list[int]]:
        return [draw(st.lists(st.integers(0, top[t] - 1), max_size=most)) for t in range(3)]

    step = [[tiles(span, 5) for _pe in (0, 1)] for _ in range(m)]
    prefix = [[tiles(SIZES, 6) for _pe in (0, 1)] for _ in range(draw(st.integers(0, 4)))]
    return prefix, step, np.array(shift, dtype=np.int64), count


@settings(max_examples=300, deadline=None)
@given(
    _streams(),
    st.integers(1, 24),
    st.sampled_from(["lru", "optimal"]),
    st.booleans(),
)
def test_bulk_repetitions_equal_stepping(stream, capacity, eviction, psum) -> None:
    prefix, block, shift, count = stream
    m = len(block)

    def sets(k: int, j: int) -> list[list[list[int]]]:
        return [[[i + k * int(shift[t]) for i in per[t]] for t in range(3)] for per in block[j]]

    plan = [(None, s) for s in prefix] + [(k, sets(k, j)) for k in range(count) for j in range(m)]
    ref, fast = _l1(capacity, eviction, psum), _l1(capacity, eviction, psum)
    none = np.zeros(3, dtype=np.int64)
    for l1 in (ref, fast):
        touches = ((i, _keys(l1, s).keys, none, 1, 1) for i, (_, s) in enumerate(plan))
        l1.record_future(touches, len(plan))
    out = np.zeros(1, dtype=np.int64)
    ref.log = []
    for i, (_, s) in enumerate(plan):
        ref.step(i, _keys(ref, s), None, out)
    first = len(prefix)
    for i in range(first):
        fast.step(i, _keys(fast, plan[i][1]), None, out)
    fast.log = []
    for j in range(m):
        fast.step(first + j, _keys(fast, plan[first + j][1]), None, out)
    logged = fast.logged(fast.log, m)
    applied = 0
    if logged is not None:
        applied = fast.bulk_calm(logged, shift, m, first, 0, count - 2)
    for i in range(first + m * (1 + applied), len(plan)):
        fast.step(i, _keys(fast, plan[i][1]), None, out)
    assert np.array_equal(ref.keys, fast.keys)
    assert np.array_equal(ref.stamp, fast.stamp)
    assert np.array_equal(ref.next_use, fast.next_use)
    assert np.array_equal(ref.count, fast.count)
    if applied:
        _, _, hit, done, _ = logged
        for k in range(1, applied + 1):
            got = ref.log[first + k * m : first + (k + 1) * m]
            assert np.array_equal(np.concatenate([h for _, _, h, _, _ in got]), hit)
            assert np.array_equal(np.concatenate([d for _, _, _, d, _ in got]), done)


def _scan(pos: list[int], first: list[int], steps: list[int], evictions: list[int], need: int):
    """The refreshed elements one at a time, as the eviction walks the queue."""
    out, passed = [], 0
    for q, f in zip(pos, first, strict=True):
        rank = q - passed
        when = next((s for s, e in zip(steps, evictions, strict=True) if e >= rank + 1), None)
        out.append(rank >= need or (when is not None and f <= when))
        passed += out[-1] and rank < need
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(1, 4), min_size=1, max_size=12),
    st.lists(st.integers(0, 20), min_size=1, max_size=30),
    st.data(),
)
def test_refreshed_equals_a_scan(gaps, adds, data) -> None:
    evictions = np.cumsum(adds)
    need = int(evictions[-1])
    if need == 0:
        return
    steps = np.arange(10, 10 + 3 * len(adds), 3)
    pos = np.cumsum(gaps) - 1  # strictly increasing queue positions from 0 up
    first = np.array(data.draw(st.lists(st.integers(0, 120), min_size=pos.size, max_size=pos.size)))
    got = _refreshed(pos, first, steps, evictions, need)
    assert got.tolist() == _scan(
        pos.tolist(), first.tolist(), steps.tolist(), evictions.tolist(), need
    )
