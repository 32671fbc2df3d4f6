"""The L1s' bulk repetitions over stale elements (:func:`metronome.sim.l1_steady.bulk_steady`)
against stepping through every repetition one step at a time: on random periodic touch
streams (sliding inputs, fixed weights, moving outputs) that run over an L1 holding stale
inputs and partial sums, a bulk that applies must leave the same state and must have
claimed the hits, the outputs leaving after their last touch and the outputs evicted (at
their steps) that stepping had."""

from __future__ import annotations

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from metronome.sim.l1_steady import bulk_steady

from .test_l1_bulk import _check_bulk, _keys, _l1, _streams

STALE = 30  # stale inputs and outputs live at 30..39; the repetitions stay below


def _steady(stream, capacity: int) -> tuple[int, int, int]:
    return _check_bulk(stream, capacity, "lru", False, bulk=bulk_steady)


@st.composite
def _stale_streams(draw):
    """Steps touching stale inputs and partial sums (the partial sums touched once more
    after the repetitions, so they stay unfinished), some of the repetitions before the
    logged one, then repetitions of ``m`` steps whose inputs slide by one or two, whose
    weights stay and whose outputs move by up to two elements (0: revisited)."""
    m = draw(st.integers(1, 3))
    count = draw(st.integers(3, 8))
    shift = np.array([draw(st.integers(1, 2)), 0, draw(st.integers(0, 2))], dtype=np.int64)
    window = st.tuples(st.integers(6, 8), st.integers(0, 3)).map(
        lambda a: list(range(a[0], sum(a)))
    )
    ins = st.one_of(window, st.lists(st.integers(6, 10), max_size=4))
    weights = st.lists(st.integers(0, 3), max_size=3)
    outs = st.lists(st.integers(6, 9), max_size=2)
    step = [[[draw(ins), draw(weights), draw(outs)] for _pe in (0, 1)] for _ in range(m)]
    stale = st.lists(st.integers(STALE, 39), max_size=4)
    near = st.lists(st.integers(0, 12), max_size=2)
    prefix = [
        [[draw(stale), draw(near), draw(stale)] for _pe in (0, 1)]
        for _ in range(draw(st.integers(0, 5)))
    ]
    early = [
        [[[i - r * int(shift[t]) for i in per[t]] for t in range(3)] for per in s]
        for r in range(draw(st.sampled_from([0, 1, 2, 2, 3])), 0, -1)
        for s in step
    ]
    late = [[[[], [], list(range(STALE, 40))] for _pe in (0, 1)]]
    return prefix + early, step, shift, count, late


@settings(max_examples=400, deadline=None)
@given(_stale_streams(), st.integers(1, 24))
def test_bulk_over_stale_elements_equals_stepping(stream, capacity) -> None:
    applied, evicted, unlike = _steady(stream, capacity)
    kind = "unlike the logged ones" if unlike else "as logged" if evicted else "none"
    event(f"steady bulk: {'applied' if applied else 'declined'}; outputs evicted: {kind}")


@settings(max_examples=300, deadline=None)
@given(_streams(), st.integers(1, 24))
def test_bulk_over_random_streams_equals_stepping(stream, capacity) -> None:
    """Random periodic streams (any translation, any reuse): where it applies, exact."""
    applied = _steady(stream, capacity)[0]
    event(f"steady bulk: {'applied' if applied else 'declined'}")


