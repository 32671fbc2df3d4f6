"""The fused-scenario loader: shapes through the chain, and every error at its text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metronome.spec.fused import is_fused_file, live_elems, load_fused
from metronome.spec.source import SpecError

BASE = """kind: fused
input: {C: 2, Y: 8, X: 8}
layers:
  - {name: c1, type: CONV, dims: {K: 3, R: 3, S: 3}, padding: {Y: 1, X: 1}}
  - {name: p1, type: POOL, pool: max, window: {Y: 2, X: 2}, stride: {Y: 2, X: 2}}
  - {name: c2, type: CONV, dims: {K: 2, R: 3, S: 3}}
groups:
  - name: g
    layers: [c1, p1, c2]
    tile: {P: 1, Q: 2}
    intermediates: {c1: retain, p1: recompute}
hardware: {num_pes: 4}
"""

SPLIT = BASE.replace(
    """  - name: g
    layers: [c1, p1, c2]
    tile: {P: 1, Q: 2}
    intermediates: {c1: retain, p1: recompute}
""",
    """  - {name: g2, layers: [c1, p1]}
  - {name: g3, layers: [c2]}
""",
)


def _load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "f.yaml"
    path.write_text(text)
    return load_fused(path)


def test_shapes_follow_the_chain(tmp_path: Path) -> None:
    """c1 keeps 8x8 (padding 1), the pool halves it to 4x4, c2 (no padding) gives 2x2."""
    scenario = _load(tmp_path, BASE)
    shapes = [layer.out_shape for layer in scenario.layers]  # type: ignore[attr-defined]
    assert shapes == [(3, 8, 8), (3, 4, 4), (2, 2, 2)]
    assert scenario.groups[0].choices == ("retain", "recompute", "spill")  # type: ignore[attr-defined]
    assert is_fused_file(tmp_path / "f.yaml")


@pytest.mark.parametrize(
    ("old", "new", "line", "token", "message"),
    [
        ("tile: {P: 1, Q: 2}", "tile: {P: 3, Q: 2}", 10, "3", "tile P 3 is larger"),
        ("tile: {P: 1, Q: 2}", "tile: {P: 1, K: 3}", 10, "3}", "tile K 3 is larger than the 2"),
        (
            "tile: {P: 1, Q: 2}",
            "tile: {P: 1, K: 1}\n    order: [P, K]",
            11,
            "[P, K",
            "must name P and Q once each and K once",
        ),
        (
            "tile: {P: 1, Q: 2}",
            "tile: {P: 1, Q: 2}\n    order: [K, P, Q]",
            11,
            "[K, P",
            "K only when the tile gives K",
        ),
        ("{K: 2, R: 3, S: 3}", "{K: 2, C: 4, R: 3, S: 3}", 6, "4", "previous tensor gives it 3"),
        ("{K: 2, R: 3, S: 3}", "{K: 2, R: 5, S: 5}", 6, "{name: c2", "does not fit"),
        ("p1: recompute", "p1: keep", 11, "keep", "'keep' is not a valid choice"),
        ("[c1, p1, c2]", "[c1, c2]", 9, "c2]", "does not follow"),
        ("{c1: retain, p1: recompute}", "{c2: retain}", 11, "c2", "not an intermediate"),
        (
            "{name: g2, layers: [c1, p1]",
            "{name: g2, layers: [c1, p1], tile: {K: 2}",
            8,
            "2}",
            "splits the channels of POOL",
        ),
    ],
)
def test_errors_point_at_the_text(
    tmp_path: Path, old: str, new: str, line: int, token: str, message: str
) -> None:
    """Each error names the problem and points at the offending YAML text."""
    text = (SPLIT if "g2" in old else BASE).replace(old, new)
    with pytest.raises(SpecError) as info:
        _load(tmp_path, text)
    span = info.value.first.span
    assert span is not None
    assert message in info.value.first.message
    assert (span.line, span.col) == (line, text.splitlines()[line - 1].index(token) + 1)


def test_retain_that_cannot_fit_the_buffer(tmp_path: Path) -> None:
    """c1 retained with 1x2 tiles of c2's 2x2 output: c2's row 0 reads pool rows 0..2,
    which read c1 rows [0,6); the buffer of 10 elements cannot hold them."""
    text = BASE.replace("hardware:", "    buffer_elems: 10\nhardware:")
    with pytest.raises(SpecError) as info:
        _load(tmp_path, text)
    assert "more than its buffer of 10" in info.value.first.message
    assert info.value.first.span is not None
    assert info.value.first.span.line == 11
    assert info.value.first.hint is not None


@st.composite
def _sets(draw: st.DrawFn) -> np.ndarray:
    """Per tile index, any set of rows (some empty, some with gaps) as mask rows."""
    count = draw(st.integers(1, 5))
    size = draw(st.integers(1, 8))
    flat = draw(st.lists(st.booleans(), min_size=count * size, max_size=count * size))
    return np.array(flat, dtype=bool).reshape(count, size)


@settings(max_examples=200, deadline=None)
@given(_sets(), _sets())
def test_live_elems_equals_element_lifetimes(outer: np.ndarray, inner: np.ndarray) -> None:
    """The inclusion-exclusion count equals a brute-force count for any row and column
    sets: an element is on chip during tile t when some tile at or before t and some
    tile at or after t need it."""
    tiles = [(a, b) for a in range(len(outer)) for b in range(len(inner))]

    def needs(a: int, b: int) -> set[tuple[int, int]]:
        return {
            (int(y), int(x)) for y in np.flatnonzero(outer[a]) for x in np.flatnonzero(inner[b])
        }

    sets = [needs(a, b) for a, b in tiles]
    live = live_elems(outer, inner)
    for t, (a, b) in enumerate(tiles):
        before = set().union(*sets[: t + 1])
        after = set().union(*sets[t:])
        assert live[a, b] == len(before & after)


def test_sub_problem_of_a_tile(tmp_path: Path) -> None:
    """A tile making 4x4 outputs of a 3x3, padding-1 convolution runs a 6x6 input
    window ((4-1)*1 + 3) of all 2 channels into 3 output channels: 4*4*3 * 2*9 = 864
    MACs, under the layer's own directives resolved against that sub-problem."""
    scenario = load_fused(Path("scenarios/fused/two_convs.yaml"))
    layer = scenario.layers[0]
    sub, mapping = layer.sub_problem(4, 4, scenario.hardware)
    assert (sub.size("Y"), sub.size("X"), sub.size("Y'"), sub.size("X'")) == (6, 6, 4, 4)
    assert sub.macs == 864
    assert (mapping.directives[0].spatial, mapping.directives[0].dim) == (True, "K")
