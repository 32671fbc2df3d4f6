"""Partial-sum flows of a record under L1 residency from the leaving outputs' keys
(:meth:`L1Residency.leaving_coords`, :func:`flows.disjoint_flows`) against
:func:`flows.refine` over the PEs' expanded boxes and masks: the same flows in the same
order and the same canvas, or no answer when PEs send the same output."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import metronome.sim.context as context_module
from metronome.sim import REALISTIC, SimOptions, simulate
from metronome.sim.flows import disjoint_flows, refine
from metronome.sim.l1 import L1Residency
from metronome.sim.l1_outcome import StepL1
from metronome.spec.hardware import Hardware
from metronome.spec.maestro import parse_mapping_text

Region = tuple[int, np.ndarray, np.ndarray, np.ndarray | None]


def _regions(pes: np.ndarray, coords: np.ndarray) -> list[Region]:
    """One region per PE: the tight box of its elements, masked to them (``None`` when
    they fill it), as :meth:`L1Residency.expand` gives them."""
    out: list[Region] = []
    for p in np.unique(pes).tolist():
        mine = coords[:, pes == p]
        lo, hi = mine.min(axis=1), mine.max(axis=1) + 1
        mask = np.zeros(tuple((hi - lo).tolist()), dtype=bool)
        mask[tuple(mine - lo[:, None])] = True
        out.append((p, lo, hi, None if mask.all() else mask))
    return out


@st.composite
def leaving_sets(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Up to 80 PEs (more than 64 regions: several bit words), each sending a few
    distinct elements of a small 1-3-D space; PEs ascending, as the L1s list them."""
    dims = draw(st.integers(1, 3))
    n = draw(st.integers(0, 80))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    spread = draw(st.sampled_from([2, 4, 40]))  # small: PEs share elements; large: rarely
    pes: list[int] = []
    cols: list[np.ndarray] = []
    for p in sorted(rng.choice(200, size=n, replace=False).tolist()):
        pts = np.unique(rng.integers(-3, spread, size=(int(rng.integers(1, 6)), dims)), axis=0)
        pes.extend([p] * len(pts))
        cols.append(pts.T)
    coords = np.concatenate(cols, axis=1) if cols else np.zeros((dims, 0), dtype=np.int64)
    return np.array(pes, dtype=np.int64), coords.astype(np.int64)


@settings(max_examples=300, deadline=None)
@given(leaving_sets())
def test_disjoint_flows_are_refines_when_no_element_is_shared(
    leaving: tuple[np.ndarray, np.ndarray],
) -> None:
    pes, coords = leaving
    got = disjoint_flows(pes, coords)
    flows, canvas = refine(_regions(pes, coords))
    shared = len({tuple(c) for c in coords.T.tolist()}) < pes.size
    if shared:
        assert got is None
        return
    assert got is not None
    assert got[0] == flows
    assert [type(n) for _, n in got[0]] == [int] * len(flows)
    if canvas is None:
        assert got[1] is None
    else:
        assert got[1] is not None
        assert np.array_equal(got[1][0], canvas[0])
        assert got[1][1].dtype == canvas[1].dtype
        assert got[1][1].shape == canvas[1].shape
        assert np.array_equal(got[1][1], canvas[1])