def test_stale_inputs_go_oldest_first_and_a_stale_partial_sum_leaves() -> None:
    """PE 0 (PE 1 idle), capacity 4. Step 0 touches stale input 30 and output 30 (a
    partial sum: touched again at the end), step 1 stale input 31 and weight 0. Repetition
    ``k`` (0..5, one step each, step ``2+k``) touches input ``4+k`` (a miss) and weight 0
    (a hit). Repetition 0 (the logged one) makes five elements, so the least recently
    touched goes: input 30 and output 30 both have stamp 0, the lower key (input 30) goes.
    After it L1 holds output 30 (0), input 31 (1), weight 0 and input 4 (2): young are
    weight 0 and input 4; input 4 is not touched by repetition 1 (the A queue). Each
    following repetition misses once and evicts the head of the old queue: output 30 (at
    step 3, a partial sum leaving), input 31, input 4 (aged after repetition 1, stamp 2),
    input 5 (its copy one repetition on, stamp 3). Hand-derived: a bulk of repetitions
    1..4 applies all 4, evicts output 30 (key 80 + 30 = 110) at step 3 and leaves inputs 6
    (stamp 4), 7 (5), 8 (6) and weight 0 (key 40, stamp 6); stepping agrees."""
    idle: list[list[int]] = [[], [], []]
    prefix = [[[[30], [], [30]], idle], [[[31], [0], []], idle]]
    block = [[[[4], [0], []], idle]]
    late = [[[[], [], [30]], idle]]
    shift = np.array([1, 0, 0], dtype=np.int64)
    stream = (prefix, block, shift, 6, late)
    assert _steady(stream, 4) == (4, 1, 1)
    l1 = _l1(4, "lru", False)
    plan = [*prefix, *([[[4 + k], [0], []], idle] for k in range(6)), *late]
    none = np.zeros(3, dtype=np.int64)
    l1.touches.record_future(
        ((i, _keys(l1, s).keys, none, 1, 1) for i, s in enumerate(plan)), len(plan)
    )
    out = np.zeros(1, dtype=np.int64)
    for i in range(2):
        l1.step(i, _keys(l1, plan[i]), None, out)
    l1.log = []
    l1.step(2, _keys(l1, plan[2]), None, out)
    logged = l1.logged(l1.log, 1)
    assert logged is not None
    found = bulk_steady(l1, logged, shift, 1, 2, 4)
    assert found is not None
    applied, keys, steps = found
    assert (applied, keys.tolist(), steps.tolist()) == (4, [110], [3])
    assert l1.keys.tolist() == [6, 7, 8, 40]
    assert l1.stamp.tolist() == [4, 5, 6, 6]
    assert l1.count.tolist() == [4, 0]


def test_no_bulk_when_eviction_would_reach_an_element_touched_later() -> None:
    """PE 0, capacity 2. Step 0 touches stale input 30, step 1 weight 0; repetition ``k``
    (steps ``2+3k`` ..) touches input ``6+k``, then weight 0, then input ``6+k`` again.
    Repetition 0 misses input 6 and evicts input 30 (the only old element); after it L1
    holds weight 0 (stamp 3) and input 6 (stamp 4), both young. Repetition 1's first step
    misses input 7 and must evict one: the least recently touched is weight 0, which its
    next step needs (a miss, where repetition 0 hit). The evictions (1) exceed the old
    elements (0), so no bulk (hand-derived); stepping confirms the miss."""
    idle: list[list[int]] = [[], [], []]
    prefix = [[[[30], [], []], idle], [[[], [0], []], idle]]
    block = [[[[6], [], []], idle], [[[], [0], []], idle], [[[6], [], []], idle]]
    stream = (prefix, block, np.array([1, 0, 0], dtype=np.int64), 4)
    assert _steady(stream, 2) == (0, 0, 0)


def test_no_bulk_when_a_hit_needs_an_old_element() -> None:
    """PE 0, capacity 10 (nothing is evicted). Repetition ``k`` (from -2) touches inputs
    ``6+k`` and ``8+k``: repetition 0 hits input 6 (touched at -2) and misses 8. Input 7,
    which repetition 1 hits, is held but old (touched at -1, not at 0): touching it
    refreshes an element of the old queue out of its order, which the bulk does not model,
    so no bulk (hand-derived); stepping agrees with that and with the state."""
    idle: list[list[int]] = [[], [], []]
    early = [[[[4, 6], [], []], idle], [[[5, 7], [], []], idle]]
    block = [[[[6, 8], [], []], idle]]
    stream = (early, block, np.array([1, 0, 0], dtype=np.int64), 4)
    assert _steady(stream, 10) == (0, 0, 0)
