"""``flows.refine`` (one bit set per element, one sort) against the partition refinement
it replaces (one ``np.unique`` per region): the same flows, in the same order, and the
same canvas, so simulation results stay byte-identical."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from metronome.sim.flows import Flow, refine

Region = tuple[int, np.ndarray, np.ndarray, np.ndarray | None]


def refine_by_splitting(
    regions: Sequence[Region],
) -> tuple[list[Flow], tuple[np.ndarray, np.ndarray] | None]:
    """The reference: each region splits the classes it touches (fresh ids per split)."""
    if not regions:
        return [], None
    corner = np.min([r[1] for r in regions], axis=0)
    top = np.max([r[2] for r in regions], axis=0)
    ids = np.zeros(tuple(int(v) for v in top - corner), dtype=np.int64)
    members: list[tuple[int, ...]] = [()]
    for member, lo, hi, mask in regions:
        box = tuple(slice(int(a), int(b)) for a, b in zip(lo - corner, hi - corner, strict=True))
        view = ids[box]
        sub = view if mask is None else view[mask]
        uniq, inverse = np.unique(sub, return_inverse=True)
        fresh = len(members) + inverse.reshape(sub.shape)
        members.extend(members[int(u)] + (member,) for u in uniq)
        if mask is None:
            view[...] = fresh
        else:
            view[mask] = fresh
    counts = np.bincount(ids.ravel(), minlength=len(members))
    flows = [(members[i], int(counts[i])) for i in np.flatnonzero(counts[1:]) + 1]
    return flows, (corner, ids > 0)


@st.composite
def region_lists(draw: st.DrawFn) -> list[Region]:
    """Up to 150 boxes (so more than 64 regions: several bit words) in a small 1-3-D
    space, some with a mask, members distinct and in any order."""
    dims = draw(st.integers(1, 3))
    count = draw(st.integers(0, 150))
    members = draw(st.permutations(range(count))) if draw(st.booleans()) else range(count)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    out: list[Region] = []
    for member in members:
        lo = rng.integers(-2, 5, size=dims)
        hi = lo + rng.integers(1, 4, size=dims)
        mask = rng.random(tuple(hi - lo)) < 0.6 if rng.random() < 0.4 else None
        out.append((int(member), lo, hi, mask))
    return out


@settings(max_examples=300, deadline=None)
@given(region_lists())
def test_refine_matches_refinement_by_splitting(regions: list[Region]) -> None:
    flows, canvas = refine(regions)
    want_flows, want_canvas = refine_by_splitting(regions)
    assert flows == want_flows
    assert [type(n) for _, n in flows] == [int] * len(flows)
    if want_canvas is None:
        assert canvas is None
    else:
        assert canvas is not None
        assert np.array_equal(canvas[0], want_canvas[0])
        assert canvas[1].dtype == want_canvas[1].dtype
        assert np.array_equal(canvas[1], want_canvas[1])


def test_refine_orders_classes_from_their_last_region() -> None:
    # Hand-derived, 1-D: region 7 covers [0, 4), region 3 covers [2, 6), region 5 covers
    # [3, 5). Elements 0-1 {7}, 2 {7, 3}, 3 {7, 3, 5}, 4 {3, 5}, 5 {3}. Read from the last
    # region backwards: {7} < {3} < {7, 3} < {5, 3} < {5, 3, 7}.
    box = lambda a, b: (np.array([a]), np.array([b]))  # noqa: E731
    regions: list[Region] = [(7, *box(0, 4), None), (3, *box(2, 6), None), (5, *box(3, 5), None)]
    flows, _ = refine(regions)
    assert flows == [((7,), 2), ((3,), 1), ((7, 3), 1), ((3, 5), 1), ((7, 3, 5), 1)]
