"""The array helpers of the L1's flat logs and next-touch table against their numpy
definitions: the key order of a repetition's touches (``_stable_order``, a stable argsort,
also where the sorted codes would overflow), each key's last touch (``l1_touches.last_touches``) and
the next-touch table's search (``sorted_search``)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from metronome.sim.l1 import _stable_order
from metronome.sim.l1_touches import SORTED_SEARCH_MIN, sorted_search
from metronome.sim.l1_touches import last_touches as _last_touches

# Small key ranges give equal keys (what stability is about); 2**61 makes key * n overflow
# int64 for n >= 4, so the argsort fallback runs.
KEYS = st.sampled_from([3, 1000, 2**61]).flatmap(
    lambda hi: st.lists(st.integers(-hi, hi), max_size=60)
)


@settings(max_examples=200, deadline=None)
@given(KEYS)
def test_stable_order_equals_stable_argsort(keys: list[int]) -> None:
    a = np.array(keys, dtype=np.int64)
    assert np.array_equal(_stable_order(a), np.argsort(a, kind="stable"))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 6)), max_size=60))
def test_last_touches_keeps_each_keys_last_step(touches: list[tuple[int, int]]) -> None:
    span = 7  # steps 0 .. 6
    codes = np.array([k * span + s for k, s in touches], dtype=np.int64)
    last: dict[int, int] = {}
    for k, s in touches:
        last[k] = max(last.get(k, s), s)
    want = np.array(sorted(k * span + s for k, s in last.items()), dtype=np.int64)
    assert np.array_equal(_last_touches(codes, span), want)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 3, 50]), st.booleans())
def test_sorted_search_equals_searchsorted(seed: int, rows: int, shuffled: bool) -> None:
    # Queries as the bulk checks ask them: sorted rows overlapping one another (or
    # shuffled), enough of them for the sorting path; a table with repeated values.
    rng = np.random.default_rng(seed)
    table = np.sort(rng.integers(0, 5000, 3000))
    width = -(-SORTED_SEARCH_MIN // rows) + 1
    codes = np.sort(rng.integers(-10, 5010, (rows, width)), axis=1).ravel()
    if shuffled:
        rng.shuffle(codes)
    assert np.array_equal(sorted_search(table, codes), np.searchsorted(table, codes, side="right"))
