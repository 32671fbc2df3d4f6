"""The memos of a replayed step's signature against computing afresh: the leaving outputs'
(:meth:`~metronome.sim.l1_outcome.StepOutcomes._leaving_head` against ``_leaving``), keyed on
translated by the output base, which different bases can share while meaning different
boxes; and whether the next step fits beside it (``_fit_of`` against ``_fit``), keyed on
the steps' geometry keys and the difference of their translations."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from metronome.sim.l1 import L1Residency
from metronome.sim.l1_keys import WorkingKeys

OUT = (4, 5)  # output tensor shape: flat strides (5, 1)


def _l1(capacity: int = 64) -> L1Residency:
    return L1Residency(
        ((3,), (3,), OUT),
        3,
        capacity,
        "lru",
        psum_every_step=False,
        dims=(("A",), ("B",), ("Y", "X")),
        memo=True,
    )


def _out_keys(l1: L1Residency, per_pe: list[list[tuple[int, int]]]) -> np.ndarray:
    """Sorted keys of the outputs at coordinates ``per_pe[p]`` of each PE ``p``."""
    keys = {
        p * l1.total + l1.offsets[2] + y * OUT[1] + x
        for p, coords in enumerate(per_pe)
        for y, x in coords
    }
    return np.array(sorted(keys), dtype=np.int64)


def test_a_shared_translated_key_under_a_carrying_base_is_recomputed() -> None:
    # Bases (0, 5) and (1, 0) both move keys by 5 flat elements (5*0 + 5 = 5*1 + 0), so
    # the same keys give the same memo key; relative to the bases their box starts at
    # (1, -5) and (0, 0): the second must not reuse the first's signature.
    l1 = _l1()
    keys = _out_keys(l1, [[(1, 0), (1, 1)], [], [(2, 3)]])
    for base in ((0, 5), (1, 0), (0, 5)):
        out_base = np.array(base, dtype=np.int64)
        assert l1.outcomes._leaving_head(keys, out_base) == l1.outcomes._leaving(keys, out_base)[-1]


def test_translated_outputs_reuse_the_signature() -> None:
    # The same outputs moved by one row under a base moved by one row: one signature.
    l1 = _l1()
    first = _out_keys(l1, [[(0, 1), (1, 2)], [(0, 0)], []])
    moved = _out_keys(l1, [[(1, 1), (2, 2)], [(1, 0)], []])
    head = l1.outcomes._leaving_head(first, np.array((0, 0), dtype=np.int64))
    assert l1.outcomes._leaving_head(moved, np.array((1, 0), dtype=np.int64)) == head
    assert len(l1.outcomes._heads) == 1


_coords = st.lists(st.tuples(st.integers(0, OUT[0] - 1), st.integers(0, OUT[1] - 1)), max_size=4)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(_coords, min_size=3, max_size=3),
            st.tuples(st.integers(-2, 5), st.integers(-2, 6)),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_memoised_signatures_equal_fresh_ones(calls) -> None:
    l1 = _l1()
    for per_pe, base in calls:
        keys = _out_keys(l1, per_pe)
        if not keys.size:
            continue
        out_base = np.array(base, dtype=np.int64)
        assert l1.outcomes._leaving_head(keys, out_base) == l1.outcomes._leaving(keys, out_base)[-1]


def _translated(
    l1: L1Residency, key: object, flat: list[int], by: tuple[int, int, int]
) -> WorkingKeys:
    """Keys ``flat`` (PE 0, before translation) of geometry ``key``, translated by ``by``."""
    keys = WorkingKeys(
        np.array(flat, dtype=np.int64), l1.space.tensor(np.array(flat)), [], np.zeros(0)
    )
    keys.origin = (key, np.zeros(3, dtype=np.int64))
    return keys.shifted(np.array(by, dtype=np.int64))


def test_fits_are_memoised_on_the_difference_of_the_translations() -> None:
    # Capacity 4; each step touches inputs 0, 1 and two outputs (4 keys). The next step's
    # outputs moved by as many as the step's: the same 4 keys, they fit; moved 2 further:
    # 6 keys together, they do not; both moved by 1 more: the same as the first case.
    l1 = _l1(capacity=4)
    out = l1.offsets[2]
    flat = [0, 1, out, out + 1]
    for step_by, next_by, fits in (
        ((0, 0, 0), (0, 0, 0), True),
        ((0, 0, 0), (0, 0, 2), False),
        ((0, 0, 1), (0, 0, 1), True),
        ((0, 0, 1), (0, 0, 3), False),
    ):
        wk = _translated(l1, "g", flat, step_by)
        nk = _translated(l1, "g", flat, next_by)
        sizes = np.bincount(wk.keys // l1.total, minlength=l1.n_pes)
        assert (
            l1.outcomes._fit_of(wk, nk, sizes) == l1.outcomes._fit(wk, nk, sizes) == (fits, False)
        )
    assert len(l1.outcomes._fits) == 2
