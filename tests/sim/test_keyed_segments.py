"""Segments joined across a loop's first and last middle positions
(:mod:`metronome.sim.keyed`): each repetition keeps its own geometry keys, the records of
the steps whose keys differ are the ones stepping gives, and a bulk repeats a record that
sends an output home only while the output's flat translation is the element moved."""

from __future__ import annotations

import numpy as np
import pytest

import metronome.sim.fast as fast_module
from metronome.sim import REALISTIC, SimOptions, simulate
from metronome.sim.context import RunContext
from metronome.sim.fast import FastPath
from metronome.sim.keyed import KeyedSegment, joined, reach
from metronome.sim.l1 import L1Residency
from metronome.sim.schedule import Segment, Step
from metronome.spec.hardware import Hardware
from metronome.spec.maestro import parse_mapping_text

from .helpers import stable

# Output stationary as ShiDianNao on VGG16: K outer (6 positions: 1 .. 4 are middle ones,
# 1 and 4 next to the first and last), C, Y over 2 PEs, the window sliding over X.
OS_K6 = """Network o { Layer L { Type: CONV
Dimensions { K: 6, C: 2, R: 3, S: 3, Y: 8, X: 12 }
Dataflow { TemporalMap(1,1) K; TemporalMap(1,1) C; SpatialMap(Sz(R),1) Y;
  TemporalMap(Sz(S),1) X; TemporalMap(Sz(R),Sz(R)) R; TemporalMap(Sz(S),Sz(S)) S; } } }"""
# One PE accumulating over C, outputs swept row by row (Y' then X'): a small L1 holds
# partial sums of the previous rows and evicts them in that order, so an evicted output
# translated by one X' step is, at a row's end, the next row's first in flat terms only.
ROWS = """Network r { Layer L { Type: CONV
Dimensions { K: 2, C: 2, R: 3, S: 3, Y: 7, X: %d }
Dataflow { TemporalMap(1,1) C; SpatialMap(1,1) K; TemporalMap(1,1) Y'; TemporalMap(1,1) X';
  TemporalMap(Sz(R),Sz(R)) R; TemporalMap(Sz(S),Sz(S)) S; } } }"""


def _entry(text: str):  # type: ignore[no-untyped-def]
    entry = parse_mapping_text(text).layers[0]
    assert entry.mapping is not None
    return entry.layer, entry.mapping


def _step(index: int, pos: int, key: tuple[object, ...]) -> Step:
    return Step(index, index, (pos,), 0, 1, key, {"X": pos})


def test_a_keyed_segment_gives_each_repetition_its_own_end_keys() -> None:
    # Two steps per repetition: the first's key names its predecessor's class, the last's
    # its successor's (a, b: first and last position; m: middle).
    steps = (_step(0, 1, ("m", "a")), _step(1, 1, ("m", "m")))
    seg = KeyedSegment(
        steps, ([], []), 4, 0, {"X": 1}, (("m", "m"), ("m", "m")), (("m", "m"), ("m", "b"))
    )
    assert [seg.step_at(b, 0).key for b in range(4)] == [("m", "a")] + [("m", "m")] * 3
    assert [seg.step_at(b, 1).key for b in range(4)] == [("m", "m")] * 3 + [("m", "b")]
    # Everything else moves as in a plain segment.
    plain = Segment(steps, ([], []), 4, 0, {"X": 1})
    for b in range(4):
        for j in range(2):
            s, t = seg.step_at(b, j), plain.step_at(b, j)
            assert (s.index, s.positions, s.base) == (t.index, t.positions, t.base)
    assert seg.ends(0) == (("m", "a"), ("m", "m"))
    assert seg.ends(3) == (("m", "m"), ("m", "b"))


def test_joined_segments_are_the_stream_step_for_step() -> None:
    layer, mapping = _entry(OS_K6)
    run = RunContext(layer, mapping, Hardware(num_pes=2), SimOptions(policy=REALISTIC))
    segments = list(run.stream.segments())
    joins = list(joined(iter(segments)))
    # K = 1, the repeated K = 2, 3 and K = 4 become one segment of 4 repetitions.
    keyed = [s for s in joins if isinstance(s, KeyedSegment)]
    assert len(keyed) == 1
    assert keyed[0].count == 4
    assert len(joins) == len(segments) - 2
    every = [
        seg.step_at(b, j) for seg in joins for b in range(seg.count) for j in range(len(seg.steps))
    ]
    stream = [step for step, _ in run.stream]
    assert [(s.index, s.positions, s.key, s.base) for s in every] == [
        (s.index, s.positions, s.key, s.base) for s in stream
    ]


