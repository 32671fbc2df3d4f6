"""The L1s' bulk repetitions (:func:`metronome.sim.l1_bulk.bulk_calm`) against stepping
through every repetition one step at a time: on random periodic touch streams, a bulk
that applies must leave the same state and must have claimed the hits and leaving outputs
the steps really had."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from metronome.sim import l1_bulk
from metronome.sim.l1 import L1Residency, LogBlock, flat_log, refreshed_before_eviction
from metronome.sim.l1_keys import WorkingKeys

SIZES = (40, 40, 40)  # flat input, weight and output tensors

Bulk = Callable[
    [L1Residency, tuple[np.ndarray, ...], np.ndarray, int, int, int],
    tuple[int, np.ndarray, np.ndarray] | None,
]


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


def _keys(l1: L1Residency, sets: list[list[list[int]]]) -> WorkingKeys:
    """Working keys of one step: ``sets[p][t]`` the flat indices PE ``p`` touches."""
    keys = [
        p * l1.total + l1.offsets[t] + i
        for p, per in enumerate(sets)
        for t, idx in enumerate(per)
        for i in sorted(set(idx))
    ]
    flat = np.array(sorted(keys), dtype=np.int64)
    tensor = l1.space.tensor(flat) if flat.size else flat
    return WorkingKeys(flat, tensor, [], np.zeros(0, dtype=np.int64))


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


def _check_bulk(
    stream, capacity: int, eviction: str, psum: bool, bulk: Bulk | None = None
) -> tuple[int, int, int]:
    """Step the whole stream on one L1 and, on another, step up to the first repetition,
    bulk the following ones (:func:`l1_bulk.bulk`: as many as agree; or ``bulk``,
    ``None`` when it applies none) and step the rest: the same state, and the bulk claimed
    the hits, the outputs leaving after their last touch and the outputs evicted (at their
    steps) that stepping had. Returns the repetitions bulked, the outputs they evicted and
    how many of those are not the logged repetition's translated."""
    prefix, block, shift, count, *rest = stream
    m = len(block)

    def sets(k: int, j: int) -> list[list[list[int]]]:
        return [[[i + k * int(shift[t]) for i in per[t]] for t in range(3)] for per in block[j]]

    plan = [(None, s) for s in prefix] + [(k, sets(k, j)) for k in range(count) for j in range(m)]
    plan += [(None, s) for s in (rest[0] if rest else [])]
    ref, fast = _l1(capacity, eviction, psum), _l1(capacity, eviction, psum)
    none = np.zeros(3, dtype=np.int64)
    for l1 in (ref, fast):
        touches = ((i, _keys(l1, s).keys, none, 1, 1) for i, (_, s) in enumerate(plan))
        l1.touches.record_future(touches, len(plan))
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
    ev_keys = ev_steps = np.zeros(0, dtype=np.int64)
    if logged is not None:
        if bulk is None:
            applied, ev_keys, ev_steps = l1_bulk.bulk(fast, logged, shift, m, first, count - 2)
        else:
            found = bulk(fast, logged, shift, m, first, count - 2)
            if found is not None:
                applied, ev_keys, ev_steps = found
    for i in range(first + m * (1 + applied), len(plan)):
        fast.step(i, _keys(fast, plan[i][1]), None, out)
    assert np.array_equal(ref.keys, fast.keys)
    assert np.array_equal(ref.stamp, fast.stamp)
    assert np.array_equal(ref.next_use, fast.next_use)
    assert np.array_equal(ref.count, fast.count)
    evicted = unlike = 0
    if applied:
        _, _, hit, done, *_ = logged
        for k in range(1, applied + 1):
            got = ref.log[first + k * m : first + (k + 1) * m]
            assert np.array_equal(np.concatenate([h for _, _, h, *_ in got]), hit)
            assert np.array_equal(np.concatenate([d for _, _, _, d, *_ in got]), done)
            # Outputs evicted: the ones the bulk reports, at the same steps.
            for j, entry in enumerate(got):
                step = first + k * m + j
                assert np.array_equal(entry[4], np.sort(ev_keys[ev_steps == step]))
                unlike += not np.array_equal(entry[4], fast.log[j][4] + k * int(shift[2]))
            evicted += sum(entry[4].size for entry in got)
    assert ev_keys.size == evicted
    if applied:
        _check_block(ref, fast, logged, shift, m, first, applied, (ev_keys, ev_steps), unlike)
    return applied, evicted, unlike


