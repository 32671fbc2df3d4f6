"""Segments joined across a loop's first and last middle positions
(:mod:`metronome.sim.keyed`): each repetition keeps its own geometry keys, the records of
the steps whose keys differ are the ones stepping gives, and a bulk repeats a record that
sends an output home only while the output's flat translation is the element moved.
Records copied from one built alike (:mod:`metronome.sim.twins`) equal the ones built."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import metronome.sim.fast as fast_module
from metronome.sim import REALISTIC, SimOptions, simulate
from metronome.sim.context import RunContext
from metronome.sim.fast import FastPath
from metronome.sim.keyed import KeyedSegment, _follows, joined, reach
from metronome.sim.l1 import L1Residency
from metronome.sim.schedule import Segment, Step
from metronome.sim.traffic import RecordBuilder, StepRecord
from metronome.sim.twins import Twins
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

# One PE, the window's X in tiles of 4 outputs (6 inputs) over 10: 4, 4 and 2 outputs.
CLIPPED = """Network c { Layer L { Type: CONV
Dimensions { K: 1, C: 1, R: 3, S: 3, Y: 3, X: 12 }
Dataflow { SpatialMap(Sz(R),1) Y; TemporalMap(6,4) X; TemporalMap(Sz(R),Sz(R)) R;
  TemporalMap(Sz(S),Sz(S)) S; } } }"""


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


@pytest.mark.parametrize("m", [1, 2, 3])
@pytest.mark.parametrize("ends", [(None, None), ("mid", None), (None, "last"), ("mid", "last")])
def test_a_keyed_segments_end_keys_are_its_steps(m: int, ends: tuple[str | None, ...]) -> None:
    # ``ends`` reads the keys without building the steps: the same as ``step_at``'s,
    # one-step repetitions (first and last step alike) included.
    steps = tuple(_step(j, 1, ("m", str(j))) for j in range(m))
    middle, last = (None if e is None else ((e, "first"), (e, "last")) for e in ends)
    seg = KeyedSegment(steps, tuple([] for _ in range(m)), 5, 0, {"X": 1}, middle, last)
    for b in range(5):
        assert seg.ends(b) == (seg.step_at(b, 0).key, seg.step_at(b, m - 1).key)


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


def _records_of_steps(
    text: str, pes: int, l1: int, monkeypatch: pytest.MonkeyPatch, topology: str = "bus"
) -> tuple[dict[str, object], list[StepRecord], int]:
    """The fast run's result, each step's record and how many records were copies."""
    pieces: list[tuple[int, int, list[StepRecord]]] = []
    copies: list[int] = []
    piece, copy = FastPath._piece, RecordBuilder.copy

    def logged(self: FastPath, seg: Segment, recs: list[StepRecord]) -> None:
        pieces.append((seg.steps[0].index, seg.count, list(recs)))
        piece(self, seg, recs)

    def counted(self: RecordBuilder, rec: StepRecord) -> StepRecord:
        copies.append(1)
        return copy(self, rec)

    monkeypatch.setattr(FastPath, "_piece", logged)
    monkeypatch.setattr(RecordBuilder, "copy", counted)
    layer, mapping = _entry(text)
    hw = Hardware(num_pes=pes, l1_size_elems=l1, topology=topology)
    result = simulate(layer, mapping, hw, SimOptions(policy=REALISTIC)).layer.to_dict()
    monkeypatch.setattr(FastPath, "_piece", piece)
    monkeypatch.setattr(RecordBuilder, "copy", copy)
    per_step: list[StepRecord] = []
    for _first, count, recs in sorted(pieces, key=lambda p: p[0]):
        per_step.extend(recs * count)
    return result, per_step, len(copies)


@pytest.mark.parametrize(
    ("text", "pes", "l1", "topology"),
    [
        (OS_K6, 2, 40, "bus"),
        (OS_K6, 2, 400, "bus"),
        (OS_K6, 2, 40, "mesh"),
        (ROWS % 10, 1, 40, "bus"),
    ],
)
def test_copied_records_are_the_ones_building_gives(
    monkeypatch: pytest.MonkeyPatch, text: str, pes: int, l1: int, topology: str
) -> None:
    result, records, copies = _records_of_steps(text, pes, l1, monkeypatch, topology)
    assert copies
    # Every record built: each step's record equal, field by field (its id too).
    monkeypatch.setattr(Twins, "copy", lambda self, key: None)
    built_result, built, none = _records_of_steps(text, pes, l1, monkeypatch, topology)
    assert none == 0
    assert [pickle.dumps(r) for r in records] == [pickle.dumps(r) for r in built]
    assert result == built_result


def _twin_key(run: RunContext, items: list[tuple[Step, list[object]]], i: int) -> object:
    """The twin key of step ``i`` of ``items`` for one L1 outcome."""
    step, scheds = items[i]
    before = (lambda: run.tiles(*items[i - 1])) if i else None
    return run.twins.key(
        step.key, b"same L1 outcome", lambda: run.tiles(step, scheds), step.base, before
    )


@pytest.mark.parametrize("topology", ["bus", "mesh"])
def test_twins_share_a_key_only_with_the_same_tiles_and_predecessor(topology: str) -> None:
    layer, mapping = _entry(OS_K6)
    hw = Hardware(num_pes=2, topology=topology)
    run = RunContext(layer, mapping, hw, SimOptions(policy=REALISTIC))
    items = list(run.stream)
    # K = 1 .. 4 are translations of each other (their keys differ in the neighbours'
    # classes at the first and last step): one key. Per K position 2 C x 3 Y x 10 X steps.
    per_k = 2 * 3 * 10
    firsts = [_twin_key(run, items, k * per_k) for k in range(1, 5)]
    assert len({items[k * per_k][0].key for k in range(1, 5)}) > 1
    assert len(set(firsts)) == 1
    # The layer's first step has no predecessor: another key.
    assert _twin_key(run, items, 0) != firsts[0]
    # A row's first X position and a middle one have the same tiles relative to their
    # bases; their predecessors (the previous row's last, X - 1) differ, which counts
    # only where PEs forward between neighbours (mesh).
    row, middle = _twin_key(run, items, per_k + 10), _twin_key(run, items, per_k + 15)
    assert (row == middle) == (topology == "bus")


def test_twins_differ_where_the_tiles_are_clipped() -> None:
    # X in tiles of 4 outputs over 10: the last position's tiles are clipped to 2.
    layer, mapping = _entry(CLIPPED)
    run = RunContext(layer, mapping, Hardware(num_pes=1), SimOptions(policy=REALISTIC))
    items = list(run.stream)
    assert _twin_key(run, items, 1) != _twin_key(run, items, 2)


def test_a_step_follows_only_with_its_base_moved() -> None:
    # Step 0 at X' position 1, then 2 repetitions of 2 steps later (index 4, position 3),
    # each repetition moving X by 2: its base must be X 1 + 2 x 2 = 5, K unchanged; a
    # dimension one base lacks counts as 0.
    key = ("a", "b", "c", "d")
    a = Step(0, 0, (0, 1), 0, 1, key, {"X": 1, "K": 2})

    def later(base: dict[str, int]) -> Step:
        return Step(4, 0, (0, 3), 0, 1, key, base)

    assert _follows(a, later({"X": 5, "K": 2}), 1, 2, 2, {"X": 2})
    assert not _follows(a, later({"X": 4, "K": 2}), 1, 2, 2, {"X": 2})
    assert not _follows(a, later({"X": 5, "K": 3}), 1, 2, 2, {"X": 2})
    assert not _follows(a, later({"X": 5}), 1, 2, 2, {"X": 2})
    assert _follows(a, later({"X": 5, "K": 2, "C": 0}), 1, 2, 2, {"X": 2})
    zero = Step(0, 0, (0, 1), 0, 1, key, {"X": 1, "K": 0})
    assert _follows(zero, later({"X": 5}), 1, 2, 2, {"X": 2, "Y": 0})
