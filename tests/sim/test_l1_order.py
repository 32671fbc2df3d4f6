"""The array helpers of the L1's flat logs and next-touch table against their numpy
definitions: the key order of a repetition's touches (``_stable_order``, a stable argsort,
also where the sorted codes would overflow) and each key's last touch (``_last_touches``)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from metronome.sim.l1 import _last_touches, _stable_order

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