def _check_block(
    ref: L1Residency,
    fast: L1Residency,
    logged: tuple[np.ndarray, ...],
    shift: np.ndarray,
    m: int,
    first: int,
    applied: int,
    evicted: tuple[np.ndarray, np.ndarray],
    unlike: int,
) -> None:
    """The logged repetition's steps then one :class:`LogBlock` for the ``applied`` bulk
    ones flatten (:func:`flat_log`) to what the stepping L1 logged step by step: with the
    evicted outputs given, and (when they are the logged ones translated) without."""
    want = flat_log(ref.log[first : first + (applied + 1) * m], (applied + 1) * m)
    codes = np.sort((evicted[1] - first) * fast.space.span + evicted[0])
    blocks = [LogBlock(logged[:7], shift, m, applied, codes, fast.space.span)]
    if not unlike:
        blocks.append(LogBlock(logged[:7], shift, m, applied, None, fast.space.span))
    for block in blocks:
        got = flat_log([*fast.log[:m], block], (applied + 1) * m)
        assert (got is None) == (want is None)
        if want is not None and got is not None:
            for a, b in zip(got, want, strict=True):
                assert a.dtype == b.dtype
                assert np.array_equal(a, b)
    # A block missing a step, or one whose logged repetition a bulk cannot repeat, flattens
    # to nothing.
    assert flat_log([*fast.log[:m], blocks[0]], (applied + 1) * m + 1) is None
    bad = LogBlock(None, shift, m, applied, None, fast.space.span)
    assert flat_log([*fast.log[:m], bad], (applied + 1) * m) is None


@settings(max_examples=300, deadline=None)
@given(
    _streams(),
    st.integers(1, 24),
    st.sampled_from(["lru", "optimal"]),
    st.booleans(),
)
def test_bulk_repetitions_equal_stepping(stream, capacity, eviction, psum) -> None:
    _check_bulk(stream, capacity, eviction, psum)


@st.composite
def _output_streams(draw):
    """Periodic streams of small working sets touching outputs that a later repetition
    touches again (outputs move by one or two elements per repetition), after the steps of
    repetitions -2 and -1: under a small L1, LRU evicts
    partial sums while the repetitions run."""
    m = draw(st.integers(1, 3))
    s2 = draw(st.integers(1, 2))
    shift = np.array([draw(st.integers(0, 1)), 0, s2], dtype=np.int64)
    count = draw(st.integers(4, 8))
    outs = st.lists(st.integers(2 * s2, 2 * s2 + 8), min_size=1, max_size=3)
    ins = st.lists(st.integers(2, SIZES[0] - count - 1), max_size=1)
    step = [[[draw(ins), draw(ins), draw(outs)] for _pe in (0, 1)] for _ in range(m)]
    early = [
        [[[i - r * int(shift[t]) for i in per[t]] for t in range(3)] for per in s]
        for r in (2, 1)
        for s in step
    ]
    return early, step, shift, count


@settings(max_examples=300, deadline=None)
@given(_output_streams(), st.integers(2, 8))
def test_bulk_repetitions_that_evict_outputs_equal_stepping(stream, capacity) -> None:
    applied, evicted, unlike = _check_bulk(stream, capacity, "lru", False)
    kind = "unlike the logged ones" if unlike else "as logged" if evicted else "none"
    event(f"bulk evicting outputs: {kind if applied else 'no bulk'}")


@st.composite
def _unlike_streams(draw):
    """Repetitions of fresh inputs (each misses) after steps filling L1 with partial sums
    at random places and inputs (all touched again after the repetitions): LRU evicts
    those in their order, which is no translation of what the logged repetition evicted."""
    m = draw(st.integers(1, 3))
    count = draw(st.integers(3, 7))
    per = draw(st.integers(1, 2))
    shift = np.array([m * per, 0, draw(st.integers(0, 1))], dtype=np.int64)
    outs = st.lists(st.integers(20, SIZES[2] - 1), min_size=1, max_size=3)
    olds = st.lists(st.integers(30, SIZES[0] - 1), max_size=2)
    prefix = [
        [[draw(olds), [], draw(outs)] for _pe in (0, 1)] for _ in range(draw(st.integers(1, 6)))
    ]
    own = st.lists(st.integers(0, 3), max_size=1)
    step = [
        [[list(range(j * per, (j + 1) * per)), [], draw(own)] for _pe in (0, 1)] for j in range(m)
    ]
    late = [[[list(range(30, SIZES[0])), [], list(range(20, SIZES[2]))] for _pe in (0, 1)]]
    return prefix, step, shift, count, late


@settings(max_examples=300, deadline=None)
@given(_unlike_streams(), st.integers(2, 10))
def test_bulk_repetitions_evicting_outputs_unlike_the_logged_ones_equal_stepping(
    stream, capacity
) -> None:
    unlike = _check_bulk(stream, capacity, "lru", False)[2]
    event(f"bulk evicting outputs: {'unlike the logged ones' if unlike else 'other'}")