def _records_per_step(text: str, pes: int, l1: int, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The fast run's result and, per step, the (geometry key, L1 signature) its record
    is memoised under."""
    pieces: list[tuple[int, int, list[int]]] = []
    runs: list[RunContext] = []
    piece = FastPath._piece

    def logged(self: FastPath, seg: Segment, recs: list) -> None:  # type: ignore[type-arg]
        pieces.append((seg.steps[0].index, seg.count, [r.rid for r in recs]))
        runs[:] = [self.run]
        piece(self, seg, recs)

    monkeypatch.setattr(FastPath, "_piece", logged)
    layer, mapping = _entry(text)
    result = simulate(
        layer, mapping, Hardware(num_pes=pes, l1_size_elems=l1), SimOptions(policy=REALISTIC)
    )
    monkeypatch.setattr(FastPath, "_piece", piece)
    memo = {rec.rid: key for key, rec in runs[0].records.items()}
    per_step: list[object] = []
    for _first, count, rids in sorted(pieces):
        per_step.extend([memo[r] for r in rids] * count)
    return result.layer.to_dict(), per_step


@pytest.mark.parametrize("l1", [40, 400])
def test_joined_positions_get_the_records_stepping_gives(
    monkeypatch: pytest.MonkeyPatch, l1: int
) -> None:
    joined_result, joined_records = _records_per_step(OS_K6, 2, l1, monkeypatch)
    # Without joining (and without widening a repetition's split): each first and last
    # middle position stepped on its own.
    monkeypatch.setattr(fast_module, "joined", lambda segments: segments)
    monkeypatch.setattr(fast_module, "widened", lambda *args: args[4])
    plain_result, plain_records = _records_per_step(OS_K6, 2, l1, monkeypatch)
    # Every step has the record stepping gives it (so every count, the transitions timed
    # in detail included, is the same).
    assert joined_records == plain_records
    assert joined_result == plain_result


def test_reach_counts_the_moves_that_stay_inside_the_output_tensor() -> None:
    # Outputs (K: 2, Y': 3, X': 4) of 1 PE; inputs 5 and weights 6 elements first.
    l1 = L1Residency(
        ((5,), (6,), (2, 3, 4)),
        1,
        100,
        "lru",
        psum_every_step=False,
        dims=(("C",), ("K",), ("K", "Y'", "X'")),
        memo=True,
    )
    base = 5 + 6
    # (0, 0, 1) and (1, 2, 3) flat 1 and 23; moving X' by +1: 2 more moves stay inside
    # for X' = 1 (to 3), none for X' = 3; by -1: 1 and 3.
    keys = np.array([base + 1, base + 23])
    assert reach(l1, keys, np.array([0, 0, 1])).tolist() == [2, 0]
    assert reach(l1, keys, np.array([0, 0, -1])).tolist() == [1, 3]
    # Y' by +1 and X' by +2 at once: (0, 0, 1) -> (0, 2, 3) after 1 move (Y' allows 2);
    # (1, 2, 3) none.
    assert reach(l1, keys, np.array([0, 1, 2])).tolist() == [1, 0]


@pytest.mark.parametrize(("x", "size"), [(8, 40), (10, 40)])
def test_repeated_records_stop_where_an_evicted_output_wraps_a_row(
    monkeypatch: pytest.MonkeyPatch, x: int, size: int
) -> None:
    layer, mapping = _entry(ROWS % x)
    hw = Hardware(num_pes=1, l1_size_elems=size)
    full = simulate(
        layer, mapping, hw, SimOptions(policy=REALISTIC, fast_forward=False)
    ).layer.to_dict()
    fast = simulate(layer, mapping, hw, SimOptions(policy=REALISTIC)).layer.to_dict()
    assert stable(fast) == stable(full)
    # The case needs the guard: repeating the records past the wrap sends home an output
    # outside the tensor (or the wrong one).
    monkeypatch.setattr(
        fast_module, "reach", lambda l1, keys, move: np.full(keys.size, 1 << 40, dtype=np.int64)
    )
    try:
        broken: dict[str, object] | None = stable(
            simulate(layer, mapping, hw, SimOptions(policy=REALISTIC)).layer.to_dict()
        )
    except (IndexError, ValueError):
        broken = None
    assert broken != stable(full)