def test_leaving_coords_are_the_expanded_boxes_elements() -> None:
    # Three PEs over a 4 x 5 output: PE 1 is in PE 0's class, its outputs PE 0's moved
    # one row down (offset (1, 0)); PE 2 is its own class.
    l1 = L1Residency(
        ((3,), (3,), (4, 5)),
        3,
        64,
        "lru",
        psum_every_step=False,
        dims=(("A",), ("B",), ("Y", "X")),
        memo=True,
    )
    l1.space.rep_of = np.array([0, 0, 2], dtype=np.int64)
    l1.space.out_offset = np.array([[0, 1, 0], [0, 0, 0]], dtype=np.int64)
    out = l1.offsets[2]
    # PE 0 sends (0, 1) and (1, 3) (flat 1, 8); PE 2 sends (2, 0) (flat 10).
    keys = np.array([out + 1, out + 8, 2 * l1.total + out + 10], dtype=np.int64)
    base = np.zeros(2, dtype=np.int64)
    s = StepL1(
        ([None] * 3, [None] * 3),
        l1.outcomes.leaving_boxes(keys, base),
        np.zeros(3, dtype=np.int64),
        True,
        False,
        b"",
        keys,
    )
    pes, coords = l1.space.leaving_coords(keys)
    assert pes.tolist() == [0, 0, 1, 1, 2]
    assert coords.T.tolist() == [[0, 1], [1, 3], [1, 1], [2, 3], [2, 0]]
    for p, lo, hi, mask in (
        (p, *e) for p, e in enumerate(l1.space.expand(s).egress) if e is not None
    ):
        box = np.ones(tuple((hi - lo).tolist()), dtype=bool) if mask is None else mask
        want = sorted((np.argwhere(box) + lo).tolist())
        assert sorted(coords[:, pes == p].T.tolist()) == want


# ShiDianNao's output-stationary mapping (64 PEs: Y' over 8 clusters, X' over 8 PEs in
# each) scaled down: 2 x 4 PEs, whose L1s keep partial sums over C and evict earlier
# rows' (PE classes: the clipped last cluster and X' tile apart).
OS = """Network s { Layer L { Type: CONV
Dimensions { K: 2, C: 3, R: 3, S: 3, Y: 10, X: 14 }
Dataflow { TemporalMap(1,1) K; TemporalMap(1,1) C; SpatialMap(Sz(R),1) Y;
  TemporalMap(6,4) X; TemporalMap(Sz(R),Sz(R)) R; TemporalMap(Sz(S),Sz(S)) S;
  Cluster(4, P); SpatialMap(Sz(S),1) X; TemporalMap(Sz(S),Sz(S)) S; } } }"""
# Input-channel spatial: the PEs hold the same outputs (their boxes overlap).
REDUCED = """Network r { Layer L { Type: CONV
Dimensions { K: 2, C: 4, R: 3, S: 3, Y: 6, X: 8 }
Dataflow { TemporalMap(1,1) K; SpatialMap(1,1) C; TemporalMap(Sz(R),1) Y;
  TemporalMap(Sz(S),1) X; TemporalMap(Sz(R),Sz(R)) R; TemporalMap(Sz(S),Sz(S)) S; } } }"""


def _result(text: str, pes: int, l1: int) -> dict[str, object]:
    entry = parse_mapping_text(text).layers[0]
    assert entry.mapping is not None
    hw = Hardware(num_pes=pes, l1_size_elems=l1)
    return simulate(entry.layer, entry.mapping, hw, SimOptions(policy=REALISTIC)).layer.to_dict()


@pytest.mark.parametrize(("text", "pes", "l1"), [(OS, 8, 24), (OS, 8, 60), (REDUCED, 4, 40)])
def test_a_run_gives_the_results_of_refining_the_boxes(
    monkeypatch: pytest.MonkeyPatch, text: str, pes: int, l1: int
) -> None:
    answers: set[str] = set()

    def counted(pes: np.ndarray, coords: np.ndarray) -> object:
        got = disjoint_flows(pes, coords)
        if pes.size:
            answers.add("keys" if got is not None else "refined")
        return got

    monkeypatch.setattr(context_module, "disjoint_flows", counted)
    fast = _result(text, pes, l1)
    # Where PEs share outputs the boxes are refined; elsewhere the keys answer.
    assert answers >= ({"keys"} if text is OS else {"refined"})
    assert ("keys" in answers) == (text is OS)
    monkeypatch.setattr(context_module, "disjoint_flows", lambda *args: None)
    assert fast == _result(text, pes, l1)