def test_bulk_repetitions_evict_outputs_as_stepping_does() -> None:
    """One PE, capacity 2; repetition ``k`` (0..7, after two steps as repetitions -2 and
    -1) touches outputs ``k+3`` and ``k+6``. Output ``k+6`` is touched again at ``k+3``
    while ``k+3 <= 7``, output ``k+3`` then for the last time (it leaves). Before
    repetition ``k <= 5`` L1 holds ``k+4`` and ``k+5``, so both touches miss; one leaves,
    and for ``k <= 4`` one more must go: ``k+4``, the least recently touched, evicted as a
    partial sum (repetition 0, the logged one, evicts output 4). At ``k = 5`` output 11
    leaves too and nothing is evicted. Bulk over repetitions 1..6: each chunk may evict
    only what L1 held at its start (``k+4`` and ``k+5``), so at most two repetitions per
    chunk; 1..4 agree with the log and evict outputs 5..8, repetition 5 does not (it
    sends output 11 home after its last touch, unlike the logged one). Hand-derived: 4
    repetitions, 4 outputs evicted, each the logged one translated."""
    idle: list[list[int]] = [[], [], []]
    prefix = [[[[], [], [1, 4]], idle], [[[], [], [2, 5]], idle]]
    block = [[[[], [], [3, 6]], idle]]
    stream = (prefix, block, np.array([0, 0, 1], dtype=np.int64), 8)
    assert _check_bulk(stream, 2, "lru", False) == (4, 4, 0)


def _scan(pos: list[int], first: list[int], steps: list[int], evictions: list[int], need: int):
    """The refreshed elements one at a time, as the eviction walks the queue."""
    out, passed = [], 0
    for q, f in zip(pos, first, strict=True):
        rank = q - passed
        when = next((s for s, e in zip(steps, evictions, strict=True) if e >= rank + 1), None)
        out.append(rank >= need or (when is not None and f <= when))
        passed += out[-1] and rank < need
    return out


_SEGMENT = st.tuples(
    st.lists(st.integers(1, 4), min_size=1, max_size=12),
    st.lists(st.integers(0, 20), min_size=1, max_size=30).filter(lambda adds: sum(adds) > 0),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_SEGMENT, min_size=1, max_size=4), st.data())
def test_refreshed_equals_a_scan(segments, data) -> None:
    """Several PEs' queues at once (as the bulk walks them) each equal their own scan."""
    pos, first, seg, steps, sched, need, want = [], [], [], [], [], [], []
    width = 2 + max(sum(adds) for _, adds in segments)
    for g, (gaps, adds) in enumerate(segments):
        evictions = np.cumsum(adds)
        at = np.arange(10, 10 + 3 * len(adds), 3)
        p = np.cumsum(gaps) - 1  # strictly increasing queue positions from 0 up
        f = data.draw(st.lists(st.integers(0, 120), min_size=p.size, max_size=p.size))
        pos += p.tolist()
        first += f
        seg += [g] * p.size
        steps += at.tolist()
        sched += (g * width + evictions).tolist()
        need.append(int(evictions[-1]))
        want += _scan(p.tolist(), f, at.tolist(), evictions.tolist(), need[-1])
    got = refreshed_before_eviction(
        *(np.array(v, dtype=np.int64) for v in (pos, first, seg, steps, sched)),
        width,
        np.array(need, dtype=np.int64),
    )
    assert got.tolist() == want


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(0, 2 * 120 - 1), min_size=1, max_size=8), min_size=1))
def test_step_groups_do_not_need_a_step_sorted_by_pe(steps) -> None:
    """Groups by (PE, step) are the same whether a step's touches come sorted (the runs
    path) or shuffled (the sorting path)."""
    l1 = _l1(10, "lru", False)
    keys = np.array([k for s in steps for k in sorted(s)], dtype=np.int64)
    index = np.array([i for i, s in enumerate(steps) for _ in s], dtype=np.int64)
    delta = np.arange(keys.size, dtype=np.int64) % 3 - 1
    shuffled = np.array([k for s in steps for k in sorted(s, reverse=True)], dtype=np.int64)
    flipped = np.array([d for i, s in enumerate(steps) for d in _own(delta, index, i)[::-1]])
    got = l1_bulk.step_groups(l1, keys, index, delta)
    again = l1_bulk.step_groups(l1, shuffled, index, flipped.astype(np.int64))
    for a, b in zip(got, again, strict=True):
        assert a.tolist() == b.tolist()


def _own(values: np.ndarray, index: np.ndarray, i: int) -> list[int]:
    return values[index == i].tolist()
