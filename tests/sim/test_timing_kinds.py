"""The fast path's timing memo shares a transition between records that differ only in
what :func:`metronome.sim.timing.step` does not read: every transition it hands out is
the one ``step`` computes, and only records alike in every field ``step`` reads share
one."""

from __future__ import annotations

from dataclasses import replace

import pytest

from metronome.sim import timing
from metronome.sim.memory import OffchipTiming
from metronome.sim.noc import PhaseOutcome
from metronome.sim.timing import Transitions, initial_state, step

from .test_timelines import _record

TIMING = OffchipTiming(latency_cycles=0, elems_per_cycle=8, max_outstanding=1)
# A distribution that reaches both PEs 3 cycles after it starts and frees L2's port at
# 2; a collection whose sums land 8 cycles after it starts.
DOWN = PhaseOutcome(
    oid=0,
    plane=0,
    deliveries=((0, 3), (1, 3)),
    done=3,
    landed=0,
    port=2,
    busy=4,
    queueing=0,
    edges=(),
    peaks=(),
    empty=False,
)
UP = replace(DOWN, oid=1, plane=1, deliveries=(), done=8, landed=8, port=0)
# Records: test_timelines' 2-PE step (both PEs compute 6 cycles and send 16 partial
# sums home; the next step fits beside it).


def test_records_alike_but_for_their_id_share_one_computed_transition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    def counted(*args: object) -> timing.Transition:
        calls.append(1)
        return step(*args)

    monkeypatch.setattr(timing, "step", counted)
    memo = Transitions(TIMING, 2)
    sid = memo.intern(initial_state(2))
    # A copy (another id, other traffic counts step() does not read) of record 0.
    copy = replace(_record(7), bus_out_elems=0, up_flows=(), macs=0)
    first = memo.advance(sid, _record(0), (1, 0, 0), DOWN, UP)
    second = memo.advance(sid, copy, (1, 0, 0), DOWN, UP)
    assert second is first
    assert len(calls) == 1
    # Both count as timed in detail (steps_timed_in_detail is per record id).
    assert memo.distinct == 2
    # Other costs or another state: computed anew.
    memo.advance(sid, copy, (2, 0, 0), DOWN, UP)
    memo.advance(first[0], copy, (1, 0, 0), DOWN, UP)
    assert len(calls) == 3


@pytest.mark.parametrize(
    "change",
    [
        {"compute_cycles": (6, 9)},
        {"involved": (True, False)},
        {"egress": (True, False)},
        {"next_fits": False},
    ],
)
def test_records_differing_in_a_field_step_reads_get_their_own_transition(
    change: dict[str, object],
) -> None:
    memo = Transitions(TIMING, 2)
    sid = memo.intern(initial_state(2))
    base = memo.advance(sid, _record(0), (1, 0, 0), DOWN, UP)[1]
    other = replace(_record(1), **change)
    got = memo.advance(sid, other, (1, 0, 0), DOWN, UP)[1]
    want = step(initial_state(2), other, (1, 0, 0), TIMING, 2, DOWN, UP)
    # The change matters to the timing, and the memo gives step()'s own answer.
    assert want != base
    assert got == want
